/**
 * The cluster end to end: a real server in a subprocess (`_cluster_entry.ts`,
 * which calls `serve()`), on port 0, spoken to over raw sockets.
 */
import assert from "node:assert/strict";
import { serve } from "../serve.ts";

const ENTRY = new URL("./_cluster_entry.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const HOST = "127.0.0.1";
const BIG = 48 * 1024 * 1024;

const root = await Deno.makeTempDir({ prefix: "ringhttpd_cluster_" });
await Deno.writeTextFile(`${root}/a.txt`, "hello");
await Deno.mkdir(`${root}/sub`);
await Deno.writeTextFile(`${root}/sub/b.txt`, "b-file");
{
  const big = new Uint8Array(BIG);
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
  await Deno.writeFile(`${root}/big.bin`, big);
}
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

/** A server subprocess, its port, and its stdout lines. */
class Server implements AsyncDisposable {
  port = 0;
  mode = "";
  stderr = "";
  #lines: string[] = [];
  #waiters: (() => void)[] = [];
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #done: Promise<unknown>;
  readonly proc: Deno.ChildProcess;
  #exited = false;

  constructor(options: Record<string, unknown>, perms: string[], fdLimit?: number) {
    const args = [
      "run",
      "--config",
      CONFIG,
      "--unstable-net",
      ...perms,
      ENTRY,
      JSON.stringify(options),
    ];
    // With a file limit: sh lowers it, then execs deno with the same args.
    this.proc = new Deno.Command(fdLimit ? "sh" : Deno.execPath(), {
      args: fdLimit
        ? ["-c", `ulimit -n ${fdLimit} && exec "$0" "$@"`, Deno.execPath(), ...args]
        : args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.proc.stdin.getWriter();
    this.proc.status.then(() => this.#exited = true);
    this.#done = Promise.all([
      this.#read(this.proc.stdout, (l) => {
        this.#lines.push(l);
        for (const w of this.#waiters.splice(0)) w();
      }),
      this.#read(this.proc.stderr, (l) => this.stderr += l + "\n"),
    ]);
  }

  async #read(stream: ReadableStream<Uint8Array>, onLine: (l: string) => void): Promise<void> {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    }
    if (buf) onLine(buf);
  }

  /** Waits for (and removes) the first stdout line matching `re`. */
  line(re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    return this.#until(
      () => {
        const i = this.#lines.findIndex((l) => re.test(l));
        return i >= 0 ? this.#lines.splice(i, 1)[0].match(re)! : undefined;
      },
      `no line matching ${re}`,
      timeoutMs,
    );
  }

  /** Waits until stderr matches `re`. */
  logged(re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    return this.#until(
      () => this.stderr.match(re) ?? undefined,
      `stderr never matched ${re}`,
      timeoutMs,
    );
  }

  async #until<T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const until = Date.now() + timeoutMs;
    while (true) {
      const found = check();
      if (found !== undefined) return found;
      const left = until - Date.now();
      if (this.#exited) {
        await this.#done; // the last lines may still be in the pipe
        const last = check();
        if (last !== undefined) return last;
      }
      if (left <= 0 || this.#exited) throw new Error(`${what}; stderr:\n${this.stderr}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((r) => this.#waiters.push(r)),
        new Promise<void>((r) => timer = setTimeout(r, Math.min(left, 500))),
        this.proc.status,
      ]);
      clearTimeout(timer);
    }
  }

  async started(): Promise<this> {
    const m = await this.line(/^Listening on http:\/\/[^:]+:(\d+)\/ \(\d+ workers, (\w+) mode\)/);
    this.port = Number(m[1]);
    this.mode = m[2];
    return this;
  }

  async command(cmd: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(cmd + "\n"));
  }

  async stats(): Promise<{ workers: { alive: boolean; open: number; restarts: number }[] }> {
    await this.command("stats");
    return JSON.parse((await this.line(/^\{.*\}$/))[0]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.proc.kill("SIGKILL");
    } catch { /* already exited */ }
    await this.proc.status;
    await this.#stdin.close().catch(() => {});
    await this.#done;
  }
}

const PERMS = [`--allow-net=${HOST}`, "--allow-read", "--allow-ffi"];

