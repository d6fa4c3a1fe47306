/**
 * The connections of one thread: one ticker for all their deadlines,
 * shedding at the connection cap, graceful drain.
 *
 * @module
 */
import type { HttpConnection } from "./engine.ts";

/** Shed classes ({@linkcode ConnectionSet.shed}): kept-alive idle connections go first. */
export const SHED_IDLE = 1;
/** Connections still sending their request head (or nothing yet). */
export const SHED_HEAD = 2;
/**
 * A new connection is not shed as a slow head sender before it has been open
 * this long (ms): its first request may still be on the way from a busy client.
 */
export const SHED_GRACE_MS = 100;

/**
 * The connections of one thread, with one ticker for all their deadlines.
 *
 * @example Track connections and shut down gracefully
 * ```ts
 * import { ConnectionSet } from "./connection_set.ts";
 * const set = new ConnectionSet();
 * await set.drain(); // resolves at once when empty
 * ```
 */
export class ConnectionSet {
  #conns = new Set<HttpConnection>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #tickMs: number;
  #ownTimer: boolean;
  #draining = false;
  #drained: (() => void) | null = null;
  #drainPromise: Promise<void> | null = null;
  #onDeadline: ((kind: number) => void) | undefined;

  /**
   * Creates an empty set; its ticker runs only while it holds connections.
   *
   * @param tickMs How often deadlines are checked; a deadline fires up to this late.
   * @default {1000}
   * @param options.timer `false` when the caller runs its own loop and calls
   *   {@linkcode ConnectionSet.tick} at least every `tickMs`: no interval
   *   timer is then started each time the set goes from empty to non-empty
   *   (under connection churn at low concurrency that is most connections).
   * @default {true}
   * @param options.onDeadline told the kind ({@linkcode DEADLINE_HEAD}, ...)
   *   of each deadline that closed a connection (metrics)
   */
  constructor(
    tickMs = 1000,
    options: { timer?: boolean; onDeadline?: (kind: number) => void } = {},
  ) {
    this.#tickMs = tickMs;
    this.#ownTimer = options.timer ?? true;
    this.#onDeadline = options.onDeadline;
  }

  /** Number of open connections. */
  get size(): number {
    return this.#conns.size;
  }

  /**
   * Starts tracking `conn` (drains it at once if the set is draining).
   *
   * @param conn The connection; ignored if it is already closed.
   */
  add(conn: HttpConnection): void {
    if (conn.closed) return;
    this.#conns.add(conn);
    if (this.#draining) conn.drain();
    if (this.#ownTimer && this.#timer === undefined && this.#conns.size > 0) {
      const timer = setInterval(() => this.tick(Date.now()), this.#tickMs);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /**
   * Stops tracking `conn`.
   *
   * @param conn The connection, usually from its `onClose` hook.
   */
  remove(conn: HttpConnection): void {
    this.#conns.delete(conn);
    if (this.#conns.size === 0) {
      if (this.#timer !== undefined) clearInterval(this.#timer);
      this.#timer = undefined;
      this.#drained?.();
    }
  }

  /**
   * Checks every connection's deadlines (the ticker calls this; tests may too).
   *
   * @param nowMs The current time in milliseconds.
   */
  tick(nowMs: number): void {
    const observe = this.#onDeadline;
    for (const c of this.#conns) {
      const kind = c.tick(nowMs);
      if (kind !== 0 && observe !== undefined) observe(kind);
    }
  }

  /**
   * Closes up to `n` connections to make room for new ones, those that cost
   * the most and give the least first (as nginx reuses connections when it
   * runs out): kept-alive idle ones, longest idle first; then, if `classes`
   * allows, those still sending their request head, slowest (longest
   * waiting) first; one that has sent nothing yet only once open for
   * {@linkcode SHED_GRACE_MS} (its request may still be on the way) and
   * with no input waiting to be read. A
   * connection with a response in flight is never shed. A scan of the set:
   * only called at the connection cap, never per request.
   *
   * @param n How many to close at most.
   * @param classes {@linkcode SHED_IDLE} only, or {@linkcode SHED_HEAD} to take head senders too.
   * @returns How many were closed.
   */
  shed(n: number, classes: number = SHED_HEAD): number {
    if (n <= 0) return 0;
    const idle: HttpConnection[] = [];
    const head: HttpConnection[] = [];
    const born = performance.now() - SHED_GRACE_MS;
    for (const c of this.#conns) {
      const k = c.shedClass;
      if (k === SHED_IDLE) idle.push(c);
      else if (
        k === SHED_HEAD && classes >= SHED_HEAD &&
        (c.partial || (c.born <= born && !c.inputWaiting))
      ) {
        head.push(c);
      }
    }
    const byAge = (a: HttpConnection, b: HttpConnection) => a.phase - b.phase;
    let done = 0;
    for (const list of [idle, head]) {
      if (done >= n || list.length === 0) continue;
      if (list.length > n - done) list.sort(byAge);
      for (let i = 0; i < list.length && done < n; i++, done++) list[i].shed();
    }
    return done;
  }

  /**
   * Graceful shutdown: idle connections close now, busy ones after their response.
   *
   * @returns A promise that resolves when every connection has been removed.
   */
  drain(): Promise<void> {
    this.#draining = true;
    this.#drainPromise ??= new Promise<void>((resolve) => {
      this.#drained = resolve;
    });
    for (const c of [...this.#conns]) c.drain();
    if (this.#conns.size === 0) this.#drained!();
    return this.#drainPromise;
  }
}
