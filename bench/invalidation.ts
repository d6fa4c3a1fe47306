/**
 * Invalidation latency: "write a file -> every worker serves the new bytes".
 *
 * Starts the real cluster in a subprocess (2 workers unless `--workers N`),
 * opens 2 keep-alive connections per worker (ring mode hands each new
 * connection to the least-loaded worker, so every worker holds some), warms
 * the cache of `/f.txt` on all of them, then repeats: write new bytes of the
 * same length (so neither size nor a coarse mtime would give the change away),
 * poll every connection until each one answers the new bytes, record the
 * time since the write began. Prints p50 / p99 / max.
 *
 * ```sh
 * deno task bench:invalidation [--writes 200] [--workers 2] [--accept ring|reuseport]
 * ```
 *
 * Reuseport mode spreads connections by hash: a worker may end up with none,
 * and then the figures cover fewer workers (the 2xx line shows it).
 *
 * @module
 */
import { startCluster } from "../tests/_harness.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One response as read by {@linkcode KeepAlive}. */
export interface Got {
  status: number;
  body: Uint8Array;
}

/** A minimal HTTP/1.1 keep-alive client: one GET at a time, Content-Length bodies only. */
export class KeepAlive {
  readonly #conn: Deno.TcpConn;
  #buf = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /**
   * @param port on 127.0.0.1
   * @returns a connected client
   */
  static async open(port: number): Promise<KeepAlive> {
    return new KeepAlive(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async #more(): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) throw new Error("connection closed by the server");
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
  }

  /**
   * @param path request target
   * @returns status and body
   */
  async get(path: string): Promise<Got> {
    const req = enc.encode(`GET ${path} HTTP/1.1\r\nHost: bench\r\n\r\n`);
    for (let off = 0; off < req.length;) off += await this.#conn.write(req.subarray(off));
    let end: number;
    while ((end = dec.decode(this.#buf.subarray(0, 16384)).indexOf("\r\n\r\n")) < 0) {
      await this.#more();
    }
    const head = dec.decode(this.#buf.subarray(0, end));
    const status = Number(head.slice(9, 12));
    const m = head.match(/\r\ncontent-length: *(\d+)/i);
    if (!m) throw new Error(`no Content-Length in ${JSON.stringify(head)}`);
    const total = end + 4 + Number(m[1]);
    while (this.#buf.length < total) await this.#more();
    const body = this.#buf.slice(end + 4, total);
    this.#buf = this.#buf.slice(total);
    return { status, body };
  }

  /** Closes the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/**
 * Polls every client with GET `path` until `ok` holds for each one's answer.
 *
 * @param clients one or more per worker
 * @param path the request target
 * @param ok what a fresh answer looks like
 * @param timeoutMs give up (throw) after this long
 * @returns ms from the call until the last client saw a fresh answer
 */
export async function untilAll(
  clients: KeepAlive[],
  path: string,
  ok: (got: Got) => boolean,
  timeoutMs = 10_000,
): Promise<number> {
  const t0 = performance.now();
  await Promise.all(clients.map(async (c) => {
    while (true) {
      const got = await c.get(path);
      if (ok(got)) return;
      if (performance.now() - t0 > timeoutMs) {
        throw new Error(
          `${path}: still ${got.status} ${JSON.stringify(dec.decode(got.body).slice(0, 80))} ` +
            `after ${timeoutMs} ms`,
        );
      }
    }
  }));
  return performance.now() - t0;
}

/** The q-quantile of sorted values (nearest rank). */
function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function argOf(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

if (import.meta.main) {
  const writes = argOf("writes", 200);
  const workers = argOf("workers", 2);
  const at = Deno.args.indexOf("--accept");
  const accept = at >= 0 ? Deno.args[at + 1] : "ring";
  const root = await Deno.makeTempDir({ prefix: "ringhttpd_inval_bench_" });
  const file = `${root}/f.txt`;
  const content = (i: number) => enc.encode(`version ${String(i).padStart(8, "0")}\n`);
  await Deno.writeFile(file, content(0));
  try {
    {
      await using server = await startCluster({ root, workers, accept, metricsPath: "/.m" });
      const { port } = server;
      const clients: KeepAlive[] = [];
      for (let i = 0; i < 2 * workers; i++) clients.push(await KeepAlive.open(port));
      try {
        const want = (i: number) => (g: Got) =>
          g.status === 200 && dec.decode(g.body) === dec.decode(content(i));
        await untilAll(clients, "/f.txt", want(0));
        const ms: number[] = [];
        for (let i = 1; i <= writes; i++) {
          const t0 = performance.now();
          await Deno.writeFile(file, content(i));
          await untilAll(clients, "/f.txt", want(i));
          ms.push(performance.now() - t0);
        }
        const metrics = dec.decode((await clients[0].get("/.m")).body);
        const applied = [
          ...metrics.matchAll(/^ringhttpd_invalidations_total\{worker="(\d+)"\} (\d+)/gm),
        ]
          .map((m) => `worker ${m[1]}: ${m[2]}`);
        const served = [
          ...metrics.matchAll(/^ringhttpd_responses_total\{worker="(\d+)",code="2xx"\} (\d+)/gm),
        ]
          .map((m) => `worker ${m[1]}: ${m[2]}`);
        ms.sort((a, b) => a - b);
        const f = (x: number) => x.toFixed(1);
        console.log(
          `invalidation latency, ${writes} writes, ${workers} workers (${accept} mode), ` +
            `${clients.length} keep-alive connections:`,
        );
        console.log(
          `  p50 ${f(quantile(ms, 0.5))} ms  p99 ${f(quantile(ms, 0.99))} ms  max ${
            f(ms[ms.length - 1])
          } ms`,
        );
        console.log(`  invalidations applied: ${applied.join(", ")}`);
        console.log(`  2xx responses: ${served.join(", ")}`);
      } finally {
        for (const c of clients) c.close();
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}
