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
import type { AuthOptions, PathRuleSpec, ServeOptions } from "./options/types.ts";
import type { WorkerAuth } from "./workers/_shared.ts";
import type { AuthSources } from "./auth/config.ts";
import type { PathRulesConfig } from "./http/path_rules.ts";
import { resolveServeOptions } from "./options/resolve.ts";
import { checkSiteFiles, siteOptionsOf } from "./http/_site_rules.ts";
import { allocateRateTable } from "./http/_rate_limit.ts";
export type { ServeOptions } from "./options/types.ts";

/** Whether ring mode can run here: Linux, with FFI permission. */
function ringSupported(): boolean {
  return Deno.build.os === "linux" &&
    Deno.permissions.querySync({ name: "ffi" }).state === "granted";
}

/** Says once, through `log`, that the metrics page hides a file of the same path. */
function metricsPathOf(path: string | undefined, root: string, log: (l: string) => void) {
  if (path === undefined) return undefined;
  try {
    Deno.statSync(root + path);
    log(`notice: the metrics page ${path} hides the file of the same path under the root`);
  } catch {
    // Nothing there: nothing hidden.
  }
  return path;
}

/** Site rules (#13): says once, through `log`, that the health page hides a file of its path. */
function healthPathOf(path: string | undefined, root: string, log: (l: string) => void) {
  if (path === undefined) return undefined;
  try {
    Deno.statSync(root + path);
    log(`notice: the health page ${path} hides the file of the same path under the root`);
  } catch {
    // Nothing there: nothing hidden.
  }
  return path;
}

/**
 * Authentication or path rules that cannot be used: a file that cannot be
 * read or has a bad line (the message names the file and line), a bad
 * `USER:PASSWORD`, a glob that does not compile (naming the rule). The CLI
 * exits 2 with it.
 */
export class AccessConfigError extends Error {
  /** @param message what is wrong, naming the file and line or the rule */
  constructor(message: string) {
    super(message);
    this.name = "AccessConfigError";
  }
}

/** Loads the credentials and checks the path rules, before any thread starts. */
async function accessOf(
  auth: AuthOptions | undefined,
  pathRules: PathRuleSpec[] | undefined,
): Promise<{
  auth?: WorkerAuth;
  sources?: AuthSources;
  pathRules?: PathRulesConfig;
}> {
  if (auth === undefined && (pathRules === undefined || pathRules.length === 0)) return {};
  try {
    let worker: WorkerAuth | undefined, sources: AuthSources | undefined;
    if (auth !== undefined) {
      // deno-lint-ignore no-control-regex
      if (/[\x00-\x1f\x7f]/.test(auth.realm ?? "")) {
        throw new RangeError("the realm cannot hold control characters");
      }
      const a = await import("./auth/mod.ts");
      sources = {
        authFile: auth.authFile,
        tokenFile: auth.tokenFile,
        flags: (auth.users ?? []).map((u) => a.credentialFromFlag(u)),
      };
      const data = await a.loadAuth(sources);
      if (data.users.size === 0 && data.tokens === undefined) {
        throw new RangeError("authentication needs at least one user or a token file");
      }
      worker = {
        users: [...data.users.values()],
        tokens: data.tokens?.entries(),
        realm: auth.realm ?? "ringhttpd",
        attempts: a.allocateAttempts({
          threshold: auth.maxFailures,
          windowSeconds: auth.failureWindowSeconds,
        }),
      };
    }
    const config: PathRulesConfig = {
      rules: pathRules,
      public: auth?.public,
      auth: worker !== undefined,
    };
    const { PathRules } = await import("./http/path_rules.ts");
    new PathRules(config); // throws naming a bad rule
    return { auth: worker, sources, pathRules: config };
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) throw e;
    throw new AccessConfigError((e as Error).message);
  }
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
  // Every option checked once, by the resolver the CLI and createHandler() share.
  const o = resolveServeOptions(options);
  const root = o.root;
  checkSiteFiles(root, o); // before any thread starts
  const log = o.log ?? ((line: string) => console.error(line));
  let mode = o.accept ?? "ring";
  const ffi = ringSupported();
  const tls = o.tls;
  if (tls && mode === "ring") {
    // TLS sessions live in each worker's own listener: nothing to hand over.
    if (o.accept === "ring") log("notice: HTTPS needs --accept=reuseport; using it");
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
  const net = listenersOf(o, mode, ffi);
  const limit = ffi ? openFileLimit() : undefined;
  const derivedCap = limit === undefined ? 448 : Math.max(16, Math.floor((limit - 128) / 2));
  const workers = o.workers ?? (navigator.hardwareConcurrency || 1);
  const pool = o.pool ?? Math.max(1, Math.floor((navigator.hardwareConcurrency || 1) / 2));
  if (pool > 0 && workers > MAX_WORKER + 1) {
    // A job record names its worker in 8 bits.
    throw new RangeError(
      `workers must be at most ${
        MAX_WORKER + 1
      } with a job pool (pool: 0 lifts it), got ${workers}`,
    );
  }
  // write (#14): temporary files a crash left under the upload folders go first.
  if (o.upload !== undefined && o.upload.length > 0) {
    const { sweepUploads } = await import("./write/sweep.ts");
    const removed = sweepUploads(root, o.upload);
    if (removed > 0) log(`removed ${removed} unfinished upload(s) left by an earlier run`);
  }
  const access = await accessOf(o.auth, o.pathRules);
  const config: ClusterConfig = {
    ...net,
    workers,
    mode,
    io: "epoll",
    fdLimit: limit ?? 1024,
    maxConns: o.maxConns ?? derivedCap,
    backlog: o.backlog ?? 4096,
    headerTimeoutMs: o.headerTimeoutMs ?? 10_000,
    idleTimeoutMs: o.idleTimeoutMs ?? 15_000,
    writeTimeoutMs: o.writeTimeoutMs ?? 30_000,
    graceMs: o.graceMs ?? 10_000,
    tls,
    accessLog: o.accessLog ?? (o.verbose ? "-" : undefined),
    logFormat: o.logFormat ?? "combined",
    logRingSize: o.logRingSize ?? 8192,
    logFlushMs: o.logFlushMs ?? 20,
    metricsPath: metricsPathOf(o.metricsPath, root, log),
    healthPath: healthPathOf(o.healthPath, root, log),
    healthLog: o.healthLog ?? false,
    pool,
    handler: {
      root,
      dirListing: o.dirListing ?? true,
      dotfiles: o.dotfiles ?? false,
      followSymlinks: o.followSymlinks ?? false,
      maxArchiveBytes: o.maxArchiveBytes ?? Infinity,
      cors: (o.cors || o.dev) ?? false,
      dev: o.dev ?? false, // browse (#17)
      headers: o.headers,
      cacheMaxBytes: o.cacheMaxBytes ?? 64 * 1024 * 1024,
      revalidateMs: o.revalidateMs ?? 1000,
      ...siteOptionsOf(o),
      // One table for every worker: the limit is per client, not per thread.
      ...(o.rateLimit ? { rateLimitTable: allocateRateTable(o.rateLimit) } : {}),
      // write (#14)
      webdav: o.webdav ?? false,
      upload: o.upload ?? [],
      maxUploadBytes: o.maxUploadBytes ?? Infinity,
      durable: o.durable ?? false,
      pathRules: access.pathRules,
    },
    log,
    auth: access.auth,
    authSources: access.sources,
  };
  return await Supervisor.start(config);
}

