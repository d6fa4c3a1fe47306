/**
 * The supervisor (main thread): allocates the rings and control words, starts
 * the acceptor (ring mode) and the HTTP workers, replaces a worker that dies,
 * and runs the graceful shutdown. It prints nothing but `log` lines (worker
 * restarts, acceptor errors); announcing the address is the caller's job.
 *
 * Graceful shutdown: STATE = STOPPING; the acceptor closes the listening
 * socket within one poll (<= 100 ms) and says `stopped`; then DRAIN = 1 and a
 * `drain` message to each worker: it stops taking connections, closes idle
 * ones, finishes in-flight responses and says `drained`. After `graceMs`
 * (or a second `shutdown()` call) every thread is terminated regardless.
 * An acceptor that dies is restarted after 100 ms on the same listening fd.
 *
 * Replacing a dead worker (slot i):
 * 1. terminate it; store ACK = 0, then ALIVE = 0 (the acceptor stops picking
 *    the slot within one loop, <= 100 ms);
 * 2. ring mode: wait for the acceptor's ACK = 1, meaning it took back every
 *    fd still queued in the ring (handed to live workers, or closed when none
 *    is live), closed the fds the worker owned (epoll I/O: raw fds outlive
 *    the isolate; socket I/O: Deno closed them with it) and its epoll fd, and
 *    will not push again while ALIVE = 0;
 * 3. reset OPEN;
 * 4. start a replacement on the same ring at once; only a crash loop (a
 *    third crash of the slot within 10 s) waits first: 100 ms, doubling up to
 *    1 s. The replacement sets ALIVE = 1 when ready, and the log says how long
 *    the slot was down. Measured under load on 2 cores: 60-200 ms (once 0.8 s
 *    with other builds running), most of it the new isolate loading its
 *    modules (bench/crash_restart.ts).
 *
 * @module
 */
import { SpscRing } from "../queue/spsc.ts";
import {
  type AcceptorConfig,
  ACK,
  ALIVE,
  allocateControl,
  CRASH,
  DRAIN,
  type FromAcceptor,
  type FromWorker,
  MAX_CONNS,
  OPEN,
  POOL_LIVE,
  REQUESTS,
  RESTARTS,
  type RingIo,
  slot,
  STATE,
  STOPPING,
  type ToWorker,
  WORKER_CRASH,
  type WorkerConfig,
} from "./_shared.ts";
import { allocateMetrics, Collector } from "./_metrics.ts";
import { AccessLogDrain, type LogFormat, openSink, RECORD_BYTES } from "./_access_log.ts";
import { ByteRing } from "../queue/byte_ring.ts";
import { PoolHost, type PoolStats } from "./_pool_host.ts";
import type { IndexBuffers } from "../http/_name_index.ts";
import type { FromIndex, ToIndex } from "./_index_thread.ts";
import { InvalidationHub } from "./_invalidate.ts";
import { adoptInherited, type BoundListener, closeListeners, openListeners } from "./_listeners.ts";
import type { ListenAddress } from "../options/listen.ts";
import { SharedPerIp } from "./_per_ip.ts";
import type { AuthSources, ReloadResult } from "../auth/config.ts";

