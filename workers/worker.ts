/// <reference lib="deno.worker" />
/**
 * An HTTP worker thread: runs the HTTP engine (`http/engine.ts`) with the
 * file handler (`http/handler.ts`) over connections from one of two sources.
 *
 * - **ring**, epoll I/O (the default; `_epoll_io.ts`): waits on its own epoll
 *   fd, where the acceptor registers each connection before queueing the fd
 *   in this slot's ring; reads and writes through FFI.
 * - **ring**, socket I/O: drains this slot's SPSC ring of accepted fds in
 *   batches (bounded `waitAsync` when empty), adopts each fd as a `node:net`
 *   Socket and drives an `HttpConnection` over it.
 *
 *   Either way the slot's OPEN count drops when a connection closes.
 * - **reuseport**: listens itself with `Deno.listen({ reusePort: true })` and
 *   hands each `Deno.Conn` to `serveDenoConn`, stopping `accept` at its share
 *   of the connection cap.
 *
 * Messages: `start` (an {@linkcode WorkerConfig}) -> `ready`; `drain` -> stop
 * taking connections, finish in-flight requests, -> `drained`; `crash` is the
 * supervisor's test hook (an uncaught error, like a bug would raise).
 *
 * @module
 */
import net from "node:net";
import { SpscRing } from "../queue/spsc.ts";
import { ConnectionSet, HttpConnection, serveDenoConn, type Transport } from "../http/engine.ts";
import { createHandler, type SubmitJob } from "../http/handler.ts";
import { COMPRESS, JobClient, LISTING } from "./_jobs.ts";
import type { Handler, RequestHead } from "../http/types.ts";
import { EpollLoop } from "./_epoll_io.ts";
import { startTls } from "./tls.ts";
import { AccessLogProducer } from "./_access_log.ts";
import {
  CLOSE_HANDSHAKE,
  CLOSE_HEAD,
  Collector,
  CounterWriter,
  INVALIDATIONS,
  metricsHandler,
  SHED as SHED_COUNT,
} from "./_metrics.ts";
import { InvalidationConsumer } from "./_invalidate.ts";
import { healthHandler } from "./_health.ts";
import {
  atCap,
  CONNS,
  DRAIN,
  EMFILE,
  EPFD,
  type FromWorker,
  OPEN,
  REQUESTS,
  SHED,
  shedMark,
  slot,
  type ToWorker,
  WORKER_CRASH,
  type WorkerConfig,
} from "./_shared.ts";

const BATCH = 128;

function send(msg: FromWorker): void {
  self.postMessage(msg);
}

let draining = false;
let stopSource: (() => void) | undefined;
let set: ConnectionSet | undefined;
/** TLS mode: also waits for HTTP/2 connections. */
let drainAll: (() => Promise<void>) | undefined;
let log!: AccessLogProducer;

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  if (msg.type === "start") {
    start(msg.config).catch((err) => {
      send({ type: "error", message: err instanceof Error ? err.message : String(err) });
    });
  } else if (msg.type === "drain") {
    drain();
  } else if (msg.type === "crash") {
    // Thrown here, not from a timer: under load an epoll worker's timers can
    // fire up to a second late, which would be measured as restart time.
    crash();
  }
};

function crash(): never {
  throw new Error("worker crashed on request (supervisor test hook)");
}

async function drain(): Promise<void> {
  if (draining) return;
  draining = true;
  stopSource?.();
  await (drainAll ? drainAll() : set?.drain());
  send({ type: "drained" });
}

