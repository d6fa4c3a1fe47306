/**
 * Folder downloads through the whole server (`serve()` in a subprocess, via
 * workers/_cluster_entry.ts) in each way connections reach the workers: the
 * streamed replies (tar and zip with a Content-Length, tar.gz chunked) must
 * survive every transport (epoll FFI writes, adopted sockets, reuseport),
 * and `maxArchiveBytes` must reach the workers.
 */
import assert from "node:assert/strict";
import { CLUSTER_MODES, HOST, startCluster } from "./_harness.ts";

const dec = new TextDecoder();

const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_cluster_tar_" }));
const root = `${tmp}/www`;
await Deno.mkdir(`${root}/folder/nested`, { recursive: true });
const big = new Uint8Array(3 * 1024 * 1024 + 123).map((_, i) => (i * 131) >> 3);
await Deno.writeFile(`${root}/folder/big.bin`, big);
for (let i = 0; i < 50; i++) {
  await Deno.writeTextFile(`${root}/folder/nested/n${i}.txt`, `file ${i}\n`.repeat(i));
}
await Deno.writeTextFile(`${root}/folder/.hidden`, "dot\n");
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

async function untar(tar: Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: tmp });
  await Deno.writeFile(`${dir}.tar`, tar);
  const r = await new Deno.Command("tar", { args: ["-xf", `${dir}.tar`, "-C", dir] }).output();
  assert.ok(r.success, dec.decode(r.stderr));
  return dir;
}

for (const [label, mode] of CLUSTER_MODES) {
  Deno.test(`serve() ${label}: ?download=tar|zip|tar.gz stream the folder; maxArchiveBytes refuses a larger one`, async () => {
    await using server = await startCluster({ root, ...mode, maxArchiveBytes: 4 * 1024 * 1024 });
    const { port } = server;
    const client = Deno.createHttpClient({});
    try {
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`http://${HOST}:${port}/folder/?download=tar`, { client });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("transfer-encoding"), null);
        const tar = new Uint8Array(await res.arrayBuffer());
        assert.equal(res.headers.get("content-length"), String(tar.length));
        const dir = await untar(tar);
        assert.deepEqual(await Deno.readFile(`${dir}/folder/big.bin`), big);
        assert.equal(
          await Deno.readTextFile(`${dir}/folder/nested/n7.txt`),
          "file 7\n".repeat(7),
        );
        await assert.rejects(Deno.stat(`${dir}/folder/.hidden`), Deno.errors.NotFound);
      }
      // zip: a range first (no worker knows a CRC yet: the pool computes
      // those it needs), then the whole, which the range must match.
      const tail = await fetch(`http://${HOST}:${port}/folder/?download=zip`, {
        client,
        headers: { range: "bytes=1000000-" },
      });
      assert.equal(tail.status, 206);
      const ranged = new Uint8Array(await tail.arrayBuffer());
      const zipRes = await fetch(`http://${HOST}:${port}/folder/?download=zip`, { client });
      const zip = new Uint8Array(await zipRes.arrayBuffer());
      assert.equal(zipRes.headers.get("content-length"), String(zip.length));
      assert.deepEqual(ranged, zip.subarray(1000000));
      await Deno.writeFile(`${tmp}/f.zip`, zip);
      const t = await new Deno.Command("unzip", { args: ["-tq", `${tmp}/f.zip`] }).output();
      assert.ok(t.success, dec.decode(t.stdout) + dec.decode(t.stderr));
      const gz = await fetch(`http://${HOST}:${port}/folder/?download=tar.gz`, { client });
      assert.equal(gz.headers.get("transfer-encoding"), "chunked");
      const unzipped = new Response(gz.body!.pipeThrough(new DecompressionStream("gzip")));
      await untar(new Uint8Array(await unzipped.arrayBuffer()));
      // The kept-alive connection still answers after those bodies.
      const after = await fetch(`http://${HOST}:${port}/folder/nested/n1.txt`, { client });
      assert.equal(await after.text(), "file 1\n");
      await Deno.writeFile(`${root}/folder/more.bin`, big);
      try {
        const res = await fetch(`http://${HOST}:${port}/folder/?download=tar`, { client });
        assert.equal(res.status, 403);
        assert.match(await res.text(), /more than 4194304 bytes/);
      } finally {
        await Deno.remove(`${root}/folder/more.bin`);
      }
    } finally {
      client.close();
    }
  });
}
