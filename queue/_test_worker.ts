/// <reference lib="deno.worker" />
/**
 * Worker entry for the ring tests: one role per worker, chosen by the first
 * message; it answers with one result message and then idles until the test
 * terminates it. Private to `queue/`.
 *
 * @module
 */
import { MpmcRing } from "./mpmc.ts";
import { SpscRing } from "./spsc.ts";
import { prng } from "../tests/_prng.ts";

/** What a test asks a worker to do. */
export type Job =
  | {
    role: "spsc-producer";
    buffer: SharedArrayBuffer;
    count: number;
    seed: number;
    notify: boolean;
    /** Wait until the consumer acknowledged each record before the next push. */
    lockstep?: SharedArrayBuffer;
  }
  | {
    role: "spsc-consumer";
    buffer: SharedArrayBuffer;
    count: number;
    seed: number;
    useAsync: boolean;
    lockstep?: SharedArrayBuffer;
  }
  | {
    role: "mpmc-producer";
    buffer: SharedArrayBuffer;
    id: number;
    count: number;
    seed: number;
    notify: boolean;
    /** Push until the ring is closed (at most `count`); say "progress" after `progressAt`. */
    untilClosed?: boolean;
    progressAt?: number;
  }
  | {
    role: "mpmc-consumer";
    buffer: SharedArrayBuffer;
    producers: number;
    seen: SharedArrayBuffer;
    perProducer: number;
    seed: number;
    useAsync: boolean;
    notify: boolean;
  }
  | {
    /** Says progress 0, then sleeps in `wait`/`waitAsync` on an empty ring until terminated. */
    role: "mpmc-sleeper";
    buffer: SharedArrayBuffer;
    useAsync: boolean;
  };

/** What a worker answers. `errors` lists the first problems found. */
export interface Outcome {
  received: number;
  errors: string[];
}

/** Sent before the outcome by producers given `progressAt`. */
export interface Progress {
  progress: number;
}

/** Check word derived from a record's payload, to catch torn multi-word records. */
export function check(a: number, b: number): number {
  return Math.imul(a ^ 0x5bd1e995, 31) ^ b;
}

const WAIT_MS = 10_000;

function spscProducer(job: Extract<Job, { role: "spsc-producer" }>): Outcome {
  const ring = new SpscRing(job.buffer, { notify: job.notify });
  const rand = prng(job.seed);
  const errors: string[] = [];
  const ack = job.lockstep ? new Int32Array(job.lockstep) : undefined;
  let next = 0;
  while (next < job.count) {
    if (ack) {
      // Lockstep: the consumer finds the ring empty and goes to sleep before
      // each push, so a missing notify is what it must survive.
      for (let spins = 0; Atomics.load(ack, 0) < next; spins++) {
        Atomics.wait(ack, 0, Atomics.load(ack, 0), 50);
        if (spins > 200) {
          errors.push(`consumer stuck at ${Atomics.load(ack, 0)} of ${next}`);
          return { received: next, errors };
        }
      }
      if (ring.push(next, check(next, 1))) next++;
      continue;
    }
    const burst = 1 + Math.floor(rand() * 300);
    if (rand() < 0.3) {
      for (let i = 0; i < burst && next < job.count; i++) {
        if (!ring.push(next, check(next, 1), ~next)) break;
        next++;
      }
    } else {
      const n = ring.reserve(Math.min(burst, job.count - next));
      for (let i = 0; i < n; i++) {
        const v = next + i;
        ring.write(i, 0, v);
        ring.write(i, 1, check(v, 1));
        ring.write(i, 2, ~v);
      }
      next += ring.publish(n);
    }
    if (next < job.count && ring.reserve(1) === 0) {
      const r = ring.waitForSpace(WAIT_MS);
      if (r !== "ok") {
        errors.push(`waitForSpace said ${r} at ${next}`);
        break;
      }
    }
  }
  ring.close();
  if (ring.push(1)) errors.push("push after close was accepted");
  return { received: next, errors };
}

async function spscConsumer(job: Extract<Job, { role: "spsc-consumer" }>): Promise<Outcome> {
  const ring = new SpscRing(job.buffer);
  const rand = prng(job.seed);
  const ack = job.lockstep ? new Int32Array(job.lockstep) : undefined;
  const errors: string[] = [];
  let expect = 0;
  const onRecord = (rec: Int32Array) => {
    const v = rec[0];
    if ((v !== expect || rec[1] !== check(v, 1)) && errors.length < 5) {
      errors.push(`record #${expect}: got [${rec.join(", ")}]`);
    }
    expect++;
  };
  const many = new Int32Array(3 * 512);
  const rec = new Int32Array(3);
  for (;;) {
    // Half the batches through drain, half through popMany.
    const max = 1 + Math.floor(rand() * 512);
    let n: number;
    if (rand() < 0.5) n = ring.drain(onRecord, max);
    else {
      n = ring.popMany(many, max);
      for (let j = 0; j < n; j++) {
        for (let w = 0; w < 3; w++) rec[w] = many[3 * j + w];
        onRecord(rec);
      }
    }
    if (n > 0) {
      if (ack) {
        Atomics.store(ack, 0, expect);
        Atomics.notify(ack, 0);
      }
      continue;
    }
    const r = job.useAsync ? await ring.waitAsync(WAIT_MS) : ring.wait(WAIT_MS);
    if (r === "closed") break;
    if (r === "timed-out") {
      errors.push(`wait timed out after ${expect} records`);
      break;
    }
  }
  if (expect !== job.count) errors.push(`received ${expect} records, expected ${job.count}`);
  return { received: expect, errors };
}