// ---- net: listeners and per-connection limits (#13) ----

/**
 * Where to listen and the per-address limit, checked against the mode: more
 * than one address, a Unix socket, inherited sockets and the per-address
 * limit need ring mode (one acceptor polls every listener and counts every
 * connection); reuseport and HTTPS workers each bind one TCP address.
 */
function listenersOf(
  o: ReturnType<typeof resolveServeOptions>,
  mode: "ring" | "reuseport",
  ffi: boolean,
): Pick<
  ClusterConfig,
  | "hostname"
  | "port"
  | "listen"
  | "unixMode"
  | "inherited"
  | "maxConnsPerIp"
  | "limitRate"
  | "limitRateAfter"
> {
  const listen = o.listenAddresses ??
    [{ kind: "tcp", hostname: o.hostname ?? "0.0.0.0", port: o.port ?? 8000 }];
  const maxConnsPerIp = o.maxConnsPerIp ?? 0;
  const limitRate = o.limitRate ?? 0;
  if (limitRate > 0 && o.tls) {
    throw new RangeError(
      "--limit-rate is not available with HTTPS yet (workers/tls.ts builds its own engine options)",
    );
  }
  const why = o.tls
    ? "HTTPS workers each listen themselves (Deno.listenTls takes no fd and no Unix path)"
    : !ffi
    ? "ring mode needs Linux and --allow-ffi"
    : "in reuseport mode each worker binds its own socket";
  const needRing = (what: string): RangeError =>
    new RangeError(`${what} needs ring mode${o.tls || !ffi ? "" : " (--accept=ring)"}: ${why}`);
  if (mode === "reuseport") {
    if (o.listenFds !== undefined) {
      throw needRing("socket activation (LISTEN_FDS)");
    }
    if (listen.length > 1) throw needRing(`listening on ${listen.length} addresses`);
    if (listen[0].kind === "unix") throw needRing(`a Unix socket (unix:${listen[0].path})`);
    if (maxConnsPerIp > 0 && o.tls) {
      throw new RangeError(
        "--max-conns-per-ip is not available with HTTPS yet (the TLS accept loop does not count)",
      );
    }
  }
  const first = listen[0];
  return {
    hostname: first.kind === "tcp" ? first.hostname : "0.0.0.0",
    port: first.kind === "tcp" ? first.port : 0,
    listen,
    unixMode: o.unixMode ?? 0o660,
    inherited: o.listenFds === undefined
      ? undefined
      : { count: o.listenFds, names: o.listenFdNames },
    maxConnsPerIp,
    limitRate,
    limitRateAfter: o.limitRateAfter ?? 0,
  };
}
