import assert from "node:assert/strict";
import { SpscRing } from "./spsc.ts";
import { MpmcRing } from "./mpmc.ts";
import { seedFromEnv, start } from "./_test_util.ts";

function drainAll(ring: SpscRing, max?: number): number[][] {
  const got: number[][] = [];
  ring.drain((rec) => got.push([...rec]), max);
  return got;
}

Deno.test("SpscRing of capacity 1 holds one record and wraps on every push", () => {
  const ring = new SpscRing(SpscRing.allocate(1));
  const out = new Int32Array(1);
  for (let i = 0; i < 10; i++) {
    assert.equal(ring.push(i), true);
    assert.equal(ring.push(99), false, "full ring refuses");
    assert.equal(ring.size(), 1);
    assert.equal(ring.pop(out), true);
    assert.equal(out[0], i);
    assert.equal(ring.pop(out), false, "empty ring has nothing");
    assert.equal(ring.size(), 0);
  }
});

Deno.test("SpscRing of capacity 2 keeps FIFO order across wrap-around", () => {
  const ring = new SpscRing(SpscRing.allocate(2, 2));
  let next = 0;
  let expect = 0;
  for (let round = 0; round < 20; round++) {
    while (ring.push(next, -next)) next++;
    assert.equal(ring.size(), 2);
    const got = drainAll(ring, 1 + (round % 2));
    for (const [a, b] of got) {
      assert.equal(a, expect);
      assert.equal(b, -expect | 0);
      expect++;
    }
  }
  for (const [a] of drainAll(ring)) assert.equal(a, expect++);
  assert.equal(expect, next);
});

Deno.test("SpscRing popMany copies packed records across wrap-around, capped by out and max", () => {
  const ring = new SpscRing(SpscRing.allocate(4, 2, 2 ** 31 - 2));
  const out = new Int32Array(5).fill(-1); // room for 2 records, not 2.5
  let next = 0;
  let expect = 0;
  for (let round = 0; round < 12; round++) {
    while (ring.push(next, ~next)) next++;
    const n = ring.popMany(out, 1 + (round % 3));
    assert.equal(n, Math.min(2, 1 + (round % 3)));
    for (let j = 0; j < n; j++) {
      assert.deepEqual([out[2 * j], out[2 * j + 1]], [expect, ~expect]);
      expect++;
    }
    assert.equal(out[4], -1, "nothing past the last whole record");
  }
  for (let left = ring.size(); left > 0;) left -= ring.popMany(out, 2);
  assert.equal(ring.popMany(out, 2), 0);
  assert.equal(ring.popMany(out, 0), 0);
  assert.equal(ring.size(), 0);
  const one = new SpscRing(SpscRing.allocate(1));
  const o1 = new Int32Array(8);
  for (let i = 0; i < 5; i++) {
    assert.equal(one.push(i), true);
    assert.equal(one.popMany(o1, 8), 1);
    assert.equal(o1[0], i);
  }
});

Deno.test("SpscRing push writes four words and zeroes the rest of a wide record", () => {
  const ring = new SpscRing(SpscRing.allocate(4, 6));
  const out = new Int32Array(6).fill(7);
  ring.writeRecord(0, [9, 9, 9, 9, 9, 9]); // unpublished garbage in the slot
  assert.equal(ring.push(1, 2, 3, 4), true);
  assert.equal(ring.pop(out), true);
  assert.deepEqual([...out], [1, 2, 3, 4, 0, 0]);
});

Deno.test("SpscRing batch: reserve caps at free space, publish makes records visible at once", () => {
  const ring = new SpscRing(SpscRing.allocate(8, 3));
  assert.equal(ring.reserve(100), 8);
  assert.equal(ring.reserve(0), 0);
  assert.equal(ring.reserve(-5), 0);
  const n = ring.reserve(5);
  assert.equal(n, 5);
  for (let i = 0; i < n; i++) ring.writeRecord(i, [i, i + 1, i + 2]);
  ring.write(4, 2, 77);
  assert.equal(ring.size(), 0, "nothing is visible before publish");
  assert.equal(ring.publish(n), 5);
  assert.equal(ring.size(), 5);
  assert.equal(ring.reserve(10), 3);
  assert.equal(ring.publish(10), 3, "publish is clamped to free space");
  assert.deepEqual(drainAll(ring, 2), [[0, 1, 2], [1, 2, 3]]);
  assert.equal(ring.size(), 6);
  assert.deepEqual(drainAll(ring, 3)[2], [4, 5, 77]);
  assert.equal(drainAll(ring).length, 3);
  assert.equal(ring.drain(() => {}), 0);
});

Deno.test("SpscRing drain consumes the record its callback throws on, and those before", () => {
  const ring = new SpscRing(SpscRing.allocate(4));
  for (let i = 0; i < 4; i++) ring.push(i);
  assert.throws(() =>
    ring.drain((rec) => {
      if (rec[0] === 1) throw new Error("boom");
    }), /boom/);
  assert.deepEqual(drainAll(ring), [[2], [3]]);
});

Deno.test("SpscRing counters cross the 32-bit wrap without losing order", () => {
  for (const startAt of [2 ** 31 - 3, -3]) {
    const ring = new SpscRing(SpscRing.allocate(4, 1, startAt));
    let next = 0;
    let expect = 0;
    for (let round = 0; round < 10; round++) {
      while (ring.push(next)) next++;
      assert.equal(ring.size(), 4);
      assert.equal(ring.reserve(1), 0);
      for (const [v] of drainAll(ring, 3)) assert.equal(v, expect++);
    }
    for (const [v] of drainAll(ring)) assert.equal(v, expect++);
    assert.equal(expect, next);
    assert.equal(next, 4 + 9 * 3);
  }
});

