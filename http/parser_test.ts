import assert from "node:assert/strict";
import { parseRequest, RequestParser } from "./parser.ts";
import {
  MAX_DISCARD_BODY,
  MAX_HEADER_BLOCK,
  MAX_HEADERS,
  MAX_METHOD,
  MAX_REQUEST_LINE,
} from "./limits.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);

/** Status of parsing `s` in one piece: 0 when accepted, else the error status. */
function status(s: string): number | "incomplete" {
  const r = parseRequest(bytes(s));
  if (r === null) return "incomplete";
  return "error" in r ? r.error : 0;
}

const GET = "GET /a/b.txt?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";

Deno.test("parser: a simple GET gives method, target, path, query, minor, lower-case headers", () => {
  const r = parseRequest(bytes(GET));
  assert.ok(r && "head" in r);
  assert.deepEqual(r.head, {
    method: "GET",
    target: "/a/b.txt?x=1&y=%20",
    path: "/a/b.txt",
    query: "x=1&y=%20",
    minor: 1,
    headers: ["host", "example.com", "accept", "*/*"],
    remote: undefined,
    user: undefined,
  });
  assert.equal(r.used, GET.length);
  assert.equal(r.keepAlive, true);
  assert.equal(r.contentLength, 0);
});

Deno.test("parser: a request split at every byte offset parses the same", () => {
  const whole = bytes(GET);
  for (let cut = 1; cut < whole.length; cut++) {
    const p = new RequestParser();
    assert.equal(p.parse(whole.subarray(0, cut), 0), 0, `cut ${cut}`);
    assert.equal(p.partial, true);
    assert.equal(p.parse(whole, 0), whole.length, `cut ${cut}`);
    assert.equal(p.head!.target, "/a/b.txt?x=1&y=%20");
    assert.equal(p.partial, false);
  }
});

Deno.test("parser: a request fed one byte at a time, at a moving start offset", () => {
  const whole = bytes("xyz" + GET);
  const p = new RequestParser();
  let n = 0;
  for (let end = 4; end <= whole.length; end++) {
    n = p.parse(whole.subarray(0, end), 3);
    if (end < whole.length) assert.equal(n, 0);
  }
  assert.equal(n, GET.length);
  assert.deepEqual(p.head!.headers, ["host", "example.com", "accept", "*/*"]);
});

