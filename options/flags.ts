/**
 * The command line's one table: each flag's name, short form, argument,
 * help line, config-file key and rule. `parseCommandLine` reads argv with it,
 * `HELP` is written from it, the config file (`config.ts`) checks its keys
 * against it, and `toServeOptions` turns the settings into `ServeOptions`.
 *
 * Settings are in the user's units (seconds, MiB, file names), the same for a
 * flag and its config key: `--header-timeout 2.5` is `"headerTimeout": 2.5`.
 *
 * @module
 */
import type { ServeOptions } from "./types.ts";
import {
  CACHE_CONTROL,
  CACHE_KINDS,
  headerProblem,
  HOSTNAME,
  METRICS_PATH,
  NOT_FOUND_PAGE,
  OptionError,
  type Rule,
  SPA,
} from "./resolve.ts";
import denoJson from "../deno.json" with { type: "json" };
import { parseListen } from "./listen.ts";
import type { Redirect } from "./redirects.ts";
import { parseRateLimit } from "./rate_limit.ts";

/** The program's version, from deno.json. */
export const VERSION: string = denoJson.version;

/**
 * A path rule of the config file: settings that apply under `path` only
 * (first match per setting; `http/path_rules.ts` says how they combine).
 */
export interface PathRule {
  /** A URL path pattern: `/docs/**` (everything under /docs/), `/a/*.html`, `/exact`. */
  path: string;
  /** Extra response headers for replies under `path`; `null` removes one. */
  headers?: Record<string, string | null>;
  /** `"public"`, `"deny"`, or the users and token names that may read. */
  access?: "public" | "deny" | string[];
  /** Listings (and folder downloads) on or off. */
  list?: boolean;
  /** `Cache-Control` of replies. */
  cacheControl?: string;
  /** Answered exactly like a missing path; never listed. */
  hidden?: boolean;
}

/** Every setting, keyed as in the config file; values in the flags' units. */
export interface Settings {
  /** The directory to serve. */
  root?: string;
  /** `--port`. */
  port?: number;
  /** `--host`. */
  host?: string;
  /** `--workers`. */
  workers?: number;
  /** `--pool`. */
  pool?: number;
  /** `--accept`. */
  accept?: "ring" | "reuseport";
  /** `--max-conns`. */
  maxConns?: number;
  /** `--header-timeout`, seconds. */
  headerTimeout?: number;
  /** `--idle-timeout`, seconds. */
  idleTimeout?: number;
  /** `--write-timeout`, seconds. */
  writeTimeout?: number;
  /** `--grace`, seconds. */
  grace?: number;
  /** `--no-dir-listing` is `false`. */
  dirListing?: boolean;
  /** `--dotfiles`. */
  dotfiles?: boolean;
  /** `--follow-symlinks`. */
  followSymlinks?: boolean;
  /** `--max-archive-mb`, MiB. */
  maxArchiveMb?: number;
  /** `--cache-mb`, MiB. */
  cacheMb?: number;
  /** `--cert`, a file name. */
  cert?: string;
  /** `--key`, a file name. */
  key?: string;
  /** `--cors`. */
  cors?: boolean;
  /** `--dev` (browse, #17). */
  dev?: boolean;
  /** `-H`, one value per name. */
  headers?: Record<string, string>;
  /** `-v`. */
  verbose?: boolean;
  /** `--access-log`, a file name. */
  accessLog?: string;
  /** `--log-format`. */
  logFormat?: "combined" | "common";
  /** `--metrics-path`. */
  metricsPath?: string;
  /** Config file only: per-path rules. */
  rules?: PathRule[];
  // net: listeners and per-connection limits (#13)
  /** `--listen`, repeatable. */
  listen?: string[];
  /** `--unix-mode`, octal text (`"660"`). */
  unixMode?: string;
  /** `--max-conns-per-ip`. */
  maxConnsPerIp?: number;
  /** `--limit-rate`, KiB/s. */
  limitRate?: number;
  /** `--limit-rate-after`, KiB. */
  limitRateAfter?: number;
  // --- site rules (#13) ---
  /** `--no-nosniff` is `false`. */
  nosniff?: boolean;
  /** `--coop-coep`. */
  coopCoep?: boolean;
  /** `--404`, a file name. */
  notFoundPage?: string;
  /** `--spa` is `true`, `--spa=FILE` the file's name under the root. */
  spa?: boolean | string;
  /** `--cache-control` is `true`; `--cache-control=KIND:VALUE` sets one kind. */
  cacheControl?: boolean | { html?: string; hashed?: string; other?: string };
  /** Config file only: redirects. */
  redirects?: Redirect[];
  /** `--health-path`. */
  healthPath?: string;
  /** `--health-log`. */
  healthLog?: boolean;
  /** `--rate-limit`, `N/s` or `N/s:BURST`. */
  rateLimit?: string;
  // write (#14)
  /** `--webdav`. */
  webdav?: boolean;
  /** `--upload`, repeatable: URL-path globs (one string or a list in the config file). */
  upload?: string | string[];
  /** `--max-upload-mb`, MiB. */
  maxUploadMb?: number;
  /** `--durable`. */
  durable?: boolean;
  // --- access (#13) ---
  /** `--auth`, `USER:PASSWORD` values. */
  auth?: string[];
  /** `--auth-file`, an htpasswd file. */
  authFile?: string;
  /** `--token-file`. */
  tokenFile?: string;
  /** `--public` globs. */
  public?: string[];
  /** `--realm`. */
  realm?: string;
}

