/**
 * The HTTP/1.1 connection engine: bytes in ({@linkcode HttpConnection.feed}),
 * bytes out (a {@linkcode Transport}), requests answered strictly in order by a
 * {@linkcode Handler}. It knows nothing about sockets or threads;
 * {@linkcode serveDenoConn} wires it to a `Deno.Conn`.
 *
 * Contract:
 * - One request is handled at a time; pipelined requests wait in the input.
 *   `feed` returns a promise while a response is in flight; the caller stops
 *   reading until it resolves (backpressure). The engine copies the input
 *   bytes it keeps past that point.
 * - Every reply gets exactly one response and one `release()` call, also when
 *   the peer went away. After any error response the connection is closed.
 * - Deadlines are driven by `tick(now)`: a phase (waiting for a head, idle
 *   between requests, a write in progress) starts at the first tick that sees
 *   it, so a deadline fires within one tick interval after it is due, and the
 *   hot path never reads the clock.
 *
 * Choices: a header timeout with part of a head received is answered 408
 * (nothing received: silent close, since a 408 could cross a request in
 * flight); idle and write timeouts close silently. A handler that throws or
 * rejects, or a reply whose body length disagrees with `length`, whose status
 * is not 100-999, or whose header holds CR/LF, is answered 500 with one
 * `console.error` line and the connection is closed. 204/304 replies and HEAD
 * get no body; 204/304 also no Content-Length. The engine's own error
 * responses follow HEAD too once the method is known (the request line was
 * read whole); before that they carry their short text body. Every response carries
 * `Connection: keep-alive` or `Connection: close`. A reply with `stream`
 * (length unknown) goes out chunked on HTTP/1.1 and close-delimited on
 * HTTP/1.0; a stream that throws closes the connection without the last chunk.
 * A `stream` with a known `length` (an archive) goes out with Content-Length;
 * when it throws, or yields more or fewer bytes than promised, the connection
 * is closed at that point, so the client sees a short body.
 *
 * @module
 */
import type { FileSlice, Handler, Reply, RequestHead } from "./types.ts";
import { RequestParser } from "./parser.ts";

/**
 * Where the engine's output goes.
 *
 * @example Collect the output in memory
 * ```ts
 * import type { Transport } from "./engine.ts";
 *
 * const out: Uint8Array[] = [];
 * const transport: Transport = {
 *   write: (bytes) => void out.push(bytes.slice()),
 *   close() {},
 * };
 * transport.write(new Uint8Array([1]));
 * console.assert(out.length === 1);
 * ```
 */
export interface Transport {
  /**
   * Writes all of `bytes`. The bytes are only valid until the call returns or
   * its promise resolves (the engine reuses its buffer): copy to keep them.
   *
   * @param bytes The bytes to send.
   * @returns Nothing, or a promise that resolves once every byte is written.
   */
  write(bytes: Uint8Array): Promise<void> | void;
  /** Closes the connection; a pending write must then settle (Deno's rejects). Called once. */
  close(): void;
  /**
   * Optional: whether input has arrived that was not read yet (asked only
   * when choosing connections to shed, so one whose request is waiting to
   * be read is not closed as silent).
   */
  hasInput?(): boolean;
  /**
   * Optional: sends `head` (if not null), then bytes `[offset, end)` of the
   * raw file descriptor `fd` straight from the kernel (`sendfile(2)`).
   * Resolves to the file bytes sent: fewer than asked when the file ended
   * early; -1 when the connection is gone; -2 when this file cannot be sent
   * so (the head has still gone out in full). Calls `progress` whenever the
   * peer took more bytes, so a slow but moving reader is not timed out.
   */
  sendFile?(
    head: Uint8Array | null,
    fd: number,
    offset: number,
    end: number,
    progress?: () => void,
  ): Promise<number> | number;
}

/**
 * Deadlines of one connection, in milliseconds.
 *
 * @example Tighter deadlines for a busy server
 * ```ts
 * import type { EngineOptions } from "./engine.ts";
 *
 * const options: EngineOptions = { headerTimeoutMs: 5000, idleTimeoutMs: 5000 };
 * console.assert(options.writeTimeoutMs === undefined); // 30000 applies
 * ```
 */
export interface EngineOptions {
  /**
   * Time to receive a whole request head, from connection open or from the
   * first byte of the head. A partly received head is answered 408.
   * @default {10000}
   */
  headerTimeoutMs?: number;
  /**
   * Time a kept-alive connection may sit idle between requests.
   * @default {15000}
   */
  idleTimeoutMs?: number;
  /**
   * Time one write may stay pending (the peer stopped reading) before the
   * connection is closed.
   * @default {30000}
   */
  writeTimeoutMs?: number;
}

/**
 * Observers of a connection.
 *
 * @example Count responses by status
 * ```ts
 * import type { ConnectionHooks } from "./engine.ts";
 *
 * const counts = new Map<number, number>();
 * const hooks: ConnectionHooks = {
 *   onResponse(_req, status) {
 *     counts.set(status, (counts.get(status) ?? 0) + 1);
 *   },
 * };
 * hooks.onResponse?.(null, 400, 0);
 * console.assert(counts.get(400) === 1);
 * ```
 */