Deno.test("parser: pipelined requests in one buffer are parsed one after another", () => {
  const two = bytes(GET + "HEAD /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  const p = new RequestParser();
  const a = p.parse(two, 0);
  assert.equal(a, GET.length);
  assert.equal(p.head!.method, "GET");
  const b = p.parse(two, a);
  assert.equal(a + b, two.length);
  assert.equal(p.head!.method, "HEAD");
  assert.equal(p.keepAlive, false);
});

Deno.test("parser: keep-alive rules for HTTP/1.0 and HTTP/1.1", () => {
  const ka = (s: string) => {
    const r = parseRequest(bytes(s));
    assert.ok(r && "head" in r, s);
    return r.keepAlive;
  };
  assert.equal(ka("GET / HTTP/1.0\r\n\r\n"), false);
  assert.equal(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), true);
  assert.equal(ka("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), false);
  assert.equal(ka("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), true);
  assert.equal(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n"), false);
  assert.equal(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, close\r\n\r\n"), false);
  assert.equal(ka("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"), true);
});

Deno.test("parser: HTTP/1.0 needs no Host; empty lines before the request line are ignored", () => {
  const r = parseRequest(bytes("\r\n\r\nGET /x HTTP/1.0\r\n\r\n"));
  assert.ok(r && "head" in r);
  assert.equal(r.head.minor, 0);
  assert.equal(r.used, 4 + "GET /x HTTP/1.0\r\n\r\n".length);
});

Deno.test("parser: header values are trimmed, keep inner spaces and obs-text (latin1)", () => {
  const raw = new Uint8Array([
    ...bytes("GET / HTTP/1.1\r\nHost:h\r\nX-A: \t a  b \t\r\nX-B: "),
    0xe9,
    0x80,
    ...bytes("\r\nX-Empty:\r\n\r\n"),
  ]);
  const r = parseRequest(raw);
  assert.ok(r && "head" in r);
  assert.deepEqual(r.head.headers, [
    "host",
    "h",
    "x-a",
    "a  b",
    "x-b",
    "\u00e9\u0080",
    "x-empty",
    "",
  ]);
});

Deno.test("parser: 400 for malformed request lines", () => {
  for (
    const line of [
      " GET / HTTP/1.1",
      "GET  / HTTP/1.1",
      "GET /  HTTP/1.1",
      "GET / HTTP/1.1 ",
      "GET\t/ HTTP/1.1",
      "GET / http/1.1",
      "GET / HTTP/1.1x",
      "GET / XTTP/1.1",
      "GET",
      "GET ",
      "G(T / HTTP/1.1",
      "GET a HTTP/1.1",
      "GET * HTTP/1.1",
      "GET h:80 HTTP/1.1",
      "GET /#f HTTP/1.1",
      "GET /\x7f HTTP/1.1",
      "GET /\u00e9 HTTP/1.1",
    ]
  ) {
    assert.equal(status(`${line}\r\nHost: h\r\n\r\n`), 400, JSON.stringify(line));
  }
});

Deno.test("parser: 505 for other versions, including HTTP/0.9-style and HTTP/2.0 lines", () => {
  assert.equal(status("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  assert.equal(status("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), 505);
  assert.equal(status("GET / HTTP/2\r\nHost: h\r\n\r\n"), 505);
  assert.equal(status("GET / HTTP/10.0\r\nHost: h\r\n\r\n"), 505);
  assert.equal(status("GET /\r\n\r\n"), 505);
  assert.equal(status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
});

Deno.test("parser: 400 for bare CR, bare LF, obs-fold, space before colon, bad name bytes", () => {
  for (
    const h of [
      "X-A: a\rb",
      "X-A: a\nb",
      "X-A: a\r",
      " X-A: a",
      "X-A: a\r\n b",
      "X-A: a\r\n\tb",
      "X-A : a",
      "X-A\t: a",
      "X(A: a",
      ": a",
      "X-A",
      "X-A: a\x00b",
      "X-A: a\x7fb",
      "X-A: a\x01b",
      "X\u00e9: a",
    ]
  ) {
    assert.equal(status(`GET / HTTP/1.1\r\nHost: h\r\n${h}\r\n\r\n`), 400, JSON.stringify(h));
  }
  assert.equal(status("GET / HTTP/1.1\nHost: h\r\n\r\n"), 400);
  assert.equal(status("GET / HTTP/1.1\r\nHost: h\r\n\n"), 400);
  assert.equal(status("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n"), 400);
  assert.equal(status("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
});

Deno.test("parser: Host rules (exactly one on 1.1, at most one on 1.0, empty allowed)", () => {
  assert.equal(status("GET / HTTP/1.1\r\n\r\n"), 400);
  assert.equal(status("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), 400);
  assert.equal(status("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n"), 400);
  assert.equal(status("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), 0);
  assert.equal(status("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);
});

Deno.test("parser: Content-Length and Transfer-Encoding rules", () => {
  const h = (x: string) => `GET / HTTP/1.1\r\nHost: h\r\n${x}\r\n\r\n`;
  assert.equal(status(h("Content-Length: 5\r\nContent-Length: 5")), 400);
  assert.equal(status(h("Content-Length: 5\r\nTransfer-Encoding: chunked")), 400);
  // RFC 9112 sec. 6.1 / 6.3: chunked is read (tests/rfc_test.ts), a coding
  // before it is not implemented (501), chunked not last is a 400.
  assert.equal(status(h("Transfer-Encoding: chunked")), "incomplete");
  assert.equal(status(h("Transfer-Encoding: gzip, chunked")), 501);
  assert.equal(status(h("Transfer-Encoding: identity")), 400);
  for (const v of ["+5", "-1", "5a", "0x10", "1 2", "5,5", ""]) {
    assert.equal(status(h(`Content-Length: ${v}`)), 400, v);
  }
  // A valid numeral too large to take (RFC 9112 sec. 6.2), even with many digits.
  assert.equal(status(h("Content-Length: 1234567890123456")), 413);
  assert.equal(status(h(`Content-Length: ${"0".repeat(40)}7`)), 0);
  assert.equal(status(h(`Content-Length: ${MAX_DISCARD_BODY + 1}`)), 413);
  assert.equal(status(h("Content-Length: 999999999999999")), 413);
  const r = parseRequest(bytes(h(`Content-Length: ${MAX_DISCARD_BODY}`)));
  assert.ok(r && "head" in r);
  assert.equal(r.contentLength, MAX_DISCARD_BODY);
  const z = parseRequest(bytes(h("Content-Length: 007")));
  assert.ok(z && "head" in z);
  assert.equal(z.contentLength, 7);
});

Deno.test("parser: request line limit is exact (N ok, N+1 -> 414), also when incomplete", () => {
  const line = (n: number) => {
    const prefix = "GET /";
    const suffix = " HTTP/1.1";
    return prefix + "a".repeat(n - prefix.length - suffix.length) + suffix;
  };
  assert.equal(line(MAX_REQUEST_LINE).length, MAX_REQUEST_LINE);
  assert.equal(status(`${line(MAX_REQUEST_LINE)}\r\nHost: h\r\n\r\n`), 0);
  assert.equal(status(`${line(MAX_REQUEST_LINE + 1)}\r\nHost: h\r\n\r\n`), 414);
  // Without waiting for the end of the line:
  assert.equal(status("GET /" + "a".repeat(MAX_REQUEST_LINE)), 414);
  assert.equal(status("GET /" + "a".repeat(MAX_REQUEST_LINE - 5) + "\r"), "incomplete");
});

Deno.test("parser: method limit (16 waits for the line, 17 -> 501 at once)", () => {
  // Methods we do not know are a 501 anyway (RFC 9110 sec. 9.1); the limit
  // refuses a long one before the rest of the line is read.
  assert.equal(status(`${"M".repeat(MAX_METHOD)} /`), "incomplete");
  assert.equal(status(`${"M".repeat(MAX_METHOD)} / HTTP/1.1\r\nHost: h\r\n\r\n`), 501);
  assert.equal(status(`${"M".repeat(MAX_METHOD + 1)} /`), 501);
});

Deno.test("parser: header block limit is exact (N ok, N+1 -> 431), also when incomplete", () => {
  // Host line (9 bytes with CRLF) + one filler line that makes the block exactly n bytes.
  const block = (n: number) => {
    const host = "Host: h\r\n";
    const fill = n - host.length - "X: \r\n".length;
    return host + "X: " + "v".repeat(fill) + "\r\n";
  };
  assert.equal(block(MAX_HEADER_BLOCK).length, MAX_HEADER_BLOCK);
  assert.equal(status(`GET / HTTP/1.1\r\n${block(MAX_HEADER_BLOCK)}\r\n`), 0);
  assert.equal(status(`GET / HTTP/1.1\r\n${block(MAX_HEADER_BLOCK + 1)}\r\n`), 431);
  assert.equal(status(`GET / HTTP/1.1\r\nX: ${"v".repeat(MAX_HEADER_BLOCK)}`), 431);
});

Deno.test("parser: header count limit is exact (100 ok, 101 -> 431)", () => {
  const many = (n: number) => "GET / HTTP/1.1\r\nHost: h\r\n" + "X: y\r\n".repeat(n - 1) + "\r\n";
  assert.equal(status(many(MAX_HEADERS)), 0);
  assert.equal(status(many(MAX_HEADERS + 1)), 431);
});

Deno.test("parser: unknown header names are lower-cased, known ones interned", () => {
  const r = parseRequest(
    bytes("GET / HTTP/1.1\r\nHOST: h\r\nX-Custom-Thing: 1\r\nx-lower: 2\r\n\r\n"),
  );
  assert.ok(r && "head" in r);
  assert.deepEqual(r.head.headers, ["host", "h", "x-custom-thing", "1", "x-lower", "2"]);
});

Deno.test("parser: after an error the parser starts clean on a new head", () => {
  const p = new RequestParser();
  assert.equal(p.parse(bytes("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"), 0), -1);
  assert.equal(p.error, 400);
  assert.equal(p.parse(bytes(GET), 0), GET.length);
});

Deno.test("parser: isHead is true only once a HEAD request line is complete, also after an error", () => {
  const p = new RequestParser();
  assert.equal(p.parse(bytes("HEAD /x HTTP/1.1"), 0), 0);
  assert.equal(p.isHead, false, "line not complete: method unknown");
  assert.equal(p.parse(bytes("HEAD /x HTTP/1.1\r\nHost: h\r\n"), 0), 0);
  assert.equal(p.isHead, true);
  const fails: [string, number][] = [
    ["HEAD / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501],
    ["HEAD / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", 400],
    ["HEAD / HTTP/1.1\r\n\r\n", 400],
    ["HEAD / HTTP/1.1\r\nHost: h\r\nContent-Length: 70000\r\n\r\n", 413],
    ["HEAD / HTTP/3.0\r\nHost: h\r\n\r\n", 505],
    ["HEAD * HTTP/1.1\r\nHost: h\r\n\r\n", 400],
  ];
  for (const [req, status] of fails) {
    const q = new RequestParser();
    assert.equal(q.parse(bytes(req), 0), -1, req);
    assert.equal(q.error, status, req);
    assert.equal(q.isHead, true, req);
  }
  for (
    const req of ["GET / HTTP/1.1\r\n\r\n", "head / HTTP/1.1\r\n\r\n", "HEADX / HTTP/1.1\r\n\r\n"]
  ) {
    const q = new RequestParser();
    assert.equal(q.parse(bytes(req), 0), -1, req);
    assert.equal(q.isHead, false, req);
  }
  // A new head after an error, or after a HEAD that was answered, starts unknown.
  const r = new RequestParser();
  assert.equal(r.parse(bytes("HEAD / HTTP/1.1\r\n\r\n"), 0), -1);
  assert.equal(r.parse(bytes("\rX"), 0), -1);
  assert.equal(r.isHead, false);
  const head = "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n";
  assert.equal(r.parse(bytes(head), 0), head.length);
  assert.equal(r.isHead, false);
});

Deno.test("parser: a body announced with Expect: 100-continue ends the connection after the answer", () => {
  const r = parseRequest(
    bytes("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
  );
  assert.ok(r && "head" in r);
  assert.equal(r.keepAlive, false);
  const s = parseRequest(bytes("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"));
  assert.ok(s && "head" in s);
  assert.equal(s.keepAlive, true);
});

Deno.test("parser: names guessed from the previous head never mislabel a different name", () => {
  const p = new RequestParser();
  const first = bytes("GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nConnection: close\r\n\r\n");
  assert.equal(p.parse(first, 0), first.length);
  for (
    const [n0, n1, n2] of [
      ["Hosx", "Accepts", "Connectio"],
      ["hos", "accept-", "connection-x"],
      ["ACCEPT-X", "ACCEPT", "CONNECTION"],
      ["x", "y", "z"],
    ]
  ) {
    const req = bytes(`GET / HTTP/1.1\r\nHost: h\r\n${n0}: 1\r\n${n1}: 2\r\n${n2}: 3\r\n\r\n`);
    assert.equal(p.parse(req, 0), req.length);
    assert.deepEqual(p.head!.headers, [
      "host",
      "h",
      n0.toLowerCase(),
      "1",
      n1.toLowerCase(),
      "2",
      n2.toLowerCase(),
      "3",
    ]);
    assert.equal(p.keepAlive, true);
  }
});

Deno.test("parser: a known name with any one byte changed is not taken for it, in any case", () => {
  // The known-name check compares 4 bytes at a time plus an overlapping last
  // word: every position of every word must count.
  const names = [
    "te",
    "dnt",
    "host",
    "range",
    "accept",
    "if-match",
    "connection",
    "content-length",
    "accept-encoding",
    "transfer-encoding",
    "upgrade-insecure-requests",
  ];
  for (const name of names) {
    for (
      const cased of [
        name,
        name.toUpperCase(),
        name.replace(/(^|-)./g, (m) => m.toUpperCase()),
      ]
    ) {
      const extra = name === "host" ? "" : "Host: h\r\n";
      const value = name === "content-length" ? "0" : name === "connection" ? "close" : "v";
      const r = parseRequest(bytes(`GET / HTTP/1.1\r\n${extra}${cased}: ${value}\r\n\r\n`));
      if (name === "transfer-encoding") {
        assert.ok(r && "error" in r && r.error === 400, cased); // "v" is not chunked
        continue;
      }
      assert.ok(r && "head" in r, cased);
      assert.equal(r.head.headers[r.head.headers.length - 2], name);
      if (name === "connection") assert.equal(r.keepAlive, false);
    }
    for (let i = 0; i < name.length; i++) {
      // CR and "-" differ only in bit 0x20, the bit a case fold ignores.
      for (const b of ["\r", "\x00", "@", "{", "[", "\x7f", "\xe9"]) {
        const broken = name.slice(0, i) + b + name.slice(i + 1);
        assert.equal(status(`GET / HTTP/1.1\r\nHost: h\r\n${broken}: 2\r\n\r\n`), 400, broken);
      }
      const changed = name.slice(0, i) + (name[i] === "x" ? "y" : "x") + name.slice(i + 1);
      const r = parseRequest(bytes(`GET / HTTP/1.1\r\nHost: h\r\n${changed}: 2\r\n\r\n`));
      assert.ok(r && "head" in r, changed);
      assert.deepEqual(r.head.headers, ["host", "h", changed, "2"]);
      assert.equal(r.contentLength, 0);
      assert.equal(r.keepAlive, true);
    }
  }
});

Deno.test("parser: every control byte and DEL is rejected at every offset of a value", () => {
  // Values are scanned 4 bytes at a time first: a bad byte in any lane, at
  // any alignment, must still be found.
  const bad = [0, 1, 8, 10, 11, 12, 13, 27, 31, 0x7f];
  for (const b of bad) {
    for (let lead = 0; lead < 9; lead++) {
      const value = new Uint8Array(12).fill(0x61);
      value[lead] = b;
      const req = new Uint8Array([
        ...bytes("GET / HTTP/1.1\r\nHost: h\r\nX-V: "),
        ...value,
        ...bytes("\r\n\r\n"),
      ]);
      const r = parseRequest(req);
      assert.ok(r && "error" in r && r.error === 400, `byte ${b} at ${lead}`);
    }
  }
  // HT, SP, and obs-text are field-value bytes at any offset and round-trip as latin1.
  for (const b of [9, 32, 0x80, 0xa0, 0xff]) {
    for (let lead = 1; lead < 9; lead++) {
      const value = new Uint8Array(12).fill(0x61);
      value[lead] = b;
      const req = new Uint8Array([
        ...bytes("GET / HTTP/1.1\r\nHost: h\r\nX-V: "),
        ...value,
        ...bytes("\r\n\r\n"),
      ]);
      const r = parseRequest(req);
      assert.ok(r && "head" in r, `byte ${b} at ${lead}`);
      assert.equal(r.head.headers[3], String.fromCharCode(...value));
    }
  }
});

Deno.test("parser: a chunked body is read with the head, also fed one byte at a time", () => {
  const head = "GET /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  const body = '3;a=b;q="x\\"y"\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n';
  const next = "GET /n HTTP/1.1\r\nHost: h\r\n\r\n";
  const whole = bytes(head + body + next);
  const p = new RequestParser();
  let used = 0;
  for (let end = 1; end <= whole.length; end++) {
    used = p.parse(whole.subarray(0, end), 0);
    if (used !== 0) break;
    assert.equal(p.partial, true);
  }
  assert.equal(used, head.length + body.length);
  assert.equal(p.head!.path, "/c");
  assert.equal(p.keepAlive, true);
  assert.equal(p.contentLength, 0, "nothing left for the caller to skip");
  assert.equal(p.partial, false);
  assert.equal(p.parse(whole, used), next.length);
  assert.equal(p.head!.path, "/n");
});

Deno.test("parser: chunked framing errors and limits", () => {
  const te = (body: string) =>
    status(`GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
  assert.equal(te("0\r\n\r\n"), 0);
  assert.equal(te("0000\r\n\r\n"), 0);
  assert.equal(te("5\r\nhel"), "incomplete");
  assert.equal(te("5\r\nhelloX"), 400);
  assert.equal(te("5\nhello\r\n"), 400);
  assert.equal(te("\r\n"), 400);
  assert.equal(te("g\r\n"), 400);
  assert.equal(te("1 \r\n"), 400);
  assert.equal(te("1;\r\n"), 400);
  assert.equal(te('1;a="b\r\n'), 400);
  assert.equal(te("0\r\n x: folded\r\n\r\n"), 400);
  assert.equal(te("0\r\nX-A: a\x00\r\n\r\n"), 400);
  assert.equal(te("123456789\r\n"), 413);
  assert.equal(te(`${(MAX_DISCARD_BODY + 1).toString(16)}\r\n`), 413);
  assert.equal(te(`1;${"x".repeat(5000)}`), 413);
  assert.equal(te(`0\r\nX-A: ${"a".repeat(MAX_HEADER_BLOCK)}`), 431);
  // Expect: 100-continue: the body may never come, so it is not waited for.
  const e = parseRequest(
    bytes(
      "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    ),
  );
  assert.ok(e && "head" in e);
  assert.equal(e.keepAlive, false);
});

Deno.test("parser: repeated field lines are combined in order; Host and Content-Length are not", () => {
  const r = parseRequest(
    bytes(
      "GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nX-L: 1\r\naccept: b\r\nX-l: 2\r\nCookie: c=1\r\n" +
        "Accept:\r\nCookie: d=2\r\n\r\n",
    ),
  );
  assert.ok(r && "head" in r);
  assert.deepEqual(r.head.headers, [
    "host",
    "h",
    "accept",
    "a, b",
    "x-l",
    "1, 2",
    "cookie",
    "c=1; d=2",
  ]);
  // The next head of the same parser starts with nothing seen.
  const p = new RequestParser();
  p.parse(bytes("GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\n\r\n"), 0);
  p.parse(bytes("GET / HTTP/1.1\r\nHost: h\r\nAccept: z\r\n\r\n"), 0);
  assert.deepEqual(p.head!.headers, ["host", "h", "accept", "z"]);
});

Deno.test("parser: request-target forms (RFC 9112 sec. 3.2)", () => {
  const head = (s: string) => {
    const r = parseRequest(bytes(s));
    assert.ok(r && "head" in r, s);
    return r.head;
  };
  const abs = head("GET http://a.example:8/p/q?x=%20 HTTP/1.1\r\nHost: b\r\n\r\n");
  assert.deepEqual([abs.target, abs.path, abs.query], [
    "http://a.example:8/p/q?x=%20",
    "/p/q",
    "x=%20",
  ]);
  assert.deepEqual(abs.headers, ["host", "a.example:8"]);
  assert.equal(head("GET https://[::1]:8443 HTTP/1.1\r\nHost: b\r\n\r\n").path, "/");
  assert.equal(head("GET http://h?q HTTP/1.1\r\nHost: b\r\n\r\n").query, "q");
  const star = head("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  assert.equal(star.path, "*");
  for (
    const t of ["http://u@h/", "http:///x", "http://h h/", "ftp://h/", "http:/h/", "*x", "h:80"]
  ) {
    assert.equal(status(`GET ${t} HTTP/1.1\r\nHost: h\r\n\r\n`), 400, t);
  }
  assert.equal(status("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n"), 501);
  assert.equal(status("CONNECT h HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  assert.equal(status("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  // Still one valid Host on 1.1 (sec. 3.2), even with an absolute-form target.
  assert.equal(status("GET http://h/ HTTP/1.1\r\n\r\n"), 400);
  assert.equal(status("GET http://h/ HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
});

Deno.test('parser: Host values (uri-host [":" port])', () => {
  const host = (v: string) => status(`GET / HTTP/1.1\r\nHost: ${v}\r\n\r\n`);
  for (
    const ok of [
      "",
      "h",
      "h:",
      "h:80",
      "1.2.3.4:0",
      "[::1]",
      "[::ffff:1.2.3.4]:1",
      "[v7.a:b]",
      "%41b",
      "a-b_c~d.!$&'()*+,;=",
    ]
  ) {
    assert.equal(host(ok), 0, ok);
  }
  for (
    const bad of [
      ":80",
      "h:8a",
      "h h",
      "h/x",
      "h@x",
      "[::1",
      "[]",
      "[zz]",
      "[v.x]",
      "h%4",
      "\u00e9",
      "h:1:2",
    ]
  ) {
    assert.equal(host(bad), 400, bad);
  }
});

Deno.test("parser: a Host found valid on a connection does not let a different one through", () => {
  const p = new RequestParser();
  const head = (h: string) => bytes(`GET / HTTP/1.1\r\nHost: ${h}\r\n\r\n`);
  assert.ok(p.parse(head("a.example"), 0) > 0);
  assert.ok(p.parse(head("a.example"), 0) > 0);
  assert.equal(p.parse(head("a.example/x"), 0), -1);
  assert.equal(p.error, 400);
  assert.ok(p.parse(head("b.example:1"), 0) > 0);
});

Deno.test("parser: HTTP/1.2 to 1.9 are read as 1.1 (RFC 9110 sec. 2.5)", () => {
  const r = parseRequest(bytes("GET / HTTP/1.9\r\nHost: h\r\n\r\n"));
  assert.ok(r && "head" in r);
  assert.equal(r.head.minor, 1);
  assert.equal(r.keepAlive, true);
});
