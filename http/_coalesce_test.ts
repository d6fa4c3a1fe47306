import assert from "node:assert/strict";
import { Coalescer } from "./_coalesce.ts";

Deno.test("Coalescer: concurrent callers of one key share one run; a later call runs again", async () => {
  const c = new Coalescer();
  let runs = 0;
  let finish!: (v: number) => void;
  const start = () => {
    runs++;
    return new Promise<number>((ok) => finish = ok);
  };
  const a = c.shared("/d\0k", start);
  const b = c.shared("/d\0k", start);
  assert.equal(runs, 1, "started once, synchronously");
  assert.equal(c.size, 1);
  finish(7);
  assert.deepEqual(await Promise.all([a, b]), [7, 7]);
  assert.equal(c.size, 0, "forgotten once settled");
  const again = c.shared("/d\0k", () => 8);
  assert.equal(runs, 1);
  assert.equal(await again, 8);
});

Deno.test("Coalescer: different keys run apart; a failure reaches every waiter and is forgotten", async () => {
  const c = new Coalescer();
  let fail!: (e: Error) => void;
  const a = c.shared("/x\0a", () => new Promise<number>((_, no) => fail = no));
  const b = c.shared("/x\0a", () => Promise.resolve(1));
  const other = c.shared("/y\0b", () => 2);
  assert.deepEqual(c.paths().sort(), ["/x", "/y"]);
  fail(new Error("boom"));
  await assert.rejects(a, /boom/);
  await assert.rejects(b, /boom/);
  assert.equal(await other, 2);
  assert.equal(c.size, 0);
});
