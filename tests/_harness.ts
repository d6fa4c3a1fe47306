/**
 * Test harness for servers in a subprocess: the real CLI (`mod.ts`, with the
 * permissions of `deno task serve`) or `serve()` through the cluster entry
 * (`workers/_cluster_entry.ts`, JSON options, commands on stdin). Either way
 * it waits for the one `Listening on URL (N workers, MODE mode)` line, keeps
 * every stdout and stderr line ({@linkcode Lines}: wait for a line matching a
 * pattern or a predicate), and stops the process whatever the test did:
 * SIGTERM, then SIGKILL if it has not exited in time (`await using`).
 *
 * Private to the test suites.
 *
 * @example Start the CLI, fetch, stop
 * ```ts ignore
 * await using server = await startCli([root, "--workers", "2"]);
 * const res = await fetch(server.url("/a.txt"));
 * await server.stderr.waitFor(/^ringhttpd: /);
 * ```
 *
 * @module
 */

/** The repository root. */
export const REPO: URL = new URL("../", import.meta.url);
/** The CLI entry; `RINGHTTPD_MOD` points the suites at another build. */
export const MOD: string = Deno.env.get("RINGHTTPD_MOD") ?? new URL("mod.ts", REPO).pathname;
/** `serve()` in a process of its own, for tests (workers/_cluster_entry.ts). */
export const CLUSTER_ENTRY: string = new URL("workers/_cluster_entry.ts", REPO).pathname;
/** The repository's deno.json. */
export const CONFIG: string = new URL("deno.json", REPO).pathname;
/** The loopback address test servers listen on. */
export const HOST = "127.0.0.1";

const denoJson = JSON.parse(await Deno.readTextFile(CONFIG));
/** `deno task serve` minus `deno` and the entry: `["run", "--allow-net", ...]`. */
export const serveTask: string[] = String(denoJson.tasks.serve).trim().split(/\s+/).filter((
  w: string,
) => w !== "deno" && w !== "mod.ts");

/**
 * The first line a server prints, the same from the CLI and the cluster entry:
 * `Listening on http(s)://HOST:PORT/ (N workers, MODE mode)`; newer lines
 * (`Serving /abs/root`, `Local:`, `Network:`) follow it.
 */
export const LISTENING: RegExp =
  /^Listening on (https?):\/\/(\[[^\]]+\]|[^\s/:]+):(\d+)\/ \((\d+) workers?, (\w+) mode\)$/;

/** Ways connections reach the workers, as `--accept` names them. */
export const ACCEPT_MODES = ["ring", "reuseport"] as const;

/**
 * The server-mode matrix for `serve()` options: every way connections reach
 * the workers and the bytes leave them.
 */
export const CLUSTER_MODES: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
  ["ring", { accept: "ring" }],
  ["reuseport", { accept: "reuseport" }],
];

/** What the Listening line says. */
export interface Listening {
  scheme: "http" | "https";
  /** Host to connect to: `0.0.0.0` and `localhost` mapped to 127.0.0.1, brackets dropped. */
  hostname: string;
  port: number;
  workers: number;
  mode: string;
}

/**
 * Parses a Listening line.
 *
 * @param line one line of stdout
 * @returns its parts, or undefined when it is not the Listening line
 */
export function parseListening(line: string): Listening | undefined {
  const m = line.match(LISTENING);
  if (!m) return undefined;
  let host = m[2];
  if (host === "0.0.0.0" || host === "localhost") host = HOST;
  if (host.startsWith("[")) host = host.slice(1, -1);
  return {
    scheme: m[1] as "http" | "https",
    hostname: host,
    port: Number(m[3]),
    workers: Number(m[4]),
    mode: m[5],
  };
}

/** Options of {@linkcode Lines.waitFor}. */
export interface WaitOptions {
  /** Give up after this long. @default 60000 */
  timeoutMs?: number;
  /** Only lines numbered from here on (see {@linkcode Lines.count}). @default 0 */
  from?: number;
}

