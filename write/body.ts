/**
 * Request bodies, streamed: {@linkcode BodyDecoder} turns the bytes that follow
 * a request head into body data (Content-Length or chunked, RFC 9112 sec. 6
 * and 7.1) without copying them, and says where the body ends so the rest of
 * the buffer is the next request. {@linkcode BodyPipe} hands the data to the
 * write stage one chunk at a time with backpressure: the engine stops reading
 * the socket while the pipe is full, so a fast client never makes us buffer
 * more than the pipe's high-water mark.
 *
 * The decoder knows nothing of sockets or files; the engine feeds it whatever
 * arrived, the write stage pulls from the pipe.
 *
 * Errors (the status the client gets; the connection is closed after it,
 * since the framing can no longer be trusted):
 *
 * | case | status | RFC |
 * | --- | --- | --- |
 * | Content-Length over the upload limit | 413 (before any byte is read) | 9110 15.5.14 |
 * | chunked data passing the upload limit | 413 (at the limit) | 9110 15.5.14 |
 * | chunk-size not hex, empty, or a bad chunk-ext | 400 | 9112 7.1, 7.1.1 |
 * | chunk-size of more than 15 hex digits | 413 | 9112 7.1 (large numerals) |
 * | chunk line over `maxChunkLine` bytes | 413 | 9112 7.1.1 (limit extensions) |
 * | chunk data not followed by CRLF; bare LF | 400 | 9112 7.1, 2.2 |
 * | trailer field line malformed | 400 | 9112 7.1.2 |
 * | trailer section over `maxTrailerBytes` | 431 | 6585 5 |
 *
 * @module
 */

/** How the body is delimited (RFC 9112 sec. 6.3). */
export type BodyFraming =
  | { kind: "length"; length: number }
  | { kind: "chunked" };

/** Bounds of one body. */
export interface BodyLimits {
  /** Most data bytes accepted (after chunked decoding). */
  maxBytes: number;
  /** Longest chunk-size line (size + extensions, without CRLF). @default 4096 */
  maxChunkLine?: number;
  /** Most bytes of trailer field lines (CRLFs included). @default 16384 */
  maxTrailerBytes?: number;
}

