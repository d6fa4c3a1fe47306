/**
 * Failed authentication attempts per client address, counted across every
 * thread in one SharedArrayBuffer, with a sliding (decaying) window: past
 * `threshold` failures in about `window` seconds an address is blocked, and
 * told how long to wait (`Retry-After`).
 *
 * Layout (Int32 words; every `Atomics` operation is sequentially
 * consistent, which is all the ordering relied on):
 *
 * ```text
 * word 0  magic 0x41545450        word 1  slots (power of two)
 * word 2  window, seconds         word 3  threshold
 * word 4  hash seed               word 5  overflow: failures not counted (table full)
 * words 16 + 2*i, 17 + 2*i        slot i: fingerprint (0 = free), state
 * state = epoch (12 bits, window index mod 4096) << 20 | previous window's count << 10 | this window's count
 * ```
 *
 * A slot's whole state changes in one `compareExchange`, so increments are
 * never lost and a window roll is atomic. Counts saturate at 1023 (hence
 * threshold <= 1000). An address hashes to a start slot and a 32-bit
 * fingerprint (two seeded hashes); up to {@linkcode PROBES} slots are probed
 * from the start. A free slot is claimed by CAS on its fingerprint; when
 * none is free, a slot whose counts have fully decayed is taken over.
 * Note: a thread still counting into a slot at the instant it is taken over
 * adds one failure to the new owner (tolerated: it errs toward blocking an
 * address already failing). When every probed slot is in use by recent
 * failures, the failure is not counted (fail open) and word 5 is bumped:
 * the table is sized for the addresses failing at once, not for all.
 *
 * IPv6 addresses are counted per /64 (one subscriber's prefix), IPv4-mapped
 * IPv6 as IPv4.
 *
 * Estimate at time t, window k = floor(t / W), e = t - kW (the sliding window
 * counter): `prev * (W - e) / W + cur`; blocked when it reaches threshold.
 *
 * @module
 */

/** Slots probed per address. */
export const PROBES = 8;
const HEADER = 16;
const MAGIC = 0x41545450;
const CAP = 1023;
const EPOCHS = 4096;

/** {@linkcode allocateAttempts} settings. */
export interface AttemptsOptions {
  /**
   * Addresses tracked at once (rounded up to a power of two).
   * @default 4096
   */
  slots?: number;
  /**
   * The window, seconds.
   * @default 60
   */
  windowSeconds?: number;
  /**
   * Failures per window before an address is blocked (1-1000).
   * @default 10
   */
  threshold?: number;
}

/**
 * Allocates the shared table (once, in the supervisor); each thread then
 * makes its own {@linkcode Attempts} view of it.
 *
 * @param options size, window, threshold
 * @returns the buffer to send to every thread
 * @example
 * ```ts
 * import { allocateAttempts, Attempts } from "./attempts.ts";
 * import assert from "node:assert/strict";
 *
 * const table = new Attempts(allocateAttempts({ threshold: 2 }));
 * assert.equal(table.fail("192.0.2.7"), 0);
 * assert.ok(table.fail("192.0.2.7") > 0); // second failure: blocked
 * assert.ok(table.retryAfter("192.0.2.7") > 0);
 * assert.equal(table.retryAfter("192.0.2.8"), 0);
 * ```
 */
export function allocateAttempts(options: AttemptsOptions = {}): SharedArrayBuffer {
  const want = options.slots ?? 4096;
  const window = options.windowSeconds ?? 60;
  const threshold = options.threshold ?? 10;
  if (!Number.isInteger(want) || want < 1 || want > 1 << 24) {
    throw new RangeError(`attempt slots must be 1-16777216, got ${want}`);
  }
  if (!Number.isInteger(window) || window < 1 || window > 86400) {
    throw new RangeError(`attempt window must be 1-86400 s, got ${window}`);
  }
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > 1000) {
    throw new RangeError(`attempt threshold must be 1-1000, got ${threshold}`);
  }
  let slots = 1;
  while (slots < want) slots *= 2;
  const sab = new SharedArrayBuffer((HEADER + 2 * slots) * 4);
  const a = new Int32Array(sab);
  a[1] = slots;
  a[2] = window;
  a[3] = threshold;
  a[4] = crypto.getRandomValues(new Int32Array(1))[0];
  Atomics.store(a, 0, MAGIC);
  return sab;
}

/**
 * The key an address is counted under: IPv6 by its /64, IPv4-mapped IPv6
 * as the IPv4 address, anything else as given.
 *
 * @param addr a textual address
 * @returns the key
 * @example
 * ```ts
 * import { addressKey } from "./attempts.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(addressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
 * assert.equal(addressKey("::ffff:192.0.2.1"), "192.0.2.1");
 * assert.equal(addressKey("192.0.2.1"), "192.0.2.1");
 * ```
 */
export function addressKey(addr: string): string {
  if (!addr.includes(":")) return addr;
  let a = addr.startsWith("[") && addr.endsWith("]") ? addr.slice(1, -1) : addr;
  const zone = a.indexOf("%");
  if (zone >= 0) a = a.slice(0, zone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped !== null) return mapped[1];
  const [head, tail] = a.split("::", 2) as [string, string | undefined];
  const h = head === "" ? [] : head.split(":");
  const groups = tail === undefined ? h : [
    ...h,
    ...Array(Math.max(0, 8 - h.length - (tail === "" ? 0 : tail.split(":").length))).fill("0"),
  ];
  return groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(":") + "::/64";
}

