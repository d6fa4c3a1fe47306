/**
 * Soak benchmark (not a test): does steady load make the server grow?
 *
 * Starts the real CLI (`mod.ts`, the permissions of `deno task serve`) on a
 * fixture in a temp dir (`small.txt` 1 KiB, `dir1k/` with 1,000 entries,
 * `medium.bin` 1 MiB), runs `wrk -c32` for N minutes with a script that
 * cycles through the three URLs, and samples the server's RSS (all threads:
 * one process) every 10 s. Prints one line a minute and, at the end, RSS at
 * minute 1, at the end, and the growth between them; exit 1 if a request
 * failed or the server died.
 *
 * ```sh
 * deno run -A bench/soak.ts [--minutes 10] [--workers 2] [--connections 32] [-- SERVER FLAGS...]
 * ```
 *
 * Needs `wrk` (Debian package `wrk`). Everything it starts is stopped, and the
 * temp dir removed, also on Ctrl-C.
 *
 * @module
 */
import { parseArgs } from "node:util";

const MOD = new URL("../mod.ts", import.meta.url).pathname;
const HERE = new URL("../", import.meta.url);
const LISTENING = /Listening on (http:\/\/[^/\s]+\/)/;
const SAMPLE_MS = 10_000;

/** The permission flags of `deno task serve`, so the soak runs what users run. */
async function servePermissions(): Promise<string[]> {
  const deno = JSON.parse(await Deno.readTextFile(new URL("deno.json", HERE)));
  return String(deno.tasks.serve).split(/\s+/).filter((w) => w !== "deno" && w !== "mod.ts");
}

function rssMiB(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function makeRoot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "ringhttpd-soak-" });
  await Deno.writeFile(`${root}/small.txt`, new Uint8Array(1024).fill(0x61));
  const medium = new Uint8Array(1 << 20);
  for (let i = 0; i < medium.length; i++) medium[i] = (i * 2654435761) >>> 24;
  await Deno.writeFile(`${root}/medium.bin`, medium);
  await Deno.mkdir(`${root}/dir1k`);
  for (let i = 0; i < 1000; i++) {
    await Deno.writeTextFile(`${root}/dir1k/file-${String(i).padStart(4, "0")}.txt`, `${i}\n`);
  }
  return root;
}

const WRK_SCRIPT = `
local paths = { "/small.txt", "/dir1k/", "/medium.bin" }
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SOAK requests=%d errors=%d,%d,%d,%d,%d\\n",
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
end
`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      minutes: { type: "string", default: "10" },
      workers: { type: "string", default: "2" },
      connections: { type: "string", default: "32" },
    },
    allowPositionals: true,
  });
  const minutes = Number(values.minutes);
  const root = await makeRoot();
  const script = `${root}.lua`;
  await Deno.writeTextFile(script, WRK_SCRIPT);
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      ...(await servePermissions()),
      MOD,
      root,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--workers",
      values.workers!,
      ...positionals,
    ],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  let wrk: Deno.ChildProcess | undefined;
  const stop = () => {
    for (const p of [wrk, server]) {
      try {
        p?.kill("SIGKILL");
      } catch {
        // gone
      }
    }
  };
  Deno.addSignalListener("SIGINT", stop);
  try {
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    let base = "";
    while (!base) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`server exited before listening:\n${out}`);
      out += value;
      base = out.match(LISTENING)?.[1] ?? "";
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    (async () => {
      while (!(await reader.read()).done) { /* discard */ }
    })();
    const seconds = Math.round(minutes * 60);
    console.log(
      `soak: ${base} pid ${server.pid}, wrk -c${values.connections} for ${minutes} min, ` +
        `deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs, ` +
        `load ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
    );
    const started = performance.now();
    console.log(`t=0s rss=${rssMiB(server.pid).toFixed(1)} MiB (idle, before load)`);
    wrk = new Deno.Command("wrk", {
      args: [
        "-t2",
        `-c${values.connections}`,
        `-d${seconds}s`,
        "--timeout",
        "10s",
        "-s",
        script,
        base,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const wrkOut = wrk.output();
    const samples: Array<[number, number]> = [];
    let atMinute1 = NaN;
    while (performance.now() - started < seconds * 1000) {
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
      const t = (performance.now() - started) / 1000;
      const rss = rssMiB(server.pid);
      if (rss === 0) throw new Error("the server died");
      samples.push([t, rss]);
      if (Number.isNaN(atMinute1) && t >= 60) atMinute1 = rss;
      if (Math.round(t) % 60 < SAMPLE_MS / 1000) {
        console.log(`t=${Math.round(t)}s rss=${rss.toFixed(1)} MiB`);
      }
    }
    const result = await wrkOut;
    const text = new TextDecoder().decode(result.stdout);
    const end = samples.at(-1)?.[1] ?? NaN;
    const line = text.match(/^SOAK .*$/m)?.[0] ?? "SOAK (no summary)";
    const rps = text.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? "?";
    const half = samples.filter(([t]) => t >= seconds / 2);
    const slope = half.length >= 2
      ? (half.at(-1)![1] - half[0][1]) / ((half.at(-1)![0] - half[0][0]) / 60)
      : NaN;
    console.log(line + ` req/s=${rps}`);
    console.log(
      `RSS minute 1: ${atMinute1.toFixed(1)} MiB; end (${minutes} min): ${end.toFixed(1)} MiB; ` +
        `growth ${(end - atMinute1).toFixed(1)} MiB; second half ${slope.toFixed(2)} MiB/min; ` +
        `max ${Math.max(...samples.map(([, r]) => r)).toFixed(1)} MiB`,
    );
    const errors = line.match(/errors=(\d+),(\d+),(\d+),(\d+),(\d+)/);
    const failed = !errors || errors.slice(1).some((n) => n !== "0");
    return failed ? 1 : 0;
  } finally {
    stop();
    await server.status;
    await wrk?.status;
    Deno.removeSignalListener("SIGINT", stop);
    await Deno.remove(root, { recursive: true });
    await Deno.remove(script).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main());