/** A body that cannot be read as sent; `status` is what the client gets. */
export class BodyError extends Error {
  /** 400, 408, 413 or 431. */
  readonly status: number;
  /**
   * @param status the status to answer
   * @param message why
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = "BodyError";
    this.status = status;
  }
}

const CR = 13;
const LF = 10;
/** Field-name bytes (RFC 9110 5.6.2 tchar). */
const TCHAR = new Uint8Array(256);
for (const ch of "!#$%&'*+-.^_`|~0123456789") TCHAR[ch.charCodeAt(0)] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = TCHAR[c + 32] = 1;
/** `*( OWS ";" OWS token [ OWS "=" OWS ( token / quoted-string ) ] )` (RFC 9112 7.1.1). */
const CHUNK_EXT =
  /^(?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*$/;
/** A field value: VCHAR, obs-text, SP, HTAB (RFC 9110 5.5). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const S_DATA = 0; // Content-Length data, or chunk data
const S_SIZE = 1; // a chunk-size line
const S_DATA_CR = 2; // CRLF after chunk data
const S_TRAILER = 3; // trailer field lines
const S_DONE = 4;
const S_ERROR = 5;

const latin1 = new TextDecoder("latin1");

/**
 * Incremental decoder of one request body.
 *
 * @example A chunked body that arrives in two pieces
 * ```ts
 * import { BodyDecoder } from "./body.ts";
 * import assert from "node:assert/strict";
 *
 * const d = new BodyDecoder({ kind: "chunked" }, { maxBytes: 100 });
 * const bytes = new TextEncoder().encode("5\r\nhello\r\n0\r\nx-a: 1\r\n\r\nGET /next");
 * const got: string[] = [];
 * const on = (b: Uint8Array) => got.push(new TextDecoder().decode(b));
 * let used = d.feed(bytes.subarray(0, 7), on);
 * used += d.feed(bytes.subarray(used), on);
 * assert.deepEqual(got, ["hell", "o"]);
 * assert.ok(d.done);
 * assert.deepEqual(d.trailers, ["x-a", "1"]);
 * assert.equal(new TextDecoder().decode(bytes.subarray(used)), "GET /next");
 * ```
 */
export class BodyDecoder {
  #state: number;
  readonly #chunked: boolean;
  /** Data bytes left in the Content-Length body or the current chunk. */
  #left: number;
  #received = 0;
  readonly #max: number;
  readonly #maxLine: number;
  readonly #maxTrailer: number;
  /** The line being read (chunk-size or trailer), split over feeds. */
  #line: Uint8Array | null = null;
  #lineLen = 0;
  #trailerBytes = 0;
  #error: BodyError | null = null;
  /** Trailer fields, flat `[name, value, ...]`, names lower-cased (never merged into the head). */
  readonly trailers: string[] = [];

  /**
   * @param framing how the body is delimited
   * @param limits the upload limit and line bounds
   * @throws {BodyError} 413 when a Content-Length is over the limit (nothing read)
   */
  constructor(framing: BodyFraming, limits: BodyLimits) {
    this.#max = limits.maxBytes;
    this.#maxLine = limits.maxChunkLine ?? 4096;
    this.#maxTrailer = limits.maxTrailerBytes ?? 16384;
    this.#chunked = framing.kind === "chunked";
    if (framing.kind === "length") {
      if (framing.length > this.#max) {
        throw new BodyError(413, `body of ${framing.length} bytes over the limit of ${this.#max}`);
      }
      this.#left = framing.length;
      this.#state = framing.length === 0 ? S_DONE : S_DATA;
    } else {
      this.#left = 0;
      this.#state = S_SIZE;
    }
  }

  /** The whole body (and trailers) arrived. */
  get done(): boolean {
    return this.#state === S_DONE;
  }

  /** The framing error, once {@linkcode feed} threw it; else null. */
  get error(): BodyError | null {
    return this.#error;
  }

  /** Data bytes decoded so far. */
  get received(): number {
    return this.#received;
  }

  /**
   * Decodes `buf`. Data is handed to `onData` as views of `buf` (valid only
   * during the call); nothing past the body's end is consumed.
   *
   * @param buf bytes that arrived
   * @param onData told each piece of data, in order
   * @returns how many bytes of `buf` belong to the body (less than
   *   `buf.length` only once {@linkcode done})
   * @throws {BodyError} bad framing or a limit passed (and on every later call)
   */
  feed(buf: Uint8Array, onData: (data: Uint8Array) => void): number {
    if (this.#error !== null) throw this.#error;
    const end = buf.length;
    let i = 0;
    while (i < end) {
      const s = this.#state;
      if (s === S_DONE) break;
      if (s === S_DATA) {
        const n = Math.min(this.#left, end - i);
        if (n > 0) {
          this.#received += n;
          onData(buf.subarray(i, i + n));
          i += n;
          this.#left -= n;
        }
        if (this.#left === 0) this.#state = this.#chunked ? S_DATA_CR : S_DONE;
        continue;
      }
      if (s === S_DATA_CR) {
        // Two bytes, possibly split over feeds: count them in #lineLen.
        const want = this.#lineLen === 0 ? CR : LF;
        if (buf[i] !== want) return this.#fail(400, "chunk data not followed by CRLF");
        i++;
        if (++this.#lineLen === 2) {
          this.#lineLen = 0;
          this.#state = S_SIZE;
        }
        continue;
      }
      // A line (chunk-size or trailer field): up to LF, kept across feeds.
      let lf = i;
      while (lf < end && buf[lf] !== LF) lf++;
      const max = s === S_SIZE ? this.#maxLine : this.#maxTrailer - this.#trailerBytes;
      if (this.#lineLen + (lf - i) > max + 1) {
        return s === S_SIZE
          ? this.#fail(413, "chunk line too long")
          : this.#fail(431, "trailer section too large");
      }
      this.#append(buf, i, lf);
      if (lf === end) {
        i = end;
        break;
      }
      i = lf + 1;
      const line = this.#line!.subarray(0, this.#lineLen);
      this.#lineLen = 0;
      if (line.length === 0 || line[line.length - 1] !== CR) {
        return this.#fail(400, "bare LF in chunked framing");
      }
      const text = latin1.decode(line.subarray(0, line.length - 1));
      if (text.includes("\r")) return this.#fail(400, "bare CR in chunked framing");
      if (s === S_SIZE) this.#sizeLine(text);
      else this.#trailerLine(text, line.length + 1);
      if (this.#error !== null) throw this.#error;
    }
    return i;
  }

  #append(buf: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (this.#line === null) this.#line = new Uint8Array(256);
    if (this.#lineLen + n > this.#line.length) {
      const grown = new Uint8Array(Math.max(this.#line.length * 2, this.#lineLen + n));
      grown.set(this.#line.subarray(0, this.#lineLen));
      this.#line = grown;
    }
    this.#line.set(buf.subarray(from, to), this.#lineLen);
    this.#lineLen += n;
  }

  #sizeLine(text: string): void {
    let j = 0;
    while (j < text.length && /[0-9A-Fa-f]/.test(text[j])) j++;
    if (j === 0) return void this.#fail(400, "chunk-size is not hex");
    if (!CHUNK_EXT.test(text.slice(j))) return void this.#fail(400, "bad chunk extension");
    const digits = text.slice(0, j).replace(/^0+/, "");
    // Long numerals are refused, never converted (RFC 9112 sec. 7.1).
    if (digits.length > 13) return void this.#fail(413, "chunk-size too large");
    const size = digits === "" ? 0 : parseInt(digits, 16);
    if (size === 0) {
      this.#state = S_TRAILER;
      return;
    }
    if (this.#received + size > this.#max) {
      return void this.#fail(413, `body over the limit of ${this.#max} bytes`);
    }
    this.#left = size;
    this.#state = S_DATA;
  }

  #trailerLine(text: string, bytes: number): void {
    if (text === "") {
      this.#state = S_DONE;
      return;
    }
    this.#trailerBytes += bytes;
    const colon = text.indexOf(":");
    if (colon <= 0) return void this.#fail(400, "malformed trailer field");
    for (let k = 0; k < colon; k++) {
      if (TCHAR[text.charCodeAt(k)] === 0) return void this.#fail(400, "malformed trailer name");
    }
    const value = text.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!FIELD_VALUE.test(value)) return void this.#fail(400, "malformed trailer value");
    this.trailers.push(text.slice(0, colon).toLowerCase(), value);
  }

  #fail(status: number, why: string): never {
    this.#state = S_ERROR;
    this.#error = new BodyError(status, why);
    throw this.#error;
  }
}

/**
 * What the write stage reads a request body from: its data, in order, then
 * its trailers. Iterating ends when the body is whole; it throws a
 * {@linkcode BodyError} on bad framing, when the client went away (400) or
 * stalled past a deadline (408); the write stage then discards its work.
 * A consumer that stops iterating early abandons the rest of the body.
 */
export interface RequestBody {
  /** The declared Content-Length, or -1 for a chunked body. */
  readonly length: number;
  /** The data; a chunk may be reused by the producer once the next is asked for. */
  chunks(): AsyncIterable<Uint8Array>;
  /** Trailer fields (flat `[name, value, ...]`), complete once `chunks()` ended. */
  readonly trailers: readonly string[];
}

/**
 * A body already in memory (tests, small bodies, other transports).
 *
 * @param parts the data
 * @param trailers trailer fields, flat
 * @param length the declared length (default: the sum of `parts`)
 * @returns a body that yields `parts`
 * @example
 * ```ts
 * import { bytesBody } from "./body.ts";
 * const body = bytesBody([new TextEncoder().encode("hi")]);
 * for await (const c of body.chunks()) console.assert(c.length === 2);
 * ```
 */
export function bytesBody(
  parts: Uint8Array[],
  trailers: string[] = [],
  length = parts.reduce((n, p) => n + p.length, 0),
): RequestBody {
  return {
    length,
    trailers,
    async *chunks() {
      for (const p of parts) yield p;
    },
  };
}

/** Size of the pipe's buffers: reads are gathered into them, and the writer writes them whole. */
const PIPE_BUFFER = 256 * 1024;
/** Buffers kept for reuse per pipe. */
const FREE_MAX = 4;

/**
 * A single-producer single-consumer hand-off of body data between the engine
 * (producer: {@linkcode push}, {@linkcode end}, {@linkcode fail}) and the
 * write stage (consumer: {@linkcode chunks}). `push` copies the data (the
 * engine's read buffer is reused) and returns false once `highWater` bytes
 * wait; the producer then stops reading until {@linkcode drained} resolves.
 *
 * @example
 * ```ts
 * import { BodyPipe } from "./body.ts";
 * import assert from "node:assert/strict";
 *
 * const pipe = new BodyPipe(5, 4);
 * assert.equal(pipe.push(new TextEncoder().encode("hello")), false); // full: stop reading
 * const reader = (async () => {
 *   let n = 0;
 *   for await (const c of pipe.chunks()) n += c.length;
 *   return n;
 * })();
 * await pipe.drained();
 * pipe.end();
 * assert.equal(await reader, 5);
 * ```
 */
export class BodyPipe implements RequestBody {
  readonly length: number;
  readonly trailers: string[] = [];
  readonly #highWater: number;
  /** Filled buffers waiting for the consumer (the last one may still be filling). */
  #queue: Array<{ buf: Uint8Array; len: number }> = [];
  #queued = 0;
  /**
   * Buffers the consumer gave back. Reused so that a long upload allocates
   * a handful of buffers, not one per read: an `ArrayBuffer` is freed only
   * when a GC happens to run, and a copy per 64 KiB read piled up tens of
   * MiB of garbage during a 1 GiB upload.
   */
  #free: Uint8Array[] = [];
  /** The buffer handed to the consumer last; it comes back when the next is asked for. */
  #lent: Uint8Array | null = null;
  #ended = false;
  #failure: Error | null = null;
  #wakeConsumer: (() => void) | null = null;
  #wakeProducer: (() => void) | null = null;
  #started = false;
  #abandoned = false;
  readonly #onStart: (() => void) | undefined;

  /**
   * @param length the declared length, or -1 (chunked)
   * @param highWater bytes queued before `push` asks the producer to pause
   * @param onStart called once when the consumer starts reading (the engine
   *   answers `Expect: 100-continue` then, and only then)
   */
  constructor(length: number, highWater = 256 * 1024, onStart?: () => void) {
    this.length = length;
    this.#highWater = highWater;
    this.#onStart = onStart;
  }

  /**
   * Queues a copy of `data`.
   *
   * @param data body bytes (copied)
   * @returns false when the producer should pause until {@linkcode drained}
   */
  push(data: Uint8Array): boolean {
    if (this.#ended || this.#failure !== null || this.#abandoned) return true;
    let off = 0;
    while (off < data.length) {
      let tail = this.#queue[this.#queue.length - 1];
      if (tail === undefined || tail.len === tail.buf.length) {
        tail = { buf: this.#free.pop() ?? new Uint8Array(PIPE_BUFFER), len: 0 };
        this.#queue.push(tail);
      }
      const n = Math.min(tail.buf.length - tail.len, data.length - off);
      tail.buf.set(data.subarray(off, off + n), tail.len);
      tail.len += n;
      off += n;
    }
    this.#queued += data.length;
    if (data.length > 0) this.#wake();
    return this.#queued < this.#highWater;
  }

  /**
   * The body is complete.
   *
   * @param trailers its trailer fields, flat
   */
  end(trailers: readonly string[] = []): void {
    if (this.#ended || this.#failure !== null) return;
    for (const t of trailers) this.trailers.push(t);
    this.#ended = true;
    this.#wake();
  }

  /**
   * The body will not complete (bad framing, disconnect, deadline).
   *
   * @param error what the consumer's iteration throws
   */
  fail(error: Error): void {
    if (this.#ended || this.#failure !== null) return;
    this.#failure = error;
    this.#queue = [];
    this.#queued = 0;
    this.#wake();
    this.#wakeUp();
  }

  /** Whether the consumer has started to read (for `Expect: 100-continue`). */
  get started(): boolean {
    return this.#started;
  }

  /**
   * Resolves when the queue fell below the high-water mark (or the body failed).
   *
   * @returns a promise the producer awaits before reading on
   */
  drained(): Promise<void> {
    if (this.#queued < this.#highWater || this.#failure !== null || this.#abandoned) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#wakeProducer = resolve);
  }

  #wake(): void {
    const w = this.#wakeConsumer;
    this.#wakeConsumer = null;
    w?.();
  }

  /**
   * The data, in order; ends after {@linkcode end}, throws after {@linkcode fail}.
   * Each chunk is valid until the next one is asked for.
   *
   * @returns the iterable of chunks
   */
  async *chunks(): AsyncIterable<Uint8Array> {
    if (!this.#started) {
      this.#started = true;
      this.#onStart?.();
    }
    try {
      for (;;) {
        if (this.#lent !== null) {
          if (this.#free.length < FREE_MAX) this.#free.push(this.#lent);
          this.#lent = null;
        }
        if (this.#failure !== null) throw this.#failure;
        const c = this.#queue.shift();
        if (c !== undefined) {
          this.#queued -= c.len;
          if (this.#queued < this.#highWater) this.#wakeUp();
          this.#lent = c.buf;
          yield c.buf.subarray(0, c.len);
          continue;
        }
        if (this.#ended) return;
        await new Promise<void>((resolve) => this.#wakeConsumer = resolve);
      }
    } finally {
      if (!this.#ended && this.#failure === null) {
        // The consumer gave up (a full disk, a digest mismatch): the rest is
        // dropped, and the producer must not wait for room that never comes.
        this.#abandoned = true;
        this.#queue = [];
        this.#queued = 0;
        this.#wakeUp();
      }
    }
  }

  /** The consumer stopped reading before the end: the producer should stop too. */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  #wakeUp(): void {
    const p = this.#wakeProducer;
    this.#wakeProducer = null;
    p?.();
  }
}

/**
 * The engine's side of one request body: the decoder and the pipe together.
 * The engine pushes what the socket gave; the feed decodes it into the pipe,
 * says how many bytes were the body's (the rest is the next request), and
 * when to stop reading the socket ({@linkcode BodyFeed.wait}). Bad framing
 * fails the pipe with the decoder's {@linkcode BodyError} (the write stage
 * answers it, and the engine closes the connection after that answer).
 *
 * @example A body that arrives in two reads, then the next request
 * ```ts
 * import { BodyFeed } from "./body.ts";
 * import assert from "node:assert/strict";
 *
 * const feed = new BodyFeed({ kind: "length", length: 5 }, { maxBytes: 10 });
 * const text = (async () => {
 *   let s = "";
 *   for await (const c of feed.pipe.chunks()) s += new TextDecoder().decode(c);
 *   return s;
 * })();
 * assert.equal(feed.push(new TextEncoder().encode("hel")), 3);
 * assert.equal(feed.push(new TextEncoder().encode("loGET /")), 2);
 * assert.ok(feed.done);
 * assert.equal(await text, "hello");
 * ```
 */
export class BodyFeed {
  /** What the write stage reads (the request's `body`). */
  readonly pipe: BodyPipe;
  readonly #decoder: BodyDecoder;
  #paused = false;

  /**
   * @param framing how the body is delimited
   * @param limits the upload limit and line bounds
   * @param onStart called once when the consumer starts reading (100-continue)
   * @param highWater bytes queued before the socket is paused
   * @throws {BodyError} 413 for a Content-Length over the limit
   */
  constructor(
    framing: BodyFraming,
    limits: BodyLimits,
    onStart?: () => void,
    highWater?: number,
  ) {
    this.#decoder = new BodyDecoder(framing, limits);
    this.pipe = new BodyPipe(framing.kind === "length" ? framing.length : -1, highWater, onStart);
    if (this.#decoder.done) this.pipe.end();
  }

  /** The whole body arrived (or the consumer gave up on it: the rest is not needed). */
  get done(): boolean {
    return this.#decoder.done;
  }

  /** The body cannot complete: framing error, or {@linkcode fail} was called. */
  get failed(): boolean {
    return this.#decoder.error !== null || this.#failed;
  }
  #failed = false;

  /** The consumer stopped reading before the end: the connection cannot be reused. */
  get abandoned(): boolean {
    return this.pipe.abandoned;
  }

  /**
   * Decodes bytes from the socket into the pipe.
   *
   * @param data what arrived (copied as needed: the caller may reuse it)
   * @returns how many bytes were the body's; fewer than `data.length` only
   *   once {@linkcode done} (or on a framing error: then nothing more is read)
   */
  push(data: Uint8Array): number {
    if (this.failed || this.done) return 0;
    let room = true;
    let used: number;
    try {
      used = this.#decoder.feed(data, (d) => room = this.pipe.push(d) && room);
    } catch (e) {
      this.pipe.fail(e as BodyError);
      return data.length;
    }
    if (this.#decoder.done) this.pipe.end(this.#decoder.trailers);
    this.#paused = !room;
    return used;
  }

  /**
   * Resolves when the socket may be read again (the pipe has room), or
   * undefined when it may be read now.
   *
   * @returns a promise to await before reading on, or undefined
   */
  get wait(): Promise<void> | undefined {
    if (!this.#paused) return undefined;
    this.#paused = false;
    return this.pipe.drained();
  }

  /**
   * The body will not complete: the client went away (400) or stalled past a
   * deadline (408). The write stage's iteration throws, and it removes its
   * temporary file.
   *
   * @param status 400 or 408
   * @param why for logs
   */
  fail(status: number, why: string): void {
    if (this.done) return;
    this.#failed = true;
    this.pipe.fail(new BodyError(status, why));
  }
}

/**
 * What a handler tells the engine about the request bodies it reads
 * (a `bodies` property on the handler function): the methods whose bodies are
 * streamed to it as `req.body`, and the largest body it accepts.
 */
export interface BodyAcceptance {
  /** Methods whose bodies are streamed (others' are skipped, up to 64 KiB). */
  methods: ReadonlySet<string>;
  /** Largest body, bytes: a larger Content-Length is 413 before reading. */
  maxBytes: number;
}
