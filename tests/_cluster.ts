/**
 * Test helper: `serve()` in a subprocess through workers/_cluster_entry.ts
 * (JSON options, Listening line on stdout), stopped with SIGTERM and awaited
 * whatever the test did.
 *
 * @module
 */

const ENTRY = new URL("../workers/_cluster_entry.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;
/** The loopback address every cluster test server listens on. */
export const HOST = "127.0.0.1";
const dec = new TextDecoder();

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
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      CONFIG,
      "--unstable-net",
      `--allow-net=${HOST}`,
      "--allow-read",
      "--allow-ffi",
      ENTRY,
      JSON.stringify({ root, hostname: HOST, port: 0, workers: 2, ...options }),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const errDone = (async () => {
    for await (const c of proc.stderr) stderr += dec.decode(c, { stream: true });
  })();
  const reader = proc.stdout.getReader();
  try {
    let out = "";
    let port = 0;
    while (port === 0) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`server exited before listening:\n${stderr}`);
      out += dec.decode(value, { stream: true });
      const m = out.match(/^Listening on http:\/\/[^:]+:(\d+)\//m);
      if (m) port = Number(m[1]);
    }
    await fn({ port, pid: proc.pid });
  } finally {
    try {
      proc.kill("SIGTERM");
    } catch {
      // already gone
    }
    await proc.status;
    await reader.cancel().catch(() => {});
    await proc.stdin.close().catch(() => {});
    await errDone;
  }
}
