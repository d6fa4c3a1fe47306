/**
 * Search at scale: a generated tree of `--names` names (default 1,000,000:
 * 1,000 folders of 1,000 empty files, made once under `.bench/`), the real
 * server on it (2 workers), then:
 *
 * 1. index time: from the spawn to the log's `search index ready` line (and
 *    the time that line states), the shared bytes it states, and the
 *    server's RSS before the walk ended vs. once ready;
 * 2. small-file p99 alone (`wrk -c8 --latency`, `--seconds`);
 * 3. the same with 8 keep-alive clients searching (`?q=` of a random
 *    file-number fragment, JSON) beside it: the query p50/p99 and the
 *    small-file p99 again (the issue asks <= 2x);
 * 4. rename -> visible in results: p50/max over 20 renames.
 *
 * ```sh
 * deno run -A bench/search.ts [--names 1000000] [--seconds 10]
 * ```
 *
 * @module
 */
import { readRss, startCli } from "../tests/_harness.ts";
import { KeepAlive } from "./invalidation.ts";

function flag(name: string, def: number): number {
  const i = Deno.args.indexOf(name);
  return i < 0 ? def : Number(Deno.args[i + 1]);
}
const NAMES = flag("--names", 1_000_000);
const SECONDS = flag("--seconds", 10);
const PER_DIR = 1000;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? NaN;
}

/** The tree, made once per size (names: folders + files). */
function makeTree(): string {
  const root = new URL(`../.bench/search-${NAMES}/`, import.meta.url).pathname.slice(0, -1);
  try {
    if (Deno.statSync(`${root}/done`).isFile) return root;
  } catch {
    // not made yet
  }
  const t0 = performance.now();
  const dirs = Math.max(1, Math.round(NAMES / (PER_DIR + 1)));
  const empty = new Uint8Array(0);
  for (let d = 0; d < dirs; d++) {
    Deno.mkdirSync(`${root}/d${d}`, { recursive: true });
    for (let f = 0; f < PER_DIR; f++) Deno.writeFileSync(`${root}/d${d}/file-${d}-${f}.txt`, empty);
  }
  Deno.writeFileSync(`${root}/small.txt`, new Uint8Array(1024).fill(97));
  Deno.writeFileSync(`${root}/done`, empty);
  console.log(
    `tree: ${dirs * (PER_DIR + 1)} names made in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  return root;
}

async function wrk(port: number): Promise<number> {
  const out = await new Deno.Command("wrk", {
    args: ["-t2", "-c8", `-d${SECONDS}s`, "--latency", `http://127.0.0.1:${port}/small.txt`],
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = text.match(/^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m);
  if (!m) throw new Error(`wrk output without a 99% line:\n${text}`);
  return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
}

const root = makeTree();
const t0 = performance.now();
await using server = await startCli([root, "--workers", "2", "--host", "127.0.0.1"]);
const rssListening = readRss(server.pid);
const ready = await Promise.any(
  [server.stdout, server.stderr].map((l) =>
    l.waitFor(/search index ready: (\d+) names in ([\d.]+) s, ([\d.]+) MiB shared/, {
      timeoutMs: 600_000,
    })
  ),
);
const indexMs = performance.now() - t0;
await new Promise((r) => setTimeout(r, 500)); // let the walk's garbage go before reading RSS
const rssReady = readRss(server.pid);
console.log(
  `index: ${ready[1]} names, ready ${(indexMs / 1000).toFixed(1)} s after spawn ` +
    `(walk ${ready[2]} s), ${ready[3]} MiB shared; RSS ${rssListening >> 20} MiB at ` +
    `Listening -> ${rssReady >> 20} MiB ready`,
);
const port = server.port;
const alone = await wrk(port);
console.log(`small file p99 alone: ${alone.toFixed(2)} ms`);

const lat: number[] = [];
let stop = false;
const dirs = Math.max(1, Math.round(NAMES / (PER_DIR + 1)));
const clients = await Promise.all(Array.from({ length: 8 }, () => KeepAlive.open(port)));
const searching = clients.map(async (c, i) => {
  let seed = i + 1;
  while (!stop) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const q = `file-${seed % dirs}-${seed % PER_DIR}.`;
    const s = performance.now();
    const r = await c.get(`/?q=${encodeURIComponent(q)}&format=json`);
    lat.push(performance.now() - s);
    if (r.status !== 200) throw new Error(`search answered ${r.status}`);
  }
});
const beside = await wrk(port);
stop = true;
await Promise.all(searching);
console.log(
  `beside ${lat.length} searches: query p50 ${pct(lat, 0.5).toFixed(1)} ms, p99 ${
    pct(lat, 0.99).toFixed(1)
  } ms; small file p99 ${beside.toFixed(2)} ms (${(beside / alone).toFixed(2)}x alone)`,
);

const seen: number[] = [];
const probe = clients[0];
for (let i = 0; i < 20; i++) {
  const from = `${root}/d0/file-0-${i}.txt`, to = `${root}/d0/renamed-${i}-zq.txt`;
  Deno.renameSync(from, to);
  const s = performance.now();
  for (;;) {
    const r = await probe.get(`/?q=renamed-${i}-zq&format=json`);
    if (new TextDecoder().decode(r.body).includes("renamed")) break;
    if (performance.now() - s > 10_000) throw new Error("rename not seen in 10 s");
  }
  seen.push(performance.now() - s);
  Deno.renameSync(to, from);
}
console.log(
  `rename visible: p50 ${pct(seen, 0.5).toFixed(0)} ms, max ${Math.max(...seen).toFixed(0)} ms`,
);
for (const c of clients) c.close();
