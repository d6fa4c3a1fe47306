import assert from "node:assert/strict";
import {
  allocateRateTable,
  parseRateLimit,
  rateLimitProblem,
  rateLimitRule,
  RateTable,
} from "./_rate_limit.ts";
import type { Reply, RequestHead } from "./types.ts";
import type { RuleContext } from "./rules.ts";

Deno.test("rate table: a burst at once, then the rate; Retry-After counts down; others unaffected", () => {
  let now = 1_700_000_000_000;
  const t = new RateTable(allocateRateTable({ rate: 2, burst: 4 }), () => now);
  for (let i = 0; i < 4; i++) assert.equal(t.take("198.51.100.1"), 0, `burst ${i}`);
  assert.equal(t.take("198.51.100.1"), 1);
  assert.equal(t.take("198.51.100.9"), 0);
  now += 500; // one emission interval: one more
  assert.equal(t.take("198.51.100.1"), 0);
  assert.equal(t.take("198.51.100.1"), 1);
  now += 10_000; // quiet: the bucket refills to the burst, no more
  for (let i = 0; i < 4; i++) assert.equal(t.take("198.51.100.1"), 0);
  assert.equal(t.take("198.51.100.1"), 1);
});

Deno.test("rate table: a slow rate says how many seconds to wait", () => {
  const now = 1_700_000_000_000;
  const t = new RateTable(allocateRateTable({ rate: 0.1, burst: 1 }), () => now);
  assert.equal(t.take("192.0.2.5"), 0);
  assert.equal(t.take("192.0.2.5"), 10);
});

Deno.test("rate table: IPv6 counted per /64, IPv4-mapped as IPv4", () => {
  const t = new RateTable(allocateRateTable({ rate: 1, burst: 1 }), () => 5_000_000);
  assert.equal(t.take("2001:db8:1:2::1"), 0);
  assert.ok(t.take("2001:db8:1:2:ffff::9") > 0, "same /64");
  assert.equal(t.take("2001:db8:1:3::1"), 0, "another /64");
  assert.equal(t.take("::ffff:192.0.2.1"), 0);
  assert.ok(t.take("192.0.2.1") > 0, "mapped = plain IPv4");
});

Deno.test("rate table: a full table takes over refilled slots, and fails open when none is", () => {
  let now = 9_000_000;
  const t = new RateTable(allocateRateTable({ rate: 1, burst: 1 }, 8), () => now);
  for (let i = 0; i < 8; i++) assert.equal(t.take(`10.0.0.${i}`), 0);
  // Every slot holds a client that just spent its burst: a ninth is let through, counted.
  assert.equal(t.take("10.0.1.1"), 0);
  assert.equal(t.overflow, 1);
  now += 2000; // everyone refilled: a new client takes a slot over
  assert.equal(t.take("10.0.1.1"), 0);
  assert.ok(t.take("10.0.1.1") > 0, "tracked now");
  assert.equal(t.overflow, 1);
});

Deno.test("rate table: Workers taking at once allow exactly the burst (no lost update)", async () => {
  const burst = 500;
  const sab = allocateRateTable({ rate: 1, burst });
  const go = new SharedArrayBuffer(4);
  const keys = ["203.0.113.1", "203.0.113.2", "2001:db8::1"];
  const workers: Worker[] = [];
  try {
    const results: Promise<number[]>[] = [];
    const ready: Promise<void>[] = [];
    for (let i = 0; i < 4; i++) {
      const w = new Worker(new URL("./_rate_limit_test_worker.ts", import.meta.url), {
        type: "module",
      });
      workers.push(w);
      let first = true;
      ready.push(
        new Promise((r) => {
          results.push(
            new Promise((done) => {
              w.onmessage = (e) => {
                if (first) {
                  first = false;
                  r();
                } else done(e.data);
              };
            }),
          );
        }),
      );
      w.postMessage({ sab, go, now: 1_700_000_000_000, keys, rounds: 400 });
    }
    await Promise.all(ready);
    Atomics.store(new Int32Array(go), 0, 1);
    Atomics.notify(new Int32Array(go), 0);
    const all = await Promise.all(results);
    for (let k = 0; k < keys.length; k++) {
      assert.equal(all.reduce((s, a) => s + a[k], 0), burst, keys[k]);
    }
  } finally {
    for (const w of workers) w.terminate();
  }
});

Deno.test("rate limit text and bounds: N/s[:BURST], named problems", () => {
  assert.deepEqual(parseRateLimit("100/s"), { rate: 100, burst: 100 });
  assert.deepEqual(parseRateLimit("2.5/s:10"), { rate: 2.5, burst: 10 });
  for (const bad of ["", "100", "100/m", "0/s", "-1/s", "10/s:0", "10/s:x", "0.001/s:2"]) {
    assert.equal(parseRateLimit(bad), undefined, bad);
  }
  assert.match(rateLimitProblem({ rate: 0.001, burst: 2 })!, /burst \/ rate at most 1000 s/);
  assert.throws(() => allocateRateTable({ rate: 1, burst: 0 }), /rate limit must have a burst/);
});

Deno.test("rateLimitRule: 429 with Retry-After past the burst; no address, no limit", () => {
  const rule = rateLimitRule(new RateTable(allocateRateTable({ rate: 1, burst: 1 })));
  const ctx = {
    error: (status: number, extra: Array<[string, string]> = []) =>
      ({ status, headers: extra, body: [], length: 0 }) as Reply,
  } as unknown as RuleContext;
  const req = (address?: string) =>
    ({
      method: "GET",
      target: "/",
      path: "/",
      query: "",
      minor: 1,
      headers: [],
      remote: { address },
    }) as RequestHead;
  assert.equal(rule(req("192.0.2.77"), ctx), undefined);
  const r = rule(req("192.0.2.77"), ctx) as Reply;
  assert.equal(r.status, 429);
  assert.deepEqual(r.headers, [["Retry-After", "1"]]);
  assert.equal(rule(req(undefined), ctx), undefined);
  assert.equal(rule(req(undefined), ctx), undefined);
});
