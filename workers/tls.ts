/**
 * HTTPS for an HTTP worker: HTTP/1.1 over TLS through our own engine, and
 * HTTP/2 through `Deno.serve`, on one port, chosen per connection by ALPN.
 *
 * Each worker listens with `Deno.listenTls({ reusePort: true, alpnProtocols:
 * ["h2", "http/1.1"] })` (the kernel spreads connections over the workers by
 * hash, as in reuseport mode) and completes the handshake itself:
 *
 * - ALPN `http/1.1`, or none: the `Deno.TlsConn` goes to `serveDenoConn`, the
 *   same engine and deadlines as plain HTTP (header, idle, write timeouts).
 * - ALPN `h2`: Deno has no public API to run its HTTP/2 server over an
 *   accepted connection, only over a listener it owns. So each worker runs a
 *   private `Deno.serve` on 127.0.0.1, port 0 (it speaks h2c with prior
 *   knowledge), and pipes the decrypted bytes of each h2 connection to it and
 *   back. That server calls the same file handler through
 *   {@linkcode toRequestHead} and {@linkcode toResponse}. Loopback TCP, not a
 *   Unix socket, because the pipe's local port is what ties a request there
 *   to its TLS client (`ServeHandlerInfo.remoteAddr` of a Unix connection is
 *   the server's own path): the access log needs the client's address, and
 *   a connection that is not one of the worker's pipes (another local
 *   process) is answered 403.
 *
 * Access log and counters: `tap` gives each connection (h1) or request (h2)
 * its observers, as in plain HTTP. In h2 the byte count is the body handed to
 * Deno's server (its HPACK-compressed head is not visible here), the duration
 * ends when `Deno.serve` reports the response sent (`info.completed`), and
 * the log line says `HTTP/2.0`.
 *
 * Limits in h2 mode: `Deno.serve` has no header or idle timeouts of its own,
 * so the pipe enforces what it can see. The TLS handshake must finish within
 * the header timeout (both protocols; closing such a socket needs
 * `_tls_fd.ts`, so `--allow-ffi` on Linux); an h2 connection is closed when no
 * byte moved either way for the idle timeout, or when a write to the client
 * stayed pending for the write timeout. Not enforced: a per-request header
 * deadline (a client trickling bytes keeps a connection open), and any limit
 * on concurrent streams beyond hyper's defaults.
 *
 * @module
 */
import { ConnectionSet, serveDenoConn, SHED_HEAD, SHED_IDLE } from "../http/engine.ts";
import type { BodyPart, FileSlice, Handler, Reply, RequestHead } from "../http/types.ts";
import type { ConnectionTap } from "./_access_log.ts";
import { noDelayListener, reapSockets, type SocketPair } from "./_tls_fd.ts";
import { AcceptLoop } from "./_accept_loop.ts";

/** PEM certificate chain and private key. */
export interface TlsKeyPair {
  cert: string;
  key: string;
}

/** What {@linkcode startTls} needs from the worker. */
export interface TlsServerOptions {
  hostname: string;
  port: number;
  tls: TlsKeyPair;
  /** This worker's share of the connection cap. */
  maxConns: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  writeTimeoutMs: number;
  /** Called with +1 when a connection is taken and -1 when it closes. */
  onConn(delta: 1 | -1): void;
  /**
   * Sheds up to `n` HTTP/1.1 connections of `set` for new ones (and counts
   * them), `classes` as in `ConnectionSet.shed`. Default: `set.shed`.
   */
  shed?(n: number, classes?: number): number;
  /** Told how many handshakes were cut by the handshake deadline. */
  onHandshakeTimeout?(n: number): void;
  /** Told how many connections still in their handshake were shed at the cap. */
  onHandshakeShed?(n: number): void;
  /** Called when accept() fails for lack of file descriptors (retried later). */
  onEmfile(): void;
  /**
   * The observers (access log, response counters) of an h1 connection or an
   * h2 request from `remote`; `handler` is then not called directly.
   * Default: `handler`, nothing observed.
   */
  tap?(remote: Deno.Addr): ConnectionTap;
}

/** A running TLS listener of one worker. */
export interface TlsServer {
  /** The bound port (the real one when 0 was asked for). */
  port: number;
  /** The private HTTP/2 server's port on 127.0.0.1 (answers only this worker's pipes). */
  h2Port: number;
  /** Resolves when the accept loop has ended (after `stop`). */
  done: Promise<void>;
  /** Stops accepting. */
  stop(): void;
  /** Graceful: h1 connections via the set; h2 connections finish their streams. */
  drain(): Promise<void>;
}