export interface ConnectionHooks {
  /** Called once, when the transport is closed. */
  onClose?(): void;
  /**
   * Called after each response.
   *
   * @param req The request, or null for the engine's own errors (400, 408, ...).
   * @param status The status code sent.
   * @param bytes Response bytes written, head included.
   */
  onResponse?(req: RequestHead | null, status: number, bytes: number): void;
}

const WAIT_NONE = 0;
const WAIT_HEAD = 1;
const WAIT_IDLE = 2;
const WAIT_WRITE = 3;

/** Deadline kinds, as {@linkcode HttpConnection.tick} returns them (0: none fired). */
export const DEADLINE_HEAD = WAIT_HEAD, DEADLINE_IDLE = WAIT_IDLE, DEADLINE_WRITE = WAIT_WRITE;

/** Shed classes ({@linkcode ConnectionSet.shed}): kept-alive idle connections go first. */
export const SHED_IDLE = 1;
/** Connections still sending their request head (or nothing yet). */
export const SHED_HEAD = 2;
/**
 * A new connection is not shed as a slow head sender before it has been open
 * this long (ms): its first request may still be on the way from a busy client.
 */
export const SHED_GRACE_MS = 100;

/**
 * Phase stamps: one counter per thread, bumped when any connection changes
 * phase, so the stamps order phase starts without reading the clock (the
 * smallest stamp has waited longest).
 */
let phaseClock = 0;

/** Head + body up to this size go out in one write. */
const OUT_SIZE = 16384;
/**
 * Read buffer of one `Deno.Conn`. A pending read pins it, idle connections
 * included, so it is small: a browser head fits; larger input just takes more
 * reads (the engine joins partial heads).
 */
const READ_SIZE = 8192;
/** File slices are read and written in chunks of this size. */
const FILE_CHUNK = 65536;

const encoder = new TextEncoder();

// Output and file-chunk buffers are pooled per thread and held by a
// connection only while it is answering, so idle keep-alive connections
// cost no buffers (10,000 idle connections would otherwise pin 800 MB).
const POOL_MAX = 64;
const outPool: Uint8Array[] = [];
const chunkPool: Uint8Array[] = [];
/** `serveDenoConn` read buffers, taken back when the connection's read loop ends. */
const readPool: Uint8Array[] = [];
/**
 * Parsers, pooled per thread and taken back when a connection closes: each
 * holds ~1.8 KB of typed arrays outside the JS heap, which V8 frees only
 * when a GC happens to run, so a new parser per connection piled up ~80 MiB
 * of garbage backing stores per worker under connection churn.
 */
const PARSER_POOL_MAX = 256;
const parserPool: RequestParser[] = [];

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  206: "Partial Content",
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
function currentDateBytes(): Uint8Array {
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
/** `OPTIONS *` is about the server, not a file (RFC 9110 sec. 9.3.7): what it allows, no content. */
const SERVER_OPTIONS: Reply = {
  status: 200,
  headers: [["Allow", "GET, HEAD"]],
  body: [],
  length: 0,
};
const CLOSE_TAIL = encoder.encode("Connection: close\r\n\r\n");
const KEEP_TAIL = encoder.encode("Connection: keep-alive\r\n\r\n");

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

/** Calls `reply.release`, logging (never throwing) what it throws. */
function releaseReply(reply: Reply): void {
  try {
    reply.release?.();
  } catch (err) {
    console.error(`ringhttpd: release threw: ${err}`);
  }
}

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === "function";
}

function isSlice(part: Uint8Array | FileSlice): part is FileSlice {
  return !(part instanceof Uint8Array);
}

function hasCrLf(s: string): boolean {
  return s.indexOf("\r") >= 0 || s.indexOf("\n") >= 0;
}

/**
 * One HTTP/1.1 connection: feed it received bytes, it writes responses.
 *
 * @example Answer one request over an in-memory transport
 * ```ts
 * import { HttpConnection } from "./engine.ts";
 * const out: Uint8Array[] = [];
 * const conn = new HttpConnection(
 *   { write: (b) => void out.push(b.slice()), close() {} },
 *   () => ({ status: 200, headers: [], body: [new TextEncoder().encode("hi")], length: 2 }),
 * );
 * await conn.feed(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
 * console.assert(new TextDecoder().decode(out[0]).startsWith("HTTP/1.1 200 OK\r\n"));
 * ```
 */
export class HttpConnection {
  #t: Transport;
  #handler: Handler;
  #hooks: ConnectionHooks;
  #headerTimeout: number;
  #idleTimeout: number;
  #writeTimeout: number;
  /** Ours from construction until the transport closes; then back in the pool. */
  #parser: RequestParser | null = parserPool.pop() ?? new RequestParser();
  /** Unconsumed input, copied (a partial head, or bytes fed while busy). */
  #pending: Uint8Array | null = null;
  /** The buffer behind the data `feed` built from `#pending` (ours to keep). */
  #owned: ArrayBufferLike | null = null;
  /** Body bytes still to skip before the next head. */
  #discard = 0;
  /** Resolves when the in-flight work is done; null when idle. */
  #busy: Promise<void> | null = null;
  /** No more requests are read (error, close, drain, EOF). */
  #closing = false;
  /** The transport is closed. */
  #dead = false;
  #draining = false;
  #eof = false;
  #wait = WAIT_HEAD;
  #since = NaN;
  /** When the current phase started, in {@linkcode phaseClock} stamps. */
  #phase = ++phaseClock;
  /** `performance.now()` at construction (once per connection, never per request). */
  readonly born: number = performance.now();
  #out: Uint8Array | null = null;
  #chunk: Uint8Array | null = null;

