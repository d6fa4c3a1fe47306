/**
 * `serve()`: start the whole server (acceptor, HTTP workers, supervisor) and
 * get a {@linkcode Cluster} handle back.
 *
 * @module
 */
import { openFileLimit } from "./workers/_libc.ts";
import { type Cluster, type ClusterConfig, Supervisor } from "./workers/supervisor.ts";

export type { Cluster, ClusterStats, WorkerStats } from "./workers/supervisor.ts";
export type { PoolStats } from "./workers/_pool_host.ts";
import { MAX_WORKER } from "./workers/_jobs.ts";
export type { PoolSample } from "./workers/_jobs.ts";

/**
 * Options of {@linkcode serve}. Every field but `root` is optional.
 *
 * @example Two workers on loopback, no listings, an extra header
 * ```ts
 * import type { ServeOptions } from "./mod.ts";
 *
 * const options: ServeOptions = {
 *   root: ".",
 *   hostname: "127.0.0.1",
 *   port: 8080,
 *   workers: 2,
 *   dirListing: false,
 *   headers: [["cache-control", "max-age=60"]],
 * };
 * console.assert(options.workers === 2);
 * ```
 */
export interface ServeOptions {
  /** The directory to serve. Must exist and be readable, or `serve()` rejects. */
  root: string;
  /**
   * IPv4 or IPv6 address to listen on (`"::"` also accepts IPv4), or `"localhost"`.
   * @default {"0.0.0.0"}
   */
  hostname?: string;
  /**
   * TCP port; 0 picks a free one (read it back from `cluster.addr.port`).
   * @default {8000}
   */
  port?: number;
  /**
   * Number of HTTP worker threads.
   * @default {navigator.hardwareConcurrency}
   */
  workers?: number;
  /**
   * Job pool threads: directory listings are rendered and text files
   * compressed there, so a large directory never stalls a worker's other
   * connections. 0: the HTTP workers do that work inline (asynchronous I/O).
   * @default {max(1, floor(navigator.hardwareConcurrency / 2))}
   */
  pool?: number;
  /**
   * How connections reach the workers. `"ring"`: one acceptor thread calls
   * `accept4` through FFI and hands each connection to the least-loaded worker
   * through its ring (exact balance; Linux and `--allow-ffi` only, otherwise
   * it falls back to `"reuseport"` with a one-line notice). `"reuseport"`: each
   * worker listens on the port with `SO_REUSEPORT` and the kernel spreads
   * connections by hash (needs the `net` unstable flag).
   * @default {"ring"}
   */
  accept?: "ring" | "reuseport";
  /**
   * Ring mode only: how HTTP workers drive their sockets. `"epoll"`: each
   * worker waits on its own epoll fd, where the acceptor registers the
   * connections it hands over, and reads/writes through FFI (one thread
   * wake-up per connection). `"socket"`: each worker adopts fds as
   * `node:net` Sockets (two wake-ups per connection; kept for comparison).
   * @default {"epoll"}
   */
  ringIo?: "epoll" | "socket";
  /**
   * Cap on connections open at once (ring mode: plus those queued to a
   * worker; reuseport mode: each worker takes `ceil(maxConns / workers)`).
   * At the cap, new connections wait in the kernel's backlog.
   * @default {(RLIMIT_NOFILE - 128) / 2, at least 16: each connection may hold a socket and a file; 448 when the limit cannot be read}
   */
  maxConns?: number;
  /**
   * The `listen()` backlog: connections the kernel holds while at the cap.
   * @default {4096}
   */
  backlog?: number;
  /**
   * A request head must arrive in full within this time (slowloris), else the connection closes.
   * @default {10000}
   */
  headerTimeoutMs?: number;
  /**
   * A kept-alive connection with no request for this long is closed.
   * @default {15000}
   */
  idleTimeoutMs?: number;
  /**
   * A connection whose client reads nothing for this long while a response is being written is closed.
   * @default {30000}
   */
  writeTimeoutMs?: number;
  /**
   * How long `shutdown()` lets in-flight requests finish.
   * @default {10000}
   */
  graceMs?: number;
  /**
   * Render an HTML listing for directories without `index.html`.
   * @default {true}
   */
  dirListing?: boolean;
  /**
   * Serve (and list) files whose name starts with a dot.
   * @default {false}
   */
  dotfiles?: boolean;
  /**
   * Serve symlinks that point outside the root.
   * @default {false}
   */
  followSymlinks?: boolean;
  /**
   * Largest folder download (`?download=tar`) in bytes of tar; a larger
   * folder is refused with 403 before anything is sent. 0 turns folder
   * downloads off.
   * @default {Infinity}
   */
  maxArchiveBytes?: number;
  /**
   * Each worker's in-memory cache, in bytes: files up to 64 KiB and rendered
   * listings (at most a quarter). The supervisor watches the root
   * (`Deno.watchFs`) and tells every worker what changed, so a change on disk
   * shows at once; each entry is also re-checked with a stat at most once a
   * second, which is all that remains when the watcher cannot start (said
   * once through `log`). 0 turns the cache, and the watcher, off.
   * @default {67108864 (64 MiB)}
   */
  cacheMaxBytes?: number;
  /**
   * How long a cached file or listing is trusted before a `stat` re-checks
   * it, ms. The file watcher drops changed entries sooner; this bounds how
   * stale an answer can be where it cannot see a change.
   * @default {1000}
   */
  revalidateMs?: number;
  /**
   * Add `Access-Control-Allow-Origin: *` to every response.
   * @default {false}
   */
  cors?: boolean;
  /**
   * Extra headers added to every response, e.g. `[["cache-control", "no-cache"]]`.
   * @default {[]}
   */
  headers?: Array<[string, string]>;
  /**
   * HTTPS: the certificate chain, as PEM text (not a path: read the file
   * first, e.g. `Deno.readTextFileSync("cert.pem")`; the CLI's `--cert FILE`
   * does that). Needs `key` too. Each worker then listens itself on the port
   * (`Deno.listenTls` with `SO_REUSEPORT`, so `accept` is `"reuseport"`) and
   * negotiates by ALPN: HTTP/1.1 through ringhttpd's engine, HTTP/2 through
   * `Deno.serve` (see `workers/tls.ts` for which timeouts apply there).
   * @default {undefined (plain HTTP)}
   */
  cert?: string;
  /**
   * HTTPS: the private key, as PEM text (RSA, EC or PKCS#8). Needs `cert` too.
   * @default {undefined (plain HTTP)}
   */
  key?: string;
  /**
   * Access log to stdout: one Combined Log Format line per response. Workers
   * queue fixed-size records in their own log ring (never blocking; a full
   * ring drops the record and counts it); the main thread writes the lines
   * every `logFlushMs`. Off: no ring, no per-connection work.
   * @default {false}
   */
  verbose?: boolean;
  /**
   * Access log to this file (appended to, created if missing) instead of
   * stdout; `"-"` is stdout. Setting it turns the access log on.
   * @default {undefined}
   */
  accessLog?: string;
  /**
   * Access-log line layout: nginx's `combined` (CLF + Referer and User-Agent) or `common` (CLF).
   * @default {"combined"}
   */
  logFormat?: "combined" | "common";
  /**
   * Records each worker's log ring holds (a power of two, 512 bytes each).
   * A burst larger than this between two drains loses the excess (counted).
   * @default {8192}
   */
  logRingSize?: number;
  /**
   * How often the main thread drains the log rings (sooner while one is over half full).
   * @default {20}
   */
  logFlushMs?: number;
  /**
   * Serve Prometheus text exposition of every worker's counters at this
   * exact path (e.g. `/.ringhttpd/metrics`), answered by whichever worker gets
   * the request. It hides a file at the same path: `serve()` says so through
   * `log` when one exists at start.
   * @default {undefined (not served)}
   */
  metricsPath?: string;
  /**
   * Where the cluster's own notices go: the ring -> reuseport fallback, worker
   * restarts, acceptor errors. `serve()` prints nothing else.
   * @default {console.error}
   */
  log?: (line: string) => void;
}

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

