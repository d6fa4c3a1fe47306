import assert from "node:assert/strict";
import { MpmcRing } from "./mpmc.ts";
import { SpscRing } from "./spsc.ts";
import { type Running, seedFromEnv, start } from "./_test_util.ts";

function popAll(ring: MpmcRing): number[][] {
  const out = new Int32Array(ring.recordWords);
  const got: number[][] = [];
  while (ring.pop(out)) got.push([...out]);
  return got;
}

Deno.test("MpmcRing of capacity 1 tells full from empty on every lap", () => {
  const ring = new MpmcRing(MpmcRing.allocate(1));
  const out = new Int32Array(1);
  for (let i = 0; i < 10; i++) {
    assert.equal(ring.pop(out), false, "empty ring has nothing");
    assert.equal(ring.push(i), true);
    assert.equal(ring.push(99), false, "full ring refuses");
    assert.equal(ring.size(), 1);
    assert.equal(ring.pop(out), true);
    assert.equal(out[0], i);
    assert.equal(ring.size(), 0);
  }
});

Deno.test("MpmcRing of capacity 2 keeps FIFO order of multi-word records across wrap-around", () => {
  const ring = new MpmcRing(MpmcRing.allocate(2, 3));
  const out = new Int32Array(3);
  let next = 0;
  let expect = 0;
  for (let round = 0; round < 20; round++) {
    while (ring.push(next, next + 1, ~next)) next++;
    assert.equal(ring.size(), 2);
    for (let k = 0; k < 1 + (round % 2); k++) {
      assert.equal(ring.pop(out), true);
      assert.deepEqual([...out], [expect, expect + 1, ~expect]);
      expect++;
    }
  }
  for (const [v] of popAll(ring)) assert.equal(v, expect++);
  assert.equal(expect, next);
});

Deno.test("MpmcRing popMany takes consecutive ready records across wrap-around, capped by out, max and capacity", () => {
  for (const capacity of [1, 2, 4]) {
    const ring = new MpmcRing(MpmcRing.allocate(capacity, 3, 2 ** 30 - 3));
    const out = new Int32Array(3 * 8 + 2).fill(-1); // room for 8 records
    let next = 0;
    let expect = 0;
    for (let round = 0; round < 12; round++) {
      while (ring.push(next, next + 1, ~next)) next++;
      const max = 1 + (round % 3);
      const n = ring.popMany(out, max);
      assert.equal(n, Math.min(max, capacity));
      for (let j = 0; j < n; j++) {
        assert.deepEqual([...out.subarray(3 * j, 3 * j + 3)], [expect, expect + 1, ~expect]);
        expect++;
      }
    }
    assert.equal(ring.popMany(out, 100), Math.min(capacity, next - expect));
    assert.equal(out[24], -1, "nothing past the last whole record");
    assert.equal(ring.popMany(out, 100), 0);
    assert.equal(ring.popMany(out, 0), 0);
    assert.equal(ring.size(), 0);
  }
});

Deno.test("MpmcRing popMany stops at a claimed but unpublished record", () => {
  const ring = new MpmcRing(MpmcRing.allocate(8));
  const i32 = new Int32Array(ring.buffer);
  ring.push(1);
  ring.push(2);
  ring.push(3);
  // Undo the publication of position 1 (slot 1, seq 2 + 1): as if its producer were still writing.
  const slot1 = 160 + 1 * 2;
  i32[slot1] = 2;
  const out = new Int32Array(8);
  assert.equal(ring.popMany(out, 8), 1);
  assert.equal(out[0], 1);
  assert.equal(ring.popMany(out, 8), 0);
  i32[slot1] = 3;
  assert.equal(ring.popMany(out, 8), 2);
  assert.deepEqual([...out.subarray(0, 2)], [2, 3]);
});

Deno.test("MpmcRing pushRecord copies recordWords words and zero-fills short input", () => {
  const ring = new MpmcRing(MpmcRing.allocate(4, 6));
  assert.equal(ring.pushRecord([1, 2, 3, 4, 5, 6, 7]), true);
  assert.equal(ring.pushRecord([8]), true);
  assert.equal(ring.push(1, 2, 3, 4), true);
  assert.deepEqual(popAll(ring), [[1, 2, 3, 4, 5, 6], [8, 0, 0, 0, 0, 0], [1, 2, 3, 4, 0, 0]]);
});

Deno.test("MpmcRing counters cross the 32-bit wrap without losing order", () => {
  for (const startAt of [2 ** 30 - 3, -3]) {
    const ring = new MpmcRing(MpmcRing.allocate(4, 2, startAt));
    const out = new Int32Array(2);
    let next = 0;
    let expect = 0;
    for (let round = 0; round < 10; round++) {
      while (ring.push(next, -next | 0)) next++;
      assert.equal(ring.size(), 4);
      for (let k = 0; k < 3; k++) {
        assert.equal(ring.pop(out), true);
        assert.deepEqual([...out], [expect, -expect | 0]);
        expect++;
      }
    }
    for (const [v] of popAll(ring)) assert.equal(v, expect++);
    assert.equal(expect, next);
  }
});

