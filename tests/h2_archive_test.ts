/**
 * Folder downloads over HTTP/2: a zip and a tar (streamed with a
 * Content-Length, `http/_archive_stage.ts`) fetched with curl over h2 are the
 * same bytes as over HTTP/1.1, and a Range of a tar over h2 is the same slice.
 * The server is `serve()` with TLS in a subprocess (ALPN picks the protocol).
 */
import assert from "node:assert/strict";
import { makeCerts } from "./_certs.ts";
import { startCluster } from "./_harness.ts";

const dir = await Deno.makeTempDir({ prefix: "ringhttpd_h2_archive_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const root = `${dir}/root`;
await Deno.mkdir(`${root}/folder/sub`, { recursive: true });
// Over one h2 window (65535) and one frame, so flow control and framing both matter.
const big = new Uint8Array(200_003);
for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 9)) & 0xff;
await Deno.writeFile(`${root}/folder/big.bin`, big);
await Deno.writeTextFile(`${root}/folder/a.txt`, "hello\n");
await Deno.writeTextFile(`${root}/folder/sub/b <&>.txt`, "b");
const { cert, key } = await makeCerts(dir);

/** curl's body bytes and `%{http_version} %{http_code}` for one URL. */
async function curl(flag: string, url: string, extra: string[] = []) {
  const out = `${dir}/out_${crypto.randomUUID()}`;
  const r = await new Deno.Command("curl", {
    args: [
      "--noproxy",
      "*",
      "-sS",
      "--cacert",
      `${dir}/ca.pem`,
      flag,
      ...extra,
      "-o",
      out,
      "-w",
      "%{http_version} %{http_code}",
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const meta = new TextDecoder().decode(r.stdout);
  assert.ok(r.success, `curl ${flag} ${url}: ${new TextDecoder().decode(r.stderr)} (${meta})`);
  const body = await Deno.readFile(out);
  await Deno.remove(out);
  return { meta, body };
}

Deno.test(
  "h2: zip and tar downloads (known length, streamed) are byte-identical to HTTP/1.1; a tar Range too",
  {
    sanitizeResources: false,
    sanitizeOps: false,
  },
  async () => {
    await using server = await startCluster({ root, cert, key }, {
      perms: ["--allow-net", "--allow-read", "--allow-ffi", "--allow-sys"],
    });
    const base = `https://localhost:${server.port}/folder/`;
    for (const format of ["zip", "tar"]) {
      const h1 = await curl("--http1.1", `${base}?download=${format}`);
      const h2 = await curl("--http2", `${base}?download=${format}`);
      assert.equal(h1.meta, "1.1 200", format);
      assert.equal(h2.meta, "2 200", format);
      assert.ok(h1.body.length > big.length, `${format}: ${h1.body.length} bytes`);
      assert.deepEqual(h2.body, h1.body, `${format} over h2 differs from HTTP/1.1`);
    }
    const whole = (await curl("--http1.1", `${base}?download=tar`)).body;
    // A slice across the big file's tar header and data.
    const from = 100, to = 150_000;
    const part = await curl("--http2", `${base}?download=tar`, ["-r", `${from}-${to}`]);
    assert.equal(part.meta, "2 206");
    assert.deepEqual(part.body, whole.subarray(from, to + 1));
  },
);