function powerOfTwo(name: string, value: number | undefined, fallback: number): number {
  const n = positiveInt(name, value, fallback);
  if ((n & (n - 1)) !== 0 || n > 1 << 20) {
    throw new RangeError(`${name} must be a power of two 1-${1 << 20}, got ${n}`);
  }
  return n;
}

function logFormatOf(f: string | undefined): "combined" | "common" {
  if (f === undefined || f === "combined" || f === "common") return f ?? "combined";
  throw new RangeError(`logFormat must be "combined" or "common", got "${f}"`);
}

function archiveBound(value: number | undefined): number {
  if (value === undefined) return Infinity;
  if (!(value >= 0)) throw new RangeError(`maxArchiveBytes must be >= 0, got ${value}`);
  return value;
}

/** Whether ring mode can run here: Linux, with FFI permission. */
function ringSupported(): boolean {
  return Deno.build.os === "linux" &&
    Deno.permissions.querySync({ name: "ffi" }).state === "granted";
}

function metricsPathOf(path: string | undefined, root: string, log: (l: string) => void) {
  if (path === undefined) return undefined;
  if (!/^\/[A-Za-z0-9._~\/-]*$/.test(path)) {
    throw new RangeError(
      `metricsPath must start with "/" and use only letters, digits and "._~/-", got "${path}"`,
    );
  }
  try {
    Deno.statSync(root + path);
    log(`notice: the metrics page ${path} hides the file of the same path under the root`);
  } catch {
    // Nothing there: nothing hidden.
  }
  return path;
}

