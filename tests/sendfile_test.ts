/**
 * File bodies through the whole server (`serve()` in a subprocess): in ring
 * mode they go out by `sendfile(2)`; in reuseport mode by the engine's
 * read/write loop. Both must send the
 * same bytes, end a file truncated mid-transfer early (never padded), cut a
 * reader that stopped by the write timeout, and leak no descriptor.
 */
import assert from "node:assert/strict";
import { CLUSTER_MODES, countFds, HOST, startCluster } from "./_harness.ts";
import { concat } from "./_raw.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_sendfile_" }));
const root = `${tmp}/www`;
await Deno.mkdir(root);
/** Not a multiple of any page or chunk size; every byte position distinguishable. */
const BIG = 5 * 1024 * 1024 + 4321;
const big = new Uint8Array(BIG).map((_, i) => (i * 131 + (i >> 13)) & 255);
await Deno.writeFile(`${root}/big.bin`, big);
globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));

/** Open descriptors of process `pid`; fails the test when /proc cannot say. */
function fdCount(pid: number): number {
  const n = countFds(pid);
  assert.ok(n >= 0, `cannot list /proc/${pid}/fd`);
  return n;
}

/** Sends a GET for `path` on a fresh socket; returns the socket and the parsed head. */
async function rawGet(port: number, path: string) {
  const conn = await Deno.connect({ hostname: HOST, port });
  await conn.write(enc.encode(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(chunk);
    if (n === null) throw new Error("closed before the head");
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
    const i = dec.decode(buf).indexOf("\r\n\r\n");
    if (i >= 0) {
      const head = dec.decode(buf.subarray(0, i));
      const length = Number(head.match(/content-length: (\d+)/i)![1]);
      return { conn, head, length, first: buf.subarray(i + 4) };
    }
  }
}

/** Reads until EOF; returns every byte. */
async function readAll(conn: Deno.Conn, first: Uint8Array): Promise<Uint8Array> {
  const parts = [first];
  const chunk = new Uint8Array(256 * 1024);
  for (;;) {
    let n: number | null;
    try {
      n = await conn.read(chunk);
    } catch {
      break; // reset: also an early end
    }
    if (n === null) break;
    parts.push(chunk.slice(0, n));
  }
  return concat(parts);
}

/** What each mode sends file bodies with. */
const HOW: Record<string, string> = {
  "ring": "sendfile",
  "reuseport": "read/write",
};

for (const [name, mode] of CLUSTER_MODES) {
  const label = `${name} via ${HOW[name]}`;
  Deno.test(`serve() ${label}: a big file and Range slices arrive byte-exact, no fd leaks`, async () => {
    await using server = await startCluster({ root, ...mode });
    const { port, pid } = server;
    const client = Deno.createHttpClient({});
    try {
      const get = async (range?: string) => {
        const res = await fetch(`http://${HOST}:${port}/big.bin`, {
          client,
          headers: range ? { range } : {},
        });
        return { res, body: new Uint8Array(await res.arrayBuffer()) };
      };
      // Warm up both workers (lazy buffers, pools) before counting.
      for (let i = 0; i < 4; i++) await get();
      const before = fdCount(pid);
      for (let i = 0; i < 3; i++) {
        const { res, body } = await get();
        assert.equal(res.status, 200);
        assert.equal(body.length, BIG);
        assert.deepEqual(body, big);
      }
      const slices: Array<[number, number]> = [
        [0, 0],
        [1, 1],
        [4095, 4097],
        [65535, 3 * 1024 * 1024],
        [BIG - 17, BIG - 1],
        [17, BIG - 1],
      ];
      for (const [a, b] of slices) {
        const { res, body } = await get(`bytes=${a}-${b}`);
        assert.equal(res.status, 206);
        assert.equal(res.headers.get("content-range"), `bytes ${a}-${b}/${BIG}`);
        assert.deepEqual(body, big.subarray(a, b + 1), `bytes=${a}-${b}`);
      }
      // Two slices: a multipart body mixing boundaries (bytes) and file slices.
      const { res, body } = await get("bytes=10-20000,3000000-3100000");
      assert.equal(res.status, 206);
      const text = dec.decode(body);
      assert.ok(text.includes("Content-Range: bytes 10-20000/"));
      const at = body.length - 100001 - "\r\n--".length -
        text.slice(text.lastIndexOf("\r\n--")).length + "\r\n--".length;
      assert.deepEqual(body.subarray(at, at + 100001), big.subarray(3000000, 3100001));
      // Many requests, on many connections; then no more descriptors than before.
      await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const c = Deno.createHttpClient({});
          try {
            const r = await fetch(`http://${HOST}:${port}/big.bin`, {
              client: c,
              headers: { range: `bytes=${i * 1000}-${i * 1000 + 200000}` },
            });
            assert.equal((await r.arrayBuffer()).byteLength, 200001);
          } finally {
            c.close();
          }
        }),
      );
      // Aborted downloads release their files too.
      for (let i = 0; i < 10; i++) {
        const { conn } = await rawGet(port, "/big.bin");
        conn.close();
      }
      // Closes are asynchronous on the server side: wait for the count to settle.
      let after = fdCount(pid);
      for (let i = 0; i < 100 && after > before; i++) {
        await new Promise((r) => setTimeout(r, 50));
        after = fdCount(pid);
      }
      assert.ok(after <= before, `descriptors: ${before} before, ${after} after`);
    } finally {
      client.close();
    }
  });

  Deno.test(`serve() ${label}: a file truncated during the transfer ends the connection early`, async () => {
    const path = `${root}/shrinks.bin`;
    const size = 48 * 1024 * 1024;
    const data = new Uint8Array(size).map((_, i) => (i * 7 + 1) & 255 | 1); // no zero byte
    await Deno.writeFile(path, data);
    try {
      {
        await using server = await startCluster({ root, ...mode });
        const { port } = server;
        const { conn, length, first } = await rawGet(port, "/shrinks.bin");
        assert.equal(length, size);
        // The socket buffers hold a few MiB at most: most of the file is unsent.
        await Deno.truncate(path, 1024 * 1024);
        const body = await readAll(conn, first);
        conn.close();
        // Never padded to the promised length: the connection ends early.
        assert.ok(body.length < size, `got all ${body.length} bytes of a truncated file`);
        // What the file still holds arrives as it was.
        const kept = Math.min(body.length, 1024 * 1024);
        assert.deepEqual(body.subarray(0, kept), data.subarray(0, kept));
        if (mode.accept !== "ring") {
          // read/write copies at read time: every byte sent is the file's.
          assert.deepEqual(body, data.subarray(0, body.length));
        }
        // With sendfile(2) the socket holds page-cache pages, not copies: a
        // truncation that zeroes part of a (large) folio already queued shows
        // in the bytes still in flight, as with nginx's sendfile. The response
        // still ends short of its Content-Length, so clients see it incomplete.
      }
    } finally {
      await Deno.remove(path);
    }
  });

  Deno.test(`serve() ${label}: a client that stops reading is cut by the write timeout`, async () => {
    const path = `${root}/huge.bin`;
    const size = 64 * 1024 * 1024;
    await Deno.writeFile(path, new Uint8Array(size).fill(7));
    try {
      {
        await using server = await startCluster({ root, ...mode, writeTimeoutMs: 500 });
        const { port } = server;
        const { conn, first } = await rawGet(port, "/huge.bin");
        // Stop reading for longer than the timeout (+ the 1 s deadline tick).
        await new Promise((r) => setTimeout(r, 2500));
        const t0 = performance.now();
        const body = await readAll(conn, first);
        conn.close();
        assert.ok(body.length < size, `the whole ${size} bytes arrived`);
        assert.ok(performance.now() - t0 < 5000);
      }
    } finally {
      await Deno.remove(path);
    }
  });
}