/** Everything the supervisor needs, defaults already applied. */
export interface ClusterConfig {
  hostname: string;
  port: number;
  workers: number;
  mode: "ring" | "reuseport";
  /** Ring mode: how workers drive sockets. */
  io: RingIo;
  /** RLIMIT_NOFILE (ring mode with epoll I/O sizes the owners table by it). */
  fdLimit: number;
  maxConns: number;
  backlog: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  writeTimeoutMs: number;
  graceMs: number;
  /** HTTPS: PEM certificate chain and key (mode is then "reuseport"). */
  tls?: WorkerConfig["tls"];
  /** Access log destination: `"-"` for stdout, else a file path; undefined: no access log. */
  accessLog?: string;
  logFormat: LogFormat;
  /** Records per worker's log ring (a power of two). */
  logRingSize: number;
  /** How often the supervisor drains the log rings. */
  logFlushMs: number;
  /** Path of the Prometheus page; undefined: not served. */
  metricsPath?: string;
  /** Site rules (#13): the health JSON's path; undefined: off. */
  healthPath?: string;
  /** Site rules (#13): log health requests too. */
  healthLog?: boolean;
  /** Job pool threads (listings, compression); 0: HTTP workers do that work inline. */
  pool: number;
  handler: WorkerConfig["handler"];
  log: (line: string) => void;
  // net: listeners and per-connection limits (#13)
  /** Ring mode: every address to listen on (reuseport mode uses hostname and port). */
  listen: ListenAddress[];
  /** Permission bits of Unix socket files. */
  unixMode: number;
  /** Ring mode: serve on `count` inherited sockets (fds 3...) instead of `listen`. */
  inherited?: { count: number; names?: string };
  /** Ring mode: connections per client address at most; 0: no limit. */
  maxConnsPerIp: number;
  /** Download pacing per response, bytes per second; 0: off. */
  limitRate: number;
  /** Bytes of each response at full speed before the pacing. */
  limitRateAfter: number;
  /** Authentication (already loaded); undefined: none. */
  auth?: WorkerConfig["auth"];
  /** Where `auth` was loaded from, for {@linkcode Cluster.reloadAuth}. */
  authSources?: AuthSources;
}

/**
 * Per-worker figures from {@linkcode Cluster.stats}.
 *
 * @example Total requests answered across workers
 * ```ts
 * import type { WorkerStats } from "../mod.ts";
 *
 * function totalRequests(workers: WorkerStats[]): number {
 *   return workers.reduce((sum, w) => sum + w.requests, 0);
 * }
 * console.assert(totalRequests([]) === 0);
 * ```
 */
export interface WorkerStats {
  /** Whether the worker is running (false while it is being replaced). */
  alive: boolean;
  /** Connections open on it now (ring mode: plus those queued to it). */
  open: number;
  /** Connections it has taken since its slot started. */
  connections: number;
  /** Requests it has answered since its slot started. */
  requests: number;
  /** How many times this slot's worker was replaced. */
  restarts: number;
  /** Responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]` (engine errors included). */
  responses: number[];
  /** Response bytes written, heads included (HTTP/2 over TLS: bodies only). */
  bytes: number;
  /** Access-log records queued (0 when the log is off). */
  logged: number;
  /** Access-log records dropped because this worker's log ring was full. */
  logDropped: number;
  /** Cache invalidations applied (changes on disk seen by the watcher; "drop all" counts one). */
  invalidations: number;
  /** Connections it shed at the connection cap (or out of fds) to admit new ones. */
  shed: number;
  /** Connections it closed at each deadline (header, idle, write, TLS handshake). */
  deadlineCloses: { head: number; idle: number; write: number; handshake: number };
  /** Ring mode: connections queued to it, not yet taken. */
  connRing?: number;
  /** Access log on: records in its log ring, not yet written. */
  logRing?: number;
}

/**
 * A snapshot from {@linkcode Cluster.stats}.
 *
 * @example Summarise a snapshot in one line
 * ```ts
 * import type { ClusterStats } from "../mod.ts";
 *
 * function summary(s: ClusterStats): string {
 *   const live = s.workers.filter((w) => w.alive).length;
 *   return `${s.mode}: ${live}/${s.workers.length} workers, ${s.accepted} accepted`;
 * }
 * console.assert(
 *   summary({ mode: "reuseport", accepted: 3, dropped: 0, emfile: 0, workers: [] }) ===
 *     "reuseport: 0/0 workers, 3 accepted",
 * );
 * ```
 */
export interface ClusterStats {
  /** How connections reach the workers. */
  mode: "ring" | "reuseport";
  /** Connections accepted (ring: by the acceptor; reuseport: by the workers). */
  accepted: number;
  /** Accepted fds closed unserved because no live worker could take them. */
  dropped: number;
  /** accept() failures for lack of file descriptors (each retried later). */
  emfile: number;
  /** Connections closed at accept because their address was at `maxConnsPerIp`. */
  perIpRefused?: number;
  /** One entry per worker slot, in slot order. */
  workers: WorkerStats[];
  /** The job pool; absent with `pool: 0`. */
  pool?: PoolStats;
}