const FILE_CHUNK = 65536;
/** Handshakes cut per event-loop turn at most (one fd-table scan each). */
const CUT_BATCH = 256;
const PIPE_CHUNK = 65536;
const ALPN = ["h2", "http/1.1"];
const LOOPBACK = "127.0.0.1";

/** Hop-by-hop headers that HTTP/2 forbids and Deno.serve sets itself. */
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "date"]);

/**
 * Converts a `Request` from `Deno.serve` to the engine's {@linkcode RequestHead}.
 * The target is taken from `req.url` as sent (no dot-segment or
 * percent-encoding normalisation), so the handler's own checks see the raw path.
 *
 * @param req the request
 * @returns the head; `minor` is 1 (HTTP/2 keeps HTTP/1.1 semantics)
 *
 * @example Convert a request
 * ```ts
 * import { toRequestHead } from "./tls.ts";
 * const head = toRequestHead(new Request("https://x/a%20b/?sort=size"));
 * console.log(head.path, head.query); // "/a%20b/" "sort=size"
 * ```
 */
export function toRequestHead(req: Request): RequestHead {
  const url = req.url;
  const authority = url.indexOf("://");
  const slash = authority < 0 ? -1 : url.indexOf("/", authority + 3);
  const target = slash < 0 ? "/" : url.slice(slash);
  const q = target.indexOf("?");
  const headers: string[] = [];
  for (const [k, v] of req.headers) headers.push(k, v);
  return {
    method: req.method,
    target,
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? "" : target.slice(q + 1),
    minor: 1,
    headers,
  };
}

const decoder = new TextDecoder();
const parsedHeads = new WeakMap<Uint8Array, Array<[string, string]>>();

/** Headers of a pre-serialised head (status line skipped), parsed once per head. */
function rawHeaders(raw: Uint8Array): Array<[string, string]> {
  let out = parsedHeads.get(raw);
  if (out) return out;
  out = [];
  const lines = decoder.decode(raw).split("\r\n");
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(":");
    if (colon > 0) out.push([lines[i].slice(0, colon), lines[i].slice(colon + 1).trim()]);
  }
  parsedHeads.set(raw, out);
  return out;
}

function isSlice(p: BodyPart): p is FileSlice {
  return !(p instanceof Uint8Array);
}

/**
 * A stream of the reply's body parts; file slices are read in 64 KiB chunks
 * as the client pulls. `release` is called once: at the end, on an error, or
 * when the client goes away (cancel).
 */
function bodyStream(
  parts: BodyPart[],
  release: () => void,
  sent?: { bytes: number },
): ReadableStream<Uint8Array> {
  let i = 0;
  let pos = -1;
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        while (i < parts.length) {
          const p = parts[i];
          if (!isSlice(p)) {
            i++;
            if (p.length === 0) continue;
            if (sent) sent.bytes += p.length;
            return ctrl.enqueue(p);
          }
          if (pos < 0) {
            pos = p.start;
            if (pos < p.end) await p.file.seek(pos, Deno.SeekMode.Start);
          }
          if (pos >= p.end) {
            i++;
            pos = -1;
            continue;
          }
          const buf = new Uint8Array(Math.min(FILE_CHUNK, p.end - pos));
          const n = await p.file.read(buf);
          // The file shrank under us: fail the stream rather than pad it.
          if (n === null || n === 0) throw new Error("file shorter than its Content-Length");
          pos += n;
          if (sent) sent.bytes += n;
          return ctrl.enqueue(n === buf.length ? buf : buf.subarray(0, n));
        }
        release();
        ctrl.close();
      } catch (e) {
        release();
        ctrl.error(e);
      }
    },
    cancel() {
      release();
    },
  }, { highWaterMark: 0 });
}

/**
 * Converts the handler's {@linkcode Reply} to a `Response` for `Deno.serve`:
 * hop-by-hop headers dropped, `Content-Length` from `reply.length`, no body
 * for HEAD, 1xx, 204 and 304. `reply.release` runs exactly once, when the
 * body is done (or at once when there is no streamed body).
 *
 * @param reply the handler's answer
 * @param method the request method (HEAD gets no body)
 * @param sent if given, `bytes` grows by each body byte handed to the
 *   `Response` (all at once for an in-memory body, chunk by chunk for files)
 * @returns the response
 *
 * @example Convert a small reply
 * ```ts
 * import { toResponse } from "./tls.ts";
 * const body = new TextEncoder().encode("hi");
 * const res = toResponse({ status: 200, headers: [["content-type", "text/plain"]], body: [body], length: 2 }, "GET");
 * console.log(res.status, await res.text()); // 200 "hi"
 * ```
 */
