/**
 * RFC 9112 (HTTP/1.1) sections 2-9 and RFC 9110 sections 5, 8.8, 9, 13, 14
 * and 15, clause by clause, as they apply to an origin server of static files
 * (GET / HEAD, no uploads): one step per requirement, named after its clause,
 * against the real CLI in a subprocess over raw sockets.
 *
 * Where the RFC leaves a choice, this is ours (each row is a step below):
 *
 * | Clause            | The RFC allows                                   | We                      | Why |
 * |-------------------|--------------------------------------------------|-------------------------|-----|
 * | 9112 2.2          | bare LF as a line end (MAY)                      | 400                     | a proxy that reads it otherwise is a smuggling vector |
 * | 9112 2.2          | bare CR: reject or replace with SP               | 400                     | same |
 * | 9112 2.2          | whitespace before the first field: reject or skip the line | 400           | same |
 * | 9112 2.3, 9110 2.5| HTTP/1.2+ as 1.1 (SHOULD) or 505                 | as 1.1                  | forward compatibility within major version 1 |
 * | 9112 2.3          | 505 for another major version                    | 505 (HTTP/2.0, HTTP/0.9)| we speak only 1.x on this port |
 * | 9112 3            | invalid request line: 400 or 301                 | 400                     | never guess what a crafted line meant |
 * | 9112 3.2          | characters outside pchar in the target           | accepted, except `#`    | browsers send `\|`, `^`, `[`, `]` raw; a fragment is never part of a request |
 * | 9112 3.2.2        | absolute-form: the Host line is ignored          | still checked (400 when invalid or missing on 1.1), then replaced by the authority | 3.2 requires a valid Host on every 1.1 request |
 * | 9112 3.2.3, 9110 9.3.6 | CONNECT                                     | 501                     | we are not a proxy |
 * | 9112 3.2.4, 9110 9.3.7 | OPTIONS *                                   | 200, Allow: GET, HEAD, Content-Length: 0 | the methods this server supports anywhere |
 * | 9112 5.2          | obs-fold: reject or replace with SP              | 400                     | smuggling vector |
 * | 9110 5.5          | other control bytes in a value MAY be kept       | 400                     | never needed, sometimes dangerous |
 * | 9110 5.3          | repeated field lines MAY be combined             | combined with ", " (Host and Content-Length: 400 instead) | a list split over lines is one list |
 * | 9112 6.1          | CL + TE: reject, or TE wins and close            | 400 and close           | the classic smuggling shape |
 * | 9112 6.1          | TE on HTTP/1.0: faulty framing                   | 400 and close           | as the MUST says |
 * | 9112 6.2          | equal duplicate Content-Length: reject or merge  | 400                     | smuggling vector |
 * | 9112 6.2          | huge Content-Length (anticipate large numerals)  | 413, never converted    | valid syntax, more than we take |
 * | 9112 6.3, 9110 15.5.14 | a body we will not read                     | CL or chunked over 64 KiB: 413 and close; smaller: read and dropped | GET/HEAD content has no meaning; reading it keeps the connection usable |
 * | 9112 6.3          | body without Content-Length: 411 (MAY)           | chunked accepted        | a server MUST be able to parse chunked |
 * | 9112 6.3, 8       | when a chunked body is read                      | with the head, within the header timeout (else 408) | bounded (128 KiB) and no engine state beyond the parser's |
 * | 9112 6.1          | coding before chunked not understood (SHOULD 501)| 501                     | we decode no coding |
 * | 9112 7.1.1        | limit on chunk extensions, some 4xx              | 4 KiB per chunk line, else 413 | content framing, not a field |
 * | 9112 7.1.2        | trailer fields may be kept or dropped            | dropped (checked like header lines) | never merged into the header section |
 * | 9112 8            | incomplete request: MAY answer before closing    | 408 once part of a head arrived | says why; silence when nothing arrived |
 * | 9110 9.1          | unrecognised method: SHOULD 501                  | 501 for unregistered methods, 405 + Allow for registered ones (POST, PUT, TRACE, ...) | |
 * | 9110 9.3.8        | TRACE                                            | 405                     | reflecting requests leaks credentials (XST) |
 * | 9110 13.1.2       | an If-None-Match / If-Match list that does not parse | matches nothing     | no 304 from a broken list; If-Match fails safe (412) |
 * | 9110 13.1.5, 8.8.2.2 | If-Range date must be a strong validator       | exact match with the Last-Modified we send | an origin server with the file's mtime |
 * | 9110 14.2         | Range on HEAD (only GET defines range handling)  | same as GET (206 head)  | 9.3.2: HEAD SHOULD send the header fields GET would |
 * | 9110 14.2         | invalid, overlapping or many ranges: ignore or reject | ignored (200)      | never amplify; a client must accept 200 |
 * | 9110 14.1.2       | suffix range on an empty representation is satisfiable | 200 (whole, empty) | no Content-Range can describe it |
 * | 9110 15.6.6       | 505 SHOULD say what versions are supported       | short text body         | the status line says it |
 *
 * @module
 */

import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { type ServerProcess, startCli } from "./_harness.ts";
import {
  type Exchange,
  exchange,
  type ExchangeOptions,
  header,
  type ParsedResponse,
} from "./_raw.ts";
import { parseRequest } from "../http/parser.ts";
import { getHeader } from "../http/types.ts";

const dec = new TextDecoder();
const H = "Host: localhost\r\n";

/** A request head: `METHOD target VERSION`, Host, `extra` lines (each ending CRLF). */
function req(target: string, extra = "", method = "GET", version = "HTTP/1.1"): string {
  return `${method} ${target} ${version}\r\n${H}${extra}\r\n`;
}

const IMF =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/;
const ETAG = /^(W\/)?"[\x21\x23-\x7e\x80-\xff]*"$/;
const STATUS_LINE = /^HTTP\/1\.1 [1-5]\d\d [\t\x20-\x7e\x80-\xff]*$/;

interface Ctx {
  server: ServerProcess;
  /** ETag and Last-Modified of /hello.txt. */
  etag: string;
  lastModified: string;
}

/** One requirement: its clause, what it says, and the check. */
interface Row {
  clause: string;
  rule: string;
  run: (c: Ctx) => Promise<void> | void;
}

async function send(
  c: Ctx,
  raw: string | Uint8Array,
  opts: ExchangeOptions = {},
): Promise<Exchange> {
  return await exchange(c.server.port, raw, { timeoutMs: 15_000, ...opts });
}

/** The only response to `raw` (the connection half-closed after sending). */
async function only(c: Ctx, raw: string | Uint8Array, opts: ExchangeOptions = {}) {
  const ex = await send(c, raw, opts);
  assert.equal(ex.responses.length, 1, `one response expected, got:\n${dec.decode(ex.bytes)}`);
  return ex.responses[0];
}

async function status(c: Ctx, raw: string | Uint8Array, opts: ExchangeOptions = {}) {
  return (await only(c, raw, opts)).status;
}