Deno.test("MpmcRing close refuses pushes, lets consumers drain, then reports closed", () => {
  const ring = new MpmcRing(MpmcRing.allocate(4));
  const other = new MpmcRing(ring.buffer);
  ring.push(1);
  ring.push(2);
  assert.equal(other.closed, false);
  other.close();
  other.close();
  assert.equal(ring.closed, true);
  assert.equal(ring.push(3), false);
  assert.equal(ring.pushRecord([3]), false);
  assert.equal(ring.size(), 2);
  assert.equal(ring.wait(0), "ok");
  assert.deepEqual(popAll(ring), [[1], [2]]);
  assert.equal(ring.wait(1000), "closed");
  assert.equal(ring.waitForSpace(1000), "closed");
  assert.equal(ring.size(), 0);
});

Deno.test("MpmcRing waits time out on an empty (or full) open ring", async () => {
  const ring = new MpmcRing(MpmcRing.allocate(1));
  assert.equal(ring.wait(0), "timed-out");
  assert.equal(ring.wait(12), "timed-out");
  assert.equal(await ring.waitAsync(12), "timed-out");
  assert.equal(ring.waitForSpace(0), "ok");
  ring.push(5);
  assert.equal(await ring.waitAsync(1000), "ok");
  assert.equal(ring.waitForSpace(12), "timed-out");
  assert.equal(await ring.waitForSpaceAsync(12), "timed-out");
});

Deno.test("MpmcRing.allocate rejects bad shapes with the value in the message", () => {
  assert.throws(() => MpmcRing.allocate(12), {
    name: "RangeError",
    message: "capacity must be a power of two, got 12",
  });
  assert.throws(() => MpmcRing.allocate(-4), /capacity must be an integer 1-16777216, got -4/);
  assert.throws(() => MpmcRing.allocate(4, 1.5), /recordWords must be an integer 1-16, got 1.5/);
});

Deno.test("MpmcRing attach validates buffer type, magic, version, shape and length", () => {
  assert.throws(
    () => new MpmcRing(null as unknown as SharedArrayBuffer),
    { name: "TypeError", message: "MpmcRing needs a SharedArrayBuffer, got null" },
  );
  assert.throws(() => new MpmcRing(new SharedArrayBuffer(8)), /shorter than the 640-byte header/);
  assert.throws(() => new MpmcRing(SpscRing.allocate(4)), {
    message: "not an MpmcRing buffer: magic 0x52535043, expected 0x524d5043",
  });
  const bumped = MpmcRing.allocate(4);
  new Int32Array(bumped)[1] = 2;
  assert.throws(() => new MpmcRing(bumped), /MpmcRing layout version 2 is not supported/);
  const badWords = MpmcRing.allocate(4);
  new Int32Array(badWords)[3] = 20;
  assert.throws(() => new MpmcRing(badWords), /corrupt MpmcRing header: recordWords .* got 20/);
  const big = MpmcRing.allocate(2);
  new Int32Array(big)[2] = 4;
  assert.throws(
    () => new MpmcRing(big),
    { message: "MpmcRing buffer is 656 bytes, expected 672 for capacity 4 x 1 words" },
  );
});

async function runMany(
  producers: number,
  consumers: number,
  total: number,
  capacity: number,
  notify: boolean,
): Promise<void> {
  const seed = seedFromEnv();
  const perProducer = Math.ceil(total / producers);
  // Positions count by 2, so starting at 2^30 - total/2 crosses 2^31 mid-run.
  const buffer = MpmcRing.allocate(capacity, 4, 2 ** 30 - (total >> 1));
  const seen = new SharedArrayBuffer(producers * perProducer * 4);
  const running: Running[] = [];
  try {
    for (let c = 0; c < consumers; c++) {
      running.push(start({
        role: "mpmc-consumer",
        buffer,
        producers,
        seen,
        perProducer,
        seed: seed + 1000 + c,
        useAsync: c % 2 === 1,
        notify,
      }));
    }
    for (let p = 0; p < producers; p++) {
      running.push(start({
        role: "mpmc-producer",
        buffer,
        id: p,
        count: perProducer,
        seed: seed + p,
        notify,
      }));
    }
    const made = await Promise.all(running.slice(consumers).map((r) => r.outcome));
    new MpmcRing(buffer).close();
    const got = await Promise.all(running.slice(0, consumers).map((r) => r.outcome));
    for (const o of [...made, ...got]) assert.deepEqual(o.errors, [], `seed ${seed}`);
    for (const o of made) assert.equal(o.received, perProducer, `seed ${seed}`);
    const consumed = got.reduce((n, o) => n + o.received, 0);
    assert.equal(consumed, producers * perProducer, `seed ${seed}`);
    const counts = new Int32Array(seen);
    const bad = counts.findIndex((n) => n !== 1);
    assert.equal(
      bad,
      -1,
      `seed ${seed}: record ${bad % perProducer} of producer ${
        Math.floor(bad / perProducer)
      } delivered ${counts[bad]} times`,
    );
  } finally {
    for (const r of running) r.worker.terminate();
  }
}

