/**
 * End-to-end load benchmark: ringhttpd in ring and reuseport mode next to
 * nginx (when installed), same fixture, same worker count, same run.
 *
 * It builds a fixture in a temp dir (1 KiB, 64 KiB and 10 MiB files and a
 * 1,000-entry directory), starts each server on a free loopback port (ringhttpd
 * through its CLI in a subprocess, reading the Listening line; nginx from a
 * config generated in the temp dir), smoke-checks a file, a listing and a 404
 * on each, then runs `wrk --latency` against each server in turn, scenario by
 * scenario, and prints one table: req/s (MiB/s for the 10 MiB file), p99
 * latency, and the ratio ringhttpd/nginx. Then the balance check: 4 keep-alive
 * connections over 2 workers, requests per worker from the CLI's SIGUSR2 stats
 * line (`ringhttpd stats {json}`).
 *
 * ```sh
 * deno task load [--duration=5] [--warmup=1] [--connections=64] [--workers=2]
 *                [--threads=2] [--json] [--only=keepalive-1k,close,nginx,ring,...]
 *                [--access-log=FILE] [--mixed-duration=10] [--mixed-rounds=1]
 *                [--listers=4] [--cold=rename|touch] [--variant=ID:ARGS]
 * ```
 *
 * `--access-log=FILE` runs ringhttpd with its access log on, written to FILE
 * (`/dev/null` measures the logging path without disk I/O).
 *
 * `--only` takes scenario ids (keepalive-1k, 64k, 10m, listing, close,
 * balance, auth, mixed, h2), server ids (ring, reuseport, nginx) and/or mixed-load
 * variant ids (pool-0, pool-default, and any `--variant`). Needs `wrk` (Debian
 * package `wrk`); nginx is optional (Debian `nginx-light`). Every process it
 * starts is stopped in `finally` and on SIGINT/SIGTERM. `h2` (HTTPS and HTTP/2
 * against h2o with h2load, Debian `nghttp2-client` and `h2o`) is `bench/_h2load.ts`.
 *
 * The mixed-load scenario (`mixed`, issue #5) runs last, after the servers of
 * the other scenarios have stopped, once per server variant: a fresh ringhttpd
 * (ring mode, or reuseport if only that is selected) started with the
 * variant's extra flags, and nginx for context. For each: wrk on the 1 KiB
 * file for `--mixed-duration` seconds alone (phase A), then again while
 * `bench/_listing_client.ts` (a separate process, `--listers` keep-alive
 * connections) fetches 1,000-entry listings of 8 directories, each made cold
 * before its fetch (`--cold`, see that file; coldness is checked on every
 * response through Last-Modified) (phase B); `--mixed-rounds=N` alternates
 * A and B N times and reports medians. It reports small-file req/s and
 * p99 in both phases and their p99 ratio (target <= 2x), listings/s and
 * listing p50/p99, and listings/s of each variant over the `pool-0` variant
 * (the inline-async baseline; target >= 3x). `--variant=pool-2:--pool 2` adds a
 * variant: an id, a colon, the extra server flags separated by spaces.
 *
 * @module
 */

import { type ListingClientOptions, type ListingStats } from "./_listing_client.ts";
import { h2Table, runH2Scenarios } from "./_h2load.ts";

const HERE = new URL("..", import.meta.url);
const MOD_TS = new URL("mod.ts", HERE).pathname;

// ---------------------------------------------------------------------------
// Arguments

/** The command line, parsed. */
export interface Config {
  durationS: number;
  warmupS: number;
  connections: number;
  workers: number;
  threads: number;
  json: boolean;
  only: Set<string>;
  /** ringhttpd's `--access-log`; undefined: off. */
  accessLog?: string;
  /** Length of each of the two phases of the mixed-load scenario, seconds. */
  mixedDurationS: number;
  /** Rounds of the two phases, alternating; the table shows medians. */
  mixedRounds: number;
  /** Connections of the listing client in the mixed-load scenario (at most one per directory: 8). */
  listers: number;
  /** How the listing client makes each listing cold (see bench/_listing_client.ts). */
  cold: "rename" | "touch";
  /** Server variants of the mixed-load scenario: the built-in ones, then `--variant`s. */
  variants: MixedVariant[];
}

/** A ringhttpd configuration the mixed-load scenario measures: extra CLI flags, as data. */
export interface MixedVariant {
  /** Selects it in `--only`, e.g. "pool-0". */
  id: string;
  /** Label in the table. */
  label: string;
  /** Flags added to the server's command line. */
  args: string[];
}

/**
 * `--pool 0` renders listings inline in the HTTP worker with async fs: the
 * baseline of issue #5's "listings/s >= 3x" target.
 */
export const MIXED_VARIANTS: readonly MixedVariant[] = [
  { id: "pool-0", label: "pool 0 (inline)", args: ["--pool", "0"] },
  { id: "pool-default", label: "pool default", args: [] },
];
const BASELINE_VARIANT = "pool-0";

const SCENARIO_IDS = [
  "keepalive-1k",
  "64k",
  "10m",
  "listing",
  "close",
  "balance",
  "auth",
  "mixed",
  // HTTPS and HTTP/2 against h2o with h2load (#18): bench/_h2load.ts.
  "h2",
] as const;
const SERVER_IDS = ["ring", "reuseport", "nginx"] as const;

function usage(message: string): never {
  console.error(`load: ${message}`);
  console.error(
    "Usage: deno task load [--duration=S] [--warmup=S] [--connections=N] [--workers=N] " +
      "[--threads=N] [--json] [--only=ID,...] [--access-log=FILE] [--mixed-duration=S] " +
      "[--mixed-rounds=N] [--listers=N] [--cold=rename|touch] [--variant=ID:ARGS]",
  );
  Deno.exit(2);
}

/**
 * Parses the benchmark's command line; a bad flag prints the usage line and
 * exits 2. Exported for its test.
 */
