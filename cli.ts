/**
 * The `ringhttpd` command line: `parseArgs` turns argv into `ServeOptions`
 * (pure, no I/O), `main` checks the root directory and the port, starts the
 * cluster, prints the Listening line and waits for SIGINT/SIGTERM.
 *
 * Flags follow `@std/http/file-server`: `ringhttpd [root] [options]`, both
 * `--flag=value` and `--flag value`, `-p 8000` / `-p8000` / `-p=8000`.
 *
 * @module
 */

import type { Cluster, ServeOptions } from "./mod.ts";
import denoJson from "./deno.json" with { type: "json" };

/** The program's version, from deno.json. */
export const VERSION: string = denoJson.version;

/** The one-line usage shown after a usage error. */
export const USAGE = "Usage: ringhttpd [root] [options]   (ringhttpd --help for the options)";

/** The full `--help` text. */
export const HELP = `ringhttpd ${VERSION}: a multi-core static file server with directory listing.

Usage: ringhttpd [root] [options]

  root                      Directory to serve (default: .)

Options:
  -p, --port <n>            Port to listen on, 0 picks a free one (default: 8000)
      --host <addr>         Address to bind (default: 0.0.0.0)
      --workers <n>         HTTP worker threads (default: number of CPUs)
      --pool <n>            Job threads that render listings and compress
                            text files, off the HTTP workers; 0 does that
                            work inline (default: half the CPUs, at least 1)
      --accept <mode>       How connections reach workers: ring (an acceptor
                            thread hands each one to the least-loaded worker)
                            or reuseport (each worker accepts; Linux spreads
                            by hash) (default: chosen by the server)
      --max-conns <n>       Open connections at most; beyond it new ones wait
                            in the kernel backlog (default: from RLIMIT_NOFILE)
      --header-timeout <s>  Seconds to receive a request's headers (default: 10)
      --idle-timeout <s>    Seconds a keep-alive connection may idle (default: 15)
      --write-timeout <s>   Seconds a stalled response write may wait (default: 30)
      --grace <s>           Seconds in-flight requests get on SIGINT/SIGTERM
                            (default: 10); a second signal exits at once
      --no-dir-listing      Answer 404 instead of listing a directory
      --dotfiles            Serve and list names starting with "."
      --follow-symlinks     Follow symlinks that point outside the root
      --max-archive-mb <n>  Largest folder download (?download=tar) in MiB;
                            larger folders get 403, 0 turns downloads off
                            (default: unlimited)
      --cache-mb <n>        Each worker's cache of small files and listings,
                            in MiB; 0 turns it off (default: 64)
      --cert <file>         Serve HTTPS with this PEM certificate chain (needs
                            --key); HTTP/2 or HTTP/1.1 chosen by ALPN
      --key <file>          The PEM private key of --cert
      --cors                Add Access-Control-Allow-Origin: *
  -H, --header <h>          Add "Name: value" to every response (repeatable)
  -v, --verbose             Access log: one line per response to stdout
      --access-log <file>   Access log to <file> (appended) instead; implies -v
      --log-format <f>      combined (default) or common
      --metrics-path <path> Serve Prometheus metrics at <path>, e.g.
                            /.ringhttpd/metrics (default: off)
  -h, --help                Show this help and exit
  -V, --version             Show the version and exit

Signals: SIGINT/SIGTERM shut down gracefully; SIGUSR2 prints one
"ringhttpd stats {json}" line to stderr.`;

