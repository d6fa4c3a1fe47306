/**
 * Incremental, strict parser of HTTP/1.1 request heads from bytes.
 *
 * Contract: the caller keeps the bytes of the head being parsed contiguous and
 * passes them again, with more appended, after {@linkcode RequestParser.parse}
 * returned 0; the parser remembers how far it looked (offsets relative to
 * `start`, so the caller may move the bytes), so a head fed one byte at a time
 * costs O(length), not O(length^2). Bytes are checked in place with lookup
 * tables, and 4 bytes at a time through a DataView where the rule allows it
 * (field values, known header names); strings are made once per head (one
 * latin1 decode, then substrings) because a decode per header costs more than
 * the whole parse.
 *
 * Why strict: a static GET/HEAD server needs nothing the lenient forms give,
 * and every leniency (bare LF, obs-fold, space before `:`, two Content-Length)
 * is a request-smuggling vector when a proxy reads the bytes differently.
 *
 * Answers, where RFC 9112 leaves a choice (tests/rfc_test.ts has the table
 * with the clause of each row):
 * - 400: malformed request line (bytes outside 0x21-0x7E or `#` in the
 *   target), bare CR or bare LF anywhere, obs-fold, whitespace before `:`, a
 *   non-token name, control bytes or DEL in a value, no Host on 1.1 or two
 *   Host, a Host that is not `uri-host [":" port]`, two Content-Length (also
 *   equal ones), Content-Length with Transfer-Encoding, a Content-Length that
 *   is not digits, Transfer-Encoding on HTTP/1.0, a Transfer-Encoding whose
 *   last coding is not `chunked` (or with `chunked` twice), bad chunked
 *   framing; `*` other than for OPTIONS; an authority-form target other than
 *   for CONNECT; an absolute-form target that is not `http`/`https` with a
 *   host and no userinfo.
 * - 501: a transfer coding before `chunked` (we decode none); CONNECT (we are
 *   no proxy); a method that is not registered (methods are case-sensitive,
 *   RFC 9110 sec. 9.1) or over 16 bytes.
 * - 505: `HTTP/x.y` with a major version other than 1 (digits-and-dots
 *   versions like `HTTP/2`), and a request line without a version (HTTP/0.9
 *   style). `HTTP/1.2`-`HTTP/1.9` are read as 1.1 (RFC 9110 sec. 2.5).
 * - 413: Content-Length over 64 KiB; up to that the caller skips the body. A
 *   chunked body is read here, as part of the request, and thrown away: over
 *   64 KiB of data, 128 KiB as sent, or a chunk line over 4 KiB is 413.
 * - Absolute-form: its authority replaces the Host value in `headers` and its
 *   path (`/` when empty) and query fill `path` / `query` (RFC 9112 sec. 3.2.2).
 * - Repeated field lines (other than Host and Content-Length) are combined
 *   into one, values joined by ", " (`; ` for Cookie), in order (RFC 9110
 *   sec. 5.3), so a list split over lines reads as one list.
 * - Empty lines before the request line are skipped (RFC 9112 sec. 2.2).
 * - `Expect: 100-continue` with a body: answered, then the connection closes.
 * - Methods in `streams` (uploads, WebDAV: write/body.ts): their bodies are
 *   left to the caller (`streamBody`, `chunked`, `contentLength`), with no
 *   64 KiB bound; the caller answers `Expect` and enforces its own limit.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { isIPv6 } from "node:net";
import type { RequestHead } from "./types.ts";
import {
  MAX_CHUNK_LINE,
  MAX_CHUNKED_BODY,
  MAX_CONTENT_LENGTH_DIGITS,
  MAX_DISCARD_BODY,
  MAX_HEADER_BLOCK,
  MAX_HEADERS,
  MAX_METHOD,
  MAX_REQUEST_LINE,
} from "./limits.ts";

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const COLON = 58;
const QMARK = 63;
const SLASH = 47;
const SEMI = 59;
const DQUOTE = 34;
const BACKSLASH = 92;
/** A line runs past the data received so far. */
const NEED = -1;

/** 0: not a tchar; 1: tchar; 2: tchar and an upper-case letter (RFC 9110 sec. 5.6.2). */
const TCHAR = new Uint8Array(256);
/** 1 for bytes allowed in a field value: VCHAR, obs-text, SP, HT (RFC 9110 sec. 5.5). */
const FIELD_VALUE = new Uint8Array(256);
for (let c = 0; c < 256; c++) FIELD_VALUE[c] = (c >= SP && c !== 0x7f) || c === HT ? 1 : 0;
/** Byte -> lower-case byte (ASCII letters only). */
const LOWER = new Uint8Array(256);
for (let c = 0; c < 256; c++) LOWER[c] = c >= 65 && c <= 90 ? c + 32 : c;
for (const ch of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") {
  TCHAR[ch.charCodeAt(0)] = 1;
}
for (let c = 65; c <= 90; c++) TCHAR[c] = 2;
/**
 * Request-target bytes: 0 ends the target (SP, controls, DEL, non-ASCII, and
 * `#`: a fragment is never part of a request, RFC 9112 sec. 3.2), 2 is `?`.
 */
const TARGET = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) TARGET[c] = 1;
TARGET[0x23] = 0;
TARGET[QMARK] = 2;

// One latin1 decode per head. Deno's node:buffer `latin1Slice` works on any
// Uint8Array and is ~6x faster than TextDecoder("latin1") (which is really
// windows-1252 and would also change bytes 0x80-0x9F).
const latin1Slice = (Buffer.prototype as unknown as {
  latin1Slice?: (this: Uint8Array, start: number, end: number) => string;
}).latin1Slice;

/** Decodes `buf[start, end)` as ISO-8859-1 (byte n -> U+00nn). */
export function latin1(buf: Uint8Array, start: number, end: number): string {
  if (latin1Slice !== undefined) return latin1Slice.call(buf, start, end);
  let s = "";
  for (let i = start; i < end; i += 4096) {
    s += String.fromCharCode.apply(
      null,
      buf.subarray(i, Math.min(end, i + 4096)) as unknown as number[],
    );
  }
  return s;
}