export function parseConfig(args: string[]): Config {
  const cfg: Config = {
    durationS: 5,
    warmupS: 1,
    connections: 64,
    workers: 2,
    threads: 2,
    json: false,
    only: new Set(),
    mixedDurationS: 10,
    mixedRounds: 1,
    listers: 4,
    cold: "rename",
    variants: [...MIXED_VARIANTS],
  };
  const only: string[] = [];
  const int = (flag: string, raw: string | undefined, min: number): number => {
    if (raw === undefined || !/^\d+$/.test(raw) || Number(raw) < min) {
      usage(`--${flag} must be an integer >= ${min}, got ${JSON.stringify(raw ?? "")}`);
    }
    return Number(raw);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const value = () => (eq === -1 ? args[++i] : arg.slice(eq + 1));
    switch (name) {
      case "--duration":
        cfg.durationS = int("duration", value(), 1);
        break;
      case "--warmup":
        cfg.warmupS = int("warmup", value(), 0);
        break;
      case "--connections":
        cfg.connections = int("connections", value(), 1);
        break;
      case "--workers":
        cfg.workers = int("workers", value(), 1);
        break;
      case "--threads":
        cfg.threads = int("threads", value(), 1);
        break;
      case "--json":
        cfg.json = true;
        break;
      case "--access-log":
        cfg.accessLog = value();
        if (!cfg.accessLog) usage("--access-log needs a file name");
        break;
      case "--mixed-duration":
        cfg.mixedDurationS = int("mixed-duration", value(), 1);
        break;
      case "--mixed-rounds":
        cfg.mixedRounds = int("mixed-rounds", value(), 1);
        break;
      case "--listers":
        cfg.listers = int("listers", value(), 1);
        break;
      case "--cold": {
        const raw = value();
        if (raw !== "rename" && raw !== "touch") {
          usage(`--cold must be rename or touch, got ${JSON.stringify(raw ?? "")}`);
        }
        cfg.cold = raw;
        break;
      }
      case "--variant": {
        const raw = value() ?? "";
        const colon = raw.indexOf(":");
        const id = colon === -1 ? "" : raw.slice(0, colon);
        if (!/^[\w.-]+$/.test(id)) {
          usage(`--variant must be ID:ARGS (e.g. "pool-2:--pool 2"), got ${JSON.stringify(raw)}`);
        }
        const args = raw.slice(colon + 1).split(/\s+/).filter((w) => w !== "");
        // Same id as a built-in: replaces it, in its place.
        const at = cfg.variants.findIndex((v) => v.id === id);
        cfg.variants.splice(at === -1 ? cfg.variants.length : at, 1, { id, label: id, args });
        break;
      }
      case "--only":
        only.push(...(value() ?? "").split(",").filter((s) => s !== ""));
        break;
      default:
        usage(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  // Checked after every --variant is known, whatever the order of the flags.
  const ids = [...SCENARIO_IDS, ...SERVER_IDS, ...cfg.variants.map((v) => v.id)];
  for (const id of only) {
    if (!ids.includes(id)) usage(`--only takes ${ids.join(", ")}; got ${JSON.stringify(id)}`);
    cfg.only.add(id);
  }
  return cfg;
}

// ---------------------------------------------------------------------------
// Process bookkeeping: everything started is stopped, whatever happens.

const children = new Set<Deno.ChildProcess>();
const dec = new TextDecoder();
const log = (s: string) => console.error(`load: ${s}`);

function spawn(cmd: string, args: string[], opts: Partial<Deno.CommandOptions> = {}) {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...opts,
  }).spawn();
  children.add(child);
  child.status.finally(() => children.delete(child));
  return child;
}

/** SIGTERM, then SIGKILL if still alive after `graceMs`. */
async function stop(child: Deno.ChildProcess, graceMs = 5000): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      resolve();
    }, graceMs);
  });
  await Promise.race([child.status.then(() => {}), killed]);
  clearTimeout(timer);
  await child.status;
}

async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stop(c)));
}

/** Collects a stream's text; `onLine` sees each complete line. */
function drain(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  const text: string[] = [];
  let partial = "";
  const done = stream.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(chunk) {
        text.push(chunk);
        const lines = (partial + chunk).split("\n");
        partial = lines.pop()!;
        for (const l of lines) onLine(l);
      },
    }),
  ).catch(() => {});
  return { text: () => text.join(""), done };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function which(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    const p = `${dir}/${name}`;
    try {
      const st = await Deno.stat(p);
      if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return (dec.decode(out.stdout) + dec.decode(out.stderr)).trim().split("\n")[0] ?? "";
  } catch {
    return "unknown";
  }
}

/** The short commit of the checkout being measured, "+dirty" when tracked files changed. */
async function gitCommit(): Promise<string> {
  const git = async (...args: string[]) => {
    try {
      const out = await new Deno.Command("git", {
        args: ["-C", HERE.pathname, ...args],
        stdout: "piped",
        stderr: "null",
      }).output();
      return out.success ? dec.decode(out.stdout).trim() : undefined;
    } catch {
      return undefined;
    }
  };
  const head = await git("rev-parse", "--short", "HEAD");
  if (head === undefined) return "unknown (not a git checkout)";
  const dirty = await git("status", "--porcelain", "--untracked-files=no");
  return dirty ? `${head}+dirty` : head;
}

// ---------------------------------------------------------------------------
// Fixture

const FILE_1K = "/1k.bin";
const FILE_64K = "/64k.bin";
const FILE_10M = "/10m.bin";
const LISTING = "/dir1000/";
const LISTING_ENTRIES = 1000;

/** Deterministic bytes (a seeded xorshift), so each run serves the same content. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function makeFixture(root: string): Promise<void> {
  await Deno.writeFile(`${root}${FILE_1K}`, bytes(1024, 1));
  await Deno.writeFile(`${root}${FILE_64K}`, bytes(64 * 1024, 2));
  await Deno.writeFile(`${root}${FILE_10M}`, bytes(10 * 1024 * 1024, 3));
  await Deno.mkdir(`${root}${LISTING}`);
  for (let i = 0; i < LISTING_ENTRIES; i++) {
    const name = `entry-${String(i).padStart(4, "0")}.txt`;
    await Deno.writeTextFile(`${root}${LISTING}${name}`, `entry ${i}\n`);
  }
}

/** Parent of the mixed-load scenario's listing directories, a URL path under the root. */
const MIXED_PARENT = "/mixed/";
/** Listing directories of the mixed-load scenario, each of LISTING_ENTRIES files. */
const MIXED_DIRS = Array.from({ length: 8 }, (_, i) => `list${i}`);
/** The file the listing client touches in each directory. */
const MIXED_TOUCHED = "entry-0000.txt";
/** Every fixture mtime under MIXED_PARENT: older than any touch of the listing client. */
const MIXED_OLD_MTIME = new Date(Date.UTC(2001, 0, 1));
/** The listing client's n-th touch sets MIXED_T0_MS + n seconds. */
const MIXED_T0_MS = Date.UTC(2010, 0, 1);

/**
 * The mixed-load scenario's listing directories, under `root`: MIXED_DIRS of
 * LISTING_ENTRIES small files, all dated MIXED_OLD_MTIME so that a listing's
 * Last-Modified is the listing client's latest touch.
 */
export async function makeMixedFixture(
  root: string,
  dirs: readonly string[] = MIXED_DIRS,
  entries = LISTING_ENTRIES,
): Promise<void> {
  const parent = `${root}${MIXED_PARENT}`;
  await Deno.mkdir(parent, { recursive: true });
  for (const d of dirs) {
    await Deno.mkdir(`${parent}${d}`);
    const names = Array.from(
      { length: entries },
      (_, i) => `entry-${String(i).padStart(4, "0")}.txt`,
    );
    // In batches: one at a time is slow, all at once could run out of descriptors.
    for (let i = 0; i < names.length; i += 100) {
      await Promise.all(
        names.slice(i, i + 100).map(async (name, k) => {
          const path = `${parent}${d}/${name}`;
          await Deno.writeTextFile(path, `entry ${i + k}\n`);
          await Deno.utime(path, MIXED_OLD_MTIME, MIXED_OLD_MTIME);
        }),
      );
    }
    await Deno.utime(`${parent}${d}`, MIXED_OLD_MTIME, MIXED_OLD_MTIME);
  }
}

