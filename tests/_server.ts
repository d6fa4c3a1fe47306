/**
 * Test helper: runs the real ringhttpd CLI (`mod.ts`) in a subprocess on port
 * 0, waits for its `Listening on http://HOST:PORT/ ...` line, and always kills
 * it (`await using server = await startServer(...)`). Stderr is kept (last
 * 64 KiB) so a failing test can show what the server said.
 *
 * Private to `tests/`.
 *
 * @module
 */

/** The CLI entry; `RINGHTTPD_MOD` points the suites at another build. */
const MOD = Deno.env.get("RINGHTTPD_MOD") ?? new URL("../mod.ts", import.meta.url).pathname;
const LISTENING = /Listening on http:\/\/(\[[^\]]+\]|[^\s/:]+):(\d+)\//;
const STDERR_KEEP = 64 * 1024;

/** How to start the server. */
export interface StartOptions {
  /** Directory to serve. */
  root: string;
  /** Extra CLI flags, e.g. `["--header-timeout", "3"]`. `--port 0` is added. */
  flags?: string[];
  /** Start under `bash -c 'ulimit -n N; exec deno ...'`. */
  ulimitNoFile?: number;
  /** A command to run deno under, e.g. `tests/_unprivileged.ts`'s `setpriv ...`. */
  prefix?: string[];
  /** How long to wait for the `Listening` line. @default 30000 */
  readyTimeoutMs?: number;
}

/** A running server subprocess. Dispose it to kill it. */
export class TestServer implements AsyncDisposable {
  /** Host to connect to (the listening host, `0.0.0.0` mapped to 127.0.0.1). */
  readonly hostname: string;
  /** The real port the server reported. */
  readonly port: number;
  /** The full `Listening ...` line. */
  readonly banner: string;
  readonly #child: Deno.ChildProcess;
  readonly #stderr: Sink;
  readonly #stdout: Sink;
  #exited: Deno.CommandStatus | undefined;
  readonly #drains: Promise<unknown>[];