export function toResponse(reply: Reply, method: string, sent?: { bytes: number }): Response {
  const status = reply.status;
  const source = reply.headers.length === 0 && reply.rawHead
    ? rawHeaders(reply.rawHead)
    : reply.headers;
  const headers = new Headers();
  for (const [k, v] of source) {
    const lower = k.toLowerCase();
    if (!HOP.has(lower) && lower !== "content-length") headers.append(k, v);
  }
  const bodiless = status === 204 || status === 304 || status < 200;
  if (!bodiless) headers.set("content-length", String(reply.length));
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    reply.release?.();
  };
  const parts = reply.body;
  if (bodiless || method === "HEAD" || reply.length === 0) {
    release();
    return new Response(null, { status, headers });
  }
  if (parts.length === 1 && !isSlice(parts[0])) {
    release();
    if (sent) sent.bytes += parts[0].length;
    return new Response(parts[0] as Uint8Array<ArrayBuffer>, { status, headers });
  }
  return new Response(bodyStream(parts, release, sent), { status, headers });
}

/** One proxied h2 connection: its deadline state, checked by the worker's ticker. */
interface Pipe {
  last: number;
  writing: boolean;
  close(): void;
}

/**
 * Starts the TLS listener of one worker (and its private h2 server).
 *
 * @param handler the file handler (already counting requests)
 * @param set the worker's connection set (HTTP/1.1 connections)
 * @param o where to listen, the key pair, limits and counters
 * @returns the running listener
 * @throws the `Deno.listenTls` error (bad PEM, port in use)
 */