  /**
   * Creates a connection over `transport`; call `feed` with received bytes.
   *
   * @param transport Where responses are written.
   * @param handler Answers each request.
   * @param options Deadlines.
   * @param hooks Close and per-response observers.
   */
  constructor(
    transport: Transport,
    handler: Handler,
    options: EngineOptions = {},
    hooks: ConnectionHooks = {},
  ) {
    this.#t = transport;
    this.#handler = handler;
    this.#hooks = hooks;
    this.#headerTimeout = options.headerTimeoutMs ?? 10000;
    this.#idleTimeout = options.idleTimeoutMs ?? 15000;
    this.#writeTimeout = options.writeTimeoutMs ?? 30000;
  }

  /** `true` once no more requests will be answered (the transport may still be finishing a write). */
  get closed(): boolean {
    return this.#closing;
  }

  /**
   * Pushes received bytes.
   *
   * @param chunk Bytes read from the peer; only used until the returned promise resolves.
   * @returns A promise while a response is in flight (stop reading until it resolves).
   */
  feed(chunk: Uint8Array): Promise<void> | void {
    if (this.#closing || chunk.length === 0) return this.#busy ?? undefined;
    if (this.#busy !== null) {
      // The caller ignored backpressure: keep a copy, handle it afterwards.
      this.#pending = append(this.#pending, chunk);
      return this.#busy;
    }
    let data = chunk;
    if (this.#pending !== null) {
      // Appending in place to a buffer that grows by doubling keeps a head
      // sent one byte per read at O(length) copying, not O(length^2).
      data = append(this.#pending, chunk);
      this.#owned = data.buffer;
      this.#pending = null;
    }
    if (this.#wait === WAIT_IDLE) this.#setWait(WAIT_HEAD);
    return this.#pump(data, 0);
  }

  /** The peer closed its side (or the read failed): finish the response in flight, then close. */
  end(): void {
    this.#eof = true;
    if (this.#busy === null) this.#destroy();
  }

  /**
   * Graceful shutdown: closes now when no response is in flight, else after it
   * (that response says `Connection: close` if its head is not written yet).
   */
  drain(): void {
    this.#draining = true;
    if (this.#busy === null) this.#destroy();
  }

  /**
   * Checks deadlines.
   *
   * @param nowMs The current time (any monotonic milliseconds).
   * @returns The deadline that closed the connection ({@linkcode DEADLINE_HEAD},
   *   {@linkcode DEADLINE_IDLE} or {@linkcode DEADLINE_WRITE}), or 0.
   */
  tick(nowMs: number): number {
    if (this.#dead || this.#wait === WAIT_NONE) return 0;
    if (this.#since !== this.#since) {
      this.#since = nowMs;
      return 0;
    }
    const wait = this.#wait;
    const limit = wait === WAIT_HEAD
      ? this.#headerTimeout
      : wait === WAIT_IDLE
      ? this.#idleTimeout
      : this.#writeTimeout;
    if (nowMs - this.#since < limit) return 0;
    if (wait === WAIT_HEAD && !this.#closing && (this.#pending !== null || this.#discard > 0)) {
      // Part of a request arrived: say why we give up. With nothing received
      // a 408 could be mistaken for the answer to a request still in flight.
      this.#fail(408);
    } else {
      this.#destroy();
    }
    return wait;
  }

  /**
   * What shedding this connection would cost: {@linkcode SHED_IDLE} (kept
   * alive between requests), {@linkcode SHED_HEAD} (a request head, or
   * nothing, still coming), or 0 (a response in flight: never shed).
   */
  get shedClass(): number {
    if (this.#closing || this.#busy !== null) return 0;
    return this.#wait === WAIT_IDLE ? SHED_IDLE : this.#wait === WAIT_HEAD ? SHED_HEAD : 0;
  }

  /** Part of a request head has arrived (and waits for the rest). */
  get partial(): boolean {
    return this.#pending !== null;
  }

  /** The transport has unread input (see {@linkcode Transport.hasInput}). */
  get inputWaiting(): boolean {
    return this.#t.hasInput?.() ?? false;
  }

  /** When the current phase started (a per-thread stamp: smaller is older). */
  get phase(): number {
    return this.#phase;
  }

  /** Closes the connection now, silently, to make room for a new one (see `shedClass`). */
  shed(): void {
    this.#destroy();
  }

  /** Gives the pooled buffers back; only called when no write is pending. */
  #returnBuffers(): void {
    if (this.#out !== null) {
      if (outPool.length < POOL_MAX) outPool.push(this.#out);
      this.#out = null;
    }
    if (this.#chunk !== null) {
      if (chunkPool.length < POOL_MAX) chunkPool.push(this.#chunk);
      this.#chunk = null;
    }
  }

  #setWait(kind: number): void {
    this.#wait = kind;
    this.#since = NaN;
    this.#phase = ++phaseClock;
  }

  /** Consumes `data[pos..]`: skips body bytes, parses heads, answers them in order. */
  #pump(data: Uint8Array, pos: number): Promise<void> | void {
    const end = data.length;
    while (!this.#closing) {
      if (this.#discard > 0) {
        const n = Math.min(this.#discard, end - pos);
        pos += n;
        this.#discard -= n;
        if (this.#discard > 0) {
          if (this.#wait !== WAIT_HEAD) this.#setWait(WAIT_HEAD);
          return;
        }
      }
      if (pos === end) {
        if (this.#owned !== null) {
          // A buffer we built for a split or queued head: let it go while idle.
          this.#owned = null;
          this.#parser!.forgetBuffer();
        }
        if (this.#eof || this.#draining) this.#destroy();
        else this.#setWait(WAIT_IDLE);
        this.#returnBuffers();
        return;
      }
      const parser = this.#parser!;
      const used = parser.parse(data, pos);
      if (used === 0) {
        this.#returnBuffers();
        this.#pending = pos === 0 && data.buffer === this.#owned
          ? data
          : append(null, data.subarray(pos));
        this.#owned = null;
        if (this.#wait !== WAIT_HEAD) this.#setWait(WAIT_HEAD);
        if (this.#eof) this.#destroy();
        return;
      }
      if (used < 0) return this.#fail(parser.error);
      pos += used;
      this.#discard = parser.contentLength;
      const req = parser.head!;
      this.#setWait(WAIT_NONE);
      const done = this.#respond(req, parser.keepAlive);
      if (done !== undefined) {
        const busy = done.then(() => {
          this.#busy = null;
          return this.#resume(data, pos);
        });
        this.#busy = busy;
        return busy;
      }
    }
  }

  #resume(data: Uint8Array, pos: number): Promise<void> | void {
    if (this.#closing) return;
    if (this.#pending !== null) {
      data = concat(data.subarray(pos), this.#pending);
      this.#owned = data.buffer;
      pos = 0;
      this.#pending = null;
    }
    return this.#pump(data, pos);
  }

  /** Calls the handler and writes its reply. Returns a promise only when something is pending. */
  #respond(req: RequestHead, keepAlive: boolean): Promise<void> | undefined {
    let reply: Reply | Promise<Reply>;
    try {
      // The parser gives path "*" only to `OPTIONS *`.
      reply = req.path === "*" ? SERVER_OPTIONS : this.#handler(req);
    } catch (err) {
      console.error(`ringhttpd: handler threw for ${req.method} ${req.target}: ${err}`);
      return this.#fail(500, req);
    }
    if (isThenable(reply)) {
      return reply.then(
        (r) =>
          r.stream === undefined
            ? this.#write(req, r, keepAlive)
            : this.#writeStream(req, r, keepAlive),
        (err) => {
          console.error(`ringhttpd: handler rejected for ${req.method} ${req.target}: ${err}`);
          return this.#fail(500, req);
        },
      );
    }
    if (reply.stream !== undefined) return this.#writeStream(req, reply, keepAlive);
    return this.#write(req, reply, keepAlive);
  }

  /** Serialises the head (+ body if it fits) into the out buffer; returns its length or -1. */
  #head(reply: Reply, keep: boolean, sendLength: boolean): Uint8Array | null {
    let s = "";
    if (reply.rawHead === undefined) {
      const status = reply.status;
      s = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
      const hs = reply.headers;
      for (let i = 0; i < hs.length; i++) {
        const [k, v] = hs[i];
        // Response splitting guard: a CR/LF in a header would forge headers.
        if (hasCrLf(k) || hasCrLf(v)) return null;
        s += `${k}: ${v}\r\n`;
      }
      if (sendLength) s += `Content-Length: ${reply.length}\r\n`;
    }
    const date = currentDateBytes();
    const tail = keep ? KEEP_TAIL : CLOSE_TAIL;
    const raw = reply.rawHead;
    const rawLen = raw === undefined ? 0 : raw.length;
    let out = this.#out ??= outPool.pop() ?? new Uint8Array(OUT_SIZE);
    const max = rawLen + s.length * 3 + date.length + tail.length;
    if (max > out.length) out = new Uint8Array(max + OUT_SIZE);
    let n = 0;
    if (raw !== undefined) {
      out.set(raw, 0);
      n = rawLen;
    } else {
      n = encoder.encodeInto(s, out).written;
    }
    out.set(date, n);
    n += date.length;
    out.set(tail, n);
    n += tail.length;
    return out.subarray(0, n);
  }

  #write(req: RequestHead, reply: Reply, keepAlive: boolean): Promise<void> | undefined {
    if (this.#dead) {
      releaseReply(reply);
      return;
    }
    const status = reply.status;
    const bodiless = status === 204 || status === 304 || status < 200;
    const noBody = bodiless || req.method === "HEAD";
    const parts = reply.body;
    let total = 0;
    let simple = true;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (isSlice(p)) {
        total += p.end - p.start;
        simple = false;
      } else total += p.length;
    }
    const keep = keepAlive && !this.#draining && !this.#eof;
    const head = (noBody || total === reply.length) && reply.length >= 0 &&
        Number.isInteger(status) && status >= 100 && status <= 999
      ? this.#head(reply, keep, !bodiless)
      : null;
    if (head === null) {
      releaseReply(reply);
      console.error(
        `ringhttpd: bad reply for ${req.method} ${req.target}: status ${status}, length ${reply.length}, body ${total}`,
      );
      return this.#fail(500, req);
    }
    if (noBody || (simple && head.length + total <= head.buffer.byteLength)) {
      // Fast path: one write of head + small in-memory body. The reply is
      // released exactly once, by #finish, whichever way the write ends, so
      // no once-only closure is needed here.
      let n = head.length;
      let bytes = head;
      if (!noBody) {
        bytes = new Uint8Array(head.buffer, head.byteOffset, head.length + total);
        for (let i = 0; i < parts.length; i++) {
          const p = parts[i] as Uint8Array;
          bytes.set(p, n);
          n += p.length;
        }
      }
      const w = this.#send(bytes);
      if (w !== undefined) return w.then(() => this.#finish(req, status, n, keep, reply));
      return this.#finish(req, status, n, keep, reply);
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      releaseReply(reply);
    };
    return this.#writeSlow(req, reply, head, keep, release);
  }

  async #writeSlow(
    req: RequestHead,
    reply: Reply,
    head: Uint8Array,
    keep: boolean,
    release: () => void,
  ): Promise<void> {
    let bytes = 0;
    try {
      if (await this.#writeSmall(reply, head)) {
        if (!this.#dead) {
          return this.#finish(req, reply.status, head.length + reply.length, keep, release);
        }
        release();
        return;
      }
      if (this.#dead) {
        // Truncated file (nothing was sent) or a failed write.
        release();
        this.#hooks.onResponse?.(req, reply.status, 0);
        return;
      }
      // With sendfile(2), the head goes out with the first file bytes (one
      // segment instead of two); otherwise first, by itself.
      const first = reply.body[0];
      let headLeft: Uint8Array | null = head;
      if (!(this.#t.sendFile && isSlice(first) && first.rawFd)) {
        await this.#send(head);
        bytes += head.length;
        headLeft = null;
      }
      for (const part of reply.body) {
        if (this.#dead) break;
        if (isSlice(part) && part.rawFd && this.#t.sendFile) {
          const fd = part.rawFd();
          const r = fd < 0 ? -2 : await this.#sendFile(headLeft, fd, part.start, part.end);
          if (r === -1) this.#destroy();
          if (this.#dead) break;
          if (headLeft !== null && fd >= 0) {
            bytes += headLeft.length;
            headLeft = null;
          }
          if (r >= 0) {
            bytes += r;
            if (r < part.end - part.start) {
              // Truncated under us: never pad, end the connection early.
              release();
              this.#hooks.onResponse?.(req, reply.status, bytes);
              this.#destroy();
              return;
            }
            continue;
          }
          // -2: this file cannot be sendfile'd; stream it below.
        }
        if (headLeft !== null) {
          await this.#send(headLeft);
          bytes += headLeft.length;
          headLeft = null;
          if (this.#dead) break;
        }
        if (!isSlice(part)) {
          await this.#send(part);
          bytes += part.length;
          continue;
        }
        let pos = part.start;
        if (pos < part.end) await part.file.seek(pos, Deno.SeekMode.Start);
        const chunk = this.#chunk ??= chunkPool.pop() ?? new Uint8Array(FILE_CHUNK);
        while (pos < part.end && !this.#dead) {
          const n = await part.file.read(chunk.subarray(0, Math.min(FILE_CHUNK, part.end - pos)));
          if (n === null || n === 0) {
            // The file shrank under us: the promised length cannot be kept,
            // and padding would serve bytes that are not the file.
            release();
            this.#hooks.onResponse?.(req, reply.status, bytes);
            this.#destroy();
            return;
          }
          pos += n;
          await this.#send(chunk.subarray(0, n));
          bytes += n;
        }
      }
    } catch (err) {
      if (!this.#dead) console.error(`ringhttpd: writing ${req.target} failed: ${err}`);
      release();
      this.#destroy();
      return;
    }
    if (this.#dead) {
      release();
      return;
    }
    this.#finish(req, reply.status, bytes, keep, release);
  }

  /**
   * Head + a body that fits the out buffer, files included, as one write.
   * Returns false (having sent nothing) when it does not fit; closes the
   * connection when a file is shorter than its slice.
   */
  async #writeSmall(reply: Reply, head: Uint8Array): Promise<boolean> {
    if (head.length + reply.length > head.buffer.byteLength) return false;
    const buf = new Uint8Array(head.buffer, head.byteOffset, head.length + reply.length);
    let n = head.length;
    for (const part of reply.body) {
      if (!isSlice(part)) {
        buf.set(part, n);
        n += part.length;
        continue;
      }
      let pos = part.start;
      if (pos < part.end) await part.file.seek(pos, Deno.SeekMode.Start);
      while (pos < part.end) {
        const r = await part.file.read(buf.subarray(n, n + part.end - pos));
        if (r === null || r === 0) {
          this.#destroy();
          return false;
        }
        pos += r;
        n += r;
      }
    }
    await this.#send(buf);
    return true;
  }

  #finish(
    req: RequestHead,
    status: number,
    bytes: number,
    keep: boolean,
    release: (() => void) | Reply,
  ): undefined {
    if (typeof release === "function") release();
    else releaseReply(release);
    // The response is out and nothing reads into the buffers now. Here, not
    // only when the input runs dry: a `Connection: close` response never
    // gets there, and a 16 KiB buffer per connection is garbage outside the
    // JS heap that only a GC frees.
    this.#returnBuffers();
    this.#hooks.onResponse?.(req, status, bytes);
    if (!keep || this.#draining || this.#eof) this.#destroy();
    return undefined;
  }

  /** Writes `bytes`; on failure closes. The write deadline runs while it is pending. */
  #send(bytes: Uint8Array): Promise<void> | undefined {
    if (this.#dead) return;
    let r: Promise<void> | void;
    try {
      r = this.#t.write(bytes);
    } catch {
      this.#destroy();
      return;
    }
    if (r === undefined || !isThenable(r)) return;
    const prev = this.#wait;
    this.#setWait(WAIT_WRITE);
    return r.then(
      () => {
        if (this.#wait === WAIT_WRITE) this.#setWait(prev);
      },
      () => this.#destroy(),
    );
  }

  /** {@linkcode Transport.sendFile} with the write deadline; -1 when the connection is gone. */
  #sendFile(
    head: Uint8Array | null,
    fd: number,
    start: number,
    end: number,
  ): Promise<number> | number {
    if (this.#dead) return -1;
    let r: Promise<number> | number;
    try {
      r = this.#t.sendFile!(head, fd, start, end, this.#progress);
    } catch {
      this.#destroy();
      return -1;
    }
    if (typeof r === "number") return r;
    const prev = this.#wait;
    this.#setWait(WAIT_WRITE);
    return r.then(
      (n) => {
        if (this.#wait === WAIT_WRITE) this.#setWait(prev);
        return n;
      },
      () => {
        this.#destroy();
        return -1;
      },
    );
  }

  /** The peer took more of a long send: its write deadline starts over. */
  readonly #progress = (): void => {
    if (this.#wait === WAIT_WRITE) this.#since = NaN;
  };

  /**
   * Sends the engine's own error response and closes. A HEAD gets no body
   * whenever its method is known: from `req`, or from a request line the
   * parser has read whole (not from a head cut short before that).
   */
  #fail(status: number, req: RequestHead | null = null): Promise<void> | undefined {
    const head = req !== null ? req.method === "HEAD" : this.#parser?.isHead === true;
    this.#closing = true;
    this.#pending = null;
    const bytes = errorResponse(status, head);
    const w = this.#send(bytes);
    const done = () => {
      this.#hooks.onResponse?.(req, status, bytes.length);
      this.#destroy();
    };
    if (w !== undefined) return w.then(done);
    done();
    return undefined;
  }

  /**
   * A reply of unknown length (`stream`). HTTP/1.1 frames it with
   * `Transfer-Encoding: chunked` and keeps the connection; HTTP/1.0 has no
   * chunked coding, so the body ends when we close. Each chunk is pulled only
   * after the previous one is written (backpressure). HEAD, 204 and 304 get
   * the head only and the stream is never started.
   */
  async #writeStream(req: RequestHead, reply: Reply, keepAlive: boolean): Promise<void> {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      releaseReply(reply);
    };
    if (this.#dead) return release();
    const status = reply.status;
    const bodiless = status === 204 || status === 304 || status < 200;
    const noBody = bodiless || req.method === "HEAD";
    // A known length (>= 0): Content-Length framing, no chunks (zip/tar downloads).
    const known = reply.length >= 0;
    const chunked = req.minor === 1 && !bodiless && !known;
    const keep = keepAlive && !this.#draining && !this.#eof && (chunked || noBody || known);
    const valid = (reply.length === -1 || known) && reply.rawHead === undefined &&
      Number.isInteger(status) && status >= 100 && status <= 999 &&
      reply.body.every((p) => p instanceof Uint8Array);
    const head = !valid ? null : this.#head(
      chunked ? { ...reply, headers: [...reply.headers, ["Transfer-Encoding", "chunked"]] } : reply,
      keep,
      known && !bodiless,
    );
    if (head === null) {
      release();
      console.error(
        `ringhttpd: bad streaming reply for ${req.method} ${req.target}: status ${status}, length ${reply.length}`,
      );
      return this.#fail(500, req);
    }
    let bytes = head.length;
    try {
      await this.#send(head);
      if (!noBody) {
        let frame: Uint8Array | null = null;
        const sendChunk = async (chunk: Uint8Array) => {
          // A zero-size chunk would end a chunked body.
          if (chunk.length === 0 || this.#dead) return;
          if (chunked) {
            const need = chunk.length + 12;
            if (frame === null || frame.length < need) {
              frame = need <= OUT_SIZE
                ? (this.#out ??= outPool.pop() ?? new Uint8Array(OUT_SIZE))
                : new Uint8Array(need);
            }
            chunk = frameChunk(frame, chunk);
          }
          bytes += chunk.length;
          await this.#send(chunk);
        };
        for (const part of reply.body) await sendChunk(part as Uint8Array);
        for await (const chunk of reply.stream!) {
          if (this.#dead) break;
          if (known && bytes - head.length + chunk.length > reply.length) {
            throw new Error(`stream passed its length ${reply.length}`);
          }
          await sendChunk(chunk);
        }
        if (known && !this.#dead && bytes - head.length !== reply.length) {
          throw new Error(`stream ended at ${bytes - head.length} of ${reply.length} bytes`);
        }
        if (chunked && !this.#dead) {
          bytes += LAST_CHUNK.length;
          await this.#send(LAST_CHUNK);
        }
      }
    } catch (err) {
      // The body cannot be completed: closing without the last chunk is how
      // HTTP/1.1 says so (HTTP/1.0 cannot tell it from the end).
      if (!this.#dead) console.error(`ringhttpd: streaming ${req.target} failed: ${err}`);
      release();
      this.#hooks.onResponse?.(req, status, bytes);
      this.#destroy();
      return;
    }
    if (this.#dead) {
      release();
      this.#hooks.onResponse?.(req, status, bytes);
      return;
    }
    this.#finish(req, status, bytes, keep, release);
  }

  #destroy(): void {
    this.#closing = true;
    this.#pending = null;
    if (this.#dead) return;
    this.#dead = true;
    this.#wait = WAIT_NONE;
    // #pump stops at #closing, so nothing parses after this.
    const parser = this.#parser;
    this.#parser = null;
    if (parser !== null && parserPool.length < PARSER_POOL_MAX) {
      parser.reset();
      parser.forgetBuffer();
      parser.head = null;
      parserPool.push(parser);
    }
    try {
      this.#t.close();
    } catch {
      // Already closed by the peer: nothing left to do.
    }
    this.#hooks.onClose?.();
  }
}

/**
 * Appends `chunk` after `pending`, a view at offset 0 of a buffer we own,
 * growing the buffer geometrically; returns the new view.
 */
function append(pending: Uint8Array | null, chunk: Uint8Array): Uint8Array {
  if (pending === null) {
    const b = new Uint8Array(Math.max(1024, chunk.length));
    b.set(chunk);
    return b.subarray(0, chunk.length);
  }
  const len = pending.length;
  const need = len + chunk.length;
  let buf = pending.buffer;
  if (pending.byteOffset !== 0 || need > buf.byteLength) {
    const grown = new Uint8Array(Math.max(need, 2 * buf.byteLength));
    grown.set(pending);
    buf = grown.buffer;
  }
  const view = new Uint8Array(buf, 0, need);
  view.set(chunk, len);
  return view;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

const LAST_CHUNK = encoder.encode("0\r\n\r\n");

/** Writes `hex(size) CRLF chunk CRLF` at the start of `buf` (long enough); returns that view. */
function frameChunk(buf: Uint8Array, chunk: Uint8Array): Uint8Array {
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

/**
 * The connections of one thread, with one ticker for all their deadlines.
 *
 * @example Track connections and shut down gracefully
 * ```ts
 * import { ConnectionSet } from "./engine.ts";
 * const set = new ConnectionSet();
 * await set.drain(); // resolves at once when empty
 * ```
 */
export class ConnectionSet {
  #conns = new Set<HttpConnection>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #tickMs: number;
  #ownTimer: boolean;
  #draining = false;
  #drained: (() => void) | null = null;
  #drainPromise: Promise<void> | null = null;
  #onDeadline: ((kind: number) => void) | undefined;

  /**
   * Creates an empty set; its ticker runs only while it holds connections.
   *
   * @param tickMs How often deadlines are checked; a deadline fires up to this late.
   * @default {1000}
   * @param options.timer `false` when the caller runs its own loop and calls
   *   {@linkcode ConnectionSet.tick} at least every `tickMs`: no interval
   *   timer is then started each time the set goes from empty to non-empty
   *   (under connection churn at low concurrency that is most connections).
   * @default {true}
   * @param options.onDeadline told the kind ({@linkcode DEADLINE_HEAD}, ...)
   *   of each deadline that closed a connection (metrics)
   */
  constructor(
    tickMs = 1000,
    options: { timer?: boolean; onDeadline?: (kind: number) => void } = {},
  ) {
    this.#tickMs = tickMs;
    this.#ownTimer = options.timer ?? true;
    this.#onDeadline = options.onDeadline;
  }

  /** Number of open connections. */
  get size(): number {
    return this.#conns.size;
  }

  /**
   * Starts tracking `conn` (drains it at once if the set is draining).
   *
   * @param conn The connection; ignored if it is already closed.
   */
  add(conn: HttpConnection): void {
    if (conn.closed) return;
    this.#conns.add(conn);
    if (this.#draining) conn.drain();
    if (this.#ownTimer && this.#timer === undefined && this.#conns.size > 0) {
      const timer = setInterval(() => this.tick(Date.now()), this.#tickMs);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /**
   * Stops tracking `conn`.
   *
   * @param conn The connection, usually from its `onClose` hook.
   */
  remove(conn: HttpConnection): void {
    this.#conns.delete(conn);
    if (this.#conns.size === 0) {
      if (this.#timer !== undefined) clearInterval(this.#timer);
      this.#timer = undefined;
      this.#drained?.();
    }
  }

  /**
   * Checks every connection's deadlines (the ticker calls this; tests may too).
   *
   * @param nowMs The current time in milliseconds.
   */
  tick(nowMs: number): void {
    const observe = this.#onDeadline;
    for (const c of this.#conns) {
      const kind = c.tick(nowMs);
      if (kind !== 0 && observe !== undefined) observe(kind);
    }
  }

  /**
   * Closes up to `n` connections to make room for new ones, those that cost
   * the most and give the least first (as nginx reuses connections when it
   * runs out): kept-alive idle ones, longest idle first; then, if `classes`
   * allows, those still sending their request head, slowest (longest
   * waiting) first; one that has sent nothing yet only once open for
   * {@linkcode SHED_GRACE_MS} (its request may still be on the way) and
   * with no input waiting to be read. A
   * connection with a response in flight is never shed. A scan of the set:
   * only called at the connection cap, never per request.
   *
   * @param n How many to close at most.
   * @param classes {@linkcode SHED_IDLE} only, or {@linkcode SHED_HEAD} to take head senders too.
   * @returns How many were closed.
   */
  shed(n: number, classes: number = SHED_HEAD): number {
    if (n <= 0) return 0;
    const idle: HttpConnection[] = [];
    const head: HttpConnection[] = [];
    const born = performance.now() - SHED_GRACE_MS;
    for (const c of this.#conns) {
      const k = c.shedClass;
      if (k === SHED_IDLE) idle.push(c);
      else if (
        k === SHED_HEAD && classes >= SHED_HEAD &&
        (c.partial || (c.born <= born && !c.inputWaiting))
      ) {
        head.push(c);
      }
    }
    const byAge = (a: HttpConnection, b: HttpConnection) => a.phase - b.phase;
    let done = 0;
    for (const list of [idle, head]) {
      if (done >= n || list.length === 0) continue;
      if (list.length > n - done) list.sort(byAge);
      for (let i = 0; i < list.length && done < n; i++, done++) list[i].shed();
    }
    return done;
  }

  /**
   * Graceful shutdown: idle connections close now, busy ones after their response.
   *
   * @returns A promise that resolves when every connection has been removed.
   */
  drain(): Promise<void> {
    this.#draining = true;
    this.#drainPromise ??= new Promise<void>((resolve) => {
      this.#drained = resolve;
    });
    for (const c of [...this.#conns]) c.drain();
    if (this.#conns.size === 0) this.#drained!();
    return this.#drainPromise;
  }
}

/**
 * Serves one accepted `Deno.Conn` until it closes: a read loop with one reused
 * buffer that waits for the engine (backpressure), and a write-all loop.
 *
 * @param conn The accepted connection; closed when done.
 * @param handler Answers each request.
 * @param set The thread's connection set (for deadlines and drain).
 * @param options Deadlines.
 * @param onResponse Per-response observer (access log, counters).
 * @returns A promise that resolves when the connection is closed.
 * @example Serve connections from a listener
 * ```ts
 * import { ConnectionSet, serveDenoConn } from "./engine.ts";
 * import assert from "node:assert/strict";
 *
 * const set = new ConnectionSet();
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served: Promise<void>[] = [];
 * const accepting = (async () => {
 *   for await (const conn of listener) {
 *     served.push(
 *       serveDenoConn(conn, () => ({ status: 204, headers: [], body: [], length: 0 }), set),
 *     );
 *   }
 * })();
 * const res = await fetch(`http://127.0.0.1:${listener.addr.port}/`);
 * assert.equal(res.status, 204);
 * await res.body?.cancel();
 * listener.close();
 * await accepting;
 * await set.drain();
 * await Promise.all(served);
 * ```
 */
export async function serveDenoConn(
  conn: Deno.Conn,
  handler: Handler,
  set: ConnectionSet,
  options?: EngineOptions,
  onResponse?: ConnectionHooks["onResponse"],
): Promise<void> {
  let closed = false;
  let onClosed!: () => void;
  const closedPromise = new Promise<void>((resolve) => onClosed = resolve);
  const transport: Transport = {
    async write(bytes) {
      let off = 0;
      while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // The peer reset it first.
      }
    },
  };
  const c: HttpConnection = new HttpConnection(transport, handler, options, {
    onClose() {
      set.remove(c);
      onClosed();
    },
    onResponse,
  });
  try {
    (conn as Deno.TcpConn).setNoDelay?.(true);
  } catch {
    // Not TCP, or already gone.
  }
  set.add(c);
  const buf = readPool.pop() ?? new Uint8Array(READ_SIZE);
  try {
    while (!c.closed) {
      const n = await conn.read(buf);
      if (n === null) break;
      const wait = c.feed(buf.subarray(0, n));
      if (wait !== undefined) await wait;
    }
  } catch {
    // Reset by the peer, or closed by the engine while reading.
  }
  // No read is pending once the loop is left, and the engine copied what it keeps.
  if (readPool.length < POOL_MAX) readPool.push(buf);
  c.end();
  await closedPromise;
}
