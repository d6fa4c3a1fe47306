/** Helpers shared by the auth tests: temp dirs, Debian's htpasswd, a subprocess runner. */

/**
 * Runs `fn` with a fresh temp dir, removed afterwards.
 *
 * @param fn the test body
 */
export async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ringhttpd_auth_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Runs Debian's `htpasswd` (apache2-utils) with `args`.
 *
 * @param args its arguments
 * @returns its stdout
 */
export async function htpasswd(...args: string[]): Promise<string> {
  const out = await new Deno.Command("htpasswd", { args, stdin: "null" }).output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`htpasswd ${args.join(" ")} failed: ${err}`);
  return new TextDecoder().decode(out.stdout);
}

/**
 * Runs a Deno script in a subprocess with a time bound.
 *
 * @param args `deno` arguments
 * @param stdin bytes for stdin
 * @param timeoutMs killed after this long
 * @returns exit code (-1: killed on timeout), stdout, stderr
 */
export async function deno(
  args: string[],
  stdin?: string,
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return {
    code: killed ? -1 : out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/** The lock file the test task uses (tests import npm packages deno.lock does not pin). */
export const LOCK = new URL("../tests.lock", import.meta.url).pathname;
