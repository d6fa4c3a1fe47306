/**
 * How the command-line server stops: one Ctrl-C drains, always.
 *
 * - A terminal sends SIGINT to the whole process group, and each wrapper on
 *   the way (`npx`, `deno task`) forwards it again, so one key press arrives
 *   two or three times within milliseconds. Signals within
 *   {@linkcode DUPLICATE_WINDOW_MS} of the first count as that first one; a
 *   signal after that is a deliberate second one and exits at once.
 * - Killing a wrapper (`kill -TERM` of npx, `kill -9` of `deno task`) does not
 *   signal us. So we watch the wrappers that started us, the ancestors in our
 *   own process group (a shell's job, or the test runner), and drain when one
 *   is gone, as on SIGTERM. A process started in a group of its own (setsid,
 *   systemd, a shell with job control running `deno run` directly) watches
 *   nothing and outlives its parent as before (nohup keeps working).
 *
 * @module
 */

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

interface ProcStat {
  ppid: number;
  pgrp: number;
  /** Start time in clock ticks since boot: tells a live process from a reused pid. */
  start: string;
}

/** Fields of /proc/PID/stat, or undefined when it cannot be read (gone, not Linux, no permission). */
function procStat(pid: number): ProcStat | undefined {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name is in parentheses and may hold spaces: fields start after the last ")".
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), pgrp: Number(f[2]), start: f[19] };
  } catch {
    return undefined;
  }
}

/**
 * The ancestors to watch: those in our process group, nearest first.
 *
 * @returns pid and start time of each; empty when there are none or /proc is unreadable
 */
export function wrapperChain(): Array<{ pid: number; start: string }> {
  const me = procStat(Deno.pid);
  if (me === undefined) return [];
  const chain: Array<{ pid: number; start: string }> = [];
  for (let pid = me.ppid; pid > 1 && chain.length < 16;) {
    const st = procStat(pid);
    if (st === undefined || st.pgrp !== me.pgrp) break;
    chain.push({ pid, start: st.start });
    pid = st.ppid;
  }
  return chain;
}

/**
 * Calls `onGone` once when a watched wrapper exits. Where /proc cannot be read,
 * falls back to noticing that our parent changed (we were re-parented).
 *
 * @returns a function that stops the watch
 */
export function watchWrappers(onGone: (pid: number) => void): () => void {
  const chain = wrapperChain();
  const firstParent = Deno.ppid;
  const procWorks = procStat(Deno.pid) !== undefined;
  if (procWorks && chain.length === 0) return () => {};
  const timer = setInterval(() => {
    let gone: number | undefined;
    if (procWorks) gone = chain.find((w) => procStat(w.pid)?.start !== w.start)?.pid;
    else if (firstParent > 1 && Deno.ppid !== firstParent) gone = firstParent;
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
 * prints `ringhttpd stats {json}` to stderr.
 *
 * @param server the running server
 * @param graceMs how long in-flight requests may take
 * @returns the exit code: 0 after a clean shutdown, 1 when it failed
 */
export function runUntilStopped(server: Stoppable, graceMs: number): Promise<number> {
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
  for (const [signal, fn] of listeners) Deno.addSignalListener(signal, fn);
  const unwatch = watchWrappers((pid) => {
    if (stoppingSince < 0) stop(`the process that started this server (pid ${pid}) is gone`);
  });
  return promise.finally(() => {
    unwatch();
    for (const [signal, fn] of listeners) Deno.removeSignalListener(signal, fn);
  });
}
