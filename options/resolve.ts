/**
 * The one options resolver: every entry point (the CLI, `serve()`,
 * `createHandler()`) passes its options through here, so each rule exists
 * once. A rule says what a value must be (`port must be 0-65535 (0 picks a
 * free port), got 80.5`); each entry point names the option its own way
 * (`--port`, `port`, a config file's `rules[0].headers["X-A"]`) and the
 * message quotes the value it was given.
 *
 * Pure but for the root check, which looks at the filesystem (sync, so that it
 * can run before anything starts). No import of the server's modules: this
 * file sits below all of them.
 *
 * @module
 */
import type { ServeOptions } from "./types.ts";
import type { HandlerOptions } from "../http/handler.ts";
import { type ListenAddress, parseListen } from "./listen.ts";
import { checkRedirects } from "./redirects.ts";
import { rateLimitProblem } from "./rate_limit.ts";

/**
 * A bad option value: a `RangeError` whose message names the option and
 * quotes the value.
 *
 * @example
 * ```ts
 * import { OptionError } from "./resolve.ts";
 * const e = new OptionError("port", "0-65535", 70000);
 * console.assert(e.message === "port must be 0-65535, got 70000");
 * ```
 */
export class OptionError extends RangeError {
  /** The option as the caller named it (`port`, `--port`, `rules[0].path`). */
  readonly option: string;
  /**
   * @param option the option's name as the caller knows it
   * @param what what the value must be, e.g. `"an integer 1-1024"` (or a
   *   phrase of its own starting with "needs " or "must ")
   * @param value the value given (quoted in the message)
   * @param shown the value as the user typed it, when that differs (CLI text)
   */
  constructor(option: string, what: string, value: unknown, shown = show(value)) {
    super(`${option} ${/^(needs|must) /.test(what) ? "" : "must be "}${what}, got ${shown}`);
    this.option = option;
  }
}

