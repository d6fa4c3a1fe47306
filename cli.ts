/**
 * The `ringhttpd` command line: the flags (one table, `options/flags.ts`),
 * an optional config file (`--config`, `options/config.ts`), then `main`
 * checks the root, the TLS files, the log file and the port, starts the
 * cluster, prints the start-up lines and runs until Ctrl-C / SIGTERM
 * (`cli/lifecycle.ts`).
 *
 * Flags follow `@std/http/file-server`: `ringhttpd [root] [options]`, both
 * `--flag=value` and `--flag value`, `-p 8000` / `-p8000` / `-p=8000`.
 *
 * This module imports `serve()` only when it starts the server, and mod.ts
 * imports this one only when run as a program: no import cycle.
 *
 * @module
 */

import type { ServeOptions } from "./options/types.ts";
import { checkRoot } from "./options/resolve.ts";
import {
  effectiveSettings,
  mergeSettings,
  parseCommandLine,
  type Settings,
  toServeOptions,
  USAGE,
  UsageError,
} from "./options/flags.ts";
import { runUntilStopped } from "./cli/lifecycle.ts";
import { startupLines, urlHost } from "./cli/banner.ts";
import { canReexec, dropRun, reexecWithWrite, writeGranted } from "./cli/reexec.ts";
import { isAbsolute, resolve } from "node:path";
import type { ListenAddress } from "./options/listen.ts";

export { HELP, USAGE, UsageError, VERSION } from "./options/flags.ts";
import { HELP, VERSION } from "./options/flags.ts";

/** What `parseArgs` found: options to serve with, or a request for help / the version. */
export type ParsedArgs =
  | { options: ServeOptions; tlsFiles?: { cert: string; key: string } }
  | { help: true }
  | { version: true };

/**
 * Parses ringhttpd's command line alone (no config file). Pure: no I/O, no
 * defaults filled in beyond `root` (".") so the server's own defaults apply.
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
  const line = parseCommandLine(args);
  if (!("settings" in line)) return line;
  return toServeOptions(line.settings);
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const q = (s: string): string => JSON.stringify(s);
const HERE = new URL(".", import.meta.url);

/**
 * The directory relative names on the command line are taken from: where the
 * user ran the command. `deno task` runs in deno.json's folder and says where
 * the user was in `INIT_CWD`; trusted only when we do run in that folder (a
 * stale INIT_CWD from an outer `npm run` must not move a plain `deno run`).
 */
function userDir(): string {
  const cwd = Deno.cwd();
  if (Deno.permissions.querySync({ name: "env", variable: "INIT_CWD" }).state !== "granted") {
    return cwd;
  }
  const init = Deno.env.get("INIT_CWD");
  if (!init || HERE.protocol !== "file:") return cwd;
  try {
    return Deno.realPathSync(cwd) === Deno.realPathSync(HERE) ? init : cwd;
  } catch {
    return cwd;
  }
}

