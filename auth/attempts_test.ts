import assert from "node:assert/strict";
import { addressKey, allocateAttempts, Attempts } from "./attempts.ts";

/** A clock the test moves: seconds since an epoch-aligned start. */
function clock(startSeconds = 600_000) {
  let s = startSeconds;
  return { now: () => s * 1000, set: (x: number) => (s = x), add: (d: number) => (s += d) };
}

Deno.test("attempts: past the threshold an address is blocked, others are not", () => {
  const t = clock(6000); // window 60: 6000 is a window start
  const a = new Attempts(allocateAttempts({ threshold: 3, windowSeconds: 60 }), t.now);
  assert.equal(a.fail("198.51.100.1"), 0);
  assert.equal(a.fail("198.51.100.1"), 0);
  assert.equal(a.retryAfter("198.51.100.1"), 0);
  const wait = a.fail("198.51.100.1");
  assert.ok(wait > 0);
  assert.equal(a.retryAfter("198.51.100.1"), wait);
  assert.equal(a.retryAfter("198.51.100.2"), 0);
  assert.deepEqual(a.counts("198.51.100.1"), [0, 3]);
  assert.deepEqual(a.counts("198.51.100.2"), [0, 0]);
});

Deno.test("attempts: the window decays (sliding window counter) and Retry-After says when", () => {
  const t = clock(6000);
  const a = new Attempts(allocateAttempts({ threshold: 4, windowSeconds: 60 }), t.now);
  const ip = "203.0.113.9";
  for (let i = 0; i < 4; i++) a.fail(ip);
  // cur = 4 at e = 0: blocked until the next window's estimate 4*(60-e')/60 < 4,
  // i.e. just past its start: 60 s (+ a moment).
  const wait = a.retryAfter(ip);
  assert.ok(wait >= 60 && wait <= 61, String(wait));
  t.add(30);
  assert.ok(a.retryAfter(ip) >= 30 && a.retryAfter(ip) <= 31);
  t.add(30.5); // next window: prev = 4 weighted (60-0.5)/60 < 4
  assert.equal(a.retryAfter(ip), 0);
  assert.deepEqual(a.counts(ip), [4, 0]);
  // One more failure now: 4*(59.5/60) + 1 >= 4: blocked until prev decays
  // to 3: e > 15 s, i.e. ~14.5 s from now.
  const again = a.fail(ip);
  assert.ok(again >= 14 && again <= 16, String(again));
  t.add(again);
  assert.equal(a.retryAfter(ip), 0);
  // Two windows later everything is forgotten.
  t.add(120);
  assert.deepEqual(a.counts(ip), [0, 0]);
  assert.equal(a.fail(ip), 0);
});

Deno.test("attempts: IPv6 is counted per /64, IPv4-mapped as IPv4", () => {
  assert.equal(addressKey("2001:db8::1"), "2001:db8:0:0::/64");
  assert.equal(addressKey("[2001:db8:aa:bb:cc::1]"), "2001:db8:aa:bb::/64");
  assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
  assert.equal(addressKey("::1"), "0:0:0:0::/64");
  assert.equal(addressKey("::FFFF:192.0.2.1"), "192.0.2.1");
  const t = clock();
  const a = new Attempts(allocateAttempts({ threshold: 2 }), t.now);
  a.fail("2001:db8:1:2::a");
  assert.ok(a.fail("2001:db8:1:2:ffff::b") > 0);
  assert.ok(a.retryAfter("2001:db8:1:2::c") > 0);
  assert.equal(a.retryAfter("2001:db8:1:3::a"), 0);
});

Deno.test("attempts: a full table fails open and counts the overflow; a decayed slot is taken over", () => {
  const t = clock(6000);
  const a = new Attempts(allocateAttempts({ slots: 2, threshold: 2 }), t.now);
  a.fail("10.0.0.1");
  a.fail("10.0.0.2");
  // Both slots in use this window: a third address is not counted.
  assert.equal(a.fail("10.0.0.3"), 0);
  assert.equal(a.fail("10.0.0.3"), 0);
  assert.equal(a.retryAfter("10.0.0.3"), 0);
  assert.equal(a.overflow, 2);
  // Two windows on, the old slots have decayed to nothing: taken over.
  t.add(120);
  a.fail("10.0.0.3");
  assert.ok(a.fail("10.0.0.3") > 0);
  assert.equal(a.overflow, 2);
});

Deno.test("attempts: settings are checked; a view needs a real table", () => {
  assert.throws(() => allocateAttempts({ threshold: 0 }), /threshold must be 1-1000, got 0/);
  assert.throws(() => allocateAttempts({ threshold: 1001 }), /threshold must be 1-1000/);
  assert.throws(() => allocateAttempts({ windowSeconds: 0.5 }), /window must be 1-86400 s/);
  assert.throws(() => allocateAttempts({ slots: 0 }), /slots must be/);
  assert.throws(() => new Attempts(new SharedArrayBuffer(64)), /not an attempts table/);
  // Counts saturate instead of wrapping.
  const t = clock();
  const a = new Attempts(allocateAttempts({ threshold: 1000 }), t.now);
  for (let i = 0; i < 1100; i++) a.fail("x");
  assert.deepEqual(a.counts("x"), [0, 1023]);
});

Deno.test("attempts: Workers counting at once lose no failure (shared keys and private keys)", async () => {
  const N = 4, ROUNDS = 250;
  const t = clock(6000);
  const sab = allocateAttempts({ slots: 4096, threshold: 1000 });
  const go = new SharedArrayBuffer(4);
  // Many shared keys so the threads overlap long enough to collide.
  const shared = ["2001:db8::1", ...Array.from({ length: 200 }, (_, i) => `192.0.2.${i}`)];
  const workers: Worker[] = [];
  try {
    const done: Promise<void>[] = [];
    const ready: Promise<void>[] = [];
    for (let w = 0; w < N; w++) {
      const worker = new Worker(new URL("./_attempts_test_worker.ts", import.meta.url), {
        type: "module",
      });
      workers.push(worker);
      let isReady: () => void, isDone: () => void;
      ready.push(new Promise((r) => (isReady = r)));
      done.push(
        new Promise((resolve, reject) => {
          isDone = resolve;
          worker.onerror = (e) => {
            e.preventDefault();
            reject(new Error(e.message));
          };
        }),
      );
      worker.onmessage = (e) => e.data === "ready" ? isReady() : isDone();
      const own = Array.from({ length: 50 }, (_, i) => `10.${w}.${i >> 8}.${i & 255}`);
      worker.postMessage({ sab, go, now: t.now(), keys: [...shared, ...own], rounds: ROUNDS });
    }
    await Promise.race([Promise.all(ready), Promise.all(done)]);
    const flag = new Int32Array(go);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    await Promise.all(done);
    const a = new Attempts(sab, t.now);
    assert.ok(N * ROUNDS <= 1023); // below the saturation cap
    for (const k of shared) assert.deepEqual(a.counts(k), [0, N * ROUNDS]);
    for (let w = 0; w < N; w++) {
      for (let i = 0; i < 50; i++) {
        assert.deepEqual(a.counts(`10.${w}.${i >> 8}.${i & 255}`), [0, ROUNDS]);
      }
    }
    assert.equal(a.overflow, 0);
    assert.ok(a.retryAfter("192.0.2.1") > 0);
  } finally {
    for (const w of workers) w.terminate();
  }
});
