/**
 * The access log (`-v`, `--access-log`) and the metrics page
 * (`--metrics-path`) end to end: the real CLI in a subprocess for the log
 * lines, `serve()` in-process for ring overflow and the counters.
 */
import assert from "node:assert/strict";
import { serve } from "../mod.ts";
import { ACCEPT_MODES, startCli } from "./_harness.ts";

async function fixture(): Promise<string> {
  const root = await Deno.makeTempDir();
  await Deno.writeTextFile(`${root}/a.txt`, "hello\n");
  await Deno.writeTextFile(`${root}/sp ace "q".txt`, "x".repeat(1000));
  return root;
}

/** Polls `fn` (no fixed sleeps: each round waits for the next timer turn) until it returns a value. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The CLI with 2 workers on a free port, as `deno task serve` runs it (plus `extraPerms`). */
function cli(args: string[], extraPerms: string[] = []) {
  return startCli(["--workers", "2", ...args], { extraPerms });
}

// host - - [time] "METHOD target HTTP/1.x" status bytes "referer" "ua"
const COMBINED =
  /^(\S+) - - \[(\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$/;

async function get(port: number, path: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
  await res.body?.cancel();
  return res;
}

for (const mode of ACCEPT_MODES) {
  Deno.test(`CLI --access-log --accept=${mode}: one Combined Log Format line per response with its status, bytes and target`, async () => {
    const root = await fixture();
    const log = `${root}.log`;
    const server = await cli(
      [root, "--accept", mode, "--access-log", log],
      [`--allow-write=${log}`],
    );
    try {
      const ok = await get(server.port, "/a.txt", {
        headers: { "user-agent": 'test "agent"', referer: "http://example.test/" },
      });
      const missing = await get(server.port, "/missing?x=1");
      const spaced = await get(server.port, "/sp%20ace%20%22q%22.txt");
      const head = await get(server.port, "/a.txt", { method: "HEAD" });
      assert.deepEqual([ok.status, missing.status, spaced.status, head.status], [
        200,
        404,
        200,
        200,
      ]);
      const lines = await until("4 log lines", async () => {
        const text = await Deno.readTextFile(log).catch(() => "");
        const lines = text.split("\n").filter((l) => l !== "");
        return lines.length >= 4 ? lines : undefined;
      });
      assert.equal(lines.length, 4);
      const parsed = lines.map((l) => {
        const m = l.match(COMBINED);
        assert.ok(m, `not a Combined Log Format line: ${l}`);
        return m;
      });
      const byTarget = new Map(parsed.map((m) => [m[3], m]));
      const a = byTarget.get("GET /a.txt HTTP/1.1")!;
      assert.ok(a, lines.join("\n"));
      assert.equal(a[1], "127.0.0.1");
      assert.equal(a[4], "200");
      // Bytes as written: the head plus the 6-byte body.
      assert.ok(Number(a[5]) > 6 && Number(a[5]) < 400, a[5]);
      assert.equal(a[6], "http://example.test/");
      assert.equal(a[7], "test \\x22agent\\x22");
      assert.equal(byTarget.get("GET /missing?x=1 HTTP/1.1")?.[4], "404");
      const s = byTarget.get("GET /sp%20ace%20%22q%22.txt HTTP/1.1")!;
      assert.equal(s[4], "200");
      assert.ok(Number(s[5]) > 1000, s[5]);
      const h = byTarget.get("HEAD /a.txt HTTP/1.1")!;
      assert.equal(h[4], "200");
      assert.ok(Number(h[5]) < Number(a[5]), "HEAD writes the head only");
      assert.equal(server.stdout.lines.filter((l) => COMBINED.test(l)).length, 0);
    } finally {
      await server.stop();
      await Deno.remove(root, { recursive: true });
      await Deno.remove(log).catch(() => {});
    }
  });
}

Deno.test("CLI -v logs to stdout; without -v nothing is logged", async () => {
  const root = await fixture();
  try {
    const quiet = await cli([root]);
    try {
      assert.equal((await get(quiet.port, "/a.txt")).status, 200);
      assert.equal((await get(quiet.port, "/nope")).status, 404);
    } finally {
      await quiet.stop();
    }
    // Stopped (log drained and flushed at shutdown): the output is final.
    assert.deepEqual(quiet.stdout.lines.filter((l) => COMBINED.test(l)), []);
    assert.doesNotMatch(quiet.stderr.text, /GET/);

    const loud = await cli([root, "-v", "--log-format", "common"]);
    try {
      assert.equal((await get(loud.port, "/a.txt")).status, 200);
      await loud.stdout.waitFor((l) => l.includes('"GET /a.txt HTTP/1.1" 200 '));
    } finally {
      await loud.stop();
    }
    const line = loud.stdout.lines.find((l) => l.includes("/a.txt"))!;
    // Common: no referer / user-agent fields.
    assert.match(line, /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/a\.txt HTTP\/1\.1" 200 \d+$/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve(): a full log ring drops and counts records; every request is still answered", async () => {
  const root = await fixture();
  const log = `${root}.log`;
  // A 2-record ring drained only at shutdown: 2 records kept, the rest dropped.
  const cluster = await serve({
    root,
    hostname: "127.0.0.1",
    port: 0,
    workers: 1,
    accessLog: log,
    logRingSize: 2,
    logFlushMs: 600_000,
  });
  const N = 40;
  try {
    const statuses = await Promise.all(
      Array.from({ length: N }, () => get(cluster.addr.port, "/a.txt").then((r) => r.status)),
    );
    assert.deepEqual(statuses, new Array(N).fill(200));
    const w = await until("all responses counted", () => {
      const w = cluster.stats().workers[0];
      return Promise.resolve(w.responses[1] === N ? w : undefined);
    });
    assert.equal(w.logged, 2);
    assert.equal(w.logDropped, N - 2);
    assert.equal(w.logRing, 2);
  } finally {
    await cluster.shutdown();
  }
  try {
    const lines = (await Deno.readTextFile(log)).split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 2, "the kept records are written at shutdown");
    for (const l of lines) assert.match(l, COMBINED);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(log);
  }
});

// ---------------------------------------------------------------------------
// A strict parser of Prometheus text exposition format 0.0.4, as far as we use it.

interface Family {
  type: "counter" | "gauge";
  help: string;
  samples: Map<string, number>;
}

function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const families = new Map<string, Family>();
  const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
  const sample = new RegExp(
    `^(${NAME})(\\{(?:${LABEL})(?:,${LABEL})*\\})? (-?[0-9]+(?:\\.[0-9]+)?(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$`,
  );
  let current: string | undefined;
  for (const line of text.slice(0, -1).split("\n")) {
    let m: RegExpMatchArray | null;
    if ((m = line.match(new RegExp(`^# HELP (${NAME}) (.+)$`)))) {
      assert.ok(!families.has(m[1]), `HELP given twice for ${m[1]}`);
      families.set(m[1], { type: "gauge", help: m[2], samples: new Map() });
      current = m[1];
    } else if ((m = line.match(new RegExp(`^# TYPE (${NAME}) (counter|gauge)$`)))) {
      assert.equal(m[1], current, `TYPE ${m[1]} must follow its HELP`);
      const f = families.get(m[1])!;
      assert.equal(f.samples.size, 0, "TYPE before the samples");
      f.type = m[2] as Family["type"];
    } else if ((m = line.match(sample))) {
      assert.equal(m[1], current, `sample ${m[1]} outside its family`);
      const f = families.get(m[1])!;
      const key = m[2] ?? "";
      assert.ok(!f.samples.has(key), `duplicate sample ${line}`);
      const v = Number(m[3]);
      if (f.type === "counter") assert.ok(v >= 0, `negative counter: ${line}`);
      f.samples.set(key, v);
    } else {
      assert.fail(`not exposition format: ${JSON.stringify(line)}`);
    }
  }
  return families;
}

for (const mode of ACCEPT_MODES) {
  Deno.test(`serve({ metricsPath }) --accept=${mode}: Prometheus text that parses, counters monotonic across scrapes`, async () => {
    const root = await fixture();
    const cluster = await serve({
      root,
      hostname: "127.0.0.1",
      port: 0,
      workers: 2,
      accept: mode,
      verbose: false,
      metricsPath: "/.ringhttpd/metrics",
      log: () => {},
    });
    try {
      const port = cluster.addr.port;
      const scrape = async () => {
        const res = await fetch(`http://127.0.0.1:${port}/.ringhttpd/metrics`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
        return parseExposition(await res.text());
      };
      const first = await scrape();
      for (let i = 0; i < 5; i++) await get(port, "/a.txt");
      await get(port, "/nope");
      const second = await scrape();
      const sum = (f: Map<string, Family>, name: string, filter = "") =>
        [...f.get(name)!.samples].filter(([k]) => k.includes(filter))
          .reduce((a, [, v]) => a + v, 0);
      for (const [name, f] of first) {
        assert.equal(second.get(name)?.type, f.type, name);
        if (f.type !== "counter") continue;
        for (const [labels, v] of f.samples) {
          assert.ok(second.get(name)!.samples.get(labels)! >= v, `${name}${labels} went down`);
        }
      }
      assert.equal(first.get("ringhttpd_responses_total")!.type, "counter");
      assert.ok(
        sum(second, "ringhttpd_responses_total", 'code="2xx"') -
            sum(first, "ringhttpd_responses_total", 'code="2xx"') >= 6,
        "5 files and the first scrape",
      );
      assert.equal(
        sum(second, "ringhttpd_responses_total", 'code="4xx"') -
          sum(first, "ringhttpd_responses_total", 'code="4xx"'),
        1,
      );
      assert.ok(
        sum(second, "ringhttpd_response_bytes_total") >
          sum(first, "ringhttpd_response_bytes_total"),
      );
      assert.equal(sum(second, "ringhttpd_worker_up"), 2);
      assert.equal(second.has("ringhttpd_conn_ring_depth"), mode === "ring");
      // The job pool (one thread at least by default): depth, activity, slab.
      assert.ok(sum(second, "ringhttpd_pool_threads") >= 1);
      assert.equal(second.get("ringhttpd_pool_jobs_total")!.type, "counter");
      assert.equal(second.get("ringhttpd_pool_queue_depth")!.type, "gauge");
      assert.equal(second.get("ringhttpd_pool_active")!.type, "gauge");
      assert.ok(
        sum(second, "ringhttpd_pool_slab_free_chunks") <= sum(second, "ringhttpd_pool_slab_chunks"),
      );
      // The same figures through stats().
      const stats = cluster.stats();
      assert.equal(stats.workers.reduce((a, w) => a + w.responses[3], 0), 1);
      const post = await fetch(`http://127.0.0.1:${port}/.ringhttpd/metrics`, { method: "POST" });
      await post.body?.cancel();
      assert.equal(post.status, 405);
    } finally {
      await cluster.shutdown();
      await Deno.remove(root, { recursive: true });
    }
  });
}

Deno.test("serve(): no metrics page unless asked; a file it would hide is reported at start", async () => {
  const root = await fixture();
  await Deno.mkdir(`${root}/.well-known`);
  await Deno.writeTextFile(`${root}/.well-known/metrics`, "mine");
  const notices: string[] = [];
  try {
    const off = await serve({ root, hostname: "127.0.0.1", port: 0, workers: 1, dotfiles: true });
    try {
      const res = await fetch(`http://127.0.0.1:${off.addr.port}/.ringhttpd/metrics`);
      await res.body?.cancel();
      assert.equal(res.status, 404);
    } finally {
      await off.shutdown();
    }
    const on = await serve({
      root,
      hostname: "127.0.0.1",
      port: 0,
      workers: 1,
      dotfiles: true,
      metricsPath: "/.well-known/metrics",
      log: (l) => notices.push(l),
    });
    await on.shutdown();
    // The search index's progress lines aside.
    assert.deepEqual(notices.filter((l) => !l.startsWith("search index")), [
      "notice: the metrics page /.well-known/metrics hides the file of the same path under the root",
    ]);
    await assert.rejects(
      serve({ root, port: 0, metricsPath: "metrics" }),
      /metricsPath must start with "\/"/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve(): counters and the log ring carry on across a worker's replacement", async () => {
  const root = await fixture();
  const log = `${root}.log`;
  const cluster = await serve({
    root,
    hostname: "127.0.0.1",
    port: 0,
    workers: 1,
    accessLog: log,
    log: () => {},
  });
  try {
    const port = cluster.addr.port;
    for (let i = 0; i < 3; i++) assert.equal((await get(port, "/a.txt")).status, 200);
    (cluster as unknown as { crashWorker(i: number): void }).crashWorker(0);
    await until("the replacement", () => {
      const w = cluster.stats().workers[0];
      return Promise.resolve(w.restarts === 1 && w.alive ? w : undefined);
    });
    for (let i = 0; i < 2; i++) assert.equal((await get(port, "/nope")).status, 404);
    // The worker counts a response once it is written, which can be just
    // after the client has read it: wait for the count rather than race it.
    const w = await until("five counted responses", () => {
      const w = cluster.stats().workers[0];
      return Promise.resolve(w.logged >= 5 ? w : undefined);
    });
    assert.deepEqual(w.responses, [0, 3, 0, 2, 0]);
    assert.equal(w.logged, 5);
  } finally {
    await cluster.shutdown();
  }
  try {
    const lines = (await Deno.readTextFile(log)).split("\n").filter((l) => l !== "");
    assert.deepEqual(lines.map((l) => l.match(COMBINED)?.[4]), ["200", "200", "200", "404", "404"]);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(log);
  }
});

Deno.test("serve() ring mode: the remote address from getpeername, IPv6 and IPv4-mapped", async (t) => {
  const root = await fixture();
  const log = `${root}.log`;
  try {
    const cluster = await serve({
      root,
      hostname: "::",
      port: 0,
      workers: 1,
      accept: "ring",
      accessLog: log,
      log: () => {},
    });
    let v6 = true;
    try {
      await get(cluster.addr.port, "/a.txt"); // 127.0.0.1, mapped: ::ffff:127.0.0.1
      try {
        const res = await fetch(`http://[::1]:${cluster.addr.port}/a.txt`);
        await res.body?.cancel();
      } catch {
        v6 = false; // no IPv6 loopback on this machine
      }
    } finally {
      await cluster.shutdown();
    }
    const hosts = (await Deno.readTextFile(log)).split("\n").filter((l) => l).map((l) =>
      l.split(" ")[0]
    );
    assert.deepEqual(hosts, v6 ? ["127.0.0.1", "::1"] : ["127.0.0.1"]);
    if (!v6) {
      await t.step({ name: "IPv6 loopback unavailable: ::1 not checked", ignore: true, fn() {} });
    }
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(log).catch(() => {});
  }
});