/** A value as a message quotes it: strings in JSON quotes, numbers as JS prints them (NaN, -1). */
export function show(value: unknown): string {
  if (typeof value === "number" || typeof value === "bigint" || value === undefined) {
    return String(value);
  }
  if (typeof value === "function") return "a function";
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** One rule: what a value must be, and the test. */
export interface Rule {
  /** Completes "must be ...": `"an integer 1-1024"`. */
  what: string;
  /** Whether `v` passes. */
  ok(v: unknown): boolean;
}

const int = (min: number, max: number, what = `an integer ${min}-${max}`): Rule => ({
  what,
  ok: (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max,
});
const oneOf = (...values: string[]): Rule => ({
  what: values.map((v) => JSON.stringify(v)).join(" or "),
  ok: (v) => values.includes(v as string),
});
const bool: Rule = { what: "true or false", ok: (v) => typeof v === "boolean" };
const DAY_MS = 86_400_000;

/** What `--host` / `hostname` accept: an IP address or name; `[::1]` brackets are allowed. */
export const HOSTNAME: Rule = {
  what: "a hostname or IP address",
  ok: (v) => typeof v === "string" && /^[^\s/\\@#?\[\]]+$/.test(v.replace(/^\[(.*)\]$/, "$1")),
};

/** A metrics path: absolute, URL-safe characters only, so it never needs decoding. */
export const METRICS_PATH: Rule = {
  what: `must start with "/" and use only letters, digits and "._~/-"`,
  ok: (v) => typeof v === "string" && /^\/[A-Za-z0-9._~\/-]*$/.test(v),
};

/** `--404` / `notFoundPage`: a file name (checked to be a readable file at start). */
export const NOT_FOUND_PAGE: Rule = {
  what: "needs a file name",
  ok: (v) => typeof v === "string" && v !== "",
};

/** `--spa` / `spa`: on, off, or the name of a file under the root. */
export const SPA: Rule = {
  what: "true, false or a file name under the root",
  ok: (v) => typeof v === "boolean" || (typeof v === "string" && v !== ""),
};

/** Kinds `cacheControl` may name. */
export const CACHE_KINDS: readonly string[] = ["html", "hashed", "other"];

/** `--cache-control` / `cacheControl`: on, off, or values per kind (`"none"`: no header). */
export const CACHE_CONTROL: Rule = {
  what: 'true, false or an object of "html", "hashed", "other" to a Cache-Control value or "none"',
  ok: (v) =>
    typeof v === "boolean" ||
    (typeof v === "object" && v !== null && !Array.isArray(v) &&
      Object.entries(v).every(([k, x]) =>
        CACHE_KINDS.includes(k) && typeof x === "string" && x.trim() !== "" &&
        /^[\t\x20-\x7e]*$/.test(x)
      )),
};

/** `rateLimit`: `{ rate, burst }` within bounds (`options/rate_limit.ts`). */
export const RATE_LIMIT: Rule = {
  what: "{ rate, burst } with rate 0-1000000/s, burst 1-1000000, burst / rate at most 1000 s",
  ok: (v) =>
    typeof v === "object" && v !== null && !Array.isArray(v) &&
    Object.keys(v).every((k) => k === "rate" || k === "burst") &&
    rateLimitProblem(v as { rate: number; burst: number }) === undefined,
};

/**
 * Every `ServeOptions` field's rule (API units: milliseconds, bytes). Fields
 * checked by code of their own (root, headers, cert/key) are marked `null`.
 */
export const SERVE_RULES: { readonly [K in keyof Required<ServeOptions>]: Rule | null } = {
  root: null,
  hostname: HOSTNAME,
  port: int(0, 65535, "0-65535 (0 picks a free port)"),
  workers: int(1, 1024),
  pool: int(0, 64),
  accept: oneOf("ring", "reuseport"),
  maxConns: int(1, 10_000_000, "an integer >= 1"),
  backlog: int(1, 2 ** 31 - 1, "an integer >= 1"),
  headerTimeoutMs: int(1, DAY_MS),
  idleTimeoutMs: int(1, DAY_MS),
  writeTimeoutMs: int(1, DAY_MS),
  graceMs: int(0, DAY_MS),
  dirListing: bool,
  dotfiles: bool,
  followSymlinks: bool,
  maxArchiveBytes: {
    what: ">= 0",
    ok: (v) => v === Infinity || (Number.isInteger(v) && (v as number) >= 0),
  },
  cacheMaxBytes: int(0, 2 ** 50, "an integer >= 0"),
  revalidateMs: int(0, DAY_MS),
  cors: bool,
  dev: bool, // browse (#17)
  headers: null,
  cert: null,
  key: null,
  verbose: bool,
  accessLog: { what: "needs a file name", ok: (v) => typeof v === "string" && v !== "" },
  logFormat: oneOf("combined", "common"),
  logRingSize: {
    what: `a power of two 1-${1 << 20}`,
    ok: (v) =>
      Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 1 << 20 &&
      ((v as number) & ((v as number) - 1)) === 0,
  },
  logFlushMs: int(1, DAY_MS),
  metricsPath: METRICS_PATH,
  // net: listeners and per-connection limits (#13)
  listen: null,
  unixMode: int(0, 0o777, "permission bits 0-0o777"),
  listenFds: int(1, 1000, "an integer 1-1000"),
  listenFdNames: { what: "a string", ok: (v) => typeof v === "string" },
  maxConnsPerIp: int(0, 10_000_000, "an integer >= 0 (0: no limit)"),
  limitRate: int(0, 2 ** 40, "an integer number of bytes per second >= 0 (0: off)"),
  limitRateAfter: int(0, 2 ** 50, "an integer number of bytes >= 0"),
  log: { what: "a function", ok: (v) => typeof v === "function" },
  // site rules (#13)
  nosniff: bool,
  coopCoep: bool,
  notFoundPage: NOT_FOUND_PAGE,
  spa: SPA,
  cacheControl: CACHE_CONTROL,
  redirects: null,
  healthPath: METRICS_PATH,
  healthLog: bool,
  rateLimit: RATE_LIMIT,
  // write (#14)
  webdav: bool,
  upload: {
    what: 'a list of URL-path globs, each starting with "/"',
    ok: (v) => Array.isArray(v) && v.every((g) => typeof g === "string" && g.startsWith("/")),
  },
  maxUploadBytes: {
    what: "an integer >= 0, or Infinity",
    ok: (v) => v === Infinity || (Number.isInteger(v) && (v as number) >= 0),
  },
  durable: bool,
  // access (#13): checked by serve() when it loads them (files, globs).
  auth: { what: "an object", ok: (v) => typeof v === "object" && v !== null },
  pathRules: { what: "an array of path rules", ok: (v) => Array.isArray(v) },
};

/**
 * Response headers the server owns. The engine writes the framing and
 * hop-by-hop ones itself (Content-Length, Transfer-Encoding, Connection,
 * Keep-Alive, Date; HTTP/2 forbids Connection, Keep-Alive, Transfer-Encoding,
 * Upgrade and Proxy-Connection); Trailer and TE would announce framing we do
 * not do; Content-Range and Content-Encoding are set per reply by the handler
 * (a second one makes a range or a compressed body unreadable). A user
 * header with one of these names would misframe or mislabel replies.
 */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "date",
  "upgrade",
  "trailer",
  "te",
  "proxy-connection",
  "content-range",
  "content-encoding",
]);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII, space and tab: no CR/LF (response splitting), no NUL, no bytes
// whose encoding on the wire would depend on the engine.
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;

/**
 * What is wrong with one extra response header, or undefined when it may be
 * sent. The text completes "<option> ...": `name must be an HTTP token`.
 *
 * @param name the field name
 * @param value the field value (already trimmed)
 * @returns the problem, or undefined
 *
 * @example
 * ```ts
 * import { headerProblem } from "./resolve.ts";
 * console.assert(headerProblem("X-A", "b") === undefined);
 * console.assert(headerProblem("Content-Length", "9")!.includes("the server sets it"));
 * ```
 */
export function headerProblem(name: unknown, value: unknown): string | undefined {
  if (typeof name !== "string" || !TOKEN.test(name)) {
    return "name must be an HTTP token (no spaces)";
  }
  if (RESERVED_HEADERS.has(name.toLowerCase())) return `cannot set ${name}: the server sets it`;
  if (typeof value !== "string" || !FIELD_VALUE.test(value)) {
    return "value must be visible ASCII, space or tab (no CR, LF or other control characters)";
  }
  return undefined;
}

/** Checks `headers` (an array of [name, value]); returns a copy. */
function checkHeaders(headers: unknown, option = "headers"): Array<[string, string]> {
  if (headers === undefined) return [];
  if (!Array.isArray(headers)) {
    throw new OptionError(option, "an array of [name, value] pairs", headers);
  }
  return headers.map((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new OptionError(`${option}[${i}]`, "a [name, value] pair", pair);
    }
    const problem = headerProblem(pair[0], pair[1]);
    if (problem !== undefined) {
      throw new RangeError(`${option}[${i}] ${problem}, got ${show(pair)}`);
    }
    return [pair[0], pair[1]] as [string, string];
  });
}

