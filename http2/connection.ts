/**
 * The HTTP/2 connection engine (RFC 9113): bytes in ({@linkcode Http2Connection.feed}),
 * bytes out (an {@linkcode H2Transport}), requests answered concurrently by
 * the same {@linkcode Handler} as HTTP/1.1. No sockets or threads here:
 * `workers/tls.ts` wires it to a `Deno.TlsConn`, tests to byte fixtures.
 *
 * Contract:
 * - We send our SETTINGS at once; the peer's preface and first SETTINGS must
 *   follow within the header timeout.
 * - Each request (HEADERS + CONTINUATION, decoded by HPACK) becomes a
 *   {@linkcode RequestHead} (`minor: 1`: HTTP/2 keeps HTTP/1.1 semantics); its
 *   reply goes out as HEADERS then DATA within both flow-control windows,
 *   streams served round-robin. Bytes parts are framed as they are; file
 *   slices read in chunks (at most 1 MiB per connection) only when a window is
 *   open, so a stalled peer pins no file buffers; a `stream` body is pulled a chunk at a time.
 * - Every reply gets exactly one `release()` call, also when the stream was
 *   reset or the connection died.
 * - Output is collected in one buffer and written in one call per turn
 *   (many small responses share a TLS write); it stops filling at
 *   `HIGH_WATER`, and `feed` returns a promise while it is over (the caller
 *   stops reading: backpressure), so memory per connection is bounded, not
 *   per queued byte.
 * - Deadlines are driven by `tick(now)` like the HTTP/1.1 engine: a header
 *   block or partial frame pending for the header timeout, no stream for
 *   the idle timeout, no output progress (a write pending, or data waiting on
 *   a window that never opens) for the write timeout.
 *
 * Errors ({@linkcode H2Error}): a connection error sends GOAWAY with the
 * code and closes after the write; a stream error sends RST_STREAM. The
 * table of cases is `ERRORS.md`-style in `connection_test.ts`, one test per
 * row, each naming its RFC 9113 clause.
 *
 * Protections (each counted through `hooks.onEvent`): rapid reset, SETTINGS /
 * PING / empty-frame floods (GOAWAY ENHANCE_YOUR_CALM past a threshold per
 * 10 s window), a header block over `maxBlockBytes` or `MAX_CONTINUATIONS`
 * frames (ENHANCE_YOUR_CALM: it cannot be decoded, so the HPACK state is
 * lost), a decoded list over the limit (431 on that stream, table kept in
 * sync), streams beyond the advertised limit (REFUSED_STREAM), and handler
 * calls still running for reset streams bounded too.
 *
 * @module
 */
import type { BodyPart, FileSlice, Handler, Peer, Reply, RequestHead } from "../http/types.ts";
import { ByteWriter, Decoder, Encoder, HpackError, VOLATILE } from "./hpack.ts";
import { type BodyAcceptance, BodyError, BodyPipe } from "../write/body.ts";
import { validAuthority } from "../http/parser.ts";
import {
  ACK,
  applySettings,
  checkFrameSize,
  COMPRESSION_ERROR,
  connError,
  CONTINUATION,
  DATA,
  defaultSettings,
  END_HEADERS,
  END_STREAM,
  ENHANCE_YOUR_CALM,
  FLOW_CONTROL_ERROR,
  type Frame,
  FRAME_SIZE_ERROR,
  GOAWAY,
  H2Error,
  HEADERS,
  INTERNAL_ERROR,
  MAX_WINDOW,
  MIN_MAX_FRAME,
  NO_ERROR,
  type PeerSettings,
  PING,
  PREFACE,
  PRIORITY,
  PRIORITY_FLAG,
  PROTOCOL_ERROR,
  PUSH_PROMISE,
  readFrameHeader,
  REFUSED_STREAM,
  RST_STREAM,
  SETTINGS,
  SETTINGS_HEADER_TABLE_SIZE,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE,
  STREAM_CLOSED,
  u31,
  unpad,
  WINDOW_UPDATE,
  writeData,
  writeGoaway,
  writeHeaders,
  writePingAck,
  writeRst,
  writeSettings,
  writeWindowUpdate,
} from "./frames.ts";

/** Where the engine's output goes (as the HTTP/1.1 engine's `Transport`). */
export interface H2Transport {
  /** Writes all of `bytes` (valid until the promise resolves). */
  write(bytes: Uint8Array): Promise<void> | void;
  /** Closes the connection; called once. */
  close(): void;
  /** Optional: the client, given to every request as `RequestHead.remote`. */
  readonly peer?: Peer;
}

/** Per-request observers (access log, counters), as `ConnectionTap`. */
export interface StreamTap {
  handler: Handler;
  onResponse(req: RequestHead | null, status: number, bytes: number, h2?: boolean): void;
}

/** Protection events, for counters. */
export const EV_RAPID_RESET = 0,
  EV_FLOOD = 1,
  EV_BLOCK_TOO_BIG = 2,
  EV_LIST_TOO_BIG = 3,
  EV_REFUSED = 4,
  EV_PROTOCOL_ERROR = 5;

/** Deadline kinds passed to `onDeadline` (as the HTTP/1.1 engine's DEADLINE_*). */
export const H2_DEADLINE_HEAD = 1, H2_DEADLINE_IDLE = 2, H2_DEADLINE_WRITE = 3;

/** Hooks of one connection. */
export interface H2Hooks {
  /** The observers of one request (called once per stream). */
  tap(): StreamTap;
  /** Told which deadline closed the connection. */
  onDeadline?(kind: number): void;
  /** Told each protection event (`EV_*`). */
  onEvent?(kind: number): void;
  /** Called once when the connection is closed. */
  onClose?(): void;
}

/** Limits and deadlines of a connection. */
export interface H2Options {
  /** @default {10000} */
  headerTimeoutMs?: number;
  /** @default {15000} */
  idleTimeoutMs?: number;
  /** @default {30000} */
  writeTimeoutMs?: number;
  /** Advertised SETTINGS_MAX_CONCURRENT_STREAMS. @default {100} */
  maxConcurrentStreams?: number;
  /** Advertised SETTINGS_MAX_HEADER_LIST_SIZE. @default {32768} */
  maxHeaderListSize?: number;
  /**
   * Request bodies the handler streams (write/body.ts, as the HTTP/1.1
   * engine's `bodies`): these methods' DATA go to `req.body`, the stream's
   * window reopened as the stage drains them. Undefined: bodies are dropped.
   */
  bodies?: BodyAcceptance;
}

/** Our SETTINGS_MAX_FRAME_SIZE (the default: larger frames buy nothing for requests). */
const OUR_MAX_FRAME = MIN_MAX_FRAME;
/** Our initial stream window (also the most a body stream may send ahead of its reader). */
const OUR_WINDOW = 65535;
/** Body bytes queued for the write stage per stream before its window stays shut. */
const BODY_HIGH_WATER = 65536;
/** Output stops being filled with DATA past this (bytes). */
const HIGH_WATER = 256 * 1024;
/** Output (control frames from a peer that does not read) past this closes the connection. */
const OUT_MAX = 4 * 1024 * 1024;
/**
 * File slices are read in chunks of at most this: 256 KiB took a quarter less
 * CPU per MiB than 64 KiB over TLS (fewer read ops, fuller writes).
 */
