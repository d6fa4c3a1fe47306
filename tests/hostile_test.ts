/**
 * Black-box hostile-input suite (issue 6): the real CLI in a subprocess,
 * every request on a fresh raw socket with its expected status set, checked
 * for leaks of bytes from outside the root, dotfiles and /etc, for 500s,
 * unescaped listing names, Range amplification and one response per request,
 * with a liveness request after each batch. Then a bounded, seeded mutation
 * fuzzer against the same server.
 *
 * Env: `FUZZ_SEED` (number) to replay a fuzz run, `FUZZ_SECONDS` (<= 60,
 * default 15).
 *
 * @module
 */

import assert from "node:assert/strict";
import { ACCEPT_MODES, type ServerProcess, startCli } from "./_harness.ts";
import {
  bytesOf,
  countStatusLines,
  type Exchange,
  exchange,
  header,
  indexOfBytes,
  type ParsedResponse,
  pool,
} from "./_raw.ts";
import { prng } from "./_prng.ts";
import { type Fixture, forbiddenContent, HOSTILE_NAMES, makeFixture } from "./_fixture.ts";

const dec = new TextDecoder();

/** One hostile input and what it may legitimately get back. */
interface Case {
  cat: string;
  name: string;
  raw: string | Uint8Array;
  /** Allowed status for every response. */
  expect: number[];
  /** Allowed response counts. @default [1] */
  responses?: number[];
  head?: boolean;
  /** Size of the file a Range request targets: body <= 2 x size + 4 KiB. */
  rangeOf?: number;
  /** Extra check; returns a problem or undefined. */
  check?: (r: ParsedResponse[], ex: Exchange) => string | undefined;
}

const H = "Host: localhost\r\n";
function req(target: string, extra = "", method = "GET", version = "HTTP/1.1"): string {
  return `${method} ${target} ${version}\r\n${H}${extra}\r\n`;
}

const NOT_FOUND = [400, 404];

function traversalCases(): Case[] {
  const cat = "traversal";
  const targets: Array<[string, number[]]> = [
    ["/../outside/secret.txt", NOT_FOUND],
    ["/../../../../../../../../etc/passwd", NOT_FOUND],
    ["/..%2foutside%2fsecret.txt", NOT_FOUND],
    ["/%2e%2e/outside/secret.txt", NOT_FOUND],
    ["/%2e%2e%2foutside%2fsecret.txt", NOT_FOUND],
    ["/%2E%2E/outside/secret.txt", NOT_FOUND],
    ["/.%2e/outside/secret.txt", NOT_FOUND],
    ["/%2e./outside/secret.txt", NOT_FOUND],
    ["/%252e%252e/outside/secret.txt", NOT_FOUND],
    ["/%252e%252e%252foutside%252fsecret.txt", NOT_FOUND],
    ["/..\\outside\\secret.txt", NOT_FOUND],
    ["/..%5coutside%5csecret.txt", NOT_FOUND],
    ["/%5c..%5c..%5coutside%5csecret.txt", NOT_FOUND],
    ["/dir/..%5c..%5coutside%5csecret.txt", NOT_FOUND],
    ["/dir\\..\\..\\outside\\secret.txt", NOT_FOUND],
    ["/./../outside/secret.txt", NOT_FOUND],
    ["//../outside/secret.txt", NOT_FOUND],
    ["/dir/../../outside/secret.txt", NOT_FOUND],
    ["/dir/%2e%2e/%2e%2e/outside/secret.txt", NOT_FOUND],
    ["/dir/./../../outside/secret.txt", NOT_FOUND],
    ["/%c0%ae%c0%ae/outside/secret.txt", NOT_FOUND],
    ["/%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt", NOT_FOUND],
    ["/%e0%80%ae%e0%80%ae/outside/secret.txt", NOT_FOUND],
    ["/..%c0%afoutside/secret.txt", NOT_FOUND],
    ["/..%c1%9coutside/secret.txt", NOT_FOUND],
    ["/%u002e%u002e/outside/secret.txt", NOT_FOUND],
    ["/..%00/outside/secret.txt", NOT_FOUND],
    ["/hello.txt%00.html", NOT_FOUND],
    ["/hello.txt%00", NOT_FOUND],
    ["/%00", NOT_FOUND],
    ["/..;/outside/secret.txt", NOT_FOUND],
    ["/....//....//outside/secret.txt", NOT_FOUND],
    ["/..././outside/secret.txt", NOT_FOUND],
    ["/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", NOT_FOUND],
    ["/..%252f..%252fetc%252fpasswd", NOT_FOUND],
    ["/../root-evil/secret.txt", NOT_FOUND],
    ["/%2e%2e/root-evil/secret.txt", NOT_FOUND],
    ["/..%2froot-evil%2fsecret.txt", NOT_FOUND],
    ["/%ef%bc%8e%ef%bc%8e/outside/secret.txt", NOT_FOUND],
    ["/%zz", NOT_FOUND],
    ["/%", NOT_FOUND],
    ["/%2", NOT_FOUND],
    ["/%e9", NOT_FOUND],
    ["/..", NOT_FOUND],
    ["/../", NOT_FOUND],
    ["/dir/..", NOT_FOUND],
    ["/dir/%2e%2e", NOT_FOUND],
    ["/.", [200, 301, 400, 404]],
    ["/dir/.", [200, 301, 400, 404]],
    ["/./hello.txt", [200, 400, 404]],
    ["//hello.txt", [200, 400, 404]],
    ["/dir//inner.txt", [200, 400, 404]],
    ["/dir%2finner.txt", NOT_FOUND],
    ["/hello.txt#/../../outside/secret.txt", [200, 400, 404]],
    ["/hello.txt?/../../outside/secret.txt", [200, 400]],
    ["/dir?/../../../outside/secret.txt", [301, 400, 404]],
    ["/hello.txt/", [404]],
    ["/hello.txt/..", NOT_FOUND],
  ];
  const cases: Case[] = targets.map(([t, expect]) => ({ cat, name: t, raw: req(t), expect }));
  const raws: Array<[string, string, number[]]> = [
    ["raw NUL in path", "GET /hello.txt\x00.html HTTP/1.1\r\n" + H + "\r\n", [400]],
    ["raw NUL before ..", "GET /\x00/../etc/passwd HTTP/1.1\r\n" + H + "\r\n", [400]],
    ["raw space in target", "GET /with space.txt HTTP/1.1\r\n" + H + "\r\n", [400]],
    ["absolute-form", req("http://localhost/hello.txt"), [200, 400]],
    ["absolute-form https", req("https://localhost/hello.txt"), [200, 400]],
    ["absolute-form ..", req("http://localhost/../outside/secret.txt"), NOT_FOUND],
    ["absolute-form %2e%2e", req("http://localhost/%2e%2e/outside/secret.txt"), NOT_FOUND],
    ["absolute-form port ..", req("http://localhost:1/../../etc/passwd"), NOT_FOUND],
    ["absolute-form file:", req("file:///etc/passwd"), NOT_FOUND],
    ["absolute-form no path", req("http://localhost"), [200, 301, 400]],
    ["authority-form", req("localhost:80"), [400]],
    ["authority-form ip", req("127.0.0.1:80"), [400]],
    ["asterisk GET", req("*"), NOT_FOUND],
    ["asterisk OPTIONS", req("*", "", "OPTIONS"), [200]],
    ["relative ..", req("../outside/secret.txt"), NOT_FOUND],
    ["relative name", req("outside/secret.txt"), NOT_FOUND],
    ["relative file", req("hello.txt"), NOT_FOUND],
    ["query only", req("?x"), [400]],
    ["fragment only", req("#x"), [400]],
  ];
  for (const [name, raw, expect] of raws) cases.push({ cat, name, raw, expect });
  return cases;
}

