/**
 * The contract between the connection engine (`http/engine.ts`, bytes in and
 * out of one connection) and the file handler (`http/handler.ts`, request ->
 * reply). Neither side knows about threads or sockets.
 *
 * @module
 */

/**
 * A parsed request head. Header names are lower-cased; values are trimmed.
 *
 * @example The head of `GET /docs/?sort=size HTTP/1.1`
 * ```ts
 * import type { RequestHead } from "./types.ts";
 *
 * const req: RequestHead = {
 *   method: "GET",
 *   target: "/docs/?sort=size",
 *   path: "/docs/",
 *   query: "sort=size",
 *   minor: 1,
 *   headers: ["host", "example.com"],
 * };
 * console.assert(req.path + "?" + req.query === req.target);
 * ```
 */
export interface RequestHead {
  /** Method token exactly as sent, e.g. `GET`. */
  method: string;
  /** The raw request-target, e.g. `/a%20b/?sort=size`. */
  target: string;
  /** The target up to `?` (still percent-encoded). */
  path: string;
  /** The target after `?`, without it; `""` when absent. */
  query: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  /** Flat list: `[name0, value0, name1, value1, ...]`, names lower-cased. */
  headers: string[];
  /**
   * The client end of the connection, one object per connection; undefined
   * when the transport cannot tell (an in-memory transport). Read
   * `remote?.address` only when a decision needs it: the first read may make
   * a system call (`getpeername`), later ones return the same string.
   */
  remote?: Peer;
  /**
   * Who the request authenticated as (a user or token name), set by the
   * authentication rule; undefined: anonymous. Read by the access log and by
   * rules that grant per user.
   */
  user?: string;
}

/**
 * The client of a connection, as the request pipeline sees it.
 *
 * @example A peer whose address is known
 * ```ts
 * import type { Peer } from "./types.ts";
 *
 * const peer: Peer = { address: "192.0.2.7" };
 * console.assert(peer.address === "192.0.2.7");
 * ```
 */
export interface Peer {
  /**
   * The client's IP address without the port: IPv4 dotted (also for an
   * IPv4-mapped IPv6 peer), IPv6 as RFC 5952 text without brackets or zone;
   * undefined when it has none (a Unix socket) or it cannot be had (the
   * connection is gone). Computed at most once per connection.
   */
  readonly address: string | undefined;
}

/**
 * The {@linkcode Peer} of a `Deno.Conn` (its `remoteAddr`, known already).
 *
 * @param addr the connection's remote address
 * @returns the peer: the IP of a TCP address, undefined for a Unix socket
 * @example
 * ```ts
 * import { peerOfAddr } from "./types.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(peerOfAddr({ transport: "tcp", hostname: "::ffff:192.0.2.1", port: 9 }).address, "192.0.2.1");
 * assert.equal(peerOfAddr({ transport: "unix", path: "/run/s" }).address, undefined);
 * ```
 */
export function peerOfAddr(addr: Deno.Addr): Peer {
  if (!("hostname" in addr)) return NO_PEER;
  let h = addr.hostname;
  const zone = h.indexOf("%");
  if (zone >= 0) h = h.slice(0, zone);
  if (h.length > 7 && h.charCodeAt(0) === 58 /* : */ && /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(h)) {
    h = h.slice(7);
  }
  return { address: h };
}

/** The peer of a connection without an address. */
const NO_PEER: Peer = { address: undefined };

/**
 * A slice `[start, end)` of an open file, streamed by the engine.
 *
 * @example The first kilobyte of a file
 * ```ts
 * import type { FileSlice } from "./types.ts";
 *
 * const file = await Deno.open(new URL(import.meta.url));
 * const slice: FileSlice = { file, start: 0, end: 1024 };
 * console.assert(slice.end - slice.start === 1024);
 * file.close();
 * ```
 */
export interface FileSlice {
  /** The open file; the reply's `release()` closes it. */
  file: Deno.FsFile;
  /** First byte offset to send. */
  start: number;
  /** Exclusive. */
  end: number;
  /**
   * A raw descriptor of the same open file (same device and inode as `file`),
   * opened on first call, or -1 when none can be had. Transports that can
   * `sendfile(2)` ask for it; the reply owns it (`release()` closes it).
   */
  rawFd?: () => number;
}

