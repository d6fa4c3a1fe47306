/// <reference lib="deno.worker" />
/**
 * Worker entry for `ring_bench.ts`: one role per worker, set by its first
 * message, answered with `{ ready: true }` before the role's loop starts.
 * Workers run until the ring is closed or they are terminated.
 * Private to `bench/`.
 *
 * Control words (Int32 in `ctl`): see {@linkcode CTL}.
 *
 * @module
 */
import { MpmcRing } from "../queue/mpmc.ts";
import { SpscRing } from "../queue/spsc.ts";

/** Indexes into the shared control array. */
export const CTL = {
  /** Records the main thread waits for (cumulative). */
  TARGET: 0,
  /** Records consumed so far (cumulative); consumers notify it at TARGET. */
  CONSUMED: 1,
  /** Bumped by the main thread to start a producer round. */
  GO: 2,
  /** Records each producer sends per round. */
  PER_PRODUCER: 3,
  /** Batch size for producers that batch. */
  BATCH: 4,
  /** Words in the control array. */
  LENGTH: 16,
} as const;

/** What a worker is told to be. */
export type Role =
  | {
    role: "spsc-consumer";
    ring: SharedArrayBuffer;
    ctl: SharedArrayBuffer;
    /** Consume with `popMany` into a buffer instead of `drain`'s callback. */
    popMany?: boolean;
  }
  | { role: "mpmc-producer"; ring: SharedArrayBuffer; ctl: SharedArrayBuffer }
  | { role: "mpmc-consumer"; ring: SharedArrayBuffer; ctl: SharedArrayBuffer }
  | { role: "pm-consumer"; ctl: SharedArrayBuffer; port?: MessagePort }
  | { role: "pm-producer"; ctl: SharedArrayBuffer; port: MessagePort };

function consumed(ctl: Int32Array, n: number): void {
  const total = Atomics.add(ctl, CTL.CONSUMED, n) + n;
  if (total >= Atomics.load(ctl, CTL.TARGET)) Atomics.notify(ctl, CTL.CONSUMED);
}

/** Blocks (bounded slices) until GO moves past `seen`; returns the new value. */
function awaitGo(ctl: Int32Array, seen: number): number {
  for (;;) {
    const go = Atomics.load(ctl, CTL.GO);
    if (go !== seen) return go;
    Atomics.wait(ctl, CTL.GO, seen, 100);
  }
}

/**
 * Empty (or full) polls before an SPSC side sleeps: a thread wake-up costs
 * tens of microseconds, so a short spin keeps a busy peer from paying it
 * between bursts. Two threads fit the 2 cores, so spinning is cheap.
 */
export const SPINS = 2000;

/**
 * The same for MPMC sides: four workers share 2 cores there, and a spinning
 * thread steals the core its peer needs (20 measured better than 200 or 2000).
 */
const MPMC_SPINS = 20;

function spscConsumer(ring: SpscRing, ctl: Int32Array, popMany: boolean): void {
  let sum = 0;
  const onRecord = (rec: Int32Array) => {
    sum = (sum + rec[0]) | 0;
  };
  const out = new Int32Array(ring.capacity);
  let idle = 0;
  for (;;) {
    let n: number;
    if (popMany) {
      n = ring.popMany(out, out.length);
      for (let j = 0; j < n; j++) sum = (sum + out[j]) | 0;
    } else {
      n = ring.drain(onRecord);
    }
    if (n > 0) {
      consumed(ctl, n);
      idle = 0;
      continue;
    }
    if (++idle < SPINS) continue;
    idle = 0;
    if (ring.wait(1000) === "closed") break;
  }
  self.postMessage({ sum });
}

function mpmcProducer(ring: MpmcRing, ctl: Int32Array): void {
  let go = 0;
  for (;;) {
    go = awaitGo(ctl, go);
    const n = Atomics.load(ctl, CTL.PER_PRODUCER);
    let i = 0;
    let full = 0;
    while (i < n) {
      if (ring.push(i)) {
        i++;
        full = 0;
        continue;
      }
      if (++full < MPMC_SPINS) continue;
      full = 0;
      if (ring.waitForSpace(1000) === "closed") return;
    }
  }
}

function mpmcConsumer(ring: MpmcRing, ctl: Int32Array): void {
  const out = new Int32Array(256);
  let sum = 0;
  let idle = 0;
  for (;;) {
    const k = ring.popMany(out, 256);
    for (let j = 0; j < k; j++) sum = (sum + out[j]) | 0;
    if (k > 0) {
      consumed(ctl, k);
      idle = 0;
      continue;
    }
    if (++idle < MPMC_SPINS) continue;
    idle = 0;
    if (ring.wait(1000) === "closed") break;
  }
  self.postMessage({ sum });
}

function pmProducer(port: MessagePort, ctl: Int32Array): void {
  let go = 0;
  for (;;) {
    go = awaitGo(ctl, go);
    const n = Atomics.load(ctl, CTL.PER_PRODUCER);
    for (let i = 0; i < n; i++) port.postMessage(i);
  }
}

/** Consumes like the ring consumers do: reads (sums) every item it gets. */
function pmConsumer(target: MessagePort | typeof self, ctl: Int32Array): void {
  let sum = 0;
  target.onmessage = (e: MessageEvent<number | Int32Array>) => {
    const data = e.data;
    if (typeof data === "number") {
      sum = (sum + data) | 0;
      consumed(ctl, 1);
      return;
    }
    for (let j = 0; j < data.length; j++) sum = (sum + data[j]) | 0;
    consumed(ctl, data.length);
  };
}

self.onmessage = (e: MessageEvent<Role>) => {
  const job = e.data;
  const ctl = new Int32Array(job.ctl);
  self.postMessage({ ready: true });
  switch (job.role) {
    case "spsc-consumer":
      return spscConsumer(new SpscRing(job.ring), ctl, job.popMany ?? false);
    case "mpmc-producer":
      return mpmcProducer(new MpmcRing(job.ring), ctl);
    case "mpmc-consumer":
      return mpmcConsumer(new MpmcRing(job.ring), ctl);
    case "pm-producer":
      return pmProducer(job.port, ctl);
    case "pm-consumer":
      return pmConsumer(job.port ?? self, ctl);
  }
};
