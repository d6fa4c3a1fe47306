import assert from "node:assert/strict";
import { BodyDecoder, BodyError, BodyFeed, BodyPipe } from "./body.ts";
import { prng } from "../tests/_prng.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Feeds `wire` in pieces cut at random; returns data, bytes used, and the error status (0). */
function run(
  framing: ConstructorParameters<typeof BodyDecoder>[0],
  wire: string,
  seed: number,
  maxBytes = 1 << 20,
): { data: string; used: number; status: number; trailers: string[] } {
  const bytes = enc.encode(wire);
  const rnd = prng(seed);
  let d: BodyDecoder;
  try {
    d = new BodyDecoder(framing, { maxBytes, maxChunkLine: 64, maxTrailerBytes: 64 });
  } catch (e) {
    return { data: "", used: 0, status: (e as BodyError).status, trailers: [] };
  }
  let data = "";
  let pos = 0;
  try {
    while (pos < bytes.length && !d.done) {
      const n = 1 + Math.floor(rnd() * 7);
      const piece = bytes.subarray(pos, Math.min(bytes.length, pos + n));
      const used = d.feed(piece, (b) => data += dec.decode(b));
      pos += used;
      if (used < piece.length) break;
    }
  } catch (e) {
    assert.ok(e instanceof BodyError);
    return { data, used: pos, status: e.status, trailers: [] };
  }
  return { data, used: pos, status: d.done ? 0 : -1, trailers: d.trailers };
}

Deno.test("BodyDecoder reads a Content-Length body split anywhere and stops at its end", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = run({ kind: "length", length: 11 }, "hello worldGET / HTTP/1.1", seed);
    assert.deepEqual([r.data, r.used, r.status], ["hello world", 11, 0]);
  }
});

Deno.test("BodyDecoder decodes chunked bodies with extensions and trailers, split anywhere", () => {
  const wire =
    '5;a=1;b="x y"\r\nhello\r\n6\r\n world\r\n000\r\nContent-Digest: sha-256=:x:\r\n\r\nNEXT';
  for (let seed = 1; seed <= 50; seed++) {
    const r = run({ kind: "chunked" }, wire, seed);
    assert.equal(r.status, 0, `seed ${seed}`);
    assert.equal(r.data, "hello world");
    assert.equal(r.used, wire.length - 4);
    assert.deepEqual(r.trailers, ["content-digest", "sha-256=:x:"]);
  }
});

Deno.test("BodyDecoder answers bad framing and limits with the table's statuses", () => {
  const cases: Array<[string, string, number]> = [
    ["not hex", "zz\r\nab\r\n0\r\n\r\n", 400],
    ["empty size", "\r\nab\r\n0\r\n\r\n", 400],
    ["bad extension", "2;=x\r\nab\r\n0\r\n\r\n", 400],
    ["data not followed by CRLF", "2\r\nabc\r\n0\r\n\r\n", 400],
    ["bare LF", "2\nab\r\n0\r\n\r\n", 400],
    ["bare CR in line", "2\rx\r\nab\r\n0\r\n\r\n", 400],
    ["bad trailer", "0\r\nno colon\r\n\r\n", 400],
    ["trailer name with space", "0\r\nx y: 1\r\n\r\n", 400],
    ["huge numeral", "1000000000000000\r\n", 413],
    ["long chunk line", "1;" + "a".repeat(80) + "\r\n", 413],
    ["trailers too large", "0\r\nx: " + "a".repeat(80) + "\r\n\r\n", 431],
    ["over the upload limit", "9\r\n123456789\r\n0\r\n\r\n", 413],
  ];
  for (const [why, wire, status] of cases) {
    for (let seed = 1; seed <= 5; seed++) {
      assert.equal(run({ kind: "chunked" }, wire, seed, 8).status, status, why);
    }
  }
  // A Content-Length over the limit is refused before a byte is read.
  assert.equal(run({ kind: "length", length: 9 }, "123456789", 1, 8).status, 413);
  assert.equal(run({ kind: "length", length: 8 }, "12345678", 1, 8).status, 0);
});

Deno.test("BodyDecoder keeps failing after an error", () => {
  const d = new BodyDecoder({ kind: "chunked" }, { maxBytes: 10 });
  assert.throws(() => d.feed(enc.encode("x\r\n"), () => {}), BodyError);
  assert.throws(() => d.feed(enc.encode("0\r\n\r\n"), () => {}), BodyError);
  assert.equal(d.error?.status, 400);
});

Deno.test("BodyPipe hands data over in order, pauses the producer at the high-water mark, and fails the reader", async () => {
  const pipe = new BodyPipe(-1, 8);
  const got: string[] = [];
  const reader = (async () => {
    for await (const c of pipe.chunks()) got.push(dec.decode(c));
  })();
  const buf = enc.encode("abcd");
  assert.equal(pipe.push(buf), true);
  buf.fill(0); // push copied it
  assert.equal(pipe.push(enc.encode("efgh")), false); // 8 queued: pause
  await pipe.drained();
  pipe.end(["x-t", "1"]);
  await reader;
  assert.equal(got.join(""), "abcdefgh"); // gathered into one buffer while nobody read
  assert.deepEqual(pipe.trailers, ["x-t", "1"]);

  const broken = new BodyPipe(10);
  broken.push(enc.encode("part"));
  broken.fail(new Error("client went away"));
  await assert.rejects(async () => {
    for await (const _ of broken.chunks()) { /* drain */ }
  }, /client went away/);
});

Deno.test("BodyFeed: decodes into the pipe, pauses at the high-water mark, answers 100-continue only when read, fails on disconnect", async () => {
  let continued = 0;
  const feed = new BodyFeed({ kind: "chunked" }, { maxBytes: 100 }, () => continued++, 4);
  assert.equal(feed.push(enc.encode("6\r\nabcdef\r\n")), 11);
  const wait = feed.wait;
  assert.ok(wait !== undefined, "full: the socket should pause");
  assert.equal(continued, 0);
  const got: string[] = [];
  const reader = (async () => {
    for await (const c of feed.pipe.chunks()) got.push(dec.decode(c));
  })();
  await wait;
  assert.equal(continued, 1);
  assert.equal(feed.push(enc.encode("0\r\n\r\nNEXT")), 5);
  assert.ok(feed.done);
  await reader;
  assert.deepEqual(got, ["abcdef"]);

  const cut = new BodyFeed({ kind: "length", length: 10 }, { maxBytes: 100 });
  cut.push(enc.encode("abc"));
  cut.fail(400, "client went away");
  await assert.rejects(async () => {
    for await (const _ of cut.pipe.chunks()) { /* drain */ }
  }, (e) => e instanceof BodyError && e.status === 400);

  const bad = new BodyFeed({ kind: "chunked" }, { maxBytes: 100 });
  assert.equal(bad.push(enc.encode("zz\r\n")), 4);
  assert.ok(bad.failed);
  await assert.rejects(async () => {
    for await (const _ of bad.pipe.chunks()) { /* drain */ }
  }, (e) => e instanceof BodyError && e.status === 400);
  assert.throws(() => new BodyFeed({ kind: "length", length: 101 }, { maxBytes: 100 }), BodyError);
});
