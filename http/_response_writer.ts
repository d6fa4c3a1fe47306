/**
 * The write side of one HTTP/1.1 connection: the one body writer. It turns a
 * {@linkcode Reply} into bytes on a {@linkcode Transport}, whatever the body:
 * bytes in memory, file slices (`sendfile(2)` when the transport has it, else
 * read and write in chunks), or a stream of unknown length (chunked on
 * HTTP/1.1, close-delimited on HTTP/1.0) or of known length (Content-Length,
 * cut when it yields more or fewer bytes).
 *
 * Contract:
 * - {@linkcode ResponseWriter.write} answers one reply: it releases the reply
 *   exactly once and calls `onResponse` exactly once (bytes handed to the
 *   transport, head included), whichever way the write ends, and returns
 *   whether the connection may read the next request (`true`) or must close.
 * - A head and a body that fit the out buffer (and every HEAD, 204, 304) go
 *   out in one transport write with no await and no allocation: the hot path.
 * - A write that does not finish at once starts the write deadline
 *   (`writing`, `since`); the connection's tick checks it. A send that throws
 *   or rejects calls `abort` (the connection closes itself and then this
 *   writer's transport, through {@linkcode ResponseWriter.close}).
 *
 * @module
 */
import type { ConnectionHooks, Transport } from "./_engine_types.ts";
import type { Reply, RequestHead } from "./types.ts";
import {
  chunkPool,
  CLOSE_TAIL,
  currentDateBytes,
  encoder,
  errorResponse,
  FILE_CHUNK,
  frameChunk,
  hasCrLf,
  isSlice,
  isThenable,
  KEEP_TAIL,
  LAST_CHUNK,
  OUT_SIZE,
  outPool,
  POOL_MAX,
  reasonPhrase,
  releaseReply,
} from "./_wire.ts";

const returnFalse = (): false => false;

// ---- net: --limit-rate (#13) ----

/** Download pacing of one connection's responses (nginx's limit_rate / limit_rate_after). */
export interface RateLimit {
  /** Bytes per millisecond. */
  perMs: number;
  /** Bytes of each response sent before pacing starts. */
  after: number;
  /** Largest single send while paced: about 1/8 s of the rate, 4-64 KiB. */
  step: number;
}

/**
 * A {@linkcode RateLimit} for `bytesPerSecond`.
 *
 * @param bytesPerSecond the rate (> 0)
 * @param after bytes of each response at full speed first
 * @returns the limit
 */
export function rateOf(bytesPerSecond: number, after: number): RateLimit {
  const step = Math.max(4096, Math.min(FILE_CHUNK, Math.floor(bytesPerSecond / 8)));
  return { perMs: bytesPerSecond / 1000, after, step };
}

/** The output of one connection (one per connection, reused for every response). */
export class ResponseWriter {
  /** The transport is closed (by {@linkcode ResponseWriter.close}). */
  dead = false;
  /** A transport write is pending: the write deadline runs. */
  writing = false;
  /** When the pending write was first seen by a tick (NaN: not seen yet). */
  since = NaN;
  #t: Transport;
  #onResponse: ConnectionHooks["onResponse"];
  #abort: () => void;
  #out: Uint8Array | null = null;
  #chunk: Uint8Array | null = null;
  /** Bytes handed to the transport for the response being written (slow path). */
  #bytes = 0;
  /** `--limit-rate`: pacing of the slow path; undefined: off. */
  #rate: RateLimit | undefined;
  /** When the paced response started (performance.now()). */
  #t0 = 0;

  /**
   * @param transport Where the bytes go.
   * @param onResponse Told each response's status and bytes.
   * @param abort Closes the connection (a send failed, or the body cannot be completed).
   * @param rate Download pacing (`--limit-rate`); undefined: none.
   */
  constructor(
    transport: Transport,
    onResponse: ConnectionHooks["onResponse"],
    abort: () => void,
    rate?: RateLimit,
  ) {
    this.#rate = rate;
    this.#t = transport;
    this.#onResponse = onResponse;
    this.#abort = abort;
  }

  /** Closes the transport once; pending writes then settle. */
  close(): void {
    if (this.dead) return;
    this.dead = true;
    this.writing = false;
    try {
      this.#t.close();
    } catch {
      // Already closed by the peer: nothing left to do.
    }
  }

