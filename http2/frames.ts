/**
 * HTTP/2 frames (RFC 9113 sec. 4 and 6): the 9-octet header, each frame
 * type's payload checks, and writers into a {@linkcode ByteWriter}.
 *
 * Parsing works on offsets into the caller's buffer (nothing is copied);
 * each check throws an {@linkcode H2Error} naming the RFC clause and whether
 * it is a connection error (stream 0) or a stream error.
 *
 * @module
 */
import { ByteWriter } from "./hpack.ts";

/** Frame types (sec. 6). */
export const DATA = 0x0,
  HEADERS = 0x1,
  PRIORITY = 0x2,
  RST_STREAM = 0x3,
  SETTINGS = 0x4,
  PUSH_PROMISE = 0x5,
  PING = 0x6,
  GOAWAY = 0x7,
  WINDOW_UPDATE = 0x8,
  CONTINUATION = 0x9;

/** Flags. */
export const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY_FLAG = 0x20;

/** Error codes (sec. 7). */
export const NO_ERROR = 0x0,
  PROTOCOL_ERROR = 0x1,
  INTERNAL_ERROR = 0x2,
  FLOW_CONTROL_ERROR = 0x3,
  SETTINGS_TIMEOUT = 0x4,
  STREAM_CLOSED = 0x5,
  FRAME_SIZE_ERROR = 0x6,
  REFUSED_STREAM = 0x7,
  CANCEL = 0x8,
  COMPRESSION_ERROR = 0x9,
  CONNECT_ERROR = 0xa,
  ENHANCE_YOUR_CALM = 0xb,
  INADEQUATE_SECURITY = 0xc,
  HTTP_1_1_REQUIRED = 0xd;

/** Settings identifiers (sec. 6.5.2). */
export const SETTINGS_HEADER_TABLE_SIZE = 0x1,
  SETTINGS_ENABLE_PUSH = 0x2,
  SETTINGS_MAX_CONCURRENT_STREAMS = 0x3,
  SETTINGS_INITIAL_WINDOW_SIZE = 0x4,
  SETTINGS_MAX_FRAME_SIZE = 0x5,
  SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** The client connection preface (sec. 3.4). */
export const PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** Frame header length. */
export const FRAME_HEADER = 9;
/** Smallest and largest SETTINGS_MAX_FRAME_SIZE (sec. 6.5.2). */
export const MIN_MAX_FRAME = 16384, MAX_MAX_FRAME = 16777215;
/** Largest flow-control window (sec. 6.9.1). */
export const MAX_WINDOW = 2147483647;

/**
 * A protocol error: `stream` 0 is a connection error (GOAWAY), otherwise a
 * stream error (RST_STREAM on that stream).
 */
export class H2Error extends Error {
  override name = "H2Error";
  /**
   * @param code the error code sent
   * @param stream 0 for a connection error
   * @param message what was wrong, with the RFC clause
   */
  constructor(readonly code: number, readonly stream: number, message: string) {
    super(message);
  }
}

/** A connection error. */
export function connError(code: number, message: string): H2Error {
  return new H2Error(code, 0, message);
}

/** A parsed frame header; the payload is `buf[offset, offset + length)`. */
export interface Frame {
  length: number;
  type: number;
  flags: number;
  stream: number;
  /** Payload start in the buffer it was read from. */
  offset: number;
}

/**
 * Reads a frame header at `at`, or returns null when fewer than 9 octets
 * are there. The R bit is ignored (sec. 4.1).
 *
 * @param buf input
 * @param at offset of the header
 * @param out filled in
 * @returns `out`, or null
 * @example
 * ```ts
 * import { readFrameHeader, SETTINGS } from "./frames.ts";
 * const f = readFrameHeader(Uint8Array.of(0, 0, 0, 4, 1, 0, 0, 0, 0), 0, {} as never);
 * console.assert(f!.type === SETTINGS && f!.flags === 1 && f!.length === 0);
 * ```
 */
export function readFrameHeader(buf: Uint8Array, at: number, out: Frame): Frame | null {
  if (buf.length - at < FRAME_HEADER) return null;
  out.length = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2];
  out.type = buf[at + 3];
  out.flags = buf[at + 4];
  out.stream = ((buf[at + 5] & 0x7f) << 24) | (buf[at + 6] << 16) | (buf[at + 7] << 8) |
    buf[at + 8];
  out.offset = at + FRAME_HEADER;
  return out;
}

/** Reads a 31-bit value (R bit cleared) at `at`. */
export function u31(buf: Uint8Array, at: number): number {
  return ((buf[at] & 0x7f) * 0x1000000) + ((buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]);
}

/** Reads a 32-bit unsigned value at `at`. */
export function u32(buf: Uint8Array, at: number): number {
  return buf[at] * 0x1000000 + ((buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]);
}