/** Sends without half-closing and reads until the server closes. */
async function untilClose(c: Ctx, raw: string | Uint8Array): Promise<Exchange> {
  const ex = await send(c, raw, { halfClose: false, timeoutMs: 15_000 });
  assert.ok(ex.closed, `the server should close the connection:\n${dec.decode(ex.bytes)}`);
  return ex;
}

/** Sends without half-closing and stops once `n` responses came and nothing more. */
async function kept(c: Ctx, raw: string | Uint8Array, n: number): Promise<Exchange> {
  const ex = await send(c, raw, { halfClose: false, expectResponses: n, settleMs: 300 });
  assert.equal(ex.responses.length, n, dec.decode(ex.bytes));
  assert.equal(ex.closed, false, "the connection should stay open");
  return ex;
}

const text = (r: ParsedResponse) => dec.decode(r.body);
const names = (r: ParsedResponse) =>
  r.headers.map(([n]) => n).filter((n) => n !== "date" && n !== "connection").sort();

function rfc850(ms: number): string {
  const d = new Date(ms);
  const days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  const [, dd, mon, yyyy, time] = d.toUTCString().split(" ");
  return `${days[d.getUTCDay()]}, ${dd}-${mon}-${yyyy.slice(2)} ${time} GMT`;
}

function asctime(ms: number): string {
  const [wd, dd, mon, yyyy, time] = new Date(ms).toUTCString().split(" ");
  return `${wd.slice(0, 3)} ${mon} ${dd.replace(/^0/, " ")} ${time} ${yyyy}`;
}

const hidden = "GET /secret-hidden HTTP/1.1\r\nHost: x\r\n\r\n";
const hiddenChunk = `${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`;

