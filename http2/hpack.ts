/**
 * HPACK (RFC 7541): the header compression of HTTP/2, both directions.
 *
 * - {@linkcode Decoder} turns a header block into a flat `[name, value, ...]`
 *   list (as `RequestHead.headers`), with the dynamic table the peer's
 *   encoder drives, bounded by the size we advertise
 *   (SETTINGS_HEADER_TABLE_SIZE) and changed only by size updates at the
 *   start of a block (sec. 4.2, 6.3).
 * - {@linkcode Encoder} writes response headers: static-table matches,
 *   a dynamic table of the size the peer allows (capped at 4 KiB), Huffman
 *   when it is shorter.
 *
 * Limits (every resource a peer can make us hold is bounded): integers over
 * 2^28 (at most four continuation octets), a string longer than the block,
 * a Huffman string with EOS, a padding over 7 bits or not all ones, an index
 * out of range, a size update over the advertised size or after a field are
 * each a COMPRESSION_ERROR ({@linkcode HpackError}). A decoded list larger
 * than `maxListSize` (name + value + 32 per field, sec. 4.1 of RFC 7541) is
 * refused without decoding it all: past the limit, only what the dynamic
 * table needs to stay in sync (literals with incremental indexing, bounded by
 * the table size) is still decoded; indexed fields and other literals are
 * skipped, so an "HPACK bomb" (one big entry referenced thousands of times)
 * costs a scan of its block, not its expansion.
 *
 * Strings are octets: decoded as ISO-8859-1 (byte n -> U+00nn, as the
 * HTTP/1.1 parser does); encoded the same way, a character over U+00FF as
 * UTF-8.
 *
 * @module
 */
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from "./_huffman_table.ts";
import { latin1 } from "../http/parser.ts";

/** A decoding error of the whole connection (HTTP/2 COMPRESSION_ERROR). */
export class HpackError extends Error {
  override name = "HpackError";
}

/** The static table (RFC 7541 Appendix A); index 1 is `STATIC_TABLE[0]`. */
export const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];
const STATIC_LEN = STATIC_TABLE.length;
/** RFC 7541 sec. 4.1: each entry costs its name and value octets plus 32. */
export const ENTRY_OVERHEAD = 32;
/** Huffman scratch kept between blocks (a 5 KiB cookie); a larger one is dropped after its block. */
const SCRATCH_KEEP = 8192;
/** Integers above this are refused (four continuation octets after an 8-bit prefix hold 2^28). */
const MAX_INT = 0x0fffffff;

// ---------------------------------------------------------------- Huffman

/**
 * Decoding by nibble (as nghttp2 does): for each of the 256 internal nodes of
 * the code tree and each 4-bit input, the node reached, the symbol emitted
 * (at most one: the shortest code is 5 bits) and whether EOS was hit.
 * A string may end only in an "accepting" node: the root, or a node reached
 * from the last symbol by at most seven 1 bits (the EOS prefix, sec. 5.2).
 */
const H_NEXT = new Uint8Array(256 * 16);
const H_SYM = new Int16Array(256 * 16); // -1 none, -2 EOS (an error)
const H_ACCEPT = new Uint8Array(256);
(() => {
  // Build the tree: children[2n + bit]; >0 internal node, <0 leaf -(sym + 1).
  const children = new Int32Array(512);
  let nodes = 1;
  for (let sym = 0; sym <= 256; sym++) {
    const code = HUFFMAN_CODES[sym];
    const len = HUFFMAN_LENGTHS[sym];
    let n = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = (code >>> i) & 1;
      const at = 2 * n + bit;
      if (i === 0) {
        children[at] = -(sym + 1);
      } else {
        if (children[at] === 0) children[at] = nodes++;
        n = children[at];
      }
    }
  }
  // Accepting: the all-ones path from the root, depth 0-7.
  let n = 0;
  H_ACCEPT[0] = 1;
  for (let d = 1; d <= 7; d++) {
    n = children[2 * n + 1];
    H_ACCEPT[n] = 1;
  }
  for (let node = 0; node < nodes; node++) {
    for (let nib = 0; nib < 16; nib++) {
      let cur = node;
      let sym = -1;
      for (let i = 3; i >= 0; i--) {
        const c = children[2 * cur + ((nib >>> i) & 1)];
        if (c < 0) {
          const s = -c - 1;
          if (s === 256) {
            sym = -2;
            break;
          }
          sym = s;
          cur = 0;
        } else {
          cur = c;
        }
      }
      H_NEXT[node * 16 + nib] = cur;
      H_SYM[node * 16 + nib] = sym;
    }
  }
})();