/**
 * Checks that `root` is a readable directory: the one root check of every
 * entry point. Throws a plain `Error` naming the root.
 *
 * @param root the directory as given
 * @returns its real path (absolute, symlinks resolved)
 *
 * @example
 * ```ts
 * import { checkRoot } from "./resolve.ts";
 * console.assert(checkRoot(".").startsWith("/"));
 * ```
 */
export function checkRoot(root: unknown): string {
  if (typeof root !== "string" || root === "") {
    throw new OptionError("root", "a directory path", root);
  }
  const where = `root ${JSON.stringify(root)}`;
  const unreadable = (e: unknown): Error => {
    if (e instanceof Deno.errors.NotCapable) {
      return new Error(`${where} is not readable: run with --allow-read`);
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      return new Error(`${where} is not readable: permission denied`);
    }
    return new Error(`${where} is not readable: ${(e as Error).message}`);
  };
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(root);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      throw new Error(`${where} does not exist`);
    }
    throw unreadable(e);
  }
  if (!info.isDirectory) throw new Error(`${where} is not a directory`);
  try {
    // stat succeeds on a mode-000 directory; listing it is what fails.
    for (const _ of Deno.readDirSync(root)) break;
    return Deno.realPathSync(root);
  } catch (e) {
    throw unreadable(e);
  }
}

