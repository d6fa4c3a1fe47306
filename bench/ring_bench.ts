/**
 * Ring queues against `postMessage`, across real threads.
 *
 * Each iteration moves a fixed number of Int32 items from producer to
 * consumer thread(s) and waits until all were consumed; items/s = items /
 * time per iteration. Workers start once, outside `fn`, and are terminated
 * when the process unloads. Run: `deno task bench bench/ring_bench.ts` (needs
 * read access to the worker module; plain `deno bench` skips it).
 *
 * A worker that cannot start (its `error` event, or no "ready" message within
 * {@linkcode START_MS}) fails the benches that use it, and a wait that sees no
 * progress for {@linkcode STALL_MS} throws: a broken worker fails a bench, it
 * never hangs the run.
 *
 * @module
 */
import { MpmcRing } from "../queue/mpmc.ts";
import { SpscRing } from "../queue/spsc.ts";
import { CTL, type Role, SPINS } from "./_ring_worker.ts";
import { permitted } from "./_permissions.ts";

/** How long a worker may take to report "ready" before its benches fail. */
const START_MS = 60_000;
/** How long a wait may see no progress before the bench fails (a dead peer). */
const STALL_MS = 30_000;

const WORKER_URL = new URL("./_ring_worker.ts", import.meta.url);
const workers: Worker[] = [];
globalThis.addEventListener("unload", () => {
  for (const w of workers) w.terminate();
});

/** Start-up failures, by the control block of the bench the worker serves. */
const failures = new Map<SharedArrayBuffer, string>();
const starting: Promise<void>[] = [];

function spawn(role: Role, transfer: Transferable[] = []): Worker {
  const w = new Worker(WORKER_URL, { type: "module" });
  workers.push(w);
  starting.push(
    new Promise<void>((resolve) => {
      const fail = (why: string) => {
        if (!failures.has(role.ctl)) failures.set(role.ctl, `${role.role} worker ${why}`);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => fail(`sent no "ready" in ${START_MS} ms`), START_MS);
      w.addEventListener("message", function ready(e: MessageEvent) {
        if ((e.data as { ready?: boolean }).ready !== true) return;
        w.removeEventListener("message", ready);
        clearTimeout(timer);
        resolve();
      });
      w.addEventListener("error", (e) => {
        // Without preventDefault an uncaught worker error ends the process.
        e.preventDefault();
        fail(`failed to start: ${e.message}`);
      });
    }),
  );
  w.postMessage(role, transfer);
  return w;
}

/** Throws the start-up failure of a bench's workers, if any. */
function started(ctl: Control): void {
  const why = failures.get(ctl.buffer);
  if (why !== undefined) throw new Error(why);
}

/** Waits for space in a full ring; throws once it has had none for {@linkcode STALL_MS}. */
function awaitSpace(ring: { waitForSpace(ms: number): string }, since: number): number {
  if (ring.waitForSpace(1000) !== "timed-out") return performance.now();
  if (performance.now() - since > STALL_MS) {
    throw new Error(`no consumer took an item for ${STALL_MS} ms`);
  }
  return since;
}

/** A control block: the main thread adds a target and waits for consumers to reach it. */
class Control {
  readonly buffer = new SharedArrayBuffer(CTL.LENGTH * 4);
  readonly i32 = new Int32Array(this.buffer);
  #target = 0;