function checkRoot(root: string): string {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(root);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`root "${root}" does not exist`);
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      throw new Error(`root "${root}" is not readable (${e.message})`);
    }
    throw e;
  }
  if (!info.isDirectory) throw new Error(`root "${root}" is not a directory`);
  try {
    for (const _ of Deno.readDirSync(root)) break;
  } catch (e) {
    throw new Error(`root "${root}" is not readable (${(e as Error).message})`);
  }
  return Deno.realPathSync(root);
}

function checkTls(cert?: string, key?: string): { cert: string; key: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    throw new RangeError(
      `cert and key go together, got only ${cert === undefined ? "key" : "cert"}`,
    );
  }
  for (const [name, pem] of [["cert", cert], ["key", key]]) {
    if (!pem.includes("-----BEGIN ")) {
      throw new RangeError(
        `${name} must be PEM text (read the file first), got ${JSON.stringify(pem.slice(0, 40))}`,
      );
    }
  }
  return { cert, key };
}

/**
 * Starts the server: checks the root, then starts the acceptor (ring mode)
 * and the HTTP workers, and resolves once every thread is ready to serve.
 * It prints nothing on success; announce `cluster.addr` yourself.
 *
 * @param options what to serve and how; see {@linkcode ServeOptions}
 * @returns the running cluster
 * @throws {Error} before any thread starts when the root is missing, not a
 *   directory or unreadable; {@linkcode RangeError} for a bad option; the
 *   bind error (e.g. `port 8000 is in use`) after stopping what had started
 *
 * @example Serve a directory on a free port
 * ```ts
 * import { serve } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${root}/index.html`, "<h1>hi</h1>");
 * const cluster = await serve({ root, port: 0, hostname: "127.0.0.1", workers: 1 });
 * try {
 *   const res = await fetch(`http://127.0.0.1:${cluster.addr.port}/`);
 *   assert.equal(await res.text(), "<h1>hi</h1>");
 * } finally {
 *   await cluster.shutdown();
 *   await Deno.remove(root, { recursive: true });
 * }
 * ```
 */
