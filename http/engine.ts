/**
 * The HTTP/1.1 connection engine: bytes in ({@linkcode HttpConnection.feed}),
 * bytes out (a {@linkcode Transport}), requests answered strictly in order by a
 * {@linkcode Handler}. It knows nothing about sockets or threads;
 * {@linkcode serveDenoConn} wires it to a `Deno.Conn`.
 *
 * Where things are: this file is the read side (input buffering, request
 * heads, skipping request bodies: {@linkcode HttpConnection}'s `#pump`) and
 * the connection's life (deadlines, drain, shed, close). The one body writer
 * is `_response_writer.ts`; response bytes (reason phrases, Date, error
 * answers, chunk framing, buffer pools) are `_wire.ts`; the per-thread set
 * is `connection_set.ts`; the `Deno.Conn` loop is `serve_conn.ts`.
 *
 * Contract:
 * - One request is handled at a time; pipelined requests wait in the input.
 *   `feed` returns a promise while a response is in flight; the caller stops
 *   reading until it resolves (backpressure). The engine copies the input
 *   bytes it keeps past that point.
 * - Every reply gets exactly one response, one `release()` call and one
 *   `onResponse` call (once its head was built), also when the peer went away. After any error response the connection is closed.
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
import { getHeader, type Handler, type Peer, type Reply, type RequestHead } from "./types.ts";
import { type BodyAcceptance, BodyError, BodyFeed } from "../write/body.ts";
import { RequestParser } from "./parser.ts";
import { rateOf, ResponseWriter } from "./_response_writer.ts";
import { isThenable } from "./_wire.ts";
import type { ConnectionHooks, EngineOptions, Transport } from "./_engine_types.ts";
import { SHED_HEAD, SHED_IDLE } from "./connection_set.ts";

export type { ConnectionHooks, EngineOptions, Transport } from "./_engine_types.ts";
export { ConnectionSet, SHED_GRACE_MS, SHED_HEAD, SHED_IDLE } from "./connection_set.ts";
export { serveDenoConn } from "./serve_conn.ts";
export { errorResponse, reasonPhrase } from "./_wire.ts";

const WAIT_NONE = 0;
const WAIT_HEAD = 1;
const WAIT_IDLE = 2;
const WAIT_WRITE = 3;

/** Deadline kinds, as {@linkcode HttpConnection.tick} returns them (0: none fired). */
export const DEADLINE_HEAD = WAIT_HEAD, DEADLINE_IDLE = WAIT_IDLE, DEADLINE_WRITE = WAIT_WRITE;

/**
 * Phase stamps: one counter per thread, bumped when any connection changes
 * phase, so the stamps order phase starts without reading the clock (the
 * smallest stamp has waited longest).
 */
let phaseClock = 0;

/**
 * Parsers, pooled per thread and taken back when a connection closes: each
 * holds ~1.8 KB of typed arrays outside the JS heap, which V8 frees only
 * when a GC happens to run, so a new parser per connection piled up ~80 MiB
 * of garbage backing stores per worker under connection churn.
 */
const PARSER_POOL_MAX = 256;
const parserPool: RequestParser[] = [];

/** `OPTIONS *` is about the server, not a file (RFC 9110 sec. 9.3.7): what it allows, no content. */
const SERVER_OPTIONS: Reply = {
  status: 200,
  headers: [["Allow", "GET, HEAD"]],
  body: [],
  length: 0,
};

