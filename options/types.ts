/**
 * The option types of the public API, in a module of their own so that the
 * resolver (`options/resolve.ts`), `serve.ts` and the CLI share them without
 * importing each other.
 *
 * @module
 */
import type { Redirect } from "./redirects.ts";

/**
 * Options of {@linkcode serve}. Every field but `root` is optional.
 *
 * @example Two workers on loopback, no listings, an extra header
 * ```ts
 * import type { ServeOptions } from "../mod.ts";
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
   * Cap on connections open at once (ring mode: plus those queued to a
   * worker; reuseport mode: each worker takes `ceil(maxConns / workers)`).
   * Near the cap each new connection sheds an idle or slow one (kept-alive
   * idle first, never one mid-response); only when nothing can be shed do
   * new ones wait in the kernel's backlog.
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
   * Largest folder download (`?download=zip|tar|tar.gz`) in bytes (of the
   * uncompressed archive); a larger
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
   * browse (#17): development mode: `Cache-Control: no-cache` on every
   * response, CORS on, and live reload (HTML pages get a small script that
   * listens to a server-sent-events endpoint fed by a watcher). Nothing is
   * injected without it.
   * @default {false}
   */
  dev?: boolean;
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
  // ---- net: listeners and per-connection limits (#13) ----
  /**
   * Addresses to listen on, replacing `hostname`/`port`: `"HOST:PORT"`,
   * `"[IPv6]:PORT"` or `"unix:/path/to.sock"`. Several, or a Unix socket,
   * need ring mode (the acceptor polls them all); reuseport and HTTPS serve
   * one TCP address (each worker binds its own socket there).
   * @default {undefined (one address: hostname:port)}
   */
  listen?: string[];
  /**
   * Permission bits of Unix socket files (`listen: ["unix:..."]`): who may connect.
   * @default {0o660 (owner and group)}
   */
  unixMode?: number;
  /**
   * Socket activation: serve on the `listenFds` listening sockets inherited
   * at fds 3, 4, ... (systemd's `LISTEN_FDS`) instead of binding; the CLI
   * reads `LISTEN_FDS`/`LISTEN_PID` itself. Ring mode only (Deno cannot
   * turn an inherited fd into a `Deno.Listener`).
   * @default {undefined (bind)}
   */
  listenFds?: number;
  /** Socket activation: `LISTEN_FDNAMES` (colon-separated names, shown at start). */
  listenFdNames?: string;
  /**
   * Connections open at once per client address (IPv4, or the whole IPv6
   * address; Unix-socket clients share the address `unix`), across all
   * workers; over it a new connection is closed at accept. Ring mode (epoll
   * I/O) and reuseport mode; not HTTPS yet. 0: no limit.
   * @default {0}
   */
  maxConnsPerIp?: number;
  /**
   * Download pacing per response, bytes per second, like nginx's
   * `limit_rate`: past `limitRateAfter` bytes, a response goes out at this
   * rate at most (in steps of about 1/8 s). A response that fits one 16 KiB
   * write is never paced. Plain HTTP/1.1 only (not HTTPS yet). 0: off.
   * @default {0}
   */
  limitRate?: number;
  /**
   * Bytes of each response sent at full speed before `limitRate` applies (nginx's `limit_rate_after`).
   * @default {0}
   */
  limitRateAfter?: number;
  // write (#14): WebDAV and uploads.
  /**
   * Answer WebDAV's read side (OPTIONS `DAV: 1`, PROPFIND Depth 0/1): a
   * share file managers and rclone can mount and browse.
   * @default {false (true with `upload`)}
   */
  webdav?: boolean;
  /**
   * URL-path globs (picomatch, `**` any depth) under which every
   * authenticated user and token may write (PUT, DELETE, MKCOL, COPY, MOVE;
   * missing folders are made on PUT). Anonymous requests never write.
   * @default {[] (no writes)}
   */
  upload?: string[];
  /**
   * Largest upload, bytes: 413 before reading when Content-Length says more,
   * else at the limit.
   * @default {Infinity}
   */
  maxUploadBytes?: number;
  /**
   * Also fsync the directory after each rename (the new name survives a power cut).
   * @default {false}
   */
  durable?: boolean;
  /**
   * Where the cluster's own notices go: the ring -> reuseport fallback, worker
   * restarts, acceptor errors. `serve()` prints nothing else.
   * @default {console.error}
   */
  log?: (line: string) => void;
  // --- site rules (#13) ---
  /**
   * Send `X-Content-Type-Options: nosniff` with every response.
   * @default {true}
   */
  nosniff?: boolean;
  /**
   * Send `Cross-Origin-Opener-Policy: same-origin` and
   * `Cross-Origin-Embedder-Policy: require-corp` with every response (pages
   * using `SharedArrayBuffer` need both).
   * @default {false}
   */
  coopCoep?: boolean;
  /**
   * A file (path on disk; it may be outside the root) sent as the body of
   * every 404, with the Content-Type of its extension. Read once at start,
   * at most 1 MiB; `serve()` rejects a missing or unreadable one.
   * @default {undefined (a plain-text 404)}
   */
  notFoundPage?: string;
  /**
   * Single-page-app fallback: a GET/HEAD that finds nothing, accepts
   * `text/html` and has no extension (or `.html`) gets this file of the
   * root with 200; `true` is `index.html`. Missing assets keep their 404.
   * @default {false}
   */
  spa?: boolean | string;
  /**
   * Cache-Control on file replies by kind: `true` sends `no-cache` for HTML,
   * `public, max-age=31536000, immutable` for fingerprinted names
   * (`app.3f9a1c2b.js`) and `public, max-age=300` for the rest; an object
   * `{ html?, hashed?, other? }` overrides kinds (`"none"`: no header). A
   * `Cache-Control` in `headers` wins over it. 304s carry it too.
   * @default {false}
   */
  cacheControl?: boolean | { html?: string; hashed?: string; other?: string };
  /**
   * Redirects: `{ from, to, status }` (301, 302, 307, 308; default 301),
   * `from` an exact path or a `/**` prefix whose tail `to` takes as
   * `:splat`; `to` a path of this site or an absolute http(s) URL. Checked
   * at start: a bad one is a RangeError naming it (`redirects[1].to ...`).
   * @default {[]}
   */
  redirects?: Redirect[];
  /**
   * Serve a JSON health status at this exact path (e.g. `/healthz`): 200
   * with the live workers and pool threads, 503 when no pool thread is
   * alive. Answered in front of the files (it hides a file of the same path;
   * `serve()` says so through `log`), without credentials, not access-logged
   * unless `healthLog`. Must differ from `metricsPath`.
   * @default {undefined (not served)}
   */
  healthPath?: string;
  /**
   * Access-log the health path's requests too.
   * @default {false}
   */
  healthLog?: boolean;
  /**
   * Requests per second per client address (IPv6 per /64), counted across
   * every worker in shared memory, with bursts up to `burst`: past it, 429
   * with `Retry-After`. The CLI's `--rate-limit 100/s:200`.
   * @default {undefined (no limit)}
   */
  rateLimit?: { rate: number; burst: number };
  // --- access (#13: authentication and path rules) ---
  /**
   * Authentication: with it, every path needs credentials (HTTP Basic, or
   * Bearer with a token file) unless a path rule or `auth.public` makes it
   * public. Files are read, and `users` hashed, before any thread starts;
   * {@linkcode Cluster.reloadAuth} (the CLI: SIGHUP) reads the files again.
   * @default {undefined (no authentication)}
   */
  auth?: AuthOptions;
  /**
   * Path rules, in order (first match per setting wins; see
   * `http/path_rules.ts`): who may read (`access`), `hidden`, `list`,
   * `headers`, `cacheControl` per URL path glob.
   * @default {[]}
   */
  pathRules?: PathRuleSpec[];
}