/**
 * Decodes a Huffman string into `out` from index 0.
 *
 * @param src the encoded octets
 * @param start first octet
 * @param end after the last octet
 * @param out room for at least `(end - start) * 8 / 5` octets
 * @returns the decoded length
 * @throws {HpackError} EOS in the string, or a bad padding
 * @example Decode "www.example.com" (RFC 7541 C.4.1)
 * ```ts
 * import { huffmanDecode } from "./hpack.ts";
 * const src = Uint8Array.from([0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]);
 * const out = new Uint8Array(32);
 * const n = huffmanDecode(src, 0, src.length, out);
 * console.assert(new TextDecoder().decode(out.subarray(0, n)) === "www.example.com");
 * ```
 */
export function huffmanDecode(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
): number {
  let node = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const b = src[i];
    let k = node * 16 + (b >>> 4);
    let s = H_SYM[k];
    if (s !== -1) {
      if (s === -2) throw new HpackError("Huffman string contains EOS");
      out[n++] = s;
    }
    node = H_NEXT[k];
    k = node * 16 + (b & 15);
    s = H_SYM[k];
    if (s !== -1) {
      if (s === -2) throw new HpackError("Huffman string contains EOS");
      out[n++] = s;
    }
    node = H_NEXT[k];
  }
  if (H_ACCEPT[node] === 0) {
    throw new HpackError("Huffman padding is not an EOS prefix of 0-7 bits");
  }
  return n;
}

/** Octets of `s` as HPACK sends it (ISO-8859-1; a char over U+00FF makes it UTF-8). */
function octets(s: string): Uint8Array | null {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) return utf8.encode(s);
  }
  return null;
}
const utf8 = new TextEncoder();

/** Whether `s` has a char over U+00FF (sent as UTF-8: its octet count is not its length). */
function wide(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return true;
  return false;
}

/**
 * The Huffman-encoded length of `s` in octets (latin1 code units).
 *
 * @param s the string
 * @returns its length once encoded
 * @example
 * ```ts
 * import { huffmanLength } from "./hpack.ts";
 * console.assert(huffmanLength("www.example.com") === 12);
 * ```
 */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff];
  return (bits + 7) >>> 3;
}

// ---------------------------------------------------------------- output

/** Size of pooled writer buffers, and how many a thread keeps. */
const POOLED = 16384;
const WRITER_POOL_MAX = 256;
const writerPool: Uint8Array[] = [];
const EMPTY = new Uint8Array(0);

/** A growable output buffer, reused across header blocks. */
export class ByteWriter {
  /** The bytes; valid up to `length`. */
  buf: Uint8Array;
  /** Bytes written. */
  length = 0;