const ROWS: Row[] = [
  // ---------------------------------------------------------------- RFC 9112 2
  {
    clause: "RFC 9112 2.2",
    rule: "SHOULD ignore at least one empty line before the request-line",
    run: async (c) => assert.equal(await status(c, "\r\n" + req("/hello.txt")), 200),
  },
  {
    clause: "RFC 9112 2.2",
    rule: "a bare CR MUST be rejected or replaced (we: 400)",
    run: async (c) => assert.equal(await status(c, req("/hello.txt", "X-A: a\rb\r\n")), 400),
  },
  {
    clause: "RFC 9112 2.2",
    rule: "a bare LF MAY end a line (we: 400)",
    run: async (c) => assert.equal(await status(c, "GET /hello.txt HTTP/1.1\nHost: x\n\n"), 400),
  },
  {
    clause: "RFC 9112 2.2",
    rule:
      "whitespace between the start-line and the first field MUST be rejected or skipped (we: 400)",
    run: async (c) =>
      assert.equal(await status(c, "GET /hello.txt HTTP/1.1\r\n X: y\r\n" + H + "\r\n"), 400),
  },
  {
    clause: "RFC 9112 2.2",
    rule: "bytes that are no HTTP message SHOULD get 400, then the connection closes",
    run: async (c) => {
      const ex = await untilClose(c, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n");
      assert.equal(ex.responses[0]?.status, 400);
    },
  },
  {
    clause: "RFC 9112 2.3",
    rule: "HTTP-name is case-sensitive",
    run: async (c) => assert.equal(await status(c, req("/hello.txt", "", "GET", "http/1.1")), 400),
  },
  {
    clause: "RFC 9112 2.3",
    rule: "a 1.0 request is answered with the highest 1.x we conform to (HTTP/1.1)",
    run: async (c) => {
      const r = await only(c, req("/hello.txt", "", "GET", "HTTP/1.0"));
      assert.match(r.statusLine, /^HTTP\/1\.1 200 /);
    },
  },
  {
    clause: "RFC 9112 2.3, RFC 9110 2.5",
    rule: "a higher minor version (HTTP/1.2) SHOULD be processed as 1.1",
    run: async (c) => {
      const ex = await kept(c, req("/hello.txt", "", "GET", "HTTP/1.2").repeat(2), 2);
      assert.equal(ex.responses[0].status, 200);
      assert.match(ex.responses[0].statusLine, /^HTTP\/1\.1 /);
      assert.equal(header(ex.responses[0], "connection"), "keep-alive");
    },
  },
  {
    clause: "RFC 9112 2.3, RFC 9110 15.6.6",
    rule: "another major version MAY be refused with 505 (HTTP/2.0, HTTP/0.9-style line)",
    run: async (c) => {
      const r = await only(c, req("/hello.txt", "", "GET", "HTTP/2.0"));
      assert.equal(r.status, 505);
      assert.match(text(r), /505 HTTP Version Not Supported/);
      assert.equal(await status(c, "GET /hello.txt\r\n\r\n"), 505);
    },
  },
  // ---------------------------------------------------------------- RFC 9112 3
  {
    clause: "RFC 9112 3",
    rule: "an invalid request-line (two spaces) SHOULD get 400 or 301, never be autocorrected",
    run: async (c) => {
      assert.equal(await status(c, `GET  /hello.txt HTTP/1.1\r\n${H}\r\n`), 400);
      assert.equal(await status(c, `GET /hello.txt  HTTP/1.1\r\n${H}\r\n`), 400);
      assert.equal(await status(c, `GET\t/hello.txt HTTP/1.1\r\n${H}\r\n`), 400);
    },
  },
  {
    clause: "RFC 9112 3",
    rule: "a method longer than any implemented SHOULD get 501",
    run: async (c) => assert.equal(await status(c, req("/hello.txt", "", "A".repeat(40))), 501),
  },
  {
    clause: "RFC 9112 3",
    rule: "a request-target longer than we parse MUST get 414",
    run: async (c) => assert.equal(await status(c, req("/" + "a".repeat(9000))), 414),
  },
  {
    clause: "RFC 9112 3",
    rule: "request-lines of 8000 octets are RECOMMENDED to work",
    run: async (c) => {
      const target = "/hello.txt?" + "q".repeat(8000 - "GET /hello.txt? HTTP/1.1".length);
      assert.equal(`GET ${target} HTTP/1.1`.length, 8000);
      assert.equal(await status(c, req(target)), 200);
    },
  },
  {
    clause: "RFC 9112 3.1, RFC 9110 9.1",
    rule: "the method is case-sensitive: `get` is not GET (an unknown method: 501)",
    run: async (c) => assert.equal(await status(c, req("/hello.txt", "", "get")), 501),
  },
  {
    clause: "RFC 9112 3.2",
    rule: "no whitespace is allowed in the request-target; a fragment is no part of it",
    run: async (c) => {
      assert.equal(await status(c, `GET /hel lo.txt HTTP/1.1\r\n${H}\r\n`), 400);
      assert.equal(await status(c, req("/hello.txt#frag")), 400);
    },
  },
  {
    clause: "RFC 9112 3.2",
    rule: "an HTTP/1.1 request without Host MUST get 400",
    run: async (c) => assert.equal(await status(c, "GET /hello.txt HTTP/1.1\r\n\r\n"), 400),
  },
  {
    clause: "RFC 9112 3.2",
    rule: "more than one Host line MUST get 400",
    run: async (c) => {
      assert.equal(await status(c, req("/hello.txt", "Host: localhost\r\n")), 400);
      assert.equal(await status(c, req("/hello.txt", "Host: other\r\n", "GET", "HTTP/1.0")), 400);
    },
  },
  {
    clause: "RFC 9112 3.2",
    rule: 'a Host that is not uri-host [":" port] MUST get 400',
    run: async (c) => {
      for (
        const bad of [
          "a b",
          "evil/../../etc",
          "user@host",
          "[::1",
          "[::g]",
          "host:80x",
          ":80",
          "host:80:80",
          "h%zz",
          "h\u00e9",
        ]
      ) {
        const raw = `GET /hello.txt HTTP/1.1\r\nHost: ${bad}\r\n\r\n`;
        assert.equal(await status(c, raw), 400, `Host: ${bad}`);
      }
      for (
        const good of [
          "",
          "localhost",
          "127.0.0.1:8080",
          "[::1]:80",
          "[v1.x]",
          "xn--d-a.example:",
          "a%41",
        ]
      ) {
        const raw = `GET /hello.txt HTTP/1.1\r\nHost: ${good}\r\n\r\n`;
        assert.equal(await status(c, raw), 200, `Host: ${good}`);
      }
    },
  },
  {
    clause: "RFC 9112 3.2, 3.3",
    rule: "an HTTP/1.0 request without Host is served (the default authority)",
    run: async (c) => assert.equal(await status(c, "GET /hello.txt HTTP/1.0\r\n\r\n"), 200),
  },
  {
    clause: "RFC 9112 3.2.2",
    rule: "a server MUST accept the absolute-form",
    run: async (c) => {
      const r = await only(c, req("http://other.example:8080/hello.txt?x=1"));
      assert.equal(r.status, 200);
      assert.equal(text(r), "hello\n");
      assert.equal(await status(c, req("HTTPS://localhost/dir/inner.txt")), 200);
      // An empty path is "/".
      assert.equal(await status(c, req("http://localhost")), 200);
      // userinfo is an error (RFC 9110 4.2.4); an http URI needs a host (4.2.1);
      // we serve http(s) only.
      for (const t of ["http://u@localhost/hello.txt", "http:///hello.txt", "ftp://h/hello.txt"]) {
        assert.equal(await status(c, req(t)), 400, t);
      }
    },
  },
  {
    clause: "RFC 9112 3.2.2",
    rule: "with absolute-form the Host line is ignored: the target's authority is the host",
    run: () => {
      const r = parseRequest(
        new TextEncoder().encode("GET http://a.example:81/x?y HTTP/1.1\r\nHost: b.example\r\n\r\n"),
      );
      assert.ok(r !== null && "head" in r);
      assert.equal(getHeader(r.head, "host"), "a.example:81");
      assert.equal(r.head.path, "/x");
      assert.equal(r.head.query, "y");
      const h10 = parseRequest(new TextEncoder().encode("GET http://a.example/ HTTP/1.0\r\n\r\n"));
      assert.ok(h10 !== null && "head" in h10);
      assert.equal(getHeader(h10.head, "host"), "a.example");
    },
  },
  {
    clause: "RFC 9112 3.2.3, RFC 9110 9.3.6",
    rule: "authority-form is only for CONNECT (we are no proxy: 501)",
    run: async (c) => {
      assert.equal(await status(c, req("localhost:443", "", "CONNECT")), 501);
      assert.equal(await status(c, req("/hello.txt", "", "CONNECT")), 400);
      assert.equal(await status(c, req("localhost:443")), 400);
    },
  },
  {
    clause: "RFC 9112 3.2.4, RFC 9110 9.3.7",
    rule: "asterisk-form is only for OPTIONS; OPTIONS * answers for the server, Content-Length: 0",
    run: async (c) => {
      const ex = await kept(c, req("*", "", "OPTIONS") + req("/hello.txt"), 2);
      const r = ex.responses[0];
      assert.equal(r.status, 200);
      assert.equal(header(r, "allow"), "GET, HEAD");
      assert.equal(header(r, "content-length"), "0");
      assert.equal(ex.responses[1].status, 200);
      assert.equal(await status(c, req("*")), 400);
    },
  },
  // ---------------------------------------------------------------- RFC 9112 4
  {
    clause: "RFC 9112 4, RFC 9110 15",
    rule: "status-line = HTTP-version SP 3DIGIT SP [reason-phrase], the second SP always sent",
    run: async (c) => {
      const raws = [
        req("/hello.txt"),
        req("/missing"),
        req("/dir"),
        req("/hello.txt", `If-None-Match: ${c.etag}\r\n`),
        req("/hello.txt", "", "POST"),
        "BAD\r\n\r\n",
        req("/", "", "GET", "HTTP/2.0"),
      ];
      for (const raw of raws) {
        const r = await only(c, raw);
        assert.match(r.statusLine, STATUS_LINE, JSON.stringify(raw));
      }
    },
  },
  // ---------------------------------------------------------------- RFC 9112 5
  {
    clause: "RFC 9112 5",
    rule: "whitespace between a field name and the colon MUST get 400",
    run: async (c) => {
      assert.equal(await status(c, req("/hello.txt", "X-A : b\r\n")), 400);
      assert.equal(await status(c, `GET /hello.txt HTTP/1.1\r\nHost : localhost\r\n\r\n`), 400);
    },
  },
  {
    clause: "RFC 9112 5, RFC 9110 5.1, 5.6.2",
    rule: "a field name is a token; anything else is a 400",
    run: async (c) => {
      for (const line of ["X(A: b", "X\u00e9: b", ": b", "X-A"]) {
        assert.equal(await status(c, req("/hello.txt", `${line}\r\n`)), 400, line);
      }
    },
  },
  {
    clause: "RFC 9112 2.2, RFC 9110 5.5",
    rule: "obs-text (bytes 0x80-0xFF) in a field value is accepted",
    run: async (c) =>
      assert.equal(await status(c, req("/hello.txt", "X-A: caf\u00e9 \xff\r\n")), 200),
  },
  {
    clause: "RFC 9112 5.2",
    rule: "obs-fold MUST be rejected with 400 or replaced by SP (we: 400)",
    run: async (c) => assert.equal(await status(c, req("/hello.txt", "X-A: a\r\n b\r\n")), 400),
  },
  // ---------------------------------------------------------------- RFC 9112 6
  {
    clause: "RFC 9112 6, 9.3; RFC 9110 9.3.1",
    rule: "a GET body (Content-Length) is read and dropped; the next request is answered",
    run: async (c) => {
      const ex = await send(
        c,
        req("/hello.txt", `Content-Length: ${hidden.length}\r\n`) + hidden + req("/dir/inner.txt"),
      );
      assert.deepEqual(ex.responses.map((r) => [r.status, text(r)]), [
        [200, "hello\n"],
        [200, "inner\n"],
      ]);
    },
  },
  {
    clause: "RFC 9112 6.1, 7.1",
    rule: "a recipient MUST be able to parse chunked: the body is read and dropped",
    run: async (c) => {
      const ex = await send(
        c,
        req("/hello.txt", "Transfer-Encoding: chunked\r\n") + hiddenChunk + req("/dir/inner.txt"),
      );
      assert.deepEqual(ex.responses.map((r) => [r.status, text(r)]), [
        [200, "hello\n"],
        [200, "inner\n"],
      ]);
      const head = await send(
        c,
        req("/hello.txt", "Transfer-Encoding: chunked\r\n", "HEAD") + "3\r\nabc\r\n0\r\n\r\n",
        { head: true },
      );
      assert.deepEqual(head.responses.map((r) => r.status), [200]);
      assert.equal(head.trailing.length, 0);
    },
  },
  {
    clause: "RFC 9112 7",
    rule: "transfer-coding names are case-insensitive",
    run: async (c) =>
      assert.equal(
        await status(c, req("/hello.txt", "Transfer-Encoding: CHUNKED\r\n") + "0\r\n\r\n"),
        200,
      ),
  },
  {
    clause: "RFC 9112 7.1.1",
    rule: "unrecognised chunk extensions MUST be ignored",
    run: async (c) => {
      const body = '5;name=value;q="a \\"b\\"" ; flag\r\nhello\r\n0;last=1\r\n\r\n';
      assert.equal(
        await status(c, req("/hello.txt", "Transfer-Encoding: chunked\r\n") + body),
        200,
      );
    },
  },
  {
    clause: "RFC 9112 7.1.1",
    rule: "chunk extensions are limited, over the limit some 4xx (we: 413 past 4 KiB a line)",
    run: async (c) => {
      const body = `1;x=${"a".repeat(5000)}\r\nz\r\n0\r\n\r\n`;
      assert.equal(
        await status(c, req("/hello.txt", "Transfer-Encoding: chunked\r\n") + body),
        413,
      );
    },
  },
  {
    clause: "RFC 9112 7.1",
    rule: "a chunk-size numeral of any length MUST not overflow (we: 413, it is too large)",
    run: async (c) => {
      const body = "ffffffffffffffffffffffff\r\nx\r\n0\r\n\r\n";
      assert.equal(
        await status(c, req("/hello.txt", "Transfer-Encoding: chunked\r\n") + body),
        413,
      );
    },
  },
  {
    clause: "RFC 9112 7.1, RFC 9110 15.5.14",
    rule: "a chunked body larger than we read is refused with 413 (not 501)",
    run: async (c) => {
      const chunk = `8000\r\n${"x".repeat(0x8000)}\r\n`;
      const ex = await untilClose(
        c,
        req("/hello.txt", "Transfer-Encoding: chunked\r\n") + chunk.repeat(3) + "0\r\n\r\n",
      );
      assert.equal(ex.responses[0]?.status, 413);
    },
  },
  {
    clause: "RFC 9112 7.1",
    rule: "malformed chunked framing is a 400 and the connection closes",
    run: async (c) => {
      for (
        const body of [
          "5\r\nhelloX\r\n0\r\n\r\n", // data not followed by CRLF
          "5\nhello\r\n0\r\n\r\n", // bare LF after the size
          "x\r\n", // not hex
          "5 \r\nhello\r\n0\r\n\r\n", // trailing whitespace without an extension
          "0\r\nBad Trailer: x\r\n\r\n", // trailer that is no field line
        ]
      ) {
        const ex = await untilClose(c, req("/hello.txt", "Transfer-Encoding: chunked\r\n") + body);
        assert.equal(ex.responses[0]?.status, 400, JSON.stringify(body));
      }
    },
  },
  {
    clause: "RFC 9112 7.1.2",
    rule:
      "trailer fields are not merged into the header section (`Connection: close` there is ignored)",
    run: async (c) => {
      const body = "3\r\nabc\r\n0\r\nConnection: close\r\nX-T: 1\r\n\r\n";
      const ex = await kept(
        c,
        req("/hello.txt", "Transfer-Encoding: chunked\r\n") + body + req("/hello.txt"),
        2,
      );
      assert.equal(header(ex.responses[0], "connection"), "keep-alive");
    },
  },
  {
    clause: "RFC 9112 6.1",
    rule: "a transfer coding we do not understand SHOULD get 501",
    run: async (c) =>
      assert.equal(
        await status(c, req("/hello.txt", "Transfer-Encoding: gzip, chunked\r\n") + "0\r\n\r\n"),
        501,
      ),
  },
  {
    clause: "RFC 9112 6.3",
    rule: "chunked not the final coding of a request: MUST 400 and close",
    run: async (c) => {
      for (const te of ["chunked, gzip", "identity", "chunked, chunked", "chunked;x=1"]) {
        const ex = await untilClose(
          c,
          req("/hello.txt", `Transfer-Encoding: ${te}\r\n`) + hiddenChunk,
        );
        assert.deepEqual(ex.responses.map((r) => r.status), [400], te);
      }
    },
  },
  {
    clause: "RFC 9112 6.1",
    rule: "Transfer-Encoding on HTTP/1.0 is faulty framing: close after answering (we: 400)",
    run: async (c) => {
      const raw = req("/hello.txt", "Transfer-Encoding: chunked\r\n", "GET", "HTTP/1.0") +
        hiddenChunk;
      const ex = await untilClose(c, raw);
      assert.deepEqual(ex.responses.map((r) => r.status), [400]);
    },
  },
  {
    clause: "RFC 9112 6.1, 6.3",
    rule: "Content-Length with Transfer-Encoding: reject or TE wins, and MUST close (we: 400)",
    run: async (c) => {
      const raw = req("/hello.txt", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") +
        hiddenChunk;
      const ex = await untilClose(c, raw);
      assert.deepEqual(ex.responses.map((r) => r.status), [400]);
    },
  },
  {
    clause: "RFC 9112 6.3",
    rule: "an invalid Content-Length MUST get 400 and close; differing or equal duplicates too",
    run: async (c) => {
      for (
        const cl of [
          "Content-Length: 5a\r\n",
          "Content-Length: -1\r\n",
          "Content-Length: 5, 5\r\n",
          "Content-Length: 5\r\nContent-Length: 6\r\n",
          "Content-Length: 5\r\nContent-Length: 5\r\n",
        ]
      ) {
        const ex = await untilClose(c, req("/hello.txt", cl) + "hello");
        assert.deepEqual(ex.responses.map((r) => r.status), [400], cl);
      }
    },
  },
  {
    clause: "RFC 9112 6.2",
    rule: "large Content-Length numerals MUST not overflow (we: 413, valid but too large)",
    run: async (c) => {
      const ex = await untilClose(c, req("/hello.txt", `Content-Length: ${"9".repeat(30)}\r\n`));
      assert.deepEqual(ex.responses.map((r) => r.status), [413]);
    },
  },
  {
    clause: "RFC 9112 6.2, RFC 9110 9.3.2",
    rule: "HEAD: Content-Length (if sent) is what GET would send, and no content",
    run: async (c) => {
      const head = await send(c, req("/hello.txt", "", "HEAD"), { head: true });
      assert.equal(head.responses.length, 1);
      assert.equal(header(head.responses[0], "content-length"), "6");
      assert.equal(head.trailing.length, 0, "no content after a HEAD response");
    },
  },
  {
    clause: "RFC 9112 6.3",
    rule:
      "a body cut short by the client's close: the message is incomplete, the connection closed",
    run: async (c) => {
      const ex = await send(c, req("/hello.txt", "Transfer-Encoding: chunked\r\n") + "10\r\nabc");
      assert.equal(ex.closed, true);
      assert.equal(ex.responses.length, 0);
    },
  },
  {
    clause: "RFC 9112 6.1, 3.2.2, 3.2.4 (curl)",
    rule: "a real client: curl's chunked upload on GET, an absolute-form target, OPTIONS *",
    run: async (c) => {
      const curl = async (...args: string[]) => {
        const out = await new Deno.Command("curl", {
          args: ["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "20", ...args],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(out.success, dec.decode(out.stderr));
        return dec.decode(out.stdout);
      };
      const base = c.server.origin;
      const up = await curl(
        "-X",
        "GET",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "x".repeat(3000),
        `${base}/hello.txt`,
      );
      assert.equal(up, "hello\n\n200");
      const abs = await curl("--request-target", `http://elsewhere.example/dir/inner.txt`, base);
      assert.equal(abs, "inner\n\n200");
      const star = await curl("-X", "OPTIONS", "--request-target", "*", "-i", base);
      assert.match(star, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(star, /\r\nAllow: GET, HEAD\r\n/);
    },
  },
  // ---------------------------------------------------------------- RFC 9112 8, 9
  {
    clause: "RFC 9112 8, 9.5",
    rule:
      "an incomplete request MAY get an error before the close (we: 408 after the header timeout)",
    run: async (c) => {
      const ex = await untilClose(c, "GET /hello.txt HTTP/1.1\r\nHost: x\r\n");
      assert.deepEqual(ex.responses.map((r) => r.status), [408]);
    },
  },
  {
    clause: "RFC 9112 9.3",
    rule: "HTTP/1.1 connections persist by default",
    run: async (c) => {
      const ex = await kept(c, req("/hello.txt") + req("/dir/inner.txt"), 2);
      assert.equal(header(ex.responses[0], "connection"), "keep-alive");
    },
  },
  {
    clause: "RFC 9112 9.3",
    rule: "HTTP/1.0 does not persist unless it asks with keep-alive",
    run: async (c) => {
      const ex = await untilClose(
        c,
        req("/hello.txt", "", "GET", "HTTP/1.0") + req("/dir/inner.txt"),
      );
      assert.equal(ex.responses.length, 1);
      const ka = req("/hello.txt", "Connection: keep-alive\r\n", "GET", "HTTP/1.0");
      await kept(c, ka + ka, 2);
    },
  },
  {
    clause: "RFC 9112 9.3.2",
    rule: "responses to pipelined requests MUST be sent in the order the requests came",
    run: async (c) => {
      const ex = await send(c, req("/dir/inner.txt") + req("/missing") + req("/hello.txt"));
      assert.deepEqual(ex.responses.map((r) => [r.status, r.status === 200 ? text(r) : ""]), [
        [200, "inner\n"],
        [404, ""],
        [200, "hello\n"],
      ]);
    },
  },
  {
    clause: "RFC 9112 9.6",
    rule: "after `Connection: close` the server closes, processes nothing further, and says close",
    run: async (c) => {
      const ex = await untilClose(
        c,
        req("/hello.txt", "Connection: close\r\n") + req("/dir/inner.txt"),
      );
      assert.equal(ex.responses.length, 1);
      assert.equal(header(ex.responses[0], "connection"), "close");
    },
  },
  {
    clause: "RFC 9112 6.1, 7",
    rule: "no Transfer-Encoding in a response to HTTP/1.0 (a body of unknown length ends at close)",
    run: async (c) => {
      const old = await untilClose(c, req("/dir/?download=tar.gz", "", "GET", "HTTP/1.0"));
      assert.equal(old.responses[0]?.status, 200);
      assert.equal(header(old.responses[0], "transfer-encoding"), undefined);
      assert.equal(header(old.responses[0], "content-length"), undefined);
      const now = await only(c, req("/dir/?download=tar.gz"));
      assert.equal(header(now, "transfer-encoding"), "chunked");
      assert.equal(header(now, "content-length"), undefined, "RFC 9112 6.2: never both");
    },
  },
  // ---------------------------------------------------------------- RFC 9110 5
  {
    clause: "RFC 9110 5.1",
    rule: "field names are case-insensitive",
    run: async (c) => {
      const r = await only(c, "GET /hello.txt HTTP/1.1\r\nhOsT: x\r\nrAnGe: bytes=0-0\r\n\r\n");
      assert.equal(r.status, 206);
    },
  },
  {
    clause: "RFC 9110 5.2",
    rule: "unrecognised header fields SHOULD be ignored",
    run: async (c) =>
      assert.equal(await status(c, req("/hello.txt", "X-Unknown: 1\r\nIf-Whatever: *\r\n")), 200),
  },
  {
    clause: "RFC 9110 5.3",
    rule: "repeated field lines are one list (two If-None-Match lines; two Accept-Encoding lines)",
    run: async (c) => {
      const r = await only(
        c,
        req("/hello.txt", `If-None-Match: "nope"\r\nIf-None-Match: ${c.etag}\r\n`),
      );
      assert.equal(r.status, 304);
      const z = await only(
        c,
        req("/pre.txt", "Accept-Encoding: identity\r\nAccept-Encoding: gzip\r\n"),
      );
      assert.equal(header(z, "content-encoding"), "gzip");
      // A singleton repeated is no longer valid: If-Modified-Since is ignored (13.1.3).
      const lm = `If-Modified-Since: ${c.lastModified}\r\n`;
      assert.equal(await status(c, req("/hello.txt", lm + lm)), 200);
    },
  },
  {
    clause: "RFC 9110 5.4",
    rule: "a field section larger than we process MUST get a 4xx (431)",
    run: async (c) =>
      assert.equal(await status(c, req("/hello.txt", `X-Big: ${"b".repeat(20_000)}\r\n`)), 431),
  },
  {
    clause: "RFC 9110 5.5",
    rule: "CR, LF or NUL in a value MUST be rejected or replaced (we: 400)",
    run: async (c) => assert.equal(await status(c, req("/hello.txt", "X-A: a\x00b\r\n")), 400),
  },
  {
    clause: "RFC 9110 5.5",
    rule: "other control bytes MAY be kept (we: 400)",
    run: async (c) => assert.equal(await status(c, req("/hello.txt", "X-A: a\x01b\r\n")), 400),
  },
  {
    clause: "RFC 9110 5.5",
    rule: "leading and trailing whitespace MUST be excluded from the value",
    run: async (c) =>
      assert.equal(await status(c, req("/hello.txt", `If-None-Match: \t  ${c.etag} \t \r\n`)), 304),
  },
  {
    clause: "RFC 9110 5.6.1",
    rule: "empty list elements MUST be accepted",
    run: async (c) => {
      assert.equal(await status(c, req("/hello.txt", `If-None-Match: , ,${c.etag},\r\n`)), 304);
      const z = await only(c, req("/pre.txt", "Accept-Encoding: ,, gzip ,\r\n"));
      assert.equal(header(z, "content-encoding"), "gzip");
    },
  },
  {
    clause: "RFC 9110 5.6.7",
    rule: "a recipient MUST accept all three HTTP-date formats",
    run: async (c) => {
      const ms = Date.parse(c.lastModified);
      for (const d of [c.lastModified, rfc850(ms), asctime(ms)]) {
        assert.equal(await status(c, req("/hello.txt", `If-Modified-Since: ${d}\r\n`)), 304, d);
        const before = ms - 1000;
        const older = d === c.lastModified
          ? new Date(before).toUTCString()
          : d === rfc850(ms)
          ? rfc850(before)
          : asctime(before);
        assert.equal(
          await status(c, req("/hello.txt", `If-Modified-Since: ${older}\r\n`)),
          200,
          older,
        );
      }
    },
  },
  {
    clause: "RFC 9110 5.6.7, 6.6.1",
    rule: "Date (MUST on 2xx, 3xx, 4xx) and Last-Modified are IMF-fixdate",
    run: async (c) => {
      for (
        const raw of [
          req("/hello.txt"),
          req("/dir"),
          req("/missing"),
          req("/hello.txt", "", "POST"),
        ]
      ) {
        const r = await only(c, raw);
        assert.match(header(r, "date") ?? "", IMF, `${r.status} Date`);
        if (r.status === 200) assert.match(header(r, "last-modified") ?? "", IMF);
      }
    },
  },
  // ---------------------------------------------------------------- RFC 9110 8.8
  {
    clause: "RFC 9110 8.8.2, 8.8.3",
    rule: "a file's 200 SHOULD carry Last-Modified and an ETag of entity-tag syntax",
    run: async (c) => {
      for (const path of ["/hello.txt", "/dir/", "/empty.txt"]) {
        const r = await only(c, req(path));
        assert.equal(r.status, 200);
        assert.match(header(r, "etag") ?? "", ETAG, path);
        assert.match(header(r, "last-modified") ?? "", IMF, path);
      }
    },
  },
  {
    clause: "RFC 9110 8.8.2.1",
    rule: "Last-Modified is never later than Date (an mtime in the future becomes the Date)",
    run: async (c) => {
      for (
        const raw of [
          req("/future/soon.txt"), // read and cached
          req("/future/soon.txt"), // from the cache
          req("/future/soon.txt", "", "HEAD"),
          req("/future/soon.txt", "Range: bytes=0-0\r\n"),
          req("/future/"), // a listing: the newest of its entries
        ]
      ) {
        const r = await only(c, raw, { head: raw.startsWith("HEAD") });
        assert.ok(r.status === 200 || r.status === 206, raw);
        const lm = Date.parse(header(r, "last-modified") ?? "");
        const date = Date.parse(header(r, "date") ?? "");
        assert.ok(
          lm <= date,
          `${raw}: Last-Modified ${header(r, "last-modified")} > Date ${header(r, "date")}`,
        );
        assert.ok(date - lm <= 5000, `${raw}: Last-Modified is the Date, not the old mtime`);
      }
    },
  },
  {
    clause: "RFC 9110 8.8.3.2",
    rule: "If-None-Match compares weakly, If-Match strongly",
    run: async (c) => {
      assert.equal(await status(c, req("/hello.txt", `If-None-Match: W/${c.etag}\r\n`)), 304);
      assert.equal(await status(c, req("/hello.txt", `If-Match: W/${c.etag}\r\n`)), 412);
      assert.equal(await status(c, req("/hello.txt", `If-Match: ${c.etag}\r\n`)), 200);
    },
  },
  {
    clause: "RFC 9110 8.8.3, 13.1.2",
    rule:
      "entity-tag lists follow their grammar: commas inside quotes, an invalid list matches nothing",
    run: async (c) => {
      assert.equal(await status(c, req("/hello.txt", `If-None-Match: "a,b", ${c.etag}\r\n`)), 304);
      const broken = `If-None-Match: "x,${c.etag},y"\r\n`; // quotes inside a tag: invalid
      assert.equal(await status(c, req("/hello.txt", broken)), 200);
    },
  },
  // ---------------------------------------------------------------- RFC 9110 9
  {
    clause: "RFC 9110 9.1",
    rule: "GET and HEAD MUST be supported",
    run: async (c) => {
      assert.equal(await status(c, req("/hello.txt")), 200);
      assert.equal(await status(c, req("/hello.txt", "", "HEAD"), { head: true }), 200);
    },
  },
  {
    clause: "RFC 9110 9.1",
    rule: "an unrecognised method SHOULD get 501",
    run: async (c) => {
      for (const m of ["FOO", "BREW", "Get"]) {
        assert.equal(await status(c, req("/hello.txt", "", m)), 501, m);
      }
    },
  },
  {
    clause: "RFC 9110 9.1, 15.5.6",
    rule: "a known method not allowed SHOULD get 405, which MUST list Allow",
    run: async (c) => {
      for (const m of ["POST", "PUT", "DELETE", "PATCH", "TRACE"]) {
        const r = await only(c, req("/hello.txt", "", m));
        assert.equal(r.status, 405, m);
        assert.equal(header(r, "allow"), "GET, HEAD", m);
      }
    },
  },
  {
    clause: "RFC 9110 9.3.2",
    rule: "HEAD SHOULD send the fields GET would, MUST NOT send content (errors too)",
    run: async (c) => {
      for (const path of ["/hello.txt", "/dir/", "/missing", "/dir"]) {
        const get = await only(c, req(path));
        const head = await send(c, req(path, "", "HEAD"), { head: true });
        assert.equal(head.responses.length, 1, path);
        assert.equal(head.trailing.length, 0, `${path}: no content`);
        assert.equal(head.responses[0].status, get.status, path);
        assert.deepEqual(names(head.responses[0]), names(get), path);
        assert.equal(
          header(head.responses[0], "content-length"),
          header(get, "content-length"),
          path,
        );
      }
    },
  },
  // ---------------------------------------------------------------- RFC 9110 13
  {
    clause: "RFC 9110 13.1.1",
    rule: "If-Match: * holds for a file; a list without our tag MUST fail with 412",
    run: async (c) => {
      assert.equal(await status(c, req("/hello.txt", "If-Match: *\r\n")), 200);
      assert.equal(await status(c, req("/hello.txt", `If-Match: "x", "y"\r\n`)), 412);
    },
  },
  {
    clause: "RFC 9110 13.1.2",
    rule: "If-None-Match matching on GET/HEAD MUST get 304 (also *)",
    run: async (c) => {
      assert.equal(await status(c, req("/hello.txt", `If-None-Match: ${c.etag}\r\n`)), 304);
      assert.equal(await status(c, req("/hello.txt", "If-None-Match: *\r\n")), 304);
      assert.equal(
        await status(c, req("/hello.txt", `If-None-Match: ${c.etag}\r\n`, "HEAD"), { head: true }),
        304,
      );
      assert.equal(await status(c, req("/hello.txt", `If-None-Match: "other"\r\n`)), 200);
    },
  },
  {
    clause: "RFC 9110 13.1.3",
    rule:
      "If-Modified-Since: 304 when not modified since; ignored with If-None-Match, or when invalid",
    run: async (c) => {
      const ims = `If-Modified-Since: ${c.lastModified}\r\n`;
      assert.equal(await status(c, req("/hello.txt", ims)), 304);
      assert.equal(
        await status(c, req("/hello.txt", `If-Modified-Since: ${new Date(0).toUTCString()}\r\n`)),
        200,
      );
      assert.equal(await status(c, req("/hello.txt", `If-None-Match: "x"\r\n` + ims)), 200);
      for (
        const bad of [
          "2099-01-01T00:00:00Z",
          "tomorrow",
          `${c.lastModified}, ${c.lastModified}`,
          "Sun, 06 Nov 2094 08:49:37 gmt",
        ]
      ) {
        assert.equal(await status(c, req("/hello.txt", `If-Modified-Since: ${bad}\r\n`)), 200, bad);
      }
    },
  },
  {
    clause: "RFC 9110 13.1.4",
    rule: "If-Unmodified-Since: 412 when modified since; ignored with If-Match, or when invalid",
    run: async (c) => {
      const old = `If-Unmodified-Since: ${new Date(0).toUTCString()}\r\n`;
      assert.equal(await status(c, req("/hello.txt", old)), 412);
      assert.equal(
        await status(c, req("/hello.txt", `If-Unmodified-Since: ${c.lastModified}\r\n`)),
        200,
      );
      assert.equal(await status(c, req("/hello.txt", "If-Match: *\r\n" + old)), 200);
      assert.equal(await status(c, req("/hello.txt", "If-Unmodified-Since: 1970-01-01\r\n")), 200);
    },
  },
  {
    clause: "RFC 9110 13.1.5",
    rule: "If-Range: Range applies only when the strong validator matches, else the whole file",
    run: async (c) => {
      const range = "Range: bytes=0-0\r\n";
      assert.equal(await status(c, req("/hello.txt", range + `If-Range: ${c.etag}\r\n`)), 206);
      assert.equal(await status(c, req("/hello.txt", range + `If-Range: "other"\r\n`)), 200);
      assert.equal(await status(c, req("/hello.txt", range + `If-Range: W/${c.etag}\r\n`)), 200);
      assert.equal(
        await status(c, req("/hello.txt", range + `If-Range: ${c.lastModified}\r\n`)),
        206,
      );
      const other = new Date(Date.parse(c.lastModified) - 1000).toUTCString();
      assert.equal(await status(c, req("/hello.txt", range + `If-Range: ${other}\r\n`)), 200);
      // Without Range, If-Range is ignored.
      assert.equal(await status(c, req("/hello.txt", `If-Range: "other"\r\n`)), 200);
    },
  },
  {
    clause: "RFC 9110 13.2.1",
    rule: "preconditions are ignored when the answer would not be 2xx/412 (404, 301)",
    run: async (c) => {
      assert.equal(await status(c, req("/missing", "If-None-Match: *\r\n")), 404);
      assert.equal(await status(c, req("/missing", `If-Match: "x"\r\n`)), 404);
      assert.equal(await status(c, req("/dir", "If-None-Match: *\r\n")), 301);
    },
  },
  {
    clause: "RFC 9110 13.2.2",
    rule: "evaluation order: If-Match before If-None-Match; a 304 ignores Range",
    run: async (c) => {
      assert.equal(
        await status(c, req("/hello.txt", `If-Match: "x"\r\nIf-None-Match: ${c.etag}\r\n`)),
        412,
      );
      assert.equal(
        await status(c, req("/hello.txt", `If-None-Match: ${c.etag}\r\nRange: bytes=0-0\r\n`)),
        304,
      );
    },
  },
  {
    clause: "RFC 9110 15.4.5",
    rule: "304 MUST carry ETag, Date and the Vary a 200 would; no content, no other metadata",
    run: async (c) => {
      const r = await only(c, req("/hello.txt", `If-None-Match: ${c.etag}\r\n`));
      assert.equal(r.status, 304);
      assert.equal(header(r, "etag"), c.etag);
      assert.match(header(r, "date") ?? "", IMF);
      assert.equal(header(r, "content-type"), undefined);
      assert.equal(header(r, "content-length"), undefined);
      assert.equal(r.body.length, 0);
      const z = await only(c, req("/pre.txt", "Accept-Encoding: gzip\r\n"));
      assert.equal(header(z, "vary"), "Accept-Encoding");
      const z304 = await only(
        c,
        req("/pre.txt", `Accept-Encoding: gzip\r\nIf-None-Match: ${header(z, "etag")}\r\n`),
      );
      assert.equal(z304.status, 304);
      assert.equal(header(z304, "vary"), "Accept-Encoding");
    },
  },
  // ---------------------------------------------------------------- RFC 9110 14
  {
    clause: "RFC 9110 14.1, 14.3",
    rule: "the range unit is case-insensitive; Accept-Ranges: bytes is sent",
    run: async (c) => {
      const r = await only(c, req("/hello.txt", "Range: BYTES=1-2\r\n"));
      assert.equal(r.status, 206);
      assert.equal(text(r), "el");
      assert.equal(header(await only(c, req("/hello.txt")), "accept-ranges"), "bytes");
    },
  },
  {
    clause: "RFC 9110 14.2",
    rule: "a Range with a unit we do not know MUST be ignored; an invalid one MAY be (we do)",
    run: async (c) => {
      for (const r of ["items=0-0", "bytes=5-1", "bytes=x-y", "bytes 0-0"]) {
        assert.equal(await status(c, req("/hello.txt", `Range: ${r}\r\n`)), 200, r);
      }
    },
  },
  {
    clause: "RFC 9110 14.2",
    rule: "Range is ignored on methods without range handling; HEAD is answered as GET would be",
    run: async (c) => {
      assert.equal(await status(c, req("/hello.txt", "Range: bytes=0-0\r\n", "POST")), 405);
      const head = await send(c, req("/hello.txt", "Range: bytes=0-0\r\n", "HEAD"), { head: true });
      assert.equal(head.responses[0]?.status, 206);
      assert.equal(header(head.responses[0], "content-range"), "bytes 0-0/6");
    },
  },
  {
    clause: "RFC 9110 14.2",
    rule: "overlapping or many ranges MAY be ignored (we: 200, never amplify)",
    run: async (c) => {
      assert.equal(await status(c, req("/big.bin", "Range: bytes=0-500,100-600\r\n")), 200);
      const many = Array.from({ length: 40 }, (_, i) => `${i * 10}-${i * 10}`).join(",");
      assert.equal(await status(c, req("/big.bin", `Range: bytes=${many}\r\n`)), 200);
    },
  },
  {
    clause: "RFC 9110 14.1.2, 15.3.7",
    rule:
      "206 for one range: Content-Range, last-pos past the end is clamped, ETag and Date as in 200",
    run: async (c) => {
      const r = await only(c, req("/hello.txt", "Range: bytes=2-99999\r\n"));
      assert.equal(r.status, 206);
      assert.equal(header(r, "content-range"), "bytes 2-5/6");
      assert.equal(text(r), "llo\n");
      assert.equal(header(r, "etag"), c.etag);
      assert.match(header(r, "date") ?? "", IMF);
      const suffix = await only(c, req("/hello.txt", "Range: bytes=-2\r\n"));
      assert.equal(header(suffix, "content-range"), "bytes 4-5/6");
    },
  },
  {
    clause: "RFC 9110 14.1.2, 15.5.17",
    rule: "no satisfiable range: 416 with Content-Range: bytes */length",
    run: async (c) => {
      const r = await only(c, req("/hello.txt", "Range: bytes=6-\r\n"));
      assert.equal(r.status, 416);
      assert.equal(header(r, "content-range"), "bytes */6");
      const empty = await only(c, req("/empty.txt", "Range: bytes=0-0\r\n"));
      assert.equal(empty.status, 416);
      assert.equal(header(empty, "content-range"), "bytes */0");
    },
  },
  {
    clause: "RFC 9110 14.1.2",
    rule: "a suffix range on an empty file is satisfiable but has no Content-Range: we send 200",
    run: async (c) => {
      const r = await only(c, req("/empty.txt", "Range: bytes=-5\r\n"));
      assert.equal(r.status, 200);
      assert.equal(header(r, "content-length"), "0");
    },
  },
  {
    clause: "RFC 9110 14.6, 15.3.7.2",
    rule:
      "multipart/byteranges: each part has Content-Type and Content-Range, the whole has no Content-Range",
    run: async (c) => {
      const r = await only(c, req("/big.bin", "Range: bytes=0-0,500-501\r\n"));
      assert.equal(r.status, 206);
      assert.match(header(r, "content-type") ?? "", /^multipart\/byteranges; boundary=/);
      assert.equal(header(r, "content-range"), undefined);
      const body = text(r);
      assert.match(
        body,
        /Content-Type: application\/octet-stream\r\nContent-Range: bytes 0-0\/1000\r\n/,
      );
      assert.match(body, /Content-Range: bytes 500-501\/1000\r\n/);
      // One range is never sent as multipart.
      const one = await only(c, req("/big.bin", "Range: bytes=0-0\r\n"));
      assert.equal(header(one, "content-type"), "application/octet-stream");
    },
  },
  {
    clause: "RFC 9110 13.2.1",
    rule: "preconditions on a method we do not allow are ignored: 405, not 412/304",
    run: async (c) => {
      assert.equal(await status(c, req("/hello.txt", `If-Match: "x"\r\n`, "POST")), 405);
      assert.equal(await status(c, req("/hello.txt", "If-None-Match: *\r\n", "DELETE")), 405);
    },
  },
  {
    clause: "RFC 9110 15.4.5, 15.3.7",
    rule: "304 and 206 MUST carry the Cache-Control a 200 would (here from --header)",
    run: async (c) => {
      const ok = await only(c, req("/hello.txt"));
      assert.equal(header(ok, "cache-control"), "max-age=60");
      const nm = await only(c, req("/hello.txt", `If-None-Match: ${c.etag}\r\n`));
      assert.equal(nm.status, 304);
      assert.equal(header(nm, "cache-control"), "max-age=60");
      const part = await only(c, req("/hello.txt", "Range: bytes=0-0\r\n"));
      assert.equal(part.status, 206);
      assert.equal(header(part, "cache-control"), "max-age=60");
    },
  },
  // ---------------------------------------------------------------- RFC 9110 15
  {
    clause: "RFC 9110 15.4.2",
    rule: "301 SHOULD carry Location (a directory without its slash)",
    run: async (c) => {
      const r = await only(c, req("/dir?x=1"));
      assert.equal(r.status, 301);
      // A relative reference (RFC 9110 10.2.2), resolved against the target URI.
      assert.match(header(r, "location") ?? "", /^(\.\/|\/)dir\/(\?x=1)?$/);
    },
  },
  {
    clause: "RFC 9110 8.3",
    rule: "a response with content SHOULD carry Content-Type (files and errors)",
    run: async (c) => {
      for (const raw of [req("/hello.txt"), req("/missing"), req("/big.bin"), "BAD\r\n\r\n"]) {
        const r = await only(c, raw);
        assert.ok(r.body.length > 0);
        assert.ok(header(r, "content-type"), `${r.status} without Content-Type`);
      }
    },
  },
];

Deno.test({
  name: "RFC 9110 / RFC 9112 conformance, clause by clause",
  fn: async (t) => {
    const root = await Deno.makeTempDir({ prefix: "ringhttpd-rfc-" });
    try {
      Deno.writeTextFileSync(`${root}/hello.txt`, "hello\n");
      Deno.writeTextFileSync(`${root}/empty.txt`, "");
      Deno.writeFileSync(`${root}/big.bin`, new Uint8Array(1000).map((_, i) => i & 0xff));
      Deno.writeTextFileSync(`${root}/pre.txt`, "plain\n");
      Deno.writeFileSync(`${root}/pre.txt.gz`, gzipSync("plain\n"));
      Deno.mkdirSync(`${root}/dir`);
      Deno.writeTextFileSync(`${root}/dir/inner.txt`, "inner\n");
      Deno.mkdirSync(`${root}/future`);
      Deno.writeTextFileSync(`${root}/future/soon.txt`, "from the future\n");
      const later = new Date(Date.now() + 365 * 24 * 3600 * 1000);
      Deno.utimeSync(`${root}/future/soon.txt`, later, later);
      Deno.utimeSync(`${root}/future`, later, later);
      await using server = await startCli([
        root,
        "--workers",
        "1",
        "--header-timeout",
        "2",
        "--header",
        "Cache-Control: max-age=60",
      ]);
      const first = (await exchange(server.port, req("/hello.txt"))).responses[0];
      const c: Ctx = {
        server,
        etag: header(first, "etag") ?? "",
        lastModified: header(first, "last-modified") ?? "",
      };
      assert.match(c.etag, ETAG);
      for (const row of ROWS) {
        await t.step(`${row.clause}: ${row.rule}`, async () => {
          try {
            await row.run(c);
          } catch (e) {
            throw new Error(`${e instanceof Error ? e.message : e}\n${server.stderr.tail(2000)}`);
          }
        });
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
