/**
 * The server as a user starts it: through the real `deno task serve` wrapper
 * (and `deno task install`), in a process group of its own (setsid) so that a
 * terminal's Ctrl-C can be reproduced with `kill -INT -- -PGID`.
 */
import assert from "node:assert/strict";
import { CONFIG, spawnServer } from "../tests/_harness.ts";

/** `deno task serve ARGS` from `cwd`, as the leader of a new session and process group. */
function task(args: string[], cwd: string, env: Record<string, string> = {}) {
  return spawnServer(Deno.execPath(), ["task", "--config", CONFIG, "serve", ...args], {
    cwd,
    env,
    group: true,
  });
}

/** Resolves once `file` has at least one byte (curl started receiving). */
async function receiving(file: string): Promise<void> {
  for (;;) {
    try {
      if ((await Deno.stat(file)).size > 0) return;
    } catch { /* not created yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const BIG = 50 * 1024 * 1024;

/** A 50 MiB download at 20 MB/s (2.5 s): long enough to be in flight when the server is told to stop. */
function download(port: number, out: string) {
  return new Deno.Command("curl", {
    args: [
      "-sS",
      "--limit-rate",
      "20M",
      "-o",
      out,
      "-w",
      "%{http_code} %{size_download}",
      `http://127.0.0.1:${port}/big.bin`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
}

async function site(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ringhttpd_task_" });
  await Deno.mkdir(`${dir}/site`);
  await Deno.writeTextFile(`${dir}/site/a.txt`, "a\n");
  using f = await Deno.open(`${dir}/site/big.bin`, { write: true, create: true });
  await f.truncate(BIG);
  return dir;
}

/** Whether a TCP connection to the port is refused (nothing listens any more). */
async function refused(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return false;
  } catch {
    return true;
  }
}

/** The command lines of the processes whose command line mentions `needle`. */
async function commandLines(needle: string): Promise<string[][]> {
  return (await processes(needle)).map((p) => p.argv);
}

interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  argv: string[];
}

/**
 * Every process, from `ps` (reading /proc directly needs --allow-all in
 * Deno); argv is the command line split at spaces (no argument here has one).
 */
async function ps(): Promise<Proc[]> {
  const out = await new Deno.Command("ps", {
    args: ["-eo", "pid=,ppid=,pgid=,args="],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(out.success, "ps failed");
  const rows: Proc[] = [];
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const m = line.trim().match(/^(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/);
    if (m) rows.push({ pid: +m[1], ppid: +m[2], pgid: +m[3], argv: m[4].split(" ") });
  }
  return rows;
}

/** The processes whose command line mentions `needle`. */
async function processes(needle: string): Promise<Proc[]> {
  return (await ps()).filter((p) => p.argv.some((a) => a.includes(needle)));
}

/** The pid of the `deno run ... mod.ts` that the wrapper `parent` started. */
async function serverPid(parent: number): Promise<number> {
  const found = (await processes("mod.ts")).filter((p) =>
    p.ppid === parent && p.argv.includes("run")
  );
  assert.equal(found.length, 1, JSON.stringify(found));
  return found[0].pid;
}

/** The serve task's arguments in these tests: a folder `site`, loopback, one worker, a long grace. */
const SERVE_ARGS = ["site", "--host", "127.0.0.1", "-p", "0", "--workers", "1", "--grace", "120"];

Deno.test("deno task serve: one Ctrl-C to the process group drains: the download in flight completes", async () => {
  const dir = await site();
  try {
    await using server = await task(
      SERVE_ARGS,
      dir,
    );
    // setsid made the wrapper the leader of its own group, as a terminal's job is.
    const wrapper = (await ps()).find((p) => p.pid === server.child.pid);
    assert.equal(wrapper?.pgid, server.child.pid);
    const out = `${dir}/got.bin`;
    const curl = download(server.port, out);
    await receiving(out);
    // What a terminal does on Ctrl-C: SIGINT to every process of the group;
    // deno task forwards its copy to the server too.
    // (kill(-PGID, SIGINT), as `kill -INT -- -PGID` does.)
    Deno.kill(-server.child.pid, "SIGINT");
    const got = await curl;
    assert.equal(
      new TextDecoder().decode(got.stdout),
      `200 ${BIG}`,
      new TextDecoder().decode(got.stderr),
    );
    assert.ok(got.success);
    assert.equal((await Deno.stat(out)).size, BIG);
    await server.closed;
    const status = await server.child.status;
    const said = server.stderr.lines;
    assert.equal(status.code, 0, said.join("\n"));
    assert.equal(
      said.filter((l) => l.includes("finishing in-flight requests")).length,
      1,
      said.join("\n"),
    );
    assert.ok(!said.some((l) => l.includes("exiting now")), said.join("\n"));
    assert.ok(await refused(server.port));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task serve: a wrapper's late copy of the same Ctrl-C is not a second Ctrl-C", async () => {
  const dir = await site();
  try {
    await using server = await task(
      SERVE_ARGS,
      dir,
    );
    const pid = await serverPid(server.child.pid);
    const out = `${dir}/got.bin`;
    const curl = download(server.port, out);
    await receiving(out);
    server.kill("SIGINT");
    await server.stderr.waitFor(/finishing in-flight requests/);
    // The copy npx or deno task forwards, arriving after the server took the first.
    Deno.kill(pid, "SIGINT");
    const got = await curl;
    assert.equal(new TextDecoder().decode(got.stdout), `200 ${BIG}`);
    await server.closed;
    assert.ok(!server.stderr.lines.some((l) => l.includes("exiting now")));
    assert.equal((await server.child.status).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const npx = (() => {
  try {
    return new Deno.Command("npx", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** `npx deno@VERSION task serve ARGS` from `cwd`, as the leader of a new process group. */
function npxTask(args: string[], cwd: string) {
  return spawnServer(
    "npx",
    ["--yes", `deno@${Deno.version.deno}`, "task", "--config", CONFIG, "serve", ...args],
    { cwd, group: true, readyTimeoutMs: 300_000 },
  );
}

Deno.test({
  name: "npx deno task serve: Ctrl-C to the group drains, the download completes",
  ignore: !npx,
  async fn() {
    const dir = await site();
    try {
      await using server = await npxTask(SERVE_ARGS, dir);
      const out = `${dir}/got.bin`;
      const curl = download(server.port, out);
      await receiving(out);
      Deno.kill(-server.child.pid, "SIGINT");
      const got = await curl;
      assert.equal(
        new TextDecoder().decode(got.stdout),
        `200 ${BIG}`,
        server.stderr.lines.join("\n"),
      );
      await server.closed;
      const said = server.stderr.lines;
      assert.ok(!said.some((l) => l.includes("exiting now")), said.join("\n"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "npx deno task serve: kill -TERM of npx stops the server (no orphan), the download completes",
  ignore: !npx,
  async fn() {
    const dir = await site();
    try {
      await using server = await npxTask(SERVE_ARGS, dir);
      const out = `${dir}/got.bin`;
      const curl = download(server.port, out);
      await receiving(out);
      // npx alone: its deno task child lives on, the server's parent does not change.
      Deno.kill(server.child.pid, "SIGTERM");
      const got = await curl;
      assert.equal(
        new TextDecoder().decode(got.stdout),
        `200 ${BIG}`,
        server.stderr.lines.join("\n"),
      );
      await server.closed; // every process that held the pipes, the server too, has exited
      assert.ok(await refused(server.port));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("deno task serve: killing the wrapper (SIGKILL) stops the server after the download in flight", async () => {
  const dir = await site();
  try {
    await using server = await task(
      SERVE_ARGS,
      dir,
    );
    const out = `${dir}/got.bin`;
    const curl = download(server.port, out);
    await receiving(out);
    // Only the wrapper: the server gets no signal at all.
    Deno.kill(server.child.pid, "SIGKILL");
    await server.child.status;
    const got = await curl;
    assert.equal(new TextDecoder().decode(got.stdout), `200 ${BIG}`);
    await server.closed; // the server has exited: it held the pipes
    assert.ok(
      server.stderr.lines.some((l) =>
        /^ringhttpd: the process that started this server \(pid \d+\) is gone, finishing in-flight requests/
          .test(l)
      ),
      server.stderr.lines.join("\n"),
    );
    assert.ok(await refused(server.port));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task serve: the root is where the user runs it; the start-up lines say what and where", async () => {
  const dir = await site();
  try {
    await Deno.mkdir(`${dir}/site/deeper`);
    await Deno.writeTextFile(`${dir}/site/deeper/b.txt`, "b\n");
    // deno task runs in deno.json's folder; "." and "deeper" are the user's.
    await using server = await task(
      [".", "--host", "0.0.0.0", "-p", "0", "--workers", "1"],
      `${dir}/site`,
    );
    const root = await Deno.realPath(`${dir}/site`);
    const lines = server.stdout.lines;
    await server.stdout.waitFor(/^ {2}Notice: /);
    const port = server.port;
    const nets = Deno.networkInterfaces()
      .filter((n) => n.family === "IPv4" && !n.address.startsWith("127."))
      .map((n) => `  Network: http://${n.address}:${port}/`);
    assert.deepEqual(lines.slice(1), [
      `  Serving ${root}`,
      `  Local:   http://localhost:${port}/`,
      ...new Set(nets),
      `  Notice: listening on every interface (0.0.0.0): anyone who can reach this machine can read ${root}; --host 127.0.0.1 keeps it to this machine`,
    ]);
    const res = await fetch(`http://127.0.0.1:${port}/deeper/b.txt`);
    assert.equal(await res.text(), "b\n");
    server.kill("SIGINT");
    await server.closed;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const sub = await site();
  try {
    await using server = await task(
      ["site", "--host", "127.0.0.1", "-p", "0", "--workers", "1"],
      sub,
    );
    await server.stdout.waitFor(/^ {2}Serving /);
    assert.deepEqual(server.stdout.lines.slice(1), [
      `  Serving ${await Deno.realPath(`${sub}/site`)}`,
    ]);
    server.kill("SIGINT");
    await server.closed;
  } finally {
    await Deno.remove(sub, { recursive: true });
  }
});

Deno.test("deno task serve --access-log FILE logs, with write access to that file only", async () => {
  const dir = await site();
  try {
    const log = `${dir}/logs/access.log`;
    await Deno.mkdir(`${dir}/logs`);
    await using server = await task(
      [
        "site",
        "--host",
        "127.0.0.1",
        "-p",
        "0",
        "--workers",
        "1",
        "--access-log",
        "logs/access.log",
      ],
      dir,
    );
    const res = await fetch(`http://127.0.0.1:${server.port}/a.txt`);
    assert.equal(await res.text(), "a\n");
    let text = "";
    while (!text.includes('"GET /a.txt HTTP/1.1" 200')) {
      await new Promise((r) => setTimeout(r, 50));
      text = await Deno.readTextFile(log);
    }
    // The process that serves was started with write access to the log alone, and no run access.
    const servers = await commandLines(`--allow-write=${log}`);
    assert.equal(servers.length, 1, JSON.stringify(servers));
    assert.ok(!servers[0].some((a) => a.startsWith("--allow-run")), servers[0].join(" "));
    assert.ok(!servers[0].some((a) => a === "--allow-write" || a === "-A"), servers[0].join(" "));
    server.kill("SIGINT");
    await server.closed;
    assert.equal((await server.child.status).code, 0, server.stderr.lines.join("\n"));
    assert.equal(server.stderr.lines.filter((l) => l.includes("finishing in-flight")).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task install puts a working ringhttpd command in DENO_INSTALL_ROOT/bin", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringhttpd_install_" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--config", CONFIG, "install"],
      cwd: dir,
      env: { NO_COLOR: "1", DENO_INSTALL_ROOT: `${dir}/root` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    assert.ok(out.success, said);
    const bin = `${dir}/root/bin/ringhttpd`;
    const shim = await Deno.readTextFile(bin);
    // The serve task's permissions, every one of them.
    const serve = JSON.parse(await Deno.readTextFile(CONFIG)).tasks.serve.split(/\s+/)
      .filter((w: string) => w.startsWith("--"));
    for (const flag of serve) assert.ok(shim.includes(flag), `${flag} missing from ${shim}`);
    // deno must be on PATH for the shim: put this one there.
    const path = `${Deno.execPath().replace(/\/[^/]+$/, "")}:${Deno.env.get("PATH") ?? ""}`;
    const version = await new Deno.Command(bin, {
      args: ["--version"],
      env: { PATH: path },
      stdout: "piped",
    }).output();
    assert.match(new TextDecoder().decode(version.stdout), /^ringhttpd \d+\.\d+\.\d+ \(deno /);
    // From anywhere: the root is the folder it runs in.
    const printed = await new Deno.Command(bin, {
      args: ["--print-config"],
      cwd: dir,
      env: { PATH: path },
      stdout: "piped",
    }).output();
    assert.equal(JSON.parse(new TextDecoder().decode(printed.stdout)).root, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