// ---------------------------------------------------------------------------
// Servers

interface Server {
  id: (typeof SERVER_IDS)[number];
  /** Label in the table, e.g. "ringhttpd ring". */
  label: string;
  base: string;
  pid: number;
  child: Deno.ChildProcess;
  /** Why it is unusable, when it failed to start or its smoke check. */
  broken?: string;
  /** ringhttpd only: asks for a stats line (SIGUSR2) and returns it parsed. */
  stats?: () => Promise<unknown>;
  output: () => string;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The permission flags of `deno task serve`, so the bench runs what users run. */
async function servePermissions(): Promise<string[]> {
  const deno = JSON.parse(await Deno.readTextFile(new URL("deno.json", HERE)));
  return String(deno.tasks.serve).split(/\s+/).filter((w) => w !== "deno" && w !== "mod.ts");
}

async function startRinghttpd(
  mode: "ring" | "reuseport",
  root: string,
  workers: number,
  accessLog?: string,
  extraArgs: string[] = [],
): Promise<Server> {
  const args = [
    ...(await servePermissions()),
    ...(accessLog === undefined ? [] : [`--allow-write=${accessLog}`]),
    MOD_TS,
    ...(accessLog === undefined ? [] : ["--access-log", accessLog]),
    root,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--workers",
    String(workers),
    `--accept=${mode}`,
    ...extraArgs,
  ];
  const child = spawn(Deno.execPath(), args, { env: { NO_COLOR: "1" } });
  const listening = Promise.withResolvers<string>();
  const statsWaiters: Array<(json: string) => void> = [];
  const stdout = drain(child.stdout, (line) => {
    if (line.startsWith("Listening on ")) listening.resolve(line);
  });
  const stderr = drain(child.stderr, (line) => {
    const m = line.match(/^ringhttpd stats (.*)$/);
    if (m) statsWaiters.shift()?.(m[1]);
  });
  const output = () => stdout.text() + stderr.text();
  child.status.then((s) => listening.reject(new Error(`exited with ${s.code}`)));
  const server: Server = {
    id: mode,
    label: `ringhttpd ${mode}`,
    base: "",
    pid: child.pid,
    child,
    output,
    stats: async () => {
      const line = new Promise<string>((resolve) => statsWaiters.push(resolve));
      child.kill("SIGUSR2");
      return JSON.parse(await withTimeout(line, 10_000, "stats line after SIGUSR2"));
    },
  };
  try {
    const line = await withTimeout(listening.promise, 60_000, "the Listening line");
    const m = line.match(
      /^Listening on (http:\/\/[^/]+\/) \((\d+) workers?, (ring|reuseport) mode\)$/,
    );
    if (!m) throw new Error(`unexpected Listening line ${JSON.stringify(line)}`);
    server.base = m[1];
    if (m[3] !== mode) server.label += ` (fell back to ${m[3]})`;
  } catch (e) {
    // The first error line says most (a Deno error is followed by a backtrace).
    const lines = output().split("\n").map((l) => l.trim()).filter((l) => l !== "");
    const why = lines.find((l) => /error|^ringhttpd:/i.test(l)) ?? lines.at(-1) ?? "no output";
    server.broken = `did not start (${(e as Error).message}): ${why}`;
  }
  return server;
}

async function startNginx(
  nginx: string,
  root: string,
  workers: number,
  tmp: string,
): Promise<Server> {
  const prefix = `${tmp}/nginx`;
  await Deno.mkdir(prefix, { recursive: true });
  const port = freePort();
  const mime = "/etc/nginx/mime.types";
  const hasMime = await Deno.stat(mime).then(() => true, () => false);
  // As root, nginx's workers would drop to "nobody", which cannot read a 0700 temp dir.
  const user = Deno.uid() === 0 ? "user root;\n" : "";
  const conf = `${user}worker_processes ${workers};
daemon off;
master_process on;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 8192; }
http {
  ${hasMime ? `include ${mime};` : "types { }"}
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  access_log off;
  autoindex on;
  keepalive_timeout 15s;
  keepalive_requests 1000000;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
    server_name localhost;
    root ${root};
  }
}
`;
  await Deno.writeTextFile(`${prefix}/nginx.conf`, conf);
  const child = spawn(nginx, [
    "-p",
    prefix,
    "-c",
    `${prefix}/nginx.conf`,
    "-e",
    `${prefix}/error.log`,
  ]);
  const stdout = drain(child.stdout, () => {});
  const stderr = drain(child.stderr, () => {});
  const server: Server = {
    id: "nginx",
    label: "nginx",
    base: `http://127.0.0.1:${port}/`,
    pid: child.pid,
    child,
    output: () => stdout.text() + stderr.text(),
  };
  // nginx prints nothing when ready: wait until the port accepts, or it exits.
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      if (exited || Date.now() > deadline) {
        const log = await Deno.readTextFile(`${prefix}/error.log`).catch(() => "");
        server.broken = `did not start: ${(server.output() + log).trim().split("\n").at(-1)}`;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return server;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Fetches over a private client closed afterwards, so no idle connection stays open. */
async function smoke(server: Server): Promise<void> {
  const client = Deno.createHttpClient({});
  try {
    const get = async (path: string) => {
      const res = await fetch(new URL(path.slice(1), server.base), { client });
      return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) };
    };
    // Every file in full, byte for byte: a short or wrong body would make wrk's numbers meaningless.
    for (const [path, size, seed] of [[FILE_1K, 1024, 1], [FILE_64K, 64 * 1024, 2]] as const) {
      const file = await get(path);
      const want = bytes(size, seed);
      if (file.status !== 200 || !sameBytes(file.body, want)) {
        throw new Error(
          `GET ${path}: status ${file.status}, ${file.body.length} bytes, not the file`,
        );
      }
    }
    const big = await get(FILE_10M);
    if (big.status !== 200 || !sameBytes(big.body, bytes(10 * 1024 * 1024, 3))) {
      throw new Error(
        `GET ${FILE_10M}: status ${big.status}, ${big.body.length} bytes, not the file`,
      );
    }
    const listing = await get(LISTING);
    const html = dec.decode(listing.body);
    if (
      listing.status !== 200 || !html.includes("entry-0000.txt") || !html.includes("entry-0999.txt")
    ) {
      throw new Error(`GET ${LISTING}: status ${listing.status}, no entry-0000/0999 in the page`);
    }
    const missing = await get("/no-such-file");
    if (missing.status !== 404) throw new Error(`GET /no-such-file: status ${missing.status}`);
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------
// wrk

export interface WrkResult {
  requests: number;
  reqPerSec: number;
  /** Bytes per second as wrk reports it (headers included). */
  bytesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  socketErrors: number;
  non2xx: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const UNIT_BYTES: Record<string, number> = {
  B: 1,
  KB: 1024,
  MB: 1024 ** 2,
  GB: 1024 ** 3,
  TB: 1024 ** 4,
};

/** Parses `wrk --latency` output. Exported for the test of the parser. */
export function parseWrk(text: string): WrkResult {
  const num = (re: RegExp) => {
    const m = text.match(re);
    if (!m) throw new Error(`wrk output has no ${re}:\n${text}`);
    return m;
  };
  const latency = (pct: string) => {
    const m = num(new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m"));
    return Number(m[1]) * UNIT_MS[m[2]];
  };
  const transfer = num(/Transfer\/sec:\s+([\d.]+)([KMGT]?B)/);
  const errors = text.match(
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/,
  );
  return {
    requests: Number(num(/(\d+) requests in/)[1]),
    reqPerSec: Number(num(/Requests\/sec:\s+([\d.]+)/)[1]),
    bytesPerSec: Number(transfer[1]) * UNIT_BYTES[transfer[2]],
    p50Ms: latency("50"),
    p99Ms: latency("99"),
    socketErrors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: Number(text.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0),
  };
}

async function wrk(
  bin: string,
  url: string,
  opts: { connections: number; threads: number; durationS: number; headers?: string[] },
): Promise<WrkResult> {
  const args = [
    "-t",
    String(Math.min(opts.threads, opts.connections)),
    "-c",
    String(opts.connections),
    "-d",
    `${opts.durationS}s`,
    "--timeout",
    "10s",
    "--latency",
    ...(opts.headers ?? []).flatMap((h) => ["-H", h]),
    url,
  ];
  const child = spawn(bin, args);
  const out = drain(child.stdout, () => {});
  const err = drain(child.stderr, () => {});
  const status = await withTimeout(child.status, (opts.durationS + 60) * 1000, "wrk").catch(
    async (e) => {
      await stop(child);
      throw e;
    },
  );
  await Promise.all([out.done, err.done]);
  if (!status.success) throw new Error(`wrk exited ${status.code}: ${err.text().trim()}`);
  return parseWrk(out.text());
}

// ---------------------------------------------------------------------------
// Mixed load: the listing client, in its own process

const LISTING_CLIENT_TS = new URL("bench/_listing_client.ts", HERE).pathname;

/** The listing client's counts, and the CPU it took itself during its window. */
export interface ListingResult extends ListingStats {
  /** User + system CPU of the client process over its window, % of one core. */
  clientCpuPct?: number;
}

/** A running listing client: `stop()` ends its window and returns its counts. */
export interface ListingClientProcess {
  pid: number;
  stop(): Promise<ListingResult>;
}

/**
 * User + system CPU time a process has used so far, seconds (undefined if
 * unreadable): fields 14 and 15 of /proc/PID/stat, in USER_HZ ticks, which
 * Linux fixes at 100 per second for user space.
 */
async function cpuSeconds(pid: number): Promise<number | undefined> {
  const stat = await readProc(`/proc/${pid}/stat`);
  // The command name (field 2) is in parentheses and may hold spaces.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(rest[11]) + Number(rest[12]);
  return stat !== "" && Number.isFinite(ticks) ? ticks / 100 : undefined;
}

/**
 * Starts `bench/_listing_client.ts` in a subprocess and resolves once its
 * measured window has started (after its warm-up listings). `stop()` closes
 * its stdin and reads its result line; the process is killed if anything
 * fails, and in any case by the benchmark's cleanup.
 */
export async function startListingClient(
  opts: ListingClientOptions,
): Promise<ListingClientProcess> {
  const host = new URL(opts.base).hostname;
  const child = spawn(Deno.execPath(), [
    "run",
    "--config",
    new URL("deno.json", HERE).pathname,
    `--allow-net=${host}`,
    `--allow-read=${opts.parentDir}`,
    `--allow-write=${opts.parentDir}`,
    LISTING_CLIENT_TS,
    JSON.stringify(opts),
  ], { stdin: "piped", env: { NO_COLOR: "1" } });
  const ready = Promise.withResolvers<void>();
  const result = Promise.withResolvers<string>();
  const out = drain(child.stdout, (line) => {
    if (line === "ready") ready.resolve();
    else if (line.startsWith("{")) result.resolve(line);
  });
  const err = drain(child.stderr, () => {});
  const why = () => err.text().trim().split("\n").slice(0, 3).join(" / ") || "no output";
  child.status.then((s) => {
    const e = new Error(`listing client exited with ${s.code}: ${why()}`);
    ready.reject(e);
    // The result line may be the last thing read: let the stream finish first.
    out.done.then(() => result.reject(e));
  });
  ready.promise.catch(() => {});
  result.promise.catch(() => {});
  try {
    await withTimeout(ready.promise, 60_000, "the listing client's ready line");
  } catch (e) {
    await stop(child);
    throw e;
  }
  const cpu0 = await cpuSeconds(child.pid);
  const t0 = performance.now();
  return {
    pid: child.pid,
    async stop() {
      try {
        const cpu1 = await cpuSeconds(child.pid);
        const elapsedS = (performance.now() - t0) / 1000;
        await child.stdin.close();
        const line = await withTimeout(result.promise, 30_000, "the listing client's result");
        await child.status;
        const stats: ListingResult = JSON.parse(line);
        if (cpu0 !== undefined && cpu1 !== undefined && elapsedS > 0) {
          stats.clientCpuPct = (100 * (cpu1 - cpu0)) / elapsedS;
        }
        return stats;
      } finally {
        await stop(child);
      }
    },
  };
}

/** One server's mixed-load figures. */
export interface MixedRow {
  /** Variant id, or "nginx". */
  id: string;
  label: string;
  args: string[];
  /** Phase A, the median over the rounds (see {@linkcode mixedSummary}). */
  alone?: WrkResult;
  /** Phase B's wrk, likewise. */
  loaded?: WrkResult;
  /** Phase B's listing client, likewise. */
  listing?: ListingResult;
  /** Each round as measured. */
  rounds: MixedRound[];
  error?: string;
}

/** One round of the mixed-load scenario: phase A, then phase B. */
export interface MixedRound {
  alone: WrkResult;
  loaded: WrkResult;
  listing: ListingResult;
}

function median(values: number[]): number {
  const v = values.slice().sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length === 0 ? NaN : v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * Sums up rounds: for wrk, the median req/s and latencies and the summed
 * errors; for the listing client, summed counts and windows (so listings/s
 * is over all of them), median p50/p99 and client CPU.
 *
 * @param rounds At least one round.
 * @returns What the table shows.
 * @example
 * ```ts
 * import { mixedSummary } from "./load.ts";
 * const wrk = { requests: 1, reqPerSec: 1, bytesPerSec: 1, p50Ms: 1, p99Ms: 2, socketErrors: 0, non2xx: 0 };
 * const listing = {
 *   listings: 10, cold: 10, stale: 0, unverified: 0, errors: 0,
 *   windowMs: 1000, listingsPerSec: 10, p50Ms: 5, p99Ms: 9, maxMs: 9,
 * };
 * mixedSummary([{ alone: wrk, loaded: wrk, listing }]).listing.listingsPerSec; // 10
 * ```
 */
export function mixedSummary(rounds: readonly MixedRound[]): MixedRound {
  const wrkMedian = (all: WrkResult[]): WrkResult => ({
    requests: all.reduce((a, r) => a + r.requests, 0),
    reqPerSec: median(all.map((r) => r.reqPerSec)),
    bytesPerSec: median(all.map((r) => r.bytesPerSec)),
    p50Ms: median(all.map((r) => r.p50Ms)),
    p99Ms: median(all.map((r) => r.p99Ms)),
    socketErrors: all.reduce((a, r) => a + r.socketErrors, 0),
    non2xx: all.reduce((a, r) => a + r.non2xx, 0),
  });
  const ls = rounds.map((r) => r.listing);
  const sum = (f: (l: ListingResult) => number) => ls.reduce((a, l) => a + f(l), 0);
  const cpu = ls.map((l) => l.clientCpuPct).filter((c) => c !== undefined);
  const windowMs = sum((l) => l.windowMs);
  return {
    alone: wrkMedian(rounds.map((r) => r.alone)),
    loaded: wrkMedian(rounds.map((r) => r.loaded)),
    listing: {
      listings: sum((l) => l.listings),
      cold: sum((l) => l.cold),
      stale: sum((l) => l.stale),
      unverified: sum((l) => l.unverified),
      errors: sum((l) => l.errors),
      firstError: ls.find((l) => l.firstError)?.firstError,
      windowMs,
      listingsPerSec: windowMs > 0 ? (1000 * sum((l) => l.listings)) / windowMs : 0,
      p50Ms: median(ls.map((l) => l.p50Ms)),
      p99Ms: median(ls.map((l) => l.p99Ms)),
      maxMs: Math.max(...ls.map((l) => l.maxMs)),
      clientCpuPct: cpu.length > 0 ? median(cpu) : undefined,
    },
  };
}

/** wrk connections on the small file in both phases. */
const MIXED_WRK_CONNECTIONS = 32;

/**
 * `--mixed-rounds` rounds of phase A then phase B on one running server;
 * fills `row`. Alternating the phases, with the median taken, keeps a
 * change in background load on a shared machine from landing on one phase.
 */
async function mixedPhases(
  cfg: Config,
  wrkBin: string,
  server: Server,
  root: string,
  row: MixedRow,
): Promise<void> {
  const url = new URL(FILE_1K.slice(1), server.base).href;
  const opts = {
    connections: MIXED_WRK_CONNECTIONS,
    threads: cfg.threads,
    durationS: cfg.mixedDurationS,
  };
  if (cfg.warmupS > 0) await wrk(wrkBin, url, { ...opts, durationS: cfg.warmupS });
  for (let round = 0; round < cfg.mixedRounds; round++) {
    const of = cfg.mixedRounds > 1 ? ` (round ${round + 1} of ${cfg.mixedRounds})` : "";
    log(`mixed on ${row.label}: A, 1 KiB alone, ${cfg.mixedDurationS} s${of}`);
    const alone = await wrk(wrkBin, url, opts);
    log(
      `mixed on ${row.label}: B, 1 KiB with ${cfg.listers} listing connections (${cfg.cold})${of}`,
    );
    const client = await startListingClient({
      base: server.base,
      parentDir: `${root}${MIXED_PARENT}`.slice(0, -1),
      parentUrl: MIXED_PARENT.slice(1),
      dirs: MIXED_DIRS,
      concurrency: cfg.listers,
      cold: cfg.cold,
      t0Ms: MIXED_T0_MS,
      touchFile: MIXED_TOUCHED,
      // Past any earlier round's names and touch times (~1 M listings each, at most).
      first: round * 1_000_000,
    });
    let loaded: WrkResult | undefined;
    let listing: ListingResult;
    try {
      loaded = await wrk(wrkBin, url, opts);
    } finally {
      listing = await client.stop();
    }
    row.rounds.push({ alone, loaded, listing });
  }
  Object.assign(row, mixedSummary(row.rounds));
}

async function runMixed(
  cfg: Config,
  wrkBin: string,
  nginxBin: string | undefined,
  root: string,
  tmp: string,
): Promise<MixedRow[]> {
  const wanted = (id: string, all: readonly string[]) =>
    ![...cfg.only].some((o) => all.includes(o)) || cfg.only.has(id);
  const variantIds = cfg.variants.map((v) => v.id);
  // Ring mode unless only reuseport is asked for; none if only nginx is.
  const mode = wanted("ring", SERVER_IDS) ? "ring" : "reuseport";
  const rows: MixedRow[] = [];
  const targets: Array<{ row: MixedRow; start: () => Promise<Server> }> = [];
  for (const v of cfg.variants) {
    if (!wanted(mode, SERVER_IDS) || !wanted(v.id, variantIds)) continue;
    targets.push({
      row: { id: v.id, label: v.label, args: v.args, rounds: [] },
      start: () => startRinghttpd(mode, root, cfg.workers, cfg.accessLog, v.args),
    });
  }
  if (wanted("nginx", SERVER_IDS)) {
    if (nginxBin) {
      targets.push({
        row: { id: "nginx", label: "nginx", args: [], rounds: [] },
        start: () => startNginx(nginxBin, root, cfg.workers, tmp),
      });
    } else log("nginx is not installed: no nginx row in the mixed-load table");
  }
  for (const { row, start } of targets) {
    rows.push(row);
    log(
      `mixed: starting ${
        row.id === "nginx" ? "nginx" : `ringhttpd --accept=${mode} ${row.args.join(" ")}`.trim()
      }`,
    );
    const server = await start();
    try {
      if (server.broken) throw new Error(server.broken);
      await smoke(server);
      await mixedPhases(cfg, wrkBin, server, root, row);
    } catch (e) {
      row.error = (e as Error).message;
      log(`mixed on ${row.label}: ${row.error}`);
    } finally {
      await stop(server.child);
    }
  }
  return rows;
}

/**
 * The mixed-load table and the lines under it: the targets, each variant's
 * listings/s over the `pool-0` baseline's, and every error or stale listing.
 *
 * @param rows One per server, in run order.
 * @param cfg The listing client's settings, named in the notes.
 * @returns The text to print.
 * @example
 * ```ts
 * import { mixedReport } from "./load.ts";
 * mixedReport([{ id: "pool-0", label: "pool 0", args: [], rounds: [], error: "did not start" }], {
 *   listers: 4,
 *   cold: "rename",
 * }); // a table with an error row, then "pool 0: did not start"
 * ```
 */
export function mixedReport(
  rows: readonly MixedRow[],
  cfg: Pick<Config, "listers" | "cold">,
): string {
  const header = [
    "server",
    "1 KiB alone",
    "p99",
    "1 KiB + listings",
    "p99",
    "p99 ratio",
    "listings/s",
    "listing p50",
    "listing p99",
    "cold",
    "client CPU",
  ];
  const body = rows.map((r) => {
    if (r.error) return [r.label, "error", ...Array(header.length - 2).fill("-")];
    const a = r.alone!;
    const b = r.loaded!;
    const l = r.listing!;
    const cold = l.listings === 0
      ? "-"
      : l.unverified === l.listings
      ? "n/a"
      : `${fmtNum((100 * l.cold) / l.listings)} %`;
    return [
      r.label,
      `${fmtNum(a.reqPerSec)}${a.socketErrors + a.non2xx ? "!" : ""}`,
      fmtMs(a.p99Ms),
      `${fmtNum(b.reqPerSec)}${b.socketErrors + b.non2xx ? "!" : ""}`,
      fmtMs(b.p99Ms),
      a.p99Ms > 0 ? `${(b.p99Ms / a.p99Ms).toFixed(2)}x` : "-",
      `${fmtNum(l.listingsPerSec, 1)}${l.errors ? "!" : ""}`,
      fmtMs(l.p50Ms),
      fmtMs(l.p99Ms),
      cold,
      l.clientCpuPct === undefined ? "-" : `${fmtNum(l.clientCpuPct)} %`,
    ];
  });
  const lines = [table(header, body)];
  const base = rows.find((r) => r.id === BASELINE_VARIANT && r.listing);
  const notes: string[] = [];
  for (const r of rows) {
    if (r.id === BASELINE_VARIANT || r.id === "nginx" || !r.listing) continue;
    if (base && base.listing!.listingsPerSec > 0) {
      const x = r.listing.listingsPerSec / base.listing!.listingsPerSec;
      notes.push(`listings/s ${r.label} / ${base.label}: ${x.toFixed(2)}x (target >= 3x)`);
    }
  }
  if (!base && rows.some((r) => r.id !== "nginx")) {
    notes.push(`no ${BASELINE_VARIANT} result: no listings/s ratio against the baseline`);
  }
  for (const r of rows) {
    if (r.error) notes.push(`${r.label}: ${r.error}`);
    else if (r.listing!.errors) {
      notes.push(
        `${r.label}: ${r.listing!.errors} listing errors (!), first: ${r.listing!.firstError}`,
      );
    }
    if (
      !r.error &&
      (r.alone!.socketErrors + r.alone!.non2xx + r.loaded!.socketErrors + r.loaded!.non2xx)
    ) {
      notes.push(`${r.label}: wrk saw socket errors or non-2xx responses (!)`);
    }
    if (!r.error && r.listing!.stale) {
      notes.push(
        `${r.label}: ${r.listing!.stale} of ${
          r.listing!.listings
        } listings were cached pages (stale Last-Modified)`,
      );
    }
  }
  lines.push(
    "",
    `p99 ratio: p99 with the listing load / p99 alone (target <= 2x). Listing client: ` +
      `${cfg.listers} keep-alive connections, ${MIXED_DIRS.length} directories of ${LISTING_ENTRIES} ` +
      `entries, each ${
        cfg.cold === "rename" ? "renamed and touched" : "touched"
      } before its fetch; ` +
      `cold: share of listings whose Last-Modified is that touch (n/a: no Last-Modified). ` +
      `client CPU: what the listing client itself took, % of one core.`,
    ...notes,
  );
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// Scenarios and the report

interface Scenario {
  id: (typeof SCENARIO_IDS)[number];
  label: string;
  path: string;
  headers?: string[];
  /** Report MiB/s instead of req/s. */
  throughput?: boolean;
}

const SCENARIOS: Scenario[] = [
  { id: "keepalive-1k", label: "1 KiB keep-alive", path: FILE_1K },
  { id: "64k", label: "64 KiB keep-alive", path: FILE_64K },
  { id: "10m", label: "10 MiB keep-alive", path: FILE_10M, throughput: true },
  { id: "listing", label: "1,000-entry listing", path: LISTING },
  {
    id: "close",
    label: "1 KiB Connection: close",
    path: FILE_1K,
    headers: ["Connection: close"],
  },
];

interface Row {
  scenario: string;
  server: string;
  /** req/s, or MiB/s for throughput scenarios. */
  value?: number;
  unit: "req/s" | "MiB/s";
  p99Ms?: number;
  errors?: number;
  error?: string;
}

/** The Basic-auth scenario: the same 1 KiB keep-alive load with and without `--auth`. */
interface AuthRow {
  plain?: { reqPerSec: number; p99Ms: number; errors: number };
  basic?: { reqPerSec: number; p99Ms: number; errors: number };
  note?: string;
}

interface Balance {
  server: string;
  mode: string;
  requestsPerWorker?: number[];
  /** Connections each worker took during the run: 5 in all, as wrk connects once to probe first. */
  connectionsPerWorker?: number[];
  /** (max - min) / max of the requests, in percent. */
  spreadPct?: number;
  note?: string;
}

/**
 * Reads one per-worker counter from a stats object (`cluster.stats()` as the
 * CLI prints it on SIGUSR2): an array of per-worker records with a numeric
 * `field`, at `workers` or at the top level.
 */
export function perWorker(
  stats: unknown,
  field: "requests" | "connections",
): number[] | undefined {
  const list = Array.isArray(stats) ? stats : (stats as { workers?: unknown } | null)?.workers;
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const counts = list.map((w) => (w as Record<string, unknown> | null)?.[field]);
  return counts.every((n) => typeof n === "number") ? counts as number[] : undefined;
}

const fmtNum = (n: number | undefined, digits = 0) =>
  n === undefined ? "-" : n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
const fmtMs = (ms: number | undefined) =>
  ms === undefined ? "-" : ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`;

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join(
    "\n",
  );
}

// ---------------------------------------------------------------------------

async function runBench(cfg: Config, tmp: string): Promise<void> {
  const wrkBin = await which("wrk");
  if (!wrkBin) {
    console.error("load: wrk is not installed (apt-get install -y wrk)");
    Deno.exitCode = 1;
    return;
  }
  const nginxBin = await which("nginx");
  const wanted = (id: string, all: readonly string[]) =>
    ![...cfg.only].some((o) => all.includes(o)) || cfg.only.has(id);

  const commit = await gitCommit();
  const cpu = (await readProc("/proc/cpuinfo")).match(
    /model name\s*:\s*(.*)/,
  )?.[1] ?? "unknown";
  const machine = {
    nproc: navigator.hardwareConcurrency,
    cpu,
    deno: Deno.version.deno,
    commit,
    wrk: await firstLine(wrkBin, ["-v"]),
    nginx: nginxBin ? await firstLine(nginxBin, ["-v"]) : "not installed",
    date: new Date().toISOString(),
  };

  const root = `${tmp}/root`;
  await Deno.mkdir(root);
  log(`fixture in ${root}`);
  await makeFixture(root);
  const mixed = wanted("mixed", SCENARIO_IDS);
  if (mixed) await makeMixedFixture(root);

  // The balance check starts its own servers when these are absent.
  const needServers = SCENARIOS.some((sc) => wanted(sc.id, SCENARIO_IDS));
  const servers: Server[] = [];
  for (const mode of ["ring", "reuseport"] as const) {
    if (!needServers) break;
    if (!wanted(mode, SERVER_IDS)) continue;
    log(`starting ringhttpd --accept=${mode} --workers ${cfg.workers}`);
    servers.push(await startRinghttpd(mode, root, cfg.workers, cfg.accessLog));
  }
  if (needServers && wanted("nginx", SERVER_IDS)) {
    if (nginxBin) {
      log(`starting nginx with ${cfg.workers} workers`);
      servers.push(await startNginx(nginxBin, root, cfg.workers, tmp));
    } else {
      log("nginx is not installed (apt-get install -y nginx-light): no ratios");
    }
  }
  for (const s of servers) {
    if (s.broken) continue;
    try {
      await smoke(s);
      log(`${s.label} at ${s.base}: smoke check ok (3 files byte for byte, listing, 404)`);
    } catch (e) {
      s.broken = `smoke check failed: ${(e as Error).message}`;
    }
  }
  for (const s of servers) if (s.broken) log(`${s.label}: ${s.broken}`);

  // Scenario-major, server-minor: servers measured minutes apart would see
  // different background load on a shared machine.
  const rows: Row[] = [];
  for (const sc of SCENARIOS) {
    if (!wanted(sc.id, SCENARIO_IDS)) continue;
    for (const s of servers) {
      const row: Row = {
        scenario: sc.id,
        server: s.id,
        unit: sc.throughput ? "MiB/s" : "req/s",
      };
      rows.push(row);
      if (s.broken) {
        row.error = s.broken;
        continue;
      }
      const url = new URL(sc.path.slice(1), s.base).href;
      const opts = { connections: cfg.connections, threads: cfg.threads, headers: sc.headers };
      try {
        if (cfg.warmupS > 0) await wrk(wrkBin, url, { ...opts, durationS: cfg.warmupS });
        log(`${sc.label} on ${s.label}: ${cfg.durationS} s, c=${cfg.connections}`);
        const r = await wrk(wrkBin, url, { ...opts, durationS: cfg.durationS });
        row.value = sc.throughput ? r.bytesPerSec / 1024 ** 2 : r.reqPerSec;
        row.p99Ms = r.p99Ms;
        row.errors = r.socketErrors + r.non2xx;
      } catch (e) {
        row.error = (e as Error).message;
      }
    }
  }

  // Balance: 4 keep-alive connections over 2 workers, requests per worker.
  const balance: Balance[] = [];
  if (wanted("balance", SCENARIO_IDS)) {
    for (const mode of ["ring", "reuseport"] as const) {
      if (!wanted(mode, SERVER_IDS)) continue;
      let s = servers.find((x) => x.id === mode);
      let own = false;
      if (cfg.workers !== 2 || !s) {
        s = await startRinghttpd(mode, root, 2);
        own = true;
      }
      const b: Balance = { server: s.label, mode };
      balance.push(b);
      try {
        if (s.broken) throw new Error(s.broken);
        const before = await s.stats!();
        if (!perWorker(before, "requests")) {
          throw new Error("the stats line has no per-worker request counts (workers[i].requests)");
        }
        log(`balance on ${s.label}: 4 connections, 2 workers, ${cfg.durationS} s`);
        await wrk(wrkBin, new URL(FILE_1K.slice(1), s.base).href, {
          connections: 4,
          threads: 2,
          durationS: cfg.durationS,
        });
        const after = await s.stats!();
        const diff = (field: "requests" | "connections") => {
          const a = perWorker(after, field);
          const z = perWorker(before, field);
          return a && z ? a.map((n, i) => n - (z[i] ?? 0)) : undefined;
        };
        b.requestsPerWorker = diff("requests")!;
        b.connectionsPerWorker = diff("connections");
        const max = Math.max(...b.requestsPerWorker);
        const min = Math.min(...b.requestsPerWorker);
        b.spreadPct = max === 0 ? 0 : (100 * (max - min)) / max;
      } catch (e) {
        b.note = (e as Error).message;
      } finally {
        if (own) await stop(s.child);
      }
    }
  }

  // Basic auth (#13): 1 KiB keep-alive through the access stage, verified
  // once per connection value then from the cache, against the same without
  // auth, back to back on fresh ring-mode servers (issue goal: >= 0.9x).
  let auth: AuthRow | undefined;
  if (wanted("auth", SCENARIO_IDS)) {
    const url = (s: Server) => new URL(FILE_1K.slice(1), s.base).href;
    const opts = { connections: cfg.connections, threads: cfg.threads, durationS: cfg.durationS };
    const header = `Authorization: Basic ${btoa("bench:bench-password")}`;
    auth = {};
    for (
      const [key, extra] of [["plain", []], ["basic", ["--auth", "bench:bench-password"]]] as const
    ) {
      const s = await startRinghttpd("ring", root, cfg.workers, undefined, [...extra]);
      try {
        log(
          `1 KiB keep-alive on ringhttpd ring ${key === "basic" ? "with" : "without"} Basic auth`,
        );
        const o = { ...opts, headers: [header] };
        if (cfg.warmupS > 0) await wrk(wrkBin, url(s), { ...o, durationS: cfg.warmupS });
        const r = await wrk(wrkBin, url(s), o);
        auth[key] = { reqPerSec: r.reqPerSec, p99Ms: r.p99Ms, errors: r.socketErrors + r.non2xx };
      } catch (e) {
        auth.note = (e as Error).message;
      } finally {
        await stop(s.child);
      }
    }
  }

  // Peak RSS of each server process (ringhttpd: one process, all threads).
  const rss: Record<string, number | undefined> = {};
  for (const s of servers) rss[s.id] = await peakRssMiB(s.pid, s.id === "nginx");

  // Mixed load last, alone: idle servers would still see its renames and touches.
  await Promise.all(servers.map((s) => stop(s.child)));
  const mixedRows = mixed ? await runMixed(cfg, wrkBin, nginxBin, root, tmp) : [];
  // HTTPS / HTTP/2 (#18), alone too: ringhttpd with --cert next to h2o, loaded by h2load.
  const h2Rows = wanted("h2", SCENARIO_IDS)
    ? await runH2Scenarios({
      root,
      tmp,
      workers: cfg.workers,
      threads: cfg.threads,
      durationS: cfg.durationS,
      warmupS: cfg.warmupS,
      log,
      track: (c) => {
        children.add(c);
        c.status.finally(() => children.delete(c));
      },
    })
    : [];

  const ratio = (sc: string, id: string) => {
    const a = rows.find((r) => r.scenario === sc && r.server === id)?.value;
    const n = rows.find((r) => r.scenario === sc && r.server === "nginx")?.value;
    return a !== undefined && n !== undefined && n > 0 ? a / n : undefined;
  };
  const ringServers = servers.filter((s) => s.id !== "nginx");

  if (cfg.json) {
    console.log(JSON.stringify(
      {
        machine,
        config: {
          durationS: cfg.durationS,
          warmupS: cfg.warmupS,
          connections: cfg.connections,
          workers: cfg.workers,
          wrkThreads: cfg.threads,
        },
        servers: servers.map((s) => ({
          id: s.id,
          label: s.label,
          url: s.base,
          broken: s.broken,
          peakRssMiB: rss[s.id],
        })),
        results: rows.map((r) => ({
          ...r,
          ratioToNginx: r.server === "nginx" ? undefined : ratio(r.scenario, r.server),
        })),
        balance,
        auth,
        mixed: mixed
          ? {
            durationS: cfg.mixedDurationS,
            rounds: cfg.mixedRounds,
            wrkConnections: MIXED_WRK_CONNECTIONS,
            listers: cfg.listers,
            cold: cfg.cold,
            rows: mixedRows,
          }
          : undefined,
        h2: h2Rows.length > 0 ? h2Rows : undefined,
      },
      null,
      2,
    ));
    return;
  }

  const header = ["scenario"];
  for (const s of servers) header.push(`${s.label}`, "p99");
  for (const s of ringServers) {
    if (servers.some((x) => x.id === "nginx")) header.push(`${s.id}/nginx`);
  }
  const body: string[][] = [];
  for (const sc of SCENARIOS) {
    if (!rows.some((r) => r.scenario === sc.id)) continue;
    const cells = [`${sc.label}${sc.throughput ? " (MiB/s)" : ""}`];
    for (const s of servers) {
      const r = rows.find((x) => x.scenario === sc.id && x.server === s.id)!;
      cells.push(
        r.error ? "error" : `${fmtNum(r.value, sc.throughput ? 0 : 0)}${r.errors ? "!" : ""}`,
        fmtMs(r.p99Ms),
      );
    }
    for (const s of ringServers) {
      if (!servers.some((x) => x.id === "nginx")) break;
      const x = ratio(sc.id, s.id);
      cells.push(x === undefined ? "-" : `${x.toFixed(2)}x`);
    }
    body.push(cells);
  }
  const rssRow = ["peak RSS (MiB)"];
  for (const s of servers) rssRow.push(fmtNum(rss[s.id]), "");
  for (const _ of ringServers) if (servers.some((x) => x.id === "nginx")) rssRow.push("");
  body.push(rssRow);

  console.log(
    `ringhttpd load, ${machine.date}: ${machine.nproc} CPUs (${machine.cpu}), deno ${machine.deno}, ` +
      `commit ${machine.commit}, ${machine.nginx}, ${machine.wrk.split(" [")[0]}`,
  );
  if (rows.length > 0) {
    console.log(
      `${cfg.workers} workers each; wrk -t ${cfg.threads} -c ${cfg.connections} -d ${cfg.durationS}s ` +
        `--latency (after a ${cfg.warmupS} s warm-up) on 127.0.0.1; req/s unless noted`,
    );
    console.log("");
    console.log(table(header, body));
  }
  const broken = servers.filter((s) => s.broken);
  const notes = rows.filter((r) => (r.error && !broken.some((s) => s.id === r.server)) || r.errors);
  if (notes.length + broken.length > 0) console.log("");
  for (const s of broken) console.log(`${s.label}: ${s.broken}`);
  for (const r of notes) {
    console.log(
      `${r.scenario} on ${r.server}: ${
        r.error ?? `${r.errors} socket errors or non-2xx responses (!)`
      }`,
    );
  }
  if (balance.length > 0) {
    console.log("");
    console.log("balance: 4 keep-alive connections, 2 workers, requests per worker");
    for (const b of balance) {
      console.log(
        `  ${b.server}: ${
          b.requestsPerWorker
            ? `${b.requestsPerWorker.join(" / ")} requests (spread ${b.spreadPct!.toFixed(0)} %)` +
              (b.connectionsPerWorker
                ? `, ${b.connectionsPerWorker.join(" / ")} connections (wrk's probe included)`
                : "")
            : `n/a: ${b.note}`
        }`,
      );
    }
  }
  if (auth !== undefined) {
    console.log("");
    const { plain, basic } = auth;
    console.log(
      "auth: 1 KiB keep-alive, ring mode, same Authorization header on both: " +
        (plain && basic
          ? `${basic.reqPerSec.toFixed(0)} req/s with Basic auth, ${
            plain.reqPerSec.toFixed(0)
          } without (${(basic.reqPerSec / plain.reqPerSec).toFixed(2)}x); p99 ${
            basic.p99Ms.toFixed(2)
          } / ${plain.p99Ms.toFixed(2)} ms; non-2xx ${basic.errors} / ${plain.errors}`
          : `n/a: ${auth.note}`),
    );
  }
  if (mixed) {
    console.log("");
    console.log(
      `mixed load (issue #5), ${cfg.workers} workers: wrk -t ${cfg.threads} -c ${MIXED_WRK_CONNECTIONS} ` +
        `-d ${cfg.mixedDurationS}s --latency on ${FILE_1K} alone, then with the listing client ` +
        `(after a ${cfg.warmupS} s warm-up); req/s` +
        (cfg.mixedRounds > 1 ? `; ${cfg.mixedRounds} rounds, medians` : ""),
    );
    console.log("");
    console.log(mixedReport(mixedRows, cfg));
  }
  if (h2Rows.length > 0) {
    console.log("");
    console.log(
      `HTTPS and HTTP/2 (#18), ${cfg.workers} workers / h2o threads, same P-256 certificate: ` +
        `h2load -t ${cfg.threads} -D ${cfg.durationS} (after a ${cfg.warmupS} s warm-up)`,
    );
    console.log("");
    console.log(h2Table(h2Rows));
  }
}

/**
 * Reads a /proc file. Deno asks for --allow-all to read /proc directly, so this
 * goes through `cat` under the --allow-run the benchmark needs anyway.
 */
async function readProc(path: string): Promise<string> {
  try {
    const out = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
      .output();
    return dec.decode(out.stdout);
  } catch {
    return "";
  }
}

/** VmHWM of `pid` (and, for nginx, of its worker children), in MiB. */
async function peakRssMiB(pid: number, withChildren: boolean): Promise<number | undefined> {
  const hwm = async (p: number) => {
    const kb = (await readProc(`/proc/${p}/status`)).match(/^VmHWM:\s+(\d+) kB/m)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  };
  let total = await hwm(pid);
  if (total === undefined || !withChildren) return total;
  const ps = await new Deno.Command("ps", {
    args: ["-o", "pid=", "--ppid", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => undefined);
  for (const child of dec.decode(ps?.stdout ?? new Uint8Array()).trim().split(/\s+/)) {
    if (/^\d+$/.test(child)) total += (await hwm(Number(child))) ?? 0;
  }
  return total;
}

if (import.meta.main) {
  const cfg = parseConfig(Deno.args);
  const tmp = await Deno.makeTempDir({ prefix: "ringhttpd-load-" });
  const cleanup = async () => {
    await stopAll();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  };
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) Deno.exit(130);
    interrupted = true;
    log("interrupted: stopping servers");
    cleanup().finally(() => Deno.exit(130));
  };
  // A stray rejection must not end the process with servers left running.
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    log(`unexpected error: ${e.reason?.stack ?? e.reason}`);
    cleanup().finally(() => Deno.exit(1));
  });
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await runBench(cfg, tmp);
  } finally {
    await cleanup();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}
