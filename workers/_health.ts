/**
 * The health endpoint (site rules, #13): `GET`/`HEAD` of exactly the health
 * path (query ignored) answers a small JSON status for load balancers and
 * Kubernetes probes, from the words the supervisor already shares (each
 * worker slot's ALIVE, the pool's POOL_LIVE): no I/O, no message to another
 * thread, so it answers even while the disk or the pool is stuck.
 *
 * ```json
 * {"status":"ok","workers":{"alive":2,"total":2},"pool":{"alive":1,"total":1}}
 * ```
 *
 * 200 while this worker answers and the job pool (when there is one) has a
 * live thread: `"ok"` when every worker and pool thread is up, `"degraded"`
 * while one is being replaced (a pool thread not started yet, since they
 * start on demand, counts as alive). 503 (`"down"`) when no pool thread is alive:
 * listings and compression would fail. Like the metrics page it is answered
 * in front of the file handler: it hides a file of the same path, and it needs
 * no credentials (it tells counts, nothing of the files).
 *
 * @module
 */
import type { Handler, Reply, RequestHead } from "../http/types.ts";
import { ALIVE, POOL_LIVE, slot } from "./_shared.ts";

const encoder = new TextEncoder();
const NOT_ALLOWED = encoder.encode("405 Method Not Allowed\n");

/** What the health page says. */
export interface Health {
  status: "ok" | "degraded" | "down";
  workers: { alive: number; total: number };
  /** null without a job pool. */
  pool: { alive: number; total: number } | null;
}

/**
 * Reads the health figures.
 *
 * @param ctl the control words
 * @param workers worker slots
 * @param poolThreads job pool threads (0: none)
 * @returns the status
 * @example
 * ```ts
 * import { readHealth } from "./_health.ts";
 * import { allocateControl, ALIVE, slot } from "./_shared.ts";
 * import assert from "node:assert/strict";
 * const ctl = allocateControl(2);
 * Atomics.store(ctl, slot(0, ALIVE), 1);
 * assert.deepEqual(readHealth(ctl, 2, 0), {
 *   status: "degraded", workers: { alive: 1, total: 2 }, pool: null,
 * });
 * ```
 */
export function readHealth(ctl: Int32Array, workers: number, poolThreads: number): Health {
  let alive = 0;
  for (let i = 0; i < workers; i++) alive += Atomics.load(ctl, slot(i, ALIVE)) === 1 ? 1 : 0;
  const pool = poolThreads > 0
    ? {
      alive: Math.max(0, Math.min(poolThreads, Atomics.load(ctl, POOL_LIVE))),
      total: poolThreads,
    }
    : null;
  const status = pool !== null && pool.alive === 0
    ? "down"
    : alive === workers && (pool === null || pool.alive === pool.total)
    ? "ok"
    : "degraded";
  return { status, workers: { alive, total: workers }, pool };
}

/**
 * Wraps `inner` so that `GET`/`HEAD` of exactly `path` answers the health
 * JSON; other methods there get 405. Every other request goes to `inner`.
 *
 * @param path the health path, e.g. `/healthz`
 * @param ctl the control words
 * @param workers worker slots
 * @param poolThreads job pool threads (0: none)
 * @param inner the handler behind it
 * @param nosniff send `X-Content-Type-Options: nosniff` (the site rule)
 * @returns the wrapped handler
 */
export function healthHandler(
  path: string,
  ctl: SharedArrayBuffer,
  workers: number,
  poolThreads: number,
  inner: Handler,
  nosniff = true,
): Handler {
  const words = new Int32Array(ctl);
  const extra: Array<[string, string]> = nosniff ? [["X-Content-Type-Options", "nosniff"]] : [];
  return (req: RequestHead) => {
    if (req.path !== path) return inner(req);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return {
        status: 405,
        headers: [["Allow", "GET, HEAD"], ["Content-Type", "text/plain; charset=utf-8"]],
        body: [NOT_ALLOWED],
        length: NOT_ALLOWED.length,
      } satisfies Reply;
    }
    const h = readHealth(words, workers, poolThreads);
    const body = encoder.encode(JSON.stringify(h) + "\n");
    return {
      status: h.status === "down" ? 503 : 200,
      headers: [
        ["Content-Type", "application/json"],
        ["Cache-Control", "no-store"],
        ...extra,
      ],
      body: [body],
      length: body.length,
    } satisfies Reply;
  };
}
