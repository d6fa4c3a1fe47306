import assert from "node:assert/strict";
import { healthHandler } from "./_health.ts";
import { ALIVE, allocateControl, POOL_LIVE, slot } from "./_shared.ts";
import type { Reply, RequestHead } from "../http/types.ts";

const req = (method: string, path: string): RequestHead => ({
  method,
  path,
  target: path,
  query: "",
  minor: 1,
  headers: [],
});
const inner = (): Reply => ({ status: 404, headers: [], body: [], length: 0 });

Deno.test("healthHandler: ok, degraded while a worker is replaced, 503 down with no pool thread", () => {
  const ctl = allocateControl(2);
  const h = healthHandler("/healthz", ctl.buffer as SharedArrayBuffer, 2, 1, inner);
  const json = (r: Reply) => JSON.parse(new TextDecoder().decode(r.body[0] as Uint8Array));
  Atomics.store(ctl, slot(0, ALIVE), 1);
  Atomics.store(ctl, slot(1, ALIVE), 1);
  Atomics.store(ctl, POOL_LIVE, 1);
  let r = h(req("GET", "/healthz")) as Reply;
  assert.equal(r.status, 200);
  assert.deepEqual(json(r), {
    status: "ok",
    workers: { alive: 2, total: 2 },
    pool: { alive: 1, total: 1 },
  });
  Atomics.store(ctl, slot(1, ALIVE), 0);
  r = h(req("HEAD", "/healthz")) as Reply;
  assert.equal(r.status, 200);
  assert.equal(json(r).status, "degraded");
  Atomics.store(ctl, POOL_LIVE, 0);
  r = h(req("GET", "/healthz")) as Reply;
  assert.equal(r.status, 503);
  assert.equal(json(r).status, "down");
  assert.equal((h(req("DELETE", "/healthz")) as Reply).status, 405);
  assert.equal((h(req("GET", "/healthz/")) as Reply).status, 404); // exact path only
});
