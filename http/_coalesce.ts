/**
 * Request coalescing: concurrent requests for the same work (a directory
 * collect, a pool job rendering a listing page, a compressed variant) share
 * one run of it. Every key starts with the real path the work reads, then
 * `\0`, so an invalidation can find the work running under a directory.
 *
 * @module
 */

/**
 * Work running now, keyed by what it produces.
 *
 * @example Two callers, one run
 * ```ts
 * import { Coalescer } from "./_coalesce.ts";
 * import assert from "node:assert/strict";
 *
 * const running = new Coalescer();
 * let runs = 0;
 * const work = () => new Promise<number>((ok) => setTimeout(() => ok(++runs), 1));
 * const [a, b] = await Promise.all([running.shared("/d\0x", work), running.shared("/d\0x", work)]);
 * assert.deepEqual([a, b, runs], [1, 1, 1]);
 * ```
 */
export class Coalescer {
  readonly #running = new Map<string, Promise<unknown>>();

  /**
   * `start()`, unless work of the same key is running: then that one's result.
   *
   * @param key what the work produces; starts with the real path it reads, then `\0`
   * @param start starts the work (called at most once per concurrent group)
   * @returns the work's result, shared by every caller while it runs
   */
  shared<T>(key: string, start: () => T | Promise<T>): Promise<T> {
    let p = this.#running.get(key) as Promise<T> | undefined;
    if (p === undefined) {
      p = Promise.resolve(start()).finally(() => this.#running.delete(key));
      this.#running.set(key, p);
    }
    return p;
  }

  /** Work running now. */
  get size(): number {
    return this.#running.size;
  }

  /** The real paths that running work reads (the key's part before `\0`). */
  paths(): string[] {
    const out: string[] = [];
    for (const k of this.#running.keys()) {
      const i = k.indexOf("\0");
      out.push(i < 0 ? k : k.slice(0, i));
    }
    return out;
  }
}