// Common header names, so a hit costs no allocation and no toLowerCase: an
// open-addressed table keyed by a hash of the lower-cased bytes.
const KNOWN_NAMES = [
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "user-agent",
  "accept",
  "accept-encoding",
  "accept-language",
  "accept-charset",
  "cache-control",
  "pragma",
  "referer",
  "origin",
  "cookie",
  "authorization",
  "if-none-match",
  "if-modified-since",
  "if-match",
  "if-unmodified-since",
  "if-range",
  "range",
  "upgrade-insecure-requests",
  "upgrade",
  "dnt",
  "te",
  "priority",
  "keep-alive",
  "content-type",
  "expect",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-requested-with",
  "sec-fetch-site",
  "sec-fetch-mode",
  "sec-fetch-dest",
  "sec-fetch-user",
  "sec-ch-ua",
  "sec-ch-ua-mobile",
  "sec-ch-ua-platform",
  "sec-gpc",
];
const KNOWN_SLOTS = 256;
/** Per slot: the lower-case name and its length (0 = empty slot). */
const knownStr: string[] = new Array(KNOWN_SLOTS).fill("");
const knownLen = new Int32Array(KNOWN_SLOTS);
/**
 * Per slot: where its words start in KNOWN_WORDS. A name of length n >= 4 is
 * stored as the little-endian 32-bit words of its bytes at 0, 4, ... while
 * below n - 4, then the word of its last 4 bytes (overlapping): a hit is
 * verified 4 bytes per compare. Names under 4 bytes are compared by byte.
 */
const knownOff = new Int32Array(KNOWN_SLOTS);
const KNOWN_FLAT = new TextEncoder().encode(KNOWN_NAMES.join(""));
const KNOWN_WORDS = new Int32Array(KNOWN_FLAT.length);
/**
 * Per word of KNOWN_WORDS: 0x20 in the lanes holding a letter. `(w | fold) ===
 * word` is then an exact case-insensitive match: only A-Z / a-z OR to a-z, and
 * a "-" lane must be "-" (a plain OR 0x20 would also let CR through as "-").
 */
const KNOWN_FOLD = new Int32Array(KNOWN_FLAT.length);
/**
 * Known names of 4+ bytes bucketed by a hash of their first 4 bytes (folded
 * with OR 0x20): candidates for `firstHash` h are `firstCand[firstStart[h],
 * firstStart[h + 1])`, in KNOWN_NAMES order.
 */
const FIRST_BUCKETS = 64;
const firstStart = new Int32Array(FIRST_BUCKETS + 1);
const firstCand = new Int16Array(KNOWN_NAMES.length);

function firstHash(w: number): number {
  return Math.imul(w | 0x20202020, 0x9e3779b1) >>> 26;
}
/** Headers the parser itself acts on, by slot. */
const knownSpecial = new Uint8Array(KNOWN_SLOTS);
const HOST = 1;
const CONTENT_LENGTH = 2;
const TRANSFER_ENCODING = 3;
const CONNECTION = 4;
const EXPECT = 5;
const SPECIAL: Record<string, number> = {
  "host": HOST,
  "content-length": CONTENT_LENGTH,
  "transfer-encoding": TRANSFER_ENCODING,
  "connection": CONNECTION,
  "expect": EXPECT,
};
{
  let off = 0;
  let words = 0;
  const word = (name: string, i: number) =>
    name.charCodeAt(i) | (name.charCodeAt(i + 1) << 8) | (name.charCodeAt(i + 2) << 16) |
    (name.charCodeAt(i + 3) << 24);
  const fold = (name: string, i: number) => {
    let f = 0;
    for (let j = 0; j < 4; j++) if (name.charCodeAt(i + j) >= 97) f |= 0x20 << (8 * j);
    return f;
  };
  const buckets: number[][] = Array.from({ length: FIRST_BUCKETS }, () => []);
  for (const name of KNOWN_NAMES) {
    const len = name.length;
    let slot = nameHash(len, name.charCodeAt(0), name.charCodeAt(len - 1));
    while (knownLen[slot] !== 0) slot = (slot + 1) & (KNOWN_SLOTS - 1);
    knownStr[slot] = name;
    knownLen[slot] = len;
    knownSpecial[slot] = SPECIAL[name] ?? 0;
    if (len < 4) {
      knownOff[slot] = off;
    } else {
      knownOff[slot] = words;
      for (let i = 0; i < len - 4; i += 4) {
        KNOWN_FOLD[words] = fold(name, i);
        KNOWN_WORDS[words++] = word(name, i);
      }
      KNOWN_FOLD[words] = fold(name, len - 4);
      KNOWN_WORDS[words++] = word(name, len - 4);
      buckets[firstHash(word(name, 0))].push(slot);
    }
    off += len;
  }
  let n = 0;
  for (let h = 0; h < FIRST_BUCKETS; h++) {
    firstStart[h] = n;
    for (const slot of buckets[h]) firstCand[n++] = slot;
  }
  firstStart[FIRST_BUCKETS] = n;
}

/**
 * Slot hash of a name from its length and first and last bytes, case-folded
 * with OR 0x20 (cheap; a hit is verified byte by byte).
 */
function nameHash(len: number, first: number, last: number): number {
  return ((len * 31 + (first | 0x20)) * 31 + (last | 0x20)) & (KNOWN_SLOTS - 1);
}

/**
 * The slot of the known name of 4+ bytes that, followed by ":", starts the
 * line at `ls` (any case), else -1; needs `ls + 4 <= end`. `dv` views `buf`'s
 * ArrayBuffer and `base` is `buf.byteOffset`. A hit proves the name bytes are
 * letters and "-", so the tchar scan is skipped for it: the common names cost
 * a few 4-byte compares instead of a table lookup per byte.
 */