/** One flag of the table. */
export interface Flag {
  /** Long name, without `--`. */
  name: string;
  /** Short form, one letter without `-`. */
  short?: string;
  /** The argument as help shows it (`<n>`); absent: a switch. */
  arg?: string;
  /** The config-file key it sets; absent for --config, --help and the like. */
  key?: keyof Settings;
  /** What a value must be (the setting's value, in the flag's units). */
  rule?: Rule;
  /** Command-line text to the setting's value (checked with `rule` after). Default: the text. */
  text?: (raw: string) => unknown;
  /** A switch: the value it sets. */
  sets?: boolean;
  /**
   * A switch that may take a value, attached only (`--spa=app.html`; a
   * detached word stays the root): bare, it sets `sets`.
   */
  optional?: boolean;
  /** A file name, relative to where the user stands (or to the config file). */
  isPath?: boolean;
  /** The value `--print-config` shows when unset; absent: derived at start, not shown. */
  fallback?: () => unknown;
  /** The help text; `\n` continues on the next line. */
  help: string;
}

const integer = (raw: string): number => /^\d+$/.test(raw) ? Number(raw) : NaN;
const decimal = (raw: string): number => /^(\d+(\.\d+)?|\.\d+)$/.test(raw) ? Number(raw) : NaN;
const int = (min: number, max: number, what = `an integer ${min}-${max}`): Rule => ({
  what,
  ok: (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max,
});
const seconds = (allowZero: boolean): Rule => ({
  what: `a number of seconds ${allowZero ? ">= 0" : "> 0"} (at most 86400)`,
  ok: (v) =>
    typeof v === "number" && Number.isFinite(v) && Math.round(v * 1000) >= (allowZero ? 0 : 1) &&
    Math.round(v * 1000) <= 86_400_000,
});
const oneOf = (...values: string[]): Rule => ({
  what: values.map((v) => JSON.stringify(v)).join(" or "),
  ok: (v) => values.includes(v as string),
});
const fileName = (what: string): Rule => ({
  what,
  ok: (v) => typeof v === "string" && v !== "",
});
/** Repeatable flags' settings: a list of non-empty strings. */
const STRINGS: Rule = {
  what: "a list of non-empty strings",
  ok: (v) => Array.isArray(v) && v.every((x) => typeof x === "string" && x !== ""),
};
/** The settings that repeatable flags add to, one value per use. */
const REPEATABLE = new Set<keyof Settings>(["auth", "public", "upload"]);
/** Switches: the value they set in the file may be either. */
export const BOOL: Rule = { what: "true or false", ok: (v) => typeof v === "boolean" };
/** `--upload` / `"upload"`: one glob or (config file) a list, each an absolute URL path. */
const UPLOAD_GLOBS: Rule = {
  what: 'a URL-path glob starting with "/" (or a list of them)',
  ok: (v) => (Array.isArray(v) ? v : [v]).every((g) => typeof g === "string" && g.startsWith("/")),
};
const cpus = () => navigator.hardwareConcurrency || 1;
/** `listen` in a config file: a list of addresses (net). */
const LISTEN_LIST: Rule = {
  what: 'a list of "HOST:PORT", "[IPv6]:PORT" or "unix:/path" strings',
  ok: (v) =>
    Array.isArray(v) && v.length > 0 &&
    v.every((a) => typeof a === "string" && typeof parseListen(a) !== "string"),
};

/** A `-H "Name: value"` argument, or throws naming it. */
export function headerText(raw: string): [string, string] {
  const colon = raw.indexOf(":");
  if (colon <= 0) throw new UsageError(`--header must be "Name: value", got ${q(raw)}`);
  const name = raw.slice(0, colon);
  const value = raw.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
  const problem = headerProblem(name, value);
  if (problem !== undefined) throw new UsageError(`--header ${problem}, got ${q(raw)}`);
  return [name, value];
}

/** The table. Order is the order of `--help`. */
export const FLAGS: readonly Flag[] = [
  {
    name: "port",
    short: "p",
    arg: "<n>",
    key: "port",
    rule: int(0, 65535, "0-65535 (0 picks a free port)"),
    text: integer,
    fallback: () => 8000,
    help: "Port to listen on, 0 picks a free one (default: 8000)",
  },
  {
    name: "host",
    arg: "<addr>",
    key: "host",
    rule: HOSTNAME,
    fallback: () => "0.0.0.0",
    help: "Address to bind (default: 0.0.0.0, every interface:\nthe folder is then on the network)",
  },
  {
    name: "workers",
    arg: "<n>",
    key: "workers",
    rule: int(1, 1024),
    text: integer,
    fallback: cpus,
    help: "HTTP worker threads (default: number of CPUs)",
  },
  {
    name: "pool",
    arg: "<n>",
    key: "pool",
    rule: int(0, 64),
    text: integer,
    fallback: () => Math.max(1, Math.floor(cpus() / 2)),
    help:
      "Job threads that render listings and compress\ntext files, off the HTTP workers; 0 does that\n" +
      "work inline (default: half the CPUs, at least 1)",
  },
  {
    name: "accept",
    arg: "<mode>",
    key: "accept",
    rule: oneOf("ring", "reuseport"),
    help:
      "How connections reach workers: ring (an acceptor\nthread hands each one to the least-loaded worker)\n" +
      "or reuseport (each worker accepts; Linux spreads\nby hash) (default: chosen by the server)",
  },
  {
    name: "max-conns",
    arg: "<n>",
    key: "maxConns",
    rule: int(1, 10_000_000, "an integer >= 1"),
    text: integer,
    help:
      "Open connections at most; near it each new one\ncloses an idle or slow one (idle first, never one\nmid-response) (default: from RLIMIT_NOFILE)",
  },
  {
    name: "header-timeout",
    arg: "<s>",
    key: "headerTimeout",
    rule: seconds(false),
    text: decimal,
    fallback: () => 10,
    help: "Seconds to receive a request's headers (default: 10)",
  },
  {
    name: "idle-timeout",
    arg: "<s>",
    key: "idleTimeout",
    rule: seconds(false),
    text: decimal,
    fallback: () => 15,
    help: "Seconds a keep-alive connection may idle (default: 15)",
  },
  {
    name: "write-timeout",
    arg: "<s>",
    key: "writeTimeout",
    rule: seconds(false),
    text: decimal,
    fallback: () => 30,
    help: "Seconds a stalled response write may wait (default: 30)",
  },
  {
    name: "grace",
    arg: "<s>",
    key: "grace",
    rule: seconds(true),
    text: decimal,
    fallback: () => 10,
    help:
      "Seconds in-flight requests get on Ctrl-C/SIGTERM\n(default: 10); a second one, a second later, exits at once",
  },
  {
    name: "no-dir-listing",
    key: "dirListing",
    sets: false,
    fallback: () => true,
    help: "Answer 404 instead of listing a directory",
  },
  {
    name: "dotfiles",
    key: "dotfiles",
    sets: true,
    fallback: () => false,
    help: 'Serve and list names starting with "."',
  },
  {
    name: "follow-symlinks",
    key: "followSymlinks",
    sets: true,
    fallback: () => false,
    help: "Follow symlinks that point outside the root",
  },
  {
    name: "max-archive-mb",
    arg: "<n>",
    key: "maxArchiveMb",
    rule: int(0, 16_777_216, "an integer >= 0 (MiB)"),
    text: integer,
    help:
      "Largest folder download (?download=zip|tar|tar.gz)\nin MiB; larger folders get 403, 0 turns downloads off\n" +
      "(default: unlimited)",
  },
  {
    name: "cache-mb",
    arg: "<n>",
    key: "cacheMb",
    rule: int(0, 1_048_576, "an integer 0-1048576 (MiB)"),
    text: integer,
    fallback: () => 64,
    help: "Each worker's cache of small files and listings,\nin MiB; 0 turns it off (default: 64)",
  },
  {
    name: "cert",
    arg: "<file>",
    key: "cert",
    rule: fileName("a file name"),
    isPath: true,
    help:
      "Serve HTTPS with this PEM certificate chain (needs\n--key); HTTP/2 or HTTP/1.1 chosen by ALPN",
  },
  {
    name: "key",
    arg: "<file>",
    key: "key",
    rule: fileName("a file name"),
    isPath: true,
    help: "The PEM private key of --cert",
  },
  {
    name: "cors",
    key: "cors",
    sets: true,
    fallback: () => false,
    help: "Add Access-Control-Allow-Origin: *",
  },
  // browse (#17): development mode
  {
    name: "dev",
    key: "dev",
    sets: true,
    fallback: () => false,
    help: "Development mode: Cache-Control: no-cache, CORS on, and HTML pages reload " +
      "(or swap a changed stylesheet) when a file under the root changes",
  },
  {
    name: "header",
    short: "H",
    arg: "<h>",
    key: "headers",
    fallback: () => ({}),
    help: 'Add "Name: value" to every response (repeatable)',
  },
  {
    name: "verbose",
    short: "v",
    key: "verbose",
    sets: true,
    fallback: () => false,
    help: "Access log: one line per response to stdout",
  },
  {
    name: "access-log",
    arg: "<file>",
    key: "accessLog",
    rule: fileName("needs a file name"),
    isPath: true,
    help: "Access log to <file> (appended) instead; implies -v",
  },
  {
    name: "log-format",
    arg: "<f>",
    key: "logFormat",
    rule: oneOf("combined", "common"),
    fallback: () => "combined",
    help: "combined (default) or common",
  },
  {
    name: "metrics-path",
    arg: "<path>",
    key: "metricsPath",
    rule: METRICS_PATH,
    help: "Serve Prometheus metrics at <path>, e.g.\n/.ringhttpd/metrics (default: off)",
  },
  // ---- net: listeners and per-connection limits (#13) ----
  {
    name: "listen",
    arg: "<addr>",
    key: "listen",
    rule: LISTEN_LIST,
    help:
      "Listen on HOST:PORT, [IPv6]:PORT or unix:/path\n(repeatable; replaces --host/-p; several or unix\n" +
      "need ring mode). Under systemd socket activation\n(LISTEN_FDS) the inherited sockets are used",
  },
  {
    name: "unix-mode",
    arg: "<octal>",
    key: "unixMode",
    rule: { what: "octal permission bits, e.g. 660", ok: (v) => /^0?[0-7]{3}$/.test(String(v)) },
    fallback: () => "660",
    help:
      "Permission bits of unix: socket files (default:\n660, the owner and the group may connect)",
  },
  {
    name: "max-conns-per-ip",
    arg: "<n>",
    key: "maxConnsPerIp",
    rule: int(0, 10_000_000, "an integer >= 0 (0: no limit)"),
    text: integer,
    fallback: () => 0,
    help:
      "Connections open at once per client address,\nacross workers; more are closed at accept\n" +
      "(default: 0, no limit; not with HTTPS yet)",
  },
  {
    name: "limit-rate",
    arg: "<KB/s>",
    key: "limitRate",
    rule: {
      what: "a number of KiB per second >= 0 (0: off)",
      ok: (v) => typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 2 ** 30,
    },
    text: decimal,
    fallback: () => 0,
    help:
      "Download speed per response in KiB/s, like\nnginx's limit_rate (default: 0, unlimited;\n" +
      "not with HTTPS yet)",
  },
  {
    name: "limit-rate-after",
    arg: "<KB>",
    key: "limitRateAfter",
    rule: {
      what: "a number of KiB >= 0",
      ok: (v) => typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= 2 ** 40,
    },
    text: decimal,
    fallback: () => 0,
    help: "KiB of each response at full speed before\n--limit-rate applies (default: 0)",
  },
  // --- site rules (#13) ---
  {
    name: "no-nosniff",
    key: "nosniff",
    sets: false,
    fallback: () => true,
    help: "Do not send X-Content-Type-Options: nosniff\n(sent by default)",
  },
  {
    name: "coop-coep",
    key: "coopCoep",
    sets: true,
    fallback: () => false,
    help:
      "Cross-origin isolation: send COOP same-origin and\nCOEP require-corp (for SharedArrayBuffer pages)",
  },
  {
    name: "404",
    arg: "<file>",
    key: "notFoundPage",
    rule: NOT_FOUND_PAGE,
    isPath: true,
    help: "Body of every 404: this file (read at start; it\nmay be outside the root)",
  },
  {
    name: "spa",
    arg: "[=<file>]",
    optional: true,
    key: "spa",
    sets: true,
    rule: SPA,
    fallback: () => false,
    help:
      "Single-page app: page navigations that find no\nfile get <file> of the root with 200 (default:\n" +
      "index.html); missing assets still get 404",
  },
  {
    name: "cache-control",
    arg: "[=<kind>:<v>]",
    optional: true,
    key: "cacheControl",
    sets: true,
    rule: CACHE_CONTROL,
    fallback: () => false,
    help:
      "Cache-Control by kind: html no-cache, hashed names\n(app.3f9a1c2b.js) a year immutable, other 5 min;\n" +
      "=html:VALUE (or hashed:, other:; VALUE none: no\nheader) overrides one kind, repeatable",
  },
  {
    name: "health-path",
    arg: "<path>",
    key: "healthPath",
    rule: METRICS_PATH,
    help:
      "Serve a JSON health status (live workers and pool)\nat <path>, e.g. /healthz; not logged (default: off)",
  },
  {
    name: "health-log",
    key: "healthLog",
    sets: true,
    fallback: () => false,
    help: "Access-log the health path's requests too",
  },
  {
    name: "rate-limit",
    arg: "<N/s[:B]>",
    key: "rateLimit",
    rule: {
      what: 'N/s or N/s:BURST (e.g. "100/s:200"; rate at most 1000000/s, burst 1-1000000, ' +
        "burst / rate at most 1000 s)",
      ok: (v) => typeof v === "string" && parseRateLimit(v) !== undefined,
    },
    help:
      "Requests per second per client address, across\nall workers, with bursts up to B (default: N);\n" +
      "past it 429 + Retry-After (default: no limit)",
  },
  // write (#14): WebDAV and uploads.
  {
    name: "webdav",
    key: "webdav",
    sets: true,
    fallback: () => false,
    help: "WebDAV read side: PROPFIND, OPTIONS DAV: 1\n(on with --upload)",
  },
  {
    name: "upload",
    arg: "<glob>",
    key: "upload",
    rule: UPLOAD_GLOBS,
    help:
      "Authenticated users and tokens may write\n(PUT, DELETE, MKCOL, COPY, MOVE) under URL\npaths matching <glob>, e.g. '/cache/**' (repeatable)",
  },
  {
    name: "max-upload-mb",
    arg: "<n>",
    key: "maxUploadMb",
    text: decimal,
    rule: {
      what: "a number of MiB > 0",
      ok: (v) => typeof v === "number" && Number.isFinite(v) && v > 0,
    },
    help: "Largest upload, MiB (default: no limit)",
  },
  {
    name: "durable",
    key: "durable",
    sets: true,
    fallback: () => false,
    help: "Also fsync the directory after each upload's rename",
  },
  // --- access (#13): authentication ---
  {
    name: "auth",
    arg: "<user:pw>",
    key: "auth",
    rule: STRINGS,
    help:
      "Require HTTP Basic credentials; this user may log in\n(repeatable; hashed at start: prefer --auth-file)",
  },
  {
    name: "auth-file",
    arg: "<file>",
    key: "authFile",
    rule: fileName("a file name"),
    isPath: true,
    help: "Users from an htpasswd file (htpasswd -B or -m);\nre-read on SIGHUP",
  },
  {
    name: "token-file",
    arg: "<file>",
    key: "tokenFile",
    rule: fileName("a file name"),
    isPath: true,
    help:
      "Bearer tokens, NAME:SHA256HEX lines (deno run\nauth/tokens.ts NAME makes one); re-read on SIGHUP",
  },
  {
    name: "public",
    arg: "<glob>",
    key: "public",
    rule: STRINGS,
    help: "With credentials on, this URL path glob needs none,\ne.g. '/assets/**' (repeatable)",
  },
  {
    name: "realm",
    arg: "<text>",
    key: "realm",
    rule: {
      what: "text without control characters",
      // deno-lint-ignore no-control-regex
      ok: (v) => typeof v === "string" && !/[\x00-\x1f\x7f]/.test(v),
    },
    help: 'The login prompt\'s realm (default: "ringhttpd")',
  },
  {
    name: "config",
    arg: "<file>",
    help:
      'Read settings from a JSONC file (flags given here\nwin over it); see README "Config file"',
  },
  {
    name: "print-config",
    help: "Print the effective settings as JSON and exit",
  },
  { name: "help", short: "h", help: "Show this help and exit" },
  { name: "version", short: "V", help: "Show the version and exit" },
];

const BY_NAME = new Map(FLAGS.map((f) => [f.name, f]));
const BY_SHORT = new Map(FLAGS.filter((f) => f.short).map((f) => [f.short!, f]));
/** The flag of each config key. */
export const BY_KEY: ReadonlyMap<string, Flag> = new Map(
  FLAGS.filter((f) => f.key).map((f) => [f.key!, f]),
);

/** The one-line usage shown after a usage error. */
export const USAGE = "Usage: ringhttpd [root] [options]   (ringhttpd --help for the options)";

function helpLines(): string {
  const out: string[] = [];
  for (const f of FLAGS) {
    const left = `  ${f.short ? `-${f.short}, ` : "    "}--${f.name}${
      f.arg ? `${f.optional ? "" : " "}${f.arg}` : ""
    }`;
    const [first, ...rest] = f.help.split("\n");
    out.push(left.padEnd(Math.max(28, left.length + 1)) + first);
    for (const line of rest) out.push(" ".repeat(28) + line);
  }
  return out.join("\n");
}

/** The full `--help` text, written from {@linkcode FLAGS}. */
export const HELP = `ringhttpd ${VERSION}: a multi-core static file server with directory listing.

Usage: ringhttpd [root] [options]

  root                      Directory to serve (default: ., where you run it)

Options:
${helpLines()}

Signals: Ctrl-C (SIGINT) or SIGTERM shuts down gracefully; SIGUSR2 prints one
"ringhttpd stats {json}" line to stderr.`;

/** A command-line mistake: `main` prints it with the usage line and exits 2. */
export class UsageError extends Error {
  /** @param message what was wrong, with the offending value */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const q = (s: string): string => JSON.stringify(s);

/** What the command line asked for. */
export type CommandLine =
  | { help: true }
  | { version: true }
  | { settings: Settings; config?: string; printConfig: boolean };

/** Sets header `name` in `headers`, replacing one of the same name in any case. */
export function setHeader(headers: Record<string, string>, name: string, value: string): void {
  for (const k of Object.keys(headers)) {
    if (k.toLowerCase() === name.toLowerCase()) delete headers[k];
  }
  headers[name] = value;
}

/**
 * Reads ringhttpd's command line with the flag table. Pure.
 *
 * @param args the arguments after the program name
 * @returns the settings given (only those), `--config` and `--print-config`;
 *   or `{ help: true }` / `{ version: true }` when `-h` / `-V` appear before `--`
 * @throws {UsageError} naming the flag and quoting the value
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./flags.ts";
 * const r = parseCommandLine(["site", "-p", "8080", "--config", "r.jsonc"]);
 * if ("settings" in r) console.assert(r.settings.port === 8080 && r.config === "r.jsonc");
 * ```
 */
export function parseCommandLine(args: string[]): CommandLine {
  const end = args.indexOf("--");
  const flags = end === -1 ? args : args.slice(0, end);
  if (flags.some((a) => a === "-h" || a === "--help")) return { help: true };
  if (flags.some((a) => a === "-V" || a === "--version")) return { version: true };

  const settings: Settings = {};
  const out = { settings, printConfig: false } as {
    settings: Settings;
    config?: string;
    printConfig: boolean;
  };
  const roots: string[] = [];
  const set = (flag: Flag, raw: string): void => {
    if (flag.name === "config") {
      if (raw === "") throw new UsageError(`--config needs a file name, got ""`);
      out.config = raw;
      return;
    }
    if (flag.key === "listen") {
      const a = parseListen(raw);
      if (typeof a === "string") throw new UsageError(`--listen ${a}, got ${q(raw)}`);
      (settings.listen ??= []).push(raw);
      return;
    }
    if (flag.key === "headers") {
      const [name, value] = headerText(raw);
      setHeader(settings.headers ??= {}, name, value);
      return;
    }
    if (flag.key === "cacheControl") {
      // site rules (#13): KIND:VALUE, repeatable; kinds not named keep their default.
      const colon = raw.indexOf(":");
      const kind = raw.slice(0, colon);
      const value = raw.slice(colon + 1).trim();
      if (colon < 0 || !CACHE_KINDS.includes(kind) || !CACHE_CONTROL.ok({ [kind]: value })) {
        throw new UsageError(
          `--cache-control must be html:VALUE, hashed:VALUE or other:VALUE (VALUE visible ` +
            `ASCII, or none), got ${q(raw)}`,
        );
      }
      const was = settings.cacheControl;
      settings.cacheControl = { ...(typeof was === "object" ? was : {}), [kind]: value };
      return;
    }
    if (flag.key !== undefined && REPEATABLE.has(flag.key)) {
      if (raw === "") throw new UsageError(`--${flag.name} needs a value, got ""`);
      const list = (settings as Record<string, unknown>)[flag.key] as string[] | undefined;
      (settings as Record<string, unknown>)[flag.key] = [...(list ?? []), raw];
      return;
    }
    const value = flag.text ? flag.text(raw) : raw;
    if (flag.rule && !flag.rule.ok(value)) {
      throw new UsageError(
        new OptionError(`--${flag.name}`, flag.rule.what, value, q(raw)).message,
      );
    }
    (settings as Record<string, unknown>)[flag.key!] = value;
  };
  const toggle = (flag: Flag): void => {
    if (flag.name === "print-config") out.printConfig = true;
    // `--cache-control` after `--cache-control=KIND:VALUE`: already on.
    else if (flag.key === "cacheControl" && typeof settings.cacheControl === "object") return;
    else (settings as Record<string, unknown>)[flag.key!] = flag.sets;
  };
  // A value may itself start with "-" only when attached (`--host=-x`); a
  // detached one that looks like a flag means the value was forgotten.
  const takeValue = (flag: Flag, i: number): string => {
    const next = flags[i];
    if (next === undefined || (next.startsWith("-") && next !== "-")) {
      throw new UsageError(
        next === undefined
          ? `--${flag.name} needs a value`
          : `--${flag.name} needs a value, got ${q(next)}`,
      );
    }
    return next;
  };

  for (let i = 0; i < flags.length; i++) {
    const arg = flags[i];
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const flag = BY_NAME.get(eq === -1 ? arg.slice(2) : arg.slice(2, eq));
      if (flag === undefined) {
        throw new UsageError(`unknown flag ${q(eq === -1 ? arg : arg.slice(0, eq))}`);
      }
      if (flag.optional) {
        if (eq === -1) toggle(flag);
        else set(flag, arg.slice(eq + 1));
      } else if (flag.arg) {
        set(flag, eq === -1 ? takeValue(flag, ++i) : arg.slice(eq + 1));
      } else {
        if (eq !== -1) throw new UsageError(`--${flag.name} takes no value, got ${q(arg)}`);
        toggle(flag);
      }
    } else if (arg.startsWith("-") && arg !== "-") {
      // Short flags: switches may be grouped (-vH ...); a value flag takes the
      // rest of the argument (-p8000, -p=8000) or the next one (-p 8000).
      for (let j = 1; j < arg.length; j++) {
        const flag = BY_SHORT.get(arg[j]);
        if (flag === undefined) throw new UsageError(`unknown flag ${q("-" + arg[j])}`);
        if (flag.arg) {
          const rest = arg.slice(j + 1).replace(/^=/, "");
          set(flag, rest !== "" ? rest : takeValue(flag, ++i));
          break;
        }
        toggle(flag);
      }
    } else {
      roots.push(arg);
    }
  }
  if (end !== -1) roots.push(...args.slice(end + 1));
  if (roots.length > 1) {
    throw new UsageError(`expected one root directory, got ${roots.map(q).join(", ")}`);
  }
  if (roots.length === 1) {
    if (roots[0] === "") throw new UsageError(`root directory must not be empty, got ""`);
    settings.root = roots[0];
  }
  return out;
}

/**
 * Settings from the command line over those of the config file: a flag wins
 * over its key; `-H` headers replace the file's of the same name, others add.
 *
 * @param file the config file's settings
 * @param cli the command line's settings
 * @returns the merged settings
 *
 * @example
 * ```ts
 * import { mergeSettings } from "./flags.ts";
 * const s = mergeSettings({ port: 1, headers: { "X-A": "1" } }, { port: 2, headers: { "x-a": "2" } });
 * console.assert(s.port === 2 && s.headers!["x-a"] === "2" && !("X-A" in s.headers!));
 * ```
 */
export function mergeSettings(file: Settings, cli: Settings): Settings {
  const merged: Settings = { ...file, ...cli };
  if (file.headers && cli.headers) {
    const headers = { ...file.headers };
    for (const [k, v] of Object.entries(cli.headers)) setHeader(headers, k, v);
    merged.headers = headers;
  }
  return merged;
}

/**
 * The settings with every default that is fixed filled in: what
 * `--print-config` prints (a valid config file itself). Values the server
 * derives at start (max-conns, an unlimited archive size) stay out.
 *
 * @param settings the merged settings
 * @returns a new object in {@linkcode FLAGS} order, `root` first and `rules` last
 *
 * @example
 * ```ts
 * import { effectiveSettings } from "./flags.ts";
 * console.assert(effectiveSettings({ port: 1 }).host === "0.0.0.0");
 * ```
 */
export function effectiveSettings(settings: Settings): Settings {
  const out: Record<string, unknown> = { root: settings.root ?? "." };
  for (const f of FLAGS) {
    if (!f.key) continue;
    const v = settings[f.key] ?? f.fallback?.();
    if (v !== undefined) out[f.key] = v;
  }
  out.rules = settings.rules ?? [];
  if (settings.redirects !== undefined) out.redirects = settings.redirects;
  // Passwords are not printed: the output may land in a shared terminal or file.
  if (Array.isArray(out.auth)) {
    out.auth = (out.auth as string[]).map((v) =>
      v.slice(0, Math.max(0, v.indexOf(":"))) + ":<hidden>"
    );
  }
  return out as Settings;
}

/**
 * Settings (flag units) to `serve()`'s options (milliseconds, bytes).
 *
 * @param settings checked settings
 * @returns the options, and the TLS file names when `cert` and `key` are set
 * @throws {UsageError} when only one of `cert` and `key` is set
 *
 * @example
 * ```ts
 * import { toServeOptions } from "./flags.ts";
 * console.assert(toServeOptions({ grace: 1.5 }).options.graceMs === 1500);
 * ```
 */
export function toServeOptions(
  settings: Settings,
): { options: ServeOptions; tlsFiles?: { cert: string; key: string } } {
  const o: ServeOptions = { root: settings.root ?? "." };
  const s = settings;
  const MiB = 1024 * 1024;
  if (s.port !== undefined) o.port = s.port;
  if (s.host !== undefined) o.hostname = s.host.replace(/^\[(.+)\]$/, "$1");
  if (s.workers !== undefined) o.workers = s.workers;
  if (s.pool !== undefined) o.pool = s.pool;
  if (s.accept !== undefined) o.accept = s.accept;
  if (s.maxConns !== undefined) o.maxConns = s.maxConns;
  if (s.headerTimeout !== undefined) o.headerTimeoutMs = Math.round(s.headerTimeout * 1000);
  if (s.idleTimeout !== undefined) o.idleTimeoutMs = Math.round(s.idleTimeout * 1000);
  if (s.writeTimeout !== undefined) o.writeTimeoutMs = Math.round(s.writeTimeout * 1000);
  if (s.grace !== undefined) o.graceMs = Math.round(s.grace * 1000);
  if (s.dirListing !== undefined) o.dirListing = s.dirListing;
  if (s.dotfiles !== undefined) o.dotfiles = s.dotfiles;
  if (s.followSymlinks !== undefined) o.followSymlinks = s.followSymlinks;
  if (s.maxArchiveMb !== undefined) o.maxArchiveBytes = s.maxArchiveMb * MiB;
  if (s.cacheMb !== undefined) o.cacheMaxBytes = s.cacheMb * MiB;
  if (s.cors !== undefined) o.cors = s.cors;
  if (s.dev !== undefined) o.dev = s.dev; // browse (#17)
  if (s.headers !== undefined) o.headers = Object.entries(s.headers);
  if (s.verbose !== undefined) o.verbose = s.verbose;
  if (s.accessLog !== undefined) o.accessLog = s.accessLog;
  if (s.logFormat !== undefined) o.logFormat = s.logFormat;
  if (s.metricsPath !== undefined) o.metricsPath = s.metricsPath;
  if (s.listen !== undefined) o.listen = s.listen;
  if (s.unixMode !== undefined) o.unixMode = parseInt(s.unixMode, 8);
  if (s.maxConnsPerIp !== undefined && s.maxConnsPerIp > 0) o.maxConnsPerIp = s.maxConnsPerIp;
  if (s.limitRate !== undefined && s.limitRate > 0) o.limitRate = Math.round(s.limitRate * 1024);
  if (s.limitRateAfter !== undefined && s.limitRateAfter > 0) {
    o.limitRateAfter = Math.round(s.limitRateAfter * 1024);
  }
  // site rules (#13)
  if (s.nosniff !== undefined) o.nosniff = s.nosniff;
  if (s.coopCoep !== undefined) o.coopCoep = s.coopCoep;
  if (s.notFoundPage !== undefined) o.notFoundPage = s.notFoundPage;
  if (s.spa !== undefined) o.spa = s.spa;
  if (s.cacheControl !== undefined) o.cacheControl = s.cacheControl;
  if (s.redirects !== undefined) o.redirects = s.redirects;
  if (s.healthPath !== undefined) o.healthPath = s.healthPath;
  if (s.healthLog !== undefined) o.healthLog = s.healthLog;
  if (s.rateLimit !== undefined) o.rateLimit = parseRateLimit(s.rateLimit);
  if (s.healthPath !== undefined && s.healthPath === s.metricsPath) {
    throw new UsageError(
      `--health-path and --metrics-path must differ, got both ${q(s.healthPath)}`,
    );
  }
  // write (#14)
  if (s.webdav !== undefined) o.webdav = s.webdav;
  if (s.upload !== undefined) o.upload = Array.isArray(s.upload) ? [...s.upload] : [s.upload];
  if (s.maxUploadMb !== undefined) o.maxUploadBytes = Math.floor(s.maxUploadMb * MiB);
  if (s.durable !== undefined) o.durable = s.durable;
  // access (#13)
  if (s.rules !== undefined && s.rules.length > 0) o.pathRules = s.rules;
  if (s.auth !== undefined || s.authFile !== undefined || s.tokenFile !== undefined) {
    o.auth = {};
    if (s.auth !== undefined) o.auth.users = s.auth;
    if (s.authFile !== undefined) o.auth.authFile = s.authFile;
    if (s.tokenFile !== undefined) o.auth.tokenFile = s.tokenFile;
    if (s.realm !== undefined) o.auth.realm = s.realm;
    if (s.public !== undefined) o.auth.public = s.public;
  } else if (s.public !== undefined) {
    throw new UsageError("--public needs --auth, --auth-file or --token-file");
  }
  if ((s.cert === undefined) !== (s.key === undefined)) {
    throw new UsageError(
      s.cert === undefined ? "--key needs --cert too" : "--cert needs --key too",
    );
  }
  if (s.cert !== undefined && s.key !== undefined) {
    return { options: o, tlsFiles: { cert: s.cert, key: s.key } };
  }
  return { options: o };
}