function start(
  options: Record<string, unknown>,
  perms = PERMS,
  fdLimit?: number,
): Promise<Server> {
  return new Server({ root, hostname: HOST, port: 0, workers: 2, ...options }, perms, fdLimit)
    .started();
}

/** Writes `request` on a new connection and reads until the server closes it. */
async function exchange(port: number, request: string, timeoutMs = 20_000): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: HOST, port });
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    await conn.write(new TextEncoder().encode(request));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const text = new TextDecoder().decode(
    await exchange(port, `GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`),
  );
  const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
  assert.ok(m, `no status line in ${JSON.stringify(text.slice(0, 200))}`);
  return { status: Number(m[1]), body: text.slice(text.indexOf("\r\n\r\n") + 4) };
}

const MODES = [
  { accept: "ring" },
  { accept: "reuseport" },
];

for (const mode of MODES) {
  const name = mode.accept;
  Deno.test(`${name} mode serves a file, a listing and a 404`, async () => {
    await using server = await start(mode);
    assert.equal(server.mode, mode.accept);
    assert.deepEqual(await get(server.port, "/a.txt"), { status: 200, body: "hello" });
    const listing = await get(server.port, "/sub/");
    assert.equal(listing.status, 200);
    assert.match(listing.body, /b\.txt/);
    assert.equal((await get(server.port, "/nope.txt")).status, 404);
  });
}

Deno.test("ring mode without --allow-ffi falls back to reuseport with a one-line notice", async () => {
  await using server = await start({ accept: "ring" }, [`--allow-net=${HOST}`, "--allow-read"]);
  assert.equal(server.mode, "reuseport");
  // The search index's progress lines aside, the notice is the only line.
  const lines = server.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("search index"));
  assert.deepEqual(lines, ["notice: ring mode needs --allow-ffi; using --accept=reuseport"]);
  assert.equal((await get(server.port, "/a.txt")).status, 200);
});

Deno.test("an HTTP/1.0 request gets its response and a closed connection", async () => {
  await using server = await start({});
  // exchange() returns only once the server has closed the connection.
  const text = new TextDecoder().decode(await exchange(server.port, "GET /a.txt HTTP/1.0\r\n\r\n"));
  assert.match(text, /^HTTP\/1\.[01] 200/);
  assert.ok(text.endsWith("\r\n\r\nhello"), text);
});

Deno.test("pipelined requests are answered in order", async () => {
  await using server = await start({});
  const req = (path: string, last = false) =>
    `GET ${path} HTTP/1.1\r\nHost: t\r\n${last ? "Connection: close\r\n" : ""}\r\n`;
  const text = new TextDecoder().decode(
    await exchange(server.port, req("/a.txt") + req("/sub/b.txt") + req("/nope", true)),
  );
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [200, 200, 404]);
  assert.ok(text.indexOf("hello") < text.indexOf("b-file"), text);
});