function knownAt(buf: Uint8Array, dv: DataView, base: number, ls: number, end: number): number {
  const h = firstHash(dv.getInt32(base + ls, true));
  for (let c = firstStart[h], ce = firstStart[h + 1]; c < ce; c++) {
    const slot = firstCand[c];
    const len = knownLen[slot];
    if (ls + len >= end || buf[ls + len] !== COLON) continue;
    let o = knownOff[slot];
    let i = 0;
    while (
      i < len - 4 && (dv.getInt32(base + ls + i, true) | KNOWN_FOLD[o]) === KNOWN_WORDS[o]
    ) {
      i += 4;
      o++;
    }
    if (
      i >= len - 4 &&
      (dv.getInt32(base + ls + len - 4, true) | KNOWN_FOLD[o]) === KNOWN_WORDS[o]
    ) return slot;
  }
  return -1;
}

/** The slot of the known name of under 4 bytes in `buf[start, end)`, all tchars (any case), else -1. */
function knownShort(buf: Uint8Array, start: number, end: number): number {
  const len = end - start;
  let slot = nameHash(len, buf[start], buf[end - 1]);
  for (;;) {
    const l = knownLen[slot];
    if (l === 0) return -1;
    if (l === len) {
      const o = knownOff[slot];
      let i = 0;
      // Known names are only a-z and "-", for which OR 0x20 is an exact
      // case fold among tchars.
      while (i < len && (buf[start + i] | 0x20) === KNOWN_FLAT[o + i]) i++;
      if (i === len) return slot;
    }
    slot = (slot + 1) & (KNOWN_SLOTS - 1);
  }
}

const CONN_CLOSE = 1;
const CONN_KEEP_ALIVE = 2;

/** Flags for the `close` / `keep-alive` tokens in a Connection value, without allocating. */
function connectionTokens(v: string): number {
  if (v === "keep-alive") return CONN_KEEP_ALIVE;
  if (v === "close") return CONN_CLOSE;
  let flags = 0;
  let i = 0;
  const n = v.length;
  while (i < n) {
    while (i < n && (v.charCodeAt(i) === SP || v.charCodeAt(i) === HT || v.charCodeAt(i) === 44)) {
      i++;
    }
    const s = i;
    while (i < n && v.charCodeAt(i) !== 44) i++;
    let e = i;
    while (e > s && (v.charCodeAt(e - 1) === SP || v.charCodeAt(e - 1) === HT)) e--;
    if (e - s === 5 && tokenIs(v, s, "close")) flags |= CONN_CLOSE;
    else if (e - s === 10 && tokenIs(v, s, "keep-alive")) flags |= CONN_KEEP_ALIVE;
  }
  return flags;
}

function tokenIs(v: string, at: number, lower: string): boolean {
  for (let j = 0; j < lower.length; j++) {
    if ((v.charCodeAt(at + j) | 0x20) !== lower.charCodeAt(j)) return false;
  }
  return true;
}

/**
 * Parses a Content-Length value: digits only. -1 when malformed; -2 when it
 * has more than MAX_CONTENT_LENGTH_DIGITS significant digits (valid, but too
 * large for us: never converted, so no precision is lost, RFC 9112 sec. 6.2).
 */
function parseContentLength(v: string): number {
  if (v.length === 0) return -1;
  let n = 0;
  let digits = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    if (digits === 0 && d === 0) continue;
    if (++digits > MAX_CONTENT_LENGTH_DIGITS) n = -2;
    else if (n >= 0) n = n * 10 + d;
  }
  return n;
}

/** 1 for reg-name bytes other than `%`: unreserved and sub-delims (RFC 3986 sec. 3.2.2). */
const REG_NAME = new Uint8Array(256);
for (const ch of "-._~!$&'()*+,;=0123456789") REG_NAME[ch.charCodeAt(0)] = 1;
for (let c = 65; c <= 90; c++) REG_NAME[c] = REG_NAME[c + 32] = 1;

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);
}

/** Whether `v[from, v.length)` is `"" / ":" *DIGIT` (an optional port). */
function portOk(v: string, from: number): boolean {
  if (from === v.length) return true;
  if (v.charCodeAt(from) !== COLON) return false;
  for (let i = from + 1; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * Whether `v` is `uri-host [ ":" port ]` (RFC 9112 sec. 3.2, RFC 3986 sec.
 * 3.2.2) with a host that is not empty (an http URI has one, RFC 9110 sec.
 * 4.2.1). The empty Host value a client sends for a URI without authority is
 * the caller's case. `requirePort`: authority-form (`host:port`, RFC 9112
 * sec. 3.2.3).
 *
 * @param v The Host value or the authority of a request-target.
 * @param requirePort Whether the port is mandatory.
 * @returns Whether it is valid.
 */
export function validAuthority(v: string, requirePort = false): boolean {
  const n = v.length;
  if (n === 0) return false;
  let i = 0;
  if (v.charCodeAt(0) === 0x5b /* [ */) {
    const close = v.indexOf("]");
    if (close < 2) return false;
    const lit = v.substring(1, close);
    // IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ).
    if ((lit.charCodeAt(0) | 0x20) === 118 /* v */) {
      const dot = lit.indexOf(".");
      if (dot < 2 || dot === lit.length - 1) return false;
      for (let j = 1; j < dot; j++) if (!isHex(lit.charCodeAt(j))) return false;
      for (let j = dot + 1; j < lit.length; j++) {
        const c = lit.charCodeAt(j);
        if (REG_NAME[c] === 0 && c !== COLON) return false;
      }
    } else if (!isIPv6(lit)) return false;
    i = close + 1;
  } else {
    for (; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c > 0xff || REG_NAME[c] === 0) {
        if (c !== 37 /* % */) break;
        if (i + 2 >= n || !isHex(v.charCodeAt(i + 1)) || !isHex(v.charCodeAt(i + 2))) {
          return false;
        }
        i += 2;
      }
    }
    if (i === 0) return false;
  }
  if (requirePort && (i + 1 >= n || v.charCodeAt(i) !== COLON)) return false;
  return portOk(v, i);
}