async function start(config: WorkerConfig): Promise<void> {
  const ctl = new Int32Array(config.control);
  const requests = slot(config.index, REQUESTS);
  const client = config.pool === undefined ? undefined : new JobClient(config.pool, config.index);
  const jobs: SubmitJob | undefined = client &&
    ((kind, args) => client.submit(kind === "listing" ? LISTING : COMPRESS, args));
  const counters = new CounterWriter(config.metrics, config.index);
  const fileHandler = await createHandler({ ...config.handler, jobs });
  let inner: Handler = config.invalidation
    ? new InvalidationConsumer(config.invalidation).guard(
      fileHandler,
      (n) => counters.add(INVALIDATIONS, n),
    )
    : fileHandler;
  if (config.metricsPath !== undefined) {
    const collector = new Collector(
      config.mode,
      config.workers,
      config.control,
      config.metrics,
      config.rings,
      config.logRings,
      config.pool,
      config.tls ? "tls" : "tcp",
    );
    inner = metricsHandler(config.metricsPath, collector, inner);
  }
  if (config.healthPath !== undefined) {
    // Site rules (#13): the health JSON, in front of the files like the metrics page.
    inner = healthHandler(
      config.healthPath,
      config.control,
      config.workers,
      config.pool?.threads ?? 0,
      inner,
      config.handler.nosniff ?? true,
    );
  }
  const files = inner;
  const handler: Handler = (req: RequestHead) => {
    Atomics.add(ctl, requests, 1);
    return files(req);
  };
  // Counts every response; with the access log on, also queues one record each.
  log = new AccessLogProducer(
    handler,
    counters,
    config.logRings?.[config.index],
    config.healthLog ? undefined : config.healthPath, // health probes are not logged
  );
  const epoll = config.mode === "ring" && config.io === "epoll";
  // The epoll loop ticks the deadlines itself (timers run late while it
  // blocks in epoll_wait), so the set needs no interval timer of its own.
  // Listening (reuseport, TLS) workers tick twice a second: a deadline fires at most 0.5 s late.
  set = new ConnectionSet(epoll ? 1000 : 500, {
    timer: !epoll,
    // DEADLINE_HEAD/IDLE/WRITE are 1/2/3, in the order of CLOSE_HEAD/IDLE/WRITE.
    onDeadline: (kind) => counters.add(CLOSE_HEAD + kind - 1, 1),
  });
  const connSet = set;
  /** Sheds up to `n` connections for new ones; counts them. */
  const shed = (n: number, classes?: number): number => {
    const done = connSet.shed(n, classes);
    if (done > 0) counters.add(SHED_COUNT, done);
    return done;
  };
  const shedWord = slot(config.index, SHED);
  const options = {
    headerTimeoutMs: config.headerTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    writeTimeoutMs: config.writeTimeoutMs,
  };
  if (config.tls) {
    const open = slot(config.index, OPEN);
    const conns = slot(config.index, CONNS);
    const tls = startTls(handler, set, {
      ...options,
      hostname: config.hostname,
      port: config.port,
      tls: config.tls,
      maxConns: config.maxConns,
      shed,
      onHandshakeTimeout: (n: number) => counters.add(CLOSE_HANDSHAKE, n),
      onHandshakeShed: (n: number) => counters.add(SHED_COUNT, n),
      onConn(delta) {
        Atomics.add(ctl, open, delta);
        if (delta > 0) Atomics.add(ctl, conns, 1);
      },
      onEmfile: () => Atomics.add(ctl, EMFILE, 1),
      tap: (remote) => log.tap(remote),
    });
    stopSource = () => tls.stop();
    drainAll = () => tls.drain();
    send({ type: "ready", port: tls.port });
    await tls.done;
  } else if (epoll) {
    const ring = new SpscRing(config.ring!);
    const conns = slot(config.index, CONNS);
    const crashWord = slot(config.index, WORKER_CRASH);
    const loop = new EpollLoop(
      ctl,
      slot(config.index, OPEN),
      new Int32Array(config.owners!),
      handler,
      set,
      options,
      (fd) => log.tap(fd),
    );
    // The acceptor registers connections with this epoll fd: publish it
    // before saying ready (the supervisor then marks the slot alive).
    Atomics.store(ctl, slot(config.index, EPFD), loop.epfd);
    // Served too: the supervisor stops the acceptor before the workers.
    stopSource = () => Atomics.add(ctl, conns, loop.beginDrain(ring));
    send({ type: "ready", port: config.port });
    await loop.run(
      ring,
      (n) => Atomics.add(ctl, conns, n),
      // While it sits in epoll_wait this thread sees messages late (up to
      // ~1 s under load): the supervisor also raises DRAIN, and the crash
      // test hook, in shared memory.
      () => {
        if (Atomics.load(ctl, crashWord) !== 0) crash();
        // The acceptor asks for room at the connection cap (or out of fds).
        if (Atomics.load(ctl, shedWord) !== 0) shed(Atomics.exchange(ctl, shedWord, 0));
        // Pool results, each loop turn: this thread may not run its
        // waitAsync callbacks for a while under load.
        if (client !== undefined && client.outstanding > 0) client.poll();
        return Atomics.load(ctl, DRAIN) === 1;
      },
      drain,
    );
  } else if (config.mode === "ring") {
    const ring = new SpscRing(config.ring!);
    send({ type: "ready", port: config.port });
    await runRing(ring, ctl, config.index, set, options, () => {
      if (Atomics.load(ctl, shedWord) !== 0) shed(Atomics.exchange(ctl, shedWord, 0));
    });
  } else {
    const listener = Deno.listen({
      hostname: config.hostname,
      port: config.port,
      reusePort: true,
    });
    send({ type: "ready", port: (listener.addr as Deno.NetAddr).port });
    await runListener(listener, ctl, config, set, options, shed);
  }
}

