import assert from "node:assert/strict";
import {
  LISTING_ROUTES_MAX,
  ListingCache,
  newSnap,
  type Rendered,
  sameEntries,
} from "./_listing_cache.ts";
import type { Entry } from "./listing.ts";

const ok = { status: 200, headers: [], body: [], length: 0 };
const page = (bytes: number): Rendered => ({ etag: '"e"', mtimeMs: 0, ok, notModified: ok, bytes });
const entry = (name: string, size = 1): Entry => ({
  name,
  type: "file",
  isDir: false,
  size,
  mtimeMs: 5,
});

function make(maxBytes = 10_000) {
  const evicted: number[] = [];
  const c = new ListingCache({ maxBytes, revalidateMs: 1000, makeRoom: (n) => evicted.push(n) });
  return { c, evicted };
}

Deno.test("ListingCache: keep + remember route a request key to the page; drop forgets both", () => {
  const { c, evicted } = make();
  const s = newSnap("/srv/d", [entry("a")], false, 1, Date.now());
  c.keep(s, 256);
  assert.equal(c.dir("/srv/d"), s);
  assert.ok(s.live);
  const p = page(100);
  c.remember("/d/?\0h", s, "h/d/|name|asc|1", p);
  assert.equal(c.route("/d/?\0h")?.page, p);
  assert.equal(c.routeCount, 1);
  assert.equal(c.bytes, 356);
  assert.deepEqual(evicted, [256, 100], "files made room for each charge");
  // A second request for the same variant gets the cached page, charged once.
  c.remember("/d/?x\0h", s, "h/d/|name|asc|1", page(100));
  assert.equal(c.route("/d/?x\0h")?.page, p);
  assert.equal(c.bytes, 356);
  c.drop(s);
  assert.equal(c.routeCount, 0);
  assert.equal(c.dir("/srv/d"), undefined);
  assert.equal(c.bytes, 0);
});

Deno.test("ListingCache: a snapshot over budget is not kept; older directories make room", () => {
  const { c } = make(1000);
  const a = newSnap("/srv/a", [], false, 0, 0);
  c.keep(a, 600);
  const b = newSnap("/srv/b", [], false, 0, 0);
  c.keep(b, 600); // a goes
  assert.ok(!a.live && b.live);
  const huge = newSnap("/srv/h", [], false, 0, 0);
  c.keep(huge, 1001);
  assert.ok(!huge.live);
  assert.equal(c.dir("/srv/h"), undefined);
  assert.equal(c.bytes, 600);
});

Deno.test("ListingCache: sorted() sorts once per order while cached", () => {
  const { c } = make();
  const s = newSnap("/srv/d", [entry("b", 1), entry("a", 2)], false, 0, 0);
  c.keep(s, 256);
  const byName = c.sorted(s, "name", "asc");
  assert.deepEqual(byName.map((e) => e.name), ["a", "b"]);
  assert.equal(c.sorted(s, "name", "asc"), byName);
  assert.deepEqual(c.sorted(s, "size", "desc").map((e) => e.name), ["a", "b"]);
  assert.deepEqual(s.entries.map((e) => e.name), ["b", "a"], "collection order kept");
});

Deno.test("ListingCache: invalidate moves the epochs of the path, its parent, subdirectories and busy work", () => {
  const { c } = make();
  const e = (p: string) => c.epoch(p);
  const before = [e("/srv/d"), e("/srv"), e("/srv/d/sub"), e("/srv/other")];
  c.invalidate("/srv/d", ["/srv/d/sub"]);
  assert.notEqual(e("/srv/d"), before[0]);
  assert.notEqual(e("/srv"), before[1]);
  assert.notEqual(e("/srv/d/sub"), before[2], "running work under it");
  assert.equal(e("/srv/other"), before[3]);
  const s = newSnap("/srv/d/sub", [], false, 0, 0);
  c.keep(s, 10);
  const sib = newSnap("/srv/dx", [], false, 0, 0);
  c.keep(sib, 10);
  c.invalidate("/srv/d", []);
  assert.ok(!s.live, "a directory under it");
  assert.ok(sib.live, "a look-alike prefix");
  const all = e("/srv/dx");
  c.clear();
  assert.ok(!sib.live);
  assert.notEqual(e("/srv/dx"), all);
});

Deno.test("ListingCache: routes are bounded; dropRoute(key, only) leaves a newer route", () => {
  const { c } = make(1 << 30);
  const s = newSnap("/srv/d", [], false, 0, 0);
  c.keep(s, 10);
  const p = page(1);
  for (let i = 0; i <= LISTING_ROUTES_MAX; i++) c.setRoute(`/d/?${i}\0h`, s, p);
  assert.equal(c.routeCount, LISTING_ROUTES_MAX);
  assert.equal(c.route("/d/?0\0h"), undefined, "the oldest went");
  const r = c.route("/d/?1\0h")!;
  c.setRoute("/d/?1\0h", s, page(2));
  c.dropRoute("/d/?1\0h", r);
  assert.ok(c.route("/d/?1\0h"), "not the route expected: kept");
  c.dropRoute("/d/?1\0h");
  assert.equal(c.route("/d/?1\0h"), undefined);
});

Deno.test("sameEntries() compares every field the listing shows, in order", () => {
  assert.ok(sameEntries([entry("a"), entry("b")], [entry("a"), entry("b")]));
  assert.ok(!sameEntries([entry("a"), entry("b")], [entry("b"), entry("a")]));
  assert.ok(!sameEntries([entry("a", 1)], [entry("a", 2)]));
  assert.ok(!sameEntries([entry("a")], []));
});
