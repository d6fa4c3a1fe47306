/**
 * HTTP/2 interop with clients nobody here wrote: curl --http2, nghttp
 * (nghttp2-client), Python's h2 (Debian python3-h2) and headless Chromium
 * (the page's protocol as the browser reports it must be `h2`). `.ci/run`
 * installs them; a missing tool skips its test with its name in the title.
 */
import assert from "node:assert/strict";
import { makeCerts } from "../tests/_certs.ts";
import { type ServerProcess, startCluster } from "../tests/_harness.ts";
import { Browser, findChromium } from "../tests/_cdp.ts";

const dir = await Deno.makeTempDir({ prefix: "ringhttpd_h2interop_" });
const root = `${dir}/root`;
await Deno.mkdir(`${root}/sub`, { recursive: true });
await Deno.writeTextFile(`${root}/a.txt`, "hello h2");
const BIG = 2 * 1024 * 1024 + 5;
const big = new Uint8Array(BIG).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
await Deno.writeFile(`${root}/big.bin`, big);
for (let i = 0; i < 30; i++) await Deno.writeTextFile(`${root}/sub/file ${i} <&>.txt`, `${i}`);
const { cert, key, ca } = await makeCerts(dir);
await Deno.writeTextFile(`${dir}/ca.pem`, ca);
const server: ServerProcess = await startCluster({ root, cert, key }, {
  perms: ["--allow-net", "--allow-read", "--allow-ffi", "--allow-sys"],
});
const port = server.port;
globalThis.addEventListener("unload", () => {
  server.kill("SIGKILL");
  Deno.removeSync(dir, { recursive: true });
});
const opts = { sanitizeResources: false, sanitizeOps: false };
const bigSha = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", big)));

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function has(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[], cwd?: string) {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  return {
    raw: out.stdout,
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

const url = (p: string) => `https://localhost:${port}${p}`;

Deno.test({
  name: "curl --http2: one connection, several files and a 404",
  ...opts,
  ignore: !has("curl", ["--version"]),
  fn: async () => {
    const out = await run("curl", [
      "--noproxy",
      "*",
      "-s",
      "--http2",
      "--cacert",
      `${dir}/ca.pem`,
      "-w",
      "%{http_version} %{http_code} %{size_download} %{num_connects}\\n",
      "-o",
      "/dev/null",
      url("/a.txt"),
      "-o",
      "/dev/null",
      url("/big.bin"),
      "-o",
      "/dev/null",
      url("/nope"),
    ]);
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.trim().split("\n");
    assert.deepEqual(lines.map((l) => l.split(" ").slice(0, 3).join(" ")), [
      "2 200 8",
      `2 200 ${BIG}`,
      "2 404 " + lines[2].split(" ")[2],
    ]);
    // One TLS connection for all four (multiplexed / reused).
    assert.equal(lines.map((l) => Number(l.split(" ")[3])).reduce((a, b) => a + b, 0), 1);
  },
});

Deno.test({
  name: "nghttp: 20 concurrent streams, and a 2 MiB file through 1 KiB windows",
  ...opts,
  ignore: !has("nghttp", ["--version"]),
  fn: async () => {
    const many = Array.from({ length: 20 }, (_, i) => url(`/sub/file%20${i}%20%3C%26%3E.txt`));
    const a = await run("nghttp", ["-ns", ...many]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal((a.stdout.match(/ 200 /g) ?? []).length, 20, a.stdout);
    // -w 10 / -W 12: stream window 1 KiB, connection window 4 KiB: 2,000+ WINDOW_UPDATEs.
    const b = await run("nghttp", ["-w", "10", "-W", "12", url("/big.bin")]);
    assert.equal(b.code, 0, b.stderr);
    const got = b.raw;
    assert.equal(got.length, BIG);
    assert.equal(hex(new Uint8Array(await crypto.subtle.digest("SHA-256", got))), bigSha);
  },
});

Deno.test({
  name: "python3-h2: concurrent GET/HEAD/404/listing with a 4 KiB window acknowledged by hand",
  ...opts,
  ignore: !has("/usr/bin/python3", ["-c", "import h2"]),
  fn: async () => {
    const script = new URL("./_h2_peer_client.py", import.meta.url).pathname;
    const out = await run("/usr/bin/python3", [script, String(port), `${dir}/ca.pem`]);
    assert.equal(out.code, 0, out.stdout + out.stderr);
    const r = JSON.parse(out.stdout) as {
      settingsAcked: boolean;
      responses: Array<
        { path: string; method: string; status: number; length: number; sha256: string } & {
          headers: Record<string, string>;
          ended: boolean;
        }
      >;
    };
    assert.ok(r.settingsAcked);
    const [a, bigR, head, nope, listing] = r.responses;
    assert.deepEqual([a.status, a.length, a.headers["content-length"]], [200, 8, "8"]);
    assert.deepEqual([bigR.status, bigR.length, bigR.sha256], [200, BIG, bigSha]);
    assert.deepEqual([head.status, head.length, head.headers["content-length"]], [200, 0, "8"]);
    assert.equal(nope.status, 404);
    assert.equal(listing.status, 200);
    assert.match(listing.headers["content-type"], /text\/html/);
    assert.ok(r.responses.every((x) => x.ended));
    assert.ok(a.headers["date"]);
  },
});

const chromium = findChromium();
Deno.test({
  name: "headless Chromium loads a listing over HTTPS and reports h2",
  ...opts,
  ignore: chromium === null,
  fn: async () => {
    const browser = await Browser.launch(chromium!);
    try {
      await browser.send("Security.setIgnoreCertificateErrors", { ignore: true });
      const page = await browser.newPage();
      await page.goto(url("/sub/"));
      const proto = await page.eval<string>(
        "performance.getEntriesByType('navigation')[0].nextHopProtocol",
      );
      assert.equal(proto, "h2");
      const links = await page.eval<number>(
        "document.querySelectorAll('a[href*=\"file\"]').length",
      );
      assert.ok(links >= 30, `listing links: ${links}`);
      const text = await page.eval<string>(
        "fetch('/sub/file%201%20%3C%26%3E.txt').then((r) => r.text())",
      );
      assert.equal(text, "1");
    } finally {
      await browser.close();
    }
  },
});
