/**
 * Byte ranges (RFC 9110 sec. 14). Pure: no I/O.
 *
 * Abuse bound (never amplify): more than {@link MAX_RANGES} ranges,
 * overlapping ranges, or ranges totalling more than the file are answered
 * with the whole file (200), which a client must accept.
 *
 * @module
 */
import { etagMatches, parseHttpDate, validatorTime } from "./conditional.ts";

/** Most ranges honoured in one request. */
export const MAX_RANGES = 16;

/** A satisfiable range `[start, end)`, in request order. */
export type ByteRange = [start: number, end: number];

/** The outcome of a Range header against a file of a given size. */
export type RangeResult =
  | { kind: "full" }
  | { kind: "unsatisfiable" }
  | { kind: "ranges"; ranges: ByteRange[] };

const FULL = { kind: "full" } as const;
const UNSATISFIABLE = { kind: "unsatisfiable" } as const;

function digits(s: string): number {
  if (s.length === 0 || s.length > 15) return -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
  }
  return Number(s);
}

/**
 * Parses a Range header for a representation of `size` bytes.
 *
 * A header that is not a valid `bytes=` set is ignored (`full`), as RFC 9110
 * allows. Ranges that start beyond the end are dropped; if none remains the
 * result is `unsatisfiable` (416).
 *
 * @param header The Range header value.
 * @param size The representation length.
 * @returns `full`, `unsatisfiable`, or the clamped ranges in request order.
 * @example
 * ```ts
 * import { parseRange } from "./range.ts";
 * parseRange("bytes=0-9", 100); // { kind: "ranges", ranges: [[0, 10]] }
 * ```
 */
export function parseRange(header: string, size: number): RangeResult {
  const eq = header.indexOf("=");
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== "bytes") return FULL;
  const specs = header.slice(eq + 1).split(",");
  const ranges: ByteRange[] = [];
  let count = 0;
  for (const raw of specs) {
    const spec = raw.trim();
    if (spec === "") continue; // RFC 9110 list syntax tolerates empty elements
    if (++count > MAX_RANGES) return FULL;
    const dash = spec.indexOf("-");
    if (dash < 0) return FULL;
    const a = spec.slice(0, dash).trim();
    const b = spec.slice(dash + 1).trim();
    if (a === "") {
      const n = digits(b);
      if (n < 0) return FULL;
      if (n === 0) continue; // a zero-length suffix is unsatisfiable
      // Satisfiable on an empty representation (RFC 9110 sec. 14.1.2) but no
      // Content-Range can say so: send the whole (empty) representation.
      if (size === 0) return FULL;
      ranges.push([Math.max(0, size - n), size]);
      continue;
    }
    const start = digits(a);
    if (start < 0) return FULL;
    let end = size;
    if (b !== "") {
      const last = digits(b);
      if (last < 0 || last < start) return FULL;
      end = Math.min(last + 1, size);
    }
    if (start >= size) continue;
    ranges.push([start, end]);
  }
  if (count === 0) return FULL;
  if (ranges.length === 0) return UNSATISFIABLE;
  if (ranges.length > 1) {
    let total = 0;
    const sorted = ranges.slice().sort((x, y) => x[0] - y[0]);
    for (let i = 0; i < sorted.length; i++) {
      total += sorted[i][1] - sorted[i][0];
      if (i > 0 && sorted[i][0] < sorted[i - 1][1]) return FULL;
    }
    if (total > size) return FULL;
  }
  return { kind: "ranges", ranges };
}

/**
 * Whether an If-Range precondition holds, so the Range header applies.
 * An entity tag must match strongly (RFC 9110 sec. 13.1.5: a weak tag never
 * does); a date must equal the Last-Modified we send exactly.
 *
 * @param ifRange The If-Range header value.
 * @param etag The current (strong) entity tag.
 * @param mtimeMs Last modification time in ms.
 * @param nowMs The current time (Last-Modified is never later).
 * @returns `true` to honour Range, `false` to send the full representation.
 * @example
 * ```ts
 * import { ifRangeHolds } from "./range.ts";
 * ifRangeHolds('"a"', '"a"', 0); // true
 * ```
 */
export function ifRangeHolds(
  ifRange: string,
  etag: string,
  mtimeMs: number,
  nowMs: number = Date.now(),
): boolean {
  const v = ifRange.trim();
  // One entity-tag, not a list: a comma outside the quotes makes it invalid.
  if (v.startsWith('"') || v.startsWith("W/")) {
    return v.indexOf('"', v.indexOf('"') + 1) === v.length - 1 && etagMatches(v, etag, false);
  }
  const d = parseHttpDate(v, nowMs);
  return !Number.isNaN(d) && d === validatorTime(mtimeMs, nowMs);
}

/** One piece of a multipart body: literal bytes or a slice of the file. */
export type MultipartPiece = Uint8Array | ByteRange;

const enc = new TextEncoder();

/**
 * Lays out a `multipart/byteranges` body (RFC 9110 sec. 14.6).
 *
 * @param ranges The satisfiable ranges, in the order to send.
 * @param size The full representation length.
 * @param type The Content-Type of the representation.
 * @param boundary The boundary string (no `--`).
 * @returns The pieces and their total length.
 * @example
 * ```ts
 * import { multipartLayout } from "./range.ts";
 * const { length } = multipartLayout([[0, 1], [5, 6]], 10, "text/plain", "B");
 * ```
 */
export function multipartLayout(
  ranges: ByteRange[],
  size: number,
  type: string,
  boundary: string,
): { pieces: MultipartPiece[]; length: number } {
  const pieces: MultipartPiece[] = [];
  let length = 0;
  for (let i = 0; i < ranges.length; i++) {
    const [start, end] = ranges[i];
    const head = enc.encode(
      `${i === 0 ? "" : "\r\n"}--${boundary}\r\nContent-Type: ${type}\r\n` +
        `Content-Range: bytes ${start}-${end - 1}/${size}\r\n\r\n`,
    );
    pieces.push(head, ranges[i]);
    length += head.length + end - start;
  }
  const tail = enc.encode(`\r\n--${boundary}--\r\n`);
  pieces.push(tail);
  length += tail.length;
  return { pieces, length };
}
