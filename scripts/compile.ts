/**
 * `deno task compile`: `deno compile` of the server into `dist/ringhttpd`,
 * with a one-line answer when Deno cannot get its `denort` runtime (it
 * downloads one on first use; offline, or behind a firewall, that fails with
 * a raw network error) and no empty `dist/` left behind: the binary is built
 * in a temporary folder and moved into `dist/` only when it is complete.
 *
 * Usage: `deno task compile [-o FILE]` (default `dist/ringhttpd`).
 *
 * @module
 */

const REPO = new URL("../", import.meta.url);

/**
 * `deno compile` flags: the permissions and the unstable feature baked into
 * the binary, and the Worker entry files (compile does not find those itself).
 */
export const COMPILE_FLAGS: readonly string[] = [
  "--v8-flags=--max-semi-space-size=2",
  "--unstable-net",
  "--allow-net",
  "--allow-read",
  "--allow-ffi",
  "--allow-sys=hostname,networkInterfaces",
  "--include",
  "workers/worker.ts",
  "--include",
  "workers/acceptor.ts",
  "--include",
  "workers/pool.ts",
  "--include",
  "auth/_verify_worker.ts",
  "--include",
  "workers/_index_thread.ts",
];
/** The program compiled. */
export const ENTRY = "mod.ts";

/**
 * The line to print when `deno compile` failed for want of its runtime, or
 * undefined when its output shows another failure.
 *
 * @param output what `deno compile` printed
 * @returns one line saying why and what to do
 *
 * @example
 * ```ts
 * import { runtimeProblem } from "./compile.ts";
 * console.assert(runtimeProblem("error: Setting up base binary.\n dns error") !== undefined);
 * console.assert(runtimeProblem("error: Module not found") === undefined);
 * ```
 */
export function runtimeProblem(output: string): string | undefined {
  if (!/Setting up base binary|denort/i.test(output)) return undefined;
  const url = output.match(/https?:\/\/\S*denort\S*?\.zip/)?.[0];
  const cause = output.match(
    /(dns error|Connection refused|timed out|certificate|404 Not Found|tunnel error[^\n]*)/i,
  )?.[1];
  return `compile: deno could not download its runtime (denort${url ? ` from ${url}` : ""}` +
    `${cause ? `: ${cause}` : ""}); set DENORT_BIN to a denort binary of Deno ` +
    `${Deno.version.deno} for this platform and run again, e.g. ` +
    `DENORT_BIN=/path/to/denort deno task compile`;
}

async function main(args: string[]): Promise<number> {
  let output = "dist/ringhttpd";
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "-o" && args[i + 1] !== undefined) output = args[++i];
    else if (args[i].startsWith("-o=")) output = args[i].slice(3);
    else {
      console.error(
        `compile: unknown argument ${JSON.stringify(args[i])}; usage: deno task compile [-o FILE]`,
      );
      return 2;
    }
  }
  const target = new URL(output, REPO).pathname;
  const tmp = await Deno.makeTempDir({ prefix: "ringhttpd_compile_" });
  try {
    const built = `${tmp}/ringhttpd`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["compile", ...COMPILE_FLAGS, "-o", built, ENTRY],
      cwd: REPO.pathname,
      stdout: "inherit",
      stderr: "piped",
    }).spawn();
    const { code, stderr } = await child.output();
    const text = new TextDecoder().decode(stderr);
    if (code !== 0) {
      const problem = runtimeProblem(text);
      if (problem !== undefined) console.error(problem);
      else await Deno.stderr.write(stderr);
      return code || 1;
    }
    await Deno.stderr.write(stderr);
    await Deno.mkdir(new URL(".", `file://${target}`).pathname, { recursive: true });
    await Deno.copyFile(built, target);
    await Deno.chmod(target, 0o755);
    console.error(`compile: wrote ${output}`);
    return 0;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
