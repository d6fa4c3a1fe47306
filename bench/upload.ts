/**
 * Upload benchmark: ringhttpd's write path next to nginx's dav module, same
 * machine, same run, same fixture.
 *
 * - `big`: one PUT of `--big-mb` MiB (1 GiB by default) with `curl -T` over
 *   loopback; MiB/s, and the server's RSS (all its processes, sampled every
 *   100 ms) at its peak over its idle RSS. The stored file is checked for size.
 * - `small`: `wrk` PUTs of 4 KiB bodies over 1,000 names (a Lua script),
 *   `--duration` seconds, `--connections` connections; req/s, and every
 *   response must be 2xx.
 *
 * ringhttpd runs through its CLI with `--upload '/up/**'` plus `--auth ARGS`
 * (the flags that turn authentication on, e.g. `--auth="--auth-file F"`) and
 * `--user user:password` for the clients; nginx from a generated config with
 * `dav_methods PUT DELETE MKCOL COPY MOVE; create_full_put_path on;` and its
 * body temp path on the same file system as the root (so it renames, as we do).
 *
 * ```sh
 * deno run -A bench/upload.ts [--big-mb=1024] [--duration=5] [--connections=16]
 *   [--workers=2] [--only=big,small,ring,nginx] [--auth="--flags"] [--user=u:p]
 *   [--dir=/dev/shm]   (where the served root goes; /dev/shm takes the disk's flushes out)
 * ```
 *
 * @module
 */

const HERE = new URL("..", import.meta.url);
const MOD_TS = new URL("mod.ts", HERE).pathname;

interface Config {
  bigMb: number;
  durationS: number;
  connections: number;
  workers: number;
  only: Set<string>;
  auth: string[];
  user?: string;
  /** Where the fixture and the served root go (e.g. /dev/shm: no disk flushes). */
  dir?: string;
}

function parse(args: string[]): Config {
  const c: Config = {
    bigMb: 1024,
    durationS: 5,
    connections: 16,
    workers: 2,
    only: new Set(),
    auth: [],
  };
  for (const a of args) {
    const [k, v = ""] = a.replace(/^--/, "").split(/=(.*)/s);
    if (k === "big-mb") c.bigMb = Number(v);
    else if (k === "duration") c.durationS = Number(v);
    else if (k === "connections") c.connections = Number(v);
    else if (k === "workers") c.workers = Number(v);
    else if (k === "only") c.only = new Set(v.split(",").filter(Boolean));
    else if (k === "auth") c.auth = v.split(/\s+/).filter(Boolean);
    else if (k === "user") c.user = v;
    else if (k === "dir") c.dir = v;
    else throw new Error(`unknown argument ${a}`);
  }
  return c;
}

const want = (c: Config, id: string) => c.only.size === 0 || c.only.has(id);

interface Server {
  id: string;
  base: string;
  pid: number;
  child: Deno.ChildProcess;
  broken?: string;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitPort(port: number, child: Deno.ChildProcess): Promise<string | undefined> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return undefined;
    } catch {
      if (exited) return "exited";
      if (Date.now() > deadline) return "no listener after 60 s";
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function startRinghttpd(c: Config, root: string): Promise<Server> {
  const deno = JSON.parse(await Deno.readTextFile(new URL("deno.json", HERE)));
  const perms = String(deno.tasks.serve).split(/\s+/).filter((w) =>
    w !== "deno" && w !== "run" && w !== "mod.ts"
  );
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...perms,
      MOD_TS,
      root,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--workers",
      String(c.workers),
      "--upload",
      "/up/**",
      ...c.auth,
    ],
    stdout: "null",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  const s: Server = { id: "ring", base: `http://127.0.0.1:${port}`, pid: child.pid, child };
  s.broken = await waitPort(port, child);
  return s;
}

async function startNginx(c: Config, root: string, tmp: string): Promise<Server> {
  const prefix = `${tmp}/nginx`;
  await Deno.mkdir(`${root}/.nginx_body`, { recursive: true });
  await Deno.mkdir(prefix, { recursive: true });
  const port = freePort();
  const user = Deno.uid() === 0 ? "user root;\n" : "";
  await Deno.writeTextFile(
    `${prefix}/nginx.conf`,
    `${user}worker_processes ${c.workers};
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path ${root}/.nginx_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    client_max_body_size 0;
    location /up/ {
      dav_methods PUT DELETE MKCOL COPY MOVE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }
  }
}
`,
  );
  const child = new Deno.Command("nginx", {
    args: ["-p", prefix, "-c", `${prefix}/nginx.conf`, "-e", `${prefix}/error.log`],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const s: Server = { id: "nginx", base: `http://127.0.0.1:${port}`, pid: child.pid, child };
  s.broken = await waitPort(port, child);
  return s;
}

/** RSS of a process and its descendants, KiB. */
function treeRssKiB(pid: number): number {
  let total = 0;
  const kids = new Map<number, number[]>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(e.name)]);
    } catch { /* gone */ }
  }
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop()!;
    try {
      const m = Deno.readTextFileSync(`/proc/${p}/status`).match(/VmRSS:\s+(\d+)/);
      if (m) total += Number(m[1]);
    } catch { /* gone */ }
    todo.push(...(kids.get(p) ?? []));
  }
  return total;
}

