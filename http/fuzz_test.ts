/**
 * Property tests: random and mutated requests never throw out of the parser or
 * the engine, never get two responses for one request, and every accepted
 * request round-trips (serialise -> parse gives the same head).
 */
import assert from "node:assert/strict";
import fc from "npm:fast-check@^4.11.0";
import { parseRequest, RequestParser } from "./parser.ts";
import { HttpConnection } from "./engine.ts";
import type { RequestHead } from "./types.ts";

const enc = new TextEncoder();
const SEED = 20261126;

const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const token = (max: number) =>
  fc.string({ unit: fc.constantFrom(...tchars), minLength: 1, maxLength: max });
const visible = (min: number, max: number) =>
  fc.string({
    unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    minLength: min,
    maxLength: max,
  });
/** Field values: VCHAR/obs-text with inner SP/HT, no leading/trailing whitespace. */
const fieldValue = fc.oneof(
  fc.constant(""),
  fc.tuple(
    visible(1, 1),
    fc.string({
      unit: fc.oneof(
        fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
        fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)),
        fc.constant("\t"),
      ),
      maxLength: 40,
    }),
    visible(1, 1),
  ).map(([a, b, c]) => a + b + c),
);
const SPECIAL = new Set(["host", "content-length", "transfer-encoding", "connection"]);
const header = fc.tuple(token(20), fieldValue).filter(([n]) => !SPECIAL.has(n.toLowerCase()));
/** Valid Host values: uri-host [":" port] (RFC 9112 sec. 3.2), or empty. */
const hostValue = fc.oneof(
  fc.constant(""),
  fc.tuple(
    fc.string({
      unit: fc.constantFrom(..."abcXYZ019-._~!$&'()*+,;="),
      minLength: 1,
      maxLength: 20,
    }),
    fc.option(fc.nat({ max: 65535 }), { nil: undefined }),
  ).map(([h, port]) => port === undefined ? h : `${h}:${port}`),
  fc.constantFrom("[::1]", "[2001:db8::7]:8080", "127.0.0.1:80"),
);