Deno.test("a header-stalled connection is closed after the header timeout while others are served", async () => {
  await using server = await start({ headerTimeoutMs: 300 });
  const stalled = await Deno.connect({ hostname: HOST, port: server.port });
  try {
    await stalled.write(new TextEncoder().encode("GET /a.txt HTTP/1.1\r\nHost: t\r\n"));
    assert.deepEqual(await get(server.port, "/a.txt"), { status: 200, body: "hello" });
    // The server closes it (maybe after a 408): the read loop ends; the bound
    // is generous, the timeout is 300 ms.
    const timer = setTimeout(() => stalled.close(), 15_000);
    const started = Date.now();
    const buf = new Uint8Array(4096);
    let text = "";
    while (true) {
      const n = await stalled.read(buf).catch(() => null);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    clearTimeout(timer);
    assert.ok(Date.now() - started < 15_000, "the stalled connection was not closed");
    assert.ok(text === "" || text.startsWith("HTTP/1.1 408"), text);
  } finally {
    try {
      stalled.close();
    } catch { /* already closed */ }
  }
});

/** Sends one keep-alive request on `conn` and reads its whole response. */
async function keepAliveGet(conn: Deno.Conn, path: string): Promise<string> {
  await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`));
  const buf = new Uint8Array(4096);
  let text = "";
  while (
    !/\r\n\r\n/.test(text) || text.length < text.indexOf("\r\n\r\n") + 4 + contentLength(text)
  ) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`closed after ${JSON.stringify(text)}`);
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

function contentLength(text: string): number {
  return Number(text.match(/content-length: (\d+)/i)?.[1] ?? 0);
}

for (const mode of MODES.slice(0, 1)) {
  Deno.test(`a crashed worker is replaced, its connections are closed, others keep being served`, async () => {
    await using server = await start({ ...mode, idleTimeoutMs: 60_000 });
    // One kept-alive connection per worker (least-loaded dispatch).
    const conns = [
      await Deno.connect({ hostname: HOST, port: server.port }),
      await Deno.connect({ hostname: HOST, port: server.port }),
    ];
    try {
      for (const c of conns) assert.match(await keepAliveGet(c, "/a.txt"), /^HTTP\/1\.1 200/);
      assert.deepEqual((await server.stats()).workers.map((w) => w.open), [1, 1]);
      await server.command("crash 0");
      // Connections the worker held when it crashed die with it; every one
      // accepted after the supervisor saw the crash must be served.
      await server.logged(/worker 0 died .*; replacing it/);
      for (let i = 0; i < 20; i++) {
        assert.deepEqual(await get(server.port, "/a.txt"), { status: 200, body: "hello" });
      }
      // The dead worker's connection is closed (EOF), not left hanging.
      const buf = new Uint8Array(64);
      const timer = setTimeout(() => conns.forEach((c) => c.close()), 15_000);
      const first = await Promise.race(conns.map((c) => c.read(buf).catch(() => "error")));
      clearTimeout(timer);
      assert.equal(first, null);
      const until = Date.now() + 15_000;
      let stats;
      do {
        stats = await server.stats();
      } while (!(stats.workers[0].restarts === 1 && stats.workers[0].alive) && Date.now() < until);
      assert.equal(stats.workers[0].restarts, 1);
      assert.equal(stats.workers[0].alive, true);
      for (let i = 0; i < 10; i++) assert.equal((await get(server.port, "/sub/b.txt")).status, 200);
    } finally {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed by the timer */ }
      }
    }
  });
}

for (const mode of MODES) {
  const name = mode.accept;
  Deno.test(`${name}: SIGTERM during a large download lets it finish, then the process exits 0`, async () => {
    await using server = await start(mode);
    const conn = await Deno.connect({ hostname: HOST, port: server.port });
    try {
      await conn.write(
        new TextEncoder().encode("GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
      );
      const buf = new Uint8Array(1 << 20);
      let total = await conn.read(buf) ?? 0;
      assert.ok(total > 0);
      const head = new TextDecoder().decode(buf.subarray(0, Math.min(total, 512)));
      const headLength = head.indexOf("\r\n\r\n") + 4;
      assert.match(head, /^HTTP\/1\.1 200/);
      // The response is far larger than the socket buffers: it is in flight now.
      server.proc.kill("SIGTERM");
      // The listener closes first, then the workers drain: once connecting is
      // refused, the drain has begun while this response is still unread.
      const until = Date.now() + 15_000;
      while (Date.now() < until) {
        try {
          (await Deno.connect({ hostname: HOST, port: server.port })).close();
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        total += n;
      }
      assert.equal(total - headLength, BIG);
      const status = await server.proc.status;
      assert.equal(status.code, 0, server.stderr);
    } finally {
      conn.close();
    }
  });
}

for (const mode of MODES) {
  const name = mode.accept;
  Deno.test(`${name}: a client that stops reading is cut off after the write timeout`, async () => {
    await using server = await start({ ...mode, writeTimeoutMs: 300 });
    const conn = await Deno.connect({ hostname: HOST, port: server.port });
    try {
      await conn.write(
        new TextEncoder().encode("GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
      );
      // Not reading: the server's write stalls, then the deadline closes it.
      const until = Date.now() + 15_000;
      const openNow = async () => (await server.stats()).workers.reduce((a, w) => a + w.open, 0);
      while (await openNow() === 0 && Date.now() < until); // taken by a worker
      let open;
      do {
        open = await openNow();
      } while (open !== 0 && Date.now() < until);
      assert.equal(open, 0, "the stalled connection is still open");
      let total = 0;
      const buf = new Uint8Array(1 << 20);
      while (true) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) break;
        total += n;
      }
      assert.ok(total < BIG, `got all ${total} bytes`);
    } finally {
      conn.close();
    }
  });
}

Deno.test("2,000 concurrent connections with maxConns 100 are all served", async () => {
  // At the cap the server sheds connections that sent nothing for 100 ms
  // (nginx does likewise): a client that got no byte back retries, as
  // browsers do. A burst from this one busy process can be that slow.
  let retries = 0;
  const getOrRetry = async (port: number, path: string) => {
    for (let i = 0;; i++) {
      const text = new TextDecoder().decode(
        await exchange(port, `GET ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`),
      );
      if (text === "" && i < 5) {
        retries++;
        continue;
      }
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
      assert.ok(m, `no status line in ${JSON.stringify(text.slice(0, 200))}`);
      return { status: Number(m[1]), body: text.slice(text.indexOf("\r\n\r\n") + 4) };
    }
  };
  await using server = await start({ maxConns: 100 });
  let running = true;
  let peak = 0;
  const watch = (async () => {
    while (running) {
      const s = await server.stats();
      peak = Math.max(peak, s.workers.reduce((a, w) => a + w.open, 0));
    }
  })();
  const results = await Promise.all(
    Array.from({ length: 2000 }, () => getOrRetry(server.port, "/a.txt")),
  ).finally(() => running = false);
  await watch;
  if (retries > 0) {
    console.log(`  ${retries} connections shed before their request arrived, retried`);
  }
  assert.equal(results.filter((r) => r.status === 200 && r.body === "hello").length, 2000);
  assert.ok(peak <= 100, `open + queued reached ${peak}`);
});

Deno.test("a crashed acceptor is replaced on the same listening socket", async () => {
  await using server = await start({});
  assert.equal((await get(server.port, "/a.txt")).status, 200);
  await server.command("crash-acceptor");
  await server.logged(/acceptor died: .*test hook.*; restarting it/);
  // Meanwhile connections wait in the backlog; then they are served.
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(await get(server.port, "/a.txt"), { status: 200, body: "hello" });
  }
  assert.doesNotMatch(server.stderr, /restart failed/);
});

Deno.test("ring mode spreads 4 kept-alive connections over 2 workers 2 and 2", async () => {
  await using server = await start({});
  const conns: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const c = await Deno.connect({ hostname: HOST, port: server.port });
      conns.push(c);
      assert.match(await keepAliveGet(c, "/a.txt"), /^HTTP\/1\.1 200/);
    }
    assert.deepEqual((await server.stats()).workers.map((w) => w.open), [2, 2]);
  } finally {
    for (const c of conns) c.close();
  }
});

for (const mode of MODES) {
  const name = mode.accept;
  Deno.test(`${name}: running out of file descriptors never stops the server`, async () => {
    // 64 fds in all, and a cap that does not protect them: accept() fails
    // with EMFILE while the clients below hold their connections.
    await using server = await start({ ...mode, maxConns: 1000 }, PERMS, 64);
    const held: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 80; i++) {
        held.push(await Deno.connect({ hostname: HOST, port: server.port }));
      }
      const until = Date.now() + 15_000;
      let stats;
      do {
        stats = await server.stats() as unknown as { emfile: number };
      } while (stats.emfile === 0 && Date.now() < until);
      assert.ok(stats.emfile > 0, "accept() never hit EMFILE");
    } finally {
      for (const c of held) c.close();
    }
    // The held connections close; the server serves again.
    assert.deepEqual(await get(server.port, "/a.txt"), { status: 200, body: "hello" });
    assert.equal(server.proc.pid > 0 && (await Promise.race([server.proc.status, null])), null);
  });
}

Deno.test("serve() rejects a missing root before any worker starts", async () => {
  await assert.rejects(
    serve({ root: `${root}/missing`, port: 0 }),
    new Error(`root "${root}/missing" does not exist`),
  );
  await assert.rejects(
    serve({ root: `${root}/a.txt`, port: 0 }),
    new Error(`root "${root}/a.txt" is not a directory`),
  );
});
