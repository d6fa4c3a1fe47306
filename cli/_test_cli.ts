/**
 * Test helpers for the CLI suites (cli_test.ts, cli/*_test.ts): start the
 * real CLI through mod.ts with the permissions of `deno task serve` (read
 * from deno.json, so the task is tested too), or any command, and read its
 * output line by line.
 *
 * @module
 */

/** The repository root. */
export const REPO: URL = new URL("../", import.meta.url);
const denoJson = JSON.parse(await Deno.readTextFile(new URL("deno.json", REPO)));
/** `deno task serve` minus `deno` and the entry: e.g. ["run", "--allow-net", ...]. */
export const serveTask: string[] = denoJson.tasks.serve.split(/\s+/).filter((w: string) =>
  w !== "deno" && w !== "mod.ts"
);

/** Spawn options of {@linkcode cli}. */
export interface CliOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment. */
  env?: Record<string, string>;
  /** stdout: piped (default) or null. */
  stdout?: "piped" | "null";
}

/** The CLI as `deno task serve` runs it, in a child process. */
export function cli(args: string[], o: CliOptions = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [...serveTask, new URL("mod.ts", REPO).pathname, ...args],
    cwd: o.cwd,
    stdin: "null",
    stdout: o.stdout ?? "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...o.env },
  }).spawn();
}

/** Runs the CLI to completion. Never leaves it running. */
export async function run(
  args: string[],
  o: CliOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = cli(args, o);
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

/** Collects a stream's lines; `waitFor` resolves on the first line (past or future) matching. */
export class Lines {
  readonly lines: string[] = [];
  readonly done: Promise<void>;
  #waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  #ended = Promise.withResolvers<never>();

  constructor(stream: ReadableStream<Uint8Array>) {
    let partial = "";
    this.done = stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({
        write: (chunk) => {
          const parts = (partial + chunk).split("\n");
          partial = parts.pop()!;
          for (const line of parts) this.#add(line);
        },
      }),
    ).catch(() => {}).finally(() => {
      if (partial) this.#add(partial);
      this.#ended.reject(new Error(`stream ended; lines:\n${this.lines.join("\n")}`));
    });
    this.#ended.promise.catch(() => {});
  }

  #add(line: string): void {
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((w) => {
      const m = line.match(w.re);
      if (m) w.resolve(m);
      return !m;
    });
  }

  /** The first line matching `re`, waiting for it if needed; rejects if the stream ends first. */
  waitFor(re: RegExp): Promise<RegExpMatchArray> {
    for (const line of this.lines) {
      const m = line.match(re);
      if (m) return Promise.resolve(m);
    }
    const { promise, resolve } = Promise.withResolvers<RegExpMatchArray>();
    this.#waiters.push({ re, resolve });
    return Promise.race([promise, this.#ended.promise]);
  }
}

/** The CLI started on a free port; disposing it kills it and waits for its exit. */
// deno-lint-ignore explicit-module-boundary-types
export async function startCli(root: string, extra: string[], o: CliOptions = {}) {
  // An empty root: none on the command line.
  const child = cli([...(root ? [root] : []), "--host", "127.0.0.1", "-p", "0", ...extra], o);
  const stdout = new Lines(child.stdout);
  const stderr = new Lines(child.stderr);
  const dispose = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
    await Promise.all([stdout.done, stderr.done]);
  };
  try {
    const m = await stdout.waitFor(
      /^Listening on http:\/\/127\.0\.0\.1:(\d+)\/ \((\d+) workers?, (ring|reuseport) mode\)$/,
    );
    return {
      child,
      stdout,
      stderr,
      port: Number(m[1]),
      workers: Number(m[2]),
      mode: m[3],
      [Symbol.asyncDispose]: dispose,
    };
  } catch (e) {
    await dispose();
    throw new Error(`no Listening line: ${e}\nstderr:\n${stderr.lines.join("\n")}`);
  }
}