/**
 * Checks a request's Transfer-Encoding list (all its lines, combined): 0 when
 * `chunked` is the last coding and the only one; 400 when the body length
 * cannot be known (chunked not last, twice, or with parameters; an empty or
 * malformed list: RFC 9112 sec. 6.3); 501 when chunked is last but another
 * coding comes before it (we decode none: RFC 9112 sec. 6.1).
 */
function transferCodings(v: string): 0 | 400 | 501 {
  let codings = 0;
  let chunkedLast = false;
  let chunked = 0;
  for (const raw of v.split(",")) {
    const el = raw.trim();
    if (el === "") continue; // RFC 9110 sec. 5.6.1: empty list elements are allowed.
    codings++;
    const semi = el.indexOf(";");
    const name = (semi < 0 ? el : el.substring(0, semi)).trimEnd();
    if (name.length === 0) return 400;
    for (let i = 0; i < name.length; i++) if (TCHAR[name.charCodeAt(i)] === 0) return 400;
    // Transfer-coding names are case-insensitive (RFC 9112 sec. 7).
    chunkedLast = name.length === 7 && tokenIs(name, 0, "chunked");
    if (chunkedLast) {
      // chunked has no parameters, and is applied once (RFC 9112 sec. 7.1).
      if (semi >= 0 || ++chunked > 1) return 400;
    }
  }
  if (!chunkedLast) return 400;
  return codings > 1 ? 501 : 0;
}

/**
 * Methods we recognise (RFC 9110 sec. 9 and the registered extensions a file
 * server may come to implement); any other gets 501 (RFC 9110 sec. 9.1).
 * Which of these a resource allows (405 + Allow) is the handler's decision.
 */
const KNOWN_METHODS = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
  "QUERY",
  "PROPFIND",
  "PROPPATCH",
  "MKCOL",
  "COPY",
  "MOVE",
  "LOCK",
  "UNLOCK",
]);

/** A target that is not origin-form, resolved: `path`, `query`, `authority`; or a status. */
type OtherForm = { path: string; query: string; authority: string } | number;

/**
 * Reads an absolute-form, authority-form or asterisk-form target (RFC 9112
 * sec. 3.2.2-3.2.4) for `method`.
 */
function otherForm(method: string, target: string): OtherForm {
  if (target === "*") {
    return method === "OPTIONS" ? { path: "*", query: "", authority: "" } : 400;
  }
  if (method === "CONNECT") return validAuthority(target, true) ? 501 : 400;
  const sep = target.indexOf("://");
  if (sep < 0) return 400;
  const scheme = target.substring(0, sep).toLowerCase();
  if (scheme !== "http" && scheme !== "https") return 400;
  const from = sep + 3;
  let end = from;
  while (end < target.length) {
    const c = target.charCodeAt(end);
    if (c === SLASH || c === QMARK) break;
    end++;
  }
  const authority = target.substring(from, end);
  // userinfo is deprecated and an error in a request (RFC 9110 sec. 4.2.4).
  if (authority.includes("@") || !validAuthority(authority)) return 400;
  const q = target.indexOf("?", end);
  const path = target.substring(end, q < 0 ? target.length : q);
  return {
    path: path === "" ? "/" : path,
    query: q < 0 ? "" : target.substring(q + 1),
    authority,
  };
}

/** Whether `buf[i, end)` is a valid chunk-ext (RFC 9112 sec. 7.1.1). */
function chunkExtOk(buf: Uint8Array, i: number, end: number): boolean {
  while (i < end) {
    while (i < end && (buf[i] === SP || buf[i] === HT)) i++;
    if (i === end || buf[i] !== SEMI) return false;
    i++;
    while (i < end && (buf[i] === SP || buf[i] === HT)) i++;
    const ns = i;
    while (i < end && TCHAR[buf[i]] !== 0) i++;
    if (i === ns) return false;
    let j = i;
    while (j < end && (buf[j] === SP || buf[j] === HT)) j++;
    if (j === end || buf[j] !== 61 /* = */) continue;
    i = j + 1;
    while (i < end && (buf[i] === SP || buf[i] === HT)) i++;
    if (i < end && buf[i] === DQUOTE) {
      i++;
      for (;;) {
        if (i === end) return false;
        const c = buf[i];
        if (c === DQUOTE) break;
        if (c === BACKSLASH) {
          i++;
          if (i === end || (FIELD_VALUE[buf[i]] === 0)) return false;
        } else if (FIELD_VALUE[c] === 0) return false;
        i++;
      }
      i++;
    } else {
      const vs = i;
      while (i < end && TCHAR[buf[i]] !== 0) i++;
      if (i === vs) return false;
    }
  }
  return true;
}

/** Whether `buf[ls, cr)` is a field line `token ":" OWS value OWS` (a trailer). */
function fieldLineOk(buf: Uint8Array, ls: number, cr: number): boolean {
  let i = ls;
  while (i < cr && TCHAR[buf[i]] !== 0) i++;
  if (i === ls || i === cr || buf[i] !== COLON) return false;
  for (i++; i < cr; i++) if (FIELD_VALUE[buf[i]] === 0) return false;
  return true;
}

const BODY_NONE = 0;
const BODY_SIZE = 1;
const BODY_DATA = 2;
const BODY_DATA_END = 3;
const BODY_TRAILER = 4;

/**
 * Incremental strict parser of request heads. One instance per connection.
 *
 * @example Parse a request that arrives in two pieces
 * ```ts
 * import { RequestParser } from "./parser.ts";
 * const p = new RequestParser();
 * const bytes = new TextEncoder().encode("GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n");
 * p.parse(bytes.subarray(0, 10), 0); // 0: needs more
 * const used = p.parse(bytes, 0); // the whole head, given again from its start
 * console.assert(used === bytes.length && p.head!.path === "/a");
 * ```
 */