  /** Gives the pooled buffers back; only called when no write is pending. */
  returnBuffers(): void {
    if (this.#out !== null) {
      if (outPool.length < POOL_MAX) outPool.push(this.#out);
      this.#out = null;
    }
    if (this.#chunk !== null) {
      if (chunkPool.length < POOL_MAX) chunkPool.push(this.#chunk);
      this.#chunk = null;
    }
  }

  /**
   * Writes `reply` as the response to `req`.
   *
   * @param req The request answered.
   * @param reply The handler's reply.
   * @param keepAlive The connection may stay open after it (the head says so).
   * @returns Whether the next request may be read, or a promise of it.
   */
  write(req: RequestHead, reply: Reply, keepAlive: boolean): Promise<boolean> | boolean {
    if (this.dead) {
      releaseReply(reply);
      return false;
    }
    const status = reply.status;
    const bodiless = status === 204 || status === 304 || status < 200;
    const noBody = bodiless || req.method === "HEAD";
    const stream = reply.stream !== undefined;
    const parts = reply.body;
    let total = 0;
    let simple = true;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (isSlice(p)) {
        total += p.end - p.start;
        simple = false;
      } else total += p.length;
    }
    // A stream of unknown length is framed by chunks on HTTP/1.1; HTTP/1.0
    // has no chunked coding, so there the body ends when we close. A stream
    // of known length (zip/tar downloads) goes out with Content-Length.
    const known = stream && reply.length >= 0;
    const chunked = stream && !known && req.minor === 1 && !bodiless;
    const keep = keepAlive && (!stream || known || chunked || noBody);
    const valid = Number.isInteger(status) && status >= 100 && status <= 999 &&
      (stream
        ? reply.length >= -1 && reply.rawHead === undefined && simple
        : (noBody || total === reply.length) && reply.length >= 0);
    const head = valid ? this.#head(reply, keep, !bodiless && (!stream || known), chunked) : null;
    if (head === null) {
      releaseReply(reply);
      console.error(
        stream
          ? `ringhttpd: bad streaming reply for ${req.method} ${req.target}: status ${status}, length ${reply.length}`
          : `ringhttpd: bad reply for ${req.method} ${req.target}: status ${status}, length ${reply.length}, body ${total}`,
      );
      const w = this.sendError(500, req, req.method === "HEAD");
      return w === undefined ? false : w.then(returnFalse);
    }
    if (noBody || (!stream && simple && head.length + total <= head.buffer.byteLength)) {
      // Fast path: one write of head + small in-memory body, no await.
      let n = head.length;
      let bytes = head;
      if (!noBody) {
        bytes = new Uint8Array(head.buffer, head.byteOffset, head.length + total);
        for (let i = 0; i < parts.length; i++) {
          const p = parts[i] as Uint8Array;
          bytes.set(p, n);
          n += p.length;
        }
      }
      const w = this.send(bytes);
      if (w !== undefined) return w.then(() => this.#done(req, reply, n, keep));
      return this.#done(req, reply, n, keep);
    }
    return this.#writeBody(req, reply, head, keep, chunked);
  }

  /**
   * Sends the engine's own error response, reports it and closes.
   *
   * @param status The status (see {@linkcode errorResponse}).
   * @param req The request, when one was parsed.
   * @param head Send the head only (the request is a HEAD).
   * @returns A promise while the write is pending.
   */
  sendError(status: number, req: RequestHead | null, head: boolean): Promise<void> | undefined {
    const bytes = errorResponse(status, head);
    const w = this.send(bytes);
    if (w === undefined) return this.#failed(req, status, bytes.length);
    return w.then(() => this.#failed(req, status, bytes.length));
  }

  #failed(req: RequestHead | null, status: number, bytes: number): undefined {
    this.#onResponse?.(req, status, bytes);
    this.#abort();
    return undefined;
  }

  /**
   * Writes `bytes`; on failure aborts. The write deadline runs while it is pending.
   *
   * @param bytes Valid until the returned promise resolves.
   * @returns A promise while the write is pending.
   */
  send(bytes: Uint8Array): Promise<void> | undefined {
    if (this.dead) return;
    this.#bytes += bytes.length;
    let r: Promise<void> | void;
    try {
      r = this.#t.write(bytes);
    } catch {
      this.#abort();
      return;
    }
    if (r === undefined || !isThenable(r)) return;
    this.writing = true;
    this.since = NaN;
    return r.then(
      () => {
        this.writing = false;
      },
      () => this.#abort(),
    );
  }

  /** The response is out (or given up): release, buffers back, report. */
  #done(req: RequestHead, reply: Reply, bytes: number, keep: boolean): boolean {
    releaseReply(reply);
    // The response is out and nothing reads into the buffers now. Here, not
    // only when the input runs dry: a `Connection: close` response never
    // gets there, and a 16 KiB buffer per connection is garbage outside the
    // JS heap that only a GC frees.
    this.returnBuffers();
    this.#onResponse?.(req, reply.status, bytes);
    return keep && !this.dead;
  }

  /** Serialises the head into the out buffer; null when a header holds CR/LF. */
  #head(reply: Reply, keep: boolean, sendLength: boolean, chunked: boolean): Uint8Array | null {
    let s = "";
    if (reply.rawHead === undefined) {
      const status = reply.status;
      s = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
      const hs = reply.headers;
      for (let i = 0; i < hs.length; i++) {
        const [k, v] = hs[i];
        // Response splitting guard: a CR/LF in a header would forge headers.
        if (hasCrLf(k) || hasCrLf(v)) return null;
        s += `${k}: ${v}\r\n`;
      }
      if (sendLength) s += `Content-Length: ${reply.length}\r\n`;
      if (chunked) s += "Transfer-Encoding: chunked\r\n";
    }
    const date = currentDateBytes();
    const tail = keep ? KEEP_TAIL : CLOSE_TAIL;
    const raw = reply.rawHead;
    const rawLen = raw === undefined ? 0 : raw.length;
    let out = this.#out ??= outPool.pop() ?? new Uint8Array(OUT_SIZE);
    const max = rawLen + s.length * 3 + date.length + tail.length;
    if (max > out.length) out = new Uint8Array(max + OUT_SIZE);
    let n = 0;
    if (raw !== undefined) {
      out.set(raw, 0);
      n = rawLen;
    } else {
      n = encoder.encodeInto(s, out).written;
    }
    out.set(date, n);
    n += date.length;
    out.set(tail, n);
    n += tail.length;
    return out.subarray(0, n);
  }

