/**
 * The access log: workers encode one fixed-size record per response into
 * their own {@linkcode ByteRing}; the supervisor drains every ring on a timer
 * (and once more at shutdown) and writes Combined or Common Log Format lines,
 * buffered, to stdout or a file. A full ring drops the record and counts it
 * (`LOG_DROPPED`): a worker never waits for the log.
 *
 * Record layout (512 bytes, little-endian; text fields are the request's
 * bytes as received: the parser decodes heads as latin1, so one char is one
 * byte; longer values are cut to the field size and marked with `...`):
 *
 * ```text
 * 0    f64  request start, ms since the epoch
 * 8    f64  duration, whole ms (handler call -> last byte handed to the kernel)
 * 16   f64  bytes written (head included; Apache %O, nginx $bytes_sent)
 * 24   u16  status
 * 26   u8   HTTP version: 0 1.0, 1 1.1, 2 HTTP/2; 255: no request line (engine error)
 * 27   u8   flags: 1 target cut, 2 referer cut, 4 user-agent cut, 8 user cut
 * 28   u8   method length     29 u8 remote length
 * 30   u16  target length     32 u8 referer length   33 u8 user-agent length
 * 34   u8   user length (0: anonymous)
 * 40   [48]  remote address (text)
 * 88   [16]  method
 * 104  [216] request target
 * 320  [64]  Referer
 * 384  [32]  authenticated user or token name (UTF-8; `req.user`, never the Authorization value)
 * 416  [96]  User-Agent
 * ```
 *
 * Line format (nginx's `combined`; `common` stops after the byte count).
 * Bytes outside printable ASCII, `"` and `\` are written as `\xHH`:
 *
 * ```text
 * 127.0.0.1 - - [26/Nov/2026:11:57:29 +0000] "GET /a.txt HTTP/1.1" 200 1187 "-" "curl/8.5.0"
 * 127.0.0.1 - alice [26/Nov/2026:11:57:30 +0000] "GET /private/ HTTP/1.1" 200 913 "-" "curl/8.5.0"
 * ```
 *
 * @module
 */
import { ByteRing } from "../queue/byte_ring.ts";
import type { Handler, RequestHead } from "../http/types.ts";
import { CounterWriter, LOG_DROPPED, LOGGED } from "./_metrics.ts";
import { peerAddress } from "./_libc.ts";

const userBytes = new TextEncoder();

/** Bytes per record. */
export const RECORD_BYTES = 512;
const O_STATUS = 24, O_MINOR = 26, O_FLAGS = 27, O_METHOD_LEN = 28, O_REMOTE_LEN = 29;
const O_TARGET_LEN = 30, O_REFERER_LEN = 32, O_UA_LEN = 33, O_USER_LEN = 34;
const F_REMOTE = 40, N_REMOTE = 48;
const F_METHOD = 88, N_METHOD = 16;
const F_TARGET = 104, N_TARGET = 216;
const F_REFERER = 320, N_REFERER = 64;
const F_USER = 384, N_USER = 32;
const F_UA = 416, N_UA = 96;

/** Line layouts. */
export type LogFormat = "combined" | "common";

/** Copies `s` (latin1: char = byte) into `b` at `at`, at most `max` bytes; returns the count. */
function put(b: Uint8Array, at: number, s: string, max: number): number {
  const n = s.length < max ? s.length : max;
  for (let i = 0; i < n; i++) b[at + i] = s.charCodeAt(i);
  return n;
}