const FILE_CHUNK = 262144;
/** File chunks one connection may hold at once (all its streams together), in bytes. */
export const FILE_BUDGET = 4 * FILE_CHUNK;
/** Chunk buffers kept for reuse per thread (2 MiB). */
const CHUNK_POOL_MAX = 8;
/** A header block may not span more frames than this. */
export const MAX_CONTINUATIONS = 64;
/** Per 10 s window, at most this many of each before GOAWAY ENHANCE_YOUR_CALM. */
export const RESET_LIMIT = 400, SETTINGS_LIMIT = 100, PING_LIMIT = 500, EMPTY_LIMIT = 500;
const WINDOW_MS = 10_000;
/** Closed stream ids remembered (to tell STREAM_CLOSED from PROTOCOL_ERROR). */
const RECENT = 64;

const HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "date",
]);

let dateSecond = -1;
let dateValue = "";
function currentDate(): string {
  const now = Date.now();
  const sec = (now / 1000) | 0;
  if (sec !== dateSecond) {
    dateSecond = sec;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

const latin = new TextDecoder("latin1");
/** A cached head's fields: those worth the dynamic table, and the rest pre-encoded. */
interface RawFields {
  indexed: Array<[string, string]>;
  /** Literals without indexing (content-length, etag, ...): table-independent, so cacheable. */
  literal: Uint8Array;
  /** The same without content-length (for 304). */
  literalNoLength: Uint8Array;
}
const rawCache = new WeakMap<Uint8Array, RawFields>();
/**
 * Header fields of a pre-serialised HTTP/1.1 head (status line skipped),
 * parsed and partly HPACK-encoded once per head: a cache hit costs a copy.
 */
function rawFields(raw: Uint8Array): RawFields {
  let out = rawCache.get(raw);
  if (out) return out;
  const indexed: Array<[string, string]> = [];
  const lit = new ByteWriter(128);
  const litNoLength = new ByteWriter(128);
  const lines = latin.decode(raw).split("\r\n");
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(":");
    if (colon <= 0) continue;
    const name = lines[i].slice(0, colon).trim().toLowerCase();
    if (HOP.has(name)) continue;
    const value = lines[i].slice(colon + 1).trim();
    if (!VOLATILE.has(name)) {
      indexed.push([name, value]);
      continue;
    }
    Encoder.literal(name, value, lit);
    if (name !== "content-length") Encoder.literal(name, value, litNoLength);
  }
  out = { indexed, literal: lit.bytes().slice(), literalNoLength: litNoLength.bytes().slice() };
  rawCache.set(raw, out);
  return out;
}

const chunkPool: Uint8Array[] = [];

const enc = new TextEncoder();
const ERROR_BODY = new Map<number, Uint8Array>();
function errorReply(status: number): Reply {
  let body = ERROR_BODY.get(status);
  if (!body) {
    body = enc.encode(
      `${status} ${
        {
          400: "Bad Request",
          411: "Length Required",
          413: "Content Too Large",
          431: "Request Header Fields Too Large",
          500: "Internal Server Error",
        }[
          status
        ] ?? ""
      }\n`,
    );
    ERROR_BODY.set(status, body);
  }
  return {
    status,
    headers: [["content-type", "text/plain; charset=utf-8"]],
    body: [body],
    length: body.length,
  };
}
const SERVER_OPTIONS: Reply = {
  status: 200,
  headers: [["allow", "GET, HEAD"]],
  body: [],
  length: 0,
};

/** One stream's state (server side: streams are opened by the peer). */
class Stream {
  id: number;
  /** The peer sent END_STREAM. */
  remoteEnded = false;
  /** We sent END_STREAM (or reset it). */
  localEnded = false;
  sendWindow: number;
  recvWindow = OUR_WINDOW;
  head: RequestHead | null = null;
  tap: StreamTap | null = null;
  reply: Reply | null = null;
  status = 0;
  /** Bytes we sent on it (frame headers included). */
  bytes = 0;
  /** Request Content-Length, or -1; DATA octets received. */
  contentLength = -1;
  received = 0;
  /** The request body handed to the handler (`bodies` methods), or null: DATA dropped. */
  body: BodyPipe | null = null;
  /** The body's window is shut until its reader drains it. */
  bodyWaiting = false;
  // Body sending.
  parts: BodyPart[] = [];
  part = 0;
  filePos = -1;
  /** Bytes ready to frame: `pending[pendingOff..pendingEnd)`. */
  pending: Uint8Array | null = null;
  pendingOff = 0;
  pendingEnd = 0;
  /** `pending` is a pooled file chunk. */
  pooled = false;
  loading = false;
  /** Body bytes left when the length is known, else -1. */
  left = -1;
  iter: AsyncIterator<Uint8Array> | null = null;
  streamed = false;
  released = false;
  done = false;

  constructor(id: number, window: number) {
    this.id = id;
    this.sendWindow = window;
  }
}

/**
 * One HTTP/2 connection.
 *
 * @example Serve one request from byte fixtures
 * ```ts ignore
 * const c = new Http2Connection(transport, { tap: () => ({ handler, onResponse() {} }) });
 * c.feed(prefaceAndRequestBytes);
 * ```
 */
export class Http2Connection {
  readonly #t: H2Transport;
  readonly #hooks: H2Hooks;
  readonly #headerMs: number;
  readonly #idleMs: number;
  readonly #writeMs: number;
  readonly #maxStreams: number;
  readonly #maxList: number;
  readonly #maxBlock: number;
  readonly #bodies: BodyAcceptance | undefined;
  readonly #decoder = new Decoder(4096);
  readonly #encoder = new Encoder();
  readonly #peer: PeerSettings = defaultSettings();
  readonly #streams = new Map<number, Stream>();
  readonly #recent: number[] = [];
  /** Streams we reset (sent RST_STREAM) lately: their late frames are ignored (sec. 5.1). */
  readonly #resetByUs: number[] = [];
  #sending: Stream[] = [];

  // Input.
  #prefaceLeft = PREFACE.length;
  #gotSettings = false;
  #in = new Uint8Array(0);
  #inLen = 0;
  readonly #frame: Frame = { length: 0, type: 0, flags: 0, stream: 0, offset: 0 };
  /** Header block in progress: its stream, flags of the HEADERS frame, fragments, frames. */
  #blockStream = 0;
  #blockFlags = 0;
  #blockPriorityDep = -1;
  readonly #block = new ByteWriter(1024);
  #blockFrames = 0;
  #lastStream = 0;
  #recvUnacked = 0;

  // Output.
  /** Output buffers: pooled per thread, given back while the connection is idle. */
  #out = new ByteWriter(0);
  #spare = new ByteWriter(0);
  readonly #hbuf = new ByteWriter(512);
  #writing = false;
  #sendWindow = 65535;
  #kicked = false;
  #waiters: Array<() => void> = [];

  // State.
  #closed = false;
  /** GOAWAY sent: close once the output is written (after the last stream when graceful). */
  #goaway = false;
  #closeAfterFlush = false;
  #peerGoaway = false;
  #onClosed: Array<() => void> = [];
  /** Handler calls not yet answered (also for reset streams). */
  #inflight = 0;

  // Deadlines and floods (stamped by tick).
  readonly #born: number;
  #progress = 0;
  #seenProgress = -1;
  #stallSince = 0;
  #idleSince = 0;
  /** 0: to be stamped by the next tick; -1: none. */
  #blockSince = 0;
  #partialSince = -1;
  #windowStart = 0;
  #resets = 0;
  #settingsN = 0;
  #pings = 0;
  #empties = 0;

  /**
   * @param transport where output goes
   * @param hooks observers
   * @param options deadlines and limits
   */
  constructor(transport: H2Transport, hooks: H2Hooks, options: H2Options = {}) {
    this.#t = transport;
    this.#hooks = hooks;
    this.#headerMs = options.headerTimeoutMs ?? 10_000;
    this.#idleMs = options.idleTimeoutMs ?? 15_000;
    this.#writeMs = options.writeTimeoutMs ?? 30_000;
    this.#maxStreams = options.maxConcurrentStreams ?? 100;
    this.#maxList = options.maxHeaderListSize ?? 32768;
    // An HPACK block is at most a little larger than the list it encodes.
    this.#maxBlock = this.#maxList + 4096;
    this.#bodies = options.bodies;
    this.#born = Date.now();
    writeSettings(this.#out, [
      [SETTINGS_MAX_CONCURRENT_STREAMS, this.#maxStreams],
      [SETTINGS_INITIAL_WINDOW_SIZE, OUR_WINDOW],
      [SETTINGS_MAX_FRAME_SIZE, OUR_MAX_FRAME],
      [SETTINGS_MAX_HEADER_LIST_SIZE, this.#maxList],
      [SETTINGS_HEADER_TABLE_SIZE, 4096],
    ]);
    this.#kick();
  }

  /** Whether the connection is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Open streams. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Bytes held in output buffers (for memory-bound tests). */
  get buffered(): number {
    return this.#out.buf.length + this.#spare.buf.length + this.#in.length + this.#block.buf.length;
  }

  /** Resolves when the connection is closed. */
  whenClosed(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((r) => this.#onClosed.push(r));
  }

  /**
   * Feeds input bytes (copied when kept).
   *
   * @param chunk bytes read from the peer
   * @returns a promise while output is over the high-water mark (stop reading until it resolves)
   */
  feed(chunk: Uint8Array): Promise<void> | undefined {
    if (this.#closed || this.#closeAfterFlush) return;
    try {
      let buf = chunk;
      let len = chunk.length;
      if (this.#inLen > 0) {
        this.#append(chunk);
        buf = this.#in;
        len = this.#inLen;
      }
      let at = 0;
      if (this.#prefaceLeft > 0) {
        const start = PREFACE.length - this.#prefaceLeft;
        const n = Math.min(this.#prefaceLeft, len);
        for (let i = 0; i < n; i++) {
          if (buf[i] !== PREFACE[start + i]) {
            throw connError(
              PROTOCOL_ERROR,
              "not the HTTP/2 connection preface (RFC 9113 sec. 3.4)",
            );
          }
        }
        this.#prefaceLeft -= n;
        at = n;
      }
      const f = this.#frame;
      const view = len === buf.length ? buf : buf.subarray(0, len);
      const hadPartial = this.#inLen > 0;
      let frames = 0;
      while (!this.#closed && !this.#closeAfterFlush) {
        if (readFrameHeader(view, at, f) === null) break;
        if (f.length > OUR_MAX_FRAME) {
          throw connError(FRAME_SIZE_ERROR, `frame of ${f.length} octets over our MAX_FRAME_SIZE`);
        }
        if (len - f.offset < f.length) break;
        this.#frameIn(view, f);
        at = f.offset + f.length;
        frames++;
      }
      // Keep the partial frame.
      if (buf === this.#in) {
        this.#in.copyWithin(0, at, len);
        this.#inLen = len - at;
        // Nothing partial left: an idle connection keeps no input buffer.
        if (this.#inLen === 0) this.#in = new Uint8Array(0);
      } else if (at < len) {
        this.#inLen = 0;
        this.#append(chunk.subarray(at, len));
      }
      // A partial frame starts the header deadline (restarted when a frame completes).
      if (this.#inLen === 0) this.#partialSince = -1;
      else if (!hadPartial || frames > 0) this.#partialSince = 0;
    } catch (e) {
      this.#error(e);
    }
    if (this.#out.length > 0) this.#kick();
    if (this.#out.length >= HIGH_WATER && this.#writing && !this.#closed) {
      if (this.#out.length > OUT_MAX) {
        this.#close();
        return;
      }
      return new Promise((r) => this.#waiters.push(r));
    }
    return undefined;
  }

  #append(bytes: Uint8Array): void {
    const need = this.#inLen + bytes.length;
    if (need > this.#in.length) {
      const next = new Uint8Array(Math.max(need, 2 * this.#in.length, 16384));
      next.set(this.#in.subarray(0, this.#inLen));
      this.#in = next;
    }
    this.#in.set(bytes, this.#inLen);
    this.#inLen = need;
  }

  /** The peer closed its side (EOF): nothing more arrives; close. */
  end(): void {
    this.#close();
  }

  /**
   * Graceful shutdown: GOAWAY with the last stream id; streams in flight finish, then close.
   *
   * @returns resolves when closed
   */
  drain(): Promise<void> {
    if (!this.#closed && !this.#goaway) {
      this.#goaway = true;
      writeGoaway(this.#out, this.#lastStream, NO_ERROR);
      if (this.#streams.size === 0) this.#closeAfterFlush = true;
      this.#kick();
    }
    return this.whenClosed();
  }

  /**
   * Closes the connection now if it has no stream open (shed at the connection cap).
   *
   * @returns whether it was closed
   */
  shedIdle(): boolean {
    // Already closing (shed before, a deadline, drain): nothing more to free, nor to count.
    if (this.#closed || this.#closeAfterFlush || this.#streams.size > 0 || this.#inflight > 0) {
      return false;
    }
    this.#goaway = true;
    writeGoaway(this.#out, this.#lastStream, NO_ERROR);
    this.#closeAfterFlush = true;
    this.#kick();
    return true;
  }

  /** Whether it has no stream open (idle). */
  get idle(): boolean {
    return this.#streams.size === 0 && this.#inflight === 0;
  }

  /**
   * Checks deadlines and decays the flood counters.
   *
   * @param now the time in ms
   * @returns the deadline kind that closed it, or 0
   */
  tick(now: number): number {
    if (this.#closed) return 0;
    if (now - this.#windowStart >= WINDOW_MS) {
      this.#windowStart = now;
      this.#resets =
        this.#settingsN =
        this.#pings =
        this.#empties =
          0;
    }
    // Output progress: a pending write, or data waiting for a window.
    const busy = this.#writing || this.#sending.length > 0 || this.#closeAfterFlush;
    if (busy) {
      if (this.#progress !== this.#seenProgress) {
        this.#seenProgress = this.#progress;
        this.#stallSince = now;
      } else if (now - this.#stallSince > this.#writeMs) {
        return this.#deadline(H2_DEADLINE_WRITE);
      }
    } else {
      this.#seenProgress = -1;
    }
    // Head: preface / SETTINGS, a header block, or a partial frame.
    if (!this.#gotSettings && now - this.#born > this.#headerMs) {
      return this.#deadline(H2_DEADLINE_HEAD);
    }
    // A header block spanning frames: from its HEADERS frame (a trickled block).
    if (this.#blockStream !== 0) {
      if (this.#blockSince === 0) this.#blockSince = now;
      else if (now - this.#blockSince > this.#headerMs) return this.#deadline(H2_DEADLINE_HEAD);
    }
    // A partial frame (a trickled HEADERS frame, or any other).
    if (this.#partialSince === 0) this.#partialSince = now;
    else if (this.#partialSince > 0 && now - this.#partialSince > this.#headerMs) {
      return this.#deadline(H2_DEADLINE_HEAD);
    }
    // Idle: no stream open.
    if (this.#streams.size === 0 && this.#inflight === 0 && !busy) {
      if (this.#idleSince === 0) this.#idleSince = now;
      else if (now - this.#idleSince > this.#idleMs) return this.#deadline(H2_DEADLINE_IDLE);
    } else {
      this.#idleSince = 0;
    }
    return 0;
  }

  #deadline(kind: number): number {
    this.#hooks.onDeadline?.(kind);
    if (kind === H2_DEADLINE_WRITE) {
      this.#close();
    } else {
      // The peer may still read: say why, then close whatever it does.
      if (!this.#goaway) writeGoaway(this.#out, this.#lastStream, NO_ERROR);
      this.#goaway = true;
      this.#closeAfterFlush = true;
      this.#kick();
      // If the write stalls, the write deadline (next ticks) closes it.
    }
    return kind;
  }

  // ------------------------------------------------------------ frames in

  #onFrame(buf: Uint8Array, f: Frame): void {
    if (!this.#gotSettings) {
      if (f.type !== SETTINGS || (f.flags & ACK) !== 0) {
        throw connError(PROTOCOL_ERROR, "the preface must start with SETTINGS (RFC 9113 sec. 3.4)");
      }
      this.#gotSettings = true;
    }
    if (this.#blockStream !== 0 && (f.type !== CONTINUATION || f.stream !== this.#blockStream)) {
      throw connError(PROTOCOL_ERROR, "header block interrupted (RFC 9113 sec. 6.10)");
    }
    checkFrameSize(f);
    switch (f.type) {
      case DATA:
        return this.#onData(buf, f);
      case HEADERS:
        return this.#onHeaders(buf, f);
      case PRIORITY:
        if (f.stream === 0) throw connError(PROTOCOL_ERROR, "PRIORITY on stream 0 (sec. 6.3)");
        if (u31(buf, f.offset) === f.stream) {
          throw new H2Error(PROTOCOL_ERROR, f.stream, "stream depends on itself (sec. 5.3.1)");
        }
        return;
      case RST_STREAM:
        return this.#onRst(f);
      case SETTINGS:
        return this.#onSettings(buf, f);
      case PUSH_PROMISE:
        throw connError(PROTOCOL_ERROR, "PUSH_PROMISE from a client (sec. 8.4)");
      case PING:
        if (f.stream !== 0) throw connError(PROTOCOL_ERROR, "PING on a stream (sec. 6.7)");
        if (f.flags & ACK) return;
        if (++this.#pings > PING_LIMIT) return this.#calm("PING flood");
        writePingAck(this.#out, buf, f.offset);
        return;
      case GOAWAY:
        if (f.stream !== 0) throw connError(PROTOCOL_ERROR, "GOAWAY on a stream (sec. 6.8)");
        this.#peerGoaway = true;
        if (this.#streams.size === 0) this.#close();
        return;
      case WINDOW_UPDATE:
        return this.#onWindowUpdate(buf, f);
      case CONTINUATION:
        return this.#onContinuation(buf, f);
      default:
        // Unknown frame types are ignored (sec. 4.1, 5.5).
        return;
    }
  }

  /**
   * One frame; a stream error is answered here, so the frames after it in the
   * same read are still processed (sec. 5.4.2: the connection goes on).
   */
  #frameIn(buf: Uint8Array, f: Frame): void {
    try {
      this.#onFrame(buf, f);
    } catch (e) {
      if (!(e instanceof H2Error) || e.stream === 0) throw e;
      this.#error(e);
    }
  }

  #calm(why: string): void {
    this.#hooks.onEvent?.(EV_FLOOD);
    throw connError(ENHANCE_YOUR_CALM, why);
  }

  #onSettings(buf: Uint8Array, f: Frame): void {
    if (f.stream !== 0) throw connError(PROTOCOL_ERROR, "SETTINGS on a stream (sec. 6.5)");
    if (f.flags & ACK) return;
    if (++this.#settingsN > SETTINGS_LIMIT) return this.#calm("SETTINGS flood");
    const p = this.#peer;
    const oldWindow = p.initialWindowSize;
    const oldTable = p.headerTableSize;
    applySettings(buf, f, p);
    if (p.initialWindowSize !== oldWindow) {
      // Sec. 6.9.2: every stream's send window moves by the difference (may go negative).
      const delta = p.initialWindowSize - oldWindow;
      for (const st of this.#streams.values()) {
        st.sendWindow += delta;
        if (st.sendWindow > MAX_WINDOW) {
          throw connError(
            FLOW_CONTROL_ERROR,
            "INITIAL_WINDOW_SIZE overflows a window (sec. 6.9.2)",
          );
        }
      }
      if (delta > 0) this.#kick();
    }
    if (p.headerTableSize !== oldTable) this.#encoder.setMaxTableSize(p.headerTableSize);
    writeSettings(this.#out, null);
  }

  #onWindowUpdate(buf: Uint8Array, f: Frame): void {
    const inc = u31(buf, f.offset);
    if (f.stream === 0) {
      if (inc === 0) throw connError(PROTOCOL_ERROR, "WINDOW_UPDATE of 0 (sec. 6.9)");
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW) {
        throw connError(FLOW_CONTROL_ERROR, "connection window over 2^31-1 (sec. 6.9.1)");
      }
      this.#kick();
      return;
    }
    const st = this.#streams.get(f.stream);
    if (st === undefined) {
      // Past our GOAWAY, streams above its last id are ignored (sec. 6.8).
      if (this.#goaway && f.stream > this.#lastStream) return;
      if (f.stream > this.#lastStream) {
        throw connError(PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream (sec. 5.1)");
      }
      return; // Closed: allowed for a while (sec. 5.1), ignored.
    }
    if (inc === 0) throw new H2Error(PROTOCOL_ERROR, f.stream, "WINDOW_UPDATE of 0 (sec. 6.9)");
    st.sendWindow += inc;
    if (st.sendWindow > MAX_WINDOW) {
      throw new H2Error(FLOW_CONTROL_ERROR, f.stream, "stream window over 2^31-1 (sec. 6.9.1)");
    }
    this.#kick();
  }

  #onRst(f: Frame): void {
    if (f.stream === 0) throw connError(PROTOCOL_ERROR, "RST_STREAM on stream 0 (sec. 6.4)");
    if (f.stream > this.#lastStream) {
      if (this.#goaway) return; // Past our GOAWAY (sec. 6.8).
      throw connError(PROTOCOL_ERROR, "RST_STREAM on an idle stream (sec. 6.4)");
    }
    // Every reset counts (also of a stream we refused or already answered):
    // opening and cancelling streams is the attack, whatever state they reached.
    const st = this.#streams.get(f.stream);
    if (st !== undefined) this.#endStream(st, -1);
    if (++this.#resets > RESET_LIMIT) {
      this.#hooks.onEvent?.(EV_RAPID_RESET);
      throw connError(ENHANCE_YOUR_CALM, "rapid reset: too many streams cancelled");
    }
  }

  #onData(buf: Uint8Array, f: Frame): void {
    if (f.stream === 0) throw connError(PROTOCOL_ERROR, "DATA on stream 0 (sec. 6.1)");
    const [start, end] = unpad(buf, f);
    // Flow control counts the whole payload, padding included (sec. 6.9.1).
    this.#recvUnacked += f.length;
    if (this.#recvUnacked > OUR_WINDOW) {
      throw connError(FLOW_CONTROL_ERROR, "DATA over the connection window (sec. 6.9.1)");
    }
    if (this.#recvUnacked >= OUR_WINDOW / 2) {
      writeWindowUpdate(this.#out, 0, this.#recvUnacked);
      this.#recvUnacked = 0;
    }
    // No content (padding alone counts as none): the frame carries nothing but cost.
    if (end === start && (f.flags & END_STREAM) === 0 && ++this.#empties > EMPTY_LIMIT) {
      return this.#calm("empty DATA flood");
    }
    const st = this.#streams.get(f.stream);
    if (st === undefined) {
      // Past our GOAWAY, streams above its last id are ignored (their DATA still
      // counted against the connection window, above) (sec. 6.8).
      if (this.#goaway && f.stream > this.#lastStream) return;
      if (f.stream > this.#lastStream) {
        throw connError(PROTOCOL_ERROR, "DATA on an idle stream (sec. 5.1)");
      }
      // We reset it: what the peer sent before it saw that is ignored (sec. 5.1).
      if (this.#resetByUs.includes(f.stream)) return;
      throw new H2Error(STREAM_CLOSED, f.stream, "DATA on a closed stream (sec. 5.1)");
    }
    if (st.remoteEnded) {
      throw new H2Error(STREAM_CLOSED, f.stream, "DATA after END_STREAM (sec. 5.1)");
    }
    st.recvWindow -= f.length;
    if (st.recvWindow < 0) {
      throw new H2Error(FLOW_CONTROL_ERROR, f.stream, "DATA over the stream window (sec. 6.9.1)");
    }
    st.received += end - start;
    if (st.contentLength >= 0 && st.received > st.contentLength) {
      throw new H2Error(PROTOCOL_ERROR, f.stream, "DATA beyond content-length (sec. 8.1.1)");
    }
    let room = true;
    const body = st.body;
    if (body !== null && this.#bodies !== undefined && st.received > this.#bodies.maxBytes) {
      // Over the upload limit without a Content-Length: the stage answers 413; the rest is dropped.
      body.fail(new BodyError(413, `request body over ${this.#bodies.maxBytes} bytes`));
      st.body = null;
    } else if (body !== null && end > start) room = body.push(buf.subarray(start, end));
    if (f.flags & END_STREAM) {
      st.remoteEnded = true;
      if (st.contentLength >= 0 && st.received !== st.contentLength) {
        throw new H2Error(PROTOCOL_ERROR, f.stream, "DATA short of content-length (sec. 8.1.1)");
      }
      st.body?.end();
    } else if (st.body !== null) {
      // A body the stage reads: its window reopens only as fast as the stage drains the
      // queue (backpressure on the peer, per stream), so a stream holds at most
      // BODY_HIGH_WATER + OUR_WINDOW bytes. The connection window is returned above at
      // once: one slow writer does not stall the other streams.
      if (!room) this.#bodyWait(st);
      else if (!st.bodyWaiting && st.recvWindow < OUR_WINDOW / 2) this.#reopen(st);
    } else if (st.recvWindow < OUR_WINDOW / 2) {
      // The body is dropped (we serve files): open the window again at once.
      writeWindowUpdate(this.#out, st.id, OUR_WINDOW - st.recvWindow);
      st.recvWindow = OUR_WINDOW;
    }
  }

  /** Reopens `st`'s receive window in full. */
  #reopen(st: Stream): void {
    writeWindowUpdate(this.#out, st.id, OUR_WINDOW - st.recvWindow);
    st.recvWindow = OUR_WINDOW;
  }

  /** Keeps `st`'s window shut until its body's reader has drained the queue. */
  #bodyWait(st: Stream): void {
    if (st.bodyWaiting) return;
    st.bodyWaiting = true;
    st.body!.drained().then(() => {
      st.bodyWaiting = false;
      if (st.done || st.remoteEnded || this.#closed || st.recvWindow === OUR_WINDOW) return;
      this.#reopen(st);
      this.#kick();
    });
  }

  #onHeaders(buf: Uint8Array, f: Frame): void {
    if (f.stream === 0) throw connError(PROTOCOL_ERROR, "HEADERS on stream 0 (sec. 6.2)");
    if ((f.stream & 1) === 0) {
      throw connError(PROTOCOL_ERROR, "even stream id from a client (sec. 5.1.1)");
    }
    const prio = (f.flags & PRIORITY_FLAG) !== 0;
    const [start, end] = unpad(buf, f, prio ? 5 : 0);
    this.#blockPriorityDep = prio ? u31(buf, start - 5) : -1;
    this.#blockFlags = f.flags;
    this.#blockFrames = 1;
    if (end - start > this.#maxBlock) return this.#tooBig();
    if (f.flags & END_HEADERS) {
      this.#blockStream = 0;
      return this.#onBlock(f.stream, buf.subarray(start, end));
    }
    this.#blockStream = f.stream;
    this.#blockSince = 0;
    this.#block.length = 0;
    this.#copyFragment(buf, start, end);
  }

  #copyFragment(buf: Uint8Array, start: number, end: number): void {
    const w = this.#block;
    w.ensure(end - start);
    w.buf.set(buf.subarray(start, end), w.length);
    w.length += end - start;
  }

  #tooBig(): void {
    this.#hooks.onEvent?.(EV_BLOCK_TOO_BIG);
    throw connError(
      ENHANCE_YOUR_CALM,
      "header block over the limit (bytes or CONTINUATION frames)",
    );
  }

  #onContinuation(buf: Uint8Array, f: Frame): void {
    if (this.#blockStream === 0) {
      throw connError(PROTOCOL_ERROR, "CONTINUATION without HEADERS (sec. 6.10)");
    }
    if (++this.#blockFrames > MAX_CONTINUATIONS) return this.#tooBig();
    if (this.#block.length + f.length > this.#maxBlock) return this.#tooBig();
    this.#copyFragment(buf, f.offset, f.offset + f.length);
    if (f.flags & END_HEADERS) {
      const id = this.#blockStream;
      this.#blockStream = 0;
      this.#onBlock(id, this.#block.bytes());
      // A large block's buffer is not kept.
      if (this.#block.buf.length > 16384) this.#block.buf = new Uint8Array(1024);
    }
  }

  /** A whole header block for stream `id`. It is always decoded (HPACK state). */
  #onBlock(id: number, block: Uint8Array): void {
    const fields: string[] = [];
    let r;
    try {
      r = this.#decoder.decode(block, fields, this.#maxList);
    } catch (e) {
      if (e instanceof HpackError) throw connError(COMPRESSION_ERROR, e.message);
      throw e;
    }
    const endStream = (this.#blockFlags & END_STREAM) !== 0;
    const existing = this.#streams.get(id);
    if (existing !== undefined) {
      // Trailers: must end the stream; their content is ignored.
      if (existing.remoteEnded) {
        throw new H2Error(STREAM_CLOSED, id, "HEADERS after END_STREAM (sec. 5.1)");
      }
      if (!endStream) {
        throw new H2Error(PROTOCOL_ERROR, id, "trailers without END_STREAM (sec. 8.1)");
      }
      existing.remoteEnded = true;
      if (!validTrailers(fields)) {
        throw new H2Error(PROTOCOL_ERROR, id, "malformed trailers (sec. 8.1, 8.2.1)");
      }
      if (existing.contentLength >= 0 && existing.received !== existing.contentLength) {
        throw new H2Error(PROTOCOL_ERROR, id, "DATA short of content-length (sec. 8.1.1)");
      }
      // A request body ends with its trailers too (their fields are not passed on).
      existing.body?.end();
      return;
    }
    if (id <= this.#lastStream) {
      // A stream we reset: its trailers in flight are ignored (sec. 5.1); decoded above.
      if (this.#resetByUs.includes(id)) return;
      if (this.#recent.includes(id)) {
        throw connError(STREAM_CLOSED, "HEADERS on a closed stream (sec. 5.1)");
      }
      throw connError(PROTOCOL_ERROR, "stream id not above the last one (sec. 5.1.1)");
    }
    // Past our GOAWAY, new streams are ignored (sec. 6.8).
    if (this.#goaway) return;
    this.#lastStream = id;
    if (this.#blockPriorityDep === id) {
      throw new H2Error(PROTOCOL_ERROR, id, "stream depends on itself (sec. 5.3.1)");
    }
    if (this.#streams.size >= this.#maxStreams || this.#inflight >= 2 * this.#maxStreams) {
      this.#hooks.onEvent?.(EV_REFUSED);
      this.#remember(id);
      // Each refusal costs a RST_STREAM: within the reset budget too (reset flood).
      if (++this.#resets > RESET_LIMIT) {
        this.#hooks.onEvent?.(EV_RAPID_RESET);
        throw connError(ENHANCE_YOUR_CALM, "rapid reset: streams refused again and again");
      }
      this.#rst(id, REFUSED_STREAM);
      return;
    }
    const st = new Stream(id, this.#peer.initialWindowSize);
    st.remoteEnded = endStream;
    this.#streams.set(id, st);
    this.#idleSince = 0;
    if (r.over) {
      this.#hooks.onEvent?.(EV_LIST_TOO_BIG);
      st.tap = this.#hooks.tap();
      return this.#respond(st, errorReply(431));
    }
    const head = this.#toHead(st, fields);
    if (head === null) throw new H2Error(PROTOCOL_ERROR, id, "malformed request (sec. 8.1.1, 8.3)");
    st.head = head;
    const tap = st.tap = this.#hooks.tap();
    if (head.target === "*") {
      return this.#respond(st, head.method === "OPTIONS" ? SERVER_OPTIONS : errorReply(400));
    }
    // The handler's body methods (uploads, WebDAV) get the DATA as `req.body`, as
    // over HTTP/1.1 (write/body.ts): without a Content-Length the body ends with
    // END_STREAM, which HTTP/2 frames reliably (sec. 8.1).
    const bodies = this.#bodies;
    if (bodies !== undefined && bodies.methods.has(head.method)) {
      if (st.contentLength > bodies.maxBytes) return this.#respond(st, errorReply(413));
      const pipe = new BodyPipe(endStream ? 0 : st.contentLength, BODY_HIGH_WATER);
      if (endStream) pipe.end();
      st.body = pipe;
      (head as RequestHead & { body?: unknown }).body = pipe;
    } else if (
      !endStream && st.contentLength < 0 && head.method !== "GET" && head.method !== "HEAD"
    ) {
      // Other bodies are dropped. One without Content-Length would look like no body
      // at all to a stage that writes what it receives: refuse it (411) rather than guess.
      // With a Content-Length the handler sees one was declared and can refuse it itself.
      return this.#respond(st, errorReply(411));
    }
    this.#inflight++;
    let reply;
    try {
      reply = tap.handler(head);
    } catch (e) {
      this.#inflight--;
      console.error(`ringhttpd: handler threw: ${e}`);
      return this.#respond(st, errorReply(500));
    }
    if (reply instanceof Promise) {
      reply.then(
        (rep) => {
          this.#inflight--;
          this.#respond(st, rep);
          this.#kick();
        },
        (e) => {
          this.#inflight--;
          console.error(`ringhttpd: handler failed: ${e}`);
          this.#respond(st, errorReply(500));
          this.#kick();
        },
      );
    } else {
      this.#inflight--;
      this.#respond(st, reply);
    }
  }

  /** Fields -> head, or null when malformed (sec. 8.2, 8.3.1). */
  #toHead(st: Stream, f: string[]): RequestHead | null {
    let method = "", scheme = "", path = "", authority: string | null = null;
    let regular = false;
    let hasHost = false;
    let host: string | null = null;
    const headers: string[] = [];
    let cookie: string | null = null;
    for (let i = 0; i < f.length; i += 2) {
      const name = f[i];
      const value = f[i + 1];
      if (!validValue(value)) return null;
      if (name.charCodeAt(0) === 58 /* : */) {
        if (regular) return null;
        switch (name) {
          case ":method":
            if (method !== "") return null;
            method = value;
            break;
          case ":scheme":
            if (scheme !== "") return null;
            scheme = value;
            break;
          case ":path":
            if (path !== "") return null;
            path = value;
            if (path === "") return null;
            break;
          case ":authority":
            if (authority !== null) return null;
            authority = value;
            break;
          default:
            return null;
        }
        continue;
      }
      regular = true;
      if (!validName(name)) return null;
      if (HOP.has(name) && name !== "date") return null;
      switch (name) {
        case "te":
          if (value !== "trailers") return null;
          break;
        case "cookie":
          // Crumbs are joined again for HTTP/1.1 semantics (sec. 8.2.3).
          cookie = cookie === null ? value : cookie + "; " + value;
          continue;
        case "host":
          hasHost = true;
          host = value;
          break;
        case "content-length": {
          if (!/^[0-9]{1,15}$/.test(value)) return null;
          const n = Number(value);
          if (st.contentLength >= 0 && st.contentLength !== n) return null;
          st.contentLength = n;
          break;
        }
      }
      headers.push(name, value);
    }
    if (method === "" || scheme === "" || path === "") return null;
    if (!validMethod(method) || !validPath(path)) return null;
    if (!validHosts(authority, host)) return null;
    if (path.charCodeAt(0) !== 47 && !(path === "*" && method === "OPTIONS")) return null;
    if (st.remoteEnded && st.contentLength > 0) return null;
    if (cookie !== null) headers.push("cookie", cookie);
    if (authority !== null && !hasHost) headers.unshift("host", authority);
    const q = path.indexOf("?");
    return {
      method,
      target: path,
      path: q < 0 ? path : path.slice(0, q),
      query: q < 0 ? "" : path.slice(q + 1),
      minor: 1,
      headers,
      remote: this.#t.peer,
      user: undefined,
    };
  }

  /** Sends RST_STREAM and remembers we did: the peer's frames in flight are then ignored. */
  #rst(id: number, code: number): void {
    writeRst(this.#out, id, code);
    this.#resetByUs.push(id);
    if (this.#resetByUs.length > RECENT) this.#resetByUs.shift();
  }

  #remember(id: number): void {
    this.#recent.push(id);
    if (this.#recent.length > RECENT) this.#recent.shift();
  }

  // ------------------------------------------------------------ replies

  #respond(st: Stream, reply: Reply): void {
    if (st.done || this.#closed) {
      reply.release?.();
      return;
    }
    st.reply = reply;
    let status = reply.status;
    if (!(status >= 200 && status <= 999) || (reply.length < 0 && reply.stream === undefined)) {
      console.error(`ringhttpd: bad reply (status ${status}, length ${reply.length}): 500`);
      reply.release?.();
      st.reply = reply = errorReply(500);
      status = 500;
    }
    st.status = status;
    const method = st.head?.method;
    const bodiless = status === 204 || status === 304;
    const noBody = bodiless || method === "HEAD" || reply.length === 0;
    const h = this.#hbuf;
    const enc = this.#encoder;
    h.length = 0;
    enc.begin(h);
    enc.status(status, h);
    // A pre-serialised head holds every field (as the HTTP/1.1 engine uses it): its
    // parsed and partly encoded form is cached per head, so a cache hit re-encodes little.
    if (reply.rawHead !== undefined) {
      const raw = rawFields(reply.rawHead);
      for (let i = 0; i < raw.indexed.length; i++) {
        enc.field(raw.indexed[i][0], raw.indexed[i][1], h);
      }
      const literal = bodiless ? raw.literalNoLength : raw.literal;
      h.ensure(literal.length);
      h.buf.set(literal, h.length);
      h.length += literal.length;
    } else {
      const hs = reply.headers;
      for (let i = 0; i < hs.length; i++) {
        const name = hs[i][0].toLowerCase();
        if (HOP.has(name) || name === "content-length") continue;
        enc.field(name, hs[i][1], h);
      }
      if (!bodiless && reply.length >= 0) enc.field("content-length", String(reply.length), h);
    }
    enc.field("date", currentDate(), h);
    const before = this.#out.length;
    writeHeaders(this.#out, st.id, h.bytes(), noBody, this.#peer.maxFrameSize);
    st.bytes += this.#out.length - before;
    if (noBody) {
      this.#endStream(st, 1);
      return;
    }
    st.parts = reply.body;
    st.left = reply.length;
    // Any reply with a `stream` is pulled, also one whose length is known ahead
    // (zip/tar): then it must be exactly that long (checked in #fill and #pull).
    st.streamed = reply.stream !== undefined;
    this.#sending.push(st);
  }

  /** Starts getting the next bytes to send into `st.pending` (sync for bytes parts). */
  #advance(st: Stream): void {
    while (st.part < st.parts.length) {
      const p = st.parts[st.part];
      if (p instanceof Uint8Array) {
        st.part++;
        if (p.length === 0) continue;
        st.pending = p;
        st.pendingOff = 0;
        st.pendingEnd = p.length;
        return;
      }
      if (st.filePos < 0) st.filePos = p.start;
      if (st.filePos >= p.end) {
        st.part++;
        st.filePos = -1;
        continue;
      }
      // Read only when something can be sent: a stalled window pins no buffer;
      // and at most FILE_BUDGET of chunks per connection, whatever the streams.
      if (st.sendWindow <= 0 || this.#sendWindow <= 0 || this.#fileHeld >= FILE_BUDGET) return;
      this.#readFile(st, p);
      return;
    }
    if (st.streamed) {
      if (st.iter === null) {
        const src = st.reply!.stream!;
        st.iter = src[Symbol.asyncIterator]();
      }
      this.#pull(st);
      return;
    }
    // Every part sent, yet `left` is not 0: the parts were shorter than the length.
    if (st.left !== 0) this.#failStream(st, "reply body shorter than its length");
  }

  #readFile(st: Stream, p: FileSlice): void {
    st.loading = true;
    const pos = st.filePos;
    const n = Math.min(FILE_CHUNK, p.end - pos);
    const buf = chunkPool.pop() ?? new Uint8Array(FILE_CHUNK);
    this.#fileHeld += FILE_CHUNK;
    (async () => {
      if (pos === p.start) await p.file.seek(pos, Deno.SeekMode.Start);
      let got = 0;
      while (got < n) {
        const r = await p.file.read(buf.subarray(got, n));
        if (r === null || r === 0) break;
        got += r;
      }
      return got;
    })().then(
      (got) => {
        st.loading = false;
        if (st.done) {
          this.#putChunk(buf);
          return;
        }
        if (got === 0) {
          this.#putChunk(buf);
          return this.#failStream(st, "file shorter than its Content-Length");
        }
        st.filePos += got;
        st.pending = buf;
        st.pooled = true;
        st.pendingOff = 0;
        st.pendingEnd = got;
        this.#kick();
      },
      (e) => {
        st.loading = false;
        this.#putChunk(buf);
        if (!st.done) this.#failStream(st, `file read failed: ${e}`);
      },
    );
  }

  #pull(st: Stream): void {
    st.loading = true;
    st.iter!.next().then(
      (r) => {
        st.loading = false;
        if (st.done) return;
        if (r.done) {
          // A known length not reached: RST_STREAM, so the client sees the body
          // as incomplete (HTTP/1.1 closes the connection there).
          if (st.left > 0) return this.#failStream(st, `stream ended ${st.left} bytes short`);
          // End of the stream (a known length was met, or none was announced): an
          // empty DATA with END_STREAM, sent only now so an overshoot is still caught.
          const before = this.#out.length;
          writeData(this.#out, st.id, new Uint8Array(0), 0, 0, true);
          st.bytes += this.#out.length - before;
          this.#endStream(st, 1);
        } else if (r.value.length > 0) {
          st.pending = r.value;
          st.pooled = false;
          st.pendingOff = 0;
          st.pendingEnd = r.value.length;
        } else {
          return this.#pull(st);
        }
        this.#kick();
      },
      (e) => {
        st.loading = false;
        if (!st.done) this.#failStream(st, `body stream failed: ${e}`);
      },
    );
  }

  /** File chunk buffers this connection holds (read or being read). */
  #fileHeld = 0;

  #putChunk(buf: Uint8Array): void {
    // A stream may be waiting for the budget: look again.
    if (this.#fileHeld >= FILE_BUDGET) this.#kick();
    this.#fileHeld -= FILE_CHUNK;
    if (chunkPool.length < CHUNK_POOL_MAX) chunkPool.push(buf);
  }

  #failStream(st: Stream, why: string): void {
    console.error(`ringhttpd: h2 stream ${st.id}: ${why}`);
    this.#rst(st.id, INTERNAL_ERROR);
    this.#endStream(st, -1);
    this.#kick();
  }

  /** Frames DATA from the sending streams into the output, within the windows. */
  #fill(): void {
    const out = this.#out;
    let list = this.#sending;
    if (list.length === 0) return;
    const maxFrame = this.#peer.maxFrameSize;
    let finished = false;
    for (let i = 0; i < list.length && out.length < HIGH_WATER; i++) {
      const st = list[i];
      while (!st.done && out.length < HIGH_WATER) {
        if (st.pending === null) {
          if (st.loading) break;
          this.#advance(st);
          if (st.pending === null) break;
        }
        // Bytes past the announced length: only a stream can have them (a
        // parts-only reply ends at `last`); cut it, never send a wrong body.
        if (st.left === 0) {
          this.#failStream(st, "stream passed its length");
          break;
        }
        let n = Math.min(st.pendingEnd - st.pendingOff, st.sendWindow, this.#sendWindow, maxFrame);
        // Never past the length we announced (parts longer than it are cut).
        if (st.left >= 0 && n > st.left) n = st.left;
        if (n <= 0) break;
        // A stream's end is known only when it says so (#pull), even at its length.
        const last = st.left === n && !st.streamed;
        const before = out.length;
        writeData(out, st.id, st.pending, st.pendingOff, st.pendingOff + n, last);
        st.bytes += out.length - before;
        st.pendingOff += n;
        st.sendWindow -= n;
        this.#sendWindow -= n;
        if (st.left >= 0) st.left -= n;
        this.#progress++;
        if (st.pendingOff === st.pendingEnd) {
          if (st.pooled) this.#putChunk(st.pending);
          st.pending = null;
          st.pooled = false;
        }
        if (last) this.#endStream(st, 1);
      }
      if (st.done) finished = true;
    }
    if (finished) {
      list = list.filter((s) => !s.done);
      this.#sending = list;
    }
  }

  /**
   * Ends a stream: `how` 1 = we sent END_STREAM, -1 = reset (either side).
   * Releases the reply once, reports the response.
   */
  #endStream(st: Stream, how: number): void {
    if (st.done) return;
    if (how === 1) {
      st.localEnded = true;
      // The response is complete while the peer still sends a body (which we drop):
      // ask it to stop without error (sec. 8.1).
      if (!st.remoteEnded) this.#rst(st.id, NO_ERROR);
    }
    this.#finish(st);
  }

  #finish(st: Stream): void {
    st.done = true;
    // A body cut by a reset or a closed connection: the stage's read throws and it
    // removes its temporary file (a no-op once the body ended).
    st.body?.fail(new BodyError(400, "the HTTP/2 stream ended before its request body"));
    this.#streams.delete(st.id);
    this.#remember(st.id);
    if (st.pending !== null && st.pooled) this.#putChunk(st.pending);
    st.pending = null;
    if (st.iter !== null && !st.loading) st.iter.return?.()?.catch?.(() => {});
    else if (st.iter !== null) {
      const it = st.iter;
      queueMicrotask(() => it.return?.()?.catch?.(() => {}));
    }
    if (!st.released && st.reply !== null) {
      st.released = true;
      try {
        st.reply.release?.();
      } catch {
        // A release hook failing must not take the connection down.
      }
    }
    if (st.tap !== null && st.status !== 0) st.tap.onResponse(st.head, st.status, st.bytes, true);
    if (this.#streams.size === 0) {
      if (this.#goaway) this.#closeAfterFlush = true;
      if (this.#peerGoaway) this.#closeAfterFlush = true;
      if (this.#closeAfterFlush) this.#kick();
    }
  }

  // ------------------------------------------------------------ output

  #kick(): void {
    if (this.#kicked || this.#writing || this.#closed) return;
    this.#kicked = true;
    queueMicrotask(() => {
      this.#kicked = false;
      if (!this.#writing) this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#writing || this.#closed) return;
    this.#writing = true;
    try {
      while (!this.#closed) {
        this.#fill();
        if (this.#out.length === 0) break;
        const w = this.#out;
        this.#out = this.#spare;
        this.#spare = w;
        const r = this.#t.write(w.bytes());
        if (r !== undefined) await r;
        w.length = 0;
        // A large burst's buffer is not kept by an idle connection.
        if (w.buf.length > 2 * HIGH_WATER) w.buf = new Uint8Array(16384);
        this.#progress++;
        if (this.#waiters.length > 0 && this.#out.length < HIGH_WATER) {
          const ws = this.#waiters;
          this.#waiters = [];
          for (const f of ws) f();
        }
      }
    } catch {
      this.#close();
      return;
    } finally {
      this.#writing = false;
    }
    if (this.#closeAfterFlush && !this.#closed) return this.#close();
    // All written: both buffers go back to the thread's pool until the next write.
    if (!this.#closed && this.#out.length === 0) {
      this.#out.release();
      this.#spare.release();
    }
  }

  #error(e: unknown): void {
    if (!(e instanceof H2Error)) {
      console.error(`ringhttpd: h2 engine error: ${e}`);
      e = connError(INTERNAL_ERROR, String(e));
    }
    let err = e as H2Error;
    // Each stream error costs us a RST_STREAM: within the peer's reset budget (reset flood).
    if (err.stream !== 0 && ++this.#resets > RESET_LIMIT) {
      this.#hooks.onEvent?.(EV_RAPID_RESET);
      err = connError(ENHANCE_YOUR_CALM, "rapid reset: too many stream errors");
    }
    if (err.stream !== 0) {
      this.#rst(err.stream, err.code);
      const st = this.#streams.get(err.stream);
      if (st !== undefined) this.#endStream(st, -1);
      else this.#remember(err.stream);
      this.#kick();
      return;
    }
    if (err.code !== ENHANCE_YOUR_CALM) this.#hooks.onEvent?.(EV_PROTOCOL_ERROR);
    writeGoaway(this.#out, this.#lastStream, err.code);
    this.#goaway = true;
    this.#closeAfterFlush = true;
    // Streams in flight are abandoned: a connection error ends them all.
    for (const st of [...this.#streams.values()]) this.#endStream(st, -1);
    this.#sending = [];
    this.#kick();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const st of [...this.#streams.values()]) this.#finish(st);
    this.#sending = [];
    try {
      this.#t.close();
    } catch {
      // Already closed.
    }
    for (const f of this.#waiters) f();
    this.#waiters = [];
    this.#hooks.onClose?.();
    for (const f of this.#onClosed) f();
    this.#onClosed = [];
  }
}

/** Field names: lower-case token characters only (sec. 8.2.1). */
function validName(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || (c >= 0x41 && c <= 0x5a) || c === 0x3a) return false;
  }
  return s.length > 0;
}

/** Trailers: regular fields only, valid as in a head, no connection-specific one (sec. 8.1). */
function validTrailers(f: string[]): boolean {
  for (let i = 0; i < f.length; i += 2) {
    const name = f[i];
    if (!validName(name) || !validValue(f[i + 1])) return false;
    if (HOP.has(name) && name !== "date") return false;
    if (name === "te" && f[i + 1] !== "trailers") return false;
  }
  return true;
}

/**
 * `:authority` and Host as the HTTP/1.1 parser takes Host: a host[:port] without
 * userinfo (sec. 8.3.1), and the same one when both are sent (sec. 8.3.1: a
 * server SHOULD refuse a Host naming another entity).
 */
function validHosts(authority: string | null, host: string | null): boolean {
  if (authority !== null && (authority.includes("@") || !validAuthority(authority))) return false;
  if (host !== null && !validAuthority(host)) return false;
  return authority === null || host === null || authority.toLowerCase() === host.toLowerCase();
}

/** `:method` is a token (RFC 9110 sec. 9.1), as the HTTP/1.1 parser requires. */
function validMethod(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || '"(),/:;<=>?@[\\]{}'.includes(s[i])) return false;
  }
  return true;
}

/** `:path`: visible ASCII only (RFC 3986; the HTTP/1.1 parser's target rule). */
function validPath(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

/** Field values: no NUL, CR or LF, no leading or trailing whitespace (sec. 8.2.1). */
function validValue(s: string): boolean {
  const n = s.length;
  if (n === 0) return true;
  let c = s.charCodeAt(0);
  if (c === 0x20 || c === 0x09) return false;
  c = s.charCodeAt(n - 1);
  if (c === 0x20 || c === 0x09) return false;
  for (let i = 0; i < n; i++) {
    c = s.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) return false;
  }
  return true;
}