function symlinkCases(): Case[] {
  const cat = "symlink";
  const t404: string[] = [
    "/etc/passwd",
    "/etc/",
    "/etc",
    "/etc/hostname",
    "/%65tc/passwd",
    "/out/secret.txt",
    "/out/",
    "/out",
    "/out/.env",
    "/secretlink",
    "/chain1",
    "/chain2",
    "/abs_out",
    "/sub/up/secret.txt",
    "/sub/up/",
    "/sub/up",
    "/evilprefix",
    "/evildir/secret.txt",
    "/evildir/",
    "/loop1",
    "/loop1/x",
    "/loop2/",
    "/selfloop",
    "/selfloop/x",
    "/dangling",
    "/notadir.txt/x",
    "/notadir.txt/",
    "/out/secret.txt?format=json",
    "/etc/?format=json",
  ];
  const cases: Case[] = t404.map((t) => ({ cat, name: t, raw: req(t), expect: [404] }));
  cases.push(
    { cat, name: "/etc/./passwd", raw: req("/etc/./passwd"), expect: NOT_FOUND },
    { cat, name: "/etc%2fpasswd", raw: req("/etc%2fpasswd"), expect: NOT_FOUND },
    {
      cat,
      name: "/notadir.txt/../hello.txt",
      raw: req("/notadir.txt/../hello.txt"),
      expect: NOT_FOUND,
    },
    {
      cat,
      name: "HEAD /etc/passwd",
      raw: req("/etc/passwd", "", "HEAD"),
      expect: [404],
      head: true,
    },
    {
      cat,
      name: "/secretlink Range",
      raw: req("/secretlink", "Range: bytes=0-3\r\n"),
      expect: [404],
    },
    { cat, name: "/inside_link", raw: req("/inside_link"), expect: [200, 404] },
    {
      cat,
      name: "precompressed siblings leaving the root are ignored",
      raw: req("/comp.txt", "Accept-Encoding: gzip, br\r\n"),
      expect: [200],
      check: (rs) => dec.decode(rs[0]?.body) === "comp\n" ? undefined : "not the plain file",
    },
    {
      cat,
      name: "precompressed sibling naming a dotfile is ignored",
      raw: req("/comp2.txt", "Accept-Encoding: gzip\r\n"),
      expect: [200],
      check: (rs) => dec.decode(rs[0]?.body) === "comp2\n" ? undefined : "not the plain file",
    },
    { cat, name: "FIFO (open would block)", raw: req("/fifo"), expect: [403, 404] },
    { cat, name: "link to FIFO", raw: req("/fifolink"), expect: [403, 404] },
    { cat, name: "HEAD FIFO", raw: req("/fifo", "", "HEAD"), expect: [403, 404], head: true },
    { cat, name: "link to /dev/zero", raw: req("/devzero"), expect: [404] },
    { cat, name: "non-UTF-8 symlink out", raw: req("/%FE-out"), expect: [404] },
    { cat, name: "non-UTF-8 symlink to dotfile", raw: req("/%FD-dot"), expect: [404] },
    {
      cat,
      name: "non-UTF-8 dir link to prefix sibling",
      raw: req("/%FC-evildir/secret.txt"),
      expect: [404],
    },
    { cat, name: "non-UTF-8 + ..", raw: req("/%FF/../outside/secret.txt"), expect: NOT_FOUND },
    {
      cat,
      name: "non-UTF-8 + encoded ..",
      raw: req("/%FF/%2e%2e/%2e%2e/etc/passwd"),
      expect: NOT_FOUND,
    },
    { cat, name: "non-UTF-8 + %2f", raw: req("/%FE-out%2f..%2fsecret.txt"), expect: NOT_FOUND },
    { cat, name: "non-UTF-8 + NUL", raw: req("/%FF%00"), expect: NOT_FOUND },
    {
      cat,
      name: "non-UTF-8 + backslash",
      raw: req("/%FF%5c..%5c..%5cetc%5cpasswd"),
      expect: NOT_FOUND,
    },
    { cat, name: "/dirlink/", raw: req("/dirlink/"), expect: [200, 404] },
    { cat, name: "/dirlink/inner.txt", raw: req("/dirlink/inner.txt"), expect: [200, 404] },
  );
  return cases;
}

function nameTooLongCases(): Case[] {
  const cat = "ENAMETOOLONG";
  const targets: Array<[string, string, number[]]> = [
    ["segment 256", "/" + "a".repeat(256), [404]],
    ["segment 1000", "/" + "a".repeat(1000), [404]],
    ["path 4500", "/" + "abcdefgh/".repeat(500), [404]],
    ["encoded 2000", "/dir/" + "%41".repeat(2000), [404]],
    ["encoded UTF-8 300", "/" + "%C3%A9".repeat(300), [404]],
    ["under symlink", "/etc/" + "a".repeat(300), [404]],
    ["../ x 2000", "/" + "../".repeat(2000) + "etc/passwd", NOT_FOUND],
    ["./ x 3000", "/" + "./".repeat(3000) + "hello.txt", [200, 400, 404]],
    ["dir/ x 1500", "/" + "dir/".repeat(1500), [404]],
    ["dotfile deep", "/.git/" + "a/".repeat(1000), [404]],
  ];
  return targets.map(([name, t, expect]) => ({ cat, name, raw: req(t), expect }));
}

function dotfileCases(): Case[] {
  const cat = "dotfile";
  const t404 = [
    "/.env",
    "/.env/",
    "/.git/config",
    "/.git/",
    "/.git",
    "/.git/HEAD",
    "/.hiddendir/",
    "/.hiddendir",
    "/.hiddendir/file.txt",
    "/dir/.hidden",
    "/%2eenv",
    "/%2egit/config",
    "/%2Egit/%63onfig",
    "/dir/%2ehidden",
    "/.env%20",
    "/.env.",
    "/.ENV",
    "/.env?format=json",
    "/.hiddendir/?format=json",
    "/.git/?format=json",
    "/..txt",
  ];
  const cases: Case[] = t404.map((t) => ({ cat, name: t, raw: req(t), expect: [404] }));
  cases.push(
    { cat, name: "/.git%2fconfig", raw: req("/.git%2fconfig"), expect: NOT_FOUND },
    { cat, name: "/.env%00", raw: req("/.env%00"), expect: NOT_FOUND },
    { cat, name: "/dir/./.hidden", raw: req("/dir/./.hidden"), expect: NOT_FOUND },
    { cat, name: "/./.env", raw: req("/./.env"), expect: NOT_FOUND },
    { cat, name: "/dir/../.env", raw: req("/dir/../.env"), expect: NOT_FOUND },
    { cat, name: "HEAD /.env", raw: req("/.env", "", "HEAD"), expect: [404], head: true },
    {
      cat,
      name: "/.git/config Range",
      raw: req("/.git/config", "Range: bytes=0-5\r\n"),
      expect: [404],
    },
    {
      cat,
      name: "/.env If-None-Match *",
      raw: req("/.env", "If-None-Match: *\r\n"),
      expect: [404],
    },
  );
  return cases;
}