/**
 * The content of a padded DATA or HEADERS frame (sec. 6.1, 6.2): `[start, end)`
 * without the Pad Length octet and the padding.
 *
 * @param buf input
 * @param f the frame
 * @param skip octets after the Pad Length before the content (5 for HEADERS with PRIORITY)
 * @returns start and end offsets
 * @throws {H2Error} PROTOCOL_ERROR (connection) when the padding is not shorter than the payload
 */
export function unpad(buf: Uint8Array, f: Frame, skip = 0): [number, number] {
  let start = f.offset;
  let end = f.offset + f.length;
  if (f.flags & PADDED) {
    if (f.length < 1) throw connError(FRAME_SIZE_ERROR, "padded frame without a Pad Length");
    const pad = buf[start];
    start++;
    if (pad + skip > end - start) {
      throw connError(PROTOCOL_ERROR, "padding fills the frame (RFC 9113 sec. 6.1/6.2)");
    }
    end -= pad;
  }
  if (end - start < skip) throw connError(FRAME_SIZE_ERROR, "frame too short for its fields");
  return [start + skip, end];
}

/** Writes a frame header. */
export function writeFrameHeader(
  w: ByteWriter,
  length: number,
  type: number,
  flags: number,
  stream: number,
): void {
  w.ensure(FRAME_HEADER);
  const b = w.buf;
  const at = w.length;
  b[at] = length >>> 16;
  b[at + 1] = (length >>> 8) & 0xff;
  b[at + 2] = length & 0xff;
  b[at + 3] = type;
  b[at + 4] = flags;
  b[at + 5] = (stream >>> 24) & 0x7f;
  b[at + 6] = (stream >>> 16) & 0xff;
  b[at + 7] = (stream >>> 8) & 0xff;
  b[at + 8] = stream & 0xff;
  w.length = at + FRAME_HEADER;
}

function put32(w: ByteWriter, v: number): void {
  w.ensure(4);
  const b = w.buf;
  const at = w.length;
  b[at] = (v / 0x1000000) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
  w.length = at + 4;
}

/**
 * Writes a SETTINGS frame (an ACK when `entries` is null).
 *
 * @example
 * ```ts
 * import { ByteWriter } from "./hpack.ts";
 * import { writeSettings } from "./frames.ts";
 * const w = new ByteWriter();
 * writeSettings(w, [[3, 100]]);
 * console.assert(w.length === 15);
 * ```
 */
export function writeSettings(w: ByteWriter, entries: Array<[number, number]> | null): void {
  if (entries === null) return writeFrameHeader(w, 0, SETTINGS, ACK, 0);
  writeFrameHeader(w, entries.length * 6, SETTINGS, 0, 0);
  for (const [id, v] of entries) {
    w.ensure(2);
    w.buf[w.length++] = id >>> 8;
    w.buf[w.length++] = id & 0xff;
    put32(w, v);
  }
}

/** Writes a PING ACK carrying the 8 octets at `buf[at]`. */
export function writePingAck(w: ByteWriter, buf: Uint8Array, at: number): void {
  writeFrameHeader(w, 8, PING, ACK, 0);
  w.ensure(8);
  w.buf.set(buf.subarray(at, at + 8), w.length);
  w.length += 8;
}

/** Writes a GOAWAY frame. */
export function writeGoaway(w: ByteWriter, lastStream: number, code: number): void {
  writeFrameHeader(w, 8, GOAWAY, 0, 0);
  put32(w, lastStream);
  put32(w, code);
}

/** Writes a RST_STREAM frame. */
export function writeRst(w: ByteWriter, stream: number, code: number): void {
  writeFrameHeader(w, 4, RST_STREAM, 0, stream);
  put32(w, code);
}

/** Writes a WINDOW_UPDATE frame. */
export function writeWindowUpdate(w: ByteWriter, stream: number, increment: number): void {
  writeFrameHeader(w, 4, WINDOW_UPDATE, 0, stream);
  put32(w, increment);
}

/** Writes a DATA frame holding `bytes[start, end)`. */
export function writeData(
  w: ByteWriter,
  stream: number,
  bytes: Uint8Array,
  start: number,
  end: number,
  endStream: boolean,
): void {
  const n = end - start;
  writeFrameHeader(w, n, DATA, endStream ? END_STREAM : 0, stream);
  if (n === 0) return;
  w.ensure(n);
  w.buf.set(n === bytes.length ? bytes : bytes.subarray(start, end), w.length);
  w.length += n;
}

/**
 * Writes a header block as HEADERS plus as many CONTINUATION frames as
 * `maxFrame` needs (sec. 6.10).
 *
 * @param w output
 * @param stream the stream
 * @param block the HPACK block
 * @param endStream set END_STREAM on the HEADERS frame
 * @param maxFrame the peer's SETTINGS_MAX_FRAME_SIZE
 */
