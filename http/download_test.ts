/**
 * `?download=tar` end to end: the handler behind the real engine on a
 * socket, fetched, then unpacked with the system `tar`.
 */
import assert from "node:assert/strict";
import { ConnectionSet, serveDenoConn } from "./engine.ts";
import { createHandler, type HandlerOptions } from "./handler.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Serves `root` on 127.0.0.1 port 0 until `fn` returns. */
async function withServer(
  options: HandlerOptions,
  fn: (base: string, port: number) => Promise<void>,
): Promise<void> {
  const handler = await createHandler(options);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const set = new ConnectionSet();
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) served.push(serveDenoConn(conn, handler, set));
    } catch {
      // listener closed
    }
  })();
  try {
    await fn(`http://127.0.0.1:${listener.addr.port}`, listener.addr.port);
  } finally {
    listener.close();
    await accepting;
    await set.drain();
    await Promise.all(served);
  }
}

async function withTree(fn: (tmp: string, root: string) => Promise<void>) {
  const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-dl-" }));
  const root = `${tmp}/www`;
  try {
    await Deno.mkdir(`${root}/photos/2024`, { recursive: true });
    await Deno.mkdir(`${tmp}/outside`);
    await Deno.writeFile(`${tmp}/outside/secret.txt`, enc.encode("outside\n"));
    await Deno.writeFile(`${root}/photos/a.jpg`, new Uint8Array(300_000).map((_, i) => i * 7));
    await Deno.writeFile(`${root}/photos/2024/b <&>.txt`, enc.encode("b\n"));
    await Deno.writeFile(`${root}/photos/.secret`, enc.encode("dot\n"));
    await Deno.symlink(`${tmp}/outside/secret.txt`, `${root}/photos/out.txt`);
    await Deno.mkdir(`${root}/\u00e9t\u00e9`);
    await Deno.writeFile(`${root}/\u00e9t\u00e9/x.txt`, enc.encode("x\n"));
    await fn(tmp, root);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

async function untar(tmp: string, tar: Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: tmp });
  await Deno.writeFile(`${dir}.tar`, tar);
  const r = await new Deno.Command("tar", { args: ["-xf", `${dir}.tar`, "-C", dir] }).output();
  assert.ok(r.success, dec.decode(r.stderr));
  return dir;
}

Deno.test("handler: ?download=tar streams the folder as a tar with a Content-Length that extracts to the same bytes", async () => {
  await withTree(async (tmp, root) => {
    await withServer({ root }, async (base) => {
      const res = await fetch(`${base}/photos/?download=tar`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/x-tar");
      assert.equal(res.headers.get("content-disposition"), 'attachment; filename="photos.tar"');
      assert.equal(res.headers.get("transfer-encoding"), null);
      const tar = new Uint8Array(await res.arrayBuffer());
      assert.equal(res.headers.get("content-length"), String(tar.length));
      const dir = await untar(tmp, tar);
      assert.deepEqual(
        await Deno.readFile(`${dir}/photos/a.jpg`),
        await Deno.readFile(`${root}/photos/a.jpg`),
      );
      assert.equal(dec.decode(await Deno.readFile(`${dir}/photos/2024/b <&>.txt`)), "b\n");
      await assert.rejects(Deno.stat(`${dir}/photos/.secret`), Deno.errors.NotFound);
      await assert.rejects(Deno.stat(`${dir}/photos/out.txt`), Deno.errors.NotFound);
    });
  });
});

Deno.test("handler: a non-ASCII folder name gets an RFC 6266 filename*; HEAD sends no body", async () => {
  await withTree(async (_tmp, root) => {
    await withServer({ root }, async (base) => {
      const res = await fetch(`${base}/%C3%A9t%C3%A9/?download=tar`, { method: "HEAD" });
      assert.equal(res.status, 200);
      assert.equal(
        res.headers.get("content-disposition"),
        `attachment; filename="_t_.tar"; filename*=UTF-8''%C3%A9t%C3%A9.tar`,
      );
      assert.equal((await res.arrayBuffer()).byteLength, 0);
    });
  });
});

Deno.test("handler: HTTP/1.0 gets the tar with its Content-Length, then the close", async () => {
  await withTree(async (tmp, root) => {
    await withServer({ root }, async (_base, port) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(enc.encode("GET /photos/2024/?download=tar HTTP/1.0\r\n\r\n"));
      const chunks: Uint8Array[] = [];
      const buf = new Uint8Array(65536);
      for (let n; (n = await conn.read(buf)) !== null;) chunks.push(buf.slice(0, n));
      conn.close();
      const all = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        all.set(c, o);
        o += c.length;
      }
      const headEnd = dec.decode(all.subarray(0, 1024)).indexOf("\r\n\r\n") + 4;
      const head = dec.decode(all.subarray(0, headEnd));
      assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(head, /Connection: close/);
      assert.doesNotMatch(head, /Transfer-Encoding/i);
      assert.equal(Number(/Content-Length: (\d+)/.exec(head)?.[1]), all.length - headEnd);
      const dir = await untar(tmp, all.subarray(headEnd));
      assert.equal(dec.decode(await Deno.readFile(`${dir}/2024/b <&>.txt`)), "b\n");
    });
  });
});

Deno.test("handler: maxArchiveBytes refuses a larger folder with 403 before sending any tar", async () => {
  await withTree(async (_tmp, root) => {
    await withServer({ root, maxArchiveBytes: 100_000 }, async (base) => {
      const big = await fetch(`${base}/photos/?download=tar`);
      assert.equal(big.status, 403);
      assert.match(await big.text(), /more than 100000 bytes as a tar archive/);
      const bigZip = await fetch(`${base}/photos/?download=zip`);
      assert.equal(bigZip.status, 403, "the bound applies to every format");
      await bigZip.body?.cancel();
      const small = await fetch(`${base}/photos/2024/?download=tar`);
      assert.equal(small.status, 200);
      assert.ok((await small.arrayBuffer()).byteLength <= 100_000);
      const listing = await (await fetch(`${base}/photos/`)).text();
      assert.match(listing, /<button name="download" value="tar">/);
    });
  });
});

Deno.test("handler: no tar without listings or with maxArchiveBytes 0; /dir?download=tar redirects to dir/", async () => {
  await withTree(async (_tmp, root) => {
    await withServer({ root, dirListing: false }, async (base) => {
      const res = await fetch(`${base}/photos/?download=tar`);
      assert.equal(res.status, 404);
      await res.body?.cancel();
    });
    await withServer({ root, maxArchiveBytes: 0 }, async (base) => {
      const res = await fetch(`${base}/photos/?download=tar`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type")!, /^text\/html/, "the listing, no link");
      assert.doesNotMatch(await res.text(), /download=tar/);
    });
    await withServer({ root }, async (base) => {
      const res = await fetch(`${base}/photos?download=tar`, { redirect: "manual" });
      assert.equal(res.status, 301);
      assert.equal(res.headers.get("location"), "./photos/?download=tar");
      await res.body?.cancel();
      const top = await fetch(`${base}/?download=tar`, { method: "HEAD" });
      assert.equal(top.headers.get("content-disposition"), 'attachment; filename="www.tar"');
    });
  });
});

Deno.test("createHandler() refuses a negative or NaN maxArchiveBytes", async () => {
  await withTree(async (_tmp, root) => {
    await assert.rejects(
      createHandler({ root, maxArchiveBytes: -1 }),
      /maxArchiveBytes must be >= 0, got -1/,
    );
    await assert.rejects(createHandler({ root, maxArchiveBytes: NaN }), /got NaN/);
  });
});