  constructor(
    child: Deno.ChildProcess,
    hostname: string,
    port: number,
    banner: string,
    stderr: Sink,
    stdout: Sink,
    drains: Promise<unknown>[],
  ) {
    this.#child = child;
    this.hostname = hostname;
    this.port = port;
    this.banner = banner;
    this.#stderr = stderr;
    this.#stdout = stdout;
    this.#drains = drains;
    child.status.then((s) => this.#exited = s);
  }

  /** PID of the server process (the `deno` process itself, also under bash). */
  get pid(): number {
    return this.#child.pid;
  }

  /** `http://host:port` without a trailing slash. */
  get origin(): string {
    return `http://${this.hostname}:${this.port}`;
  }

  /** Last 64 KiB the server wrote to stderr. */
  get stderr(): string {
    return this.#stderr.text;
  }

  /** Last 64 KiB the server wrote to stdout. */
  get stdout(): string {
    return this.#stdout.text;
  }

  /** The exit status once the process has exited, else undefined. */
  get exited(): Deno.CommandStatus | undefined {
    return this.#exited;
  }

  /** Resolves when the process exits. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#child.status;
  }

  /** Sends a signal; ignores a process that is already gone. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.#child.kill(signal);
    } catch {
      // already exited
    }
  }

  /**
   * Asks for `ringhttpd stats {json}` on stderr (SIGUSR2; SIGUSR1 would open Deno's inspector) and returns the
   * parsed object, or undefined if none arrives within `timeoutMs`.
   */
  async stats(timeoutMs = 3000): Promise<Record<string, unknown> | undefined> {
    const before = this.#stderr.total;
    this.kill("SIGUSR2");
    const end = performance.now() + timeoutMs;
    while (performance.now() < end) {
      const fresh = this.#stderr.text.slice(
        Math.max(0, this.#stderr.text.length - (this.#stderr.total - before)),
      );
      const m = fresh.match(/ringhttpd stats (\{.*\})\s*$/m);
      if (m) {
        try {
          return JSON.parse(m[1]);
        } catch {
          return undefined;
        }
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((r) => this.#stderr.waiters.push(r)),
        new Promise((r) => timer = setTimeout(r, Math.max(0, end - performance.now()))),
      ]);
      clearTimeout(timer);
    }
    return undefined;
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

  /** Text for an assertion message: banner and the tail of stderr. */
  diagnosis(): string {
    const st = this.#exited ? ` exited with ${JSON.stringify(this.#exited)}` : " still running";
    return `server pid ${this.pid}${st}; stderr tail:\n${this.#stderr.text.slice(-4000)}`;
  }

  /** SIGTERM, then SIGKILL after 5 s; waits for exit and the pipes. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      this.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = await Promise.race([
        this.#child.status.then(() => false),
        new Promise<boolean>((r) => timer = setTimeout(() => r(true), 5000)),
      ]);
      clearTimeout(timer);
      if (killed) this.kill("SIGKILL");
    }
    await this.#child.status;
    await Promise.allSettled(this.#drains);
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

/** Number of open fds of `pid`; -1 when unreadable. */
export function countFds(pid: number): number {
  try {
    const out = new Deno.Command("ls", { args: [`/proc/${pid}/fd`], stderr: "null" }).outputSync();
    if (!out.success) return -1;
    return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l !== "").length;
  } catch {
    return -1;
  }
}

/** Text kept from a pipe: the tail, the total length seen, and waiters for more. */
interface Sink {
  text: string;
  total: number;
  waiters: Array<() => void>;
}

function sink(): Sink {
  return { text: "", total: 0, waiters: [] };
}

async function drain(
  stream: ReadableStream<Uint8Array>,
  sink: Sink,
  onText?: (all: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    const text = decoder.decode(chunk, { stream: true });
    sink.text += text;
    sink.total += text.length;
    if (sink.text.length > 2 * STDERR_KEEP) sink.text = sink.text.slice(-STDERR_KEEP);
    onText?.(sink.text);
    for (const w of sink.waiters.splice(0)) w();
  }
}

/**
 * Starts `deno run ... mod.ts ROOT --port 0 FLAGS` and resolves once it prints
 * its `Listening` line. Rejects (and kills it) if it exits or stays silent.
 *
 * @param options root, flags, optional fd limit
 * @returns the running server; dispose it with `await using`
 */
export async function startServer(options: StartOptions): Promise<TestServer> {
  const denoArgs = [
    "run",
    // As `deno task serve` and the compiled binary run it.
    "--v8-flags=--max-semi-space-size=2",
    "--allow-net",
    "--allow-read",
    "--allow-ffi",
    "--allow-sys=hostname",
    MOD,
    options.root,
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    ...(options.flags ?? []),
  ];
  const [deno, ...pre] = [...(options.prefix ?? []), Deno.execPath()];
  const cmd = options.ulimitNoFile === undefined
    ? new Deno.Command(deno, {
      args: [...pre, ...denoArgs],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    })
    : new Deno.Command("bash", {
      args: [
        "-c",
        `ulimit -n ${options.ulimitNoFile} && exec "$0" "$@"`,
        deno,
        ...pre,
        ...denoArgs,
      ],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    });
  const child = cmd.spawn();
  const stderr = sink();
  const stdout = sink();
  let onBanner: (line: string) => void = () => {};
  const banner = new Promise<string>((r) => onBanner = r);
  const drains = [
    drain(child.stdout, stdout, (all) => {
      const line = all.split("\n").find((l) => LISTENING.test(l));
      if (line) onBanner(line);
    }),
    drain(child.stderr, stderr),
  ];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    banner,
    child.status.then((s) => new Error(`server exited before listening: ${JSON.stringify(s)}`)),
    new Promise<Error>((r) =>
      timer = setTimeout(
        () => r(new Error("server did not print its Listening line in time")),
        options.readyTimeoutMs ?? 30_000,
      )
    ),
  ]);
  clearTimeout(timer);
  if (outcome instanceof Error) {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    await child.status;
    await Promise.allSettled(drains);
    throw new Error(`${outcome.message}\nstdout:\n${stdout.text}\nstderr:\n${stderr.text}`);
  }
  const m = outcome.match(LISTENING)!;
  let host = m[1];
  if (host === "0.0.0.0" || host === "localhost") host = "127.0.0.1";
  if (host.startsWith("[")) host = host.slice(1, -1);
  return new TestServer(child, host, Number(m[2]), outcome.trim(), stderr, stdout, drains);
}