function methodCases(): Case[] {
  const cat = "method/version";
  const M = [405, 501];
  const list: Array<[string, string, number[], boolean?]> = [
    ["lower-case get", req("/hello.txt", "", "get"), [400, 405, 501]],
    ["mixed-case Get", req("/hello.txt", "", "Get"), [400, 405, 501]],
    ["POST empty", req("/hello.txt", "Content-Length: 0\r\n", "POST"), [400, ...M]],
    ["PUT with body", req("/new.txt", "Content-Length: 5\r\n", "PUT") + "hello", [400, 413, ...M]],
    ["DELETE", req("/hello.txt", "", "DELETE"), M],
    ["PATCH", req("/hello.txt", "", "PATCH"), M],
    ["OPTIONS", req("/hello.txt", "", "OPTIONS"), [200, 204, ...M]],
    ["TRACE", req("/", "", "TRACE"), M],
    ["TRACK", req("/", "", "TRACK"), M],
    ["CONNECT authority", req("localhost:80", "", "CONNECT"), [400, ...M]],
    ["CONNECT path", req("/", "", "CONNECT"), [400, ...M]],
    ["PROPFIND", req("/", "", "PROPFIND"), M],
    ["unknown FOO", req("/hello.txt", "", "FOO"), M],
    ["GETT", req("/hello.txt", "", "GETT"), M],
    ["17-byte method", req("/", "", "ABCDEFGHIJKLMNOPQ"), [400, ...M]],
    ["1000-byte method", req("/", "", "A".repeat(1000)), [400, ...M]],
    ["method with @", req("/", "", "G@T"), [400]],
    ["method only", "GET\r\n\r\n", [400]],
    ["leading space", " GET /hello.txt HTTP/1.1\r\n" + H + "\r\n", [400]],
    ["extra token", "GET /hello.txt HTTP/1.1 extra\r\n" + H + "\r\n", [400]],
    ["two spaces", "GET  /hello.txt HTTP/1.1\r\n" + H + "\r\n", [400]],
    ["tab separator", "GET\t/hello.txt HTTP/1.1\r\n" + H + "\r\n", [400]],
    ["HTTP/0.9 line", "GET /hello.txt\r\n\r\n", [400, 505]],
    ["HTTP/2.0", req("/hello.txt", "", "GET", "HTTP/2.0"), [400, 505]],
    ["HTTP/3", req("/hello.txt", "", "GET", "HTTP/3"), [400, 505]],
    ["HTTP/1.2", req("/hello.txt", "", "GET", "HTTP/1.2"), [200, 505]],
    ["HTTP/0.9 token", req("/hello.txt", "", "GET", "HTTP/0.9"), [400, 505]],
    ["HTTP/1.10", req("/hello.txt", "", "GET", "HTTP/1.10"), [400, 505]],
    ["HTTP/01.1", req("/hello.txt", "", "GET", "HTTP/01.1"), [400, 505]],
    ["http/1.1", req("/hello.txt", "", "GET", "http/1.1"), [400, 505]],
    ["trailing space", "GET /hello.txt HTTP/1.1 \r\n" + H + "\r\n", [400]],
    ["HTTP/1", req("/hello.txt", "", "GET", "HTTP/1"), [400, 505]],
    ["HTTP/", req("/hello.txt", "", "GET", "HTTP/"), [400, 505]],
    ["FOO/1.1", req("/hello.txt", "", "GET", "FOO/1.1"), [400, 505]],
    ["h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", [400, 505]],
    ["1.1 no Host", "GET /hello.txt HTTP/1.1\r\n\r\n", [400]],
    ["1.1 two Hosts", req("/hello.txt", "Host: other\r\n"), [400]],
    ["1.1 Host list", "GET /hello.txt HTTP/1.1\r\nHost: a, b\r\n\r\n", [200, 400]],
    ["1.0 no Host", "GET /hello.txt HTTP/1.0\r\n\r\n", [200]],
    ["1.0 two Hosts", req("/hello.txt", "Host: other\r\n", "GET", "HTTP/1.0"), [200, 400]],
    ["Host with space", "GET /hello.txt HTTP/1.1\r\nHost: a b\r\n\r\n", [200, 400]],
    ["Host path", "GET /hello.txt HTTP/1.1\r\nHost: evil/../../etc\r\n\r\n", [200, 400]],
    ["Host empty", "GET /hello.txt HTTP/1.1\r\nHost:\r\n\r\n", [200, 400]],
  ];
  // Every 405 names what is allowed.
  const allow = (rs: ParsedResponse[]) =>
    rs.some((r) => r.status === 405 && header(r, "allow") !== "GET, HEAD")
      ? `405 with Allow ${JSON.stringify(rs.map((r) => header(r, "allow")))}`
      : undefined;
  return list.map(([name, raw, expect]) => ({ cat, name, raw, expect, check: allow }));
}

