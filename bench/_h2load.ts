/**
 * The HTTPS / HTTP/2 scenarios of `deno task load` (issue #18): ringhttpd
 * with `--cert/--key` next to h2o (Debian package `h2o`: same thread count,
 * same certificate), both loaded by h2load (Debian `nghttp2-client`):
 *
 * - `h2-1k`: HTTP/2, 1 KiB file, 8 connections x 8 streams;
 * - `h2-10m`: HTTP/2, 10 MiB file, 4 connections (MiB/s);
 * - `h1s-1k`: HTTPS HTTP/1.1 (`h2load --h1`), 1 KiB file, 64 connections.
 *
 * Each server is smoke-checked over h2 first (the 1 KiB file must come back
 * whole, `:status` 200). Private to `bench/load.ts`.
 *
 * @module
 */

const MOD_TS = new URL("../mod.ts", import.meta.url).pathname;

/** One measured cell. */
export interface H2Row {
  scenario: string;
  server: string;
  unit: "req/s" | "MiB/s";
  value?: number;
  errors?: number;
  error?: string;
}

/** What the scenarios need from the load run. */
export interface H2LoadOptions {
  /** The fixture root (`/1k.bin`, `/10m.bin`). */
  root: string;
  /** Scratch dir (certificate, h2o config). */
  tmp: string;
  workers: number;
  threads: number;
  durationS: number;
  warmupS: number;
  log(s: string): void;
  /** Processes started, for the caller's cleanup on a signal. */
  track(child: Deno.ChildProcess): void;
}

/** Scenario id -> h2load arguments (before the URL) and path. */
export const H2_SCENARIOS: ReadonlyArray<
  { id: string; label: string; args: string[]; path: string; throughput: boolean }
> = [
  {
    id: "h2-1k",
    label: "HTTP/2 1 KiB, 8 conns x 8 streams",
    args: ["-c", "8", "-m", "8"],
    path: "/1k.bin",
    throughput: false,
  },
  {
    id: "h2-10m",
    label: "HTTP/2 10 MiB, 4 conns",
    args: ["-c", "4", "-m", "1"],
    path: "/10m.bin",
    throughput: true,
  },
  {
    id: "h1s-1k",
    label: "HTTPS HTTP/1.1 1 KiB, 64 conns",
    args: ["--h1", "-c", "64"],
    path: "/1k.bin",
    throughput: false,
  },
];

async function which(name: string): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", `command -v ${name}`],
      stdout: "piped",
    })
      .output();
    const p = new TextDecoder().decode(out.stdout).trim();
    return out.success && p !== "" ? p : undefined;
  } catch {
    return undefined;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitPort(port: number, child: Deno.ChildProcess, ms = 60_000): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const end = Date.now() + ms;
  while (Date.now() < end && !exited) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(exited ? "exited before listening" : `port ${port} not open after ${ms} ms`);
}

/**
 * Parses h2load's summary.
 *
 * @param text h2load's stdout
 * @returns req/s, bytes/s and failed + errored requests
 * @example
 * ```ts
 * import { parseH2load } from "./_h2load.ts";
 * const r = parseH2load("finished in 4.01s, 27570.00 req/s, 27.77MB/s\nrequests: 10 total, 10 started, 10 done, 9 succeeded, 1 failed, 0 errored, 0 timeout\n");
 * console.assert(r.reqPerSec === 27570 && r.errors === 1);
 * ```
 */
export function parseH2load(
  text: string,
): { reqPerSec: number; bytesPerSec: number; errors: number } {
  const m = text.match(/finished in [\d.]+[mu]?s, ([\d.]+) req\/s, ([\d.]+)([KMG]?)B\/s/);
  if (!m) throw new Error(`no h2load summary in ${JSON.stringify(text.slice(-300))}`);
  const scale = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[3]] ?? 1;
  const req = text.match(
    /requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored/,
  );
  return {
    reqPerSec: Number(m[1]),
    bytesPerSec: Number(m[2]) * scale,
    errors: req ? Number(req[1]) + Number(req[2]) : 0,
  };
}

async function h2load(bin: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(bin, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`h2load exited ${out.code}: ${text.slice(-300)}`);
  return text;
}

async function stop(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Gone.
    }
  }, 5000);
  await child.status;
  clearTimeout(t);
}

/**
 * Runs the scenarios against ringhttpd and h2o; rows for each (server,
 * scenario), with `error` set where a server or tool was missing or failed.
 *
 * @param o fixture, scratch dir, sizes, logger
 * @returns the rows, ringhttpd first
 */
