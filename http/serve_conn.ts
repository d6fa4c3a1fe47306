/**
 * The engine over a `Deno.Conn` (TLS connections, `--ring-io` off, tests):
 * a read loop with one pooled buffer and a write-all loop.
 *
 * @module
 */
import { type Handler, peerOfAddr } from "./types.ts";
import {
  type ConnectionHooks,
  type EngineOptions,
  HttpConnection,
  type Transport,
} from "./engine.ts";
import type { ConnectionSet } from "./connection_set.ts";
import { POOL_MAX } from "./_wire.ts";

/**
 * Read buffer of one `Deno.Conn`. A pending read pins it, idle connections
 * included, so it is small: a browser head fits; larger input just takes more
 * reads (the engine joins partial heads).
 */
const READ_SIZE = 8192;
/** Read buffers, taken back when the connection's read loop ends. */
const readPool: Uint8Array[] = [];

/**
 * Serves one accepted `Deno.Conn` until it closes: a read loop with one reused
 * buffer that waits for the engine (backpressure), and a write-all loop.
 *
 * @param conn The accepted connection; closed when done.
 * @param handler Answers each request.
 * @param set The thread's connection set (for deadlines and drain).
 * @param options Deadlines.
 * @param onResponse Per-response observer (access log, counters).
 * @returns A promise that resolves when the connection is closed.
 * @example Serve connections from a listener
 * ```ts
 * import { ConnectionSet } from "./connection_set.ts";
 * import { serveDenoConn } from "./serve_conn.ts";
 * import assert from "node:assert/strict";
 *
 * const set = new ConnectionSet();
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served: Promise<void>[] = [];
 * const accepting = (async () => {
 *   for await (const conn of listener) {
 *     served.push(
 *       serveDenoConn(conn, () => ({ status: 204, headers: [], body: [], length: 0 }), set),
 *     );
 *   }
 * })();
 * const res = await fetch(`http://127.0.0.1:${listener.addr.port}/`);
 * assert.equal(res.status, 204);
 * await res.body?.cancel();
 * listener.close();
 * await accepting;
 * await set.drain();
 * await Promise.all(served);
 * ```
 */
export async function serveDenoConn(
  conn: Deno.Conn,
  handler: Handler,
  set: ConnectionSet,
  options?: EngineOptions,
  onResponse?: ConnectionHooks["onResponse"],
): Promise<void> {
  let closed = false;
  let onClosed!: () => void;
  const closedPromise = new Promise<void>((resolve) => onClosed = resolve);
  const transport: Transport = {
    peer: peerOfAddr(conn.remoteAddr),
    async write(bytes) {
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // The peer reset it first.
      }
    },
  };
  const c: HttpConnection = new HttpConnection(transport, handler, options, {
    onClose() {
      set.remove(c);
      onClosed();
    },
    onResponse,
  });
  try {
    (conn as Deno.TcpConn).setNoDelay?.(true);
  } catch {
    // Not TCP, or already gone.
  }
  set.add(c);
  const buf = readPool.pop() ?? new Uint8Array(READ_SIZE);
  try {
    while (!c.closed) {
      const n = await conn.read(buf);
      if (n === null) break;
      const wait = c.feed(buf.subarray(0, n));
      if (wait !== undefined) await wait;
    }
  } catch {
    // Reset by the peer, or closed by the engine while reading.
  }
  // No read is pending once the loop is left, and the engine copied what it keeps.
  if (readPool.length < POOL_MAX) readPool.push(buf);
  c.end();
  await closedPromise;
}
