/**
 * The header both Int32 rings share (words 0-3: magic, version, capacity,
 * recordWords), its shape rules and its validation on attach, so `SpscRing`
 * and `MpmcRing` refuse a foreign or corrupt buffer with the same precise
 * messages.
 *
 * @module
 */

export const W_MAGIC = 0;
export const W_VERSION = 1;
export const W_CAPACITY = 2;
export const W_RECORD_WORDS = 3;
export const MAX_CAPACITY = 1 << 24;
export const MAX_RECORD_WORDS = 16;

/** What a ring kind's header must say. */
export interface HeaderSpec {
  /** Class name used in messages, e.g. `SpscRing`. */
  name: string;
  magic: number;
  version: number;
  /** Bytes before the first record (the header and the counters). */
  headerBytes: number;
  /** Exact buffer size for a shape. */
  byteLengthOf(capacity: number, recordWords: number): number;
}

/** Throws a RangeError naming the bad value unless the shape is allowed. */
export function checkShape(capacity: number, recordWords: number): void {
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
    throw new RangeError(`capacity must be an integer 1-${MAX_CAPACITY}, got ${capacity}`);
  }
  if ((capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`capacity must be a power of two, got ${capacity}`);
  }
  if (!Number.isInteger(recordWords) || recordWords < 1 || recordWords > MAX_RECORD_WORDS) {
    throw new RangeError(
      `recordWords must be an integer 1-${MAX_RECORD_WORDS}, got ${recordWords}`,
    );
  }
}

/** Validates `buffer` against `spec` and returns its view and shape. */
export function attachHeader(
  buffer: SharedArrayBuffer,
  spec: HeaderSpec,
): { i32: Int32Array; capacity: number; recordWords: number } {
  const { name } = spec;
  if (!(buffer instanceof SharedArrayBuffer)) {
    throw new TypeError(`${name} needs a SharedArrayBuffer, got ${describe(buffer)}`);
  }
  if (buffer.byteLength < spec.headerBytes) {
    throw new Error(
      `not an ${name} buffer: ${buffer.byteLength} bytes is shorter than the ${spec.headerBytes}-byte header`,
    );
  }
  const i32 = new Int32Array(buffer);
  const magic = i32[W_MAGIC];
  if (magic !== spec.magic) {
    throw new Error(`not an ${name} buffer: magic 0x${hex(magic)}, expected 0x${hex(spec.magic)}`);
  }
  if (i32[W_VERSION] !== spec.version) {
    throw new Error(
      `${name} layout version ${i32[W_VERSION]} is not supported (want ${spec.version})`,
    );
  }
  const capacity = i32[W_CAPACITY];
  const recordWords = i32[W_RECORD_WORDS];
  try {
    checkShape(capacity, recordWords);
  } catch (e) {
    throw new Error(`corrupt ${name} header: ${(e as Error).message}`);
  }
  const expected = spec.byteLengthOf(capacity, recordWords);
  if (buffer.byteLength !== expected) {
    throw new Error(
      `${name} buffer is ${buffer.byteLength} bytes, expected ${expected} for capacity ${capacity} x ${recordWords} words`,
    );
  }
  return { i32, capacity, recordWords };
}

function hex(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}
