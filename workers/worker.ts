/// <reference lib="deno.worker" />
/**
 * An HTTP worker thread: runs the HTTP engine (`http/engine.ts`) with the
 * file handler (`http/handler.ts`) over connections from one of two sources.
 *
 * - **ring** (`_epoll_io.ts`): waits on its own epoll fd, where the acceptor
 *   registers each connection before queueing the fd in this slot's ring;
 *   reads and writes through FFI. The slot's OPEN count drops when a
 *   connection closes.
 * - **reuseport**: listens itself with `Deno.listen({ reusePort: true })` and
 *   hands each `Deno.Conn` to `serveDenoConn`, stopping `accept` at its share
 *   of the connection cap. (**TLS**: `tls.ts`, the same shape.)
 *
 * Messages: `start` (an {@linkcode WorkerConfig}) -> `ready`; `drain` -> stop
 * taking connections, finish in-flight requests, -> `drained`; `crash` is the
 * supervisor's test hook (an uncaught error, like a bug would raise).
 *
 * Control plane: one turn hook ({@linkcode onTurn}, {@linkcode turn}). The
 * epoll loop calls `turn()` once per loop turn (at least every 10 ms), and
 * everything the supervisor, the acceptor and the other threads ask of this
 * one registers there: drain and crash (also raised in shared memory, since
 * messages reach a thread blocked in `epoll_wait` late), shedding at the
 * connection cap, pool completions and cache invalidations. So in ring mode
 * none of them needs a timer or a `waitAsync` of its own, which this
 * thread's event loop runs late. Listening modes (reuseport, TLS) block in no
 * FFI call: there messages arrive at once, the accept loop sheds itself, and
 * the pool client and invalidation consumer wait on their own rings.
 *
 * @module
 */
import { SpscRing } from "../queue/spsc.ts";
import { ConnectionSet, serveDenoConn } from "../http/engine.ts";
import { createHandler, type Credentials, type SubmitJob } from "../http/handler.ts";
import type { BodyAcceptance } from "../write/body.ts";
import type { Credential } from "../auth/htpasswd.ts";
import { JOB_CODE, JobClient } from "./_jobs.ts";
import type { Handler, RequestHead } from "../http/types.ts";
import { EpollLoop } from "./_epoll_io.ts";
import { AcceptLoop } from "./_accept_loop.ts";
import { AccessLogProducer } from "./_access_log.ts";
import {
  CLOSE_HANDSHAKE,
  CLOSE_HEAD,
  Collector,
  CounterWriter,
  H2_RAPID_RESET,
  INVALIDATIONS,
  metricsHandler,
  SHED as SHED_COUNT,
} from "./_metrics.ts";
import { InvalidationConsumer } from "./_invalidate.ts";
import { SharedPerIp } from "./_per_ip.ts";
import { healthHandler } from "./_health.ts";
import {
  CONNS,
  DRAIN,
  EMFILE,
  EPFD,
  type FromWorker,
  OPEN,
  PER_IP_REFUSED,
  REQUESTS,
  SHED,
  slot,
  type ToWorker,
  WORKER_CRASH,
  type WorkerAuth,
  type WorkerConfig,
} from "./_shared.ts";

/** Control-plane tasks, run once per loop turn (see the module doc). */
const turnTasks: Array<() => void> = [];

/**
 * Registers control-plane work on the turn hook.
 *
 * @param task Runs once per turn; costs an `Atomics.load` or two when nothing is due.
 */
function onTurn(task: () => void): void {
  turnTasks.push(task);
}

/** One control-plane turn: every registered task, in registration order. */
function turn(): void {
  for (let i = 0; i < turnTasks.length; i++) turnTasks[i]();
}

function send(msg: FromWorker): void {
  self.postMessage(msg);
}

let draining = false;
let stopSource: (() => void) | undefined;
let set: ConnectionSet | undefined;
/** TLS mode: also waits for HTTP/2 connections. */
let drainAll: (() => Promise<void>) | undefined;
let log!: AccessLogProducer;
/** Takes reloaded credentials (set when authentication is on). */
let onAuth: ((users: Credential[], tokens?: Array<[string, Uint8Array]>) => void) | undefined;

/**
 * The authentication of this worker: loaded only when configured (bcrypt
 * and the verify Worker cost nothing otherwise). The verify Worker starts on
 * the first password to check.
 */
