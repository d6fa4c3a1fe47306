/**
 * Worker replacement under load (issue 6: "replacement within 1 s"): starts
 * the cluster's test entry (`workers/_cluster_entry.ts`) in a subprocess,
 * keeps it busy with client loops (a fresh connection per request), crashes
 * worker slots in turn and measures, per crash, the time from the crash
 * command until `stats()` shows the slot alive again with one more restart.
 * The supervisor's own "replaced in" log line splits that time in phases.
 *
 * Slots are crashed alternately, each slot at most every `--gap-ms` x workers,
 * so with the defaults no crash counts as a crash loop (no backoff).
 *
 * ```sh
 * deno run -A bench/crash_restart.ts [--crashes 12] [--workers 2] [--clients 4] [--gap-ms 5500] [--accept ring]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { startCluster } from "../tests/_harness.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    crashes: { type: "string", default: "12" },
    workers: { type: "string", default: "2" },
    clients: { type: "string", default: "4" },
    "gap-ms": { type: "string", default: "5500" },
    accept: { type: "string", default: "ring" },
  },
});
const CRASHES = Number(values.crashes);
const WORKERS = Number(values.workers);
const CLIENTS = Number(values.clients);
const GAP_MS = Number(values["gap-ms"]);

const enc = new TextEncoder();
const root = await Deno.makeTempDir();
await Deno.writeTextFile(`${root}/hello.txt`, "hello\n");
const server = await startCluster({ root, workers: WORKERS, accept: values.accept }, {
  perms: ["--allow-net", "--allow-read", "--allow-ffi", "--allow-sys=hostname"],
});
async function stats(): Promise<{ workers: Array<{ alive: boolean; restarts: number }> }> {
  const s = await server.stats();
  if (!s) throw new Error(`no stats\n${server.diagnosis()}`);
  return s as { workers: Array<{ alive: boolean; restarts: number }> };
}

const port = server.port;
const request = enc.encode("GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
let running = true;
let ok = 0;
let failed = 0;
const loops = Array.from({ length: CLIENTS }, async () => {
  const buf = new Uint8Array(4096);
  while (running) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await c.write(request);
        const n = await c.read(buf);
        if (n !== null && buf[9] === 0x32) ok++;
        else failed++;
      } finally {
        c.close();
      }
    } catch {
      failed++;
    }
  }
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const times: number[] = [];
try {
  await sleep(1000);
  for (let k = 0; k < CRASHES; k++) {
    const i = k % WORKERS;
    const before = (await stats()).workers[i].restarts;
    const t0 = performance.now();
    await server.command(`crash ${i}`);
    while (performance.now() - t0 < 10_000) {
      const w = (await stats()).workers[i];
      if (w.alive && w.restarts > before) break;
      await sleep(5);
    }
    times.push(performance.now() - t0);
    await sleep(Math.max(0, GAP_MS - (performance.now() - t0)));
  }
} finally {
  running = false;
  await Promise.all(loops);
  await server.stop("SIGKILL");
  await Deno.remove(root, { recursive: true });
}
const sorted = [...times].sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
console.log(JSON.stringify({
  crashes: times.length,
  p50ms: Math.round(pct(0.5)),
  maxMs: Math.round(sorted[sorted.length - 1]),
  ms: times.map(Math.round),
  ok,
  failed,
}));
// The supervisor's own account of each replacement, in phases.
for (const line of server.stderr.lines) {
  if (line.includes("replaced in")) console.log(`  ${line.replace(/^.*replaced in /, "")}`);
}