function checkTls(cert: unknown, key: unknown): { cert: string; key: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    throw new RangeError(
      `cert and key go together, got only ${cert === undefined ? "key" : "cert"}`,
    );
  }
  for (const [name, pem] of [["cert", cert], ["key", key]] as const) {
    if (typeof pem !== "string" || !pem.includes("-----BEGIN ")) {
      throw new OptionError(
        name,
        "PEM text (read the file first)",
        typeof pem === "string" ? pem.slice(0, 40) : pem,
      );
    }
  }
  return { cert: cert as string, key: key as string };
}

/** Throws unless `value` passes `rule` (undefined always passes: the default applies). */
export function checkRule(option: string, rule: Rule, value: unknown): void {
  if (value !== undefined && !rule.ok(value)) throw new OptionError(option, rule.what, value);
}

/** `ServeOptions` after the resolver: the root is real, headers and TLS checked. */
export interface ResolvedServeOptions extends ServeOptions {
  /** The real path of the root. */
  root: string;
  /** The extra headers, checked. */
  headers: Array<[string, string]>;
  /** The TLS pair, when both were given. */
  tls?: { cert: string; key: string };
  /** `listen`, parsed (net). */
  listenAddresses?: ListenAddress[];
}

/** Parses `listen` (net): each entry, or throws naming it. */
function checkListen(listen: unknown): ListenAddress[] | undefined {
  if (listen === undefined) return undefined;
  if (!Array.isArray(listen) || listen.length === 0) {
    throw new OptionError("listen", 'a non-empty array of "HOST:PORT" strings', listen);
  }
  return listen.map((text, i) => {
    const a = typeof text === "string" ? parseListen(text) : "must be a string";
    if (typeof a === "string") throw new RangeError(`listen[${i}] ${a}, got ${show(text)}`);
    return a;
  });
}

/**
 * Checks every field of `serve()`'s options once, with messages naming the
 * field and the value; refuses unknown fields (a typo would otherwise be
 * silently ignored). Defaults are not filled in: they depend on the machine.
 *
 * @param options what the caller passed to `serve()`
 * @returns a copy with the root's real path, checked headers and the TLS pair
 * @throws {Error} when the root is missing, not a directory or unreadable
 * @throws {RangeError} ({@linkcode OptionError}) for any other bad value
 *
 * @example
 * ```ts
 * import { resolveServeOptions } from "./resolve.ts";
 * import assert from "node:assert/strict";
 * assert.throws(
 *   () => resolveServeOptions({ root: ".", headers: [["Content-Length", "9"]] }),
 *   /headers\[0\] cannot set Content-Length/,
 * );
 * ```
 */