export class RequestParser {
  /** The head, after `parse` returned a positive count. */
  head: RequestHead | null = null;
  /** Status to answer (400, 413, 414, 431, 501, 505), after `parse` returned -1. */
  error = 0;
  /**
   * Whether the request line of the head being received, or of the head that
   * failed, was complete with method `HEAD`: an error answer to it then has
   * no body (RFC 9110 sec. 9.3.2). `false` while the method is not known (no
   * complete request line yet).
   */
  get isHead(): boolean {
    return this.#isHead;
  }
  /** Whether the connection may be kept after answering `head`. */
  keepAlive = false;
  /** Body bytes that follow `head` (<= MAX_DISCARD_BODY); the caller skips them. */
  contentLength = 0;
  /**
   * Methods whose bodies the caller streams (write/body.ts) instead of the
   * parser skipping them: no 64 KiB bound, chunked bodies left unread.
   * null: none (every body is skipped as above).
   */
  streams: ReadonlySet<string> | null = null;
  /**
   * The head just parsed has a body for the caller to stream (a `streams`
   * method): `contentLength` bytes, or chunked when `chunked`.
   */
  streamBody = false;
  /** With `streamBody`: the body is chunked. */
  chunked = false;

  // Scan state, relative to `start`: where the current line begins, how far
  // LF was searched, and where the request line begins (after empty lines).
  #lineStart = 0;
  #scan = 0;
  #off = 0;
  #inHeaders = false;
  #blockBytes = 0;
  #count = 0;
  // Request-line offsets, relative to `start`.
  #methodEnd = 0;
  #targetStart = 0;
  #targetEnd = 0;
  #qmark = -1;
  #minor: 0 | 1 = 1;
  #isHead = false;
  /** 0: origin-form target; 1: another form (read in #finish). */
  #form = 0;
  /** Per known-name slot: its entry in the head being built, or -1 (always -1 between heads). */
  #seen = new Int16Array(KNOWN_SLOTS).fill(-1);
  /** The last Host value found valid (most heads on a connection repeat it). */
  #validHost = "";
  /** Entries of the head being built whose names are not known ones. */
  #unknown = new Int16Array(MAX_HEADERS);
  // Chunked body state (RFC 9112 sec. 7.1.3), offsets relative to `start`:
  // where the body starts, how far it was consumed, how far LF was searched.
  #body = BODY_NONE;
  #bodyStart = 0;
  #bodyPos = 0;
  #bodyScan = 0;
  #chunkLeft = 0;
  #bodyData = 0;
  #trailerBytes = 0;
  /** The head whose body is being read, and whether its connection may be kept. */
  #bodyHead: RequestHead | null = null;
  #bodyKeep = false;
  // Per header: name start, name end, value start, value end (relative).
  #pos = new Int32Array(4 * MAX_HEADERS);
  /** Per header: its known-name slot, or -1 (lower-case) / -2 (needs lower-casing). */
  #slots = new Int16Array(MAX_HEADERS);
  /**
   * A DataView of the last ArrayBuffer parsed, for 4-byte reads: made once
   * per buffer because one per call costs more than it saves. It keeps that
   * buffer alive until {@linkcode RequestParser.forgetBuffer}.
   */
  #dv: DataView | null = null;

  /** `true` while some bytes of a head have been seen but the head is not complete. */
  get partial(): boolean {
    return this.#scan !== 0 || this.#body !== BODY_NONE;
  }

  /** Drops the view of the last buffer parsed, so that buffer can be collected. */
  forgetBuffer(): void {
    this.#dv = null;
  }

  /** Forgets a partly seen head. */
  reset(): void {
    this.#lineStart = 0;
    this.#scan = 0;
    this.#off = 0;
    this.#inHeaders = false;
    this.#blockBytes = 0;
    this.#count = 0;
    this.#qmark = -1;
    this.#isHead = false;
    this.#body = BODY_NONE;
    this.#bodyHead = null;
  }