Deno.test("MpmcRing 2 producers x 2 consumers across Workers deliver 1,000,000 records exactly once, FIFO per producer", async () => {
  await runMany(2, 2, 1_000_000, 1024, true);
});

Deno.test("MpmcRing 3 producers x 3 consumers across Workers deliver 1,000,000 records exactly once, FIFO per producer", async () => {
  await runMany(3, 3, 1_000_000, 256, true);
});

Deno.test("MpmcRing sleepers still get every record when nobody ever notifies", async () => {
  await runMany(2, 2, 1_000, 4, false);
});

Deno.test("MpmcRing close racing 2 producers: every accepted push is delivered once, then all see closed", async () => {
  const seed = seedFromEnv();
  const producers = 2;
  const consumers = 2;
  const perProducer = 1 << 21;
  const buffer = MpmcRing.allocate(64, 4);
  const seen = new SharedArrayBuffer(producers * perProducer * 4);
  const running: Running[] = [];
  try {
    let started = 0;
    const { promise: bothStarted, resolve } = Promise.withResolvers<void>();
    for (let p = 0; p < producers; p++) {
      running.push(start({
        role: "mpmc-producer",
        buffer,
        id: p,
        count: perProducer,
        seed: seed + p,
        notify: true,
        untilClosed: true,
        progressAt: 10_000,
      }, () => {
        if (++started === producers) resolve();
      }));
    }
    for (let c = 0; c < consumers; c++) {
      running.push(start({
        role: "mpmc-consumer",
        buffer,
        producers,
        seen,
        perProducer,
        seed: seed + 1000 + c,
        useAsync: c === 0,
        notify: true,
      }));
    }
    // Close while both producers are still pushing (or a producer failed early).
    await Promise.race([bothStarted, ...running.map((r) => r.outcome)]);
    new MpmcRing(buffer).close();
    const outcomes = await Promise.all(running.map((r) => r.outcome));
    for (const o of outcomes) assert.deepEqual(o.errors, [], `seed ${seed}`);
    const made = outcomes.slice(0, producers).map((o) => o.received);
    const consumed = outcomes.slice(producers).reduce((n, o) => n + o.received, 0);
    assert.equal(consumed, made[0] + made[1], `seed ${seed}: made ${made}`);
    const counts = new Int32Array(seen);
    for (let p = 0; p < producers; p++) {
      assert.ok(made[p] >= 10_000 && made[p] < perProducer, `seed ${seed}: made ${made}`);
      for (let v = 0; v < perProducer; v++) {
        const want = v < made[p] ? 1 : 0;
        if (counts[p * perProducer + v] !== want) {
          assert.fail(
            `seed ${seed}: record ${v} of producer ${p} seen ${counts[p * perProducer + v]} times`,
          );
        }
      }
    }
  } finally {
    for (const r of running) r.worker.terminate();
  }
});

// Words of the layout in mpmc.ts's contract: the consumers' sleeping word and wake count.
const W_C_SLEEPING = 96;
const W_C_WAKE = 97;

for (const useAsync of [false, true]) {
  Deno.test(
    `MpmcRing consumer Worker terminated asleep in ${
      useAsync ? "waitAsync" : "wait"
    } does not leave producers notifying on every push`,
    async () => {
      const ring = new MpmcRing(MpmcRing.allocate(8));
      const i32 = new Int32Array(ring.buffer);
      let asleep!: () => void;
      const said = new Promise<void>((resolve) => asleep = resolve);
      const sleeper = start({ role: "mpmc-sleeper", buffer: ring.buffer, useAsync }, asleep);
      try {
        await Promise.race([said, sleeper.outcome]);
        // Wait for the event: the worker marks itself asleep right after it spoke.
        for (let i = 0; Atomics.load(i32, W_C_SLEEPING) === 0; i++) {
          if (i > 5000) assert.fail("the sleeper never marked itself asleep");
          await new Promise((r) => setTimeout(r, 1));
        }
      } finally {
        sleeper.worker.terminate();
      }
      // terminate() lands asynchronously: until it does, the sleeper may wake
      // and mark itself again. Once it is gone, pushes must stop waking anyone.
      const out = new Int32Array(1);
      const deadline = performance.now() + 5000;
      let quiet = 0;
      let woke = 0;
      while (quiet < 100) {
        if (performance.now() > deadline) {
          assert.fail(`pushes still wake sleepers after the sleeper died (${woke} wake-ups)`);
        }
        const wake = Atomics.load(i32, W_C_WAKE);
        assert.equal(ring.push(1), true);
        assert.equal(ring.pop(out), true);
        if (Atomics.load(i32, W_C_WAKE) === wake) {
          quiet++;
        } else {
          woke++;
          quiet = 0;
          await new Promise((r) => setTimeout(r, 1));
        }
      }
      assert.equal(Atomics.load(i32, W_C_SLEEPING), 0, "sleeping mark cleared");
    },
  );
}