function header(req: RequestHead, name: string): string | undefined {
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

/** Per-connection observers for one worker's connections. */
export interface ConnectionTap {
  /** The handler to run this connection's requests with. */
  handler: Handler;
  /**
   * The engine's per-response hook; `h2` marks a response sent over HTTP/2
   * (the request head says 1.1, which the handler's rules follow).
   */
  onResponse(req: RequestHead | null, status: number, bytes: number, h2?: boolean): void;
}

/**
 * The worker side: counts every response, and (when logging) encodes one
 * record per response into the worker's log ring.
 */
export class AccessLogProducer {
  readonly #ring: ByteRing | undefined;
  readonly #counters: CounterWriter;
  readonly #handler: Handler;
  readonly #shared: ConnectionTap;
  readonly #unlogged: string | undefined;

  /**
   * @param handler the worker's handler
   * @param counters this worker's counters
   * @param ring this worker's log ring; undefined when logging is off
   * @param unlogged a request path whose responses are counted but not
   *   logged (the health path: probes every few seconds would flood the log)
   */
  constructor(
    handler: Handler,
    counters: CounterWriter,
    ring?: SharedArrayBuffer,
    unlogged?: string,
  ) {
    this.#unlogged = unlogged;
    this.#handler = handler;
    this.#counters = counters;
    this.#ring = ring === undefined ? undefined : new ByteRing(ring);
    // Logging off: one tap shared by every connection (no allocation).
    this.#shared = {
      handler,
      onResponse: (_req, status, bytes) => counters.response(status, bytes),
    };
  }

  /** Whether records are written (`remote` is only looked at then). */
  get logging(): boolean {
    return this.#ring !== undefined;
  }

  /**
   * The observers of one connection.
   *
   * @param remote the socket fd (its address then comes from `getpeername`),
   *   or the peer's address (`Deno.Conn.remoteAddr`); only used when logging
   */
  tap(remote: number | Deno.Addr): ConnectionTap {
    if (this.#ring === undefined) return this.#shared;
    // Responses on one connection are sequential: one start time suffices.
    // Date.now(), not performance.now(): ~60 ns against ~150 ns here (the
    // latter made a syscall per call), twice per response.
    let start = 0;
    const inner = this.#handler;
    const addr = typeof remote === "number"
      ? peerAddress(remote)
      : "hostname" in remote
      ? remote.hostname
      : "-";
    return {
      handler: (req) => {
        start = Date.now();
        return inner(req);
      },
      onResponse: (req, status, bytes, h2) => {
        this.#counters.response(status, bytes);
        if (req !== null && req.path === this.#unlogged) return;
        const now = Date.now();
        this.#record(req, status, bytes, addr, req === null ? now : start, now, h2 === true);
      },
    };
  }

  #record(
    req: RequestHead | null,
    status: number,
    bytes: number,
    remote: string,
    start: number,
    end: number,
    h2: boolean,
  ): void {
    const ring = this.#ring!;
    const at = ring.claim();
    if (at < 0) {
      this.#counters.add(LOG_DROPPED, 1);
      return;
    }
    const b = ring.bytes;
    const f = ring.f64;
    const k = at >> 3;
    f[k] = start;
    f[k + 1] = end - start;
    f[k + 2] = bytes;
    b[at + O_STATUS] = status & 0xff;
    b[at + O_STATUS + 1] = status >> 8;
    b[at + O_REMOTE_LEN] = put(b, at + F_REMOTE, remote, N_REMOTE);
    let flags = 0;
    if (req === null) {
      b[at + O_MINOR] = 255;
      b[at + O_METHOD_LEN] = 0;
      b[at + O_TARGET_LEN] = 0;
      b[at + O_TARGET_LEN + 1] = 0;
      b[at + O_REFERER_LEN] = 0;
      b[at + O_UA_LEN] = 0;
      b[at + O_USER_LEN] = 0;
    } else {
      b[at + O_MINOR] = h2 ? 2 : req.minor;
      b[at + O_METHOD_LEN] = put(b, at + F_METHOD, req.method, N_METHOD);
      const t = put(b, at + F_TARGET, req.target, N_TARGET);
      if (t < req.target.length) flags |= 1;
      b[at + O_TARGET_LEN] = t & 0xff;
      b[at + O_TARGET_LEN + 1] = t >> 8;
      const referer = header(req, "referer");
      if (referer === undefined) b[at + O_REFERER_LEN] = 0;
      else {
        const n = put(b, at + F_REFERER, referer, N_REFERER);
        if (n < referer.length) flags |= 2;
        b[at + O_REFERER_LEN] = n;
      }
      const ua = header(req, "user-agent");
      if (ua === undefined) b[at + O_UA_LEN] = 0;
      else {
        const n = put(b, at + F_UA, ua, N_UA);
        if (n < ua.length) flags |= 4;
        b[at + O_UA_LEN] = n;
      }
    }
    if (req === null || req.user === undefined) {
      if (req !== null) b[at + O_USER_LEN] = 0;
    } else {
      const r = userBytes.encodeInto(req.user, b.subarray(at + F_USER, at + F_USER + N_USER));
      if (r.read < req.user.length) flags |= 8;
      b[at + O_USER_LEN] = r.written;
    }
    b[at + O_FLAGS] = flags;
    ring.commit();
    this.#counters.add(LOGGED, 1);
  }
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const HEX = "0123456789ABCDEF";
const DASH = 0x2d, SPACE = 0x20, QUOTE = 0x22;
const enc = new TextEncoder();

const pad2 = (n: number) => (n < 10 ? "0" : "") + n;

/** `[26/Nov/2026:11:57:29 +0000]` in local time. */
export function clfTime(ms: number): string {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const a = Math.abs(off);
  return `[${pad2(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad2(d.getHours())}:${
    pad2(d.getMinutes())
  }:${pad2(d.getSeconds())} ${off < 0 ? "-" : "+"}${pad2(Math.floor(a / 60))}${pad2(a % 60)}]`;
}

/**
 * Formats records into log lines in a growing byte buffer. Pure apart from
 * the clock-free time cache: one instance per consumer.
 */
export class LineWriter {
  /** Pending output; `length` bytes are valid. */
  buf = new Uint8Array(1 << 16);
  length = 0;
  readonly #combined: boolean;
  #second = -1;
  #time = new Uint8Array(0);
  #src: Uint8Array | null = null;
  #f64: Float64Array<ArrayBufferLike> = new Float64Array(0);

  /** @param format the line layout */
  constructor(format: LogFormat) {
    this.#combined = format === "combined";
  }

  #ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    b.set(this.buf.subarray(0, this.length));
    this.buf = b;
  }

  #byte(c: number): void {
    this.buf[this.length++] = c;
  }

  #ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.buf[this.length++] = s.charCodeAt(i);
  }

  /** A non-negative integer in decimal, without making a string. */
  #int(v: number): void {
    if (v < 10) {
      this.buf[this.length++] = 0x30 + v;
      return;
    }
    let digits = 1;
    for (let p = 10; p <= v; p *= 10) digits++;
    let i = this.length + digits;
    this.length = i;
    while (digits-- > 0) {
      this.buf[--i] = 0x30 + (v % 10);
      v = Math.floor(v / 10);
    }
  }

  /** Copies `n` bytes at `at`, escaping as nginx does. */
  #escaped(src: Uint8Array, at: number, n: number): void {
    const out = this.buf;
    for (let i = 0; i < n; i++) {
      const c = src[at + i];
      if (c < 0x20 || c >= 0x7f || c === QUOTE || c === 0x5c) {
        out[this.length++] = 0x5c;
        out[this.length++] = 0x78;
        out[this.length++] = HEX.charCodeAt(c >> 4);
        out[this.length++] = HEX.charCodeAt(c & 15);
      } else out[this.length++] = c;
    }
  }

  /**
   * Appends the line of the record at byte `at` of `src`.
   *
   * @param src a log ring's bytes
   * @param at the record's offset
   */
  append(src: Uint8Array, at: number): void {
    // Worst case: every text byte escaped (4x), plus fixed parts.
    this.#ensure(4 * RECORD_BYTES + 128);
    if (src !== this.#src) {
      this.#src = src;
      this.#f64 = new Float64Array(src.buffer, src.byteOffset, src.byteLength >> 3);
    }
    const start = this.#f64[at >> 3];
    const bytes = this.#f64[(at >> 3) + 2];
    const second = Math.floor(start / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#time = enc.encode(clfTime(start));
    }
    const remoteLen = src[at + O_REMOTE_LEN];
    if (remoteLen === 0) this.#byte(DASH);
    else this.#escaped(src, at + F_REMOTE, remoteLen);
    const userLen = src[at + O_USER_LEN];
    if (userLen === 0) this.#ascii(" - - ");
    else {
      this.#ascii(" - ");
      this.#escaped(src, at + F_USER, userLen);
      if ((src[at + O_FLAGS] & 8) !== 0) this.#ascii("...");
      this.#byte(SPACE);
    }
    this.buf.set(this.#time, this.length);
    this.length += this.#time.length;
    this.#byte(SPACE);
    this.#byte(QUOTE);
    const minor = src[at + O_MINOR];
    const flags = src[at + O_FLAGS];
    if (minor === 255) this.#byte(DASH);
    else {
      this.#escaped(src, at + F_METHOD, src[at + O_METHOD_LEN]);
      this.#byte(SPACE);
      this.#escaped(src, at + F_TARGET, src[at + O_TARGET_LEN] | (src[at + O_TARGET_LEN + 1] << 8));
      if (flags & 1) this.#ascii("...");
      this.#ascii(minor === 0 ? " HTTP/1.0" : minor === 2 ? " HTTP/2.0" : " HTTP/1.1");
    }
    this.#byte(QUOTE);
    this.#byte(SPACE);
    this.#int(src[at + O_STATUS] | (src[at + O_STATUS + 1] << 8));
    this.#byte(SPACE);
    this.#int(bytes);
    if (this.#combined) {
      this.#quoted(src, at + F_REFERER, src[at + O_REFERER_LEN], (flags & 2) !== 0);
      this.#quoted(src, at + F_UA, src[at + O_UA_LEN], (flags & 4) !== 0);
    }
    this.#byte(0x0a);
  }

  #quoted(src: Uint8Array, at: number, n: number, cut: boolean): void {
    this.#byte(SPACE);
    this.#byte(QUOTE);
    if (n === 0) this.#byte(DASH);
    else this.#escaped(src, at, n);
    if (cut) this.#ascii("...");
    this.#byte(QUOTE);
  }
}

