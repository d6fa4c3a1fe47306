import assert from "node:assert/strict";
import {
  collectEntries,
  collectEntriesAsync,
  type Entry,
  entryRule,
  type FsCall,
} from "./_collect.ts";
import { NO_UNPRIVILEGED, unprivilegedPrefix } from "../tests/_unprivileged.ts";

const byName = (a: Entry, b: Entry) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** A hostile folder: files, a dir, dotfiles, symlinks in and out of the root, dangling, looping, a FIFO. */
async function fixture(tmp: string): Promise<string> {
  const root = `${tmp}/root`;
  const d = `${root}/d`;
  await Deno.mkdir(`${d}/sub`, { recursive: true });
  await Deno.mkdir(`${tmp}/outside`);
  await Deno.writeTextFile(`${tmp}/outside/secret.txt`, "secret");
  await Deno.writeTextFile(`${d}/a <&>.txt`, "aaa");
  await Deno.writeTextFile(`${d}/.env`, "hidden");
  await Deno.writeTextFile(`${root}/target.txt`, "target!");
  await Deno.writeFile(`${d}/run.sh`, new TextEncoder().encode("#!/bin/sh\n"), { mode: 0o755 });
  await Deno.symlink(`${root}/target.txt`, `${d}/in-link`);
  await Deno.symlink(`${d}/sub`, `${d}/dir-link`);
  await Deno.symlink(`${tmp}/outside/secret.txt`, `${d}/out-link`);
  await Deno.symlink(`${d}/.env`, `${d}/dot-link`);
  await Deno.symlink(`${d}/nothing`, `${d}/dangling`);
  await Deno.symlink(`${d}/loop`, `${d}/loop`);
  await new Deno.Command("mkfifo", { args: [`${d}/fifo`] }).output();
  return root;
}

