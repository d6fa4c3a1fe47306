/**
 * A raw HTTP/2 client for the tests: frames written byte by byte over a TLS
 * socket (ALPN h2), frames read back as they come. Private to the tests.
 *
 * @module
 */
import { ByteWriter, Decoder, Encoder } from "./hpack.ts";
import {
  CONTINUATION,
  END_HEADERS,
  END_STREAM,
  GOAWAY,
  HEADERS,
  PREFACE,
  RST_STREAM,
  SETTINGS,
  u32,
  writeFrameHeader,
} from "./frames.ts";

/** A frame read back. */
export interface InFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Uint8Array;
  /** The decoded fields, on the frame that ends a header block. */
  fields?: Map<string, string>;
}

/** The fields of a GET of `path`. */
export function get(path: string, extra: [string, string][] = []): [string, string][] {
  return [[":method", "GET"], [":scheme", "https"], [":path", path], [
    ":authority",
    "localhost",
  ], ...extra];
}

/** One raw h2 connection. */
export class RawH2 {
  readonly conn: Deno.TlsConn;
  readonly encoder = new Encoder();
  readonly decoder = new Decoder();
  #buf = new Uint8Array(0);
  #eof = false;
  #reading: Promise<number | null> | undefined;
  readonly #chunk = new Uint8Array(65536);
  /** Frames read so far that nobody took. */
  readonly frames: InFrame[] = [];

  private constructor(conn: Deno.TlsConn) {
    this.conn = conn;
  }