export async function runH2Scenarios(o: H2LoadOptions): Promise<H2Row[]> {
  const bin = await which("h2load");
  if (!bin) {
    o.log("h2load is not installed (apt-get install -y nghttp2-client): no HTTP/2 rows");
    return [];
  }
  const cert = `${o.tmp}/h2-cert.pem`;
  const key = `${o.tmp}/h2-key.pem`;
  const mk = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    stdout: "null",
    stderr: "null",
  }).output();
  if (!mk.success) {
    o.log("openssl could not make a certificate: no HTTP/2 rows");
    return [];
  }
  const rows: H2Row[] = [];
  const servers: Array<
    { id: string; start(): Promise<{ port: number; child: Deno.ChildProcess }> }
  > = [
    {
      id: "ringhttpd",
      start: async () => {
        const port = freePort();
        const deno = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
        const perms = String(deno.tasks.serve).split(/\s+/).filter((w) =>
          w !== "deno" && w !== "mod.ts"
        );
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            ...perms,
            MOD_TS,
            o.root,
            "--host",
            "127.0.0.1",
            "--port",
            String(port),
            "--workers",
            String(o.workers),
            "--cert",
            cert,
            "--key",
            key,
          ],
          stdin: "null",
          stdout: "null",
          stderr: "null",
          env: { NO_COLOR: "1" },
        }).spawn();
        o.track(child);
        await waitPort(port, child);
        return { port, child };
      },
    },
  ];
  const h2o = await which("h2o");
  if (h2o) {
    servers.push({
      id: "h2o",
      start: async () => {
        const port = freePort();
        const conf = `${o.tmp}/h2o.conf`;
        await Deno.writeTextFile(
          conf,
          `listen:\n  port: ${port}\n  host: 127.0.0.1\n  ssl:\n    certificate-file: ${cert}\n    key-file: ${key}\n` +
            `num-threads: ${o.workers}\n${Deno.uid() === 0 ? "user: root\n" : ""}` +
            `hosts:\n  default:\n    paths:\n      /:\n        file.dir: ${o.root}\n` +
            `access-log: /dev/null\nerror-log: ${o.tmp}/h2o-error.log\npid-file: ${o.tmp}/h2o.pid\n`,
        );
        const child = new Deno.Command(h2o, {
          args: ["-c", conf],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
        o.track(child);
        await waitPort(port, child);
        return { port, child };
      },
    });
  } else {
    o.log("h2o is not installed (apt-get install -y h2o): no h2o rows");
  }
  for (const s of servers) {
    let running: { port: number; child: Deno.ChildProcess } | undefined;
    try {
      running = await s.start();
      const base = `https://127.0.0.1:${running.port}`;
      // Smoke: the 1 KiB file whole over h2.
      const smoke = parseH2load(await h2load(bin, ["-n", "4", "-c", "1", `${base}/1k.bin`]));
      if (smoke.errors > 0) throw new Error("smoke check over h2 failed");
      for (const sc of H2_SCENARIOS) {
        const row: H2Row = {
          scenario: sc.id,
          server: s.id,
          unit: sc.throughput ? "MiB/s" : "req/s",
        };
        rows.push(row);
        try {
          const common = ["-t", String(o.threads), ...sc.args];
          if (o.warmupS > 0) {
            await h2load(bin, [...common, "-D", String(o.warmupS), base + sc.path]);
          }
          o.log(`${sc.label} on ${s.id}: ${o.durationS} s`);
          const r = parseH2load(
            await h2load(bin, [...common, "-D", String(o.durationS), base + sc.path]),
          );
          row.value = sc.throughput ? r.bytesPerSec / 1024 ** 2 : r.reqPerSec;
          row.errors = r.errors;
        } catch (e) {
          row.error = (e as Error).message;
        }
      }
    } catch (e) {
      for (const sc of H2_SCENARIOS) {
        if (!rows.some((r) => r.scenario === sc.id && r.server === s.id)) {
          rows.push({
            scenario: sc.id,
            server: s.id,
            unit: sc.throughput ? "MiB/s" : "req/s",
            error: (e as Error).message,
          });
        }
      }
    } finally {
      if (running) await stop(running.child);
    }
  }
  return rows;
}

/**
 * The scenarios as a text table with the ringhttpd/h2o ratio.
 *
 * @param rows from {@linkcode runH2Scenarios}
 * @returns the table
 */
export function h2Table(rows: H2Row[]): string {
  const cell = (sc: string, id: string) => rows.find((r) => r.scenario === sc && r.server === id);
  const fmt = (r?: H2Row) =>
    r === undefined
      ? "-"
      : r.error
      ? `error: ${r.error.slice(0, 40)}`
      : r.value === undefined
      ? "-"
      : `${r.value.toFixed(r.unit === "MiB/s" ? 0 : 0)} ${r.unit}${
        r.errors ? ` (${r.errors} errors)` : ""
      }`;
  const lines = ["| scenario | ringhttpd | h2o | ratio |", "| --- | --- | --- | --- |"];
  for (const sc of H2_SCENARIOS) {
    const a = cell(sc.id, "ringhttpd");
    const b = cell(sc.id, "h2o");
    const ratio = a?.value !== undefined && b?.value ? `${(a.value / b.value).toFixed(2)}x` : "-";
    lines.push(`| ${sc.label} | ${fmt(a)} | ${fmt(b)} | ${ratio} |`);
  }
  return lines.join("\n");
}