Deno.test("SpscRing close refuses pushes, lets the consumer drain, then reports closed", () => {
  const ring = new SpscRing(SpscRing.allocate(4));
  const consumer = new SpscRing(ring.buffer);
  ring.push(1);
  ring.push(2);
  assert.equal(consumer.closed, false);
  ring.close();
  ring.close();
  assert.equal(consumer.closed, true);
  assert.equal(ring.push(3), false);
  assert.equal(ring.reserve(4), 0);
  assert.equal(consumer.wait(0), "ok");
  assert.deepEqual(drainAll(consumer), [[1], [2]]);
  assert.equal(consumer.wait(1000), "closed");
  assert.equal(ring.waitForSpace(1000), "closed");
});

Deno.test("SpscRing wait and waitAsync time out on an empty open ring", async () => {
  const ring = new SpscRing(SpscRing.allocate(2));
  assert.equal(ring.wait(0), "timed-out");
  assert.equal(ring.wait(12), "timed-out");
  assert.equal(await ring.waitAsync(12), "timed-out");
  ring.push(5);
  assert.equal(await ring.waitAsync(1000), "ok");
  ring.push(6);
  assert.equal(ring.waitForSpace(0), "timed-out");
});

Deno.test("SpscRing.allocate rejects bad shapes with the value in the message", () => {
  assert.throws(() => SpscRing.allocate(12), {
    name: "RangeError",
    message: "capacity must be a power of two, got 12",
  });
  assert.throws(() => SpscRing.allocate(0), /capacity must be an integer 1-16777216, got 0/);
  assert.throws(() => SpscRing.allocate(2.5), /got 2.5/);
  assert.throws(() => SpscRing.allocate(2 ** 25), /got 33554432/);
  assert.throws(() => SpscRing.allocate(4, 0), /recordWords must be an integer 1-16, got 0/);
  assert.throws(() => SpscRing.allocate(4, 17), /recordWords must be an integer 1-16, got 17/);
});

Deno.test("SpscRing attach validates buffer type, magic, version, shape and length", () => {
  assert.throws(
    () => new SpscRing(new ArrayBuffer(1024) as unknown as SharedArrayBuffer),
    { name: "TypeError", message: "SpscRing needs a SharedArrayBuffer, got ArrayBuffer" },
  );
  assert.throws(() => new SpscRing(new SharedArrayBuffer(16)), /shorter than the 640-byte header/);
  assert.throws(
    () => new SpscRing(new SharedArrayBuffer(1024)),
    { message: "not an SpscRing buffer: magic 0x00000000, expected 0x52535043" },
  );
  assert.throws(() => new SpscRing(MpmcRing.allocate(4)), /magic 0x524d5043, expected 0x52535043/);
  const bumped = SpscRing.allocate(4);
  new Int32Array(bumped)[1] = 9;
  assert.throws(() => new SpscRing(bumped), /layout version 9 is not supported \(want 1\)/);
  const badCap = SpscRing.allocate(4);
  new Int32Array(badCap)[2] = 3;
  assert.throws(
    () => new SpscRing(badCap),
    /corrupt SpscRing header: capacity must be a power of two, got 3/,
  );
  const small = SpscRing.allocate(8);
  const copy = new SharedArrayBuffer(small.byteLength - 4);
  new Int32Array(copy).set(new Int32Array(small).subarray(0, copy.byteLength / 4));
  assert.throws(
    () => new SpscRing(copy),
    /SpscRing buffer is 668 bytes, expected 672 for capacity 8 x 1 words/,
  );
});

async function runPair(
  count: number,
  seed: number,
  opts: { useAsync: boolean; notify: boolean; lockstep?: boolean },
): Promise<void> {
  // Counters start so that the run crosses 2^31, where Int32 counters turn negative.
  const buffer = SpscRing.allocate(opts.lockstep ? 4 : 1024, 3, 2 ** 31 - (count >> 1));
  const lockstep = opts.lockstep ? new SharedArrayBuffer(4) : undefined;
  const consumer = start({
    role: "spsc-consumer",
    buffer,
    count,
    seed: seed ^ 0x1234,
    useAsync: opts.useAsync,
    lockstep,
  });
  const producer = start({
    role: "spsc-producer",
    buffer,
    count,
    seed,
    notify: opts.notify,
    lockstep,
  });
  try {
    const [p, c] = await Promise.all([producer.outcome, consumer.outcome]);
    assert.deepEqual(p.errors, [], `producer (seed ${seed})`);
    assert.deepEqual(c.errors, [], `consumer (seed ${seed})`);
    assert.equal(p.received, count, `produced (seed ${seed})`);
    assert.equal(c.received, count, `consumed (seed ${seed})`);
  } finally {
    producer.worker.terminate();
    consumer.worker.terminate();
  }
}

Deno.test("SpscRing 1->1 across Workers delivers 1,000,000 records once, in order (wait)", async () => {
  await runPair(1_000_000, seedFromEnv(), { useAsync: false, notify: true });
});

Deno.test("SpscRing 1->1 across Workers delivers 1,000,000 records once, in order (waitAsync)", async () => {
  await runPair(1_000_000, seedFromEnv(), { useAsync: true, notify: true });
});

Deno.test("SpscRing consumer sleeping in wait still gets every record when producers never notify", async () => {
  await runPair(150, seedFromEnv(), { useAsync: false, notify: false, lockstep: true });
});

Deno.test("SpscRing consumer sleeping in waitAsync still gets every record when producers never notify", async () => {
  await runPair(150, seedFromEnv(), { useAsync: true, notify: false, lockstep: true });
});