/** Where lines go. */
export interface LogSink {
  write(bytes: Uint8Array): Promise<number>;
  close?(): void;
}

/**
 * The supervisor side: drains every worker's log ring every `intervalMs`
 * (sooner while a ring is more than half full) and writes the lines to the
 * sink. Writes are awaited one batch at a time; a slow sink only makes the
 * rings fill (and then drop), never the workers wait.
 */
export class AccessLogDrain {
  readonly #rings: ByteRing[];
  readonly #lines: LineWriter;
  readonly #sink: LogSink;
  readonly #intervalMs: number;
  #timer?: ReturnType<typeof setTimeout>;
  #running: Promise<void> | null = null;
  #stopped = false;

  /**
   * @param rings every worker's log ring, in slot order
   * @param format line layout
   * @param sink where lines go
   * @param intervalMs how often the rings are drained
   */
  constructor(rings: SharedArrayBuffer[], format: LogFormat, sink: LogSink, intervalMs: number) {
    this.#rings = rings.map((r) => new ByteRing(r));
    this.#lines = new LineWriter(format);
    this.#sink = sink;
    this.#intervalMs = intervalMs;
    this.#schedule(intervalMs);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.flush().catch((e) => {
        // A bug here must not take the server down: say it, keep draining.
        console.error(`ringhttpd: access log: ${e instanceof Error ? e.message : e}`);
        return false;
      }).then((busy) => {
        this.#running = null;
        this.#schedule(busy ? 0 : this.#intervalMs);
      });
    }, ms);
  }

  /**
   * Drains every ring once and writes the lines.
   *
   * @returns whether a ring was more than half full (drain again soon)
   */
  async flush(): Promise<boolean> {
    let busy = false;
    const lines = this.#lines;
    const append = (b: Uint8Array, at: number) => lines.append(b, at);
    for (const ring of this.#rings) {
      if (ring.size() * 2 > ring.capacity) busy = true;
      ring.drain(append);
    }
    if (lines.length > 0) {
      // Nothing appends while this awaits: flush is never re-entered.
      const out = lines.buf.subarray(0, lines.length);
      lines.length = 0;
      try {
        for (let off = 0; off < out.length;) off += await this.#sink.write(out.subarray(off));
      } catch (e) {
        console.error(`ringhttpd: access log write failed: ${(e as Error).message}`);
      }
    }
    return busy;
  }

  /** Stops the timer, drains what is left (call after the workers stopped), closes the sink. */
  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    await this.flush();
    this.#sink.close?.();
  }
}

/**
 * Opens the log destination: `"-"` is stdout, anything else a file opened
 * for appending (created if missing).
 */
export function openSink(path: string): LogSink {
  if (path === "-") return { write: (b) => Deno.stdout.write(b) };
  const file = Deno.openSync(path, { write: true, append: true, create: true });
  return { write: (b) => file.write(b), close: () => file.close() };
}
