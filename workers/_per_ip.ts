/**
 * `--max-conns-per-ip N` in ring mode: the acceptor is the one thread that
 * counts, so the count needs no lock and no shared table at all.
 *
 * The acceptor remembers, per client address, the set of fds it handed over
 * for it. A connection is live while the owners table (`_shared.ts`) names
 * a worker for its fd: a worker stores 0 there just before it closes the fd,
 * the acceptor itself when it drops one or cleans up after a dead worker.
 * Ending is therefore seen without any message from the workers, and a
 * connection is released exactly once: its fd leaves its address's set
 * (when the acceptor re-checks that set, when the kernel hands out the same
 * fd number again, or in the periodic sweep), and only the acceptor edits
 * the sets. A worker that crashes is covered by the same rule: the acceptor
 * closes its fds and clears their owners.
 *
 * At accept: the peer's address (`getpeername`), then, when its set is at
 * the limit, the set is re-checked against the owners table first, so a
 * connection that ended a moment ago never counts. Over the limit the new
 * fd is closed at once (counted in `/metrics`).
 *
 * @module
 */
import { peerAddress } from "./_libc.ts";

/** How often idle addresses are forgotten (ms). */
const SWEEP_MS = 1000;

/** Per-address connection counts, kept by the acceptor alone. */
export class PerIpLimit {
  #limit: number;
  #owners: Int32Array;
  /** Address -> fds handed over for it (live, or ended and not yet noticed). */
  #byIp = new Map<string, Set<number>>();
  /** fd -> the address it was charged to. */
  #ipOf: (string | undefined)[] = [];
  #lastSweep = 0;

  /**
   * @param limit connections per address at most
   * @param owners the owners table (epoll I/O): non-zero while a worker holds the fd
   */
  constructor(limit: number, owners: Int32Array) {
    this.#limit = limit;
    this.#owners = owners;
  }

  /**
   * Charges a newly accepted connection to its peer's address.
   *
   * @param fd the accepted socket
   * @returns false when the address is at the limit (the caller closes `fd`)
   */
  admit(fd: number): boolean {
    // The kernel reuses a number only after close: whatever was charged to
    // it has ended (a crashed worker's, say) and leaves its set now.
    this.forget(fd);
    const ip = peerAddress(fd);
    let fds = this.#byIp.get(ip);
    if (fds === undefined) {
      fds = new Set();
      this.#byIp.set(ip, fds);
    } else if (fds.size >= this.#limit) {
      this.#prune(fds);
      if (fds.size >= this.#limit) return false;
    }
    fds.add(fd);
    this.#ipOf[fd] = ip;
    return true;
  }

  /** Releases `fd`'s charge, if it has one (the acceptor closed it itself). */
  forget(fd: number): void {
    const ip = this.#ipOf[fd];
    if (ip === undefined) return;
    this.#ipOf[fd] = undefined;
    const fds = this.#byIp.get(ip);
    fds?.delete(fd);
    if (fds !== undefined && fds.size === 0) this.#byIp.delete(ip);
  }

  /** Drops the fds of `fds` whose connection has ended (owner cleared). */
  #prune(fds: Set<number>): void {
    for (const fd of fds) {
      if (fd >= this.#owners.length || Atomics.load(this.#owners, fd) === 0) {
        fds.delete(fd);
        this.#ipOf[fd] = undefined;
      }
    }
  }

