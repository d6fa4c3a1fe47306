/**
 * The CRC-32s a zip range needs (its data descriptors and central records
 * hold them): kept from every file a download sent whole, keyed by real
 * path, size and mtime (a file that changed is a new key), least recently
 * used dropped past a bound. Missing ones are computed once however many
 * requests wait for them (aria2c's connections ask at the same time).
 *
 * @module
 */

/** A bounded map of file version -> CRC-32, with computations in flight coalesced. */
export class CrcCache {
  readonly #max: number;
  readonly #map = new Map<string, number>();
  readonly #running = new Map<string, Promise<number>>();

  /** @param max The most CRCs kept (~100 bytes each). @default 200000 */
  constructor(max = 200_000) {
    this.#max = max;
  }

  static #key(path: string, size: number, mtimeMs: number): string {
    return `${size}:${mtimeMs}:${path}`;
  }

  /** Entries kept. */
  get size(): number {
    return this.#map.size;
  }

  /**
   * The CRC of this file version, if known (and marks it recently used).
   *
   * @param path the real path
   * @param size its size
   * @param mtimeMs its mtime
   * @returns the CRC-32 or undefined
   * @example
   * ```ts
   * import { CrcCache } from "./_crc_cache.ts";
   * const c = new CrcCache(2);
   * c.set("/a", 1, 0, 7);
   * c.get("/a", 1, 0); // 7
   * c.get("/a", 2, 0); // undefined: another version
   * ```
   */
  get(path: string, size: number, mtimeMs: number): number | undefined {
    const k = CrcCache.#key(path, size, mtimeMs);
    const v = this.#map.get(k);
    if (v !== undefined) {
      this.#map.delete(k);
      this.#map.set(k, v);
    }
    return v;
  }

  /**
   * Records the CRC of a file version, dropping the least recently used past the bound.
   *
   * @param path the real path
   * @param size its size
   * @param mtimeMs its mtime
   * @param crc its CRC-32
   */
  set(path: string, size: number, mtimeMs: number, crc: number): void {
    const k = CrcCache.#key(path, size, mtimeMs);
    this.#map.delete(k);
    this.#map.set(k, crc);
    while (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }

  /**
   * The CRC of a file version: cached, or computed by `compute` (once for
   * all concurrent callers) and then cached.
   *
   * @param path the real path
   * @param size its size
   * @param mtimeMs its mtime
   * @param compute reads the file
   * @returns the CRC-32
   */
  obtain(
    path: string,
    size: number,
    mtimeMs: number,
    compute: () => Promise<number>,
  ): Promise<number> {
    const known = this.get(path, size, mtimeMs);
    if (known !== undefined) return Promise.resolve(known);
    const k = CrcCache.#key(path, size, mtimeMs);
    let p = this.#running.get(k);
    if (p === undefined) {
      p = compute().then((crc) => {
        this.set(path, size, mtimeMs, crc);
        return crc;
      }).finally(() => this.#running.delete(k));
      this.#running.set(k, p);
    }
    return p;
  }
}