export function writeHeaders(
  w: ByteWriter,
  stream: number,
  block: Uint8Array,
  endStream: boolean,
  maxFrame: number,
): void {
  let at = 0;
  let type = HEADERS;
  do {
    const n = Math.min(maxFrame, block.length - at);
    const last = at + n === block.length;
    const flags = (last ? END_HEADERS : 0) | (type === HEADERS && endStream ? END_STREAM : 0);
    writeFrameHeader(w, n, type, flags, stream);
    w.ensure(n);
    w.buf.set(block.subarray(at, at + n), w.length);
    w.length += n;
    at += n;
    type = CONTINUATION;
  } while (at < block.length);
}

/** The peer's settings, with the RFC defaults (sec. 6.5.2). */
export interface PeerSettings {
  headerTableSize: number;
  enablePush: number;
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  maxHeaderListSize: number;
}

/** Fresh defaults. */
export function defaultSettings(): PeerSettings {
  return {
    headerTableSize: 4096,
    enablePush: 1,
    maxConcurrentStreams: Infinity,
    initialWindowSize: 65535,
    maxFrameSize: MIN_MAX_FRAME,
    maxHeaderListSize: Infinity,
  };
}

/**
 * Applies a SETTINGS payload to `s` (sec. 6.5): values checked, unknown
 * identifiers ignored.
 *
 * @param buf input
 * @param f the SETTINGS frame (not an ACK; length already checked to be a multiple of 6)
 * @param s updated in place
 * @throws {H2Error} PROTOCOL_ERROR (ENABLE_PUSH not 0/1, MAX_FRAME_SIZE out of range),
 *   FLOW_CONTROL_ERROR (INITIAL_WINDOW_SIZE over 2^31-1)
 */
export function applySettings(buf: Uint8Array, f: Frame, s: PeerSettings): void {
  for (let at = f.offset; at < f.offset + f.length; at += 6) {
    const id = (buf[at] << 8) | buf[at + 1];
    const v = u32(buf, at + 2);
    switch (id) {
      case SETTINGS_HEADER_TABLE_SIZE:
        s.headerTableSize = v;
        break;
      case SETTINGS_ENABLE_PUSH:
        if (v > 1) throw connError(PROTOCOL_ERROR, `ENABLE_PUSH ${v} (RFC 9113 sec. 6.5.2)`);
        s.enablePush = v;
        break;
      case SETTINGS_MAX_CONCURRENT_STREAMS:
        s.maxConcurrentStreams = v;
        break;
      case SETTINGS_INITIAL_WINDOW_SIZE:
        if (v > MAX_WINDOW) {
          throw connError(FLOW_CONTROL_ERROR, `INITIAL_WINDOW_SIZE ${v} (RFC 9113 sec. 6.5.2)`);
        }
        s.initialWindowSize = v;
        break;
      case SETTINGS_MAX_FRAME_SIZE:
        if (v < MIN_MAX_FRAME || v > MAX_MAX_FRAME) {
          throw connError(PROTOCOL_ERROR, `MAX_FRAME_SIZE ${v} (RFC 9113 sec. 6.5.2)`);
        }
        s.maxFrameSize = v;
        break;
      case SETTINGS_MAX_HEADER_LIST_SIZE:
        s.maxHeaderListSize = v;
        break;
    }
  }
}

/**
 * The fixed payload lengths of each frame type, checked before the payload is
 * read (sec. 4.2: FRAME_SIZE_ERROR), as [type, length, connection-level?].
 * PRIORITY (5) and RST_STREAM (4) are stream errors unless on stream 0.
 */
export function checkFrameSize(f: Frame): void {
  switch (f.type) {
    case PRIORITY:
      if (f.length !== 5) throw new H2Error(FRAME_SIZE_ERROR, f.stream, "PRIORITY length not 5");
      return;
    case RST_STREAM:
      if (f.length !== 4) throw connError(FRAME_SIZE_ERROR, "RST_STREAM length not 4");
      return;
    case SETTINGS:
      if (f.flags & ACK) {
        if (f.length !== 0) throw connError(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      } else if (f.length % 6 !== 0) {
        throw connError(FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6");
      }
      return;
    case PING:
      if (f.length !== 8) throw connError(FRAME_SIZE_ERROR, "PING length not 8");
      return;
    case GOAWAY:
      if (f.length < 8) throw connError(FRAME_SIZE_ERROR, "GOAWAY shorter than 8");
      return;
    case WINDOW_UPDATE:
      if (f.length !== 4) throw connError(FRAME_SIZE_ERROR, "WINDOW_UPDATE length not 4");
      return;
  }
}
