/**
 * The request rate limit (site rules, #13): `rate` requests a second per
 * client address with bursts of up to `burst`, counted across every HTTP
 * worker in one SharedArrayBuffer, without locks: each address's state is
 * one Int32 word changed by `compareExchange`.
 *
 * The algorithm is GCRA (the generic cell rate algorithm, ITU-T I.371; a
 * token bucket in one number): the state is the address's theoretical
 * arrival time TAT. With emission interval T = 1/rate and tolerance
 * tau = (burst - 1) * T, a request at `now` is allowed when
 * `TAT - now <= tau`, and then TAT becomes `max(TAT, now) + T`; otherwise it
 * must wait `TAT - now - tau` (the 429's Retry-After, rounded up to seconds).
 * An address whose TAT is in the past has a full bucket: exactly the state
 * of an address never seen, which is what lets a slot be taken over.
 *
 * Layout (Int32 words; every `Atomics` operation is sequentially
 * consistent, which is all the ordering relied on):
 *
 * ```text
 * word 0  magic 0x52415445        word 1  slots (power of two)
 * word 2  T, microseconds         word 3  tau, microseconds
 * word 4  hash seed               word 5  overflow: requests not counted (table full)
 * words 16 + 2*i, 17 + 2*i        slot i: fingerprint (0 = free), TAT (microseconds, mod 2^32)
 * ```
 *
 * Times are microseconds of the wall clock (`Date.now() * 1000`, the same in
 * every thread) modulo 2^32, compared by their wrapped difference, which is
 * exact while it stays under 2^31 us (35 minutes): a live TAT is never more
 * than tau + T ahead of now (checked at allocation: at most 1000 s).
 * Note: a slot idle for a multiple of 71.6 minutes give or take tau can look
 * recent again; its address then waits at most tau once (rare, tolerated).
 * An address hashes to a start slot and a fingerprint; up to
 * {@linkcode PROBES} slots are probed. A free slot is claimed by CAS on its
 * fingerprint; when none is free, a slot whose bucket is full again is
 * taken over. Note: a thread counting into a slot at the instant it is taken
 * over may charge the new owner one request (tolerated). When every probed
 * slot holds a recent client, the request is allowed (fail open) and word 5
 * is bumped: size the table for the clients active at once.
 *
 * IPv6 addresses are limited per /64 (one subscriber's prefix), IPv4-mapped
 * IPv6 as IPv4 (`addressKey` of the failed-attempts table).
 *
 * @module
 */
import { addressKey } from "../auth/attempts.ts";
import type { Rule } from "./rules.ts";
import type { RequestHead } from "./types.ts";
import { type RateLimit, rateLimitProblem } from "../options/rate_limit.ts";

export {
  MAX_WINDOW_S,
  parseRateLimit,
  type RateLimit,
  rateLimitProblem,
} from "../options/rate_limit.ts";

/** Slots probed per address. */
export const PROBES = 8;
const HEADER = 16;
const MAGIC = 0x52415445;
/**
 * Allocates the shared table (once, in the supervisor); each thread then
 * makes its own {@linkcode RateTable} view of it.
 *
 * @param limit the rate and burst
 * @param slots addresses tracked at once (rounded up to a power of two)
 * @returns the buffer to send to every thread
 * @throws {RangeError} for a bad limit or size
 */
export function allocateRateTable(limit: RateLimit, slots = 16384): SharedArrayBuffer {
  const problem = rateLimitProblem(limit);
  if (problem !== undefined) throw new RangeError(`rate limit must ${problem}`);
  if (!Number.isInteger(slots) || slots < 1 || slots > 1 << 24) {
    throw new RangeError(`rate limit slots must be 1-16777216, got ${slots}`);
  }
  let n = 1;
  while (n < slots) n *= 2;
  const sab = new SharedArrayBuffer((HEADER + 2 * n) * 4);
  const a = new Int32Array(sab);
  const t = Math.max(1, Math.round(1e6 / limit.rate));
  a[1] = n;
  a[2] = t;
  a[3] = t * (limit.burst - 1);
  a[4] = crypto.getRandomValues(new Int32Array(1))[0];
  Atomics.store(a, 0, MAGIC);
  return sab;
}