  /**
   * Every body that is not one small write. A body that cannot be completed
   * (a file shrank, a stream threw, a send failed) closes the connection:
   * the promised length cannot be kept, and padding would serve bytes that
   * are not the file; for chunked, closing without the last chunk is how
   * HTTP/1.1 says the body is incomplete.
   */
  async #writeBody(
    req: RequestHead,
    reply: Reply,
    head: Uint8Array,
    keep: boolean,
    chunked: boolean,
  ): Promise<boolean> {
    this.#bytes = 0;
    if (this.#rate !== undefined) this.#t0 = performance.now();
    let ok = false;
    try {
      ok = reply.stream !== undefined
        ? await this.#sendStream(reply, head, chunked)
        : await this.#sendParts(reply, head);
    } catch (err) {
      if (!this.dead) {
        const what = reply.stream !== undefined ? "streaming" : "writing";
        console.error(`ringhttpd: ${what} ${req.target} failed: ${err}`);
      }
    }
    if (!ok) this.#abort();
    return this.#done(req, reply, this.#bytes, keep && ok);
  }

  /** Head + file slices and bytes; false when the body could not be completed. */
  async #sendParts(reply: Reply, head: Uint8Array): Promise<boolean> {
    if (head.length + reply.length <= head.buffer.byteLength) return this.#sendSmall(reply, head);
    // With sendfile(2), the head goes out with the first file bytes (one
    // segment instead of two); otherwise first, by itself.
    const sendFile = this.#t.sendFile !== undefined;
    const first = reply.body[0];
    let headLeft: Uint8Array | null = head;
    if (!(sendFile && isSlice(first) && first.rawFd)) {
      await this.send(head);
      headLeft = null;
    }
    for (const part of reply.body) {
      if (this.dead) return false;
      if (isSlice(part) && part.rawFd && sendFile) {
        const fd = part.rawFd();
        const r = fd < 0
          ? -2
          : this.#rate === undefined
          ? await this.#sendFile(headLeft, fd, part.start, part.end)
          : await this.#sendFilePaced(headLeft, fd, part.start, part.end);
        if (r === -1 || this.dead) return false;
        if (headLeft !== null && fd >= 0) {
          this.#bytes += headLeft.length;
          headLeft = null;
        }
        if (r >= 0) {
          this.#bytes += r;
          // Truncated under us: never pad, end the connection early.
          if (r < part.end - part.start) return false;
          continue;
        }
        // -2: this file cannot be sendfile'd; stream it below.
      }
      if (headLeft !== null) {
        await this.send(headLeft);
        headLeft = null;
        if (this.dead) return false;
      }
      if (!isSlice(part)) {
        await (this.#rate === undefined ? this.send(part) : this.#sendPaced(part));
        continue;
      }
      let pos = part.start;
      if (pos < part.end) await part.file.seek(pos, Deno.SeekMode.Start);
      const chunk = this.#chunk ??= chunkPool.pop() ?? new Uint8Array(FILE_CHUNK);
      const most = this.#rate?.step ?? FILE_CHUNK;
      while (pos < part.end && !this.dead) {
        const n = await part.file.read(chunk.subarray(0, Math.min(most, part.end - pos)));
        if (n === null || n === 0) return false; // The file shrank under us.
        pos += n;
        await this.send(chunk.subarray(0, n));
        if (this.#rate !== undefined) await this.#pace(this.#bytes);
      }
    }
    return !this.dead;
  }

  /** Head + a body that fits the out buffer, files included, as one write. */
  async #sendSmall(reply: Reply, head: Uint8Array): Promise<boolean> {
    const buf = new Uint8Array(head.buffer, head.byteOffset, head.length + reply.length);
    let n = head.length;
    for (const part of reply.body) {
      if (!isSlice(part)) {
        buf.set(part, n);
        n += part.length;
        continue;
      }
      let pos = part.start;
      if (pos < part.end) await part.file.seek(pos, Deno.SeekMode.Start);
      while (pos < part.end) {
        const r = await part.file.read(buf.subarray(n, n + part.end - pos));
        if (r === null || r === 0) return false; // Truncated: nothing was sent.
        pos += r;
        n += r;
      }
    }
    await this.send(buf);
    return !this.dead;
  }

  /**
   * Head, then the reply's bytes and its stream, each chunk pulled only after
   * the previous one is written (backpressure); the last chunk when chunked.
   * (A HEAD, 204 or 304 took the fast path: head only, the stream never started.)
   */
  async #sendStream(reply: Reply, head: Uint8Array, chunked: boolean): Promise<boolean> {
    await this.send(head);
    // A known length (zip/tar): a stream that overshoots or ends short is
    // cut there, so the client sees a short body, never a wrong one.
    const length = reply.length;
    let sent = 0;
    for (const part of reply.body as Uint8Array[]) {
      sent += part.length;
      await this.#sendChunk(part, chunked);
    }
    for await (const chunk of reply.stream!) {
      if (this.dead) break;
      sent += chunk.length;
      if (length >= 0 && sent > length) throw new Error(`stream passed its length ${length}`);
      await this.#sendChunk(chunk, chunked);
      if (this.#rate !== undefined) await this.#pace(this.#bytes);
    }
    if (length >= 0 && !this.dead && sent !== length) {
      throw new Error(`stream ended at ${sent} of ${length} bytes`);
    }
    if (chunked && !this.dead) await this.send(LAST_CHUNK);
    return !this.dead;
  }

  #sendChunk(chunk: Uint8Array, chunked: boolean): Promise<void> | undefined {
    // A zero-size chunk would end a chunked body.
    if (chunk.length === 0 || this.dead) return;
    if (chunked) {
      const need = chunk.length + 12;
      const frame = need <= OUT_SIZE
        ? (this.#out ??= outPool.pop() ?? new Uint8Array(OUT_SIZE))
        : new Uint8Array(need);
      chunk = frameChunk(frame, chunk);
    }
    return this.send(chunk);
  }

  /** {@linkcode Transport.sendFile} with the write deadline; -1 when the connection is gone. */
  #sendFile(
    head: Uint8Array | null,
    fd: number,
    start: number,
    end: number,
  ): Promise<number> | number {
    if (this.dead) return -1;
    let r: Promise<number> | number;
    try {
      r = this.#t.sendFile!(head, fd, start, end, this.#progress);
    } catch {
      this.#abort();
      return -1;
    }
    if (typeof r === "number") return r;
    this.writing = true;
    this.since = NaN;
    return r.then(
      (n) => {
        this.writing = false;
        return n;
      },
      () => {
        this.#abort();
        return -1;
      },
    );
  }

  /** `--limit-rate`: waits until `sent` bytes of this response are due. */
  #pace(sent: number): Promise<void> | undefined {
    const r = this.#rate!;
    const wait = this.#t0 + (sent - r.after) / r.perMs - performance.now();
    if (wait < 1 || this.dead) return;
    return new Promise((resolve) => setTimeout(resolve, wait));
  }

  /** `--limit-rate`: in-memory bytes in paced steps. */
  async #sendPaced(bytes: Uint8Array): Promise<void> {
    const step = this.#rate!.step;
    for (let at = 0; at < bytes.length && !this.dead; at += step) {
      await this.send(bytes.subarray(at, Math.min(bytes.length, at + step)));
      await this.#pace(this.#bytes);
    }
  }

  /**
   * `--limit-rate`: {@linkcode ResponseWriter.#sendFile} in paced steps;
   * same results (-2 only when nothing of the file went out).
   */
  async #sendFilePaced(
    head: Uint8Array | null,
    fd: number,
    start: number,
    end: number,
  ): Promise<number> {
    const step = this.#rate!.step;
    const before = this.#bytes + (head?.length ?? 0);
    let pos = start;
    while (pos < end) {
      const stop = Math.min(end, pos + step);
      const r = await this.#sendFile(head, fd, pos, stop);
      if (r < 0) return pos === start ? r : -1;
      head = null;
      pos += r;
      if (r < stop - (pos - r) || this.dead) break; // truncated, or gone: the caller sees it
      await this.#pace(before + pos - start);
    }
    return pos - start;
  }

  /** The peer took more of a long send: its write deadline starts over. */
  readonly #progress = (): void => {
    if (this.writing) this.since = NaN;
  };
}