/** Makes the file names among `settings` absolute, from `base`. */
function absolutePaths(settings: Settings, base: string): Settings {
  const out = { ...settings };
  for (
    const key of [
      "root",
      "cert",
      "key",
      "accessLog",
      "config",
      "authFile",
      "tokenFile",
      "notFoundPage",
    ] as const
  ) {
    const v = (out as Record<string, unknown>)[key];
    if (typeof v === "string" && !(key === "accessLog" && v === "-") && !isAbsolute(v)) {
      (out as Record<string, unknown>)[key] = resolve(base, v);
    }
  }
  return out;
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

// ---- net: listeners (#13) ----

/**
 * systemd socket activation (`sd_listen_fds`): `LISTEN_FDS` sockets at fds
 * 3... when `LISTEN_PID` is this process. The variables are removed after
 * reading, as `sd_listen_fds(1)` does, so a child never takes them for its own.
 * Without --allow-env for them (the serve task grants it) they are not seen.
 */
function socketActivation(): { count: number; names?: string } | undefined {
  const can = (variable: string) =>
    Deno.permissions.querySync({ name: "env", variable }).state === "granted";
  if (!can("LISTEN_FDS") || !can("LISTEN_PID")) return undefined;
  const fds = Deno.env.get("LISTEN_FDS");
  const pid = Deno.env.get("LISTEN_PID");
  if (fds === undefined || pid === undefined) return undefined;
  const names = can("LISTEN_FDNAMES") ? Deno.env.get("LISTEN_FDNAMES") : undefined;
  for (const v of ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"]) if (can(v)) Deno.env.delete(v);
  if (pid !== String(Deno.pid) || !/^[1-9]\d{0,3}$/.test(fds)) return undefined;
  return { count: Number(fds), names };
}

/** Start-up lines for several listeners (or a Unix one): the first stays parseable. */
function listenerLines(
  scheme: string,
  cluster: { listeners: readonly ListenAddress[]; workers: number; mode: string },
  root: string,
  activation: { count: number } | undefined,
): string[] {
  const shown = cluster.listeners.map((a) =>
    a.kind === "unix" ? `unix:${a.path}` : `${scheme}://${urlHost(a.hostname)}:${a.port}/`
  );
  const [first, ...rest] = shown;
  const n = cluster.workers;
  return [
    `Listening on ${first} (${n} ${n === 1 ? "worker" : "workers"}, ${cluster.mode} mode)`,
    `  Serving ${root}`,
    ...rest.map((s) => `  Also:    ${s}`),
    ...(activation ? [`  (socket activation: ${activation.count} inherited sockets)`] : []),
  ];
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

/** The settings of the command line over those of `--config`, or the exit code of a mistake. */
async function settingsOf(
  args: string[],
): Promise<{ settings: Settings; printConfig: boolean } | number> {
  const usage = (message: string): number => {
    console.error(`ringhttpd: ${message}`);
    console.error(USAGE);
    return 2;
  };
  let line;
  try {
    line = parseCommandLine(args);
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message);
    throw e;
  }
  if ("help" in line) {
    console.log(HELP);
    return 0;
  }
  if ("version" in line) {
    console.log(`ringhttpd ${VERSION} (deno ${Deno.version.deno})`);
    return 0;
  }
  const base = userDir();
  let fileSettings: Settings = {};
  if (line.config !== undefined) {
    // Loaded only when asked for: the parser stays off the plain serve path.
    const { ConfigError, loadConfig } = await import("./options/config.ts");
    try {
      fileSettings = await loadConfig(resolve(base, line.config));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      console.error(`ringhttpd: ${e.message}`);
      return 2;
    }
  }
  const settings = mergeSettings(fileSettings, absolutePaths(line.settings, base));
  if (settings.root === undefined) settings.root = base;
  return { settings, printConfig: line.printConfig };
}

/**
 * Runs the `ringhttpd` command: reads the flags and `--config`, checks the
 * root, the TLS files, the log file and the port, starts the cluster, prints
 * the start-up lines (the first is `Listening on http://HOST:PORT/ (N
 * workers, MODE mode)`) to stdout, and resolves once a Ctrl-C / SIGTERM
 * triggered graceful shutdown has finished (see `cli/lifecycle.ts`).
 *
 * @param args the arguments after the program name, e.g. `Deno.args`
 * @returns the exit code: 0 after help, version, --print-config or a clean
 *   shutdown; 1 when the root, the port or the start failed; 2 on a usage or
 *   config file error
 *
 * @example Run the CLI from a script
 * ```ts ignore
 * import { main } from "./cli.ts";
 * Deno.exit(await main(["./public", "--port", "8080"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const got = await settingsOf(args);
  if (typeof got === "number") return got;
  const { settings, printConfig } = got;
  let parsed: ReturnType<typeof toServeOptions>;
  try {
    parsed = toServeOptions(settings);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`ringhttpd: ${e.message}`);
    console.error(USAGE);
    return 2;
  }
  if (printConfig) {
    console.log(JSON.stringify(effectiveSettings(settings), null, 2));
    return 0;
  }

  const options = parsed.options;
  let root: string;
  try {
    root = checkRoot(options.root);
  } catch (e) {
    console.error(`ringhttpd: ${errorMessage(e)}`);
    return 1;
  }
  options.root = root;
  try {
    // Site rules' files (--404, --spa), read before any worker starts.
    const { checkSiteFiles } = await import("./http/_site_rules.ts");
    checkSiteFiles(root, options);
  } catch (e) {
    console.error(`ringhttpd: ${errorMessage(e)}`);
    return 1;
  }
  const logFile = options.accessLog !== undefined && options.accessLog !== "-"
    ? options.accessLog
    : undefined;
  // write (#14): only authenticated users write, so uploads without authentication are a mistake.
  if (options.upload?.length && options.auth === undefined) {
    console.error(
      "ringhttpd: --upload needs authentication (--auth, --auth-file or --token-file): " +
        "anonymous requests never write",
    );
    console.error(USAGE);
    return 2;
  }
  // write (#14): uploads need write access to the root, and to nothing else.
  const writable = [logFile, options.upload?.length ? root : undefined]
    .filter((p): p is string => p !== undefined);
  if (writable.some((p) => !writeGranted(p)) && canReexec()) {
    // The task grants no write: run again with write access to these paths only.
    return await reexecWithWrite(writable, args);
  }
  if (options.upload?.length && !writeGranted(root)) {
    // A compiled binary or a plain `deno run` without --allow-write: say so, do not 403 later.
    console.error(
      `ringhttpd: --upload needs write access to the root: run with --allow-write=${root}`,
    );
    return 1;
  }
  dropRun();
  if (parsed.tlsFiles) {
    const tls = await readTls(parsed.tlsFiles);
    if (typeof tls === "string") {
      console.error(`ringhttpd: ${tls}`);
      return 1;
    }
    options.cert = tls.cert;
    options.key = tls.key;
  }
  if (logFile !== undefined) {
    const problem = checkLogFile(logFile);
    if (problem !== undefined) {
      console.error(`ringhttpd: ${problem}`);
      return 1;
    }
  }
  const hostname = options.hostname ?? "0.0.0.0";
  const port = options.port ?? 8000;
  const activation = socketActivation();
  if (activation !== undefined) {
    options.listenFds = activation.count;
    if (activation.names !== undefined) options.listenFdNames = activation.names;
    delete options.listen;
  }
  // --listen and inherited sockets: serve() opens them and names the one that fails.
  const portProblem = options.listen || activation ? undefined : checkPort(hostname, port);
  if (portProblem !== undefined) {
    console.error(`ringhttpd: ${portProblem}`);
    return 1;
  }

  // Loaded only now so that usage and root errors never load the worker code.
  const { serve } = await import("./serve.ts");
  let cluster;
  try {
    // The cluster's own notices (ring -> reuseport fallback, worker restarts).
    cluster = await serve({ ...options, log: (line) => console.error(`ringhttpd: ${line}`) });
  } catch (e) {
    if (e instanceof Error && e.name === "AccessConfigError") {
      // A bad auth file, token file, --auth value or path rule: a usage mistake.
      console.error(`ringhttpd: ${e.message}`);
      return 2;
    }
    if (e instanceof RangeError || (e as Error).name === "ListenError") {
      // A listener that cannot be (a mode that cannot serve it, a file in the way).
      console.error(`ringhttpd: ${errorMessage(e)}`);
      return e instanceof RangeError ? 2 : 1;
    }
    console.error(`ringhttpd: ${listenProblem(e, hostname, port)}`);
    return 1;
  }
  const { addr, workers, mode } = cluster;
  const scheme = options.cert ? "https" : "http";
  const lines = startupLines({ scheme, ...addr, workers, mode, root });
  if (cluster.listeners.length > 1 || cluster.listeners[0]?.kind === "unix") {
    lines.splice(0, lines.length, ...listenerLines(scheme, cluster, root, activation));
  } else if (activation !== undefined) {
    lines.push(`  (socket activation: ${activation.count} inherited socket)`);
  }
  for (const line of lines) console.log(line);
  const reload = options.auth === undefined ? undefined : () => cluster.reloadAuth();
  return await runUntilStopped(cluster, options.graceMs ?? 10_000, reload);
}