/** A thread's view of the shared rate table. */
export class RateTable {
  readonly #a: Int32Array;
  readonly #mask: number;
  readonly #t: number;
  readonly #tau: number;
  readonly #seed: number;
  readonly #now: () => number;

  /**
   * @param sab a buffer from {@linkcode allocateRateTable}
   * @param now the clock, ms (the same wall clock in every thread)
   */
  constructor(sab: SharedArrayBuffer, now: () => number = Date.now) {
    const a = new Int32Array(sab);
    if (Atomics.load(a, 0) !== MAGIC) throw new TypeError("not a rate table");
    this.#a = a;
    this.#mask = a[1] - 1;
    this.#t = a[2];
    this.#tau = a[3];
    this.#seed = a[4];
    this.#now = now;
  }

  /** Requests allowed without being counted because every probed slot was busy. */
  get overflow(): number {
    return Atomics.load(this.#a, 5);
  }

  /** FNV-1a over the key's UTF-16 units, seeded, then mixed (murmur3 fmix32). */
  #hash(key: string, salt: number): number {
    let h = (0x811c9dc5 ^ this.#seed ^ salt) >>> 0;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** Word index of the key's TAT, claiming a slot; -1 when every probed slot is busy. */
  #slot(key: string, now: number): number {
    const a = this.#a;
    const start = this.#hash(key, 0) & this.#mask;
    const fp = this.#hash(key, 0x5bd1e995) | 1;
    for (let p = 0; p < PROBES; p++) {
      const at = HEADER + 2 * ((start + p) & this.#mask);
      const f = Atomics.load(a, at);
      if (f === fp) return at + 1;
      if (f === 0) {
        const was = Atomics.compareExchange(a, at, 0, fp);
        if (was === 0 || was === fp) return at + 1;
      }
    }
    // Take over a slot whose bucket is full again (TAT not ahead of now).
    for (let p = 0; p < PROBES; p++) {
      const at = HEADER + 2 * ((start + p) & this.#mask);
      const tat = Atomics.load(a, at + 1);
      if (((tat - now) | 0) > 0) continue;
      const f = Atomics.load(a, at);
      if (Atomics.compareExchange(a, at, f, fp) === f) return at + 1;
    }
    Atomics.add(a, 5, 1);
    return -1;
  }

  /**
   * Counts one request of `addr`.
   *
   * @param addr the client's address
   * @returns 0 when it may go on, else seconds to wait (at least 1)
   * @example
   * ```ts
   * import { allocateRateTable, RateTable } from "./_rate_limit.ts";
   * import assert from "node:assert/strict";
   * const t = new RateTable(allocateRateTable({ rate: 1, burst: 2 }), () => 1_000_000);
   * assert.equal(t.take("192.0.2.1"), 0);
   * assert.equal(t.take("192.0.2.1"), 0);
   * assert.equal(t.take("192.0.2.1"), 1); // burst spent: one more a second
   * assert.equal(t.take("192.0.2.2"), 0); // another client
   * ```
   */
  take(addr: string): number {
    const now = (this.#now() * 1000) | 0;
    const at = this.#slot(addressKey(addr), now);
    if (at < 0) return 0;
    const a = this.#a;
    const t = this.#t, tau = this.#tau;
    for (;;) {
      const tat = Atomics.load(a, at);
      let ahead = (tat - now) | 0;
      // Never that far ahead while live: a stale wrapped value; start afresh.
      if (ahead > tau + t || ahead < 0) ahead = 0;
      if (ahead > tau) return Math.max(1, Math.ceil((ahead - tau) / 1e6));
      if (Atomics.compareExchange(a, at, tat, (now + ahead + t) | 0) === tat) return 0;
    }
  }
}

/**
 * The rule limiting each client address: a request over the limit gets 429
 * with Retry-After. A request without an address (a Unix socket, an
 * in-memory transport) is not limited.
 *
 * @param table the shared table
 * @returns the rule
 */
export function rateLimitRule(table: RateTable): Rule {
  return (req: RequestHead, ctx) => {
    const addr = req.remote?.address;
    if (addr === undefined) return undefined;
    const wait = table.take(addr);
    return wait === 0 ? undefined : ctx.error(429, [["Retry-After", String(wait)]]);
  };
}