/**
 * One piece of a reply body, written in order.
 *
 * @example A body of bytes only
 * ```ts
 * import type { BodyPart } from "./types.ts";
 *
 * const body: BodyPart[] = [new TextEncoder().encode("hello")];
 * console.assert(body.length === 1);
 * ```
 */
export type BodyPart = Uint8Array | FileSlice;

/**
 * What the handler answers. The engine adds `Date`, `Connection` and (unless
 * `rawHead` is given) the status line and `Content-Length`, writes the head and
 * body, and calls `release()` exactly once afterwards (also when the client
 * went away or the request was HEAD), so open files are always closed.
 *
 * @example A small text reply
 * ```ts
 * import type { Reply } from "./types.ts";
 *
 * const body = new TextEncoder().encode("hi");
 * const reply: Reply = {
 *   status: 200,
 *   headers: [["content-type", "text/plain; charset=utf-8"]],
 *   body: [body],
 *   length: body.length,
 * };
 * console.assert(reply.length === 2);
 * ```
 */
export interface Reply {
  /** HTTP status code, e.g. 200. */
  status: number;
  /** Headers other than Date / Connection / Content-Length. */
  headers: Array<[string, string]>;
  /** Body parts; their total byte length is `length` (unless -1). HEAD: computed, not sent. */
  body: BodyPart[];
  /**
   * Content-Length, or -1 when the length is not known ahead: then `stream`
   * must be given, and `body` may only hold `Uint8Array`s (sent first).
   * With `stream` and a length >= 0 (an archive whose size is computed ahead),
   * the body goes out with Content-Length and must be exactly that long: a
   * stream that throws, overshoots or ends short gets the connection closed.
   */
  length: number;
  /**
   * The rest of a body of unknown length (`length: -1`), pulled one chunk at a
   * time: the next chunk is asked for only after the previous one was written,
   * so a slow client slows the producer (backpressure), and a chunk may reuse
   * its buffer once the next is asked for. HTTP/1.1 sends it with
   * `Transfer-Encoding: chunked`; HTTP/1.0 ends it by closing the connection.
   * Never started for HEAD, 204 or 304. When the client goes away the engine
   * stops iterating (`return()` runs the producer's `finally`); when the
   * iterator throws, the connection is closed without the last chunk, so an
   * HTTP/1.1 client sees the body as incomplete. Empty chunks are skipped.
   * Not allowed with `rawHead`.
   */
  stream?: AsyncIterable<Uint8Array>;
  /**
   * Optional pre-serialised head: the status line and every header line
   * including `Content-Length`, each ending in CRLF, without the blank line.
   * The engine appends `Date`, `Connection` and the final CRLF. Used by caches
   * so that a hit allocates nothing.
   */
  rawHead?: Uint8Array;
  /** Called once when the engine is done with the reply (closes files). */
  release?: () => void;
}

/**
 * Request -> reply. Must not throw: map errors to a 4xx/5xx reply.
 *
 * @param req The parsed request head.
 * @returns The reply, or a promise of it.
 *
 * @example Answer 404 to everything but `/`
 * ```ts
 * import type { Handler } from "./types.ts";
 *
 * const handler: Handler = (req) =>
 *   req.path === "/"
 *     ? { status: 204, headers: [], body: [], length: 0 }
 *     : { status: 404, headers: [], body: [], length: 0 };
 * const reply = await handler({
 *   method: "GET", target: "/x", path: "/x", query: "", minor: 1, headers: [],
 * });
 * console.assert(reply.status === 404);
 * ```
 */
export type Handler = (req: RequestHead) => Reply | Promise<Reply>;

/**
 * Returns the first value of header `name` (lower-case), or undefined.
 *
 * @param req The request head to look in.
 * @param name The header name, lower-case.
 * @returns The first value of that header, or `undefined` when absent.
 *
 * @example Read the Host header
 * ```ts
 * import { getHeader } from "./types.ts";
 * import assert from "node:assert/strict";
 *
 * const req = {
 *   method: "GET", target: "/", path: "/", query: "", minor: 1 as const,
 *   headers: ["host", "example.com", "accept", "text/html"],
 * };
 * assert.equal(getHeader(req, "host"), "example.com");
 * assert.equal(getHeader(req, "range"), undefined);
 * ```
 */
export function getHeader(req: RequestHead, name: string): string | undefined {
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === name) return h[i + 1];
  }
  return undefined;
}