Deno.test("collector: the sync (FFI and portable) and async front-ends list the same entries by one rule", async () => {
  const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-collect-" }));
  try {
    const root = await fixture(tmp);
    const policy = { root, dotfiles: false, followSymlinks: false };
    const raw = collectEntries(`${root}/d`, policy).sort(byName);
    const portable = collectEntries(`${root}/d`, policy, Infinity, false).sort(byName);
    const async = (await collectEntriesAsync(`${root}/d`, policy)).sort(byName);
    assert.deepEqual(raw.map((e) => e.name), [
      "a <&>.txt",
      "dir-link",
      "fifo",
      "in-link",
      "run.sh",
      "sub",
    ]);
    assert.deepEqual(portable, raw);
    assert.deepEqual(async, raw);
    const link = raw.find((e) => e.name === "in-link")!;
    assert.deepEqual(
      [link.type, link.isDir, link.size],
      ["symlink", false, 7],
      "the target's size",
    );
    assert.equal(raw.find((e) => e.name === "dir-link")!.isDir, true);
    // Dotfiles on: the dotfile and the link to it appear, in every front-end alike.
    const dots = { ...policy, dotfiles: true };
    const withDots = collectEntries(`${root}/d`, dots).map((e) => e.name).sort();
    assert.ok(withDots.includes(".env") && withDots.includes("dot-link"));
    assert.deepEqual(
      (await collectEntriesAsync(`${root}/d`, dots)).map((e) => e.name).sort(),
      withDots,
    );
    // followSymlinks: the link leaving the root is served, so listed.
    const follow = { ...policy, followSymlinks: true };
    assert.ok(collectEntries(`${root}/d`, follow).some((e) => e.name === "out-link"));
    // detail (what the archive needs): real paths of links, special files, modes.
    const detail = (await collectEntriesAsync(`${root}/d`, policy, { detail: true })).sort(byName);
    const get = (n: string) => detail.find((e) => e.name === n)!;
    assert.equal(get("in-link").target, `${root}/target.txt`);
    assert.equal(get("dir-link").target, `${root}/d/sub`);
    assert.equal(get("fifo").special, true);
    assert.equal(get("run.sh").mode! & 0o111, 0o111);
    assert.equal(get("a <&>.txt").target, undefined);
    assert.equal(raw[0].mode, undefined, "no detail unless asked");
    // max stops early (directory order).
    assert.equal(collectEntries(`${root}/d`, policy, 2).length, 2);
    assert.equal((await collectEntriesAsync(`${root}/d`, policy, 2)).length, 2);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("entryRule: asks for lstat, then realPath and stat for a link, and stops at the policy", () => {
  const policy = { root: "/srv", dotfiles: false, followSymlinks: false };
  const info = (o: Partial<Deno.FileInfo>) =>
    ({
      isFile: false,
      isDirectory: false,
      isSymlink: false,
      size: 1,
      mtime: new Date(5),
      mode: 0o644,
      ...o,
    }) as Deno.FileInfo;
  const drive = (name: string, answers: Record<string, Deno.FileInfo | string | Error>) => {
    const calls: FsCall[] = [];
    const rule = entryRule("/srv/d/", name, policy, undefined, {});
    let step = rule.next();
    while (!step.done) {
      calls.push(step.value);
      const a = answers[step.value.op];
      step = a instanceof Error ? rule.throw(a) : rule.next(a);
    }
    return { calls: calls.map((c) => `${c.op} ${c.path}`), entry: step.value };
  };
  assert.deepEqual(drive(".env", {}), { calls: [], entry: null }, "hidden: no call at all");
  const file = drive("a.txt", { lstat: info({ isFile: true, size: 3 }) });
  assert.deepEqual(file.calls, ["lstat /srv/d/a.txt"]);
  assert.deepEqual(file.entry, { name: "a.txt", type: "file", isDir: false, size: 3, mtimeMs: 5 });
  const inside = drive("l", {
    lstat: info({ isSymlink: true }),
    realPath: "/srv/t",
    stat: info({ isDirectory: true, size: 4096 }),
  });
  assert.deepEqual(inside.calls, ["lstat /srv/d/l", "realPath /srv/d/l", "stat /srv/t"]);
  assert.equal(inside.entry!.isDir, true);
  const outside = drive("o", { lstat: info({ isSymlink: true }), realPath: "/etc/passwd" });
  assert.deepEqual(outside, { calls: ["lstat /srv/d/o", "realPath /srv/d/o"], entry: null });
  const dangling = drive("x", {
    lstat: info({ isSymlink: true }),
    realPath: new Deno.errors.NotFound(),
  });
  assert.equal(dangling.entry, null);
  const seen: string[] = [];
  const denied = entryRule("/srv/d/", "n", policy, undefined, {
    onUnreadable: (n) => seen.push(n),
  });
  denied.next();
  assert.deepEqual(denied.throw(new Deno.errors.PermissionDenied()), { done: true, value: null });
  assert.deepEqual(seen, ["n"], "an entry that exists but cannot be read is reported");
});

Deno.test("collector: entries it may not stat (a folder without search permission) are reported, not dropped silently", async () => {
  const prefix = unprivilegedPrefix();
  if (prefix === null) {
    console.log(`  ${NO_UNPRIVILEGED}`);
    return;
  }
  const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-collect-" }));
  try {
    await Deno.mkdir(`${tmp}/d`);
    await Deno.writeTextFile(`${tmp}/d/one`, "1");
    await Deno.writeTextFile(`${tmp}/d/two`, "2");
    await Deno.chmod(`${tmp}/d`, 0o444); // names readable, entries not stat-able
    const code = `
      import { collectEntriesAsync } from ${
      JSON.stringify(new URL("./_collect.ts", import.meta.url).href)
    };
      const seen = [];
      const got = await collectEntriesAsync(Deno.args[0], { root: Deno.args[0], dotfiles: false, followSymlinks: false },
        { onUnreadable: (n) => seen.push(n) });
      console.log(JSON.stringify({ got: got.length, seen: seen.sort() }));`;
    const [cmd, ...pre] = [...prefix, Deno.execPath()];
    const r = await new Deno.Command(cmd, { args: [...pre, "eval", "--quiet", code, `${tmp}/d`] })
      .output();
    const out = new TextDecoder().decode(r.stdout);
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    assert.deepEqual(JSON.parse(out), { got: 0, seen: ["one", "two"] });
  } finally {
    await Deno.chmod(`${tmp}/d`, 0o755);
    await Deno.remove(tmp, { recursive: true });
  }
});