/** A command-line mistake: `main` prints it with the usage line and exits 2. */
export class UsageError extends Error {
  /** @param message what was wrong, with the offending value */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** What `parseArgs` found: options to serve with, or a request for help / the version. */
export type ParsedArgs =
  | { options: ServeOptions; tlsFiles?: { cert: string; key: string } }
  | { help: true }
  | { version: true };

type ValueFlag =
  | "port"
  | "host"
  | "workers"
  | "pool"
  | "accept"
  | "max-conns"
  | "header-timeout"
  | "idle-timeout"
  | "write-timeout"
  | "grace"
  | "max-archive-mb"
  | "cache-mb"
  | "cert"
  | "key"
  | "access-log"
  | "log-format"
  | "metrics-path"
  | "header";
type BoolFlag =
  | "no-dir-listing"
  | "dotfiles"
  | "follow-symlinks"
  | "cors"
  | "verbose"
  | "help"
  | "version";

const VALUE_FLAGS: ReadonlySet<string> = new Set<ValueFlag>([
  "port",
  "host",
  "workers",
  "pool",
  "accept",
  "max-conns",
  "header-timeout",
  "idle-timeout",
  "write-timeout",
  "grace",
  "max-archive-mb",
  "cache-mb",
  "cert",
  "key",
  "access-log",
  "log-format",
  "metrics-path",
  "header",
]);
const BOOL_FLAGS: ReadonlySet<string> = new Set<BoolFlag>([
  "no-dir-listing",
  "dotfiles",
  "follow-symlinks",
  "cors",
  "verbose",
  "help",
  "version",
]);
const SHORT: Readonly<Record<string, ValueFlag | BoolFlag>> = {
  p: "port",
  H: "header",
  v: "verbose",
  h: "help",
  V: "version",
};

/** Headers the server itself owns: setting them with -H would break framing or keep-alive. */
const RESERVED_HEADERS = new Set(["content-length", "transfer-encoding", "connection", "date"]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII, space and tab: no CR/LF (response splitting), no NUL, no bytes
// whose encoding on the wire would depend on the engine.
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;

const q = (s: string): string => JSON.stringify(s);

function parseInteger(flag: string, raw: string, min: number, max: number, what: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new UsageError(`--${flag} must be ${what}, got ${q(raw)}`);
  }
  return Number(raw);
}

/** Seconds (decimals allowed) to whole milliseconds. */
function parseSeconds(flag: string, raw: string, allowZero: boolean): number {
  const what = allowZero ? "a number of seconds >= 0" : "a number of seconds > 0";
  if (!/^\d+(\.\d+)?$/.test(raw) && !/^\.\d+$/.test(raw)) {
    throw new UsageError(`--${flag} must be ${what}, got ${q(raw)}`);
  }
  const ms = Math.round(Number(raw) * 1000);
  if ((!allowZero && ms < 1) || ms > 86_400_000) {
    throw new UsageError(`--${flag} must be ${what} (at most 86400), got ${q(raw)}`);
  }
  return ms;
}

function parseHost(raw: string): string {
  // "[::1]" is how people write IPv6 in URLs; the listener wants the bare address.
  const host = /^\[.*\]$/.test(raw) ? raw.slice(1, -1) : raw;
  if (host === "" || /[\s/\\@#?]/.test(host)) {
    throw new UsageError(`--host must be a hostname or IP address, got ${q(raw)}`);
  }
  return host;
}

function parseHeader(raw: string): [string, string] {
  const colon = raw.indexOf(":");
  if (colon <= 0) {
    throw new UsageError(`--header must be "Name: value", got ${q(raw)}`);
  }
  const name = raw.slice(0, colon);
  const value = raw.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
  if (!TOKEN.test(name)) {
    throw new UsageError(`--header name must be an HTTP token (no spaces), got ${q(name)}`);
  }
  if (RESERVED_HEADERS.has(name.toLowerCase())) {
    throw new UsageError(`--header cannot set ${name}: the server sets it, got ${q(raw)}`);
  }
  if (!FIELD_VALUE.test(value)) {
    throw new UsageError(
      `--header value must be visible ASCII without control characters, got ${q(raw)}`,
    );
  }
  return [name, value];
}

/**
 * Parses ringhttpd's command line. Pure: no I/O, no defaults filled in beyond
 * `root` (".") so the server's own defaults apply.
 *
 * @param args the arguments after the program name, e.g. `Deno.args`
 * @returns `{ options }` to serve with, or `{ help: true }` / `{ version: true }`
 *   when `-h` / `-V` appear anywhere before `--` (they win over other mistakes)
 * @throws {UsageError} on an unknown flag, a missing or malformed value, or a
 *   second root; the message names the flag and quotes the value
 *
 * @example Parse a typical command line
 * ```ts
 * import { parseArgs } from "./cli.ts";
 * const parsed = parseArgs(["./public", "-p", "8080", "--cors"]);
 * if ("options" in parsed) console.log(parsed.options.port); // 8080
 * ```
 */
export function parseArgs(args: string[]): ParsedArgs {
  const end = args.indexOf("--");
  const flags = end === -1 ? args : args.slice(0, end);
  if (flags.some((a) => a === "-h" || a === "--help")) return { help: true };
  if (flags.some((a) => a === "-V" || a === "--version")) return { version: true };

  const options: ServeOptions = { root: "." };
  const tlsFiles: { cert?: string; key?: string } = {};
  const roots: string[] = [];
  const set = (flag: string, raw: string): void => {
    switch (flag as ValueFlag) {
      case "port":
        options.port = parseInteger(flag, raw, 0, 65535, "0-65535 (0 picks a free port)");
        return;
      case "host":
        options.hostname = parseHost(raw);
        return;
      case "workers":
        options.workers = parseInteger(flag, raw, 1, 1024, "an integer 1-1024");
        return;
      case "pool":
        options.pool = parseInteger(flag, raw, 0, 64, "an integer 0-64");
        return;
      case "accept":
        if (raw !== "ring" && raw !== "reuseport") {
          throw new UsageError(`--accept must be "ring" or "reuseport", got ${q(raw)}`);
        }
        options.accept = raw;
        return;
      case "max-conns":
        options.maxConns = parseInteger(flag, raw, 1, 10_000_000, "an integer >= 1");
        return;
      case "header-timeout":
        options.headerTimeoutMs = parseSeconds(flag, raw, false);
        return;
      case "idle-timeout":
        options.idleTimeoutMs = parseSeconds(flag, raw, false);
        return;
      case "write-timeout":
        options.writeTimeoutMs = parseSeconds(flag, raw, false);
        return;
      case "grace":
        options.graceMs = parseSeconds(flag, raw, true);
        return;
      case "max-archive-mb":
        options.maxArchiveBytes = parseInteger(flag, raw, 0, 16_777_216, "an integer >= 0 (MiB)") *
          1024 * 1024;
        return;
      case "cache-mb":
        options.cacheMaxBytes =
          parseInteger(flag, raw, 0, 1_048_576, "an integer 0-1048576 (MiB)") *
          1024 * 1024;
        return;
      case "access-log":
        if (raw === "") throw new UsageError(`--access-log needs a file name, got ""`);
        options.accessLog = raw;
        return;
      case "log-format":
        if (raw !== "combined" && raw !== "common") {
          throw new UsageError(`--log-format must be "combined" or "common", got ${q(raw)}`);
        }
        options.logFormat = raw;
        return;
      case "metrics-path":
        if (!/^\/[A-Za-z0-9._~\/-]*$/.test(raw)) {
          throw new UsageError(
            `--metrics-path must start with "/" and use only letters, digits and "._~/-", got ${
              q(raw)
            }`,
          );
        }
        options.metricsPath = raw;
        return;
      case "header":
        (options.headers ??= []).push(parseHeader(raw));
        return;
      case "cert":
      case "key":
        if (raw === "") throw new UsageError(`--${flag} must be a file name, got ""`);
        tlsFiles[flag as "cert" | "key"] = raw;
        return;
    }
  };
  const toggle = (flag: string): void => {
    switch (flag as BoolFlag) {
      case "no-dir-listing":
        options.dirListing = false;
        return;
      case "dotfiles":
        options.dotfiles = true;
        return;
      case "follow-symlinks":
        options.followSymlinks = true;
        return;
      case "cors":
        options.cors = true;
        return;
      case "verbose":
        options.verbose = true;
        return;
    }
  };
  // A value may itself start with "-" only when attached (`--host=-x`); a
  // detached one that looks like a flag means the value was forgotten.
  const takeValue = (flag: string, i: number): string => {
    const next = flags[i];
    if (next === undefined || (next.startsWith("-") && next !== "-")) {
      throw new UsageError(
        next === undefined ? `--${flag} needs a value` : `--${flag} needs a value, got ${q(next)}`,
      );
    }
    return next;
  };

  for (let i = 0; i < flags.length; i++) {
    const arg = flags[i];
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (VALUE_FLAGS.has(name)) {
        set(name, eq === -1 ? takeValue(name, ++i) : arg.slice(eq + 1));
      } else if (BOOL_FLAGS.has(name)) {
        if (eq !== -1) throw new UsageError(`--${name} takes no value, got ${q(arg)}`);
        toggle(name);
      } else {
        throw new UsageError(`unknown flag ${q(eq === -1 ? arg : arg.slice(0, eq))}`);
      }
    } else if (arg.startsWith("-") && arg !== "-") {
      // Short flags: booleans may be grouped (-vH ...); a value flag takes the
      // rest of the argument (-p8000, -p=8000) or the next one (-p 8000).
      for (let j = 1; j < arg.length; j++) {
        const name = SHORT[arg[j]];
        if (name === undefined) throw new UsageError(`unknown flag ${q("-" + arg[j])}`);
        if (VALUE_FLAGS.has(name)) {
          const rest = arg.slice(j + 1).replace(/^=/, "");
          set(name, rest !== "" ? rest : takeValue(name, ++i));
          break;
        }
        toggle(name);
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
    options.root = roots[0];
  }
  if ((tlsFiles.cert === undefined) !== (tlsFiles.key === undefined)) {
    throw new UsageError(
      tlsFiles.cert === undefined ? "--key needs --cert too" : "--cert needs --key too",
    );
  }
  if (tlsFiles.cert !== undefined && tlsFiles.key !== undefined) {
    return { options, tlsFiles: { cert: tlsFiles.cert, key: tlsFiles.key } };
  }
  return { options };
}

/** `[host]` for IPv6 so the URL parses. */
function urlHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Checks that `root` is a readable directory.
 * @returns the real path, or a one-line description of what is wrong
 */
async function checkRoot(root: string): Promise<{ path: string } | string> {
  const where = `root directory ${q(root)}`;
  const problem = (e: unknown): string => {
    if (e instanceof Deno.errors.NotFound) return `${where} does not exist`;
    if (e instanceof Deno.errors.NotADirectory) return `${where} does not exist`;
    if (e instanceof Deno.errors.NotCapable) return `cannot read ${where}: run with --allow-read`;
    if (e instanceof Deno.errors.PermissionDenied) {
      return `cannot read ${where}: permission denied`;
    }
    return `cannot read ${where}: ${errorMessage(e)}`;
  };
  try {
    const info = await Deno.stat(root);
    if (!info.isDirectory) return `${where} is not a directory`;
    // stat succeeds on a mode-000 directory; listing it is what fails.
    for await (const _ of Deno.readDir(root)) break;
    return { path: await Deno.realPath(root) };
  } catch (e) {
    return problem(e);
  }
}

/** Opens the access log for appending once, so a bad path fails before any worker starts. */
function checkLogFile(path: string): string | undefined {
  try {
    Deno.openSync(path, { write: true, append: true, create: true }).close();
    return undefined;
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      return `cannot write access log ${q(path)}: run with --allow-write=${path}`;
    }
    return `cannot write access log ${q(path)}: ${errorMessage(e)}`;
  }
}

/** Maps a listen failure (from Deno.listen or from the cluster's own sockets) to one line. */
function listenProblem(e: unknown, hostname: string, port: number): string {
  const text = errorMessage(e);
  const at = `${urlHost(hostname)}:${port}`;
  if (e instanceof Deno.errors.AddrInUse || /EADDRINUSE|in use/i.test(text)) {
    return `port ${port} on ${hostname} is already in use`;
  }
  if (e instanceof Deno.errors.NotCapable) {
    return `cannot listen on ${at}: ${text}`;
  }
  if (e instanceof Deno.errors.PermissionDenied || /EACCES|permission denied/i.test(text)) {
    return port > 0 && port < 1024
      ? `no permission to listen on port ${port} (ports below 1024 need root or CAP_NET_BIND_SERVICE)`
      : `no permission to listen on ${at}`;
  }
  if (e instanceof Deno.errors.AddrNotAvailable || /EADDRNOTAVAIL/i.test(text)) {
    return `cannot listen on ${hostname}: not an address of this machine`;
  }
  return `cannot listen on ${at}: ${text}`;
}

/**
 * Fails fast on a taken or forbidden port before any worker starts. Port 0
 * needs no check. Closing a listener that never accepted leaves no TIME_WAIT,
 * so the cluster can bind right after.
 */
function checkPort(hostname: string, port: number): string | undefined {
  if (port === 0) return undefined;
  try {
    Deno.listen({ hostname, port }).close();
    return undefined;
  } catch (e) {
    return listenProblem(e, hostname, port);
  }
}

/**
 * Runs the `ringhttpd` command: parses `args`, checks the root and the port,
 * starts the cluster, prints `Listening on http://HOST:PORT/ (N workers, MODE
 * mode)` to stdout, and resolves once a SIGINT/SIGTERM-triggered graceful
 * shutdown has finished. A second signal exits the process at once
 * (130 for SIGINT, 143 for SIGTERM). SIGUSR2 prints `ringhttpd stats {json}`
 * (from `cluster.stats()`) to stderr.
 *
 * @param args the arguments after the program name, e.g. `Deno.args`
 * @returns the exit code: 0 after help, version or a clean shutdown; 1 when
 *   the root, the port or the start failed; 2 on a usage error
 *
 * @example Run the CLI from a script
 * ```ts ignore
 * import { main } from "./cli.ts";
 * Deno.exit(await main(["./public", "--port", "8080"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`ringhttpd: ${e.message}`);
    console.error(USAGE);
    return 2;
  }
  if ("help" in parsed) {
    console.log(HELP);
    return 0;
  }
  if ("version" in parsed) {
    console.log(`ringhttpd ${VERSION} (deno ${Deno.version.deno})`);
    return 0;
  }

  const options = parsed.options;
  const root = await checkRoot(options.root);
  if (typeof root === "string") {
    console.error(`ringhttpd: ${root}`);
    return 1;
  }
  options.root = root.path;
  if (parsed.tlsFiles) {
    const tls = await readTls(parsed.tlsFiles);
    if (typeof tls === "string") {
      console.error(`ringhttpd: ${tls}`);
      return 1;
    }
    options.cert = tls.cert;
    options.key = tls.key;
  }
  if (options.accessLog !== undefined && options.accessLog !== "-") {
    const problem = checkLogFile(options.accessLog);
    if (problem !== undefined) {
      console.error(`ringhttpd: ${problem}`);
      return 1;
    }
  }
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 8000;
  const portProblem = checkPort(hostname, port);
  if (portProblem !== undefined) {
    console.error(`ringhttpd: ${portProblem}`);
    return 1;
  }

  // Loaded only now so that usage and root errors never load the worker code.
  const { serve } = await import("./mod.ts");
  let cluster: Cluster;
  try {
    // The cluster's own notices (ring -> reuseport fallback, worker restarts).
    cluster = await serve({ ...options, log: (line) => console.error(`ringhttpd: ${line}`) });
  } catch (e) {
    console.error(`ringhttpd: ${listenProblem(e, hostname, port)}`);
    return 1;
  }

  const { addr, workers, mode } = cluster;
  const plural = workers === 1 ? "worker" : "workers";
  console.log(
    `Listening on ${options.cert ? "https" : "http"}://${
      urlHost(addr.hostname)
    }:${addr.port}/ (${workers} ${plural}, ${mode} mode)`,
  );
  if (addr.hostname === "0.0.0.0" || addr.hostname === "::") {
    console.log(`  also ${options.cert ? "https" : "http"}://localhost:${addr.port}/`);
  }
  return await waitForSignals(cluster, options.graceMs ?? 10_000);
}

/**
 * Reads the --cert and --key files and checks that Deno accepts the pair
 * (a throwaway TLS listener on a free loopback port), so that a bad file is
 * one line before any worker starts.
 * @returns the PEM texts, or a one-line description of what is wrong
 */
async function readTls(
  files: { cert: string; key: string },
): Promise<{ cert: string; key: string } | string> {
  const pem: { cert: string; key: string } = { cert: "", key: "" };
  for (const which of ["cert", "key"] as const) {
    try {
      pem[which] = await Deno.readTextFile(files[which]);
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound ? "no such file" : errorMessage(e);
      return `cannot read --${which} file ${q(files[which])}: ${why}`;
    }
  }
  try {
    Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...pem }).close();
  } catch (e) {
    return `--cert ${q(files.cert)} / --key ${q(files.key)} rejected: ${errorMessage(e)}`;
  }
  return pem;
}