/** Text kept per stream at most; older lines are dropped first. */
const KEEP_CHARS = 16 * 1024 * 1024;

/**
 * A stream's lines, collected as they arrive; {@linkcode Lines.waitFor}
 * resolves on the first line (past or future) matching a pattern or a
 * predicate, and rejects when the stream ends or the time is up.
 */
export class Lines {
  /** The lines kept (all, unless more than 16 MiB came: then the last ones). */
  readonly lines: string[] = [];
  /** Resolves when the stream has ended. */
  readonly done: Promise<void>;
  #first = 0;
  #chars = 0;
  #partial = "";
  #ended = false;
  #wakers: Array<() => void> = [];

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write: (chunk) => {
          const parts = (this.#partial + chunk).split("\n");
          this.#partial = parts.pop()!;
          for (const line of parts) this.#add(line);
          this.#wake();
        },
      }),
    ).catch(() => {}).finally(() => {
      if (this.#partial) this.#add(this.#partial);
      this.#partial = "";
      this.#ended = true;
      this.#wake();
    });
  }

  /** How many lines have arrived so far (kept or dropped): a mark for `from`. */
  get count(): number {
    return this.#first + this.lines.length;
  }

  /** Everything kept, as it was written (newlines included). */
  get text(): string {
    const whole = this.lines.length === 0 ? "" : this.lines.join("\n") + "\n";
    return whole + this.#partial;
  }

  /** Whether the stream has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  #add(line: string): void {
    this.lines.push(line);
    this.#chars += line.length + 1;
    while (this.#chars > KEEP_CHARS && this.lines.length > 1) {
      this.#chars -= this.lines.shift()!.length + 1;
      this.#first++;
    }
  }

  #wake(): void {
    for (const w of this.#wakers.splice(0)) w();
  }

  /** The first line numbered `from` or later that matches, or undefined. */
  #find<T>(test: (line: string) => T | undefined, from: number): T | undefined {
    for (let i = Math.max(0, from - this.#first); i < this.lines.length; i++) {
      const found = test(this.lines[i]);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Waits for the first line matching `re`; gives its match. */
  waitFor(re: RegExp, options?: WaitOptions): Promise<RegExpMatchArray>;
  /** Waits for the first line for which `predicate` holds; gives the line. */
  waitFor(predicate: (line: string) => boolean, options?: WaitOptions): Promise<string>;
  waitFor(
    what: RegExp | ((line: string) => boolean),
    options: WaitOptions = {},
  ): Promise<RegExpMatchArray | string> {
    const test: (l: string) => RegExpMatchArray | string | undefined = typeof what === "function"
      ? (l) => what(l) ? l : undefined
      : (l) => l.match(what) ?? undefined;
    return this.#poll(
      () => this.#find(test, options.from ?? 0),
      `a line matching ${what}`,
      options,
    );
  }

  /**
   * Waits until `check` holds for the lines kept (e.g. "8 log lines").
   *
   * @param what what is awaited, for the error message
   * @param check called with the lines kept, each time more arrive
   * @param options timeout
   * @returns the lines kept at that moment
   */
  until(
    what: string,
    check: (lines: readonly string[]) => boolean,
    options: Pick<WaitOptions, "timeoutMs"> = {},
  ): Promise<readonly string[]> {
    return this.#poll(() => check(this.lines) ? this.lines : undefined, what, options);
  }

  async #poll<T>(probe: () => T | undefined, what: string, options: WaitOptions): Promise<T> {
    const deadline = performance.now() + (options.timeoutMs ?? 60_000);
    for (;;) {
      const found = probe();
      if (found !== undefined) return found;
      const left = deadline - performance.now();
      if (this.#ended || left <= 0) {
        const why = this.#ended ? "the stream ended" : "timed out";
        throw new Error(`${why} before ${what}; lines:\n${this.tail()}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#wakers.push(r);
        timer = setTimeout(r, left);
      });
      clearTimeout(timer);
    }
  }

  /** The last `chars` characters kept, for an assertion message. */
  tail(chars = 8000): string {
    return this.text.slice(-chars);
  }
}

/** How to run a server process. */
export interface SpawnOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment (`NO_COLOR=1` is always set). */
  env?: Record<string, string>;
  /** A command to run the server under, e.g. `tests/_unprivileged.ts`'s `setpriv ...`. */
  prefix?: string[];
  /** Start under `bash -c 'ulimit -n N; exec ...'`. */
  ulimitNoFile?: number;
  /** stdin: piped (for {@linkcode ServerProcess.command}) or null. @default "null" */
  stdin?: "piped" | "null";
  /**
   * The process leads a process group of its own (started under `setsid`):
   * signals go to the whole group.
   */
  group?: boolean;
  /** How long to wait for the Listening line. @default 60000 */
  readyTimeoutMs?: number;
  /** How long {@linkcode ServerProcess.stop} waits after SIGTERM before SIGKILL. @default 10000 */
  stopTimeoutMs?: number;
}

/** A running server subprocess; dispose it to stop it. */
export class ServerProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  /** What its Listening line said. */
  readonly listening: Listening;
  /** The Listening line itself. */
  readonly banner: string;
  readonly stdout: Lines;
  readonly stderr: Lines;
  /** Both pipes closed: every process that held them has exited. */
  readonly closed: Promise<unknown>;
  readonly #group: boolean;
  readonly #stopTimeoutMs: number;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #exited: Deno.CommandStatus | undefined;

  constructor(
    child: Deno.ChildProcess,
    stdout: Lines,
    stderr: Lines,
    banner: string,
    options: SpawnOptions,
  ) {
    this.child = child;
    this.stdout = stdout;
    this.stderr = stderr;
    this.banner = banner;
    this.listening = parseListening(banner)!;
    this.closed = Promise.all([stdout.done, stderr.done]);
    this.#group = options.group ?? false;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
    this.#stdin = options.stdin === "piped" ? child.stdin.getWriter() : undefined;
    child.status.then((s) => this.#exited = s);
  }

  /** PID of the process started (under `bash` or `setsid`: that process, which execs). */
  get pid(): number {
    return this.child.pid;
  }

  /** Host to connect to. */
  get hostname(): string {
    return this.listening.hostname;
  }

  /** The real port the server reported. */
  get port(): number {
    return this.listening.port;
  }

  /** Number of HTTP workers the server reported. */
  get workers(): number {
    return this.listening.workers;
  }

  /** `ring` or `reuseport`. */
  get mode(): string {
    return this.listening.mode;
  }

  /** `http://host:port` without a trailing slash. */
  get origin(): string {
    return `${this.listening.scheme}://${this.hostname}:${this.port}`;
  }

  /**
   * A URL on this server.
   *
   * @param path absolute path, e.g. `/a.txt`
   * @param host host to name instead of the listening one (e.g. `localhost` for TLS)
   * @returns the URL
   */
  url(path: string, host: string = this.hostname): string {
    return `${this.listening.scheme}://${host}:${this.port}${path}`;
  }

  /** The exit status once the process has exited, else undefined. */
  get exited(): Deno.CommandStatus | undefined {
    return this.#exited;
  }

  /** Resolves when the process exits. */
  get status(): Promise<Deno.CommandStatus> {
    return this.child.status;
  }

  /** Sends a signal (to the group with `group`); ignores a process that is gone. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      if (this.#group) Deno.kill(-this.child.pid, signal);
      else this.child.kill(signal);
    } catch {
      // already exited
    }
  }

  /** Writes one command line to the server's stdin (the cluster entry's test hooks). */
  async command(line: string): Promise<void> {
    if (!this.#stdin) throw new Error("the server was started without a piped stdin");
    await this.#stdin.write(new TextEncoder().encode(line + "\n"));
  }

  /**
   * The server's stats: the cluster entry's `stats` command (one JSON line on
   * stdout), or the CLI's SIGUSR2 (`ringhttpd stats {json}` on stderr;
   * SIGUSR1 would open Deno's inspector).
   *
   * @param timeoutMs how long to wait for the answer
   * @returns the parsed object, or undefined if none arrives in time
   */
  async stats(timeoutMs = 10_000): Promise<Record<string, unknown> | undefined> {
    const lines = this.#stdin ? this.stdout : this.stderr;
    const from = lines.count;
    if (this.#stdin) await this.command("stats");
    else this.kill("SIGUSR2");
    try {
      const m = await lines.waitFor(/^(?:ringhttpd stats )?(\{.*\})\s*$/, { from, timeoutMs });
      return JSON.parse(m[1]);
    } catch {
      return undefined;
    }
  }

  /** Sum of `restarts` over the workers in `stats()`, or undefined. */
  async restarts(): Promise<number | undefined> {
    const s = await this.stats();
    const workers = s?.workers;
    if (!Array.isArray(workers)) return undefined;
    return workers.reduce((n, w) => n + Number((w as { restarts?: number }).restarts ?? 0), 0);
  }

  /** Resident set size of the server process in bytes (from /proc). */
  rss(): number {
    return readRss(this.pid);
  }

  /** Text for an assertion message: the process state and the tail of stderr. */
  diagnosis(): string {
    const st = this.#exited ? ` exited with ${JSON.stringify(this.#exited)}` : " still running";
    return `server pid ${this.pid}${st}; stderr tail:\n${this.stderr.tail(4000)}`;
  }

  /**
   * Stops the server: `signal`, then SIGKILL if it has not exited within the
   * stop timeout; waits for the exit and for both pipes.
   *
   * @param signal the first signal
   * @returns the exit status
   */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    if (!this.#exited) this.kill(signal);
    // The pipes too: under `deno task` or a wrapper, the server itself may outlive the child.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = await Promise.race([
      Promise.all([this.child.status, this.closed]).then(() => false),
      new Promise<boolean>((r) => timer = setTimeout(() => r(true), this.#stopTimeoutMs)),
    ]);
    clearTimeout(timer);
    if (late) {
      console.error(
        `harness: pid ${this.pid} still running ${this.#stopTimeoutMs} ms after ${signal}: SIGKILL`,
      );
      this.kill("SIGKILL");
    }
    const status = await this.child.status;
    await this.#stdin?.close().catch(() => {});
    await this.closed;
    return status;
  }

  /** {@linkcode ServerProcess.stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Starts `cmd args` and resolves once it printed its Listening line on
 * stdout. Rejects (and kills it) if it exits first or stays silent.
 *
 * @param cmd the program
 * @param args its arguments
 * @param options environment, stdin, limits, timeouts
 * @returns the running server; dispose it with `await using`
 */
export async function spawnServer(
  cmd: string,
  args: string[],
  options: SpawnOptions = {},
): Promise<ServerProcess> {
  [cmd, ...args] = [...(options.prefix ?? []), cmd, ...args];
  if (options.ulimitNoFile !== undefined) {
    [cmd, ...args] = [
      "bash",
      "-c",
      `ulimit -n ${options.ulimitNoFile} && exec "$0" "$@"`,
      cmd,
      ...args,
    ];
  }
  if (options.group) [cmd, ...args] = ["setsid", cmd, ...args];
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    clearEnv: true,
    env: childEnv(options.env),
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Lines(child.stdout);
  const stderr = new Lines(child.stderr);
  try {
    const m = await stdout.waitFor(LISTENING, { timeoutMs: options.readyTimeoutMs ?? 60_000 });
    return new ServerProcess(child, stdout, stderr, m[0], options);
  } catch (e) {
    try {
      if (options.group) Deno.kill(-child.pid, "SIGKILL");
      else child.kill("SIGKILL");
    } catch {
      // gone
    }
    const status = await child.status;
    if (options.stdin === "piped") await child.stdin.close().catch(() => {});
    await Promise.all([stdout.done, stderr.done]);
    throw new Error(
      `no Listening line (${JSON.stringify(status)}): ${
        (e as Error).message
      }\nstderr:\n${stderr.tail()}`,
    );
  }
}

/** Options of {@linkcode startCli}. */
export interface CliOptions extends SpawnOptions {
  /** Permission flags added to those of `deno task serve`, e.g. `--allow-write=LOG`. */
  extraPerms?: string[];
  /** Leave out the `--host 127.0.0.1 --port 0` the harness puts first. */
  anyAddress?: boolean;
}

/**
 * The CLI as `deno task serve` runs it, on 127.0.0.1 and a free port:
 * `deno run PERMS mod.ts --host 127.0.0.1 --port 0 ARGS`.
 *
 * @param args the root and flags (later flags override the harness's)
 * @param options spawn options and extra permissions
 * @returns the running server
 */
export function startCli(args: string[], options: CliOptions = {}): Promise<ServerProcess> {
  const listen = options.anyAddress ? [] : ["--host", HOST, "--port", "0"];
  return spawnServer(
    Deno.execPath(),
    [...serveTask, ...(options.extraPerms ?? []), MOD, ...listen, ...args],
    options,
  );
}

/** Options of {@linkcode startCluster}. */
export interface ClusterOptions extends SpawnOptions {
  /** `deno run` permission flags. @default net to 127.0.0.1, read, ffi */
  perms?: string[];
}

/**
 * `serve()` through the cluster entry, on 127.0.0.1 and a free port, with 2
 * workers unless `serveOptions` says otherwise; stdin is piped for the
 * entry's commands (`stats`, `crash N`, `crash-acceptor`).
 *
 * @param serveOptions `serve()` options (JSON), `root` among them
 * @param options spawn options and permissions
 * @returns the running server
 */
export function startCluster(
  serveOptions: Record<string, unknown>,
  options: ClusterOptions = {},
): Promise<ServerProcess> {
  const perms = options.perms ?? [`--allow-net=${HOST}`, "--allow-read", "--allow-ffi"];
  return spawnServer(Deno.execPath(), [
    "run",
    "--config",
    CONFIG,
    "--unstable-net",
    ...perms,
    CLUSTER_ENTRY,
    JSON.stringify({ hostname: HOST, port: 0, workers: 2, ...serveOptions }),
  ], { stdin: "piped", ...options });
}

/**
 * A child's environment: ours less `INIT_CWD`, plus NO_COLOR and `extra`.
 * `deno task` keeps an INIT_CWD it inherits, so one from the `deno task test`
 * around us would move a server's relative root; a test is a user's shell.
 */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.INIT_CWD;
  return { ...env, NO_COLOR: "1", ...extra };
}

/** Runs the CLI to completion (as `deno task serve` does); never leaves it running. */
export async function runCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...serveTask, MOD, ...args],
    cwd: options.cwd,
    clearEnv: true,
    env: childEnv(options.env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const { code, stdout, stderr } = await child.output();
    const dec = new TextDecoder();
    return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  }
}

/**
 * Reads a /proc file. Deno wants --allow-all for /proc paths, and the test
 * tasks grant explicit permissions only, so this asks `cat` (--allow-run).
 *
 * @param path e.g. `/proc/123/status`
 * @returns the text, or undefined when unreadable
 */
export function readProc(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    // NotCapable without --allow-all: fall through to cat.
  }
  try {
    const out = new Deno.Command("cat", { args: [path], stderr: "null" }).outputSync();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}

/** Reads VmRSS of `pid` in bytes; 0 when the process is gone. */
export function readRss(pid: number): number {
  const m = readProc(`/proc/${pid}/status`)?.match(/^VmRSS:\s+(\d+)\s+kB/m);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Number of open fds of `pid` (`ls`, for the same reason as readProc); -1 when unreadable. */
export function countFds(pid: number): number {
  try {
    const out = new Deno.Command("ls", { args: [`/proc/${pid}/fd`], stderr: "null" }).outputSync();
    if (!out.success) return -1;
    return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l !== "").length;
  } catch {
    return -1;
  }
}
