/**
 * The older entry point of the test harness, kept for the suites that still
 * import it (tests/stress_test.ts, tests/cors_test.ts): `startServer()` is
 * {@linkcode startCli} with a root and flags. New suites use tests/_harness.ts.
 *
 * Private to `tests/`.
 *
 * @module
 */
import { type ServerProcess, startCli } from "./_harness.ts";

export { countFds, readProc, readRss } from "./_harness.ts";

/** A running CLI server (see tests/_harness.ts). */
export type TestServer = ServerProcess;

/** How to start the server. */
export interface StartOptions {
  /** Directory to serve. */
  root: string;
  /** Extra CLI flags, e.g. `["--header-timeout", "3"]`. */
  flags?: string[];
  /** Start under `bash -c 'ulimit -n N; exec deno ...'`. */
  ulimitNoFile?: number;
  /** A command to run deno under, e.g. `tests/_unprivileged.ts`'s `setpriv ...`. */
  prefix?: string[];
  /** How long to wait for the `Listening` line. @default 60000 */
  readyTimeoutMs?: number;
}

/**
 * Starts the CLI on ROOT, 127.0.0.1 and a free port, with FLAGS.
 *
 * @param options root, flags, optional fd limit
 * @returns the running server; dispose it with `await using`
 */
export function startServer(options: StartOptions): Promise<TestServer> {
  const { root, flags = [], ...spawn } = options;
  return startCli([root, ...flags], spawn);
}