function mpmcProducer(job: Extract<Job, { role: "mpmc-producer" }>): Outcome {
  const ring = new MpmcRing(job.buffer, { notify: job.notify });
  const rand = prng(job.seed);
  const words = new Int32Array(4);
  const errors: string[] = [];
  let next = 0;
  while (next < job.count) {
    const burst = 1 + Math.floor(rand() * 64);
    for (let i = 0; i < burst && next < job.count; i++) {
      let ok: boolean;
      if ((next & 1) === 0) {
        ok = ring.push(job.id, next, check(job.id, next), ~next);
      } else {
        words[0] = job.id;
        words[1] = next;
        words[2] = check(job.id, next);
        words[3] = ~next;
        ok = ring.pushRecord(words);
      }
      if (!ok) break;
      next++;
      if (next === job.progressAt) self.postMessage({ progress: next } satisfies Progress);
    }
    if (job.untilClosed && ring.closed) break;
    if (next < job.count && rand() < 0.5) {
      const r = ring.waitForSpace(WAIT_MS);
      if (r === "closed" && job.untilClosed) break;
      if (r !== "ok") {
        errors.push(`waitForSpace said ${r} at ${next}`);
        break;
      }
    }
  }
  return { received: next, errors };
}

async function mpmcConsumer(job: Extract<Job, { role: "mpmc-consumer" }>): Promise<Outcome> {
  const ring = new MpmcRing(job.buffer, { notify: job.notify });
  const seen = new Int32Array(job.seen);
  const rand = prng(job.seed);
  const last = new Int32Array(job.producers).fill(-1);
  const many = new Int32Array(4 * 64);
  const errors: string[] = [];
  let received = 0;
  for (;;) {
    const burst = 1 + Math.floor(rand() * 64);
    let got = 0;
    // Half the bursts through popMany, half through pop.
    const batch = rand() < 0.5 ? ring.popMany(many, burst) : -1;
    for (let j = 0; batch < 0 ? got < burst : j < batch; j++) {
      const out = batch < 0 ? many : many.subarray(4 * j, 4 * j + 4);
      if (batch < 0 && !ring.pop(out)) break;
      got++;
      const [p, v] = out;
      if (
        p < 0 || p >= job.producers || v < 0 || v >= job.perProducer ||
        out[2] !== check(p, v) || out[3] !== ~v
      ) {
        if (errors.length < 5) errors.push(`torn or bad record [${out.join(", ")}]`);
        continue;
      }
      if (v <= last[p] && errors.length < 5) {
        errors.push(`producer ${p}: ${v} after ${last[p]} (FIFO broken)`);
      }
      last[p] = v;
      Atomics.add(seen, p * job.perProducer + v, 1);
    }
    received += got;
    if (got > 0) continue;
    const r = job.useAsync ? await ring.waitAsync(WAIT_MS) : ring.wait(WAIT_MS);
    if (r === "closed") break;
    if (r === "timed-out") {
      errors.push(`wait timed out after ${received} records`);
      break;
    }
  }
  return { received, errors };
}

async function mpmcSleeper(job: Extract<Job, { role: "mpmc-sleeper" }>): Promise<Outcome> {
  const ring = new MpmcRing(job.buffer);
  self.postMessage({ progress: 0 } satisfies Progress);
  const r = job.useAsync ? await ring.waitAsync(Infinity) : ring.wait(Infinity);
  return { received: 0, errors: [`wait answered ${r}`] };
}

self.onmessage = async (e: MessageEvent<Job>) => {
  const job = e.data;
  let outcome: Outcome;
  switch (job.role) {
    case "spsc-producer":
      outcome = spscProducer(job);
      break;
    case "spsc-consumer":
      outcome = await spscConsumer(job);
      break;
    case "mpmc-producer":
      outcome = mpmcProducer(job);
      break;
    case "mpmc-consumer":
      outcome = await mpmcConsumer(job);
      break;
    case "mpmc-sleeper":
      outcome = await mpmcSleeper(job);
      break;
  }
  self.postMessage(outcome);
};
