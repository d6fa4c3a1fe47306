/**
 * The accept loop of a worker that listens itself (reuseport mode, TLS): one
 * copy for both. It keeps this worker's share of the connection cap, sheds
 * (idle, then slow connections) past the shed mark and at the cap, and
 * survives running out of file descriptors (the connection waits in the
 * kernel's backlog; a retry follows with backoff).
 *
 * @module
 */
import { atCap, shedMark } from "./_shared.ts";

/** What an {@linkcode AcceptLoop} needs from its worker. */
export interface AcceptLoopOptions<C> {
  /** This worker's share of the connection cap. */
  maxConns: number;
  /** True once the loop must end (the listener is closed then too). */
  stopped(): boolean;
  /** Closes up to `n` connections to make room; returns how many went. */
  shed(n: number): number;
  /**
   * `accept` failed for lack of file descriptors (retried after a backoff).
   *
   * @param open connections this loop has open
   */
  onEmfile(open: number): void;
  /** Serves one connection; settles when it is closed. */
  serve(conn: C): Promise<void>;
  /** +1 per connection accepted, -1 when it is closed (counters). */
  onConn(delta: number): void;
}

/** Accepts from `listener` until stopped; see the module doc. */
export class AcceptLoop<C> {
  /** Connections this loop accepted that are still open. */
  open = 0;
  /** Resolves when the loop has ended (after `stopped()` turned true). */
  readonly done: Promise<void>;
  #freed: (() => void) | undefined;

  /**
   * Starts accepting.
   *
   * @param listener Where connections come from.
   * @param o The worker's side.
   */
  constructor(listener: { accept(): Promise<C> }, o: AcceptLoopOptions<C>) {
    this.done = this.#run(listener, o);
  }

  /** Wakes a wait at the cap (after a connection closed, or to stop). */
  wake(): void {
    this.#freed?.();
  }

  async #run(listener: { accept(): Promise<C> }, o: AcceptLoopOptions<C>): Promise<void> {
    const mark = shedMark(o.maxConns);
    const closed = () => {
      this.open--;
      o.onConn(-1);
      this.#freed?.();
    };
    let backoffMs = 10;
    while (!o.stopped()) {
      if (this.open >= o.maxConns) {
        // At this worker's share of the cap: make room (idle, then slow
        // connections); while nothing can be shed, connections wait in the
        // backlog and a retry comes with the next close or after 100 ms.
        await atCap(() => o.shed(this.open - mark), (r) => this.#freed = r);
        this.#freed = undefined;
        continue;
      }
      let conn: C;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (o.stopped() || err instanceof Deno.errors.BadResource) break;
        if (err instanceof Deno.errors.Interrupted || err instanceof Deno.errors.ConnectionReset) {
          continue;
        }
        // EMFILE and friends: temporary, the connection waits in the backlog.
        o.onEmfile(this.open);
        await new Promise((r) => setTimeout(r, backoffMs));
        backoffMs = Math.min(backoffMs * 2, 500);
        continue;
      }
      backoffMs = 10;
      this.open++;
      o.onConn(1);
      o.serve(conn).catch(() => {}).finally(closed);
      // Past the mark, each new connection sheds one.
      if (this.open > mark) o.shed(1);
    }
  }
}