  /** @param size initial capacity */
  constructor(size = 1024) {
    this.buf = new Uint8Array(size);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    if (this.buf.length === 0 && n <= POOLED) {
      // Released (idle): take a pooled buffer again.
      this.buf = writerPool.pop() ?? new Uint8Array(POOLED);
      return;
    }
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  /**
   * Gives the buffer back to a per-thread pool (it must be empty); the next
   * write takes one again. Idle connections thus hold no output buffer.
   */
  release(): void {
    if (this.buf.length === POOLED && writerPool.length < WRITER_POOL_MAX) {
      writerPool.push(this.buf);
    }
    this.buf = EMPTY;
    this.length = 0;
  }

  /** The bytes written (a view, valid until the next write). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeInt(w: ByteWriter, prefixBits: number, flags: number, v: number): void {
  w.ensure(6);
  const max = (1 << prefixBits) - 1;
  const b = w.buf;
  if (v < max) {
    b[w.length++] = flags | v;
    return;
  }
  b[w.length++] = flags | max;
  v -= max;
  while (v >= 128) {
    b[w.length++] = (v & 127) | 128;
    v = Math.floor(v / 128);
  }
  b[w.length++] = v;
}

function writeString(w: ByteWriter, s: string): void {
  const raw = octets(s);
  if (raw !== null) {
    writeInt(w, 7, 0, raw.length);
    w.ensure(raw.length);
    w.buf.set(raw, w.length);
    w.length += raw.length;
    return;
  }
  const hlen = huffmanLength(s);
  if (hlen < s.length) {
    writeInt(w, 7, 0x80, hlen);
    huffmanEncode(s, w);
    return;
  }
  writeInt(w, 7, 0, s.length);
  w.ensure(s.length);
  const b = w.buf;
  let at = w.length;
  for (let i = 0; i < s.length; i++) b[at++] = s.charCodeAt(i);
  w.length = at;
}

/**
 * Appends the Huffman code of `s` (latin1 code units), padded with ones.
 *
 * @param s the string
 * @param w the output
 * @example
 * ```ts
 * import { ByteWriter, huffmanEncode } from "./hpack.ts";
 * const w = new ByteWriter();
 * huffmanEncode("www.example.com", w);
 * console.assert(w.length === 12);
 * ```
 */
export function huffmanEncode(s: string, w: ByteWriter): void {
  w.ensure(huffmanLength(s));
  {
    const b = w.buf;
    let at = w.length;
    let cur = 0;
    let free = 8;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      const code = HUFFMAN_CODES[c];
      let len = HUFFMAN_LENGTHS[c];
      while (len > 0) {
        if (len >= free) {
          cur |= (code >>> (len - free)) & ((1 << free) - 1);
          b[at++] = cur;
          len -= free;
          cur = 0;
          free = 8;
        } else {
          cur |= (code & ((1 << len) - 1)) << (free - len);
          free -= len;
          len = 0;
        }
      }
    }
    if (free < 8) b[at++] = cur | ((1 << free) - 1);
    w.length = at;
  }
}

// ---------------------------------------------------------------- tables

/**
 * A dynamic table (sec. 2.3.2): a ring of entries, newest at index 62.
 * Capacity in entries is fixed by the largest size ever allowed (an entry
 * costs at least 32 octets).
 */
class DynamicTable {
  names: string[];
  values: string[];
  sizes: Int32Array;
  /** Ring position of the oldest entry, and the count. */
  head = 0;
  count = 0;
  /** Octets used (sec. 4.1) and the current maximum. */
  size = 0;
  max: number;
  /** Entries ever inserted (the encoder's absolute numbering). */
  inserted = 0;
  onEvict?: (abs: number, name: string, value: string) => void;

  constructor(max: number) {
    this.max = max;
    const cap = Math.floor(max / ENTRY_OVERHEAD) + 1;
    this.names = new Array(cap);
    this.values = new Array(cap);
    this.sizes = new Int32Array(cap);
  }

  get capacity(): number {
    return this.sizes.length;
  }

  /** Entry `i` (0 = newest). */
  at(i: number): number {
    return (this.head + this.count - 1 - i) % this.capacity;
  }

  evictTo(limit: number): void {
    while (this.size > limit && this.count > 0) {
      const k = this.head;
      this.size -= this.sizes[k];
      this.onEvict?.(this.inserted - this.count, this.names[k], this.values[k]);
      this.names[k] = this.values[k] = "";
      this.head = (k + 1) % this.capacity;
      this.count--;
    }
  }

  setMax(max: number): void {
    this.max = max;
    this.evictTo(max);
  }

  /** Adds an entry of `octets` (sec. 4.4: larger than the table empties it). */
  add(name: string, value: string, octets: number): void {
    const s = octets + ENTRY_OVERHEAD;
    if (s > this.max) {
      this.evictTo(0);
      this.inserted++;
      return;
    }
    this.evictTo(this.max - s);
    const k = (this.head + this.count) % this.capacity;
    this.names[k] = name;
    this.values[k] = value;
    this.sizes[k] = s;
    this.count++;
    this.size += s;
    this.inserted++;
  }
}

// ---------------------------------------------------------------- decoder

/** Result of {@linkcode Decoder.decode}. */
export interface DecodeResult {
  /** The decoded list size (sec. 4.1 of RFC 7541), counted up to the limit. */
  size: number;
  /** True when the list went over `maxListSize`: `out` is then incomplete. */
  over: boolean;
}

/**
 * Decodes header blocks of one connection (the peer's encoder drives the table).
 *
 * @example Decode RFC 7541 C.3.1 (a request without Huffman)
 * ```ts
 * import { Decoder } from "./hpack.ts";
 * const block = Uint8Array.from([0x82, 0x86, 0x84, 0x41, 0x0f, ...new TextEncoder().encode("www.example.com")]);
 * const out: string[] = [];
 * new Decoder(4096).decode(block, out, 16384);
 * console.assert(out.join(" ") === ":method GET :scheme http :path / :authority www.example.com");
 * ```
 */
export class Decoder {
  readonly #table: DynamicTable;
  /** The size we advertised: updates may not exceed it. */
  readonly #limit: number;
  #scratch = new Uint8Array(256);

