import assert from "node:assert/strict";
import { NO_UNPRIVILEGED, unprivilegedPrefix } from "../tests/_unprivileged.ts";

const MODULE = new URL("./_watch_tree.ts", import.meta.url).href;

/** The child: watches `root`, prints READY with what it could not watch, then each event's paths. */
const CHILD = `
import { watchTree } from ${JSON.stringify(MODULE)};
const w = watchTree(Deno.args[0], (ev) => console.log("EV " + JSON.stringify(ev.paths)),
  (e) => console.log("ERR " + e));
console.log("READY " + JSON.stringify(w.unreadable));
for await (const _ of Deno.stdin.readable) { /* until the parent closes stdin */ }
w.close();
`;

Deno.test("watchTree: one unreadable folder leaves the rest of the tree watched, and says which", async () => {
  const prefix = unprivilegedPrefix();
  if (prefix === null) {
    console.log(`  ${NO_UNPRIVILEGED}`);
    return;
  }
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-watch-" }));
  await Deno.mkdir(`${root}/a/b`, { recursive: true });
  await Deno.mkdir(`${root}/x/locked`, { recursive: true });
  await Deno.mkdir(`${root}/x/open`);
  await Deno.writeTextFile(`${root}/x/locked/secret.txt`, "s");
  await Deno.chmod(`${root}/x/locked`, 0);
  const [cmd, ...pre] = [...prefix, Deno.execPath()];
  const child = new Deno.Command(cmd, {
    args: [...pre, "eval", "--quiet", CHILD, root],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  let wake = () => {};
  let ended = false;
  const reading = (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      lines.push(...parts);
      wake();
    }
    ended = true;
    wake();
  })();
  const next = () => new Promise<void>((r) => wake = r);
  const seen = (path: string) => lines.some((l) => l.startsWith("EV ") && l.includes(path));
  /** Writes `file` until an event names it: the event is the synchronisation. */
  const changeUntilSeen = async (file: string) => {
    const deadline = Date.now() + 20_000;
    while (!seen(file)) {
      assert.ok(Date.now() < deadline, `no event for ${file}; got ${lines.join("\n")}`);
      await Deno.writeTextFile(file, String(Date.now()));
      await Promise.race([next(), new Promise((r) => setTimeout(r, 50))]);
    }
  };
  try {
    while (!lines.some((l) => l.startsWith("READY "))) {
      assert.ok(!ended, `the watcher exited before it was ready: ${lines.join("\n")}`);
      await next();
    }
    const ready = lines.find((l) => l.startsWith("READY "))!;
    assert.deepEqual(JSON.parse(ready.slice(6)), ["x/locked"]);
    // Watched: the root, a clean subtree, the unreadable folder's parent and sibling.
    for (const f of ["top.txt", "a/b/deep.txt", "x/beside.txt", "x/open/o.txt"]) {
      await changeUntilSeen(`${root}/${f}`);
    }
    // A folder created beside the unreadable one is watched too.
    await Deno.mkdir(`${root}/x/new`);
    await changeUntilSeen(`${root}/x/new/n.txt`);
    // And the unreadable one, once it can be read.
    await Deno.chmod(`${root}/x/locked`, 0o755);
    await changeUntilSeen(`${root}/x/locked/inner.txt`);
    assert.ok(!lines.some((l) => l.startsWith("ERR")), lines.join("\n"));
  } finally {
    await child.stdin.close();
    await child.status;
    await reading;
    await Deno.chmod(`${root}/x/locked`, 0o755);
    await Deno.remove(root, { recursive: true });
  }
});
