/**
 * The engine's seams, as types: where its output goes ({@linkcode Transport}),
 * its deadlines ({@linkcode EngineOptions}) and its observers
 * ({@linkcode ConnectionHooks}). Re-exported by `engine.ts`.
 *
 * @module
 */
import type { Peer, RequestHead } from "./types.ts";
import type { BodyAcceptance } from "../write/body.ts";

/**
 * Where the engine's output goes.
 *
 * @example Collect the output in memory
 * ```ts
 * import type { Transport } from "./engine.ts";
 *
 * const out: Uint8Array[] = [];
 * const transport: Transport = {
 *   write: (bytes) => void out.push(bytes.slice()),
 *   close() {},
 * };
 * transport.write(new Uint8Array([1]));
 * console.assert(out.length === 1);
 * ```
 */
export interface Transport {
  /**
   * Writes all of `bytes`. The bytes are only valid until the call returns or
   * its promise resolves (the engine reuses its buffer): copy to keep them.
   *
   * @param bytes The bytes to send.
   * @returns Nothing, or a promise that resolves once every byte is written.
   */
  write(bytes: Uint8Array): Promise<void> | void;
  /** Closes the connection; a pending write must then settle (Deno's rejects). Called once. */
  close(): void;
  /**
   * Optional: whether input has arrived that was not read yet (asked only
   * when choosing connections to shed, so one whose request is waiting to
   * be read is not closed as silent).
   */
  hasInput?(): boolean;
  /**
   * Optional: sends `head` (if not null), then bytes `[offset, end)` of the
   * raw file descriptor `fd` straight from the kernel (`sendfile(2)`).
   * Resolves to the file bytes sent: fewer than asked when the file ended
   * early; -1 when the connection is gone; -2 when this file cannot be sent
   * so (the head has still gone out in full). Calls `progress` whenever the
   * peer took more bytes, so a slow but moving reader is not timed out.
   */
  sendFile?(
    head: Uint8Array | null,
    fd: number,
    offset: number,
    end: number,
    progress?: () => void,
  ): Promise<number> | number;
  /**
   * Optional: the client of this connection, given to every request as
   * `RequestHead.remote` (read once, when the connection is made; the
   * address itself is computed when first asked for).
   */
  readonly peer?: Peer;
}

/**
 * Deadlines of one connection, in milliseconds.
 *
 * @example Tighter deadlines for a busy server
 * ```ts
 * import type { EngineOptions } from "./engine.ts";
 *
 * const options: EngineOptions = { headerTimeoutMs: 5000, idleTimeoutMs: 5000 };
 * console.assert(options.writeTimeoutMs === undefined); // 30000 applies
 * ```
 */
export interface EngineOptions {
  /**
   * Time to receive a whole request head, from connection open or from the
   * first byte of the head. A partly received head is answered 408.
   * @default {10000}
   */
  headerTimeoutMs?: number;
  /**
   * Time a kept-alive connection may sit idle between requests.
   * @default {15000}
   */
  idleTimeoutMs?: number;
  /**
   * Time one write may stay pending (the peer stopped reading) before the
   * connection is closed.
   * @default {30000}
   */
  writeTimeoutMs?: number;
  /**
   * Request bodies the handler reads (write/body.ts): these methods' bodies
   * are streamed to it as `req.body` instead of skipped.
   * @default {undefined (every body skipped, up to 64 KiB)}
   */
  bodies?: BodyAcceptance;
  // net: --limit-rate (#13)
  /**
   * Download pacing, like nginx's `limit_rate`: each response's bytes past
   * `limitRateAfter` go out at this many bytes per second at most. A
   * response that fits one 16 KiB write is never paced. 0: off.
   * @default {0}
   */
  limitRate?: number;
  /**
   * Bytes of each response sent at full speed before `limitRate` applies (nginx's `limit_rate_after`).
   * @default {0}
   */
  limitRateAfter?: number;
}

/**
 * Observers of a connection.
 *
 * @example Count responses by status
 * ```ts
 * import type { ConnectionHooks } from "./engine.ts";
 *
 * const counts = new Map<number, number>();
 * const hooks: ConnectionHooks = {
 *   onResponse(_req, status) {
 *     counts.set(status, (counts.get(status) ?? 0) + 1);
 *   },
 * };
 * hooks.onResponse?.(null, 400, 0);
 * console.assert(counts.get(400) === 1);
 * ```
 */
export interface ConnectionHooks {
  /** Called once, when the transport is closed. */
  onClose?(): void;
  /**
   * Called after each response.
   *
   * @param req The request, or null for the engine's own errors (400, 408, ...).
   * @param status The status code sent.
   * @param bytes Response bytes written, head included.
   */
  onResponse?(req: RequestHead | null, status: number, bytes: number): void;
}
