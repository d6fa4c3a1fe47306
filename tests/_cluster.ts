/**
 * The older entry point of the test harness for `serve()` in a subprocess,
 * kept for the callers that still import it (workers/cluster_test.ts's
 * neighbours: tests/stress_test.ts, bench/invalidation.ts, bench/load_test.ts):
 * `withCluster()` is {@linkcode startCluster} around a callback. New suites
 * use tests/_harness.ts.
 *
 * @module
 */
import { startCluster } from "./_harness.ts";

export { HOST } from "./_harness.ts";

/** A running test server: its port and process id. */
export interface ClusterProcess {
  port: number;
  pid: number;
}

/**
 * Runs the cluster over `root` with `options` (2 workers unless given) until
 * `fn` returns; then SIGTERM, and waits for the process to exit.
 */
export async function withCluster(
  root: string,
  options: Record<string, unknown>,
  fn: (server: ClusterProcess) => Promise<void>,
): Promise<void> {
  await using server = await startCluster({ root, ...options });
  await fn({ port: server.port, pid: server.pid });
}
