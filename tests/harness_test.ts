/**
 * The test harness itself (tests/_harness.ts): the Listening line parser,
 * line collection and waiting, and the process life cycle (a server that
 * exits before listening, one that ignores SIGTERM, a real CLI), with small
 * shell scripts standing in for servers where the point is the harness.
 */
import assert from "node:assert/strict";
import {
  ACCEPT_MODES,
  Lines,
  LISTENING,
  parseListening,
  spawnServer,
  startCli,
  startCluster,
} from "./_harness.ts";

/** A stream fed by hand: `push` text, `end` it. */
function feed() {
  const enc = new TextEncoder();
  let ctl!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => void (ctl = c) });
  return {
    lines: new Lines(stream),
    push: (s: string) => ctl.enqueue(enc.encode(s)),
    end: () => ctl.close(),
  };
}

/** Lets the stream pipe deliver what was pushed. */
const turn = () => new Promise((r) => setTimeout(r, 0));

Deno.test("parseListening reads the CLI's and the cluster entry's line, and nothing else", () => {
  assert.deepEqual(parseListening("Listening on http://127.0.0.1:8000/ (2 workers, ring mode)"), {
    scheme: "http",
    hostname: "127.0.0.1",
    port: 8000,
    workers: 2,
    mode: "ring",
  });
  assert.deepEqual(
    parseListening("Listening on https://0.0.0.0:443/ (1 worker, reuseport mode)"),
    { scheme: "https", hostname: "127.0.0.1", port: 443, workers: 1, mode: "reuseport" },
  );
  assert.equal(
    parseListening("Listening on http://[::1]:9/ (4 workers, ring mode)")?.hostname,
    "::1",
  );
  assert.equal(
    parseListening("Listening on http://localhost:9/ (4 workers, ring mode)")?.hostname,
    "127.0.0.1",
  );
  for (
    const not of [
      "  Serving /srv/www",
      "  Local:   http://localhost:8000/",
      "  Network: http://10.0.0.2:8000/",
      "Listening on http://127.0.0.1:8000/",
      "x Listening on http://127.0.0.1:8000/ (2 workers, ring mode)",
    ]
  ) {
    assert.equal(parseListening(not), undefined, not);
    assert.doesNotMatch(not, LISTENING);
  }
  assert.deepEqual([...ACCEPT_MODES], ["ring", "reuseport"]);
});

Deno.test("Lines: waitFor sees past and future lines, by pattern or predicate, from a mark", async () => {
  const f = feed();
  f.push("one\ntw");
  await turn();
  assert.deepEqual(f.lines.lines, ["one"]);
  assert.equal((await f.lines.waitFor(/^o(ne)$/))[1], "ne");
  const later = f.lines.waitFor((l) => l.startsWith("thr"));
  f.push("o\nthree\n");
  assert.equal(await later, "three");
  assert.deepEqual(f.lines.lines, ["one", "two", "three"]);
  const mark = f.lines.count;
  const fresh = f.lines.waitFor(/^one$/, { from: mark });
  f.push("one\n");
  assert.equal((await fresh).index, 0);
  assert.equal(f.lines.count, 4);
  const enough = f.lines.until("5 lines", (ls) => ls.length >= 5);
  f.push("five");
  f.end();
  assert.equal((await enough).at(-1), "five", "the last, unterminated line counts at the end");
  assert.equal(f.lines.text, "one\ntwo\nthree\none\nfive\n");
  await f.lines.done;
});

Deno.test("Lines: waitFor rejects when the stream ends or the time is up, naming the lines seen", async () => {
  const f = feed();
  f.push("alpha\n");
  await assert.rejects(
    f.lines.waitFor(/^beta$/, { timeoutMs: 50 }),
    /timed out before a line matching \/\^beta\$\/; lines:\nalpha/,
  );
  const pending = f.lines.waitFor(/^beta$/);
  f.end();
  await assert.rejects(pending, /the stream ended before a line matching/);
  await assert.rejects(f.lines.until("two lines", (ls) => ls.length > 1), /stream ended/);
});

Deno.test("spawnServer rejects, with the output, when the process exits before listening", async () => {
  await assert.rejects(
    spawnServer("sh", ["-c", "echo 'not yet' >&2; exit 3"]),
    (e: Error) => {
      assert.match(e.message, /no Listening line \(.*"code":3/);
      assert.match(e.message, /not yet/);
      return true;
    },
  );
});

Deno.test("spawnServer: a process silent past the ready timeout is killed", async () => {
  const t0 = performance.now();
  await assert.rejects(
    spawnServer("sh", ["-c", "exec sleep 60"], { readyTimeoutMs: 200 }),
    /no Listening line \(.*"signal":"SIGKILL".*timed out/,
  );
  assert.ok(performance.now() - t0 < 30_000);
});

const FAKE = 'echo "Listening on http://127.0.0.1:1/ (1 workers, ring mode)"; echo "  Serving /x"';

Deno.test("stop: SIGTERM first; a process that ignores it is killed after the stop timeout", async () => {
  // trap '': the shell ignores SIGTERM, so only the SIGKILL after the timeout ends it.
  const server = await spawnServer(
    "sh",
    ["-c", `trap '' TERM; ${FAKE}; echo ready >&2; while :; do sleep 1; done`],
    { stopTimeoutMs: 300 },
  );
  assert.equal(server.port, 1);
  assert.equal(server.mode, "ring");
  await server.stdout.waitFor(/^ {2}Serving \/x$/);
  await server.stderr.waitFor(/^ready$/);
  const status = await server.stop();
  assert.equal(status.signal, "SIGKILL");
  assert.equal(server.exited?.signal, "SIGKILL");
  // A second stop (or the dispose after an explicit stop) is harmless.
  assert.equal((await server.stop()).signal, "SIGKILL");
});

Deno.test("stop: a process that exits on SIGTERM gives its own status; stdin commands reach it", async () => {
  await using server = await spawnServer(
    "sh",
    ["-c", `trap 'exit 7' TERM; ${FAKE}; read line; echo "got $line"; while :; do sleep 1; done`],
    { stdin: "piped" },
  );
  await server.command("hello");
  await server.stdout.waitFor(/^got hello$/);
  assert.equal((await server.stop()).code, 7);
});

Deno.test("startCli: the real CLI serves, prints its lines after Listening, exits 0 on SIGTERM", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${root}/a.txt`, "a");
    await using server = await startCli([root, "--workers", "1"]);
    assert.equal(server.workers, 1);
    assert.equal(server.origin, `http://127.0.0.1:${server.port}`);
    await server.stdout.waitFor((l) => l === `  Serving ${Deno.realPathSync(root)}`);
    const res = await fetch(server.url("/a.txt"));
    assert.equal(await res.text(), "a");
    const stats = await server.stats();
    assert.equal((stats?.workers as unknown[]).length, 1, server.diagnosis());
    assert.equal(await server.restarts(), 0);
    assert.equal((await server.stop()).code, 0, server.diagnosis());
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("startCluster: serve() through the entry, stats by stdin command", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${root}/a.txt`, "a");
    await using server = await startCluster({ root, accept: "reuseport" });
    assert.deepEqual([server.workers, server.mode], [2, "reuseport"]);
    assert.equal(await (await fetch(server.url("/a.txt"))).text(), "a");
    const stats = await server.stats();
    assert.equal((stats?.workers as unknown[]).length, 2, server.diagnosis());
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