export function startTls(handler: Handler, set: ConnectionSet, o: TlsServerOptions): TlsServer {
  const listener = Deno.listenTls({
    hostname: o.hostname,
    port: o.port,
    cert: o.tls.cert,
    key: o.tls.key,
    reusePort: true,
    alpnProtocols: ALPN,
  });
  // Responses go out in pieces (head, file chunks): no Nagle delay between them.
  noDelayListener(listener.addr as Deno.NetAddr);
  const tap = o.tap ?? (() => ({ handler, onResponse() {} }));
  /** The TLS client of each live pipe, by the pipe's local port on loopback. */
  const peers = new Map<number, Deno.Addr>();
  const h2 = Deno.serve({ hostname: LOOPBACK, port: 0, onListen() {} }, async (req, info) => {
    const via = info.remoteAddr as Deno.NetAddr;
    const remote = via.hostname === LOOPBACK ? peers.get(via.port) : undefined;
    // Not one of this worker's pipes: another local process found the port.
    if (remote === undefined) return new Response(null, { status: 403 });
    const head = toRequestHead(req);
    const t = tap(remote);
    const sent = { bytes: 0 };
    let res: Response;
    let status: number;
    try {
      const reply = await t.handler(head);
      status = reply.status;
      res = toResponse(reply, head.method, sent);
    } catch {
      // As the h1 engine does: the bug is answered 500, not left to Deno.serve.
      status = 500;
      res = new Response(null, { status });
    }
    const done = () => t.onResponse(head, status, sent.bytes, true);
    info.completed.then(done, done);
    return res;
  });
  const h2port = h2.addr.port;
  const engine = {
    headerTimeoutMs: o.headerTimeoutMs,
    idleTimeoutMs: o.idleTimeoutMs,
    writeTimeoutMs: o.writeTimeoutMs,
  };
  const pipes = new Set<Pipe>();
  /** Resolved when the last pipe closes during a drain. */
  let pipesGone: (() => void) | undefined;
  /**
   * Connections in their TLS handshake, oldest first (a Map keeps insertion
   * order), with when they were accepted.
   */
  const handshaking = new Map<Deno.TlsConn, number>();
  /** Handshakes we cut (deadline or shed): their failure is ours, not the client's. */
  const cut = new WeakSet<Deno.TlsConn>();
  /**
   * Closes handshaking connections now. `close()` alone leaves the socket
   * open until the handshake ends (Deno drives it on), so their sockets are
   * also shut down, all in one scan of the fd table.
   */
  const cutHandshakes = (conns: Deno.TlsConn[]): void => {
    const pairs: SocketPair[] = [];
    for (const conn of conns) {
      handshaking.delete(conn);
      cut.add(conn);
      pairs.push({
        local: conn.localAddr as Deno.NetAddr,
        remote: conn.remoteAddr as Deno.NetAddr,
      });
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    reapSockets(pairs);
  };
  const shedH1 = o.shed ?? ((n: number, classes?: number) => set.shed(n, classes));
  /**
   * Makes room for `n` new connections: kept-alive idle HTTP/1.1 ones first,
   * then handshakes that have not finished (oldest first: they give the
   * least), then HTTP/1.1 ones still sending a head. Never one mid-response.
   */
  const shed = (n: number): number => {
    if (n <= 0) return 0;
    let done = shedH1(n, SHED_IDLE);
    if (done < n && handshaking.size > 0) {
      const victims: Deno.TlsConn[] = [];
      for (const conn of handshaking.keys()) {
        if (done + victims.length >= n) break;
        victims.push(conn);
      }
      cutHandshakes(victims);
      done += victims.length;
      o.onHandshakeShed?.(victims.length);
    }
    if (done < n) done += shedH1(n - done, SHED_HEAD);
    return done;
  };
  // Handshake deadlines every 250 ms (so one fires at most that late, plus
  // timer lag); h2 pipe deadlines each second.
  let turn = 0;
  /**
   * Cuts the handshakes past their deadline, oldest first, at most CUT_BATCH
   * per event-loop turn: thousands timing out together would otherwise hold
   * the thread while other clients wait.
   */
  const cutLate = (): void => {
    const now = Date.now();
    const late: Deno.TlsConn[] = [];
    for (const [conn, since] of handshaking) {
      if (now - since < o.headerTimeoutMs || late.length >= CUT_BATCH) break;
      late.push(conn);
    }
    if (late.length === 0) return;
    cutHandshakes(late);
    o.onHandshakeTimeout?.(late.length);
    if (late.length === CUT_BATCH) setTimeout(cutLate, 0);
  };
  const ticker = setInterval(() => {
    const now = Date.now();
    if (handshaking.size > 0) cutLate();
    if (++turn % 4 !== 0) return;
    for (const p of pipes) {
      if (now - p.last > (p.writing ? o.writeTimeoutMs : o.idleTimeoutMs)) p.close();
    }
  }, 250);
  Deno.unrefTimer(ticker);

  let stopped = false;

  async function serveConn(conn: Deno.TlsConn): Promise<void> {
    let alpn: string | null;
    // A client that never finishes the handshake is a slowloris too: the
    // ticker cuts it at the header timeout.
    handshaking.set(conn, Date.now());
    try {
      alpn = (await conn.handshake()).alpnProtocol;
    } catch {
      if (!cut.has(conn)) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      return;
    } finally {
      handshaking.delete(conn);
    }
    if (cut.has(conn)) return;
    if (alpn === "h2") return await pipeH2(conn);
    const t = tap(conn.remoteAddr);
    await serveDenoConn(conn, t.handler, set, engine, t.onResponse);
  }

  async function pipeH2(conn: Deno.TlsConn): Promise<void> {
    let up: Deno.TcpConn;
    try {
      up = await Deno.connect({ hostname: LOOPBACK, port: h2port });
      up.setNoDelay(true);
    } catch {
      conn.close();
      return;
    }
    // Known before the first byte reaches Deno.serve, gone when the pipe closes.
    const port = (up.localAddr as Deno.NetAddr).port;
    peers.set(port, conn.remoteAddr);
    let closed = false;
    const pipe: Pipe = {
      last: Date.now(),
      writing: false,
      close() {
        if (closed) return;
        closed = true;
        pipes.delete(pipe);
        peers.delete(port);
        if (pipes.size === 0) pipesGone?.();
        for (const c of [conn, up]) {
          try {
            c.close();
          } catch {
            // Already closed by the peer.
          }
        }
      },
    };
    pipes.add(pipe);
    const copy = async (from: Deno.Conn, to: Deno.Conn, toClient: boolean) => {
      const buf = new Uint8Array(PIPE_CHUNK);
      try {
        while (!closed) {
          const n = await from.read(buf);
          if (n === null) break;
          pipe.last = Date.now();
          if (toClient) pipe.writing = true;
          let off = 0;
          while (off < n) off += await to.write(buf.subarray(off, n));
          if (toClient) pipe.writing = false;
          pipe.last = Date.now();
        }
      } catch {
        // Reset or closed by the other direction.
      }
      pipe.close();
    };
    await Promise.all([copy(conn, up, false), copy(up, conn, true)]);
  }

  const accepting = new AcceptLoop<Deno.TlsConn>(listener, {
    maxConns: o.maxConns,
    stopped: () => stopped,
    shed,
    // Shedding frees fds at once when something can go.
    onEmfile(open) {
      o.onEmfile();
      shed(Math.max(1, Math.ceil(open / 16)));
    },
    onConn: o.onConn,
    serve: serveConn,
  });
  const done = accepting.done;

  return {
    port: (listener.addr as Deno.NetAddr).port,
    h2Port: h2port,
    done,
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      accepting.wake();
    },
    async drain() {
      this.stop();
      // h2: GOAWAY, in-flight streams finish; then the pipes see EOF and close.
      const gone = new Promise<void>((r) => pipesGone = r);
      if (pipes.size === 0) pipesGone!();
      await Promise.all([set.drain(), h2.shutdown(), gone]);
      clearInterval(ticker);
    },
  };
}
