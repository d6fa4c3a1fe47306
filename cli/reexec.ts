/**
 * Write access for the access log only, decided per run. Deno's permissions
 * are fixed at start, and the server needs write access to nothing but the
 * `--access-log` file. So `deno task serve` grants no write at all, only
 * `--allow-run`; the CLI then either
 *
 * - gives the run permission up (`Deno.permissions.revokeSync`) before any
 *   thread starts, when no log file needs writing: the server runs with no
 *   write and no run access; or
 * - starts itself again with the task's own permissions (read from
 *   deno.json, minus `--allow-run`) plus `--allow-write=FILE`, and waits for
 *   that child, forwarding signals and handing back its exit code.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

const REPO = new URL("../", import.meta.url);
/** Set in the child so that it never starts itself a third time. */
const REEXEC_ENV = "RINGHTTPD_REEXEC";

/** Whether `path` may be written (created, appended) already. */
export function writeGranted(path: string): boolean {
  return Deno.permissions.querySync({ name: "write", path }).state === "granted";
}

/** Whether this process may start itself again (the task's `--allow-run`, not yet a child). */
export function canReexec(): boolean {
  if (REPO.protocol !== "file:") return false; // a compiled binary: permissions are baked in
  try {
    if (Deno.permissions.querySync({ name: "env", variable: REEXEC_ENV }).state === "granted") {
      if (Deno.env.get(REEXEC_ENV) === "1") return false;
    }
  } catch { /* no env access: not a child we started */ }
  return Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state ===
    "granted";
}

/** Gives up the run permission: nothing the server does starts a process. */
export function dropRun(): void {
  if (Deno.permissions.querySync({ name: "run" }).state === "granted") {
    Deno.permissions.revokeSync({ name: "run" });
  }
}

/** `deno run` flags of `deno task serve`, from deno.json, without `--allow-run`. */
export function serveTaskFlags(): string[] {
  const words = String(denoJson.tasks.serve).trim().split(/\s+/);
  const run = words.indexOf("run");
  return words.slice(run + 1, -1).filter((w) => !/^--allow-run(=|$)/.test(w));
}

/**
 * Runs the CLI again in a child with `--allow-write=FILE` added, and waits.
 *
 * @param logFile the absolute path(s) to grant: the access log, the root when uploads are on
 * @param args the original arguments
 * @returns the child's exit code (128 + signal number when killed)
 */
export async function reexecWithWrite(
  logFile: string | string[],
  args: string[],
): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--config=${new URL("deno.json", REPO).pathname}`,
      ...serveTaskFlags(),
      `--allow-write=${[logFile].flat().join(",")}`,
      new URL("mod.ts", REPO).pathname,
      ...args,
    ],
    env: { [REEXEC_ENV]: "1" },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  // Forwarded: a signal sent to this process alone (kill PID) must reach the
  // server; a terminal's copy to the whole group arrives twice, which the
  // server counts once.
  const forwards: Array<[Deno.Signal, () => void]> =
    (["SIGINT", "SIGTERM", "SIGUSR2", "SIGHUP"] as const)
      .map((s) => [s, () => {
        try {
          child.kill(s);
        } catch { /* already gone */ }
      }]);
  for (const [s, fn] of forwards) Deno.addSignalListener(s, fn);
  try {
    const status = await child.status;
    return status.signal === null ? status.code : 128 + signalNumber(status.signal);
  } finally {
    for (const [s, fn] of forwards) Deno.removeSignalListener(s, fn);
  }
}

function signalNumber(s: Deno.Signal): number {
  return ({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[s] ?? 1;
}
