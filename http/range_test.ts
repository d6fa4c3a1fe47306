import assert from "node:assert/strict";
import { ifRangeHolds, MAX_RANGES, multipartLayout, parseRange } from "./range.ts";
import { httpDate } from "./conditional.ts";

Deno.test("parseRange() handles first-last, open-ended and suffix ranges", () => {
  assert.deepEqual(parseRange("bytes=0-9", 100), { kind: "ranges", ranges: [[0, 10]] });
  assert.deepEqual(parseRange("bytes=90-", 100), { kind: "ranges", ranges: [[90, 100]] });
  assert.deepEqual(parseRange("bytes=-10", 100), { kind: "ranges", ranges: [[90, 100]] });
  assert.deepEqual(parseRange("bytes=-1000", 100), { kind: "ranges", ranges: [[0, 100]] });
  assert.deepEqual(parseRange("bytes=95-1000", 100), { kind: "ranges", ranges: [[95, 100]] });
  assert.deepEqual(parseRange("Bytes = 1-1", 100), { kind: "ranges", ranges: [[1, 2]] });
});

Deno.test("parseRange() keeps several disjoint ranges in request order", () => {
  assert.deepEqual(parseRange("bytes=50-59, 0-9", 100), {
    kind: "ranges",
    ranges: [[50, 60], [0, 10]],
  });
});

Deno.test("parseRange() answers unsatisfiable when no range overlaps the file", () => {
  assert.deepEqual(parseRange("bytes=100-", 100), { kind: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=200-300", 100), { kind: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=-0", 100), { kind: "unsatisfiable" });
  assert.deepEqual(parseRange("bytes=0-", 0), { kind: "unsatisfiable" });
  // one satisfiable range is enough
  assert.deepEqual(parseRange("bytes=200-300,0-0", 100), { kind: "ranges", ranges: [[0, 1]] });
});

Deno.test("parseRange() ignores invalid headers (full body)", () => {
  for (
    const h of ["items=0-1", "bytes", "bytes=", "bytes=a-b", "bytes=5-1", "bytes=1", "bytes=--1"]
  ) {
    assert.deepEqual(parseRange(h, 100), { kind: "full" }, h);
  }
});

Deno.test("parseRange() never amplifies: too many, overlapping or oversize ranges get the full body", () => {
  const many = "bytes=" + Array.from({ length: MAX_RANGES + 1 }, (_, i) => `${i}-${i}`).join(",");
  assert.deepEqual(parseRange(many, 100), { kind: "full" });
  const ok = "bytes=" + Array.from({ length: MAX_RANGES }, (_, i) => `${i}-${i}`).join(",");
  assert.equal(parseRange(ok, 100).kind, "ranges");
  assert.deepEqual(parseRange("bytes=0-10,5-20", 100), { kind: "full" });
  assert.deepEqual(parseRange("bytes=0-0,0-0", 100), { kind: "full" });
  assert.deepEqual(parseRange("bytes=-60,0-50", 100), { kind: "full" });
});

Deno.test("ifRangeHolds() needs a strong ETag match or the exact Last-Modified date", () => {
  const m = 1_700_000_000_900;
  assert.ok(ifRangeHolds('"a"', '"a"', m));
  assert.ok(!ifRangeHolds('"b"', '"a"', m));
  assert.ok(!ifRangeHolds('W/"a"', '"a"', m));
  assert.ok(ifRangeHolds(httpDate(m), '"a"', m));
  assert.ok(!ifRangeHolds(httpDate(m - 5000), '"a"', m));
  assert.ok(!ifRangeHolds("junk", '"a"', m));
});

Deno.test("multipartLayout() frames each part and totals the length exactly", () => {
  const data = new TextEncoder().encode("0123456789");
  const { pieces, length } = multipartLayout([[0, 2], [5, 7]], 10, "text/plain", "BND");
  const parts = pieces.map((p) => p instanceof Uint8Array ? p : data.subarray(p[0], p[1]));
  const total = parts.reduce((n, p) => n + p.length, 0);
  assert.equal(total, length);
  const text = new TextDecoder().decode(new Uint8Array(parts.flatMap((p) => [...p])));
  assert.equal(
    text,
    "--BND\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01" +
      "\r\n--BND\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-6/10\r\n\r\n56" +
      "\r\n--BND--\r\n",
  );
});