function framingCases(): Case[] {
  const cat = "framing";
  const hidden = "GET /.env HTTP/1.1\r\nHost: x\r\n\r\n";
  const hiddenChunk = `${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`;
  const one = [1];
  const atMostOne = [0, 1];
  const c = (
    name: string,
    raw: string,
    expect: number[],
    responses = one,
    head = false,
  ): Case => ({ cat, name, raw, expect, responses, head });
  const B = [400, 413];
  const TE = [400, 501];
  // RFC 9112 sec. 6.1: a server MUST be able to parse chunked; the body is
  // read and dropped, so the request it hides is never answered.
  const CHUNKED = [200];
  return [
    c("GET CL 5 body", req("/hello.txt", "Content-Length: 5\r\n") + "hello", [200, ...B]),
    c("GET CL 0", req("/hello.txt", "Content-Length: 0\r\n"), [200, ...B]),
    c(
      "GET body hides request",
      req("/hello.txt", `Content-Length: ${hidden.length}\r\n`) + hidden,
      [200, ...B],
    ),
    c(
      "GET CL longer than sent, hides request",
      req("/hello.txt", "Content-Length: 200\r\n") + hidden,
      [200, ...B],
      atMostOne,
    ),
    c(
      "HEAD body hides request",
      req("/hello.txt", `Content-Length: ${hidden.length}\r\n`, "HEAD") + hidden,
      [200, ...B],
      one,
      true,
    ),
    c(
      "POST body hides request",
      req("/hello.txt", `Content-Length: ${hidden.length}\r\n`, "POST") + hidden,
      [405, 501, ...B],
    ),
    c(
      "CL + TE chunked",
      req("/hello.txt", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n" +
        hidden,
      TE,
    ),
    c(
      "TE chunked + CL",
      req("/hello.txt", "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n") + hiddenChunk,
      TE,
    ),
    c("CL x2 same", req("/hello.txt", "Content-Length: 0\r\nContent-Length: 0\r\n"), [400]),
    c(
      "CL x2 differ",
      req("/hello.txt", `Content-Length: 0\r\nContent-Length: ${hidden.length}\r\n`) + hidden,
      [400],
    ),
    c("CL list", req("/hello.txt", "Content-Length: 0, 0\r\n"), [200, 400]),
    c("CL +5", req("/hello.txt", "Content-Length: +5\r\n") + "hello", [400]),
    c("CL -1", req("/hello.txt", "Content-Length: -1\r\n"), [400]),
    c("CL 0x5", req("/hello.txt", "Content-Length: 0x5\r\n") + "hello", [400]),
    c("CL 5 5", req("/hello.txt", "Content-Length: 5 5\r\n") + "hello", [400]),
    c("CL 1e1", req("/hello.txt", "Content-Length: 1e1\r\n") + "0123456789", [400]),
    c("CL huge", req("/hello.txt", "Content-Length: 99999999999999999999999\r\n"), B),
    c("CL 100000, no body", req("/hello.txt", "Content-Length: 100000\r\n"), B, atMostOne),
    c("CL empty", req("/hello.txt", "Content-Length:\r\n"), [400]),
    c("CL space before colon", req("/hello.txt", "Content-Length : 5\r\n") + "hello", [400]),
    c("TE chunked", req("/hello.txt", "Transfer-Encoding: chunked\r\n") + hiddenChunk, CHUNKED),
    c("TE Chunked", req("/hello.txt", "Transfer-Encoding: Chunked\r\n") + hiddenChunk, CHUNKED),
    c("TE two spaces", req("/hello.txt", "Transfer-Encoding:  chunked\r\n") + hiddenChunk, CHUNKED),
    c(
      "TE chunked, identity",
      req("/hello.txt", "Transfer-Encoding: chunked, identity\r\n") + hiddenChunk,
      TE,
    ),
    c("TE identity", req("/hello.txt", "Transfer-Encoding: identity\r\n") + "0\r\n\r\n", TE),
    c(
      "TE gzip, chunked",
      req("/hello.txt", "Transfer-Encoding: gzip, chunked\r\n") + hiddenChunk,
      TE,
    ),
    c("TE xchunked", req("/hello.txt", "Transfer-Encoding: xchunked\r\n") + hiddenChunk, TE),
    c(
      "TE x2",
      req("/hello.txt", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n") +
        hiddenChunk,
      TE,
    ),
    c("TE tab", req("/hello.txt", "Transfer-Encoding:\tchunked\r\n") + hiddenChunk, CHUNKED),
    c("TE vtab", req("/hello.txt", "Transfer-Encoding: \x0bchunked\r\n") + hiddenChunk, TE),
    c(
      "TE space before colon",
      req("/hello.txt", "Transfer-Encoding : chunked\r\n") + hiddenChunk,
      [400],
    ),
    c(
      "TE obs-fold",
      req("/hello.txt", "Transfer-Encoding:\r\n chunked\r\n") + hiddenChunk,
      [400],
    ),
    c(
      "Connection: close then second request",
      req("/hello.txt", "Connection: close\r\n") + hidden,
      [200],
    ),
    c("HTTP/1.0 then second request", req("/hello.txt", "", "GET", "HTTP/1.0") + hidden, [200]),
    {
      cat,
      name: "three pipelined GETs answered in order",
      raw: req("/hello.txt") + req("/dir/inner.txt") + req("/big.bin", "Range: bytes=0-0\r\n"),
      expect: [200, 206],
      responses: [3],
      check: (rs) => {
        const got = rs.map((r) => `${r.status}:${r.body.length}`).join(",");
        return got === "200:6,200:6,206:1" ? undefined : `order/size wrong: ${got}`;
      },
    },
    c(
      "pipelined GET, garbage, GET",
      req("/hello.txt") + "GARBAGE\r\n\r\n" + req("/.env"),
      [200, 400],
      [2],
    ),
    c("bare LF lines", "GET /hello.txt HTTP/1.1\nHost: x\n\n", [200, 400]),
    c("bare CR in value", req("/hello.txt", "X-A: a\rb\r\n"), [400]),
    c("bare CR ends line", "GET /hello.txt HTTP/1.1\rHost: x\r\n\r\n", [400]),
    c("NUL in value", req("/hello.txt", "X-A: a\x00b\r\n"), [400]),
    c("space in name", req("/hello.txt", "X Y: z\r\n"), [400]),
    c("paren in name", req("/hello.txt", "X(y): z\r\n"), [400]),
    c("empty name", req("/hello.txt", ": z\r\n"), [400]),
    c("leading CRLF", "\r\n" + req("/hello.txt"), [200, 400]),
    c("1000 leading CRLF", "\r\n".repeat(1000) + req("/hello.txt"), [200, 400]),
    c("obs-text value", req("/hello.txt", "X-A: \xff\xfe\r\n"), [200, 400]),
    c("DEL in value", req("/hello.txt", "X-A: a\x7fb\r\n"), [200, 400]),
  ];
}

function headerLimitCases(): Case[] {
  const cat = "header limits";
  const line = (len: number) => {
    // "GET /aaa... HTTP/1.1" of exactly `len` bytes, without CRLF.
    const pad = len - "GET / HTTP/1.1".length;
    return `GET /${"a".repeat(pad)} HTTP/1.1\r\n${H}\r\n`;
  };
  const block = (len: number) => {
    // Header field lines of `len` bytes, each with its CRLF; the request line
    // and the empty line that ends the head not counted (http/limits.ts).
    const fixed = H.length + "X-Pad: ".length + 2;
    return `GET /hello.txt HTTP/1.1\r\n${H}X-Pad: ${"b".repeat(len - fixed)}\r\n\r\n`;
  };
  const headers = (n: number) => {
    let s = "GET /hello.txt HTTP/1.1\r\n" + H;
    for (let i = 1; i < n; i++) s += `X-H${i}: ${i}\r\n`;
    return s + "\r\n";
  };
  const check = (n: number) => (_rs: ParsedResponse[], ex: Exchange) =>
    bytesOf(ex.bytes).length > 0 ? undefined : `no answer to ${n}`;
  return [
    { cat, name: "request line 8 KiB + 1", raw: line(8193), expect: [414] },
    { cat, name: "request line 8 KiB", raw: line(8192), expect: [404, 414] },
    { cat, name: "request line 4 KiB", raw: line(4096), expect: [404] },
    { cat, name: "request line 64 KiB", raw: line(65536), expect: [414] },
    { cat, name: "request line 1 MiB", raw: line(1 << 20), expect: [414] },
    {
      cat,
      name: "9000 bytes, no space",
      raw: "A".repeat(9000) + "\r\n\r\n",
      expect: [400, 414, 501],
    },
    { cat, name: "header block 16 KiB + 1", raw: block(16385), expect: [431] },
    { cat, name: "header block 16 KiB", raw: block(16384), expect: [200] },
    { cat, name: "header block 15 KiB", raw: block(15 * 1024), expect: [200] },
    {
      cat,
      name: "one 17 KiB value",
      raw: req("/hello.txt", `X-Big: ${"c".repeat(17 * 1024)}\r\n`),
      expect: [431],
    },
    { cat, name: "100 headers", raw: headers(100), expect: [200], check: check(100) },
    { cat, name: "101 headers", raw: headers(101), expect: [431] },
    { cat, name: "1000 headers", raw: headers(1000), expect: [431] },
    { cat, name: "100000 headers", raw: headers(100_000), expect: [431] },
    {
      cat,
      name: "1 MiB value",
      raw: req("/hello.txt", `X-Big: ${"d".repeat(1 << 20)}\r\n`),
      expect: [431],
    },
    {
      cat,
      name: "20 KiB header, no end",
      raw: `GET /hello.txt HTTP/1.1\r\n${H}X-Big: ${"e".repeat(20 * 1024)}`,
      expect: [431],
    },
    { cat, name: "no colon", raw: req("/hello.txt", "NoColonHere\r\n"), expect: [400] },
    { cat, name: "obs-fold space", raw: req("/hello.txt", "X-A: a\r\n b\r\n"), expect: [400] },
    { cat, name: "obs-fold tab", raw: req("/hello.txt", "X-A: a\r\n\tb\r\n"), expect: [400] },
    {
      cat,
      name: "obs-fold first header",
      raw: "GET /hello.txt HTTP/1.1\r\n X-A: a\r\n" + H + "\r\n",
      expect: [400],
    },
    {
      cat,
      name: "16 KiB of Cookie headers",
      raw: req("/hello.txt", `Cookie: ${"k=v; ".repeat(3500)}\r\n`),
      expect: [431],
    },
  ];
}

function rangeCases(fx: Fixture): Case[] {
  const cat = "range";
  const S = fx.bigSize;
  const r = (
    name: string,
    range: string,
    expect: number[],
    target = "/big.bin",
    size = S,
    extra = "",
    method = "GET",
  ): Case => ({
    cat,
    name,
    raw: req(target, `Range: ${range}\r\n${extra}`, method),
    expect,
    rangeOf: size,
    head: method === "HEAD",
  });
  const many = (n: number, f: (i: number) => string) =>
    "bytes=" + Array.from({ length: n }, (_, i) => f(i)).join(",");
  const full = (rs: ParsedResponse[]) =>
    rs[0]?.status === 200 && rs[0].body.length !== S
      ? `200 body ${rs[0].body.length} != ${S}`
      : undefined;
  return [
    { ...r("0-0 x 1000", many(1000, () => "0-0"), [200, 416]), check: full },
    r("0-0,0-0", "bytes=0-0,0-0", [200, 206]),
    r("whole x2", `bytes=0-${S - 1},0-${S - 1}`, [200]),
    r("overlap half", `bytes=0-5000,2500-${S - 1}`, [200, 206]),
    r("0- x 4", "bytes=0-,0-,0-,0-", [200]),
    r("-0", "bytes=-0", [200, 416]),
    r("huge last", "bytes=0-99999999999999999999999", [200, 206, 416]),
    r("huge first", "bytes=99999999999999999999999-", [200, 416]),
    r("huge suffix", "bytes=-99999999999999999999999", [200, 206, 416]),
    r("negative start", "bytes=-5-10", [200, 416]),
    r("negative end", "bytes=5--1", [200, 416]),
    r("-1--1", "bytes=-1--1", [200, 416]),
    r("multi, one beyond", "bytes=0-1,20000-30000", [200, 206, 416]),
    r("multi, all beyond", "bytes=20000-30000,40000-50000", [200, 416]),
    r("start = size", `bytes=${S}-`, [200, 416]),
    {
      ...r("last byte", `bytes=${S - 1}-`, [206]),
      check: (rs) => rs[0]?.body.length === 1 ? undefined : "not 1 byte",
    },
    {
      ...r("first byte", "bytes=0-0", [206]),
      check: (rs) =>
        header(rs[0], "content-range") === `bytes 0-0/${S}`
          ? undefined
          : `Content-Range ${header(rs[0], "content-range")}`,
    },
    r("reversed", "bytes=1-0", [200, 416]),
    r("empty set", "bytes=", [200, 416]),
    r("only commas", "bytes=,,,,", [200, 416]),
    r("empty element", "bytes=0-1,,2-3", [200, 206, 416]),
    r("bits unit", "bits=0-1", [200]),
    r("no =", "bytes 0-1", [200, 416]),
    r("spaces", "bytes = 0 - 1", [200, 206, 416]),
    r("17 disjoint", many(17, (i) => `${i * 10}-${i * 10 + 1}`), [200]),
    r("16 disjoint", many(16, (i) => `${i * 10}-${i * 10 + 1}`), [200, 206]),
    r("1000 disjoint", many(1000, (i) => `${i * 2}-${i * 2}`), [200]),
    r("4000 x 0-0", many(4000, () => "0-0"), [200, 416, 431]),
    r("two Range headers", "bytes=0-0\r\nRange: bytes=1-1", [200, 206, 400, 416]),
    {
      ...r("If-Range etag mismatch", "bytes=0-9", [200], "/big.bin", S, 'If-Range: "nope"\r\n'),
      check: full,
    },
    r("If-Range weak", "bytes=0-9", [200], "/big.bin", S, 'If-Range: W/"nope"\r\n'),
    {
      ...r(
        "If-Range old date",
        "bytes=0-9",
        [200],
        "/big.bin",
        S,
        "If-Range: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
      ),
      check: full,
    },
    r("If-Range garbage", "bytes=0-9", [200], "/big.bin", S, "If-Range: garbage\r\n"),
    r("HEAD 0-0 x 1000", many(1000, () => "0-0"), [200, 416], "/big.bin", S, "", "HEAD"),
    r("Range on listing", "bytes=0-0", [200, 206], "/", 64 * 1024),
    r("empty file 0-0", "bytes=0-0", [200, 416], "/empty.txt", 0),
    r("empty file -1", "bytes=-1", [200, 416], "/empty.txt", 0),
    r("small file 0-0 x 1000", many(1000, () => "0-0"), [200, 416], "/hello.txt", 6),
    r("small file overlap", "bytes=0-5,0-5,0-5", [200], "/hello.txt", 6),
    r("small file -1 x 100", many(100, () => "-1"), [200, 416], "/hello.txt", 6),
    {
      ...r(
        "5 GiB sparse: 20 bytes past 2^32",
        "bytes=5368709100-5368709119",
        [206],
        "/sparse5g.bin",
        20,
      ),
      check: (rs) =>
        header(rs[0], "content-range") === "bytes 5368709100-5368709119/5368709120" &&
          rs[0].body.length === 20 && rs[0].body.every((b) => b === 0)
          ? undefined
          : `Content-Range ${header(rs[0], "content-range")}, ${rs[0]?.body.length} bytes`,
    },
    {
      ...r("5 GiB sparse: suffix 5", "bytes=-5", [206], "/sparse5g.bin", 5),
      check: (rs) =>
        header(rs[0], "content-range") === "bytes 5368709115-5368709119/5368709120"
          ? undefined
          : `Content-Range ${header(rs[0], "content-range")}`,
    },
    // HEAD: a 200 (the Range ignored as unparseable, allowed) would stream 5 GiB.
    r(
      "5 GiB sparse: beyond 2^53",
      "bytes=9007199254740993-9007199254740999",
      [416, 200],
      "/sparse5g.bin",
      0,
      "",
      "HEAD",
    ),
    {
      cat,
      name: "HEAD 5 GiB sparse: Content-Length exact",
      raw: req("/sparse5g.bin", "", "HEAD"),
      expect: [200],
      head: true,
      check: (rs) =>
        header(rs[0], "content-length") === "5368709120"
          ? undefined
          : `Content-Length ${header(rs[0], "content-length")}`,
    },
  ];
}

function listingCases(fx: Fixture): Case[] {
  const cat = "listing/names";
  const noRedirectToOtherHost = (rs: ParsedResponse[]) => {
    for (const r of rs) {
      const loc = header(r, "location");
      if (loc && (/^\/\//.test(loc) || /^[a-z][a-z0-9+.-]*:/i.test(loc) || /[<>"]/.test(loc))) {
        return `unsafe Location ${JSON.stringify(loc)}`;
      }
    }
    return undefined;
  };
  const cases: Case[] = [
    { cat, name: "/ listing", raw: req("/"), expect: [200] },
    { cat, name: "/?format=json", raw: req("/?format=json"), expect: [200] },
    { cat, name: "/ Accept json", raw: req("/", "Accept: application/json\r\n"), expect: [200] },
    { cat, name: "/%3Cdir%3E/", raw: req("/%3Cdir%3E/"), expect: [200] },
    {
      cat,
      name: "/%3Cdir%3E -> 301",
      raw: req("/%3Cdir%3E"),
      expect: [301],
      check: noRedirectToOtherHost,
    },
    {
      cat,
      name: "/dir -> 301 /dir/",
      raw: req("/dir"),
      expect: [301],
      check: (rs) => {
        const loc = header(rs[0], "location") ?? "";
        return /dir\/$/.test(loc) ? noRedirectToOtherHost(rs) : `Location ${loc}`;
      },
    },
    {
      cat,
      name: "/dir with evil Host",
      raw: "GET /dir HTTP/1.1\r\nHost: evil.example\r\n\r\n",
      expect: [301],
      check: (rs) =>
        (header(rs[0], "location") ?? "").includes("evil.example")
          ? "Location built from Host"
          : undefined,
    },
    {
      cat,
      name: "//evil.example open redirect",
      raw: req("//evil.example"),
      expect: [200, 301, 400, 404],
      check: noRedirectToOtherHost,
    },
    {
      cat,
      name: "//evil.example/dir",
      raw: req("//evil.example/dir"),
      expect: [301, 400, 404],
      check: noRedirectToOtherHost,
    },
    {
      cat,
      name: "/dir?x=<script>",
      raw: req("/dir?x=%3Cscript%3E"),
      expect: [301, 400],
      check: noRedirectToOtherHost,
    },
    {
      cat,
      name: "/?sort=<script>",
      raw: req("/?sort=%3Cscript%3Ealert(1)%3C/script%3E"),
      expect: [200, 400],
    },
    { cat, name: "/?order=<script>", raw: req("/?order=<script>"), expect: [200, 400] },
    { cat, name: "/?page=-1", raw: req("/?page=-1"), expect: [200, 400, 404] },
    { cat, name: "/?page=huge", raw: req("/?page=99999999999999999999"), expect: [200, 400, 404] },
    { cat, name: "/?page=abc", raw: req("/?page=abc"), expect: [200, 400, 404] },
    { cat, name: "/?sort=size&order=desc", raw: req("/?sort=size&order=desc"), expect: [200] },
    { cat, name: "/dir/?format=json", raw: req("/dir/?format=json"), expect: [200] },
    { cat, name: "/site/ index.html", raw: req("/site/"), expect: [200] },
    { cat, name: "HEAD /", raw: req("/", "", "HEAD"), expect: [200], head: true },
  ];
  for (const name of HOSTILE_NAMES) {
    cases.push({
      cat,
      name: `GET ${name.slice(0, 40)}`,
      raw: req("/" + encodeURIComponent(name)),
      expect: [200],
    });
  }
  if (fx.nonUtf8) {
    cases.push({ cat, name: "non-UTF-8 name", raw: req("/%FF%FE-bin.txt"), expect: [200] });
  }
  return cases;
}

/** Per-response pass criteria shared by every case; returns problems. */
function judge(c: Case, ex: Exchange, forbidden: Array<[string, Uint8Array]>): string[] {
  const problems: string[] = [];
  const counts = c.responses ?? [1];
  const rs = ex.responses;
  if (!counts.includes(rs.length)) {
    problems.push(`${rs.length} responses (want ${counts.join("|")})`);
  }
  const lines = countStatusLines(ex.bytes);
  if (lines !== rs.length) problems.push(`${lines} status lines for ${rs.length} parsed responses`);
  if (ex.trailing.length > 0) {
    problems.push(
      `${ex.trailing.length} stray bytes after the responses: ${
        JSON.stringify(dec.decode(ex.trailing.slice(0, 80)))
      }`,
    );
  }
  if (ex.timedOut && rs.length === 0) {
    problems.push("no answer and no close before the deadline (hang)");
  }
  for (const r of rs) {
    if (r.status === 500) problems.push("status 500");
    if (!c.expect.includes(r.status)) {
      problems.push(`status ${r.status} (want ${c.expect.join("|")})`);
    }
    if (c.rangeOf !== undefined && r.body.length > 2 * c.rangeOf + 4096) {
      problems.push(`Range body ${r.body.length} bytes > 2 x ${c.rangeOf} + 4 KiB`);
    }
    const ct = header(r, "content-type") ?? "";
    if (ct.startsWith("text/html")) {
      const text = dec.decode(r.body);
      for (const name of [...HOSTILE_NAMES, "<dir>"]) {
        if (name.includes("<") && text.includes(name)) problems.push(`raw name in HTML: ${name}`);
      }
      // One static progressive-enhancement script is fine; reflected markup is not.
      if (
        (text.match(/<script/gi) ?? []).length > 1 || /<script>alert|<script[^>]*src=/i.test(text)
      ) {
        problems.push("injected <script in HTML");
      }
      if (/href="[^"]*\.env|>\.env<|>\.git\/?</.test(text)) problems.push("dotfile listed");
    }
  }
  for (const [label, needle] of forbidden) {
    if (indexOfBytes(ex.bytes, needle) >= 0) problems.push(`LEAK: ${label}`);
  }
  return problems;
}

async function alive(server: ServerProcess): Promise<string | undefined> {
  if (server.exited) return `server exited: ${JSON.stringify(server.exited)}`;
  try {
    const ex = await exchange(server.port, req("/hello.txt", "Connection: close\r\n"), {
      timeoutMs: 10_000,
    });
    const r = ex.responses[0];
    if (r?.status === 200 && dec.decode(r.body) === "hello\n") return undefined;
    return `liveness got ${r ? r.status : "nothing"} (${ex.timedOut ? "timeout" : "closed"})`;
  } catch (e) {
    return `liveness failed: ${e}`;
  }
}

/** Runs cases in batches of `batch` concurrent connections, liveness after each batch. */
async function runCases(
  server: ServerProcess,
  cases: Case[],
  forbidden: Array<[string, Uint8Array]>,
  batch = 8,
): Promise<string[]> {
  const failures: string[] = [];
  for (let i = 0; i < cases.length; i += batch) {
    const slice = cases.slice(i, i + batch);
    const results = await Promise.all(slice.map(async (c) => {
      try {
        const max = Math.max(...(c.responses ?? [1]));
        const ex = await exchange(server.port, c.raw, {
          head: c.head,
          expectResponses: max,
          timeoutMs: 15_000,
        });
        const problems = judge(c, ex, forbidden);
        const extra = c.check?.(ex.responses, ex);
        if (extra) problems.push(extra);
        return problems.map((p) =>
          `[${c.cat}] ${c.name}: ${p} (got ${
            ex.responses.map((r) => r.status).join(",") || "nothing"
          })`
        );
      } catch (e) {
        return [`[${c.cat}] ${c.name}: exchange threw ${e}`];
      }
    }));
    failures.push(...results.flat());
    const dead = await alive(server);
    if (dead) {
      failures.push(`after batch [${slice.map((c) => c.name).join(" | ")}]: ${dead}`);
      if (server.exited) break;
    }
  }
  return failures;
}

function allCases(fx: Fixture): Case[] {
  return [
    ...traversalCases(),
    ...symlinkCases(),
    ...nameTooLongCases(),
    ...dotfileCases(),
    ...methodCases(),
    ...framingCases(),
    ...headerLimitCases(),
    ...rangeCases(fx),
    ...listingCases(fx),
  ];
}

/** Both ways connections reach workers: ring (acceptor + rings) and reuseport (Deno.Conn). */
const MODES = ACCEPT_MODES;

for (const mode of MODES) {
  Deno.test(`hostile inputs (${mode} mode): no leak, no 500, one response each, server stays alive`, async (t) => {
    await using fx = await makeFixture();
    await using server = await startCli([fx.root, "--accept", mode, "--header-timeout", "5"]);
    const forbidden = forbiddenContent(fx);
    const cases = allCases(fx);
    assert.ok(cases.length >= 200, `only ${cases.length} cases`);
    const byCat = Map.groupBy(cases, (c) => c.cat);
    const t0 = performance.now();
    for (const [cat, list] of byCat) {
      await t.step(`${cat} (${list.length} requests)`, async () => {
        const failures = await runCases(server, list, forbidden);
        assert.deepEqual(failures, [], `${failures.length} failures\n${server.diagnosis()}`);
      });
    }
    const restarts = await server.restarts();
    console.log(
      `hostile (${mode}): ${cases.length} requests in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s, ` +
        `worker restarts ${restarts ?? "unknown (no SIGUSR2 stats)"}`,
    );
    if (restarts !== undefined) assert.equal(restarts, 0, `workers died\n${server.diagnosis()}`);
  });
}

Deno.test("hostile inputs: every href in the root listing answers (escaping round-trips)", async () => {
  await using fx = await makeFixture();
  await using server = await startCli([fx.root]);
  const listing = await exchange(server.port, req("/", "Connection: close\r\n"));
  assert.equal(listing.responses[0]?.status, 200, server.diagnosis());
  const html = dec.decode(listing.responses[0].body);
  const unescape = (s: string) =>
    s.replace(/&quot;/g, '"').replace(/&#39;|&#x27;|&apos;/g, "'").replace(/&lt;/g, "<").replace(
      /&gt;/g,
      ">",
    ).replace(
      /&amp;/g,
      "&",
    );
  const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => unescape(m[1]));
  const failures: string[] = [];
  for (const name of [...HOSTILE_NAMES, "<dir>"]) {
    const enc = encodeURIComponent(name);
    const found = hrefs.some((h) => {
      const path = h.split("?")[0].replace(/^\.\//, "").replace(/\/$/, "");
      try {
        return decodeURIComponent(path) === name || path === enc;
      } catch {
        return false;
      }
    });
    if (!found) failures.push(`no href for ${JSON.stringify(name)}`);
  }
  await pool(hrefs.filter((h) => !h.startsWith("?") && !/^[a-z]+:/i.test(h)), 8, async (h) => {
    const target = h.startsWith("/") ? h : "/" + h.replace(/^\.\//, "");
    if (/[\s]/.test(target)) {
      failures.push(`href with raw whitespace: ${JSON.stringify(h)}`);
      return;
    }
    const ex = await exchange(server.port, req(target, "Connection: close\r\n"));
    const st = ex.responses[0]?.status;
    // Links to symlinks leaving the root may be listed but must answer 404.
    if (st !== 200 && st !== 301 && st !== 404) failures.push(`href ${h} -> ${st}`);
  });
  assert.deepEqual(failures, [], server.diagnosis());
});

Deno.test("folder downloads (?download=tar|zip) hold nothing a GET would refuse", async () => {
  await using fx = await makeFixture();
  await using server = await startCli([fx.root]);
  const forbidden = forbiddenContent(fx);
  const failures: string[] = [];
  const get = (target: string, extra = "") =>
    exchange(server.port, req(target, `Connection: close\r\n${extra}`), { maxBytes: 64 << 20 });
  // zip (#15) too: every archive format holds the same members.
  let r: Awaited<ReturnType<typeof get>>["responses"][number] | undefined;
  for (const format of ["tar", "zip"]) {
    const tar = await get(`/arch/?download=${format}`);
    r = tar.responses[0];
    if (r?.status !== 200) failures.push(`/arch/?download=${format} -> ${r?.status}`);
    else {
      const body = r.body;
      if (!r.complete) failures.push("archive cut short");
      for (const [label, needle] of forbidden) {
        if (indexOfBytes(body, needle) >= 0) failures.push(`LEAK in ${format}: ${label}`);
      }
      // Member names live in the 512-byte headers; none may come from outside or be hidden.
      const text = new TextDecoder("latin1").decode(body);
      for (
        const bad of [
          "secret.txt",
          "passwd",
          "hostname",
          ".env",
          ".hidden",
          ".git",
          "fifo",
          "devzero",
          "loopa",
        ]
      ) {
        if (text.includes(bad)) failures.push(`archive names ${bad}`);
      }
      for (const good of ["ok.txt", "nested/fine.txt"]) {
        if (!text.includes(good)) failures.push(`archive lacks ${good}`);
      }
    }
  }
  // A selection of a hidden or outside name answers like an absent one.
  for (const name of [".env", ".git", "secret.txt", "nope"]) {
    const st = (await get(`/arch/?download=zip&select=${name}`)).responses[0]?.status;
    if (st !== 400) failures.push(`select=${name} -> ${st}`);
  }
  for (
    const t of [
      "/.git/?download=tar",
      "/etc/?download=tar",
      "/out/?download=tar",
      "/sub/up/?download=tar",
      "/arch/etc/?download=tar",
      "/arch/outdir/?download=tar",
    ]
  ) {
    const st = (await get(t)).responses[0]?.status;
    if (st !== 404) failures.push(`${t} -> ${st}`);
  }
  const sub = await get("/sub/?download=tar");
  for (const [label, needle] of forbidden) {
    if (indexOfBytes(sub.bytes, needle) >= 0) failures.push(`LEAK in /sub/ archive: ${label}`);
  }
  const ranged = await get(
    "/arch/?download=tar",
    `Range: bytes=${Array(1000).fill("0-0").join(",")}\r\n`,
  );
  const rr = ranged.responses[0];
  if (rr && r && rr.body.length > 2 * r.body.length + 4096) {
    failures.push("Range amplified the archive");
  }
  assert.deepEqual(failures, [], server.diagnosis());
});

Deno.test("--no-dir-listing: directories without index.html answer 404 and name nothing", async () => {
  await using fx = await makeFixture();
  await using server = await startCli([fx.root, "--no-dir-listing"]);
  const failures: string[] = [];
  for (const target of ["/", "/dir/", "/?format=json", "/%3Cdir%3E/", "/dir/?sort=size"]) {
    const ex = await exchange(server.port, req(target, "Connection: close\r\n"));
    const r = ex.responses[0];
    const body = dec.decode(r?.body);
    if (r?.status !== 404) failures.push(`${target} -> ${r?.status}`);
    if (/hello\.txt|inner\.txt|x\.txt/.test(body)) failures.push(`${target} names files`);
  }
  const site = await exchange(server.port, req("/site/", "Connection: close\r\n"));
  if (site.responses[0]?.status !== 200) {
    failures.push(`/site/ (index.html) -> ${site.responses[0]?.status}`);
  }
  assert.deepEqual(failures, [], server.diagnosis());
});

Deno.test({
  name: "non-UTF-8 names are linkable: listed with an href that answers 200",
  fn: async () => {
    await using fx = await makeFixture();
    assert.ok(fx.nonUtf8, "fixture could not create a non-UTF-8 name");
    await using server = await startCli([fx.root]);
    const listing = await exchange(server.port, req("/", "Connection: close\r\n"));
    const html = dec.decode(listing.responses[0]?.body);
    assert.match(html, /href="[^"]*%FF%FE-bin\.txt"/i);
    const got = await exchange(server.port, req("/%FF%FE-bin.txt", "Connection: close\r\n"));
    assert.equal(got.responses[0]?.status, 200);
  },
});

Deno.test({
  // Errors the engine answers itself (400, 413, 431, 501, 505) once the
  // request line showed a HEAD: RFC 9110 sec. 9.3.2, no content.
  name: "engine error responses to HEAD carry no body",
  fn: async () => {
    await using fx = await makeFixture();
    await using server = await startCli([fx.root]);
    const cat = "HEAD errors";
    const cases: Case[] = [
      [
        "TE gzip, chunked",
        req("/hello.txt", "Transfer-Encoding: gzip, chunked\r\n", "HEAD") + "0\r\n\r\n",
        [501],
      ],
      ["obs-fold", req("/hello.txt", "X-A: a\r\n b\r\n", "HEAD"), [400]],
      ["no Host", "HEAD /hello.txt HTTP/1.1\r\n\r\n", [400]],
      ["HTTP/2.0", req("/hello.txt", "", "HEAD", "HTTP/2.0"), [505]],
      ["CL 100000", req("/hello.txt", "Content-Length: 100000\r\n", "HEAD"), [413]],
      ["101 headers", req("/hello.txt", "X-A: 1\r\n".repeat(100), "HEAD"), [431]],
    ].map(([name, raw, expect]) => ({
      cat,
      name: name as string,
      raw: raw as string,
      expect: expect as number[],
      head: true,
    }));
    const failures = await runCases(server, cases, forbiddenContent(fx));
    assert.deepEqual(failures, [], server.diagnosis());
  },
});

Deno.test({
  // Symlinks that leave the root answer 404, so listing them (with the size
  // and mtime of their target outside) would leak what GET hides.
  name: "listings do not reveal symlinks that leave the root, nor their targets' size and mtime",
  fn: async () => {
    await using fx = await makeFixture();
    await using server = await startCli([fx.root]);
    const ex = await exchange(server.port, req("/?format=json", "Connection: close\r\n"));
    const names = (JSON.parse(dec.decode(ex.responses[0]?.body)) as Array<{ name: string }>)
      .map((e) => e.name);
    const outward = [
      "etc",
      "out",
      "secretlink",
      "chain1",
      "chain2",
      "abs_out",
      "evilprefix",
      "evildir",
    ];
    assert.deepEqual(names.filter((n) => outward.includes(n)), []);
  },
});

// ---- fuzzing ---------------------------------------------------------------

function seedCorpus(): string[] {
  return [
    req("/hello.txt"),
    req("/", "Accept: text/html\r\nUser-Agent: fuzz\r\n"),
    req("/big.bin", "Range: bytes=0-99,200-299\r\n"),
    req("/big.bin", 'If-None-Match: "x"\r\nIf-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n'),
    req("/dir/inner.txt", "Connection: keep-alive\r\n", "GET", "HTTP/1.0"),
    req("/%3Cdir%3E/?format=json", "Accept: application/json\r\n"),
    req("/hello.txt", "", "HEAD"),
    req("/dir", "Accept-Encoding: gzip, br\r\n"),
    req("/hello.txt", "Content-Length: 5\r\n") + "hello",
    req("/big.bin", 'Range: bytes=-10\r\nIf-Range: "abc"\r\n'),
    req("/hello.txt") + req("/dir/inner.txt"),
  ];
}

function mutate(input: Uint8Array, rnd: () => number): Uint8Array {
  let b = Array.from(input);
  const ops = 1 + Math.floor(rnd() * 4);
  const interesting = [0, 10, 13, 32, 58, 37, 46, 47, 92, 0x7f, 0x80, 0xff, 9, 44, 45, 61];
  for (let k = 0; k < ops; k++) {
    const at = Math.floor(rnd() * (b.length + 1));
    switch (Math.floor(rnd() * 8)) {
      case 0: // bit flip
        if (b.length) b[at % b.length] ^= 1 << Math.floor(rnd() * 8);
        break;
      case 1: // truncate
        b = b.slice(0, at);
        break;
      case 2: { // duplicate a slice
        const len = Math.floor(rnd() * 64);
        b.splice(at, 0, ...b.slice(at, at + len));
        break;
      }
      case 3: // interesting byte
        b.splice(at, 0, interesting[Math.floor(rnd() * interesting.length)]);
        break;
      case 4: // delete
        b.splice(at, 1 + Math.floor(rnd() * 8));
        break;
      case 5: { // repeat a slice many times
        const len = 1 + Math.floor(rnd() * 8);
        const piece = b.slice(at, at + len);
        const times = Math.floor(rnd() * 3000);
        const big: number[] = [];
        for (let i = 0; i < times; i++) big.push(...piece);
        b.splice(at, 0, ...big);
        break;
      }
      case 6: // random byte
        if (b.length) b[at % b.length] = Math.floor(rnd() * 256);
        break;
      default: { // splice a header in
        const hs = [
          "Content-Length: 3\r\n",
          "Transfer-Encoding: chunked\r\n",
          "Range: bytes=0-0,0-0\r\n",
          "Host: y\r\n",
          "Connection: close\r\n",
          " folded\r\n",
        ];
        b.splice(at, 0, ...bytesOf(hs[Math.floor(rnd() * hs.length)]));
      }
    }
  }
  return new Uint8Array(b);
}

for (const mode of MODES) {
  Deno.test(`fuzz (${mode} mode): mutated requests never get a 500, never leak, never kill the server`, async () => {
    const seed = Number(Deno.env.get("FUZZ_SEED") ?? (Date.now() % 2 ** 31));
    // The budget (<= 60 s) is split between the two modes.
    const seconds = Math.min(60, Number(Deno.env.get("FUZZ_SECONDS") ?? 16)) / MODES.length;
    console.log(`fuzz (${mode}) seed ${seed} (replay: FUZZ_SEED=${seed}), ${seconds} s`);
    const rnd = prng(seed);
    await using fx = await makeFixture();
    await using server = await startCli([
      fx.root,
      "--accept",
      mode,
      "--header-timeout",
      "2",
      "--idle-timeout",
      "3",
    ]);
    const forbidden = forbiddenContent(fx);
    const corpus = seedCorpus().map(bytesOf);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let sent = 0;
    let hangs = 0;
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end && failures.length < 20) {
      const batch = Array.from(
        { length: 32 },
        () => mutate(corpus[Math.floor(rnd() * corpus.length)], rnd),
      );
      await pool(batch, 8, async (input) => {
        const ex = await exchange(server.port, input, { timeoutMs: 8_000 }).catch((e) =>
          e as Error
        );
        sent++;
        if (ex instanceof Error) {
          failures.push(
            `exchange threw ${ex} for ${JSON.stringify(dec.decode(input.slice(0, 200)))}`,
          );
          return;
        }
        if (ex.timedOut) hangs++;
        for (const r of ex.responses) {
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          if (r.status >= 500 && r.status !== 501 && r.status !== 505 && r.status !== 503) {
            failures.push(
              `status ${r.status} for ${JSON.stringify(dec.decode(input.slice(0, 300)))}`,
            );
          }
        }
        for (const [label, needle] of forbidden) {
          if (indexOfBytes(ex.bytes, needle) >= 0) {
            failures.push(`LEAK ${label} for ${JSON.stringify(dec.decode(input))}`);
          }
        }
      });
      const dead = await alive(server);
      if (dead) {
        failures.push(`after a batch: ${dead}`);
        break;
      }
    }
    console.log(
      `fuzz: ${sent} inputs, ${hangs} held open past 8 s, statuses ${
        JSON.stringify(Object.fromEntries(statuses))
      }`,
    );
    const restarts = await server.restarts();
    console.log(`fuzz: worker restarts ${restarts ?? "unknown (no SIGUSR2 stats)"}`);
    assert.deepEqual(failures, [], `seed ${seed}\n${server.diagnosis()}`);
    if (restarts !== undefined) assert.equal(restarts, 0, `seed ${seed}: workers died`);
    assert.equal(
      hangs,
      0,
      `seed ${seed}: ${hangs} connections neither answered nor closed within 8 s`,
    );
  });
}
