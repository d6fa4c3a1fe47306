/**
 * Uploads over HTTP/2: the CLI with TLS and `--upload`, curl `--http2 -T`
 * with a Content-Length and from stdin (no length: the body ends with
 * END_STREAM), each larger than the stream and connection windows, so the
 * body only arrives whole if the engine reopens the window as the write stage
 * drains it. The file on disk must be byte-identical.
 */
import assert from "node:assert/strict";
import { makeCerts } from "./_certs.ts";
import { startCli } from "./_harness.ts";

const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_h2_upload_" }));
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const root = `${dir}/root`;
await Deno.mkdir(`${root}/up`, { recursive: true });
await makeCerts(dir);
const data = new Uint8Array(700_001);
for (let i = 0; i < data.length; i++) data[i] = (i * 13 + (i >> 10)) & 0xff;
await Deno.writeFile(`${dir}/data.bin`, data);

async function sh(script: string): Promise<string> {
  const r = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  assert.ok(r.success, `${script}: ${dec.decode(r.stderr)}`);
  return dec.decode(r.stdout);
}

Deno.test("h2: curl --http2 -T uploads (with a length, and from stdin without one) arrive byte for byte", async () => {
  await using server = await startCli([
    root,
    "--cert",
    `${dir}/cert.pem`,
    "--key",
    `${dir}/key.pem`,
    "--upload",
    "/up/**",
    "--auth",
    "al:secret",
    "--workers",
    "1",
  ]);
  const base = `https://localhost:${server.port}/up`;
  const curl =
    `curl --noproxy '*' -sS --http2 --cacert '${dir}/ca.pem' -u al:secret -o /dev/null -w '%{http_version} %{http_code}'`;
  assert.equal(await sh(`${curl} -T '${dir}/data.bin' '${base}/a.bin'`), "2 201");
  assert.deepEqual(await Deno.readFile(`${root}/up/a.bin`), data);
  assert.equal(await sh(`${curl} -T - '${base}/b.bin' < '${dir}/data.bin'`), "2 201");
  assert.deepEqual(await Deno.readFile(`${root}/up/b.bin`), data);
  // Replaced whole: 204.
  assert.equal(await sh(`${curl} -T '${dir}/data.bin' '${base}/b.bin'`), "2 204");
  assert.deepEqual(await Deno.readFile(`${root}/up/b.bin`), data);
  // Anonymous: nothing written.
  const anon =
    `curl --noproxy '*' -sS --http2 --cacert '${dir}/ca.pem' -o /dev/null -w '%{http_code}'`;
  assert.equal(await sh(`${anon} -X PUT --data-binary x '${base}/c.bin'`), "401");
  await assert.rejects(Deno.stat(`${root}/up/c.bin`), Deno.errors.NotFound);
});