/** A valid request head (GET-like; no body) with its serialisation. */
const validRequest = fc.record({
  // Registered methods only: others are a 501 (RFC 9110 sec. 9.1).
  method: fc.constantFrom("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "MOVE"),
  // No "#": a fragment is never part of a request-target (RFC 9112 sec. 3.2).
  path: visible(0, 60).map((p) => "/" + p.replace(/[?#]/g, "")),
  query: fc.option(visible(0, 30).map((q) => q.replace(/#/g, "")), { nil: undefined }),
  minor: fc.constantFrom(0 as const, 1 as const),
  host: hostValue,
  // Distinct names: repeated lines are combined (RFC 9110 sec. 5.3).
  headers: fc.uniqueArray(header, { maxLength: 12, selector: ([n]) => n.toLowerCase() }),
  ows: fc.constantFrom("", " ", "\t", "  "),
}).map((r) => {
  const target = r.query === undefined ? r.path : `${r.path}?${r.query}`;
  const fields: [string, string][] = [["Host", r.host], ...r.headers];
  let s = `${r.method} ${target} HTTP/1.${r.minor}\r\n`;
  for (const [n, v] of fields) s += `${n}:${r.ows}${v}${r.ows}\r\n`;
  s += "\r\n";
  const head: RequestHead = {
    method: r.method,
    target,
    path: r.path,
    query: r.query ?? "",
    minor: r.minor,
    headers: fields.flatMap(([n, v]) => [n.toLowerCase(), v]),
  };
  return { head, bytes: latin1Bytes(s) };
});

function latin1Bytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** Byte-level mutations of a valid request. */
const mutated = fc.tuple(
  validRequest,
  fc.array(
    fc.tuple(
      fc.constantFrom("flip", "insert", "delete", "dup"),
      fc.nat(),
      fc.constantFrom(0, 9, 10, 13, 32, 58, 0x7f, 0x80, 0xff, 65, 47),
    ),
    { minLength: 1, maxLength: 4 },
  ),
).map(([r, muts]) => {
  let b = Array.from(r.bytes);
  for (const [kind, at, byte] of muts) {
    const i = at % (b.length + 1);
    if (kind === "flip" && i < b.length) b[i] = byte;
    else if (kind === "insert") b.splice(i, 0, byte);
    else if (kind === "delete") b.splice(i, 1);
    else b = b.concat(b.slice(0, i));
  }
  return Uint8Array.from(b);
});

const anyBytes = fc.oneof(
  mutated,
  fc.uint8Array({ maxLength: 600 }),
  fc.array(validRequest, { minLength: 1, maxLength: 4 }).map((rs) => {
    const out: number[] = [];
    for (const r of rs) out.push(...r.bytes);
    return Uint8Array.from(out);
  }),
);

Deno.test("fuzz: a valid request serialised and parsed back is the same head", () => {
  fc.assert(
    fc.property(validRequest, ({ head, bytes }) => {
      const r = parseRequest(bytes);
      assert.ok(r !== null && "head" in r, JSON.stringify(r));
      assert.deepEqual(r.head, { ...head, remote: undefined, user: undefined });
      assert.equal(r.used, bytes.length);
    }),
    { seed: SEED, numRuns: 500 },
  );
});

Deno.test("fuzz: the parser never throws, and a split never changes the outcome of a valid request", () => {
  fc.assert(
    fc.property(anyBytes, fc.nat(), (bytes, cut) => {
      const p = new RequestParser();
      let pos = 0;
      for (let guard = 0; guard < 100 && pos < bytes.length; guard++) {
        const n = p.parse(bytes, pos);
        if (n <= 0) break;
        pos += n + p.contentLength;
      }
      const whole = parseRequest(bytes);
      const c = bytes.length === 0 ? 0 : cut % bytes.length;
      const q = new RequestParser();
      const first = q.parse(bytes.subarray(0, c), 0);
      if (whole !== null && "head" in whole && first === 0) {
        assert.equal(q.parse(bytes, 0), whole.used);
        assert.deepEqual(q.head, whole.head);
      }
    }),
    { seed: SEED, numRuns: 2000 },
  );
});

Deno.test("fuzz: the engine never throws and never sends more responses than requests", async () => {
  await fc.assert(
    fc.asyncProperty(
      anyBytes,
      fc.array(fc.nat(), { maxLength: 4 }),
      fc.boolean(),
      fc.boolean(),
      async (bytes, cuts, asyncHandler, asyncWrite) => {
        const chunks: Uint8Array[] = [];
        let out = "";
        let requests = 0;
        let releases = 0;
        const seen: string[] = [];
        const conn = new HttpConnection(
          {
            write: (b) => {
              out += new TextDecoder().decode(b);
              return asyncWrite ? Promise.resolve() : undefined;
            },
            close() {},
          },
          (req) => {
            requests++;
            seen.push(req.method === "HEAD" ? "(HEAD)" : req.path);
            const body = enc.encode(req.path);
            const reply = {
              status: 200,
              headers: [],
              body: [body],
              length: body.length,
              release: () => void releases++,
            };
            return asyncHandler ? Promise.resolve(reply) : reply;
          },
        );
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        let prev = 0;
        for (const p of [...points, bytes.length]) {
          chunks.push(bytes.subarray(prev, p));
          prev = p;
        }
        for (const ch of chunks) await conn.feed(ch);
        conn.end();
        const responses = out.match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0;
        // One response per handled request, plus at most one engine error.
        assert.ok(responses === requests || responses === requests + 1, out);
        assert.equal(releases, requests);
        // Answers come in request order: each 200 body is the path of its request.
        // (A HEAD is answered with the head only.)
        const bodies: string[] = [];
        let at = 0;
        while (at < out.length) {
          const headEnd = out.indexOf("\r\n\r\n", at);
          if (headEnd < 0) break;
          const head = out.slice(at, headEnd);
          let length = Number(/Content-Length: (\d+)/.exec(head)?.[1] ?? 0);
          if (head.startsWith("HTTP/1.1 200 ")) {
            if (seen[bodies.length] === "(HEAD)") {
              length = 0;
              bodies.push("(HEAD)");
            } else bodies.push(out.slice(headEnd + 4, headEnd + 4 + length));
          }
          at = headEnd + 4 + length;
        }
        assert.deepEqual(bodies, seen);
      },
    ),
    { seed: SEED, numRuns: 1000 },
  );
});
