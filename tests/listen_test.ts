/**
 * Listeners (#13): `--listen` TCP / IPv6 / Unix sockets, stale-socket
 * handling, socket activation through `systemd-socket-activate`, and
 * `--max-conns-per-ip`, against the real CLI with real clients (curl,
 * raw sockets).
 */
import assert from "node:assert/strict";
import { MOD, runCli, serveTask, startCli, startCluster } from "./_harness.ts";

async function curl(...args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("curl", { args: ["-sS", "--max-time", "20", ...args] })
    .output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout) };
}

async function tempRoot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "ringhttpd-listen-" });
  await Deno.writeTextFile(`${root}/a.txt`, "hello\n");
  return root;
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
function freePort(): number {
  using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return (l.addr as Deno.NetAddr).port;
}

/** The last line of a failed start's stderr (others may print notices before it), newline kept. */
function lastLine(text: string): string {
  const lines = text.split("\n").filter((l) => l !== "");
  return lines[lines.length - 1] + "\n";
}

function ipv6Available(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("--listen: TCP, [::1] and a unix socket at once; mode 0660; access log says unix; removed at exit", async () => {
  const root = await tempRoot();
  const sock = `${root}/site.sock`;
  const v6 = ipv6Available();
  try {
    const args = [
      root,
      "-v",
      "--workers",
      "2",
      "--listen",
      "127.0.0.1:0",
      "--listen",
      `unix:${sock}`,
    ];
    if (v6) args.push("--listen", "[::1]:0");
    {
      await using server = await startCli(args);
      assert.match(
        server.banner,
        /^Listening on http:\/\/127\.0\.0\.1:\d+\/ \(2 workers, ring mode\)$/,
      );
      await server.stdout.waitFor(new RegExp(`^  Also: +unix:${sock}$`));
      assert.equal((await curl(server.url("/a.txt"))).out, "hello\n");
      assert.equal(Deno.lstatSync(sock).mode! & 0o777, 0o660);
      assert.ok(Deno.lstatSync(sock).isSocket);
      assert.equal((await curl("--unix-socket", sock, "http://local/a.txt")).out, "hello\n");
      await server.stdout.waitFor(/^unix - - \[.*"GET \/a\.txt HTTP\/1\.1" 200 /);
      if (v6) {
        const m = await server.stdout.waitFor(/^ {2}Also: +http:\/\/\[::1\]:(\d+)\/$/);
        const r = await curl("-6", "-g", `http://[::1]:${m[1]}/a.txt`);
        assert.equal(r.out, "hello\n");
        await server.stdout.waitFor(/^::1 - - \[.*"GET \/a\.txt/);
      }
    }
    assert.throws(() => Deno.lstatSync(sock), Deno.errors.NotFound);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--listen unix: replaces a stale socket, refuses a live one and never touches a regular file", async () => {
  const root = await tempRoot();
  const sock = `${root}/s.sock`;
  try {
    // A leftover: bound, then closed without unlink (what a SIGKILLed server leaves).
    Deno.listen({ transport: "unix", path: sock }).close();
    try {
      Deno.lstatSync(sock);
    } catch {
      // Deno unlinked it on close: make a leftover another way.
      const py = new Deno.Command("python3", {
        args: ["-c", `import socket;socket.socket(socket.AF_UNIX).bind(${JSON.stringify(sock)})`],
      });
      assert.equal((await py.output()).code, 0);
    }
    assert.ok(Deno.lstatSync(sock).isSocket);
    {
      await using server = await startCli([
        root,
        "--listen",
        "127.0.0.1:0",
        "--listen",
        `unix:${sock}`,
      ]);
      await server.stderr.waitFor(/notice: replaced the stale socket unix:.*s\.sock/);
      assert.equal((await curl("--unix-socket", sock, "http://x/a.txt")).out, "hello\n");
      // A second server on the same path while the first is alive.
      const second = await runCli([root, "--listen", `unix:${sock}`]);
      assert.equal(second.code, 1);
      assert.equal(
        lastLine(second.stderr),
        `ringhttpd: cannot listen on unix:${sock}: another server is listening on it\n`,
      );
      // ... and the first still serves on it.
      assert.equal((await curl("--unix-socket", sock, "http://x/a.txt")).out, "hello\n");
    }
    const file = `${root}/plain.sock`;
    await Deno.writeTextFile(file, "precious");
    const r = await runCli([root, "--listen", `unix:${file}`]);
    assert.equal(r.code, 1);
    assert.equal(
      lastLine(r.stderr),
      `ringhttpd: cannot listen on unix:${file}: a regular file is there (not replacing it)\n`,
    );
    assert.equal(await Deno.readTextFile(file), "precious");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--listen: bad addresses exit 2 naming the value; a taken port exits 1; reuseport and HTTPS say why", async () => {
  const root = await tempRoot();
  try {
    for (
      const [value, why] of [
        ["8080", "needs HOST:PORT, [IPv6]:PORT or unix:/path"],
        ["::1:8080", "an IPv6 address needs brackets: [::1]:8080"],
        ["127.0.0.1:70000", "port must be 0-65535"],
        ["example.com:80", "host must be an IP address or localhost"],
        ["unix:relative.sock", "unix: needs an absolute path (unix:/run/site.sock)"],
        [`unix:/${"x".repeat(120)}`, "unix: path is longer than 107 bytes"],
      ]
    ) {
      const r = await runCli([root, "--listen", value]);
      assert.equal(r.code, 2, value);
      assert.equal(
        r.stderr.split("\n")[0],
        `ringhttpd: --listen ${why}, got ${JSON.stringify(value)}`,
      );
    }
    using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (taken.addr as Deno.NetAddr).port;
    const inUse = await runCli([root, "--listen", "127.0.0.1:0", "--listen", `127.0.0.1:${port}`]);
    assert.equal(inUse.code, 1);
    assert.equal(
      lastLine(inUse.stderr),
      `ringhttpd: cannot listen on 127.0.0.1:${port}: the port is already in use\n`,
    );
    const rp = await runCli([root, "--accept", "reuseport", "--listen", `unix:${root}/x.sock`]);
    assert.equal(rp.code, 2);
    assert.match(rp.stderr, /a Unix socket \(unix:.*x\.sock\) needs ring mode \(--accept=ring\)/);
    const two = await runCli([
      root,
      "--accept",
      "reuseport",
      "--listen",
      "127.0.0.1:0",
      "--listen",
      "127.0.0.1:0",
    ]);
    assert.equal(two.code, 2);
    assert.match(two.stderr, /listening on 2 addresses needs ring mode/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("socket activation: systemd-socket-activate's TCP and unix sockets are served, none is bound", async () => {
  const root = await tempRoot();
  const sock = `${root}/act.sock`;
  const port = freePort();
  const activate = ["systemd-socket-activate", "-l", `127.0.0.1:${port}`];
  try {
    {
      // systemd-socket-activate starts the server on the first connection:
      // this request waits in the inherited socket's backlog meanwhile.
      const serverStarting = startCli([root, "-v"], {
        prefix: [...activate, "-l", sock, "--fdname=web:local"],
        anyAddress: true,
      });
      const first = curl(
        "--retry",
        "20",
        "--retry-connrefused",
        "--max-time",
        "60",
        `http://127.0.0.1:${port}/a.txt`,
      );
      await using server = await serverStarting;
      assert.equal((await first).out, "hello\n");
      assert.equal(server.listening.port, port);
      await server.stdout.waitFor(/socket activation: 2 inherited sockets/);
      await server.stdout.waitFor(new RegExp(`^  Also: +unix:${sock}$`));
      assert.equal((await curl("--unix-socket", sock, "http://x/a.txt")).out, "hello\n");
      await server.stdout.waitFor(/^unix - - .*"GET \/a\.txt/);
    }
    // systemd's socket, not ours: left in place.
    assert.ok(Deno.lstatSync(sock).isSocket);
    // Reuseport workers cannot take an inherited fd: refused, exit 2.
    const child = new Deno.Command(activate[0], {
      args: [
        ...activate.slice(1),
        Deno.execPath(),
        ...serveTask,
        MOD,
        root,
        "--accept",
        "reuseport",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await curl("--retry", "20", "--retry-connrefused", `http://127.0.0.1:${port}/`);
    const r = await child.output();
    assert.equal(r.code, 2);
    assert.match(
      new TextDecoder().decode(r.stderr),
      /socket activation \(LISTEN_FDS\) needs ring mode \(--accept=ring\)/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** Opens a TCP connection and says whether the server closed it within `ms` without a byte sent. */
async function closedAtOnce(port: number, ms = 3000): Promise<boolean> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const buf = new Uint8Array(16);
    const timer = new Promise<"open">((r) => setTimeout(() => r("open"), ms));
    const read = c.read(buf).then((n) => n === null ? "closed" : "data").catch(() => "closed");
    const got = await Promise.race([read, timer]);
    return got === "closed";
  } finally {
    try {
      c.close();
    } catch { /* closed */ }
  }
}

/** A kept-alive connection that got its response, retried while the server still counts closed ones. */
async function servedConn(port: number): Promise<Deno.Conn> {
  for (let attempt = 0;; attempt++) {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    const sent = await c.write(new TextEncoder().encode("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"))
      .catch(() => 0);
    const n = sent > 0 ? await c.read(new Uint8Array(4096)).catch(() => null) : null;
    if (n !== null && n > 0) return c;
    c.close();
    if (attempt >= 50) throw new Error("never admitted again");
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function metric(port: number, name: string): Promise<number> {
  const text = (await curl(`http://127.0.0.1:${port}/.m`)).out;
  const m = text.match(new RegExp(`^${name} (\\d+)$`, "m"));
  assert.ok(m, `${name} in\n${text}`);
  return Number(m[1]);
}

for (const mode of ["ring", "reuseport"]) {
  Deno.test(`--max-conns-per-ip (${mode}): the N+1th connection from one address is closed at accept, counted, and room comes back`, async () => {
    const root = await tempRoot();
    try {
      await using server = await startCli([
        root,
        "--accept",
        mode,
        "--workers",
        "2",
        "--max-conns-per-ip",
        "3",
        "--metrics-path",
        "/.m",
      ]);
      const port = server.listening.port;
      const held: Deno.Conn[] = [];
      try {
        for (let i = 0; i < 3; i++) held.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        // Each held one is served (kept alive).
        for (const c of held) {
          await c.write(new TextEncoder().encode("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
          const buf = new Uint8Array(4096);
          assert.ok((await c.read(buf))! > 0);
        }
        assert.equal(await closedAtOnce(port), true);
        assert.equal(await closedAtOnce(port), true);
        held.pop()!.close();
        // The closed one's place is free again (curl is one connection): served.
        let served = false;
        for (let i = 0; i < 50 && !served; i++) {
          served = (await curl(`http://127.0.0.1:${port}/a.txt`)).out === "hello\n";
        }
        assert.ok(served);
        assert.ok(await metric(port, "ringhttpd_accept_per_ip_refused_total") >= 2);
      } finally {
        for (const c of held) c.close();
      }
      // Every connection closed: the address has its full allowance again.
      const again: Deno.Conn[] = [];
      try {
        // The closes reach the server asynchronously: retried until it has seen them.
        for (let i = 0; i < 3; i++) again.push(await servedConn(port));
      } finally {
        for (const c of again) c.close();
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });

  Deno.test(`--max-conns-per-ip (${mode}): a crashed worker's connections are released`, async () => {
    const root = await tempRoot();
    try {
      await using server = await startCluster({
        root,
        workers: 1,
        maxConnsPerIp: 2,
        pool: 0,
        accept: mode,
      });
      const port = server.listening.port;
      const held = [
        await Deno.connect({ hostname: "127.0.0.1", port }),
        await Deno.connect({ hostname: "127.0.0.1", port }),
      ];
      try {
        for (const c of held) {
          await c.write(new TextEncoder().encode("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
          assert.ok((await c.read(new Uint8Array(4096)))! > 0);
        }
        assert.equal(await closedAtOnce(port), true);
        server.command("crash 0");
        await server.stderr.waitFor(/worker 0 replaced/);
        // The dead worker's connections were closed (ring: by the acceptor; reuseport: with the isolate)...
        for (const c of held) {
          const n = await c.read(new Uint8Array(16)).catch(() => null);
          assert.equal(n, null);
        }
        // ... and released: two fresh ones are served.
        for (let i = 0; i < 2; i++) {
          const c = await Deno.connect({ hostname: "127.0.0.1", port });
          held.push(c);
          await c.write(new TextEncoder().encode("GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
          assert.ok((await c.read(new Uint8Array(4096)))! > 0);
        }
      } finally {
        for (const c of held) c.close();
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}
