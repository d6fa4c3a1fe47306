import assert from "node:assert/strict";
import {
  etagMatches,
  evaluatePreconditions,
  httpDate,
  makeETag,
  parseHttpDate,
} from "./conditional.ts";

const ETAG = makeETag(10, 1_700_000_000_500, 42);
const MTIME = 1_700_000_000_500; // Last-Modified rounds down to ...000
const LM = httpDate(MTIME);

Deno.test("makeETag() is strong and changes with size, mtime and inode", () => {
  assert.match(ETAG, /^"[0-9a-z-]+"$/);
  assert.notEqual(makeETag(11, MTIME, 42), ETAG);
  assert.notEqual(makeETag(10, MTIME + 1, 42), ETAG);
  assert.notEqual(makeETag(10, MTIME, 43), ETAG);
});

Deno.test("httpDate() and parseHttpDate() round-trip at second resolution", () => {
  assert.equal(httpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  assert.equal(parseHttpDate(LM), 1_700_000_000_000);
  assert.ok(Number.isNaN(parseHttpDate("1")));
  assert.ok(Number.isNaN(parseHttpDate("not a date at all, really")));
});

Deno.test("etagMatches() compares weakly for If-None-Match, strongly for If-Match", () => {
  assert.ok(etagMatches(`W/${ETAG}`, ETAG, true));
  assert.ok(!etagMatches(`W/${ETAG}`, ETAG, false));
  assert.ok(etagMatches(`"x", ${ETAG}`, ETAG, false));
  assert.ok(etagMatches("*", ETAG, false));
  assert.ok(!etagMatches('"x"', ETAG, true));
  assert.ok(!etagMatches('"a"', 'W/"a"', false));
});

Deno.test("evaluatePreconditions() follows RFC 9110 order", () => {
  assert.equal(evaluatePreconditions({}, ETAG, MTIME), 200);
  assert.equal(evaluatePreconditions({ ifMatch: '"nope"' }, ETAG, MTIME), 412);
  assert.equal(evaluatePreconditions({ ifMatch: ETAG }, ETAG, MTIME), 200);
  // If-Match present: If-Unmodified-Since is ignored
  assert.equal(
    evaluatePreconditions({ ifMatch: ETAG, ifUnmodifiedSince: httpDate(0) }, ETAG, MTIME),
    200,
  );
  assert.equal(evaluatePreconditions({ ifUnmodifiedSince: httpDate(0) }, ETAG, MTIME), 412);
  assert.equal(evaluatePreconditions({ ifUnmodifiedSince: LM }, ETAG, MTIME), 200);
  assert.equal(evaluatePreconditions({ ifUnmodifiedSince: "garbage" }, ETAG, MTIME), 200);
  assert.equal(evaluatePreconditions({ ifNoneMatch: `W/${ETAG}` }, ETAG, MTIME), 304);
  assert.equal(evaluatePreconditions({ ifNoneMatch: "*" }, ETAG, MTIME), 304);
  assert.equal(evaluatePreconditions({ ifNoneMatch: '"x"' }, ETAG, MTIME), 200);
  // If-None-Match present: If-Modified-Since is ignored
  assert.equal(
    evaluatePreconditions({ ifNoneMatch: '"x"', ifModifiedSince: LM }, ETAG, MTIME),
    200,
  );
  assert.equal(evaluatePreconditions({ ifModifiedSince: LM }, ETAG, MTIME), 304);
  assert.equal(evaluatePreconditions({ ifModifiedSince: httpDate(0) }, ETAG, MTIME), 200);
  // 412 wins over 304
  assert.equal(evaluatePreconditions({ ifMatch: '"no"', ifNoneMatch: ETAG }, ETAG, MTIME), 412);
});