/** A path rule (the config file's `rules[i]`); see {@linkcode ServeOptions.pathRules}. */
export interface PathRuleSpec {
  /** A glob over the decoded URL path (`/docs/**`, `/a/*.html`). */
  path: string;
  /** `"public"`, `"deny"` (403 for all), or the users and token names that may read. */
  access?: "public" | "deny" | string[];
  /** Directory listings and folder downloads on or off. */
  list?: boolean;
  /** Headers to add; `null` removes one the server sends. */
  headers?: Record<string, string | null>;
  /** `Cache-Control` for replies under `path`. */
  cacheControl?: string;
  /** Answer exactly like a missing path; never listed or archived. */
  hidden?: boolean;
}

/**
 * Authentication settings of {@linkcode ServeOptions.auth}.
 *
 * @example One user, public assets
 * ```ts
 * import type { AuthOptions } from "./types.ts";
 *
 * const auth: AuthOptions = { users: ["alice:s3cret"], public: ["/assets/**"] };
 * console.assert(auth.users!.length === 1);
 * ```
 */
export interface AuthOptions {
  /** `USER:PASSWORD` values (`--auth`), bcrypt-hashed at start; the plain text goes no further. */
  users?: string[];
  /** An Apache htpasswd file (bcrypt `htpasswd -B`, apr1 `htpasswd -m`). */
  authFile?: string;
  /** A token file: `NAME:SHA256HEX` lines (see `auth/tokens.ts`). */
  tokenFile?: string;
  /** The realm browsers show. @default {"ringhttpd"} */
  realm?: string;
  /** Globs over the URL path anyone may read (`--public`). @default {[]} */
  public?: string[];
  /**
   * Failed attempts per client address (IPv6: per /64), across all workers,
   * within `failureWindowSeconds`, before it gets 429 + Retry-After.
   * @default {10}
   */
  maxFailures?: number;
  /** The window of `maxFailures`, seconds (a sliding window). @default {60} */
  failureWindowSeconds?: number;
}