/** The interim answer to `Expect: 100-continue` (RFC 9110 sec. 10.1.1). */
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");
const SETTLED: Promise<void> = Promise.resolve();

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
  /** The transport's peer, put on every request (undefined: none known). */
  readonly #peer: Peer | undefined;
  #hooks: ConnectionHooks;
  /** The write side: bodies, the write deadline, the transport's close. */
  #w: ResponseWriter;
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
  #draining = false;
  #eof = false;
  /** WAIT_HEAD, WAIT_IDLE or WAIT_NONE (a response in flight; its writes have their own deadline). */
  #wait = WAIT_HEAD;
  #since = NaN;
  /** When the current phase started, in {@linkcode phaseClock} stamps. */
  #phase = ++phaseClock;
  /** `performance.now()` at construction (once per connection, never per request). */
  readonly born: number = performance.now();
  /** Which request bodies the handler streams (write/body.ts); null: none. */
  readonly #bodies: BodyAcceptance | null;
  /** The request body being received while its request is handled; null: none. */
  #body: BodyFeed | null = null;
  /** When the body last made progress (NaN: set at the next tick); a paused body does not age. */
  #bodySince = NaN;
  #bodyPaused = false;

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
    this.#peer = transport.peer;
    this.#hooks = hooks;
    this.#w = new ResponseWriter(
      transport,
      hooks.onResponse,
      () => this.#destroy(),
      options.limitRate ? rateOf(options.limitRate, options.limitRateAfter ?? 0) : undefined,
    );
    this.#headerTimeout = options.headerTimeoutMs ?? 10000;
    this.#idleTimeout = options.idleTimeoutMs ?? 15000;
    this.#writeTimeout = options.writeTimeoutMs ?? 30000;
    this.#bodies = options.bodies ?? null;
    this.#parser!.streams = this.#bodies?.methods ?? null;
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
    const body = this.#body;
    if (body !== null && !body.done && !body.failed && !body.abandoned) {
      return this.#feedBody(body, chunk);
    }
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
    this.#body?.fail(400, "client went away");
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
    const w = this.#w;
    if (w.dead) return 0;
    const body = this.#body;
    if (body !== null && !body.done && !body.failed && !this.#bodyPaused) {
      // A stalled upload is cut by the idle deadline (the write stage then
      // removes its temporary file and answers 408).
      if (this.#bodySince !== this.#bodySince) this.#bodySince = nowMs;
      else if (nowMs - this.#bodySince >= this.#idleTimeout) body.fail(408, "body stalled");
    }
    if (w.writing) {
      if (w.since !== w.since) {
        w.since = nowMs;
        return 0;
      }
      if (nowMs - w.since < this.#writeTimeout) return 0;
      this.#destroy();
      return DEADLINE_WRITE;
    }
    const wait = this.#wait;
    if (wait === WAIT_NONE) return 0;
    if (this.#since !== this.#since) {
      this.#since = nowMs;
      return 0;
    }
    if (nowMs - this.#since < (wait === WAIT_HEAD ? this.#headerTimeout : this.#idleTimeout)) {
      return 0;
    }
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

  #setWait(kind: number): void {
    this.#wait = kind;
    this.#since = NaN;
    this.#phase = ++phaseClock;
  }

  /**
   * Consumes `data[pos..]`: skips body bytes, parses heads, answers them in
   * order. The read side: a request body is skipped here (`#discard`, set
   * from the parsed head) before the next head is parsed.
   */
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
        this.#w.returnBuffers();
        return;
      }
      const parser = this.#parser!;
      const used = parser.parse(data, pos);
      if (used === 0) {
        this.#w.returnBuffers();
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
      if (this.#peer !== undefined) req.remote = this.#peer;
      if (parser.streamBody) {
        this.#discard = 0;
        const p = this.#startBody(req, parser.chunked, parser.contentLength, data, pos);
        if (p < 0) return;
        pos = p;
      }
      this.#setWait(WAIT_NONE);
      const done = this.#respond(req, parser.keepAlive);
      if (done === true) {
        this.#body = null;
        if (this.#draining || this.#eof) this.#destroy();
        continue;
      }
      if (done === false) {
        this.#destroy();
        return;
      }
      const busy = done.then((more) => {
        this.#busy = null;
        this.#body = null;
        if (!more || this.#draining || this.#eof) return this.#destroy();
        return this.#resume(data, pos);
      });
      this.#busy = busy;
      // While its body streams in, the request is answered and read at once:
      // keep reading (unless the body's queue is full).
      const body = this.#body;
      if (body !== null && !body.done && !body.failed) return this.#bodyWait(body);
      return busy;
    }
  }

  /**
   * Starts streaming a request body to the handler (`req.body`): what of it
   * is in `data[pos..]` goes in now, the rest as it arrives (#feedBody). A
   * Content-Length over the limit is 413 before a byte is read.
   * Returns where the body's bytes in `data` end, or -1 after an error answer.
   */
  #startBody(
    req: RequestHead,
    chunked: boolean,
    length: number,
    data: Uint8Array,
    pos: number,
  ): number {
    const expect = getHeader(req, "expect")?.toLowerCase() === "100-continue";
    let feed: BodyFeed;
    try {
      feed = new BodyFeed(
        chunked ? { kind: "chunked" } : { kind: "length", length },
        { maxBytes: this.#bodies!.maxBytes },
        // 100 Continue only once the handler reads: a refusal goes out instead.
        expect ? () => void this.#w.send(CONTINUE) : undefined,
      );
    } catch (e) {
      this.#fail(e instanceof BodyError ? e.status : 400, req);
      return -1;
    }
    (req as RequestHead & { body?: unknown }).body = feed.pipe;
    this.#body = feed;
    this.#bodySince = NaN;
    return pos + feed.push(data.subarray(pos));
  }

  /** Body bytes that arrived while their request is being handled. */
  #feedBody(body: BodyFeed, chunk: Uint8Array): Promise<void> | void {
    const used = body.push(chunk);
    this.#bodySince = NaN;
    if (used < chunk.length && !body.failed) {
      // The next request, pipelined: it waits for this one's answer.
      this.#pending = append(this.#pending, chunk.subarray(used));
      return this.#busy ?? undefined;
    }
    return this.#bodyWait(body);
  }

  /** A settled promise (read on), or one that resolves once the body's queue has room. */
  #bodyWait(body: BodyFeed): Promise<void> {
    const wait = body.wait;
    // Settled: the transport reads on at once, but counts the connection
    // busy, so its loop gives the write stage an event-loop turn.
    if (wait === undefined) return SETTLED;
    this.#bodyPaused = true;
    return wait.then(() => {
      this.#bodyPaused = false;
      this.#bodySince = NaN;
    });
  }

  /** Whether the connection can carry another request after this one's body. */
  #bodyClean(): boolean {
    const b = this.#body;
    return b === null || (b.done && !b.failed);
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

  /**
   * Calls the handler and writes its reply.
   *
   * @returns Whether the next request may be read (a promise only when something is pending).
   */
  #respond(req: RequestHead, keepAlive: boolean): Promise<boolean> | boolean {
    let reply: Reply | Promise<Reply>;
    try {
      // The parser gives path "*" only to `OPTIONS *`.
      reply = req.path === "*" ? SERVER_OPTIONS : this.#handler(req);
    } catch (err) {
      console.error(`ringhttpd: handler threw for ${req.method} ${req.target}: ${err}`);
      return this.#failed(500, req);
    }
    if (isThenable(reply)) {
      return reply.then(
        // A body still coming (or cut) cannot be skipped safely: close after the answer.
        (r) =>
          this.#w.write(req, r, keepAlive && !this.#draining && !this.#eof && this.#bodyClean()),
        (err) => {
          console.error(`ringhttpd: handler rejected for ${req.method} ${req.target}: ${err}`);
          return this.#failed(500, req);
        },
      );
    }
    return this.#w.write(
      req,
      reply,
      keepAlive && !this.#draining && !this.#eof && this.#bodyClean(),
    );
  }

  /** {@linkcode HttpConnection.#fail} for `#respond`: false, or a promise of it. */
  #failed(status: number, req: RequestHead): Promise<boolean> | false {
    const w = this.#fail(status, req);
    return w === undefined ? false : w.then(() => false);
  }

  /**
   * Sends the engine's own error response and closes. A HEAD gets no body
   * whenever its method is known: from `req`, or from a request line the
   * parser has read whole (not from a head cut short before that).
   */
  #fail(status: number, req: RequestHead | null = null): Promise<void> | undefined {
    const head = req !== null ? req.method === "HEAD" : this.#parser?.isHead === true;
    this.#closing = true;
    this.#pending = null;
    return this.#w.sendError(status, req, head);
  }

  #destroy(): void {
    this.#closing = true;
    this.#pending = null;
    // An upload in flight is cut: the write stage removes its temporary file.
    this.#body?.fail(400, "connection closed");
    if (this.#w.dead) return;
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
    this.#w.close();
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