type EngineOptions = { headerTimeoutMs: number; idleTimeoutMs: number; writeTimeoutMs: number };

async function runRing(
  ring: SpscRing,
  ctl: Int32Array,
  index: number,
  set: ConnectionSet,
  options: EngineOptions,
  checkShed: () => void,
): Promise<void> {
  const open = slot(index, OPEN);
  const conns = slot(index, CONNS);
  const adoptRecord = (rec: Int32Array) => adopt(rec[0], ctl, open, set, options);
  let stop = false;
  stopSource = () => {
    stop = true;
    // Connections accepted before the stop are served: the supervisor stops
    // the acceptor first, so nothing arrives after this.
    Atomics.add(ctl, conns, ring.drain(adoptRecord));
  };
  while (!stop) {
    checkShed();
    const n = ring.drain(adoptRecord, BATCH);
    if (n > 0) Atomics.add(ctl, conns, n);
    if (ring.size() > 0) {
      // More is queued: let the adopted sockets' I/O run before the next batch.
      await new Promise((r) => setTimeout(r, 0));
      continue;
    }
    // Bounded: Atomics wake-ups are sometimes lost on Deno 2.9. Short, so a
    // shed request at the cap is seen soon.
    await ring.waitAsync(10);
  }
}

/** Drives one `HttpConnection` over an adopted socket fd. */
function adopt(
  fd: number,
  ctl: Int32Array,
  open: number,
  set: ConnectionSet,
  options: EngineOptions,
): void {
  let sock: net.Socket;
  try {
    sock = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
  } catch {
    Atomics.sub(ctl, open, 1);
    return;
  }
  let gone = false;
  let counted = false;
  const release = () => {
    if (counted) return;
    counted = true;
    Atomics.sub(ctl, open, 1);
  };
  const transport: Transport = {
    write(bytes: Uint8Array): Promise<void> | void {
      if (gone) return;
      // Resolve when the bytes are handed to the kernel: the engine may reuse
      // its buffer after this, and node:net keeps a reference until then.
      return new Promise<void>((resolve) => sock.write(bytes, () => resolve()));
    },
    close(): void {
      sock.destroy();
    },
  };
  const tap = log.tap(fd);
  const conn = new HttpConnection(transport, tap.handler, options, {
    onClose() {
      set.remove(conn);
      sock.destroy();
    },
    onResponse: tap.onResponse,
  });
  set.add(conn);
  const resume = () => {
    if (!gone) sock.resume();
  };
  sock.on("data", (chunk: Uint8Array) => {
    const p = conn.feed(chunk);
    if (p) {
      sock.pause();
      p.then(resume, resume);
    }
  });
  sock.on("end", () => conn.end());
  sock.on("error", () => {/* "close" follows */});
  sock.on("close", () => {
    gone = true;
    if (!conn.closed) conn.end();
    set.remove(conn);
    release();
  });
}

async function runListener(
  listener: Deno.Listener,
  ctl: Int32Array,
  config: WorkerConfig,
  set: ConnectionSet,
  options: EngineOptions,
  shed: (n: number) => number,
): Promise<void> {
  const open = slot(config.index, OPEN);
  const conns = slot(config.index, CONNS);
  const max = config.maxConns;
  const mark = shedMark(max);
  let local = 0;
  let freed: (() => void) | undefined;
  stopSource = () => {
    listener.close();
    freed?.();
  };
  let backoffMs = 10;
  while (!draining) {
    if (local >= max) {
      // At this worker's share of the cap: make room (idle, then slow
      // connections); while nothing can be shed, connections wait in the
      // backlog and a retry comes with the next close or after 100 ms.
      await atCap(() => shed(local - mark), (r) => freed = r);
      freed = undefined;
      continue;
    }
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch (err) {
      if (draining || err instanceof Deno.errors.BadResource) break;
      // EMFILE and friends: temporary, the connection waits in the backlog.
      Atomics.add(ctl, EMFILE, 1);
      await new Promise((r) => setTimeout(r, backoffMs));
      backoffMs = Math.min(backoffMs * 2, 500);
      continue;
    }
    backoffMs = 10;
    // Head and body may go out in separate writes: without this, Nagle and
    // delayed ACKs add 40 ms to each keep-alive response.
    (conn as Deno.TcpConn).setNoDelay(true);
    local++;
    Atomics.add(ctl, open, 1);
    Atomics.add(ctl, conns, 1);
    const tap = log.tap(conn.remoteAddr);
    serveDenoConn(conn, tap.handler, set, options, tap.onResponse).catch(() => {}).finally(() => {
      local--;
      Atomics.sub(ctl, open, 1);
      freed?.();
    });
    // Past the mark, each new connection sheds one.
    if (local > mark) shed(1);
  }
}
