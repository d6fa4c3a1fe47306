import assert from "node:assert/strict";
import { decodePath, decodeRawPath, hasDotComponent, isInside } from "./resolve.ts";

Deno.test("decodePath() decodes percent escapes once", () => {
  assert.deepEqual(decodePath("/a%20b/c%25d.txt", false), {
    ok: true,
    segments: ["a b", "c%d.txt"],
    trailingSlash: false,
  });
  // %2525 decodes to the literal "%25", never to "%"
  assert.deepEqual(decodePath("/%2525", false), {
    ok: true,
    segments: ["%25"],
    trailingSlash: false,
  });
});

Deno.test("decodePath() returns the root as no segments with a trailing slash", () => {
  assert.deepEqual(decodePath("/", false), { ok: true, segments: [], trailingSlash: true });
  assert.deepEqual(decodePath("/d/", false), { ok: true, segments: ["d"], trailingSlash: true });
});

Deno.test("decodePath() decodes valid multi-byte UTF-8", () => {
  const r = decodePath("/" + encodeURIComponent("h\u00e9llo \u{1f600}"), false);
  assert.ok(r.ok);
  assert.deepEqual(r.segments, ["h\u00e9llo \u{1f600}"]);
});

Deno.test("decodePath() answers 400 to malformed paths, never repairing them", () => {
  const bad = [
    "", // empty
    "a/b", // relative
    "*",
    "/a%", // truncated escape
    "/a%2", // truncated escape
    "/a%zz", // not hex
    "/a%00b", // NUL
    "/a%2fb", // encoded slash
    "/a%2Fb",
    "/a%5cb", // encoded backslash
    "/a\\b", // backslash
    "/..", // dot segments
    "/a/../b",
    "/a/%2e%2e/b", // encoded ..
    "/a/%2E%2E",
    "/./a",
    "/a/.",
    "//a", // empty segment
    "/a//b",
    "/%c0%af", // overlong "/"
    "/%c0%ae%c0%ae/", // overlong ".."
    "/%ff", // invalid UTF-8
    "/%ed%a0%80", // UTF-16 surrogate
    "/a b", // raw space
    "/\u00e9", // raw non-ASCII
    "/a\u0000",
  ];
  for (const p of bad) {
    const r = decodePath(p, true);
    assert.equal(r.ok, false, JSON.stringify(p));
    if (!r.ok) assert.equal(r.status, 400, JSON.stringify(p));
  }
});

Deno.test("decodePath() hides dotfiles and dot-directories with 404 unless allowed", () => {
  for (const p of ["/.env", "/.git/config", "/a/.hidden/", "/%2eenv"]) {
    const r = decodePath(p, false);
    assert.ok(!r.ok && r.status === 404, p);
    assert.ok(decodePath(p, true).ok, p);
  }
});

Deno.test("isInside() requires a path boundary", () => {
  assert.ok(isInside("/srv", "/srv"));
  assert.ok(isInside("/srv", "/srv/a"));
  assert.ok(!isInside("/srv", "/srvx"));
  assert.ok(!isInside("/srv", "/sr"));
  assert.ok(!isInside("/srv", "/etc/passwd"));
  assert.ok(isInside("/", "/etc"));
});

Deno.test("hasDotComponent() looks only below the root", () => {
  assert.ok(hasDotComponent("/srv", "/srv/.git/x"));
  assert.ok(hasDotComponent("/srv", "/srv/a/.b"));
  assert.ok(!hasDotComponent("/home/.u/srv", "/home/.u/srv/a"));
  assert.ok(!hasDotComponent("/srv", "/srv/a.b/c"));
});

Deno.test("decodeRawPath() keeps invalid UTF-8 bytes but refuses overlong forms and traversal", () => {
  const r = decodeRawPath("/d/a%FF%FE.txt", false);
  assert.ok(r.ok);
  assert.deepEqual([...r.bytes], [0x64, 0x2f, 0x61, 0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74]);
  assert.equal(r.trailingSlash, false);
  for (
    const p of [
      "/%c0%af",
      "/%c1%81",
      "/%e0%80%af",
      "/%f0%80%80%af",
      "/%ff/../x",
      "/%ff//x",
      "/%ff/./x",
      "/%ff%2f",
      "/%ff%00",
    ]
  ) {
    const x = decodeRawPath(p, false);
    assert.ok(!x.ok && x.status === 400, p);
  }
  const hidden = decodeRawPath("/.%ff", false);
  assert.ok(!hidden.ok && hidden.status === 404);
  assert.ok(decodeRawPath("/.%ff", true).ok);
  // a valid path is accepted the same way
  assert.ok(decodeRawPath("/a/b", false).ok);
});