async function credentialsOf(auth: WorkerAuth | undefined): Promise<Credentials | undefined> {
  if (auth === undefined) return undefined;
  const { Attempts, Authenticator, TokenSet, Verifier } = await import("../auth/mod.ts");
  const usersOf = (list: Credential[]) => new Map(list.map((c) => [c.user, c]));
  const tokensOf = (t?: Array<[string, Uint8Array]>) =>
    t === undefined ? undefined : new TokenSet(t);
  const verifier = new Verifier({ users: usersOf(auth.users), tokens: tokensOf(auth.tokens) });
  onAuth = (users, tokens) => verifier.update(usersOf(users), tokensOf(tokens));
  return new Authenticator({ verifier, attempts: new Attempts(auth.attempts), realm: auth.realm });
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  if (msg.type === "start") {
    start(msg.config).catch((err) => {
      send({ type: "error", message: err instanceof Error ? err.message : String(err) });
    });
  } else if (msg.type === "auth") {
    onAuth?.(msg.users, msg.tokens);
    send({ type: "authed" });
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
  // Ring mode runs its loop on epoll_wait: its control plane is the turn
  // hook. (TLS always runs in reuseport mode.)
  const epoll = config.mode === "ring";
  const client = config.pool === undefined
    ? undefined
    : new JobClient(config.pool, config.index, { ownWaits: !epoll });
  const jobs: SubmitJob | undefined = client &&
    ((kind, args) => client.submit(JOB_CODE[kind], args));
  const counters = new CounterWriter(config.metrics, config.index);
  const credentials = await credentialsOf(config.auth);
  const fileHandler = await createHandler({ ...config.handler, jobs, credentials });
  let inner: Handler = fileHandler;
  if (config.invalidation) {
    const invalidations = new InvalidationConsumer(config.invalidation);
    const applied = (n: number) => counters.add(INVALIDATIONS, n);
    inner = invalidations.guard(fileHandler, applied, { idleWaits: !epoll });
    if (epoll) {
      onTurn(() => {
        const n = invalidations.check(fileHandler);
        if (n > 0) applied(n);
      });
    }
  }
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
  const options: EngineOptions = {
    // write (#14): the bodies the file handler reads (WebDAV, uploads).
    bodies: fileHandler.bodies,
    headerTimeoutMs: config.headerTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    writeTimeoutMs: config.writeTimeoutMs,
    // net: --limit-rate (the engine paces each response's writer)
    limitRate: config.limitRate,
    limitRateAfter: config.limitRateAfter,
  };
  if (config.tls) {
    const open = slot(config.index, OPEN);
    const conns = slot(config.index, CONNS);
    // perf (#16): TLS and HTTP/2 load only when TLS is on (~7 MiB per worker otherwise).
    const { startTls } = await import("./tls.ts");
    const tls = startTls(handler, set, {
      ...options,
      hostname: config.hostname,
      port: config.port,
      tls: config.tls,
      maxConns: config.maxConns,
      shed,
      onHandshakeTimeout: (n: number) => counters.add(CLOSE_HANDSHAKE, n),
      onHandshakeShed: (n: number) => counters.add(SHED_COUNT, n),
      onH2Shed: (n: number) => counters.add(SHED_COUNT, n),
      onConn(delta) {
        Atomics.add(ctl, open, delta);
        if (delta > 0) Atomics.add(ctl, conns, 1);
      },
      onEmfile: () => Atomics.add(ctl, EMFILE, 1),
      tap: (remote) => log.tap(remote),
      // HTTP/2 (#18): deadline kinds 1-3 as the h1 ones; protection events in EV_* order.
      onH2Deadline: (kind: number) => counters.add(CLOSE_HEAD + kind - 1, 1),
      onH2Event: (kind: number) => counters.add(H2_RAPID_RESET + kind, 1),
    });
    stopSource = () => tls.stop();
    drainAll = () => tls.drain();
    send({ type: "ready", port: tls.port });
    await tls.done;
  } else if (epoll) {
    await runEpoll(config, ctl, handler, set, options, shed, client);
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

type EngineOptions = {
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  writeTimeoutMs: number;
  /** Request bodies the file handler streams (write #14); undefined: none. */
  bodies?: BodyAcceptance;
  /** Download pacing (net: --limit-rate), bytes/s; 0 or undefined: off. */
  limitRate?: number;
  /** Bytes sent at full speed before the pacing applies. */
  limitRateAfter?: number;
};

/**
 * Ring mode: the epoll loop over the connections the acceptor hands this
 * slot, with every control-plane task registered on the turn hook.
 */
async function runEpoll(
  config: WorkerConfig,
  ctl: Int32Array,
  handler: Handler,
  set: ConnectionSet,
  options: EngineOptions,
  shed: (n: number) => number,
  client: JobClient | undefined,
): Promise<void> {
  const shedWord = slot(config.index, SHED);
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
  // While it sits in epoll_wait this thread sees messages late (up to
  // ~1 s under load): the supervisor also raises DRAIN, and the crash test
  // hook, in shared memory.
  onTurn(() => {
    if (Atomics.load(ctl, crashWord) !== 0) crash();
  });
  onTurn(() => {
    if (!draining && Atomics.load(ctl, DRAIN) === 1) drain();
  });
  // The acceptor asks for room at the connection cap (or out of fds).
  onTurn(() => {
    if (Atomics.load(ctl, shedWord) !== 0) shed(Atomics.exchange(ctl, shedWord, 0));
  });
  if (client !== undefined) onTurn(() => client.turn());
  send({ type: "ready", port: config.port });
  await loop.run(ring, (n) => Atomics.add(ctl, conns, n), turn);
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
  const perIp = config.perIp &&
    new SharedPerIp(config.perIp.buffer, config.index, config.perIp.limit);
  const loop = new AcceptLoop<Deno.Conn>(listener, {
    maxConns: config.maxConns,
    stopped: () => draining,
    shed,
    onEmfile: () => Atomics.add(ctl, EMFILE, 1),
    onConn(delta) {
      Atomics.add(ctl, open, delta);
      if (delta > 0) Atomics.add(ctl, conns, 1);
    },
    serve(conn) {
      let charge = 0;
      if (perIp !== undefined) {
        // --max-conns-per-ip (net): over it, closed before a byte is read.
        charge = perIp.admit((conn.remoteAddr as Deno.NetAddr).hostname);
        if (charge < 0) {
          Atomics.add(ctl, PER_IP_REFUSED, 1);
          conn.close();
          return Promise.resolve();
        }
      }
      // Head and body may go out in separate writes: without this, Nagle and
      // delayed ACKs add 40 ms to each keep-alive response.
      (conn as Deno.TcpConn).setNoDelay(true);
      const tap = log.tap(conn.remoteAddr);
      const served = serveDenoConn(conn, tap.handler, set, options, tap.onResponse);
      return perIp === undefined ? served : served.finally(() => perIp.release(charge));
    },
  });
  stopSource = () => {
    listener.close();
    loop.wake();
  };
  await loop.done;
}
