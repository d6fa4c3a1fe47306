/**
 * Test helper: raw HTTP/1.1 over a fresh `Deno.connect` socket, and a small
 * response parser that splits the bytes a server sent into responses (so a
 * test can count them: one request, one response).
 *
 * Private to `tests/`.
 *
 * @module
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One parsed response. `complete` is false when the body was cut short. */
export interface ParsedResponse {
  status: number;
  statusLine: string;
  /** Lower-cased names. */
  headers: Array<[string, string]>;
  body: Uint8Array;
  complete: boolean;
}

/** What came back on one connection. */
export interface Exchange {
  /** Every byte the server sent. */
  bytes: Uint8Array;
  /** The server closed (EOF or reset) before our deadline. */
  closed: boolean;
  /** Our deadline hit while the connection was still open. */
  timedOut: boolean;
  /** Milliseconds from the first write to the end of reading. */
  ms: number;
  responses: ParsedResponse[];
  /** Bytes after the last parsed response that form no response. */
  trailing: Uint8Array;
}

/** Options for {@linkcode exchange}. */
export interface ExchangeOptions {
  /** Give up reading after this long. @default 10000 */
  timeoutMs?: number;
  /** Shut down our write side after sending (EOF to the server). @default true */
  halfClose?: boolean;
  /**
   * Stop once this many complete responses arrived and no more bytes came for
   * `settleMs` (catches a second, unwanted response). Without it, reads until
   * the server closes or the deadline.
   */
  expectResponses?: number;
  /** @default 250 */
  settleMs?: number;
  /** The requests were HEAD: responses carry no body. */
  head?: boolean;
  /** Stop after this many bytes. @default 256 MiB */
  maxBytes?: number;
}

/** Header value (first), by lower-case name. */
export function header(r: ParsedResponse, name: string): string | undefined {
  return r.headers.find(([n]) => n === name)?.[1];
}