  /**
   * Parses the head that starts at `buf[start]`; `buf.length` is the end of
   * the data. Must be called again with the same head bytes (plus more) after
   * it returned 0.
   *
   * @param buf The received bytes; exactly its length is used.
   * @param start Offset of the first byte of the head.
   * @returns Bytes used by the head (> 0; `head`, `keepAlive`, `contentLength`
   * are set), 0 when more bytes are needed, or -1 on error (`error` is set).
   */
  parse(buf: Uint8Array, start: number): number {
    if (this.#body !== BODY_NONE) return this.#chunked(buf, start);
    const end = buf.length;
    // A new head (after an error, #fail kept the failed one's method).
    if (!this.#inHeaders) this.#isHead = false;
    let ls = start + this.#lineStart;
    // Resuming inside a line that was incomplete: look for its LF first, so
    // a line fed byte by byte is validated once, not once per byte.
    const scan = start + this.#scan;
    if (scan > ls) {
      let i = scan;
      while (i < end && buf[i] !== LF) i++;
      if (i === end) return this.#incomplete(end - ls, end - start);
    }
    while (!this.#inHeaders) {
      if (ls < end && buf[ls] === CR) {
        // RFC 9112 sec. 2.2: ignore empty lines before the request line;
        // they count against the request-line limit so they cannot pile up.
        if (ls + 1 === end) return this.#incomplete(1, end - start);
        if (buf[ls + 1] !== LF || ls + 2 - start > MAX_REQUEST_LINE) return this.#fail(400);
        ls += 2;
        this.#off = this.#lineStart = ls - start;
        continue;
      }
      const r = this.#requestLine(buf, ls, end, start);
      if (r === NEED) return this.#incomplete(end - ls, end - start);
      if (r < 0) return this.#fail(-r);
      ls = r + 1;
      this.#lineStart = ls - start;
    }
    // Header lines, with the per-line state in locals (this loop is the hot path).
    const tchar = TCHAR;
    const fieldValue = FIELD_VALUE;
    const pos = this.#pos;
    const slots = this.#slots;
    let dv = this.#dv;
    if (dv === null || dv.buffer !== buf.buffer) dv = this.#dv = new DataView(buf.buffer);
    const base = buf.byteOffset;
    let count = this.#count;
    let block = this.#blockBytes;
    for (;;) {
      if (ls < end && buf[ls] === CR) {
        if (ls + 1 === end) break;
        if (buf[ls + 1] !== LF) return this.#fail(400);
        this.#count = count;
        return this.#finish(buf, start, ls + 2);
      }
      if (count === MAX_HEADERS) return this.#fail(431);
      let kind = 0;
      let slot = ls + 4 <= end ? knownAt(buf, dv, base, ls, end) : -1;
      let i = slot >= 0 ? ls + knownLen[slot] : ls;
      if (slot < 0) {
        for (; i < end; i++) {
          const t = tchar[buf[i]];
          if (t === 0) break;
          kind |= t;
        }
        if (i === end) break;
        // Covers obs-fold (line starts with SP/HT), space before ":", bad name bytes.
        if (i === ls || buf[i] !== COLON) return this.#fail(400);
        // Longer known names were all tried by knownAt.
        if (i - ls < 4) slot = knownShort(buf, ls, i);
      }
      const ne = i++;
      while (i < end && (buf[i] === SP || buf[i] === HT)) i++;
      const vs = i;
      // field-value: VCHAR / obs-text / SP / HT; anything else (a bare CR, NUL,
      // other controls, DEL) is rejected rather than repaired. Four bytes at a
      // time while all are 0x20-0x7E (SWAR: a byte < 0x20 borrows into its top
      // bit in w - 0x20202020; 0x7F carries into it in w + 0x01010101; >= 0x80
      // has it), then byte by byte from the first word that is not.
      while (i + 4 <= end) {
        const w = dv.getInt32(base + i, true);
        if (((((w - 0x20202020) & ~w) | (w + 0x01010101) | w) & 0x80808080) !== 0) break;
        i += 4;
      }
      while (i < end && fieldValue[buf[i]] !== 0) i++;
      if (i === end || i + 1 === end) break;
      if (buf[i] !== CR || buf[i + 1] !== LF) return this.#fail(400);
      let ve = i;
      while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--;
      block += i + 2 - ls;
      if (block > MAX_HEADER_BLOCK) return this.#fail(431);
      const p = 4 * count;
      pos[p] = ls - start;
      pos[p + 1] = ne - start;
      pos[p + 2] = vs - start;
      pos[p + 3] = ve - start;
      // -2: unknown with upper-case letters, -1: unknown and lower-case.
      slots[count] = slot >= 0 ? slot : (kind & 2) !== 0 ? -2 : -1;
      count++;
      ls = i + 2;
    }
    // The data ends inside a line.
    this.#count = count;
    this.#blockBytes = block;
    this.#lineStart = ls - start;
    return this.#incomplete(end - ls, end - start);
  }

  /** Enforces the limits on a line still being received; returns 0 or -1. */
  #incomplete(pending: number, seen: number): number {
    this.#scan = seen;
    if (!this.#inHeaders) {
      // Content plus a CR may be MAX + 1 bytes before the LF arrives.
      if (pending > MAX_REQUEST_LINE + 1) return this.#fail(414);
    } else if (pending > 1 && this.#blockBytes + pending + 1 > MAX_HEADER_BLOCK) {
      return this.#fail(431);
    }
    return 0;
  }

  #fail(status: number): number {
    const head = this.#isHead;
    this.reset();
    this.#isHead = head;
    this.error = status;
    this.head = null;
    return -1;
  }

