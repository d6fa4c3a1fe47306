/**
 * How the command-line server stops: one Ctrl-C drains, always.
 *
 * - A terminal sends SIGINT to the whole process group, and each wrapper on
 *   the way (`npx`, `deno task`) forwards it again, so one key press arrives
 *   two or three times within milliseconds. Signals within
 *   {@linkcode DUPLICATE_WINDOW_MS} of the first count as that first one; a
 *   signal after that is a deliberate second one and exits at once.
 * - Killing a wrapper (`kill -TERM` of npx, `kill -9` of `deno task`) does not
 *   signal us. So we watch our parent and the leader of our process group
 *   (the job a shell or a test runner started) and drain, as on SIGTERM, when
 *   one is gone. A process that leads its own group (setsid, a shell with job
 *   control running `deno run` directly) watches only its parent; one whose
 *   parent is init (systemd, a container) watches nothing.
 *
 * @module
 */
import { tryLibc } from "../sys/libc.ts";

/** Signals closer together than this are one delivery (the wrappers' copies). */
export const DUPLICATE_WINDOW_MS = 1000;
/** How often the wrappers are checked. */
export const PARENT_POLL_MS = 500;

/** What the lifecycle needs of the running server. */
export interface Stoppable {
  /** Graceful stop. */
  shutdown(graceMs: number): Promise<void>;
  /** Counters for SIGUSR2. */
  stats(): unknown;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** `getpgrp()` and `getpgid(pid)` from libc, where FFI is allowed (Linux); else undefined. */
function processGroups(): { own: number; of(pid: number): number } | undefined {
  const lib = tryLibc();
  if (lib === null) return undefined;
  return { own: lib.getpgrp(), of: (pid) => lib.getpgid(pid) };
}

/**
 * Calls `onGone` once when a wrapper that started us exits: our parent (we
 * are re-parented: `deno task` killed), or the leader of our process group
 * (the job a terminal or a test runner started: `npx`, whose `deno task`
 * child lives on when it is killed). Deno reads `/proc/PID` only with
 * `--allow-all`, so the leader is asked for through libc's `getpgid`, which
 * fails once that process is gone. Not watched: a group we lead ourselves.
 *
 * @returns a function that stops the watch
 */
export function watchWrappers(onGone: (pid: number) => void): () => void {
  const parent = Deno.ppid;
  const groups = processGroups();
  const leader = groups && groups.own !== Deno.pid && groups.of(groups.own) === groups.own
    ? groups.own
    : undefined;
  if (parent <= 1 && leader === undefined) return () => {};
  const timer = setInterval(() => {
    let gone: number | undefined;
    if (parent > 1 && Deno.ppid !== parent) gone = parent;
    else if (leader !== undefined && groups!.of(leader) !== leader) gone = leader;
    if (gone !== undefined) {
      clearInterval(timer);
      onGone(gone);
    }
  }, PARENT_POLL_MS);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/**
 * Runs until the server has stopped: the first SIGINT/SIGTERM (or a wrapper
 * gone) starts a graceful shutdown; duplicates within the window are ignored;
 * a later signal exits at once (130 for SIGINT, 143 for SIGTERM). SIGUSR2
 * prints `ringhttpd stats {json}` to stderr. With `reloadAuth` (credentials
 * configured), SIGHUP re-reads the auth and token files and says what it
 * loaded, or why it kept the old ones; without, SIGHUP keeps its default.
 *
 * @param server the running server
 * @param graceMs how long in-flight requests may take
 * @param reloadAuth re-reads the credentials (the cluster's `reloadAuth`)
 * @returns the exit code: 0 after a clean shutdown, 1 when it failed
 */
export function runUntilStopped(
  server: Stoppable,
  graceMs: number,
  reloadAuth?: () => Promise<
    { ok: true; users: number; tokens: number } | { ok: false; reason: string }
  >,
): Promise<number> {
  const { promise, resolve } = Promise.withResolvers<number>();
  const listeners: Array<[Deno.Signal, () => void]> = [];
  let stoppingSince = -1;
  const stop = (why: string): void => {
    stoppingSince = performance.now();
    console.error(
      `ringhttpd: ${why}, finishing in-flight requests (up to ${graceMs / 1000} s; ` +
        `Ctrl-C again to exit now)`,
    );
    server.shutdown(graceMs).then(
      () => resolve(0),
      (e) => {
        console.error(`ringhttpd: shutdown failed: ${errorMessage(e)}`);
        resolve(1);
      },
    );
  };
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    listeners.push([signal, () => {
      if (stoppingSince < 0) return stop(signal);
      // The same key press, forwarded by a wrapper: already being handled.
      if (performance.now() - stoppingSince < DUPLICATE_WINDOW_MS) return;
      console.error(`ringhttpd: second ${signal}, exiting now`);
      Deno.exit(code);
    }]);
  }
  // Not SIGUSR1: since 2.9.2 Deno answers it by opening the inspector on 127.0.0.1:9229.
  listeners.push(["SIGUSR2", () => {
    let json: string;
    try {
      json = JSON.stringify(server.stats(), (_, v) => typeof v === "bigint" ? Number(v) : v);
    } catch (e) {
      json = JSON.stringify({ error: errorMessage(e) });
    }
    console.error(`ringhttpd stats ${json}`);
  }]);
  if (reloadAuth !== undefined) {
    listeners.push(["SIGHUP", () => {
      reloadAuth().then(
        (r) =>
          console.error(
            r.ok
              ? `ringhttpd: SIGHUP: credentials reloaded (${r.users} users, ${r.tokens} tokens)`
              : `ringhttpd: SIGHUP: credentials not reloaded: ${r.reason}`,
          ),
        (e) => console.error(`ringhttpd: SIGHUP: credentials not reloaded: ${errorMessage(e)}`),
      );
    }]);
  }
  for (const [signal, fn] of listeners) Deno.addSignalListener(signal, fn);
  const unwatch = watchWrappers((pid) => {
    if (stoppingSince < 0) stop(`the process that started this server (pid ${pid}) is gone`);
  });
  return promise.finally(() => {
    unwatch();
    for (const [signal, fn] of listeners) Deno.removeSignalListener(signal, fn);
  });
}