/** A thread's view of the shared attempts table. */
export class Attempts {
  readonly #a: Int32Array;
  readonly #mask: number;
  readonly #window: number;
  readonly #threshold: number;
  readonly #seed: number;
  readonly #now: () => number;

  /**
   * @param sab a buffer from {@linkcode allocateAttempts}
   * @param now the clock, ms (the same wall clock in every thread)
   */
  constructor(sab: SharedArrayBuffer, now: () => number = Date.now) {
    const a = new Int32Array(sab);
    if (Atomics.load(a, 0) !== MAGIC) throw new TypeError("not an attempts table");
    this.#a = a;
    this.#mask = a[1] - 1;
    this.#window = a[2];
    this.#threshold = a[3];
    this.#seed = a[4];
    this.#now = now;
  }

  /** The failures-per-window threshold. */
  get threshold(): number {
    return this.#threshold;
  }

  /** Failures not counted because every probed slot was busy. */
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

  /** Word index of the address's state, or -1 (not present, or no room when claiming). */
  #slot(addr: string, claim: boolean, epoch: number): number {
    const key = addressKey(addr);
    const a = this.#a;
    const start = this.#hash(key, 0) & this.#mask;
    const fp = this.#hash(key, 0x5bd1e995) | 1;
    for (let p = 0; p < PROBES; p++) {
      const at = HEADER + 2 * ((start + p) & this.#mask);
      const f = Atomics.load(a, at);
      if (f === fp) return at + 1;
      if (f === 0) {
        if (!claim) return -1;
        const was = Atomics.compareExchange(a, at, 0, fp);
        if (was === 0 || was === fp) return at + 1;
      }
    }
    if (!claim) return -1;
    for (let p = 0; p < PROBES; p++) {
      const at = HEADER + 2 * ((start + p) & this.#mask);
      const s = Atomics.load(a, at + 1);
      const age = (epoch - (s >>> 20) + EPOCHS) % EPOCHS;
      if (age < 2) continue;
      const f = Atomics.load(a, at);
      if (Atomics.compareExchange(a, at, f, fp) === f) {
        Atomics.compareExchange(a, at + 1, s, 0);
        return at + 1;
      }
    }
    Atomics.add(a, 5, 1);
    return -1;
  }

  /** [epoch, elapsed seconds in it]. */
  #clock(): [number, number] {
    const t = this.#now() / 1000;
    const k = Math.floor(t / this.#window);
    return [k % EPOCHS, t - k * this.#window];
  }

  /** Seconds to wait given a state, now: 0 when not blocked. */
  #wait(s: number, epoch: number, e: number): number {
    const ep = s >>> 20;
    let prev = 0, cur = 0;
    if (ep === epoch) {
      prev = (s >>> 10) & CAP;
      cur = s & CAP;
    } else if (ep === (epoch + EPOCHS - 1) % EPOCHS) prev = s & CAP;
    const W = this.#window, T = this.#threshold;
    if (prev * (W - e) / W + cur < T) return 0;
    // When the estimate falls below T: within this window while prev
    // decays, else in the next one while cur (then prev) decays.
    const w = cur < T ? W * (1 - (T - cur) / prev) - e : W - e + W * (1 - T / cur);
    return Math.max(1, Math.ceil(w + 1e-9));
  }

  /**
   * Counts one failure.
   *
   * @param addr the client's address
   * @returns seconds to wait when the address is now blocked, else 0
   */
  fail(addr: string): number {
    const [epoch, e] = this.#clock();
    const at = this.#slot(addr, true, epoch);
    if (at < 0) return 0;
    const a = this.#a;
    for (;;) {
      const s = Atomics.load(a, at);
      const ep = s >>> 20;
      let next: number;
      if (ep === epoch) {
        next = (s & CAP) === CAP ? s : s + 1;
      } else {
        const prev = ep === (epoch + EPOCHS - 1) % EPOCHS ? s & CAP : 0;
        next = ((epoch << 20) | (prev << 10) | 1) >>> 0;
      }
      if (Atomics.compareExchange(a, at, s, next | 0) === s) return this.#wait(next, epoch, e);
    }
  }

  /**
   * Whether an address is blocked now. Reads only (no slot is claimed).
   *
   * @param addr the client's address
   * @returns seconds to wait, or 0 when it may try
   */
  retryAfter(addr: string): number {
    const [epoch, e] = this.#clock();
    const at = this.#slot(addr, false, epoch);
    return at < 0 ? 0 : this.#wait(Atomics.load(this.#a, at), epoch, e);
  }

  /**
   * The failures counted for an address: this window's and the previous.
   *
   * @param addr the client's address
   * @returns `[previous, current]`
   */
  counts(addr: string): [number, number] {
    const [epoch] = this.#clock();
    const at = this.#slot(addr, false, epoch);
    if (at < 0) return [0, 0];
    const s = Atomics.load(this.#a, at);
    const ep = s >>> 20;
    if (ep === epoch) return [(s >>> 10) & CAP, s & CAP];
    if (ep === (epoch + EPOCHS - 1) % EPOCHS) return [s & CAP, 0];
    return [0, 0];
  }
}
