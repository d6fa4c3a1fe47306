/**
 * HTTPS for an HTTP worker: HTTP/1.1 and HTTP/2 over TLS through our own
 * engines, on one port, chosen per connection by ALPN.
 *
 * Each worker listens with `Deno.listenTls({ reusePort: true, alpnProtocols:
 * ["h2", "http/1.1"] })` (the kernel spreads connections over the workers by
 * hash, as in reuseport mode) and completes the handshake itself:
 *
 * - ALPN `http/1.1`, or none: the `Deno.TlsConn` goes to `serveDenoConn`, the
 *   same engine and deadlines as plain HTTP (header, idle, write timeouts).
 * - ALPN `h2`: the connection runs `http2/connection.ts` over the
 *   `Deno.TlsConn` (one read loop, one write at a time), calling the same
 *   handler with the same deadlines: the header timeout for the preface and
 *   for each header block or partial frame (a trickled head), the idle
 *   timeout when no stream is open, the write timeout when output made no
 *   progress (a pending write, or a window the peer never opens).
 *
 * Both kinds count towards the worker's connection cap; at the cap, idle
 * HTTP/2 connections (no stream open) are shed with the idle HTTP/1.1 ones
 * (a GOAWAY first). Drain: HTTP/1.1 via the set; each HTTP/2 connection gets
 * GOAWAY with its last stream id and closes once its streams are done.
 *
 * Access log and counters: `tap` gives each connection (h1) or stream (h2)
 * its observers, as in plain HTTP; in h2 the byte count is what the stream
 * put on the wire (frame headers, HPACK block and DATA), and the log line
 * says `HTTP/2.0`.
 *
 * The TLS handshake must finish within the header timeout (both protocols;
 * closing such a socket needs `_tls_fd.ts`, so `--allow-ffi` on Linux).
 *
 * @module
 */
import { ConnectionSet, serveDenoConn, SHED_HEAD, SHED_IDLE } from "../http/engine.ts";
import type { EngineOptions } from "../http/engine.ts";
import { type Handler, peerOfAddr } from "../http/types.ts";
import type { ConnectionTap } from "./_access_log.ts";
import { noDelayListener, reapSockets, type SocketPair } from "./_tls_fd.ts";
import { AcceptLoop } from "./_accept_loop.ts";
import { Http2Connection } from "../http2/connection.ts";

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
  /** Request bodies the handler streams over HTTP/1.1 (write #14); undefined: none. */
  bodies?: EngineOptions["bodies"];
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
  /** Told how many idle HTTP/2 connections were shed at the cap. */
  onH2Shed?(n: number): void;
  /** Called when accept() fails for lack of file descriptors (retried later). */
  onEmfile(): void;
  /**
   * The observers (access log, response counters) of an h1 connection or an
   * h2 request from `remote`; `handler` is then not called directly.
   * Default: `handler`, nothing observed.
   */
  tap?(remote: Deno.Addr): ConnectionTap;
  /** Told which deadline (1 head, 2 idle, 3 write) closed an HTTP/2 connection. */
  onH2Deadline?(kind: number): void;
  /** Told each HTTP/2 protection event (`EV_*` of `http2/connection.ts`). */
  onH2Event?(kind: number): void;
  /** Advertised SETTINGS_MAX_CONCURRENT_STREAMS. @default {100} */
  maxStreams?: number;
}

/** A running TLS listener of one worker. */
export interface TlsServer {
  /** The bound port (the real one when 0 was asked for). */
  port: number;
  /** Resolves when the accept loop has ended (after `stop`). */
  done: Promise<void>;
  /** Stops accepting. */
  stop(): void;
  /** Graceful: h1 connections via the set; h2 connections get GOAWAY and finish their streams. */
  drain(): Promise<void>;
}

/** Handshakes cut per event-loop turn at most (one fd-table scan each). */
const CUT_BATCH = 256;
/** Read buffer of an h2 connection (a TLS record; a pending read pins it, idle connections too). */
const H2_READ = 16384;
const ALPN = ["h2", "http/1.1"];

/**
 * Starts the TLS listener of one worker.
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
  const engine: EngineOptions = {
    headerTimeoutMs: o.headerTimeoutMs,
    idleTimeoutMs: o.idleTimeoutMs,
    writeTimeoutMs: o.writeTimeoutMs,
    bodies: o.bodies,
  };
  const h2conns = new Set<Http2Connection>();
  let draining = false;
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
    if (done < n) {
      let h2 = 0;
      for (const c of h2conns) {
        if (done + h2 >= n) break;
        if (c.idle && c.shedIdle()) h2++;
      }
      done += h2;
      if (h2 > 0) o.onH2Shed?.(h2);
    }
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
  // timer lag); h2 deadlines every 500 ms.
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
    if (++turn % 2 !== 0) return;
    for (const c of h2conns) c.tick(now);
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
    if (alpn === "h2") return await serveH2(conn);
    const t = tap(conn.remoteAddr);
    await serveDenoConn(conn, t.handler, set, engine, t.onResponse);
  }

  const h2options = { ...engine, maxConcurrentStreams: o.maxStreams ?? 100 };

  async function serveH2(conn: Deno.TlsConn): Promise<void> {
    const remote = conn.remoteAddr;
    let closed = false;
    const c: Http2Connection = new Http2Connection({
      peer: peerOfAddr(remote),
      async write(bytes) {
        let off = 0;
        while (off < bytes.length) off += await conn.write(bytes.subarray(off));
      },
      close() {
        if (closed) return;
        closed = true;
        try {
          conn.close();
        } catch {
          // Reset by the peer first.
        }
      },
    }, {
      tap: () => tap(remote),
      onDeadline: o.onH2Deadline,
      onEvent: o.onH2Event,
      onClose: () => h2conns.delete(c),
    }, h2options);
    h2conns.add(c);
    if (draining) c.drain();
    const buf = new Uint8Array(H2_READ);
    try {
      while (!c.closed) {
        const n = await conn.read(buf);
        if (n === null) break;
        const wait = c.feed(buf.subarray(0, n));
        if (wait !== undefined) await wait;
      }
    } catch {
      // Reset by the peer, or closed by the engine while reading.
    }
    c.end();
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
      // h2: GOAWAY with the last stream id; streams in flight finish, then each closes.
      draining = true;
      await Promise.all([set.drain(), ...[...h2conns].map((c) => c.drain())]);
      clearInterval(ticker);
    },
  };
}