export function resolveServeOptions(options: ServeOptions): ResolvedServeOptions {
  if (typeof options !== "object" || options === null) {
    throw new OptionError("options", "an object", options);
  }
  for (const [name, value] of Object.entries(options)) {
    if (!Object.hasOwn(SERVE_RULES, name)) {
      throw new RangeError(`unknown option ${JSON.stringify(name)} (value ${show(value)})`);
    }
    const rule = SERVE_RULES[name as keyof ServeOptions];
    if (rule) checkRule(name, rule, value);
  }
  const hostname = options.hostname?.replace(/^\[(.+)\]$/, "$1");
  const resolved: ResolvedServeOptions = {
    ...options,
    root: checkRoot(options.root),
    headers: checkHeaders(options.headers),
  };
  if (hostname !== undefined) resolved.hostname = hostname;
  if (options.redirects !== undefined) resolved.redirects = checkRedirects(options.redirects);
  if (options.healthPath !== undefined && options.healthPath === options.metricsPath) {
    throw new RangeError(
      `healthPath and metricsPath must differ, got both ${show(options.healthPath)}`,
    );
  }
  const tls = checkTls(options.cert, options.key);
  if (tls) resolved.tls = tls;
  const listen = checkListen(options.listen);
  if (listen) resolved.listenAddresses = listen;
  return resolved;
}

/**
 * The fields of `createHandler()`'s options this resolver checks; any other
 * field passes through untouched.
 */
export type HandlerOptionsLike = Pick<
  HandlerOptions,
  | "root"
  | "dirListing"
  | "dotfiles"
  | "followSymlinks"
  | "cors"
  | "headers"
  | "listingCap"
  | "cacheMaxFileBytes"
  | "cacheMaxBytes"
  | "revalidateMs"
  | "maxArchiveBytes"
  | "compress"
  // site rules (#13)
  | "nosniff"
  | "coopCoep"
  | "notFoundPage"
  | "spa"
  | "cacheControl"
  | "redirects"
  | "rateLimit"
  | "rateLimitTable"
>;

const HANDLER_RULES: { readonly [K in keyof HandlerOptionsLike]-?: Rule | null } = {
  root: null,
  headers: null,
  dirListing: bool,
  dotfiles: bool,
  followSymlinks: bool,
  cors: bool,
  listingCap: int(1, 2 ** 31 - 1, "an integer >= 1"),
  cacheMaxFileBytes: int(0, 2 ** 50, "an integer >= 0"),
  cacheMaxBytes: SERVE_RULES.cacheMaxBytes,
  revalidateMs: SERVE_RULES.revalidateMs,
  maxArchiveBytes: SERVE_RULES.maxArchiveBytes,
  compress: bool,
  // site rules (#13)
  nosniff: bool,
  coopCoep: bool,
  notFoundPage: NOT_FOUND_PAGE,
  spa: SPA,
  cacheControl: CACHE_CONTROL,
  redirects: null,
  rateLimit: RATE_LIMIT,
  rateLimitTable: {
    what: "a SharedArrayBuffer from allocateRateTable",
    ok: (v) => v instanceof SharedArrayBuffer,
  },
};

/**
 * Checks `createHandler()`'s options with the same rules as `serve()`'s
 * (root, reserved headers, numbers); fields it does not know pass through.
 *
 * @param options what the caller passed to `createHandler()`
 * @returns a copy with the root's real path and the headers checked
 * @throws {Error} for a bad root; {@linkcode OptionError} for a bad value
 *
 * @example
 * ```ts
 * import { resolveHandlerOptions } from "./resolve.ts";
 * import assert from "node:assert/strict";
 * assert.throws(
 *   () => resolveHandlerOptions({ root: ".", headers: [["Transfer-Encoding", "chunked"]] }),
 *   /cannot set Transfer-Encoding: the server sets it/,
 * );
 * ```
 */
export function resolveHandlerOptions<T extends HandlerOptionsLike>(options: T): T {
  for (const [name, rule] of Object.entries(HANDLER_RULES)) {
    if (rule) checkRule(name, rule, options[name as keyof HandlerOptionsLike]);
  }
  const out = {
    ...options,
    root: checkRoot(options.root),
    headers: checkHeaders(options.headers),
  };
  if (options.redirects !== undefined) out.redirects = checkRedirects(options.redirects);
  return out;
}