export async function serve(options: ServeOptions): Promise<Cluster> {
  const root = checkRoot(options.root);
  const log = options.log ?? ((line: string) => console.error(line));
  const port = options.port ?? 8000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be 0-65535, got ${port}`);
  }
  let mode = options.accept ?? "ring";
  if (mode !== "ring" && mode !== "reuseport") {
    throw new RangeError(`accept must be "ring" or "reuseport", got "${mode}"`);
  }
  const io = options.ringIo ?? "epoll";
  if (io !== "epoll" && io !== "socket") {
    throw new RangeError(`ringIo must be "epoll" or "socket", got "${io}"`);
  }
  const ffi = ringSupported();
  const tls = checkTls(options.cert, options.key);
  if (tls && mode === "ring") {
    // TLS sessions live in each worker's own listener: nothing to hand over.
    if (options.accept === "ring") log("notice: HTTPS needs --accept=reuseport; using it");
    mode = "reuseport";
  }
  if (mode === "ring" && !ffi) {
    log(
      Deno.build.os === "linux"
        ? "notice: ring mode needs --allow-ffi; using --accept=reuseport"
        : `notice: ring mode needs Linux (this is ${Deno.build.os}); using --accept=reuseport`,
    );
    mode = "reuseport";
  }
  const limit = ffi ? openFileLimit() : undefined;
  const derivedCap = limit === undefined ? 448 : Math.max(16, Math.floor((limit - 128) / 2));
  const workers = positiveInt("workers", options.workers, navigator.hardwareConcurrency || 1);
  const pool = positiveInt(
    "pool",
    options.pool,
    Math.max(1, Math.floor((navigator.hardwareConcurrency || 1) / 2)),
    0,
  );
  if (pool > 0 && workers > MAX_WORKER + 1) {
    // A job record names its worker in 8 bits.
    throw new RangeError(
      `workers must be at most ${
        MAX_WORKER + 1
      } with a job pool (pool: 0 lifts it), got ${workers}`,
    );
  }
  const config: ClusterConfig = {
    hostname: options.hostname ?? "0.0.0.0",
    port,
    workers,
    mode,
    io,
    fdLimit: limit ?? 1024,
    maxConns: positiveInt("maxConns", options.maxConns, derivedCap),
    backlog: positiveInt("backlog", options.backlog, 4096),
    headerTimeoutMs: positiveInt("headerTimeoutMs", options.headerTimeoutMs, 10_000),
    idleTimeoutMs: positiveInt("idleTimeoutMs", options.idleTimeoutMs, 15_000),
    writeTimeoutMs: positiveInt("writeTimeoutMs", options.writeTimeoutMs, 30_000),
    graceMs: positiveInt("graceMs", options.graceMs, 10_000, 0),
    tls,
    accessLog: options.accessLog ?? (options.verbose ? "-" : undefined),
    logFormat: logFormatOf(options.logFormat),
    logRingSize: powerOfTwo("logRingSize", options.logRingSize, 8192),
    logFlushMs: positiveInt("logFlushMs", options.logFlushMs, 20),
    metricsPath: metricsPathOf(options.metricsPath, root, log),
    pool,
    handler: {
      root,
      dirListing: options.dirListing ?? true,
      dotfiles: options.dotfiles ?? false,
      followSymlinks: options.followSymlinks ?? false,
      maxArchiveBytes: archiveBound(options.maxArchiveBytes),
      cors: options.cors ?? false,
      headers: options.headers ?? [],
      cacheMaxBytes: positiveInt("cacheMaxBytes", options.cacheMaxBytes, 64 * 1024 * 1024, 0),
      revalidateMs: positiveInt("revalidateMs", options.revalidateMs, 1000, 0),
    },
    log,
  };
  return await Supervisor.start(config);
}
