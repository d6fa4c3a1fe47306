/**
 * HTTP/1.1 response bytes, shared by the engine's writer and its own error
 * answers: the reason-phrase table, the once-a-second `Date` line, the
 * pre-serialised error responses, chunk framing, and the per-thread buffer
 * pools. Nothing here knows about a connection.
 *
 * @module
 */
import type { FileSlice, Reply } from "./types.ts";

/** Head + body up to this size go out in one write. */
export const OUT_SIZE = 16384;
/** File slices are read and written in chunks of this size. */
export const FILE_CHUNK = 65536;

export const encoder: TextEncoder = new TextEncoder();

// Output and file-chunk buffers are pooled per thread and held by a
// connection only while it is answering, so idle keep-alive connections
// cost no buffers (10,000 idle connections would otherwise pin 800 MB).
export const POOL_MAX = 64;
export const outPool: Uint8Array[] = [];
export const chunkPool: Uint8Array[] = [];

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  206: "Partial Content",
  207: "Multi-Status",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  507: "Insufficient Storage",
};

/** Reason phrase for `status` ("Unknown" when we have none; clients ignore it). */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "Unknown";
}

let dateSecond = -1;
let dateBytes = new Uint8Array(0);
/**
 * `Date: <IMF-fixdate>\r\n` as bytes, rendered and encoded at most once per
 * second (a cached-file hit otherwise spends a tenth of its time encoding it).
 */
export function currentDateBytes(): Uint8Array {
  const now = Date.now();
  const sec = (now / 1000) | 0;
  if (sec !== dateSecond) {
    dateSecond = sec;
    dateBytes = encoder.encode(`Date: ${new Date(now).toUTCString()}\r\n`);
  }
  return dateBytes;
}

// The engine's own error responses, serialised once; only Date is added.
const errorHeads = new Map<number, Uint8Array>();
const errorBodies = new Map<number, Uint8Array>();
for (const status of [400, 408, 413, 414, 431, 500, 501, 505]) {
  const body = encoder.encode(`${status} ${reasonPhrase(status)}\n`);
  errorBodies.set(status, body);
  errorHeads.set(
    status,
    encoder.encode(
      `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
        `Content-Length: ${body.length}\r\nConnection: close\r\n`,
    ),
  );
}
export const CLOSE_TAIL: Uint8Array = encoder.encode("Connection: close\r\n\r\n");
export const KEEP_TAIL: Uint8Array = encoder.encode("Connection: keep-alive\r\n\r\n");
export const LAST_CHUNK: Uint8Array = encoder.encode("0\r\n\r\n");

/**
 * Pre-serialised bytes of the engine's error response for `status`, with the current Date.
 *
 * @param status The status to answer (400, 408, 413, 414, 431, 500, 501, 505; others get 500).
 * @param head The failed request is known to be a HEAD: the head only, with the
 *   Content-Length the body would have (RFC 9110 sec. 9.3.2).
 * @returns The response bytes.
 */
export function errorResponse(status: number, head = false): Uint8Array {
  const start = errorHeads.get(status) ?? errorHeads.get(500)!;
  const body = errorBodies.get(status) ?? errorBodies.get(500)!;
  const date = currentDateBytes();
  const headEnd = start.length + date.length + 2;
  const out = new Uint8Array(head ? headEnd : headEnd + body.length);
  out.set(start, 0);
  out.set(date, start.length);
  out[headEnd - 2] = 13;
  out[headEnd - 1] = 10;
  if (!head) out.set(body, headEnd);
  return out;
}

/** Writes `hex(size) CRLF chunk CRLF` at the start of `buf` (long enough); returns that view. */
export function frameChunk(buf: Uint8Array, chunk: Uint8Array): Uint8Array {
  const hex = chunk.length.toString(16);
  let n = 0;
  for (let i = 0; i < hex.length; i++) buf[n++] = hex.charCodeAt(i);
  buf[n++] = 13;
  buf[n++] = 10;
  buf.set(chunk, n);
  n += chunk.length;
  buf[n++] = 13;
  buf[n++] = 10;
  return buf.subarray(0, n);
}

/** Calls `reply.release`, logging (never throwing) what it throws. */
export function releaseReply(reply: Reply): void {
  try {
    reply.release?.();
  } catch (err) {
    console.error(`ringhttpd: release threw: ${err}`);
  }
}

/** Whether `v` is a promise (or any thenable). */
export function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === "function";
}

/** Whether a body part is a file slice (not bytes in memory). */
export function isSlice(part: Uint8Array | FileSlice): part is FileSlice {
  return !(part instanceof Uint8Array);
}

/** Whether `s` holds a CR or LF (a header value that would forge headers). */
export function hasCrLf(s: string): boolean {
  return s.indexOf("\r") >= 0 || s.indexOf("\n") >= 0;
}