async function makeBig(path: string, mb: number): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = new Uint8Array(1024 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31 + (i >> 8)) & 0xff;
  for (let i = 0; i < mb; i++) {
    block[0] = i & 0xff;
    let n = 0;
    while (n < block.length) n += await f.write(block.subarray(n));
  }
  f.close();
}

async function big(c: Config, s: Server, file: string, root: string): Promise<string> {
  const idle = treeRssKiB(s.pid);
  let peak = idle;
  const timer = setInterval(() => peak = Math.max(peak, treeRssKiB(s.pid)), 100);
  const user = c.user && s.id === "ring" ? ["-u", c.user] : [];
  const t0 = performance.now();
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      ...user,
      "-T",
      file,
      `${s.base}/up/big.bin`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const secs = (performance.now() - t0) / 1000;
  clearInterval(timer);
  const code = new TextDecoder().decode(out.stdout);
  const stored = await Deno.stat(`${root}/up/big.bin`).then((i) => i.size, () => -1);
  const ok = (code === "201" || code === "204") && stored === c.bigMb * 1024 * 1024;
  await Deno.remove(`${root}/up/big.bin`).catch(() => {});
  if (!ok) return `FAILED: status ${code}, stored ${stored} bytes`;
  return `${(c.bigMb / secs).toFixed(0)} MiB/s, RSS +${((peak - idle) / 1024).toFixed(1)} MiB ` +
    `(idle ${(idle / 1024).toFixed(1)} MiB)`;
}

async function small(c: Config, s: Server, tmp: string): Promise<string> {
  const auth = c.user && s.id === "ring"
    ? `wrk.headers["Authorization"] = "Basic ${btoa(c.user)}"\n`
    : "";
  const lua = `${tmp}/put.lua`;
  await Deno.writeTextFile(
    lua,
    `wrk.method = "PUT"
wrk.body = string.rep("x", 4096)
${auth}local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/up/s/" .. (n % 1000) .. ".bin")
end
`,
  );
  const out = await new Deno.Command("wrk", {
    args: ["-t2", `-c${c.connections}`, `-d${c.durationS}s`, "-s", lua, `${s.base}/`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = text.match(/Requests\/sec:\s+([\d.]+)/)?.[1];
  const bad = text.match(/Non-2xx or 3xx responses: (\d+)/)?.[1];
  if (rps === undefined) return `FAILED: ${text || new TextDecoder().decode(out.stderr)}`;
  return `${Number(rps).toFixed(0)} req/s${bad ? `, ${bad} non-2xx: FAILED` : ""}`;
}

async function stop(s: Server): Promise<void> {
  try {
    s.child.kill("SIGTERM");
  } catch { /* gone */ }
  await s.child.status;
}

if (import.meta.main) {
  const c = parse(Deno.args);
  const tmp = await Deno.realPath(
    await Deno.makeTempDir({ prefix: "ringhttpd_upload_bench_", dir: c.dir }),
  );
  const root = `${tmp}/root`;
  await Deno.mkdir(`${root}/up/s`, { recursive: true });
  const file = `${tmp}/big.bin`;
  const rows: string[] = [];
  try {
    if (want(c, "big")) await makeBig(file, c.bigMb);
    for (const id of ["ring", "nginx"]) {
      if (!want(c, id)) continue;
      const s = id === "ring" ? await startRinghttpd(c, root) : await startNginx(c, root, tmp);
      try {
        if (s.broken) {
          rows.push(`${id}: did not start (${s.broken})`);
          continue;
        }
        if (want(c, "big")) {
          rows.push(`${id} big ${c.bigMb} MiB PUT: ${await big(c, s, file, root)}`);
        }
        if (want(c, "small")) rows.push(`${id} small 4 KiB PUTs: ${await small(c, s, tmp)}`);
      } finally {
        await stop(s);
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  console.log(
    `upload bench: ${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}, load ${load}`,
  );
  for (const r of rows) console.log("  " + r);
}
