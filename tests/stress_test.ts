/**
 * Slow and idle clients, resource exhaustion and files changing under a
 * transfer (issue 6), against the real CLI in a subprocess. Long-running, so
 * these run only with `RINGHTTPD_STRESS=1` (`deno task test:stress`); the
 * plain test task lists them as ignored.
 *
 * Figures (probe p99, RSS, recovery times) are printed with a `stress:` prefix.
 *
 * @module
 */

import assert from "node:assert/strict";
import { countFds, readProc, readRss, startServer, type TestServer } from "./_server.ts";
import { concat, exchange, parseResponses, pool } from "./_raw.ts";
import { makeFixture } from "./_fixture.ts";

const STRESS = Deno.env.get("RINGHTTPD_STRESS") === "1";
const enc = new TextEncoder();
const dec = new TextDecoder();
const MiB = 1024 * 1024;

function report(what: string, figures: Record<string, unknown>): void {
  console.log(`stress: ${what} ${JSON.stringify(figures)}`);
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

const round = (x: number) => Math.round(x * 10) / 10;

/** GET /hello.txt on a fresh connection: status and latency in ms. */
async function probe(
  server: { hostname: string; port: number },
  timeoutMs = 5000,
): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  try {
    // Bounded including connect (a full backlog leaves a SYN unanswered).
    const ex = await within(
      exchange(
        server.port,
        "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        { timeoutMs, expectResponses: 1, settleMs: 0 },
      ),
      timeoutMs + 1000,
    );
    return { status: ex?.responses[0]?.status ?? 0, ms: performance.now() - t0 };
  } catch {
    return { status: -1, ms: performance.now() - t0 };
  }
}

/** Resolves with a promise's value, or `undefined` after `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Server-side TCP connections on `port` still ESTABLISHED (from /proc/net/tcp).
 * One the server has closed moves to FIN-WAIT-1 even while unsent data waits.
 */
function establishedOn(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  let read = 0;
  for (const f of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = readProc(f);
    if (text === undefined) continue;
    read++;
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 3 && cols[1].endsWith(`:${hex}`) && cols[3] === "01") n++;
    }
  }
  return read === 0 ? -1 : n;
}

/** Samples RSS every 100 ms until stopped; returns the peak. */
function rssSampler(pid: number): { stop: () => number } {
  let peak = readRss(pid);
  const id = setInterval(() => peak = Math.max(peak, readRss(pid)), 100);
  return {
    stop: () => {
      clearInterval(id);
      return Math.max(peak, readRss(pid));
    },
  };
}

/**
 * A client connection that we watch for the server closing it.
 * `closed` resolves (with the time) on EOF, reset, or a failed write.
 */
class Watched {
  readonly conn: Deno.Conn;
  readonly openedAt = performance.now();
  closedAt = 0;
  readonly closed: Promise<number>;
  #resolve!: (t: number) => void;
  #mine = false;

  constructor(conn: Deno.Conn, watchReads = true) {
    this.conn = conn;
    this.closed = new Promise((r) => this.#resolve = r);
    if (watchReads) this.#readLoop();
  }

  async #readLoop() {
    const buf = new Uint8Array(16 * 1024);
    try {
      while ((await this.conn.read(buf)) !== null) {
        // discard (an error response, e.g. 408, before the close)
      }
    } catch {
      // reset
    }
    this.markClosed();
  }

  markClosed() {
    if (this.closedAt === 0) {
      this.closedAt = performance.now();
      this.#resolve(this.closedAt);
    }
  }

  get lifetime(): number {
    return this.closedAt - this.openedAt;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.closedAt) return;
    try {
      await this.conn.write(bytes);
    } catch {
      this.markClosed();
    }
  }

  /** We close it ourselves (does not count as the server closing). */
  close() {
    this.#mine = true;
    try {
      this.conn.close();
    } catch {
      // closed
    }
  }

  get closedByUs(): boolean {
    return this.#mine;
  }
}

