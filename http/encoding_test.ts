import assert from "node:assert/strict";
import { acceptsCoding } from "./encoding.ts";

Deno.test("acceptsCoding() honours explicit codings, * and q=0", () => {
  assert.ok(acceptsCoding("gzip, deflate, br", "br"));
  assert.ok(acceptsCoding("gzip, deflate, br", "gzip"));
  assert.ok(!acceptsCoding("gzip", "br"));
  assert.ok(!acceptsCoding(undefined, "gzip"));
  assert.ok(!acceptsCoding("", "gzip"));
  assert.ok(!acceptsCoding("br;q=0, gzip", "br"));
  assert.ok(!acceptsCoding("br; q=0.0", "br"));
  assert.ok(acceptsCoding("br;q=0.5", "br"));
  assert.ok(acceptsCoding("*", "br"));
  assert.ok(!acceptsCoding("*;q=0", "br"));
  assert.ok(acceptsCoding("*;q=0, br", "br"));
  assert.ok(!acceptsCoding("br;q=0, *", "br"));
  assert.ok(acceptsCoding("x-gzip", "gzip"));
  assert.ok(acceptsCoding("GZIP", "gzip"));
});