  /**
   * Connects and (unless `preface` is false) sends the preface and `settings`.
   */
  static async open(
    port: number,
    ca: string,
    o: { preface?: boolean; settings?: Array<[number, number]> } = {},
  ): Promise<RawH2> {
    const conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port,
      caCerts: [ca],
      alpnProtocols: ["h2"],
    });
    const hs = await conn.handshake();
    if (hs.alpnProtocol !== "h2") throw new Error(`ALPN gave ${hs.alpnProtocol}`);
    const c = new RawH2(conn);
    if (o.preface !== false) {
      await c.send(PREFACE);
      await c.frame(SETTINGS, 0, 0, settingsPayload(o.settings ?? []));
    }
    return c;
  }

  /** Writes raw bytes (false when the server has closed). */
  async send(bytes: Uint8Array): Promise<boolean> {
    try {
      let off = 0;
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
      return true;
    } catch {
      return false;
    }
  }

  /** Bytes of one frame. */
  static frameBytes(type: number, flags: number, stream: number, payload: Uint8Array): Uint8Array {
    const w = new ByteWriter(payload.length + 9);
    writeFrameHeader(w, payload.length, type, flags, stream);
    w.ensure(payload.length);
    w.buf.set(payload, w.length);
    w.length += payload.length;
    return w.bytes().slice();
  }

  /** Writes one frame. */
  frame(type: number, flags: number, stream: number, payload: Uint8Array): Promise<boolean> {
    return this.send(RawH2.frameBytes(type, flags, stream, payload));
  }

  /** An HPACK block of `fields` (this connection's encoder). */
  block(fields: [string, string][]): Uint8Array {
    const w = new ByteWriter();
    this.encoder.encode(fields, w);
    return w.bytes().slice();
  }

  /** Sends HEADERS (END_HEADERS unless `endHeaders` is false). */
  headers(
    stream: number,
    fields: [string, string][],
    o: { endStream?: boolean; endHeaders?: boolean } = {},
  ): Promise<boolean> {
    const flags = (o.endStream !== false ? END_STREAM : 0) |
      (o.endHeaders !== false ? END_HEADERS : 0);
    return this.frame(HEADERS, flags, stream, this.block(fields));
  }

  /** Reads the next frame; null at EOF or after `timeoutMs`. */
  async next(timeoutMs = 5000): Promise<InFrame | null> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      if (this.#buf.length >= 9) {
        const len = (this.#buf[0] << 16) | (this.#buf[1] << 8) | this.#buf[2];
        if (this.#buf.length >= 9 + len) {
          const f: InFrame = {
            type: this.#buf[3],
            flags: this.#buf[4],
            stream: u32(this.#buf, 5) & 0x7fffffff,
            payload: this.#buf.slice(9, 9 + len),
          };
          this.#buf = this.#buf.slice(9 + len);
          this.#decode(f);
          return f;
        }
      }
      if (this.#eof) return null;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      // One read at a time, kept across timeouts (a read given up on would lose its bytes).
      this.#reading ??= this.conn.read(this.#chunk).catch(() => null);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.#reading,
        new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), left)),
      ]);
      clearTimeout(timer);
      if (n === "timeout") continue;
      this.#reading = undefined;
      if (n === null) {
        this.#eof = true;
        continue;
      }
      const chunk = this.#chunk;
      const next = new Uint8Array(this.#buf.length + n);
      next.set(this.#buf);
      next.set(chunk.subarray(0, n), this.#buf.length);
      this.#buf = next;
    }
  }

  /**
   * Reads frames until `pred` matches one (returned) or EOF / timeout (null).
   * Every frame read is also kept in `frames`.
   */
  async until(pred: (f: InFrame) => boolean, timeoutMs = 5000): Promise<InFrame | null> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const f = await this.next(Math.max(1, deadline - Date.now()));
      if (f === null) return null;
      this.frames.push(f);
      if (pred(f)) return f;
    }
  }

  /** The error code of the GOAWAY that comes next (reading on), or -1 at EOF without one. */
  async goaway(timeoutMs = 5000): Promise<number> {
    const f = await this.until((f) => f.type === GOAWAY, timeoutMs);
    return f === null ? -1 : u32(f.payload, 4);
  }

  /** The code of the RST_STREAM on `stream`, or -1. */
  async rst(stream: number, timeoutMs = 5000): Promise<number> {
    const f = await this.until((f) => f.type === RST_STREAM && f.stream === stream, timeoutMs);
    return f === null ? -1 : u32(f.payload, 0);
  }

  /** The response fields on `stream` (HEADERS + CONTINUATION, decoded). */
  async response(stream: number, timeoutMs = 5000): Promise<Map<string, string> | null> {
    const f = await this.until((f) => f.stream === stream && f.fields !== undefined, timeoutMs);
    return f?.fields ?? null;
  }

  #block: Uint8Array | null = null;

  /** Every header block is decoded as it arrives (in order: the HPACK table depends on it). */
  #decode(f: InFrame): void {
    if (f.type !== HEADERS && f.type !== CONTINUATION) return;
    const prev = f.type === CONTINUATION && this.#block ? this.#block : new Uint8Array(0);
    const block = new Uint8Array(prev.length + f.payload.length);
    block.set(prev);
    block.set(f.payload, prev.length);
    if ((f.flags & END_HEADERS) === 0) {
      this.#block = block;
      return;
    }
    this.#block = null;
    const out: string[] = [];
    this.decoder.decode(block, out, 1 << 20);
    f.fields = new Map();
    for (let i = 0; i < out.length; i += 2) f.fields.set(out[i], out[i + 1]);
  }

  /** Waits until the server closes (EOF), discarding frames; false on timeout. */
  async closed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const f = await this.next(Math.max(1, deadline - Date.now()));
      if (f === null) return this.#eof;
    }
    return false;
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** A SETTINGS payload. */
export function settingsPayload(entries: Array<[number, number]>): Uint8Array {
  const p = new Uint8Array(entries.length * 6);
  entries.forEach(([id, v], i) => {
    p[i * 6] = id >> 8;
    p[i * 6 + 1] = id & 0xff;
    new DataView(p.buffer).setUint32(i * 6 + 2, v);
  });
  return p;
}

/** A 4-octet big-endian payload (RST_STREAM, WINDOW_UPDATE). */
export function u32Payload(v: number): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, v);
  return p;
}
