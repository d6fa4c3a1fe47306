/**
 * What the access log costs: two ringhttpd servers on the same fixture, one
 * plain and one with `--access-log FILE`, loaded with `wrk` in alternation
 * (off, on, off, on, ...) so that background load hits both arms alike.
 * Prints per round req/s and server CPU per request (utime + stime of the
 * server process from /proc, which is steadier than req/s on a busy
 * machine), then the medians and the on/off ratios.
 *
 * ```sh
 * deno run -A bench/access_log_cost.ts [--rounds=6] [--duration=3] [--log=/dev/null] [--accept=ring]
 * ```
 *
 * @module
 */

import { startCli } from "../tests/_harness.ts";

function arg(name: string, fallback: string): string {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? fallback : a.slice(name.length + 3);
}

const rounds = Number(arg("rounds", "6"));
const duration = Number(arg("duration", "3"));
const logFile = arg("log", "/dev/null");
const accept = arg("accept", "ring");

async function text(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return new TextDecoder().decode(out.stdout);
}

/** utime + stime of `pid` in seconds (through `cat`: Deno wants --allow-all for /proc). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await text("cat", [`/proc/${pid}/stat`]);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ = 100 on Linux
}

/**
 * The CLI as `deno task serve` runs it; write access to the log granted up
 * front, so the server is this very process (no re-exec) and its CPU counts.
 */
function start(root: string, extra: string[]) {
  return startCli([root, "--workers", "2", `--accept=${accept}`, ...extra], {
    extraPerms: [`--allow-write=${logFile}`],
  });
}

async function wrk(port: number): Promise<number> {
  const out = await text("wrk", [
    "-t2",
    "-c64",
    `-d${duration}s`,
    `http://127.0.0.1:${port}/1k.bin`,
  ]);
  const m = out.match(/Requests\/sec:\s+([\d.]+)/);
  if (!m) throw new Error(`wrk said:\n${out}`);
  return Number(m[1]);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const root = await Deno.makeTempDir();
await Deno.writeFile(`${root}/1k.bin`, new Uint8Array(1024).fill(97));
const off = await start(root, []);
const on = await start(root, ["--access-log", logFile]);
const results = {
  off: { rps: [] as number[], cpu: [] as number[] },
  on: { rps: [] as number[], cpu: [] as number[] },
};
try {
  console.log(
    `ringhttpd --accept=${accept}, 2 workers, wrk -t2 -c64 ${duration}s on /1k.bin; log: ${logFile}`,
  );
  console.log(`load before: ${(await text("uptime", [])).trim()}`);
  for (let r = 0; r < rounds; r++) {
    // Alternate which arm goes first, so drift in background load cancels out.
    const order = r % 2 === 0 ? (["off", "on"] as const) : (["on", "off"] as const);
    for (const arm of order) {
      const s = arm === "off" ? off : on;
      const c0 = await cpuSeconds(s.pid);
      const rps = await wrk(s.port);
      const c1 = await cpuSeconds(s.pid);
      const cpuUs = ((c1 - c0) * 1e6) / (rps * duration);
      results[arm].rps.push(rps);
      results[arm].cpu.push(cpuUs);
      console.log(
        `round ${r + 1} ${arm.padEnd(3)} ${rps.toFixed(0).padStart(7)} req/s  ${
          cpuUs.toFixed(2)
        } us CPU/req`,
      );
    }
  }
  const rOff = median(results.off.rps), rOn = median(results.on.rps);
  const cOff = median(results.off.cpu), cOn = median(results.on.cpu);
  console.log(`median off: ${rOff.toFixed(0)} req/s, ${cOff.toFixed(2)} us CPU/req`);
  console.log(`median on:  ${rOn.toFixed(0)} req/s, ${cOn.toFixed(2)} us CPU/req`);
  console.log(
    `on/off: throughput ${(rOn / rOff).toFixed(3)}, CPU per request ${(cOn / cOff).toFixed(3)}; ` +
      `per-round throughput ratios ${
        results.on.rps.map((v, i) => (v / results.off.rps[i]).toFixed(2)).join(" ")
      }`,
  );
  console.log(`load after: ${(await text("uptime", [])).trim()}`);
} finally {
  for (const s of [off, on]) await s.stop();
  await Deno.remove(root, { recursive: true });
}