  /** Raises the target by `n` records; returns the new target. */
  expect(n: number): number {
    this.#target += n;
    Atomics.store(this.i32, CTL.TARGET, this.#target);
    return this.#target;
  }

  /** Starts a producer round of `perProducer` records each. */
  go(perProducer: number): void {
    Atomics.store(this.i32, CTL.PER_PRODUCER, perProducer);
    Atomics.add(this.i32, CTL.GO, 1);
    Atomics.notify(this.i32, CTL.GO);
  }

  /** Blocks (bounded slices) until consumers reach `target`; throws on a stall. */
  awaitConsumed(target: number): void {
    let last = -1;
    let since = 0;
    for (;;) {
      const c = Atomics.load(this.i32, CTL.CONSUMED);
      if (c >= target) return;
      if (c !== last) {
        last = c;
        since = performance.now();
      } else if (performance.now() - since > STALL_MS) {
        throw new Error(`consumers stopped at ${c} of ${target} items for ${STALL_MS} ms`);
      }
      Atomics.wait(this.i32, CTL.CONSUMED, c, 100);
    }
  }
}

/** Items per publish in the batched SPSC benches. */
const BATCH = 256;
/** Items per iteration in the batched SPSC benches. */
const BATCH_N = 1 << 21;

function batchProducer(ring: SpscRing, ctl: Control): void {
  started(ctl);
  const target = ctl.expect(BATCH_N);
  for (let i = 0, full = 0, since = performance.now(); i < BATCH_N;) {
    const n = ring.reserve(BATCH);
    if (n < BATCH) {
      if (++full >= SPINS) {
        full = 0;
        since = awaitSpace(ring, since);
      }
      continue;
    }
    full = 0;
    for (let k = 0; k < BATCH; k++) ring.write(k, 0, i + k);
    i += ring.publish(BATCH);
  }
  ctl.awaitConsumed(target);
}

if (permitted("bench/ring_bench.ts", [{ name: "read", path: WORKER_URL }])) {
  // ---- SPSC, one item per publish ---------------------------------------------

  const ONE_N = 200_000;

  const pmOne = new Control();
  const pmOneWorker = spawn({ role: "pm-consumer", ctl: pmOne.buffer });

  const spscOne = new Control();
  const spscOneRing = new SpscRing(SpscRing.allocate(4096));
  spawn({ role: "spsc-consumer", ring: spscOneRing.buffer, ctl: spscOne.buffer });

  Deno.bench({
    group: "spsc, one item per publish",
    name: `postMessage, ${ONE_N} numbers`,
    baseline: true,
    n: 20,
    warmup: 3,
    fn() {
      started(pmOne);
      const target = pmOne.expect(ONE_N);
      for (let i = 0; i < ONE_N; i++) pmOneWorker.postMessage(i);
      pmOne.awaitConsumed(target);
    },
  });

  Deno.bench({
    group: "spsc, one item per publish",
    name: `SpscRing.push, ${ONE_N} items`,
    n: 100,
    warmup: 10,
    fn() {
      started(spscOne);
      const target = spscOne.expect(ONE_N);
      const ring = spscOneRing;
      for (let i = 0, full = 0, since = performance.now(); i < ONE_N;) {
        if (ring.push(i)) {
          i++;
          full = 0;
        } else if (++full >= SPINS) {
          full = 0;
          since = awaitSpace(ring, since);
        }
      }
      spscOne.awaitConsumed(target);
    },
  });

  // ---- SPSC, batches of 256 ---------------------------------------------------

  const pmBatch = new Control();
  const pmBatchWorker = spawn({ role: "pm-consumer", ctl: pmBatch.buffer });
  const chunk = new Int32Array(BATCH);

  const spscBatch = new Control();
  const spscBatchRing = new SpscRing(SpscRing.allocate(4096));
  spawn({ role: "spsc-consumer", ring: spscBatchRing.buffer, ctl: spscBatch.buffer });

  Deno.bench({
    group: "spsc, 256 items per publish",
    name: `postMessage, Int32Array(${BATCH}) x ${BATCH_N / BATCH}`,
    baseline: true,
    n: 20,
    warmup: 3,
    fn() {
      started(pmBatch);
      const target = pmBatch.expect(BATCH_N);
      for (let i = 0; i < BATCH_N; i += BATCH) {
        // The same items the ring side writes, then one structured clone.
        for (let k = 0; k < BATCH; k++) chunk[k] = i + k;
        pmBatchWorker.postMessage(chunk);
      }
      pmBatch.awaitConsumed(target);
    },
  });

  const spscBatchMany = new Control();
  const spscBatchManyRing = new SpscRing(SpscRing.allocate(4096));
  spawn({
    role: "spsc-consumer",
    ring: spscBatchManyRing.buffer,
    ctl: spscBatchMany.buffer,
    popMany: true,
  });

  Deno.bench({
    group: "spsc, 256 items per publish",
    name: `SpscRing reserve/write/publish -> popMany, ${BATCH_N} items`,
    n: 100,
    warmup: 10,
    fn() {
      batchProducer(spscBatchManyRing, spscBatchMany);
    },
  });

  Deno.bench({
    group: "spsc, 256 items per publish",
    name: `SpscRing reserve/write/publish -> drain, ${BATCH_N} items`,
    n: 100,
    warmup: 10,
    fn() {
      batchProducer(spscBatchRing, spscBatch);
    },
  });

  // ---- 2 producers x 2 consumers ----------------------------------------------

  const MANY_N = 400_000;

  const pmMany = new Control();
  for (let k = 0; k < 2; k++) {
    const { port1, port2 } = new MessageChannel();
    spawn({ role: "pm-consumer", ctl: pmMany.buffer, port: port1 }, [port1]);
    spawn({ role: "pm-producer", ctl: pmMany.buffer, port: port2 }, [port2]);
  }

  const mpmc = new Control();
  const mpmcRing = new MpmcRing(MpmcRing.allocate(4096));
  for (let k = 0; k < 2; k++) {
    spawn({ role: "mpmc-consumer", ring: mpmcRing.buffer, ctl: mpmc.buffer });
    spawn({ role: "mpmc-producer", ring: mpmcRing.buffer, ctl: mpmc.buffer });
  }

  Deno.bench({
    group: "2 producers x 2 consumers",
    name: `postMessage over 2 MessageChannels, ${MANY_N} numbers`,
    baseline: true,
    n: 10,
    warmup: 2,
    fn() {
      started(pmMany);
      const target = pmMany.expect(MANY_N);
      pmMany.go(MANY_N / 2);
      pmMany.awaitConsumed(target);
    },
  });

  Deno.bench({
    group: "2 producers x 2 consumers",
    name: `MpmcRing push/pop, ${MANY_N} items`,
    n: 50,
    warmup: 5,
    fn() {
      started(mpmc);
      const target = mpmc.expect(MANY_N);
      mpmc.go(MANY_N / 2);
      mpmc.awaitConsumed(target);
    },
  });

  // Every worker has reported "ready" or failed before the first bench runs.
  await Promise.all(starting);
}