/** Resolves with the exit code once a signal-triggered shutdown is over. */
function waitForSignals(cluster: Cluster, graceMs: number): Promise<number> {
  const { promise, resolve } = Promise.withResolvers<number>();
  const listeners: Array<[Deno.Signal, () => void]> = [];
  let stopping = false;
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    listeners.push([signal, () => {
      if (stopping) {
        console.error(`ringhttpd: second ${signal}, exiting now`);
        Deno.exit(code);
      }
      stopping = true;
      console.error(
        `ringhttpd: ${signal}, finishing in-flight requests (up to ${graceMs / 1000} s; ` +
          `send it again to exit now)`,
      );
      cluster.shutdown(graceMs).then(
        () => resolve(0),
        (e) => {
          console.error(`ringhttpd: shutdown failed: ${errorMessage(e)}`);
          resolve(1);
        },
      );
    }]);
  }
  // Not SIGUSR1: since 2.9.2 Deno answers it by opening the inspector on 127.0.0.1:9229.
  listeners.push(["SIGUSR2", () => {
    let json: string;
    try {
      json = JSON.stringify(cluster.stats(), (_, v) => typeof v === "bigint" ? Number(v) : v);
    } catch (e) {
      json = JSON.stringify({ error: errorMessage(e) });
    }
    console.error(`ringhttpd stats ${json}`);
  }]);
  for (const [signal, fn] of listeners) Deno.addSignalListener(signal, fn);
  return promise.finally(() => {
    for (const [signal, fn] of listeners) Deno.removeSignalListener(signal, fn);
  });
}
