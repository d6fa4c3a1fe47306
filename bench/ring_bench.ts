/**
 * Ring queues against `postMessage`, across real threads.
 *
 * Each iteration moves a fixed number of Int32 items from producer to
 * consumer thread(s) and waits until all were consumed; items/s = items /
 * time per iteration. Workers start once, outside `fn`, and are terminated
 * when the process unloads. Run: `deno bench --allow-read bench/ring_bench.ts`.
 *
 * @module
 */
import { MpmcRing } from "../queue/mpmc.ts";
import { SpscRing } from "../queue/spsc.ts";
import { CTL, type Role, SPINS } from "./_ring_worker.ts";

const workers: Worker[] = [];
globalThis.addEventListener("unload", () => {
  for (const w of workers) w.terminate();
});

function spawn(role: Role, transfer: Transferable[] = []): void {
  const w = new Worker(new URL("./_ring_worker.ts", import.meta.url), { type: "module" });
  w.onerror = (e) => {
    e.preventDefault();
    console.error(`bench worker (${role.role}) failed: ${e.message}`);
  };
  w.postMessage(role, transfer);
  workers.push(w);
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

  /** Blocks (bounded slices) until consumers reach `target`. */
  awaitConsumed(target: number): void {
    for (;;) {
      const c = Atomics.load(this.i32, CTL.CONSUMED);
      if (c >= target) return;
      Atomics.wait(this.i32, CTL.CONSUMED, c, 100);
    }
  }
}

// ---- SPSC, one item per publish ---------------------------------------------

const ONE_N = 200_000;

const pmOne = new Control();
spawn({ role: "pm-consumer", ctl: pmOne.buffer });
const pmOneWorker = workers[workers.length - 1];

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
    const target = spscOne.expect(ONE_N);
    const ring = spscOneRing;
    for (let i = 0, full = 0; i < ONE_N;) {
      if (ring.push(i)) {
        i++;
        full = 0;
      } else if (++full >= SPINS) {
        full = 0;
        ring.waitForSpace(1000);
      }
    }
    spscOne.awaitConsumed(target);
  },
});

// ---- SPSC, batches of 256 ---------------------------------------------------

const BATCH = 256;
const BATCH_N = 1 << 21;

const pmBatch = new Control();
spawn({ role: "pm-consumer", ctl: pmBatch.buffer });
const pmBatchWorker = workers[workers.length - 1];
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

function batchProducer(ring: SpscRing, ctl: Control): void {
  const target = ctl.expect(BATCH_N);
  for (let i = 0, full = 0; i < BATCH_N;) {
    const n = ring.reserve(BATCH);
    if (n < BATCH) {
      if (++full >= SPINS) {
        full = 0;
        ring.waitForSpace(1000);
      }
      continue;
    }
    full = 0;
    for (let k = 0; k < BATCH; k++) ring.write(k, 0, i + k);
    i += ring.publish(BATCH);
  }
  ctl.awaitConsumed(target);
}

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
    const target = mpmc.expect(MANY_N);
    mpmc.go(MANY_N / 2);
    mpmc.awaitConsumed(target);
  },
});
