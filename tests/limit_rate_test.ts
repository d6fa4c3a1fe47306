/**
 * `--limit-rate` / `--limit-rate-after` (#13): downloads are paced like
 * nginx's limit_rate, in both accept modes (ring: the sendfile path;
 * reuseport: the read-and-write path) and for a stream (a folder as tar).
 * Only lower bounds on time are asserted: a loaded machine can make a
 * download slower, never faster than the pace.
 */
import assert from "node:assert/strict";
import { startCli } from "./_harness.ts";

const KiB = 1024;

async function timedGet(url: string): Promise<{ ms: number; bytes: Uint8Array; status: number }> {
  const t0 = performance.now();
  const res = await fetch(url);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { ms: performance.now() - t0, bytes, status: res.status };
}

for (const mode of ["ring", "reuseport"]) {
  Deno.test(`--limit-rate (${mode}): a file and a tar stream take at least their paced time, bytes intact`, async () => {
    const root = await Deno.makeTempDir({ prefix: "ringhttpd-rate-" });
    try {
      const data = new Uint8Array(768 * KiB);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 9)) & 0xff;
      await Deno.mkdir(`${root}/d`);
      await Deno.writeFile(`${root}/d/f.bin`, data);
      await Deno.writeTextFile(`${root}/small.txt`, "small\n");
      // 1024 KiB/s after 256 KiB: the file's last 512 KiB need >= 0.5 s,
      // less the last step sent without waiting (1/8 s of the rate).
      await using server = await startCli([
        root,
        "--accept",
        mode,
        "--limit-rate",
        "1024",
        "--limit-rate-after",
        "256",
      ]);
      const file = await timedGet(server.url("/d/f.bin"));
      assert.equal(file.status, 200);
      assert.deepEqual(file.bytes, data);
      assert.ok(file.ms >= 350, `768 KiB at 1 MiB/s after 256 KiB took only ${file.ms} ms`);
      const tar = await timedGet(server.url("/d/?download=tar"));
      assert.equal(tar.status, 200);
      assert.ok(tar.bytes.length > data.length);
      assert.ok(tar.ms >= 350, `the tar stream took only ${tar.ms} ms`);
      const small = await timedGet(server.url("/small.txt"));
      assert.equal(new TextDecoder().decode(small.bytes), "small\n");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}