  /** @param maxTableSize our SETTINGS_HEADER_TABLE_SIZE @default {4096} */
  constructor(maxTableSize = 4096) {
    this.#limit = maxTableSize;
    this.#table = new DynamicTable(maxTableSize);
  }

  /** Octets the dynamic table holds now. */
  get tableSize(): number {
    return this.#table.size;
  }

  /** The table's current maximum (the last size update). */
  get tableMax(): number {
    return this.#table.max;
  }

  /** Octets of scratch space held between blocks (for memory-bound tests). */
  get retained(): number {
    return this.#scratch.length;
  }

  /**
   * Decodes one whole header block, appending `name, value` pairs to `out`.
   *
   * @param block the block (HEADERS + CONTINUATION fragments joined)
   * @param out receives the fields in order
   * @param maxListSize our SETTINGS_MAX_HEADER_LIST_SIZE
   * @returns the list size and whether it went over the limit
   * @throws {HpackError} any decoding error (a connection error)
   */
  decode(block: Uint8Array, out: string[], maxListSize: number): DecodeResult {
    const t = this.#table;
    let p = 0;
    const end = block.length;
    let size = 0;
    let over = false;
    let fieldSeen = false;
    let updates = 0;

    const int = (prefixBits: number): number => {
      const max = (1 << prefixBits) - 1;
      let v = block[p++] & max;
      if (v < max) return v;
      let m = 1;
      for (let k = 0; k < 4; k++) {
        if (p >= end) throw new HpackError("integer runs past the block");
        const b = block[p++];
        v += (b & 127) * m;
        if ((b & 128) === 0) {
          if (v > MAX_INT) break;
          return v;
        }
        m *= 128;
      }
      throw new HpackError("integer too large");
    };
    /** Reads a string; `skip` only advances past it. */
    const str = (skip: boolean): string => {
      if (p >= end) throw new HpackError("string runs past the block");
      const huff = (block[p] & 0x80) !== 0;
      const len = int(7);
      if (len > end - p) throw new HpackError("string runs past the block");
      const s = p;
      p += len;
      if (skip) return "";
      if (!huff) return latin1(block, s, s + len);
      const need = Math.ceil(len * 8 / 5);
      if (this.#scratch.length < need) this.#scratch = new Uint8Array(Math.max(need, 512));
      const n = huffmanDecode(block, s, s + len, this.#scratch);
      return latin1(this.#scratch, 0, n);
    };
    const entry = (index: number, value: boolean): string => {
      if (index <= 0) throw new HpackError("index 0");
      if (index <= STATIC_LEN) return STATIC_TABLE[index - 1][value ? 1 : 0];
      const i = index - STATIC_LEN - 1;
      if (i >= t.count) throw new HpackError(`index ${index} past the dynamic table`);
      const k = t.at(i);
      return value ? t.values[k] : t.names[k];
    };
    const entryOctets = (index: number): number => {
      if (index <= STATIC_LEN) {
        const [n, v] = STATIC_TABLE[index - 1];
        return n.length + v.length;
      }
      return t.sizes[t.at(index - STATIC_LEN - 1)] - ENTRY_OVERHEAD;
    };
    const emit = (name: string, value: string): void => {
      size += name.length + value.length + ENTRY_OVERHEAD;
      if (size > maxListSize) {
        over = true;
        return;
      }
      out.push(name, value);
    };

    while (p < end) {
      const b = block[p];
      if (b & 0x80) {
        // Indexed field (sec. 6.1).
        fieldSeen = true;
        const index = int(7);
        if (over) {
          // Range still checked (a bad index is an error), nothing copied.
          if (index === 0 || index > STATIC_LEN + t.count) throw new HpackError("bad index");
          continue;
        }
        if (index === 0) throw new HpackError("index 0");
        if (index <= STATIC_LEN + t.count) {
          const cost = entryOctets(index) + ENTRY_OVERHEAD;
          if (size + cost > maxListSize) {
            size += cost;
            over = true;
            continue;
          }
        }
        emit(entry(index, false), entry(index, true));
      } else if (b & 0x40) {
        // Literal with incremental indexing (sec. 6.2.1): always decoded, the table needs it.
        fieldSeen = true;
        const index = int(6);
        const name = index === 0 ? str(false) : entry(index, false);
        const value = str(false);
        t.add(name, value, name.length + value.length);
        if (!over) emit(name, value);
      } else if (b & 0x20) {
        // Dynamic table size update (sec. 6.3): only before the first field.
        if (fieldSeen) throw new HpackError("table size update after a field");
        if (++updates > 2) throw new HpackError("more than two table size updates");
        const max = int(5);
        if (max > this.#limit) {
          throw new HpackError(`table size update ${max} over the advertised ${this.#limit}`);
        }
        t.setMax(max);
      } else {
        // Literal without indexing (0000) or never indexed (0001), sec. 6.2.2-3.
        fieldSeen = true;
        const index = int(4);
        if (over) {
          if (index === 0) str(true);
          else entry(index, false);
          str(true);
          continue;
        }
        const name = index === 0 ? str(false) : entry(index, false);
        // The value's length is known before it is decoded: refuse it unread.
        if (p < end) {
          const save = p;
          const huff = (block[p] & 0x80) !== 0;
          const len = int(7);
          p = save;
          const least = huff ? Math.ceil(len * 8 / 30) : len;
          if (size + name.length + least + ENTRY_OVERHEAD > maxListSize) {
            str(true);
            size += name.length + least + ENTRY_OVERHEAD;
            over = true;
            continue;
          }
        }
        emit(name, str(false));
      }
    }
    // A long Huffman string's scratch is not kept by an idle connection.
    if (this.#scratch.length > SCRATCH_KEEP) this.#scratch = new Uint8Array(256);
    return { size, over };
  }
}

// ---------------------------------------------------------------- encoder

/** `:status` values of the static table. */
const STATUS_INDEX: Record<number, number> = {
  200: 8,
  204: 9,
  206: 10,
  304: 11,
  400: 12,
  404: 13,
  500: 14,
};

/** Largest dynamic table the encoder uses, whatever the peer allows. */
const ENCODER_TABLE_MAX = 4096;

const STATIC_PAIR = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
for (let i = STATIC_LEN - 1; i >= 0; i--) {
  const [n, v] = STATIC_TABLE[i];
  STATIC_NAME.set(n, i + 1);
  if (v !== "") STATIC_PAIR.set(n + "\0" + v, i + 1);
}

/**
 * Fields whose values change from response to response: sent as literals
 * without indexing, so they do not churn the table.
 */
export const VOLATILE: ReadonlySet<string> = new Set([
  "content-length",
  "etag",
  "last-modified",
  "content-range",
  "location",
  "set-cookie",
  "content-disposition",
  "age",
]);

/**
 * Encodes header blocks of one connection.
 *
 * @example Encode a response head
 * ```ts
 * import { ByteWriter, Decoder, Encoder } from "./hpack.ts";
 * const w = new ByteWriter();
 * new Encoder().encode([[":status", "200"], ["content-type", "text/html"]], w);
 * const out: string[] = [];
 * new Decoder().decode(w.bytes(), out, 65536);
 * console.assert(out.join(" ") === ":status 200 content-type text/html");
 * ```
 */
export class Encoder {
  readonly #table: DynamicTable;
  /** `name\0value` and name -> absolute insertion number of the newest such entry. */
  readonly #pairs = new Map<string, number>();
  readonly #names = new Map<string, number>();
  /** A size update owed at the start of the next block (sec. 4.2), or -1. */
  #pendingMin = -1;
  #pendingFinal = -1;

  constructor() {
    this.#table = new DynamicTable(ENCODER_TABLE_MAX);
    this.#table.onEvict = (abs, name, value) => {
      const key = name + "\0" + value;
      if (this.#pairs.get(key) === abs) this.#pairs.delete(key);
      if (this.#names.get(name) === abs) this.#names.delete(name);
    };
  }

  /** Octets the dynamic table holds now. */
  get tableSize(): number {
    return this.#table.size;
  }

  /**
   * Applies the peer's SETTINGS_HEADER_TABLE_SIZE: the table shrinks now and
   * the next block starts with a size update (the smallest size set since
   * the last block first, when the table grew again, sec. 4.2).
   *
   * @param n the setting's value
   */
  setMaxTableSize(n: number): void {
    const max = Math.min(n, ENCODER_TABLE_MAX);
    if (max === this.#table.max && this.#pendingFinal < 0) return;
    this.#pendingMin = this.#pendingMin < 0 ? max : Math.min(this.#pendingMin, max);
    this.#pendingFinal = max;
    this.#table.setMax(max);
  }

  /**
   * Appends the block of `fields` to `w`. Names must be lower case.
   *
   * @param fields `[name, value]` pairs, pseudo-headers first
   * @param w the output
   */
  encode(fields: ReadonlyArray<readonly [string, string]>, w: ByteWriter): void {
    this.begin(w);
    for (let i = 0; i < fields.length; i++) this.field(fields[i][0], fields[i][1], w);
  }

  /**
   * Starts a block: the size updates owed (sec. 4.2). A caller writing a
   * block field by field ({@linkcode Encoder.field}) calls this first.
   *
   * @param w the output
   */
  begin(w: ByteWriter): void {
    if (this.#pendingFinal >= 0) {
      if (this.#pendingMin < this.#pendingFinal) writeInt(w, 5, 0x20, this.#pendingMin);
      writeInt(w, 5, 0x20, this.#pendingFinal);
      this.#pendingMin = this.#pendingFinal = -1;
    }
  }

  /**
   * Appends `:status` (an indexed field for 200, 204, 206, 304, 400, 404, 500).
   *
   * @param status the status code
   * @param w the output
   */
  status(status: number, w: ByteWriter): void {
    const i = STATUS_INDEX[status];
    if (i !== undefined) return writeInt(w, 7, 0x80, i);
    this.field(":status", String(status), w);
  }

  /**
   * Appends `name: value` as a literal without indexing (sec. 6.2.2): the
   * bytes do not depend on the table, so a caller may cache them.
   *
   * @param name lower-case name
   * @param value the value
   * @param w the output
   */
  static literal(name: string, value: string, w: ByteWriter): void {
    const nameIndex = STATIC_NAME.get(name) ?? 0;
    writeInt(w, 4, 0, nameIndex);
    if (nameIndex === 0) writeString(w, name);
    writeString(w, value);
  }

  /**
   * Appends one field.
   *
   * @param name lower-case name
   * @param value the value
   * @param w the output
   */
  field(name: string, value: string, w: ByteWriter): void {
    const t = this.#table;
    const key = name + "\0" + value;
    const st = STATIC_PAIR.get(key);
    if (st !== undefined) return writeInt(w, 7, 0x80, st);
    const dyn = this.#pairs.get(key);
    if (dyn !== undefined) return writeInt(w, 7, 0x80, STATIC_LEN + t.inserted - dyn);
    let nameIndex = STATIC_NAME.get(name) ?? 0;
    if (nameIndex === 0) {
      const dn = this.#names.get(name);
      if (dn !== undefined) nameIndex = STATIC_LEN + t.inserted - dn;
    }
    const cost = name.length + value.length;
    if (VOLATILE.has(name) || cost + ENTRY_OVERHEAD > t.max / 2 || wide(value) || wide(name)) {
      // Literal without indexing (sec. 6.2.2).
      writeInt(w, 4, 0, nameIndex);
    } else {
      writeInt(w, 6, 0x40, nameIndex);
      const abs = t.inserted;
      t.add(name, value, cost);
      this.#pairs.set(key, abs);
      this.#names.set(name, abs);
    }
    if (nameIndex === 0) writeString(w, name);
    writeString(w, value);
  }
}