  /** At most once a second: forgets ended connections and addresses left with none. */
  sweep(): void {
    const now = Date.now();
    if (now - this.#lastSweep < SWEEP_MS) return;
    this.#lastSweep = now;
    for (const [ip, fds] of this.#byIp) {
      this.#prune(fds);
      if (fds.size === 0) this.#byIp.delete(ip);
    }
  }

  /** Addresses with at least one connection charged (for tests). */
  get addresses(): number {
    return this.#byIp.size;
  }
}

// ---- reuseport mode: every worker accepts, so the counts are shared ----

/** Buckets per hash function (a power of two). */
const BUCKETS = 8192;
const WORDS = 2 * BUCKETS;

/**
 * `--max-conns-per-ip N` in reuseport mode: each worker accepts, so the
 * counts live in shared memory, one region per worker that only that worker
 * writes (an `Atomics.add` each way; no lock, no CAS loop), each region a
 * two-row count-min sketch of client addresses (keyed hashes: the seeds are
 * random per process, so a client cannot aim at another's buckets).
 *
 * At accept: add 1 to both of the address's buckets in our region, then sum
 * each bucket over every region; the estimate is the smaller sum. Over the
 * limit: take our 1s back and refuse. Adding before looking means two
 * workers that accept the same address at the same instant may both refuse,
 * never both admit: the limit is never exceeded. A collision in both rows
 * can only over-count (a client refused early), never under-count.
 *
 * Release: the connection's worker subtracts its two buckets when it ends.
 * A worker that dies takes its connections with it (Deno closes them with
 * the isolate); the supervisor zeroes that worker's region before it starts
 * the replacement, so each charge goes exactly once either way.
 */
export class SharedPerIp {
  #limit: number;
  #all: Int32Array;
  #own: number;
  #regions: number;
  #seeds: Uint32Array;

  /**
   * Allocates the regions.
   *
   * @param workers worker slots
   * @returns the buffer to pass to every worker and to {@linkcode SharedPerIp.clear}
   */
  static allocate(workers: number): SharedArrayBuffer {
    const sab = new SharedArrayBuffer((2 + workers * WORDS) * 4);
    const seeds = new Uint32Array(sab, 0, 2);
    crypto.getRandomValues(seeds);
    return sab;
  }

  /**
   * Zeroes worker `i`'s region (the supervisor, after the worker died).
   *
   * @param sab the buffer
   * @param i the slot
   */
  static clear(sab: SharedArrayBuffer, i: number): void {
    new Int32Array(sab, (2 + i * WORDS) * 4, WORDS).fill(0);
  }

  /**
   * @param sab the buffer from {@linkcode SharedPerIp.allocate}
   * @param index this worker's slot
   * @param limit connections per address at most
   */
  constructor(sab: SharedArrayBuffer, index: number, limit: number) {
    this.#limit = limit;
    this.#seeds = new Uint32Array(sab, 0, 2);
    this.#all = new Int32Array(sab, 8);
    this.#regions = this.#all.length / WORDS;
    this.#own = index * WORDS;
  }

  #hash(ip: string, seed: number): number {
    // FNV-1a over the text, keyed by the seed.
    let h = (0x811c9dc5 ^ seed) >>> 0;
    for (let i = 0; i < ip.length; i++) h = Math.imul(h ^ ip.charCodeAt(i), 0x01000193);
    return (h >>> 0) & (BUCKETS - 1);
  }

  /**
   * Charges a new connection from `ip` to this worker.
   *
   * @param ip the client address
   * @returns the charge to give to {@linkcode release}, or -1 when `ip` is at the limit
   */
  admit(ip: string): number {
    const a = this.#hash(ip, this.#seeds[0]);
    const b = BUCKETS + this.#hash(ip, this.#seeds[1]);
    const all = this.#all;
    Atomics.add(all, this.#own + a, 1);
    Atomics.add(all, this.#own + b, 1);
    let sa = 0, sb = 0;
    for (let r = 0, base = 0; r < this.#regions; r++, base += WORDS) {
      sa += Atomics.load(all, base + a);
      sb += Atomics.load(all, base + b);
    }
    if (Math.min(sa, sb) > this.#limit) {
      Atomics.sub(all, this.#own + a, 1);
      Atomics.sub(all, this.#own + b, 1);
      return -1;
    }
    return a | (b << 16);
  }

  /**
   * Releases what {@linkcode admit} charged (once, when the connection ends).
   *
   * @param charge its return value
   */
  release(charge: number): void {
    Atomics.sub(this.#all, this.#own + (charge & 0xffff), 1);
    Atomics.sub(this.#all, this.#own + (charge >>> 16), 1);
  }
}