  /**
   * Checks `method SP origin-form SP HTTP/1.x CRLF` from `ls`.
   * Returns the index of its LF, NEED, or a negated status.
   */
  #requestLine(buf: Uint8Array, ls: number, end: number, start: number): number {
    let i = ls;
    while (i < end && TCHAR[buf[i]] !== 0) i++;
    if (i === end) return NEED;
    if (i === ls || buf[i] !== SP) return -400;
    if (i - ls > MAX_METHOD) return -501;
    const methodEnd = i;
    const ts = ++i;
    let q = -1;
    let c = 0;
    const target = TARGET;
    for (; i < end; i++) {
      c = buf[i];
      const t = target[c];
      if (t !== 1) {
        if (t === 0) break;
        if (q < 0) q = i;
      }
    }
    if (i === end) return NEED;
    if (i - ls > MAX_REQUEST_LINE) return -414;
    if (i === ts) return -400;
    if (c === CR) {
      // `GET /` with no version is an HTTP/0.9 request: a version we do not speak.
      if (i + 1 === end) return NEED;
      if (buf[i + 1] !== LF) return -400;
      this.#isHead = isHeadMethod(buf, ls, methodEnd);
      return -505;
    }
    if (c !== SP) return -400;
    const te = i;
    const vs = ++i;
    while (i < end && buf[i] > SP && buf[i] < 0x7f) i++;
    if (i === end) return NEED;
    if (i - ls > MAX_REQUEST_LINE) return -414;
    if (buf[i] !== CR) return -400;
    if (i + 1 === end) return NEED;
    if (buf[i + 1] !== LF) return -400;
    // The line is complete: from here on its method is known, and the
    // errors below (bad version, not origin-form) answer a HEAD head-only.
    this.#isHead = isHeadMethod(buf, ls, methodEnd);
    const cr = i;
    i = vs;
    // "HTTP/" DIGIT "." DIGIT exactly; any other HTTP/<digits and dots> -> 505.
    if (
      cr - i < 6 || buf[i] !== 72 || buf[i + 1] !== 84 || buf[i + 2] !== 84 ||
      buf[i + 3] !== 80 || buf[i + 4] !== SLASH
    ) return -400;
    for (let j = i + 5; j < cr; j++) {
      const d = buf[j];
      if ((d < 48 || d > 57) && d !== 46) return -400;
    }
    if (cr - i !== 8 || buf[i + 5] !== 49 || buf[i + 6] !== 46) return -505;
    const m = buf[i + 7];
    // 1.2-1.9 are read as 1.1, the highest 1.x we implement (RFC 9110 sec. 2.5).
    if (m === 48) this.#minor = 0;
    else if (m >= 49 && m <= 57) this.#minor = 1;
    else return -505;
    // Other forms than origin-form are read by #finish once the method and
    // headers are known (after the version, so `PRI * HTTP/2.0` gets 505).
    this.#form = buf[ts] === SLASH ? 0 : 1;
    this.#methodEnd = methodEnd - start;
    this.#targetStart = ts - start;
    this.#targetEnd = te - start;
    this.#qmark = q < 0 ? -1 : q - start;
    this.#inHeaders = true;
    return cr + 1;
  }

  #finish(buf: Uint8Array, start: number, headEnd: number): number {
    const off = this.#off;
    const s = latin1(buf, start + off, headEnd);
    const me = this.#methodEnd - off;
    const method = me === 3 && s.charCodeAt(0) === 71 && s.charCodeAt(1) === 69 &&
        s.charCodeAt(2) === 84
      ? "GET"
      : me === 4 && s.startsWith("HEAD")
      ? "HEAD"
      : s.substring(0, me);
    const ts = this.#targetStart - off;
    const te = this.#targetEnd - off;
    const target = s.substring(ts, te);
    const q = this.#qmark;
    let path = q < 0 ? target : s.substring(ts, q - off);
    let query = q < 0 ? "" : s.substring(q - off + 1, te);
    const minor = this.#minor;
    const count = this.#count;
    const headers: string[] = new Array(2 * count);
    const pos = this.#pos;
    const slots = this.#slots;
    const seen = this.#seen;
    const unknown = this.#unknown;
    let out = 0;
    let unknowns = 0;
    let hosts = 0;
    let host = -1;
    let lengths = 0;
    let length = "";
    let coded = -1;
    let close = false;
    let keep = false;
    let expect = false;
    for (let n = 0; n < count; n++) {
      const p = 4 * n;
      const slot = slots[n];
      const value = s.substring(pos[p + 2] - off, pos[p + 3] - off);
      // A repeated field line joins the first one's value (RFC 9110 sec.
      // 5.3), except Host and Content-Length, counted below (two are a 400).
      let at = -1;
      let name: string;
      if (slot < 0) {
        name = s.substring(pos[p] - off, pos[p + 1] - off);
        if (slot === -2) name = name.toLowerCase();
        for (let u = 0; u < unknowns; u++) {
          if (headers[2 * unknown[u]] === name) {
            at = unknown[u];
            break;
          }
        }
        if (at < 0) unknown[unknowns++] = out;
      } else {
        name = knownStr[slot];
        const special = knownSpecial[slot];
        if (special !== 0) {
          if (special === HOST) {
            hosts++;
            host = out;
          } else if (special === CONTENT_LENGTH) {
            lengths++;
            length = value;
          } else if (special === EXPECT) expect = true;
          else if (special === CONNECTION) {
            const flags = connectionTokens(value);
            if (flags & CONN_CLOSE) close = true;
            if (flags & CONN_KEEP_ALIVE) keep = true;
          }
        }
        if (special !== HOST && special !== CONTENT_LENGTH) {
          at = seen[slot];
          if (at < 0) seen[slot] = out;
        }
        if (special === TRANSFER_ENCODING && at < 0) coded = out;
      }
      if (at >= 0) {
        const v = headers[2 * at + 1];
        headers[2 * at + 1] = v === ""
          ? value
          : value === ""
          ? v
          : name === "cookie"
          ? `${v}; ${value}`
          : `${v}, ${value}`;
        continue;
      }
      headers[2 * out] = name;
      headers[2 * out + 1] = value;
      out++;
    }
    for (let n = 0; n < count; n++) if (slots[n] >= 0) seen[slots[n]] = -1;
    if (out !== count) headers.length = 2 * out;
    const used = headEnd - start;
    // Host: exactly one on 1.1 (RFC 9112 sec. 3.2); two are ambiguous on 1.0
    // too. Empty is allowed (a target URI without authority); else it must be
    // uri-host [":" port].
    if (hosts > 1 || (minor === 1 && hosts === 0)) return this.#fail(400);
    if (host >= 0) {
      // A connection sends the same Host again and again: compare with the
      // last valid one before checking it byte by byte.
      const hv = headers[2 * host + 1];
      if (hv !== "" && hv !== this.#validHost) {
        if (!validAuthority(hv)) return this.#fail(400);
        this.#validHost = hv;
      }
    }
    // Framing (RFC 9112 sec. 6.1-6.3). Two lengths, or a length next to
    // Transfer-Encoding, are smuggling shapes; HTTP/1.0 has no transfer codings.
    if (lengths > 1) return this.#fail(400);
    let chunked = false;
    if (coded >= 0) {
      if (lengths === 1 || minor === 0) return this.#fail(400);
      const r = transferCodings(headers[2 * coded + 1]);
      if (r !== 0) return this.#fail(r);
      chunked = true;
    }
    let cl = 0;
    if (lengths === 1) {
      cl = parseContentLength(length);
      if (cl === -1) return this.#fail(400);
      if (cl === -2) return this.#fail(413);
    }
    const stream = this.streams !== null && (cl > 0 || chunked) && this.streams.has(method);
    if (!stream && cl > MAX_DISCARD_BODY) return this.#fail(413);
    if (this.#form !== 0) {
      const r = otherForm(method, target);
      if (typeof r === "number") return this.#fail(r);
      path = r.path;
      query = r.query;
      // The target's authority is the target URI's (RFC 9112 sec. 3.2.2:
      // the Host field is ignored, after the checks above).
      if (r.authority !== "") {
        if (host >= 0) headers[2 * host + 1] = r.authority;
        else headers.push("host", r.authority);
      }
    } else if (method === "CONNECT") return this.#fail(400);
    if (method !== "GET" && method !== "HEAD" && !KNOWN_METHODS.has(method)) {
      return this.#fail(501);
    }
    const isHead = this.#isHead;
    this.reset();
    this.contentLength = cl;
    // `remote` and `user` exist from the start (set later by the engine and
    // the auth rule), so storing them neither reshapes nor grows the object.
    const head: RequestHead = {
      method,
      target,
      path,
      query,
      minor,
      headers,
      remote: undefined,
      user: undefined,
    };
    // A client that sent `Expect: 100-continue` may never send the body once
    // it sees our final answer, so skipping Content-Length bytes could eat
    // its next request: answer, then close.
    this.streamBody = stream;
    this.chunked = stream && chunked;
    if (stream) {
      // The caller reads the body (and answers Expect itself): keep-alive as asked.
      this.keepAlive = !close && (minor === 1 || keep);
      this.error = 0;
      this.head = head;
      return used;
    }
    const keepAlive = !close && (minor === 1 || keep) && !(expect && (cl > 0 || chunked));
    if (chunked && !expect) {
      // Read the chunked body here, as part of the request: the caller gets
      // the head once the body is through (and thrown away).
      this.#isHead = isHead;
      this.#body = BODY_SIZE;
      this.#bodyStart = this.#bodyPos = this.#bodyScan = used;
      this.#bodyData = 0;
      this.#trailerBytes = 0;
      this.#bodyHead = head;
      this.#bodyKeep = keepAlive;
      return this.#chunked(buf, start);
    }
    this.keepAlive = keepAlive;
    this.error = 0;
    this.head = head;
    return used;
  }

  /**
   * Reads (and drops) a chunked body from `#bodyPos` (RFC 9112 sec. 7.1.3):
   * the bytes used by head and body once the last chunk and the trailer
   * section are in, 0 for more, -1 on error.
   */
  #chunked(buf: Uint8Array, start: number): number {
    const end = buf.length;
    let i = start + this.#bodyPos;
    const limit = start + this.#bodyStart + MAX_CHUNKED_BODY;
    for (;;) {
      if (i > limit) return this.#fail(413);
      const state = this.#body;
      if (state === BODY_DATA) {
        const n = Math.min(this.#chunkLeft, end - i);
        i += n;
        this.#chunkLeft -= n;
        if (this.#chunkLeft > 0) break;
        this.#body = BODY_DATA_END;
        continue;
      }
      if (state === BODY_DATA_END) {
        if (i === end) break;
        if (buf[i] !== CR) return this.#fail(400);
        if (i + 1 === end) break;
        if (buf[i + 1] !== LF) return this.#fail(400);
        i += 2;
        this.#body = BODY_SIZE;
        this.#bodyScan = i - start;
        continue;
      }
      // A line: chunk-size [chunk-ext], or a trailer field line, or the end.
      let lf = Math.max(i, start + this.#bodyScan);
      while (lf < end && buf[lf] !== LF) lf++;
      const max = state === BODY_SIZE ? MAX_CHUNK_LINE : MAX_HEADER_BLOCK - this.#trailerBytes;
      if (lf - i > max + 1) return this.#fail(state === BODY_SIZE ? 413 : 431);
      if (lf === end) {
        this.#bodyScan = end - start;
        break;
      }
      // Bare LF, or a CR inside the line, is not CRLF (RFC 9112 sec. 2.2).
      if (lf === i || buf[lf - 1] !== CR) return this.#fail(400);
      const cr = lf - 1;
      if (state === BODY_SIZE) {
        let j = i;
        while (j < cr && buf[j] === 48) j++;
        const digits = j;
        let size = 0;
        while (j < cr && isHex(buf[j])) {
          // Long numerals are refused, never converted (RFC 9112 sec. 7.1).
          if (j - digits >= 8) return this.#fail(413);
          const c = buf[j++];
          size = size * 16 + (c <= 57 ? c - 48 : (c | 0x20) - 87);
        }
        if (j === i) return this.#fail(400);
        // Extensions are checked, then ignored (RFC 9112 sec. 7.1.1).
        if (!chunkExtOk(buf, j, cr)) return this.#fail(400);
        i = lf + 1;
        if (size === 0) {
          this.#body = BODY_TRAILER;
        } else {
          this.#bodyData += size;
          if (this.#bodyData > MAX_DISCARD_BODY) return this.#fail(413);
          this.#chunkLeft = size;
          this.#body = BODY_DATA;
        }
        this.#bodyScan = i - start;
        continue;
      }
      // Trailer section: field lines, checked like header lines, then dropped
      // (RFC 9112 sec. 7.1.2: never merged into the header section).
      if (cr === i) {
        const head = this.#bodyHead!;
        const keepAlive = this.#bodyKeep;
        this.reset();
        this.keepAlive = keepAlive;
        this.contentLength = 0;
        this.error = 0;
        this.head = head;
        return lf + 1 - start;
      }
      if (!fieldLineOk(buf, i, cr)) return this.#fail(400);
      this.#trailerBytes += lf + 1 - i;
      i = lf + 1;
      this.#bodyScan = i - start;
    }
    this.#bodyPos = i - start;
    return 0;
  }
}

/** Whether `buf[start, methodEnd)` is `HEAD` (methods are case-sensitive). */
function isHeadMethod(buf: Uint8Array, start: number, methodEnd: number): boolean {
  return methodEnd - start === 4 && buf[start] === 72 && buf[start + 1] === 69 &&
    buf[start + 2] === 65 && buf[start + 3] === 68;
}

/**
 * Parses one complete request head from `bytes` (a convenience for tests and
 * tools; the engine uses {@linkcode RequestParser} incrementally).
 *
 * @param bytes The bytes of a request, starting at its first byte.
 * @returns `{ head, used }`, `{ error }` (a status code), or `null` when the head is incomplete.
 * @example Parse a request
 * ```ts
 * import { parseRequest } from "./parser.ts";
 * const r = parseRequest(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
 * console.assert(r !== null && "head" in r && r.head.minor === 0);
 * ```
 */
export function parseRequest(
  bytes: Uint8Array,
): { head: RequestHead; used: number; keepAlive: boolean; contentLength: number } | {
  error: number;
} | null {
  const p = new RequestParser();
  const n = p.parse(bytes, 0);
  if (n === 0) return null;
  if (n < 0) return { error: p.error };
  return { head: p.head!, used: n, keepAlive: p.keepAlive, contentLength: p.contentLength };
}