/**
 * A running server, as returned by `serve()`.
 *
 * @example Read the counters, then stop at scope exit
 * ```ts
 * import { serve } from "../mod.ts";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${root}/a.txt`, "a");
 * {
 *   await using cluster = await serve({ root, hostname: "127.0.0.1", port: 0, workers: 1 });
 *   const res = await fetch(`http://127.0.0.1:${cluster.addr.port}/a.txt`);
 *   assert.equal(await res.text(), "a");
 *   assert.equal(cluster.stats().workers.length, 1);
 * }
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export interface Cluster {
  /**
   * The first bound address; `port` is the real one when 0 was asked for.
   * A Unix socket shows as `{ hostname: "unix:/path", port: 0 }`.
   */
  readonly addr: { hostname: string; port: number };
  /** Every address listened on, in order (real ports; inherited sockets included). */
  readonly listeners: readonly ListenAddress[];
  /** Number of HTTP workers. */
  readonly workers: number;
  /** How connections reach the workers. */
  readonly mode: "ring" | "reuseport";
  /**
   * Counters, read without locking (each one is exact, the set is not a snapshot).
   *
   * @returns the current figures, per worker and for the acceptor
   */
  stats(): ClusterStats;
  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs`, then
   * stops every thread. Calling it again while it runs stops at once.
   *
   * @param graceMs how long in-flight requests may take; default: the `graceMs` option
   * @returns a promise that resolves once every thread has stopped
   */
  shutdown(graceMs?: number): Promise<void>;
  /**
   * Reads the `authFile` and `tokenFile` again (the CLI: on SIGHUP) and hands
   * the new credentials to every worker (each forgets its verified cache).
   * A file that cannot be read or has a bad line changes nothing.
   *
   * @returns the users and tokens now loaded, or why nothing changed
   */
  reloadAuth(): Promise<ReloadResult>;
  /**
   * `await using cluster = await serve(...)` shuts it down at scope exit.
   *
   * @returns the promise of {@linkcode Cluster.shutdown}
   */
  [Symbol.asyncDispose](): Promise<void>;
}

const WORKER_URL = new URL("./worker.ts", import.meta.url);
/** browse (#17): the search index's writer thread. */
const INDEX_URL = new URL("./_index_thread.ts", import.meta.url);
const ACCEPTOR_URL = new URL("./acceptor.ts", import.meta.url);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The supervisor; `serve()` returns it as a {@linkcode Cluster}. */
export class Supervisor implements Cluster {
  readonly addr: { hostname: string; port: number };
  readonly workers: number;
  readonly mode: "ring" | "reuseport";
  listeners: ListenAddress[];
  #bound: BoundListener[] = [];
  #config: ClusterConfig;
  #ctl: Int32Array;
  #metrics: SharedArrayBuffer;
  #logRings: SharedArrayBuffer[] = [];
  #log?: AccessLogDrain;
  #inval?: InvalidationHub;
  /** browse (#17): the search index thread and its shared buffers (with a watcher only). */
  #indexThread?: Worker;
  #searchIndex?: IndexBuffers;
  #collector?: Collector;
  #rings: SharedArrayBuffer[] = [];
  #owners?: SharedArrayBuffer;
  #pool?: PoolHost;
  /** Reuseport mode with --max-conns-per-ip: the shared counts (`_per_ip.ts`). */
  #perIp?: SharedArrayBuffer;
  #threads: (Worker | undefined)[] = [];
  #acceptor?: Worker;
  #acceptorStopped?: () => void;
  #drained: ((() => void) | undefined)[] = [];
  /** Acknowledgements of a credentials reload, by slot. */
  #authed: ((() => void) | undefined)[] = [];
  #crashes: number[][] = [];
  #closing = false;
  #shutdown?: Promise<void>;
  #force?: () => void;

  async reloadAuth(): Promise<ReloadResult> {
    const c = this.#config;
    if (c.auth === undefined || c.authSources === undefined) {
      return { ok: false, reason: "no authentication configured" };
    }
    const { loadAuth } = await import("../auth/config.ts");
    let data;
    try {
      data = await loadAuth(c.authSources);
    } catch (e) {
      return {
        ok: false,
        reason: `${(e as Error).message} (keeping the credentials loaded before)`,
      };
    }
    const users = [...data.users.values()];
    const tokens = data.tokens?.entries();
    // Workers started later (restarts) get these too.
    c.auth = { ...c.auth, users, tokens };
    // Done when every live worker uses them (bounded: a worker that dies
    // meanwhile is replaced with the new ones anyway).
    const acks: Promise<void>[] = [];
    this.#threads.forEach((w, i) => {
      if (w === undefined) return;
      acks.push(
        new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 5000);
          this.#authed[i] = () => {
            clearTimeout(t);
            resolve();
          };
        }),
      );
      w.postMessage({ type: "auth", users, tokens } satisfies ToWorker);
    });
    await Promise.all(acks);
    return { ok: true, users: users.length, tokens: tokens?.length ?? 0 };
  }

  private constructor(config: ClusterConfig) {
    this.#config = config;
    this.addr = { hostname: config.hostname, port: config.port };
    this.listeners = [{ kind: "tcp", hostname: config.hostname, port: config.port }];
    this.workers = config.workers;
    this.mode = config.mode;
    this.#ctl = allocateControl(config.workers);
    this.#metrics = allocateMetrics(config.workers);
    Atomics.store(this.#ctl, MAX_CONNS, config.maxConns);
    for (let i = 0; i < config.workers; i++) {
      this.#crashes.push([]);
      // Nothing to clean up for a slot that has not run yet.
      Atomics.store(this.#ctl, slot(i, ACK), 1);
    }
  }

  /**
   * Starts the acceptor (ring mode) and every worker.
   *
   * @param config the resolved options
   * @returns the supervisor once every thread is ready
   * @throws the first start-up error (e.g. the port is in use), after
   *   stopping whatever had started
   */
  static async start(config: ClusterConfig): Promise<Supervisor> {
    const s = new Supervisor(config);
    try {
      await s.#startAll();
    } catch (e) {
      s.#closing = true;
      // Nobody polls them yet when the acceptor never started.
      closeListeners(s.#bound, s.#acceptor === undefined);
      s.#terminateAll();
      await s.#log?.close();
      throw e;
    }
    return s;
  }

  async #startAll(): Promise<void> {
    const c = this.#config;
    if (c.handler.cacheMaxBytes > 0) {
      // Before any worker: no change can slip between its first cache fill and the watch.
      this.#inval = new InvalidationHub(c.workers, c.handler.root);
      const watching = this.#inval.watch(c.log);
      // browse (#17): an index kept current by the watcher, else search walks.
      if (watching && c.handler.dirListing) this.#searchIndex = await this.#startIndex();
    }
    if (c.accessLog !== undefined) {
      // Opened first: a log file that cannot be written stops the start.
      const sink = openSink(c.accessLog);
      for (let i = 0; i < c.workers; i++) {
        this.#logRings.push(ByteRing.allocate(c.logRingSize, RECORD_BYTES));
      }
      this.#log = new AccessLogDrain(this.#logRings, c.logFormat, sink, c.logFlushMs);
    }
    if (c.pool > 0) {
      // Before the workers: they attach to its rings when they start.
      this.#pool = new PoolHost(c.pool, c.workers, c.handler, c.log);
      const ctl = this.#ctl;
      // The health page reads it: threads not started yet count as alive
      // (they start on demand), so an idle server with a pool is healthy.
      Atomics.store(ctl, POOL_LIVE, c.pool);
      this.#pool.onLive = (d) => Atomics.add(ctl, POOL_LIVE, d);
      await this.#pool.start();
    }
    if (c.mode === "ring") {
      const capacity = 2 ** Math.ceil(Math.log2(Math.min(Math.max(c.maxConns, 16), 65536)));
      for (let i = 0; i < c.workers; i++) this.#rings.push(SpscRing.allocate(capacity, 1));
      if (c.io === "epoll") {
        this.#owners = new SharedArrayBuffer(Math.min(c.fdLimit, 1 << 21) * 4);
      }
      this.#bound = c.inherited
        ? adoptInherited(c.inherited.count, c.inherited.names)
        : openListeners(c.listen, c.backlog, c.unixMode, c.log);
      this.listeners = this.#bound.map((l) => l.address);
      const first = this.listeners[0];
      if (first.kind === "tcp") {
        this.addr.hostname = first.hostname;
        this.addr.port = first.port;
      } else {
        this.addr.hostname = `unix:${first.path}`;
        this.addr.port = 0;
      }
      await this.#startAcceptor();
      this.#collector = this.#newCollector();
      await Promise.all(this.#rings.map((_, i) => this.#startWorker(i)));
    } else {
      if (c.maxConnsPerIp > 0) this.#perIp = SharedPerIp.allocate(c.workers);
      // Port 0: the first worker picks the port, the others join it.
      this.#collector = this.#newCollector();
      this.addr.port = await this.#startWorker(0);
      this.listeners = [{ kind: "tcp", hostname: c.hostname, port: this.addr.port }];
      await Promise.all(
        Array.from({ length: c.workers - 1 }, (_, k) => this.#startWorker(k + 1)),
      );
    }
  }

  #newCollector(): Collector {
    return new Collector(
      this.mode,
      this.workers,
      this.#ctl.buffer as SharedArrayBuffer,
      this.#metrics,
      this.#rings,
      this.#logRings,
      this.#pool?.buffers,
      this.#config.tls ? "tls" : "tcp",
    );
  }

  #startAcceptor(): Promise<void> {
    const c = this.#config;
    const w = new Worker(ACCEPTOR_URL, { type: "module", name: "acceptor" });
    this.#acceptor = w;
    let ready = false;
    return new Promise((resolve, reject) => {
      const fail = (message: string) => {
        if (!ready) return reject(new Error(message));
        c.log(`acceptor died: ${message}; restarting it`);
        w.terminate();
        if (this.#closing) return this.#acceptorStopped?.();
        // Same listening fd (a raw fd: it outlived the thread); meanwhile
        // connections wait in the kernel backlog.
        sleep(100).then(() => this.#closing ? undefined : this.#startAcceptor()).catch((e) =>
          c.log(`acceptor restart failed: ${e.message}`)
        );
      };
      w.onmessage = (e: MessageEvent<FromAcceptor>) => {
        const m = e.data;
        if (m.type === "ready") {
          ready = true;
          resolve();
        } else if (m.type === "stopped") {
          this.#acceptorStopped?.();
        } else if (m.type === "log") {
          c.log(m.message);
        } else {
          fail(m.message);
        }
      };
      w.onerror = (e) => {
        e.preventDefault();
        fail(e.message);
      };
      const config: AcceptorConfig = {
        listenFds: this.#bound.map((l) => l.fd),
        maxConnsPerIp: c.maxConnsPerIp,
        control: this.#ctl.buffer as SharedArrayBuffer,
        rings: this.#rings,
        io: c.io,
        owners: this.#owners,
      };
      w.postMessage({ type: "start", config });
    });
  }

  /**
   * browse (#17): starts the search index thread; resolves with its shared
   * buffers at once (the walk goes on in that thread, progress in the log).
   * The watcher's changes go to it from then on. A failing index thread is
   * logged and leaves search walking.
   */
  #startIndex(): Promise<IndexBuffers> {
    const c = this.#config;
    const w = new Worker(INDEX_URL, { type: "module", name: "search-index" });
    this.#indexThread = w;
    return new Promise((resolve, reject) => {
      w.onmessage = (e: MessageEvent<FromIndex>) => {
        const m = e.data;
        if (m.type === "buffers") {
          this.#inval!.onChange = (paths) =>
            w.postMessage({ type: "changed", paths } satisfies ToIndex);
          resolve(m.buffers);
        } else if (m.done) {
          c.log(
            `search index ready: ${m.names} names in ${(m.ms / 1000).toFixed(1)} s, ${
              (m.bytes / 1048576).toFixed(1)
            } MiB shared`,
          );
        } else c.log(`search index: ${m.names} names so far (${(m.ms / 1000).toFixed(1)} s)`);
      };
      w.onerror = (e) => {
        e.preventDefault();
        c.log(`search index thread failed (${e.message}); search walks the tree`);
        reject(new Error(e.message));
      };
      w.postMessage(
        {
          type: "start",
          policy: {
            root: c.handler.root,
            dotfiles: c.handler.dotfiles,
            followSymlinks: c.handler.followSymlinks,
          },
        } satisfies ToIndex,
      );
    });
  }

  /** Starts the worker of slot `i`; resolves with its port when it is ready. */
  #startWorker(i: number): Promise<number> {
    const c = this.#config;
    const w = new Worker(WORKER_URL, { type: "module", name: `http-${i}` });
    this.#threads[i] = w;
    let ready = false;
    return new Promise((resolve, reject) => {
      const fail = (message: string) => {
        if (!ready) {
          w.terminate();
          return reject(new Error(`worker ${i}: ${message}`));
        }
        this.#replace(i, w, message);
      };
      w.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.type === "ready") {
          ready = true;
          Atomics.store(this.#ctl, slot(i, ALIVE), 1);
          resolve(m.port);
        } else if (m.type === "drained") {
          this.#drained[i]?.();
        } else if (m.type === "authed") {
          this.#authed[i]?.();
        } else {
          fail(m.message);
        }
      };
      w.onerror = (e) => {
        e.preventDefault();
        fail(e.message);
      };
      const config: WorkerConfig = {
        index: i,
        mode: c.mode,
        control: this.#ctl.buffer as SharedArrayBuffer,
        ring: this.#rings[i],
        io: c.io,
        owners: this.#owners,
        hostname: c.hostname,
        port: this.addr.port,
        maxConns: Math.max(1, Math.ceil(c.maxConns / c.workers)),
        headerTimeoutMs: c.headerTimeoutMs,
        idleTimeoutMs: c.idleTimeoutMs,
        writeTimeoutMs: c.writeTimeoutMs,
        tls: c.tls,
        workers: c.workers,
        metrics: this.#metrics,
        logRings: c.accessLog === undefined ? undefined : this.#logRings,
        rings: c.mode === "ring" ? this.#rings : undefined,
        metricsPath: c.metricsPath,
        perIp: this.#perIp && { buffer: this.#perIp, limit: c.maxConnsPerIp },
        limitRate: c.limitRate,
        limitRateAfter: c.limitRateAfter,
        healthPath: c.healthPath,
        healthLog: c.healthLog,
        pool: this.#pool?.buffers,
        invalidation: this.#inval?.slot(i),
        handler: this.#searchIndex === undefined
          ? c.handler
          : { ...c.handler, searchIndex: this.#searchIndex },
        auth: c.auth,
      };
      w.postMessage({ type: "start", config } satisfies ToWorker);
    });
  }

  async #replace(i: number, dead: Worker, reason: string): Promise<void> {
    if (this.#threads[i] !== dead) return; // already being replaced
    this.#threads[i] = undefined;
    dead.terminate();
    // Results queued for it would never be read: give their slab chunks back.
    this.#pool?.workerDied(i);
    if (this.#closing) {
      this.#drained[i]?.();
      return;
    }
    const ctl = this.#ctl;
    const t0 = performance.now();
    this.#config.log(`worker ${i} died (${reason}); replacing it`);
    Atomics.store(ctl, slot(i, ACK), 0);
    Atomics.store(ctl, slot(i, ALIVE), 0);
    if (this.mode === "ring") {
      // The acceptor acknowledges within one poll (<= 100 ms); the bound only
      // matters if the acceptor itself is gone.
      const until = Date.now() + 1000;
      while (Atomics.load(ctl, slot(i, ACK)) === 0 && Date.now() < until && !this.#closing) {
        await sleep(5);
      }
    }
    Atomics.store(ctl, slot(i, OPEN), 0);
    Atomics.store(ctl, slot(i, WORKER_CRASH), 0);
    const tAck = performance.now();
    const now = Date.now();
    const recent = this.#crashes[i].filter((t) => now - t < 10_000);
    recent.push(now);
    this.#crashes[i] = recent;
    // Two crashes close together may be unrelated; a third is a loop.
    if (recent.length > 2) await sleep(Math.min(1000, 100 * 2 ** (recent.length - 3)));
    if (this.#closing) return;
    const tSpawn = performance.now();
    // Its connections died with it: their per-address charges go now, once
    // (late, so that nothing of the terminated thread can still run).
    if (this.#perIp) SharedPerIp.clear(this.#perIp, i);
    try {
      await this.#startWorker(i);
      Atomics.add(ctl, slot(i, RESTARTS), 1);
      const tReady = performance.now();
      this.#config.log(
        `worker ${i} replaced in ${Math.round(tReady - t0)} ms (ack ${
          Math.round(tAck - t0)
        }, backoff ${Math.round(tSpawn - tAck)}, start ${Math.round(tReady - tSpawn)})`,
      );
    } catch (e) {
      const failed = this.#threads[i];
      if (failed) this.#replace(i, failed, e instanceof Error ? e.message : String(e));
    }
  }

  /**
   * Test hook: makes worker `i` throw an uncaught error, as a bug would.
   * Not reachable from the network; `serve()` callers never see it.
   *
   * @param i the worker slot
   */
  crashWorker(i: number): void {
    // Both: an epoll worker polls the word; the others take the message.
    Atomics.store(this.#ctl, slot(i, WORKER_CRASH), 1);
    this.#threads[i]?.postMessage({ type: "crash" } satisfies ToWorker);
  }

  /**
   * Test hook: stops pool thread `i` wherever it is, mid-job included.
   *
   * @param i the pool slot
   */
  killPoolThread(i: number): void {
    this.#pool?.kill(i);
  }

  /** Test hook: makes the acceptor throw, as a bug would. */
  crashAcceptor(): void {
    Atomics.store(this.#ctl, CRASH, 1);
  }

  stats(): ClusterStats {
    const sample = (this.#collector ??= this.#newCollector()).sample();
    return {
      mode: this.mode,
      accepted: sample.accepted,
      dropped: sample.dropped,
      emfile: sample.emfile,
      perIpRefused: sample.perIpRefused,
      workers: sample.workers.map((w, i) => ({
        alive: w.up,
        open: w.open,
        connections: w.connections,
        requests: Atomics.load(this.#ctl, slot(i, REQUESTS)),
        restarts: w.restarts,
        responses: w.responses,
        bytes: w.bytes,
        logged: w.logged,
        logDropped: w.logDropped,
        invalidations: w.invalidations,
        shed: w.shed ?? 0,
        deadlineCloses: w.deadlineCloses ?? { head: 0, idle: 0, write: 0, handshake: 0 },
        connRing: w.connRing,
        logRing: w.logRing,
      })),
      pool: this.#pool?.stats(),
    };
  }

  shutdown(graceMs: number = this.#config.graceMs): Promise<void> {
    if (this.#shutdown) {
      this.#force?.();
      return this.#shutdown;
    }
    this.#closing = true;
    const forced = new Promise<void>((r) => this.#force = r);
    this.#shutdown = this.#drain(graceMs, forced);
    return this.#shutdown;
  }

  async #drain(graceMs: number, forced: Promise<void>): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = Promise.race([
      forced,
      new Promise<void>((r) => timer = setTimeout(r, graceMs)),
    ]);
    try {
      Atomics.store(this.#ctl, STATE, STOPPING);
      Atomics.notify(this.#ctl, STATE);
      if (this.#acceptor) {
        // The acceptor sees STOPPING within one poll (<= 100 ms) and closes
        // the listening socket; only then can the workers' rings stay empty.
        const stopped = new Promise<void>((r) => this.#acceptorStopped = r);
        await Promise.race([stopped, expired]);
      }
      Atomics.store(this.#ctl, DRAIN, 1);
      const drained: Promise<void>[] = [];
      this.#threads.forEach((w, i) => {
        if (!w) return;
        drained.push(new Promise<void>((r) => this.#drained[i] = r));
        w.postMessage({ type: "drain" } satisfies ToWorker);
      });
      await Promise.race([Promise.all(drained), expired]);
      // No HTTP worker submits any more: pool threads finish what is queued.
      this.#pool?.close();
    } finally {
      clearTimeout(timer);
      this.#terminateAll();
      // Every producer has stopped: write what the rings still hold.
      await this.#log?.close();
    }
  }

  #terminateAll(): void {
    // The acceptor closed the fds (or they close at exit): only the files remain.
    closeListeners(this.#bound, false);
    this.#inval?.close();
    this.#indexThread?.terminate();
    for (const w of this.#threads) w?.terminate();
    this.#threads = [];
    this.#acceptor?.terminate();
    this.#acceptor = undefined;
    this.#pool?.terminate();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}