for (const mode of ["ring", "reuseport"]) {
  Deno.test({
    name:
      `slowloris (${mode} mode): 500 trickling connections are cut by --header-timeout; probes still get 200`,
    ignore: !STRESS,
    fn: async () => {
      const HEADER_TIMEOUT = 3;
      const N = 500;
      const ATTACK_MS = 10_000;
      await using fx = await makeFixture();
      await using server = await startServer({
        root: fx.root,
        flags: ["--accept", mode, "--header-timeout", String(HEADER_TIMEOUT)],
      });
      const slow: Watched[] = [];
      const connectErrors: string[] = [];
      let attacking = true;
      const reopening = new Set<Promise<void>>();
      const open = async () => {
        try {
          const w = new Watched(
            await Deno.connect({ hostname: server.hostname, port: server.port }),
          );
          slow.push(w);
          await w.write(enc.encode("GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Slow: "));
          // Keep N open while the attack lasts: reopen as the server cuts them.
          w.closed.then(() => {
            if (!attacking) return;
            const p = open();
            reopening.add(p);
            p.finally(() => reopening.delete(p));
          });
        } catch (e) {
          connectErrors.push(String(e));
        }
      };
      await pool(Array.from({ length: N }), 50, open);
      const ticker = setInterval(() => {
        for (const w of slow) if (!w.closedAt) w.write(enc.encode("a"));
      }, 1000);
      const probes: Array<{ status: number; ms: number }> = [];
      try {
        const end = performance.now() + ATTACK_MS;
        while (performance.now() < end) {
          const next = performance.now() + 200;
          probes.push(await probe(server));
          const wait = next - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      } finally {
        attacking = false;
        clearInterval(ticker);
      }
      await Promise.all([...reopening]);
      // Every slow connection still open must be cut by the header timeout.
      const deadlineMs = (HEADER_TIMEOUT + 10) * 1000;
      const stillOpen = slow.filter((w) => !w.closedAt);
      await Promise.all(stillOpen.map((w) => within(w.closed, deadlineMs)));
      const uncut = slow.filter((w) => !w.closedAt);
      for (const w of slow) w.close();

      const lifetimes = slow.filter((w) => w.closedAt).map((w) => w.lifetime);
      const ms = probes.map((p) => p.ms);
      const failedProbes = probes.filter((p) => p.status !== 200);
      report(`slowloris ${mode}`, {
        connections: slow.length,
        probes: probes.length,
        probeP50ms: round(percentile(ms, 50)),
        probeP99ms: round(percentile(ms, 99)),
        probeMaxMs: round(Math.max(...ms)),
        failedProbes: failedProbes.length,
        cutAfterP50s: round(percentile(lifetimes, 50) / 1000),
        cutAfterMaxS: round(Math.max(...lifetimes) / 1000),
        uncut: uncut.length,
        connectErrors: connectErrors.length,
      });
      assert.ok(!server.exited, server.diagnosis());
      assert.deepEqual(failedProbes, [], "every probe during the attack gets 200");
      assert.equal(uncut.length, 0, `${uncut.length} slow connections never cut`);
      assert.ok(
        percentile(ms, 99) < 2500,
        `probe p99 ${percentile(ms, 99)} ms (issue target 100 ms; asserted generously)`,
      );
      assert.ok(
        Math.max(...lifetimes) < deadlineMs,
        `a slow connection lived ${Math.max(...lifetimes)} ms`,
      );
      assert.ok(slow.length >= N, `only ${slow.length} slow connections opened`);
    },
  });
}

Deno.test({
  name:
    "idle: silent connections close after --header-timeout, kept-alive ones after --idle-timeout",
  ignore: !STRESS,
  fn: async () => {
    const HEADER = 6;
    const IDLE = 2;
    await using fx = await makeFixture();
    await using server = await startServer({
      root: fx.root,
      flags: ["--header-timeout", String(HEADER), "--idle-timeout", String(IDLE)],
    });
    const silent: Watched[] = [];
    const kept: Watched[] = [];
    const keptStart: number[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        silent.push(
          new Watched(await Deno.connect({ hostname: server.hostname, port: server.port })),
        );
      }
      for (let i = 0; i < 20; i++) {
        const conn = await Deno.connect({ hostname: server.hostname, port: server.port });
        await conn.write(enc.encode("GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
        // Read exactly one response, then go idle.
        const buf = new Uint8Array(4096);
        let got: Uint8Array = new Uint8Array(0);
        while (parseResponses(got).responses.filter((r) => r.complete).length < 1) {
          const n = await conn.read(buf);
          if (n === null) break;
          got = concat([got, buf.subarray(0, n)]);
        }
        assert.equal(parseResponses(got).responses[0]?.status, 200);
        keptStart.push(performance.now());
        kept.push(new Watched(conn));
      }
      await Promise.all([...silent, ...kept].map((w) => within(w.closed, (HEADER + 15) * 1000)));
    } finally {
      for (const w of [...silent, ...kept]) w.close();
    }
    const silentS = silent.map((w) => w.lifetime / 1000);
    const keptS = kept.map((w, i) => (w.closedAt - keptStart[i]) / 1000);
    report("idle", {
      headerTimeout: HEADER,
      idleTimeout: IDLE,
      silentClosedAfterS: [round(Math.min(...silentS)), round(Math.max(...silentS))],
      keptAliveClosedAfterS: [round(Math.min(...keptS)), round(Math.max(...keptS))],
    });
    assert.ok(silent.every((w) => w.closedAt > 0), "every silent connection closed");
    assert.ok(kept.every((w) => w.closedAt > 0), "every kept-alive connection closed");
    assert.ok(
      Math.min(...silentS) >= HEADER - 1.5,
      `silent closed early: ${Math.min(...silentS)} s`,
    );
    assert.ok(Math.max(...silentS) <= HEADER + 8, `silent closed late: ${Math.max(...silentS)} s`);
    assert.ok(Math.min(...keptS) >= IDLE - 1, `kept-alive closed early: ${Math.min(...keptS)} s`);
    assert.ok(
      Math.max(...keptS) < HEADER,
      `kept-alive closed after ${Math.max(...keptS)} s: idle timeout not applied`,
    );
  },
});

Deno.test({
  name:
    "slow reader: 4 stalled 64 MiB downloads hold bounded memory and are cut by --write-timeout",
  ignore: !STRESS,
  fn: async () => {
    const WRITE_TIMEOUT = 3;
    const SIZE = 64 * MiB;
    await using fx = await makeFixture();
    const chunk = new Uint8Array(MiB).map((_, i) => (i * 7) & 255);
    using file = Deno.openSync(`${fx.root}/big64.bin`, { write: true, create: true });
    for (let i = 0; i < SIZE / MiB; i++) file.writeSync(chunk);
    await using server = await startServer({
      root: fx.root,
      flags: ["--write-timeout", String(WRITE_TIMEOUT)],
    });
    assert.equal((await probe(server)).status, 200);
    const baseRss = server.rss();
    assert.ok(baseRss > 0, "cannot read the server's RSS from /proc");
    const baseConns = establishedOn(server.port);
    assert.ok(baseConns >= 0, "cannot read /proc/net/tcp");
    const sampler = rssSampler(server.pid);
    const conns: Deno.Conn[] = [];
    const firstBytes: number[] = [];
    let cutMs = NaN;
    let peak = 0;
    try {
      for (let i = 0; i < 4; i++) {
        const c = await Deno.connect({ hostname: server.hostname, port: server.port });
        conns.push(c);
        await c.write(enc.encode("GET /big64.bin HTTP/1.1\r\nHost: x\r\n\r\n"));
        // Read the head and a little body, then stop reading.
        const buf = new Uint8Array(64 * 1024);
        const n = await c.read(buf);
        firstBytes.push(n ?? 0);
      }
      const stalledAt = performance.now();
      // Wait for the server to close the 4 connections (polling /proc, bounded).
      const deadline = stalledAt + (WRITE_TIMEOUT + 20) * 1000;
      while (performance.now() < deadline) {
        if (establishedOn(server.port) <= baseConns) {
          cutMs = performance.now() - stalledAt;
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      peak = sampler.stop();
    }
    // Drain what the kernel buffered: the stream must end short of 64 MiB.
    const received: number[] = [];
    const endings: string[] = [];
    await Promise.all(conns.map(async (c) => {
      const buf = new Uint8Array(MiB);
      let total = 0;
      let how = "eof";
      try {
        while (true) {
          const n = await within(c.read(buf), 10_000);
          if (n === undefined) how = "still open";
          if (n === null || n === undefined) break;
          total += n;
        }
      } catch {
        how = "reset";
      }
      received.push(total);
      endings.push(how);
      c.close();
    }));
    report("slow reader", {
      writeTimeout: WRITE_TIMEOUT,
      baseRssMiB: round(baseRss / MiB),
      peakRssMiB: round(peak / MiB),
      extraRssMiB: round((peak - baseRss) / MiB),
      cutAfterS: round(cutMs / 1000),
      receivedMiB: received.map((r) => round(r / MiB)),
      endings,
    });
    assert.ok(!server.exited, server.diagnosis());
    assert.ok(Number.isFinite(cutMs), `stalled readers were never cut (${endings})`);
    assert.ok(!endings.includes("still open"), `a stalled connection was left open: ${endings}`);
    assert.ok(cutMs <= (WRITE_TIMEOUT + 10) * 1000, `cut after ${cutMs} ms`);
    assert.ok(received.every((r) => r < SIZE), `a stalled reader got everything: ${received}`);
    assert.ok(
      peak - baseRss < 64 * MiB,
      `extra RSS ${round((peak - baseRss) / MiB)} MiB >= 64 MiB`,
    );
    assert.equal((await probe(server)).status, 200);
  },
});

async function flood(
  server: TestServer,
  count: number,
): Promise<{ conns: Deno.Conn[]; failed: number; late: Promise<unknown> }> {
  const conns: Deno.Conn[] = [];
  const lateOnes: Promise<unknown>[] = [];
  let failed = 0;
  let stopped = false;
  await pool(Array.from({ length: count }), 32, async () => {
    const p = Deno.connect({ hostname: server.hostname, port: server.port });
    const c = await within(p.catch(() => null), 3000);
    if (c === undefined) {
      // SYN not answered (backlog full): close it whenever it completes.
      lateOnes.push(p.then((c) => stopped ? c.close() : conns.push(c)).catch(() => {}));
      return;
    }
    if (c === null) {
      failed++;
      return;
    }
    conns.push(c);
    await c.write(enc.encode("GET /hello.txt HTTP/1.1\r\nHost: x\r\n")).catch(() => {});
  });
  return {
    conns,
    failed,
    late: Promise.all(lateOnes).then(() => stopped = true),
  };
}

for (
  const variant of [
    { name: "default --max-conns", flags: [] as string[] },
    { name: "--max-conns 5000 (accept hits EMFILE)", flags: ["--max-conns", "5000"] },
    {
      name: "reuseport, --max-conns 5000",
      flags: ["--accept", "reuseport", "--max-conns", "5000"],
    },
  ]
) {
  Deno.test({
    name: `fd exhaustion (ulimit -n 256, ${variant.name}): stays up, serves again within 3 s`,
    ignore: !STRESS,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      await using fx = await makeFixture();
      await using server = await startServer({
        root: fx.root,
        flags: ["--header-timeout", "60", ...variant.flags],
        ulimitNoFile: 256,
      });
      assert.equal((await probe(server)).status, 200);
      const f = await flood(server, 600);
      const duringFlood = await probe(server, 2000);
      const serverFds = countFds(server.pid);
      const alive = !server.exited;
      const stop = performance.now();
      for (const c of f.conns) {
        try {
          c.close();
        } catch {
          // closed by the server
        }
      }
      let recoveredMs = NaN;
      let attempts = 0;
      while (performance.now() - stop < 15_000) {
        attempts++;
        const p = await probe(server, 1000);
        if (p.status === 200) {
          recoveredMs = performance.now() - stop;
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      // Connections that were stuck in SYN retries: close them as they land.
      await within(f.late, 30_000);
      for (const c of f.conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      report(`fd exhaustion ${variant.name}`, {
        opened: f.conns.length,
        connectFailed: f.failed,
        serverFdsAtPeak: serverFds,
        probeDuringFlood: duringFlood.status,
        recoveredMs: round(recoveredMs),
        attempts,
      });
      assert.ok(alive && !server.exited, `server died under fd exhaustion\n${server.diagnosis()}`);
      assert.ok(recoveredMs <= 3000, `served again after ${recoveredMs} ms\n${server.diagnosis()}`);
    },
  });
}

Deno.test({
  name:
    "files truncated, deleted or renamed mid-transfer: short on truncation, original bytes otherwise",
  ignore: !STRESS,
  fn: async (t) => {
    const SIZE = 128 * MiB;
    await using fx = await makeFixture();
    await using server = await startServer({ root: fx.root });
    const chunk = new Uint8Array(MiB).map((_, i) => (i * 13 + 5) & 255);
    const make = (name: string) => {
      using f = Deno.openSync(`${fx.root}/${name}`, { write: true, create: true, truncate: true });
      for (let i = 0; i < SIZE / MiB; i++) f.writeSync(chunk);
    };

    /** GET, read 1 MiB, run `act`, then read to the end and check every byte. */
    const transfer = async (name: string, act: () => void) => {
      const c = await Deno.connect({ hostname: server.hostname, port: server.port });
      const buf = new Uint8Array(MiB);
      let head: Uint8Array = new Uint8Array(0);
      let bodyLen = 0;
      let length = -1;
      let mismatch = -1;
      let acted = false;
      let ended = "eof";
      const t0 = performance.now();
      try {
        await c.write(enc.encode(`GET /${name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
        while (true) {
          const n = await within(c.read(buf), 20_000).catch(() => null);
          if (n === undefined) {
            ended = "hang";
            break;
          }
          if (n === null) break;
          let data: Uint8Array = buf.subarray(0, n);
          if (length < 0) {
            head = concat([head, data]);
            const text = dec.decode(head);
            const end = text.indexOf("\r\n\r\n");
            if (end < 0) continue;
            assert.match(text, /^HTTP\/1\.1 200 /);
            length = Number(text.match(/content-length: *(\d+)/i)?.[1]);
            data = head.subarray(end + 4);
          }
          for (let i = 0; i < data.length && mismatch < 0; i++) {
            if (data[i] !== chunk[(bodyLen + i) % MiB]) mismatch = bodyLen + i;
          }
          bodyLen += data.length;
          if (!acted && bodyLen >= MiB) {
            acted = true;
            act();
          }
        }
      } finally {
        c.close();
      }
      return { length, bodyLen, mismatch, ended, ms: performance.now() - t0 };
    };

    await t.step("truncate to 1 MiB: the transfer ends short, never padded", async () => {
      make("trunc.bin");
      const r = await transfer("trunc.bin", () => Deno.truncateSync(`${fx.root}/trunc.bin`, MiB));
      report("truncate mid-transfer", { ...r, bodyMiB: round(r.bodyLen / MiB) });
      assert.equal(r.length, SIZE);
      assert.notEqual(r.ended, "hang", "connection neither completed nor closed");
      assert.ok(r.bodyLen < SIZE, "a truncated file was reported complete");
      assert.equal(r.mismatch, -1, `byte ${r.mismatch} is not the file's (padding?)`);
      const next = await exchange(
        server.port,
        "GET /trunc.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      );
      assert.equal(next.responses[0]?.status, 200);
      assert.equal(next.responses[0].body.length, MiB, "next request sees the new size");
    });

    await t.step("unlink: the open transfer completes with the original bytes", async () => {
      make("gone.bin");
      const r = await transfer("gone.bin", () => Deno.removeSync(`${fx.root}/gone.bin`));
      report("unlink mid-transfer", { ...r, bodyMiB: round(r.bodyLen / MiB) });
      assert.equal(r.bodyLen, SIZE);
      assert.equal(r.mismatch, -1);
      const next = await exchange(
        server.port,
        "GET /gone.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      );
      assert.equal(next.responses[0]?.status, 404);
    });

    await t.step("rename: the open transfer completes; old name 404, new name 200", async () => {
      make("old.bin");
      const r = await transfer(
        "old.bin",
        () => Deno.renameSync(`${fx.root}/old.bin`, `${fx.root}/new.bin`),
      );
      report("rename mid-transfer", { ...r, bodyMiB: round(r.bodyLen / MiB) });
      assert.equal(r.bodyLen, SIZE);
      assert.equal(r.mismatch, -1);
      const old = await exchange(
        server.port,
        "GET /old.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      );
      assert.equal(old.responses[0]?.status, 404);
      const renamed = await exchange(
        server.port,
        "HEAD /new.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        {
          head: true,
        },
      );
      assert.equal(renamed.responses[0]?.status, 200);
      Deno.removeSync(`${fx.root}/new.bin`);
    });
    assert.ok(!server.exited, server.diagnosis());
    assert.equal((await probe(server)).status, 200);
  },
});

/** A served root with `many/`, a directory of 100,000 empty files. */
async function hundredThousand(fx: { root: string }): Promise<void> {
  const dir = `${fx.root}/many`;
  Deno.mkdirSync(dir);
  const made = await new Deno.Command("bash", {
    args: ["-c", `cd "$1" && seq -f 'f%06g.txt' 1 100000 | xargs touch`, "bash", dir],
  }).output();
  assert.ok(made.success, dec.decode(made.stderr));
}

Deno.test({
  name: "100,000-entry directory: the first page of its listing comes within 2 s, both formats",
  ignore: !STRESS,
  fn: async () => {
    await using fx = await makeFixture();
    await hundredThousand(fx);
    await using server = await startServer({ root: fx.root });
    const times: Record<string, number> = {};
    // Paginated directories are not cached: each request collects, sorts and renders.
    for (const query of ["", "?format=json", "?sort=mtime&order=desc"]) {
      const ex = await exchange(
        server.port,
        `GET /many/${query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        { timeoutMs: 60_000 },
      );
      assert.equal(ex.responses[0]?.status, 200, query);
      assert.ok(ex.bytes.length < 16 * MiB, `${query}: ${ex.bytes.length} bytes: not paginated?`);
      times[query || "html"] = round(ex.ms);
    }
    report("100k directory first page", times);
    // Measured 0.3-0.5 s on a loaded 2-core machine (bench/README.md); asserted generously.
    for (const [q, ms] of Object.entries(times)) {
      assert.ok(ms <= 2000 * 2, `${q}: first page took ${ms} ms (target 2 s)`);
    }
  },
});

Deno.test({
  name:
    "100,000-entry directory: first page fast, 8 listings at once keep small files fast and memory bounded",
  // Listings run on the job pool (issue 5): small files stay fast while 8
  // listings of 100,000 entries are collected, sorted and rendered there.
  ignore: !STRESS,
  fn: async () => {
    await using fx = await makeFixture();
    await hundredThousand(fx);
    await using server = await startServer({ root: fx.root });
    assert.equal((await probe(server)).status, 200);
    const baseRss = server.rss();
    assert.ok(baseRss > 0, "cannot read the server's RSS from /proc");
    const listing = async (query: string) => {
      const ex = await exchange(
        server.port,
        `GET /many/${query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        { timeoutMs: 60_000 },
      );
      return { status: ex.responses[0]?.status ?? 0, ms: ex.ms, bytes: ex.bytes.length };
    };
    const first = await listing("");
    const sampler = rssSampler(server.pid);
    const queries = [
      "?sort=size",
      "?sort=size&order=desc",
      "?sort=mtime",
      "?sort=mtime&order=desc",
      "?order=desc",
      "?format=json",
      "?format=json&sort=size&order=desc",
      "?page=10",
    ];
    const probes: Array<{ status: number; ms: number }> = [];
    let listing8: Array<{ status: number; ms: number; bytes: number }> = [];
    let peak = 0;
    try {
      let done = false;
      const probing = (async () => {
        while (!done) {
          probes.push(await probe(server));
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      listing8 = await Promise.all(queries.map(listing)).finally(() => done = true);
      await probing;
    } finally {
      peak = sampler.stop();
    }
    const ms = probes.map((p) => p.ms);
    report("100k directory", {
      firstPageMs: round(first.ms),
      firstPageKiB: round(first.bytes / 1024),
      eightListingsMaxMs: round(Math.max(...listing8.map((l) => l.ms))),
      probes: probes.length,
      probeP99ms: round(percentile(ms, 99)),
      extraRssMiB: round((peak - baseRss) / MiB),
    });
    assert.equal(first.status, 200);
    assert.ok(first.bytes < 16 * MiB, `first page is ${first.bytes} bytes: not paginated?`);
    assert.deepEqual(listing8.map((l) => l.status), queries.map(() => 200));
    assert.ok(probes.every((p) => p.status === 200), "small-file probes all 200");
    assert.ok(first.ms <= 2000 * 2, `first page took ${first.ms} ms (target 2 s)`);
    assert.ok(percentile(ms, 99) <= 500 * 4, `probe p99 ${percentile(ms, 99)} ms (target 500 ms)`);
    assert.ok(peak - baseRss <= 256 * MiB, `extra RSS ${round((peak - baseRss) / MiB)} MiB`);
  },
});

Deno.test({
  name:
    "pipelining flood: 100,000 requests from a client that does not read stay bounded in memory",
  ignore: !STRESS,
  fn: async () => {
    const N = 100_000;
    await using fx = await makeFixture();
    await using server = await startServer({ root: fx.root, flags: ["--write-timeout", "20"] });
    assert.equal((await probe(server)).status, 200);
    const baseRss = server.rss();
    assert.ok(baseRss > 0, "cannot read the server's RSS from /proc");
    const sampler = rssSampler(server.pid);
    const c = await Deno.connect({ hostname: server.hostname, port: server.port });
    const one = "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    const all = enc.encode(one.repeat(N));
    let peak = 0;
    let responses = 0;
    let bad = 0;
    let received = 0;
    const t0 = performance.now();
    try {
      const writing = (async () => {
        let off = 0;
        while (off < all.length) off += await c.write(all.subarray(off, off + 256 * 1024));
      })().catch(() => {});
      // Stall: the server must stop reading rather than buffer everything.
      await new Promise((r) => setTimeout(r, 3000));
      peak = readRss(server.pid);
      // Now read every response, in order.
      const buf = new Uint8Array(MiB);
      let carry = "";
      while (responses < N) {
        const n = await within(c.read(buf), 20_000).catch(() => null);
        if (n === null || n === undefined) break;
        received += n;
        carry += dec.decode(buf.subarray(0, n));
        let i: number;
        while ((i = carry.indexOf("\r\n\r\nhello\n")) >= 0) {
          if (!carry.startsWith("HTTP/1.1 200 ")) bad++;
          responses++;
          carry = carry.slice(i + "\r\n\r\nhello\n".length);
        }
      }
      await writing;
    } finally {
      peak = Math.max(peak, sampler.stop());
      c.close();
    }
    report("pipelining flood", {
      requests: N,
      responses,
      bad,
      receivedMiB: round(received / MiB),
      seconds: round((performance.now() - t0) / 1000),
      extraRssMiB: round((peak - baseRss) / MiB),
    });
    assert.ok(!server.exited, server.diagnosis());
    assert.equal(bad, 0);
    assert.equal(responses, N, "every pipelined request answered once, in order");
    assert.ok(peak - baseRss < 64 * MiB, `extra RSS ${round((peak - baseRss) / MiB)} MiB`);
    assert.equal((await probe(server)).status, 200);
  },
});

/** The cluster's test entry (stdin hooks `crash <i>`, `stats`), when present. */
const CLUSTER_ENTRY = Deno.env.get("RINGHTTPD_CLUSTER_ENTRY") ??
  new URL("../workers/_cluster_entry.ts", import.meta.url).pathname;
const hasClusterEntry = (() => {
  try {
    return Deno.statSync(CLUSTER_ENTRY).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name:
    "worker crash under load: only that worker's connections fail, a replacement serves within 1 s",
  // The CLI has no crash hook; workers/_cluster_entry.ts (the cluster's test
  // entry) has one on stdin. Skipped when that file is absent.
  ignore: !STRESS || !hasClusterEntry,
  fn: async () => {
    await using fx = await makeFixture();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-ffi",
        "--allow-sys=hostname",
        CLUSTER_ENTRY,
        JSON.stringify({ root: fx.root, hostname: "127.0.0.1", port: 0, workers: 2 }),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdin = child.stdin.getWriter();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let errText = "";
    const errDrain = (async () => {
      for (let r = await stderr.read(); !r.done; r = await stderr.read()) errText += r.value;
    })();
    let buffered = "";
    const nextLine = async (): Promise<string> => {
      while (!buffered.includes("\n")) {
        const r = await lines.read();
        if (r.done) throw new Error(`entry exited; stderr:\n${errText}`);
        buffered += r.value;
      }
      const i = buffered.indexOf("\n");
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      return line;
    };
    const stats = async () => {
      await stdin.write(enc.encode("stats\n"));
      return JSON.parse(await nextLine()) as {
        workers: Array<{ alive: boolean; restarts: number }>;
      };
    };
    try {
      const banner = await nextLine();
      const port = Number(banner.match(/:(\d+)\//)?.[1]);
      assert.ok(port > 0, banner);
      const server = { hostname: "127.0.0.1", port };
      const results: Array<{ t: number; ok: boolean }> = [];
      let running = true;
      const loops = Array.from({ length: 4 }, async () => {
        while (running) {
          const p = await probe(server, 3000);
          results.push({ t: performance.now(), ok: p.status === 200 });
        }
      });
      await new Promise((r) => setTimeout(r, 1500));
      const crashAt = performance.now();
      await stdin.write(enc.encode("crash 0\n"));
      let replacedMs = NaN;
      while (performance.now() - crashAt < 10_000) {
        const s = await stats();
        if (s.workers[0].restarts >= 1 && s.workers[0].alive) {
          replacedMs = performance.now() - crashAt;
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 1500));
      running = false;
      await Promise.all(loops);
      const failed = results.filter((r) => !r.ok);
      const failedLate = failed.filter((r) => r.t > crashAt + 3000 + 1000);
      // The supervisor's own figure: from noticing the death to the replacement ready.
      const logged = Number(errText.match(/worker 0 replaced in (\d+) ms/)?.[1] ?? NaN);
      report("worker crash under load", {
        requests: results.length,
        failed: failed.length,
        replacedMs: round(replacedMs),
        supervisorMs: logged,
      });
      // Issue target 1 s; measured 0.06-0.8 s (p50 ~0.1 s) on a loaded 2-core
      // machine (bench/crash_restart.ts), so asserted generously.
      assert.ok(replacedMs <= 3000, `replacement after ${replacedMs} ms (target 1 s)`);
      assert.ok(failed.length <= 8, `${failed.length} failed requests (4 client loops)`);
      assert.deepEqual(failedLate, [], "failures long after the crash");
    } finally {
      await stdin.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
      await child.status;
      await lines.cancel().catch(() => {});
      await errDrain.catch(() => {});
    }
  },
});
