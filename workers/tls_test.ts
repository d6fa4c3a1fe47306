/**
 * HTTPS end to end: a self-signed certificate made with openssl in a temp
 * dir, the server in a subprocess (`_cluster_entry.ts`) on port 0, spoken to
 * with `fetch` over HTTP/1.1 and HTTP/2, with curl (to read the negotiated
 * version) and with raw TLS sockets; plus the Request/Response conversions.
 */
import assert from "node:assert/strict";
import { makeCerts } from "../tests/_certs.ts";
import { serve } from "../serve.ts";
import { parseArgs } from "../cli.ts";

import { runCli, type ServerProcess, startCli, startCluster } from "../tests/_harness.ts";

const BIG = 3 * 1024 * 1024 + 17;

const dir = await Deno.makeTempDir({ prefix: "ringhttpd_tls_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const root = `${dir}/root`;
await Deno.mkdir(`${root}/sub`, { recursive: true });
await Deno.writeTextFile(`${root}/a.txt`, "hello over tls");
await Deno.writeTextFile(`${root}/sub/b <&>.txt`, "b");
const big = new Uint8Array(BIG);
for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 11)) & 0xff;
await Deno.writeFile(`${root}/big.bin`, big);

async function hasCommand(name: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(name, { args, stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

// openssl is required (Debian: apt-get install -y openssl); curl is optional.
if (!await hasCommand("openssl", ["version"])) {
  throw new Error(
    "workers/tls_test.ts needs openssl to make a certificate: apt-get install -y openssl",
  );
}
const haveCurl = await hasCommand("curl", ["--version"]);
const { cert, key, ca } = await makeCerts(dir);

/** The HTTPS server in a subprocess (`serve()` through the cluster entry); always reuseport. */
async function start(options: Record<string, unknown> = {}): Promise<ServerProcess> {
  const server = await startCluster({ root, cert, key, ...options }, {
    perms: ["--allow-net", "--allow-read", "--allow-ffi", "--allow-sys"],
  });
  if (server.mode !== "reuseport") {
    await server.stop();
    assert.fail(`HTTPS in ${server.mode} mode: ${server.banner}`);
  }
  return server;
}

/** `https://HOST:PORT/PATH` on `server` (the certificate names localhost and 127.0.0.1). */
function url(server: ServerProcess, path: string, host = "localhost"): string {
  return `https://${host}:${server.port}${path}`;
}

async function get(client: Deno.HttpClient, url: string, init: RequestInit = {}) {
  const res = await fetch(url, { client, ...init });
  const body = new Uint8Array(await res.arrayBuffer());
  return { res, body, text: new TextDecoder().decode(body) };
}

/** Resolves when the peer closes `conn` (read gives EOF or fails). */
async function closedByPeer(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(4096);
  try {
    while ((await conn.read(buf)) !== null) { /* discard */ }
  } catch {
    // A reset counts as closed.
  }
}

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test("serve() rejects cert without key and a path given as cert, before starting", async () => {
  await assert.rejects(serve({ root, cert: "x" }), /cert and key go together, got only cert/);
  await assert.rejects(
    serve({ root, cert: "cert.pem", key: "key.pem" }),
    /cert must be PEM text \(read the file first\), got "cert\.pem"/,
  );
});

Deno.test("HTTPS serves a file, a listing and a 404 over HTTP/1.1 and HTTP/2", opts, async () => {
  await using server = await start();
  for (
    const [name, version] of [["http/1.1", { http1: true, http2: false }], ["h2", {
      http1: false,
      http2: true,
    }]] as const
  ) {
    using client = Deno.createHttpClient({ caCerts: [ca], ...version });
    const file = await get(client, url(server, "/a.txt"));
    assert.equal(file.res.status, 200, name);
    assert.equal(file.text, "hello over tls");
    assert.equal(file.res.headers.get("content-length"), "14");
    const listing = await get(client, url(server, "/sub/"));
    assert.equal(listing.res.status, 200);
    assert.match(listing.res.headers.get("content-type")!, /text\/html/);
    assert.match(listing.text, /href="b%20%3C%26%3E\.txt">b &lt;&amp;&gt;\.txt</);
    const bigRes = await get(client, url(server, "/big.bin", "127.0.0.1"));
    assert.equal(bigRes.body.length, BIG);
    assert.deepEqual(bigRes.body, big, `${name}: big file bytes`);
    const range = await get(client, url(server, "/big.bin"), {
      headers: { range: "bytes=100-199" },
    });
    assert.equal(range.res.status, 206);
    assert.deepEqual(range.body, big.subarray(100, 200));
    const moved = await get(client, url(server, "/sub"), { redirect: "manual" });
    assert.equal(moved.res.status, 301);
    assert.equal((await get(client, url(server, "/nope"))).res.status, 404);
    const head = await fetch(url(server, "/a.txt"), { client, method: "HEAD" });
    assert.equal(head.headers.get("content-length"), "14");
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  }
});

// host - - [time] "METHOD target HTTP/x" status bytes "referer" "ua"
const COMBINED = /^(\S+) - - \[[^\]]+\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$/;

Deno.test(
  "HTTPS -v logs every response, HTTP/1.1 and HTTP/2, and counts it in stats and metrics",
  opts,
  async () => {
    await using server = await start({
      verbose: true,
      metricsPath: "/.ringhttpd/metrics",
    });
    const sent: string[] = [];
    for (const [proto, h2] of [["HTTP/1.1", false], ["HTTP/2.0", true]] as const) {
      using client = Deno.createHttpClient({ caCerts: [ca], http1: !h2, http2: h2 });
      const ua = { "user-agent": `tls-test ${proto}` };
      assert.equal((await get(client, url(server, "/a.txt"), { headers: ua })).res.status, 200);
      assert.equal((await get(client, url(server, "/nope?x=1"), { headers: ua })).res.status, 404);
      const range = await get(client, url(server, "/big.bin"), {
        headers: { ...ua, range: "bytes=0-99999" },
      });
      assert.equal(range.res.status, 206);
      const head = await fetch(url(server, "/a.txt"), { client, method: "HEAD", headers: ua });
      await head.body?.cancel();
      sent.push(`GET /a.txt ${proto}`, `GET /nope?x=1 ${proto}`);
      sent.push(`GET /big.bin ${proto}`, `HEAD /a.txt ${proto}`);
    }
    const parsed = (await server.stdout.until(
      "8 access-log lines",
      (ls) => ls.filter((l) => COMBINED.test(l)).length >= 8,
    )).filter((l) => COMBINED.test(l)).map((l) => l.match(COMBINED)!);
    assert.equal(parsed.length, 8);
    const by = new Map(parsed.map((m) => [m[2], m]));
    assert.deepEqual([...by.keys()].sort(), [...sent].sort());
    for (const m of parsed) {
      assert.equal(m[1], "127.0.0.1", m[0]);
      assert.equal(m[6], `tls-test ${m[2].split(" ")[2]}`, m[0]);
    }
    const status = (r: string) => by.get(r)![3];
    const bytes = (r: string) => Number(by.get(r)![4]);
    for (const p of ["HTTP/1.1", "HTTP/2.0"]) {
      assert.equal(status(`GET /a.txt ${p}`), "200");
      assert.equal(status(`GET /nope?x=1 ${p}`), "404");
      assert.equal(status(`GET /big.bin ${p}`), "206");
      assert.equal(status(`HEAD /a.txt ${p}`), "200");
    }
    // HTTP/1.1 counts what was written, head included; HTTP/2 the body handed to Deno.serve.
    assert.ok(bytes("GET /a.txt HTTP/1.1") > 14, String(bytes("GET /a.txt HTTP/1.1")));
    assert.ok(bytes("GET /big.bin HTTP/1.1") > 100_000);
    assert.ok(bytes("HEAD /a.txt HTTP/1.1") < bytes("GET /a.txt HTTP/1.1"));
    // HTTP/2: the stream's bytes on the wire (frame headers, HPACK block, DATA).
    const h2Get = bytes("GET /a.txt HTTP/2.0");
    assert.ok(h2Get > 14 + 2 * 9 && h2Get < 400, String(h2Get));
    // 100,000 bytes in DATA frames of at most 16,384: 7 frame headers.
    const h2Big = bytes("GET /big.bin HTTP/2.0");
    assert.ok(h2Big >= 100_000 + 8 * 9 && h2Big < 100_500, String(h2Big));
    const h2Head = bytes("HEAD /a.txt HTTP/2.0");
    assert.ok(h2Head > 9 && h2Head < h2Get - 14, String(h2Head));

    // Counted like plain HTTP: by status class in stats() and the metrics page.
    const stats = await server.stats() as {
      workers: { responses: number[]; logged: number }[];
    } | undefined;
    assert.ok(stats, `no stats line\n${server.diagnosis()}`);
    const total = (k: number) =>
      stats.workers.reduce((a: number, w: { responses: number[] }) => a + w.responses[k], 0);
    assert.deepEqual([total(1), total(3)], [6, 2]);
    assert.equal(stats.workers.reduce((a: number, w: { logged: number }) => a + w.logged, 0), 8);
    using client = Deno.createHttpClient({ caCerts: [ca], http1: false, http2: true });
    const metrics = (await get(client, url(server, "/.ringhttpd/metrics"))).text;
    const sum = (code: string) =>
      [...metrics.matchAll(
        new RegExp(`^ringhttpd_responses_total\\{.*code="${code}"\\} (\\d+)$`, "gm"),
      )]
        .reduce((a, m) => a + Number(m[1]), 0);
    assert.deepEqual([sum("2xx"), sum("4xx")], [6, 2]);
  },
);

Deno.test("curl negotiates HTTP/1.1 or HTTP/2 by ALPN on the same port", {
  ...opts,
  ignore: !haveCurl,
}, async () => {
  await using server = await start();
  for (const [flag, want] of [["--http1.1", "1.1"], ["--http2", "2"]]) {
    for (const path of ["/a.txt", "/sub/"]) {
      const out = await new Deno.Command("curl", {
        args: [
          "--noproxy",
          "*",
          "-s",
          "--cacert",
          `${dir}/ca.pem`,
          flag,
          "-o",
          "/dev/null",
          "-w",
          "%{http_version} %{http_code}",
          url(server, path),
        ],
        stdout: "piped",
      }).output();
      assert.equal(new TextDecoder().decode(out.stdout), `${want} 200`, `${flag} ${path}`);
    }
  }
});

Deno.test(
  "a client that never completes the TLS handshake is closed after the header timeout",
  opts,
  async () => {
    await using server = await start({ headerTimeoutMs: 1000 });
    using raw = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const t0 = Date.now();
    await closedByPeer(raw);
    assert.ok(Date.now() - t0 < 10_000, "closed by the handshake deadline");
    // The server still serves others. On a loaded machine this client's own handshake may
    // take longer than the short deadline and be cut too: a few fresh tries, one must pass.
    let text = "";
    for (let i = 0; i < 5 && text === ""; i++) {
      using client = Deno.createHttpClient({ caCerts: [ca] });
      text = await get(client, url(server, "/a.txt")).then((r) => r.text, () => "");
    }
    assert.equal(text, "hello over tls");
  },
);

Deno.test("an idle HTTP/2 connection is closed after the idle timeout", opts, async () => {
  await using server = await start({ idleTimeoutMs: 300 });
  using conn = await Deno.connectTls({
    hostname: "localhost",
    port: server.port,
    caCerts: [ca],
    alpnProtocols: ["h2"],
  });
  assert.equal((await conn.handshake()).alpnProtocol, "h2");
  await closedByPeer(conn);
});

Deno.test("HTTPS asked with accept: ring runs in reuseport mode with a notice", opts, async () => {
  await using server = await start({ accept: "ring" });
  using client = Deno.createHttpClient({ caCerts: [ca] });
  assert.equal((await get(client, url(server, "/a.txt"))).res.status, 200);
  assert.match(server.stderr.text, /HTTPS needs --accept=reuseport/);
});

Deno.test("SIGTERM stops the HTTPS server gracefully with exit code 0", opts, async () => {
  await using server = await start({ graceMs: 5000 });
  using client = Deno.createHttpClient({ caCerts: [ca], http1: false, http2: true });
  assert.equal((await get(client, url(server, "/a.txt"))).res.status, 200);
  assert.equal((await server.stop("SIGTERM")).code, 0, server.diagnosis());
});

Deno.test("CLI: --cert and --key parse as a pair of file names", () => {
  const parsed = parseArgs(["--cert", "c.pem", "--key=k.pem"]);
  assert.ok("options" in parsed);
  assert.deepEqual(parsed.tlsFiles, { cert: "c.pem", key: "k.pem" });
  assert.equal("tlsFiles" in parseArgs(["."]), false);
  assert.throws(() => parseArgs(["--cert", "c.pem"]), /--cert needs --key too/);
  assert.throws(() => parseArgs(["--key", "k.pem"]), /--key needs --cert too/);
});

Deno.test("CLI: a missing --cert file or a bad pair exits 1 with one line", async () => {
  const missing = await runCli([root, "--cert", `${dir}/nope.pem`, "--key", `${dir}/key.pem`]);
  assert.equal(missing.code, 1);
  assert.equal(
    missing.stderr,
    `ringhttpd: cannot read --cert file "${dir}/nope.pem": no such file\n`,
  );
  const swapped = await runCli([root, "--cert", `${dir}/key.pem`, "--key", `${dir}/cert.pem`]);
  assert.equal(swapped.code, 1);
  assert.match(
    swapped.stderr,
    /^ringhttpd: --cert ".*key\.pem" \/ --key ".*cert\.pem" rejected: .+\n$/,
  );
});

Deno.test(
  "CLI: deno task serve --cert --key prints an https Listening line and serves h2",
  opts,
  async () => {
    await using server = await startCli([
      root,
      "--cert",
      `${dir}/cert.pem`,
      "--key",
      `${dir}/key.pem`,
    ]);
    assert.match(
      server.banner,
      /^Listening on https:\/\/127\.0\.0\.1:(\d+)\/ \(\d+ workers?, reuseport mode\)/,
    );
    using client = Deno.createHttpClient({ caCerts: [ca], http1: false, http2: true });
    const r = await get(client, url(server, "/a.txt"));
    assert.equal(r.text, "hello over tls");
    assert.equal((await server.stop("SIGTERM")).code, 0, server.diagnosis());
  },
);