function indexOfCrlfCrlf(b: Uint8Array, from: number): number {
  for (let i = from; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

/**
 * Splits `bytes` into responses using Content-Length (and chunked framing);
 * a response without either runs to the end (close-delimited).
 *
 * @param bytes everything the server sent on one connection
 * @param head whether the requests were HEAD (no bodies)
 * @returns the responses and any bytes that did not form one
 */
export function parseResponses(
  bytes: Uint8Array,
  head = false,
): { responses: ParsedResponse[]; trailing: Uint8Array } {
  const responses: ParsedResponse[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const end = indexOfCrlfCrlf(bytes, pos);
    if (end < 0) break;
    const headText = dec.decode(bytes.subarray(pos, end));
    const lines = headText.split("\r\n");
    const m = lines[0].match(/^HTTP\/\d\.\d (\d{3})(?: .*)?$/);
    if (!m) break;
    const status = Number(m[1]);
    const headers: Array<[string, string]> = [];
    for (const line of lines.slice(1)) {
      const c = line.indexOf(":");
      headers.push(
        c < 0 ? [line.toLowerCase(), ""] : [
          line.slice(0, c).toLowerCase(),
          line.slice(c + 1).trim(),
        ],
      );
    }
    let bodyStart = end + 4;
    const r: ParsedResponse = {
      status,
      statusLine: lines[0],
      headers,
      body: new Uint8Array(0),
      complete: true,
    };
    responses.push(r);
    const noBody = head || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (noBody) {
      pos = bodyStart;
      continue;
    }
    const te = header(r, "transfer-encoding");
    const cl = header(r, "content-length");
    if (te && /chunked/i.test(te)) {
      const parts: Uint8Array[] = [];
      let p = bodyStart;
      let done = false;
      while (p < bytes.length) {
        const lineEnd = bytes.indexOf(10, p);
        if (lineEnd < 0) break;
        const size = parseInt(dec.decode(bytes.subarray(p, lineEnd)), 16);
        if (!Number.isFinite(size)) break;
        p = lineEnd + 1;
        if (size === 0) {
          const trailerEnd = indexOfCrlfCrlf(bytes, p - 2);
          p = trailerEnd < 0 ? bytes.length : trailerEnd + 4;
          done = true;
          break;
        }
        parts.push(bytes.subarray(p, Math.min(p + size, bytes.length)));
        p += size + 2;
      }
      r.body = concat(parts);
      r.complete = done;
      pos = Math.min(p, bytes.length);
      if (!done) break;
      continue;
    }
    if (cl !== undefined && /^\d+$/.test(cl)) {
      const n = Number(cl);
      const avail = Math.min(n, bytes.length - bodyStart);
      r.body = bytes.subarray(bodyStart, bodyStart + avail);
      r.complete = avail === n;
      bodyStart += avail;
      pos = bodyStart;
      if (!r.complete) break;
      continue;
    }
    // Close-delimited.
    r.body = bytes.subarray(bodyStart);
    pos = bytes.length;
  }
  return { responses, trailing: bytes.subarray(pos) };
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Encodes a string as Latin-1 (one byte per code unit < 256), else UTF-8. */
export function bytesOf(s: string | Uint8Array): Uint8Array {
  if (typeof s !== "string") return s;
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\xff]*$/.test(s)) {
    const b = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
    return b;
  }
  return enc.encode(s);
}

/** Counts `HTTP/1.x NNN ` status lines anywhere at a line start. */
export function countStatusLines(bytes: Uint8Array): number {
  const text = dec.decode(bytes);
  return (text.match(/(?:^|\r?\n)HTTP\/\d\.\d \d{3}[ \r]/g) ?? []).length;
}

/**
 * Opens a fresh connection, writes `request`, reads what comes back.
 * Never throws for network errors after connecting: a reset counts as closed.
 *
 * @param port server port on 127.0.0.1 (or `hostname`)
 * @param request raw bytes (a string is sent as Latin-1 when it fits)
 * @param options deadline, half-close, expected response count
 * @returns bytes, parsed responses, and how the connection ended
 */
export async function exchange(
  port: number,
  request: string | Uint8Array,
  options: ExchangeOptions = {},
  hostname = "127.0.0.1",
): Promise<Exchange> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const settleMs = options.settleMs ?? 250;
  const maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
  const conn = await Deno.connect({ hostname, port });
  const t0 = performance.now();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let closed = false;
  let timedOut = false;
  try {
    const data = bytesOf(request);
    const writing = (async () => {
      try {
        let off = 0;
        while (off < data.length) off += await conn.write(data.subarray(off));
        if (options.halfClose ?? true) await conn.closeWrite();
      } catch {
        // The server may close before reading everything (e.g. 413/431).
      }
    })();
    const buf = new Uint8Array(64 * 1024);
    const deadline = t0 + timeoutMs;
    let settledAt = 0;
    // Re-parsing everything on each read is quadratic for big bodies: past
    // 1 MiB, parse again only once the bytes have doubled.
    let parseAt = 0;
    while (true) {
      const now = performance.now();
      let wait = deadline - now;
      if (options.expectResponses !== undefined && settledAt > 0) {
        wait = Math.min(wait, settledAt + settleMs - now);
      }
      if (wait <= 0) {
        timedOut = settledAt === 0 || performance.now() >= deadline;
        break;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        conn.read(buf).catch(() => null),
        new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), wait)),
      ]);
      clearTimeout(timer);
      if (n === "timeout") {
        // The read stays pending; closing the conn below ends it.
        if (settledAt === 0) timedOut = true;
        break;
      }
      if (n === null) {
        closed = true;
        break;
      }
      chunks.push(buf.slice(0, n));
      total += n;
      if (total >= maxBytes) break;
      if (options.expectResponses !== undefined && total >= parseAt) {
        parseAt = total < 1024 * 1024 ? 0 : total * 2;
        const { responses } = parseResponses(concat(chunks), options.head);
        const done = responses.filter((r) => r.complete).length;
        settledAt = done >= options.expectResponses ? performance.now() : 0;
      }
    }
    await writing;
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
  const bytes = concat(chunks);
  const { responses, trailing } = parseResponses(bytes, options.head);
  return { bytes, closed, timedOut, ms: performance.now() - t0, responses, trailing };
}

/** Index of `needle` in `hay` (byte-wise), or -1. */
export function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  if (needle.length === 0) return 0;
  const first = needle[0];
  outer: for (let i = hay.indexOf(first); i >= 0 && i + needle.length <= hay.length;) {
    for (let j = 1; j < needle.length; j++) {
      if (hay[i + j] !== needle[j]) {
        i = hay.indexOf(first, i + 1);
        continue outer;
      }
    }
    return i;
  }
  return -1;
}

/** Runs `fn` over `items` with at most `limit` in flight, keeping order. */
export async function pool<T, R>(
  items: T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}
