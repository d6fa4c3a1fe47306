/**
 * The job pool end to end: `serve()` in this process (real HTTP workers,
 * pool threads and sockets), checked through HTTP and `Cluster.stats()`.
 */
import assert from "node:assert/strict";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { serve } from "../serve.ts";
import type { Supervisor } from "./supervisor.ts";
import { Slab } from "./_slab.ts";
import { PoolHost } from "./_pool_host.ts";
import { JobClient, SLEEP } from "./_jobs.ts";
import { exchange } from "../tests/_raw.ts";

const HOST = "127.0.0.1";
const root = await Deno.makeTempDir({ prefix: "ringhttpd_pool_" });
const DIRS = 24;
for (let d = 0; d < DIRS; d++) {
  Deno.mkdirSync(`${root}/d${d}`);
  for (let i = 0; i < 300; i++) Deno.writeTextFileSync(`${root}/d${d}/f${i}.txt`, "x".repeat(i));
}
const text = "ringhttpd compresses text; ".repeat(800);
Deno.writeTextFileSync(`${root}/page.html`, text);
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

function start(pool: number, workers = 2, extra: Record<string, unknown> = {}) {
  return serve({ root, hostname: HOST, port: 0, workers, pool, log: () => {}, ...extra });
}

/** One request on its own connection; the body exactly as sent (fetch would decompress it). */
async function get(port: number, path: string, headers: Record<string, string> = {}) {
  let head = `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  const r = (await exchange(port, head + "\r\n", { timeoutMs: 60_000 }, HOST)).responses[0];
  if (r === undefined) throw new Error(`no response for ${path}`);
  return { res: { status: r.status, headers: new Headers(r.headers) }, body: r.body };
}

/** Polls `check` (every 20 ms) until it returns true or `ms` pass. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One pool thread serving one HTTP worker slot, outside any cluster. */
async function startPoolHost(threads = 1): Promise<PoolHost> {
  const host = new PoolHost(threads, 1, {
    root,
    dirListing: true,
    dotfiles: false,
    followSymlinks: false,
    maxArchiveBytes: 0,
    cors: false,
    headers: [],
    cacheMaxBytes: 0,
  }, () => {});
  await host.start();
  return host;
}

Deno.test("pool: threads start on demand: none while idle, the first on the first job, more when jobs wait", async () => {
  const host = await startPoolHost(3);
  const client = new JobClient(host.buffers, 0);
  try {
    assert.equal(host.stats().started, 0, "an idle pool costs no thread");
    assert.equal((await client.submit(SLEEP, { ms: 1 })).status, 200);
    assert.equal(host.stats().started, 1);
    // Three long jobs at once: the first thread is busy, so the others start.
    const slow = [1, 2, 3].map(() => client.submit(SLEEP, { ms: 1500 }));
    await until(() => host.stats().started === 3, 30_000, "all three threads to start");
    for (const r of await Promise.all(slow)) assert.equal(r.status, 200);
  } finally {
    host.terminate();
  }
});

Deno.test("slab: values span chunks, come back whole, and every chunk is freed exactly once", () => {
  const slab = new Slab(Slab.allocate(8, 64));
  assert.equal(slab.payloadBytes, 56);
  const a = new Uint8Array(150).map((_, i) => i);
  const first = slab.write([a.subarray(0, 7), a.subarray(7)]);
  assert.equal(slab.freeCount(), 8 - 3);
  assert.deepEqual(slab.read(first, 150), a);
  assert.equal(slab.freeCount(), 8);
  // Too large for what is free: nothing is taken.
  const held = slab.write([new Uint8Array(56 * 6)]);
  assert.equal(slab.write([new Uint8Array(57 * 2)]), -1);
  assert.equal(slab.freeCount(), 2);
  assert.equal(slab.write([new Uint8Array(56 * 9)]), -1, "larger than the whole slab");
  slab.free(held);
  assert.equal(slab.freeCount(), 8);
  assert.throws(() => Slab.allocate(6, 64), /power of two/);
  assert.throws(() => Slab.allocate(8, 60), /multiple of 8/);
});

Deno.test("pool: listings and compressed files from the pool equal the inline (--pool 0) ones", async () => {
  const pooled = await start(1);
  const inline = await start(0);
  try {
    assert.equal(pooled.stats().pool?.threads, 1);
    assert.equal(inline.stats().pool, undefined);
    for (const path of ["/d1/", "/d1/?sort=size&order=desc", "/d2/?format=json&sort=mtime"]) {
      const a = await get(pooled.addr.port, path);
      const b = await get(inline.addr.port, path);
      assert.equal(a.res.status, 200, path);
      assert.deepEqual(a.body, b.body, path);
      assert.equal(a.res.headers.get("etag"), b.res.headers.get("etag"));
    }
    assert.ok(pooled.stats().pool!.done >= 3, "the pool ran the jobs");
    for (const port of [pooled.addr.port, inline.addr.port]) {
      const gz = await get(port, "/page.html", { "accept-encoding": "gzip" });
      assert.equal(gz.res.headers.get("content-encoding"), "gzip");
      assert.equal(gz.res.headers.get("vary"), "Accept-Encoding");
      assert.equal(new TextDecoder().decode(gunzipSync(gz.body)), text);
      const br = await get(port, "/page.html", { "accept-encoding": "gzip, br" });
      assert.equal(br.res.headers.get("content-encoding"), "br");
      assert.equal(new TextDecoder().decode(brotliDecompressSync(br.body)), text);
      // The compressed representation has its own validator.
      const etag = br.res.headers.get("etag")!;
      assert.match(etag, /-br"$/);
      const again = await get(port, "/page.html", {
        "accept-encoding": "br",
        "if-none-match": etag,
      });
      assert.equal(again.res.status, 304);
      // Ranges are served from the identity bytes; no Accept-Encoding: identity.
      const range = await get(port, "/page.html", { "accept-encoding": "br", range: "bytes=0-9" });
      assert.equal(range.res.status, 206);
      assert.equal(range.res.headers.get("content-encoding"), null);
      assert.equal(new TextDecoder().decode(range.body), text.slice(0, 10));
      const plain = await get(port, "/page.html");
      assert.equal(plain.res.headers.get("content-encoding"), null);
      assert.equal(plain.res.headers.get("vary"), "Accept-Encoding");
      assert.equal(new TextDecoder().decode(plain.body), text);
    }
  } finally {
    await pooled.shutdown();
    await inline.shutdown();
  }
});

Deno.test("pool: a flood of listing jobs with clients hanging up: answered once each, no slab chunk leaks, results still cached", async () => {
  // Nothing expires during the test: a second job for a route means it was not cached.
  const cluster = await start(1, 1, { revalidateMs: 600_000 });
  const port = cluster.addr.port;
  try {
    const enc = new TextEncoder();
    const routes: string[] = [];
    for (let d = 0; d < DIRS; d++) {
      for (const q of ["", "?sort=size", "?sort=mtime&order=desc", "?format=json"]) {
        routes.push(`/d${d}/${q}`);
      }
    }
    const send = async (path: string, read: boolean) => {
      const conn = await Deno.connect({ hostname: HOST, port });
      try {
        await conn.write(
          enc.encode(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
        );
        if (!read) return "hung up";
        const text = await new Response(conn.readable).text();
        return text.slice(0, 12);
      } finally {
        try {
          conn.close();
        } catch { /* closed by the readable */ }
      }
    };
    const idle = (jobs = 0) =>
      until(
        () => {
          const p = cluster.stats().pool!;
          return p.done >= jobs && p.queued === 0 && p.active === 0 && p.slabFree === p.chunks;
        },
        60_000,
        `the pool to go idle with every slab chunk free (${JSON.stringify(cluster.stats().pool)})`,
      );
    // Clients that hang up at once: their jobs still run, and fill the cache.
    const early = routes.slice(0, 8);
    for (const path of early) await send(path, false);
    await idle(early.length);
    const done = cluster.stats().pool!.done;
    for (const path of early) assert.equal((await get(port, path)).res.status, 200);
    assert.equal(cluster.stats().pool!.done, done, "answered from the cache the jobs filled");
    // A flood (more jobs than the ring holds), half of it hanging up: each
    // answered once (200, or 503 when the ring was full), no chunk kept.
    const answers = await Promise.all(routes.map((path, i) => send(path, i % 2 === 1)));
    for (const a of answers) assert.ok(a === "hung up" || /^HTTP\/1\.1 (200|503)/.test(a), a);
    await idle();
  } finally {
    await cluster.shutdown();
  }
});

Deno.test("pool: a pool thread killed mid-job is replaced; its job runs once more, a second loss answers 503", async () => {
  const host = await startPoolHost();
  const client = new JobClient(host.buffers, 0);
  try {
    /** Kills the pool thread once it runs a job. */
    const killMidJob = async () => {
      await until(() => host.stats().active === 1, 30_000, "a job to start");
      host.kill(0);
    };
    // Lost once: the replacement runs it again and it completes.
    const once = client.submit(SLEEP, { ms: 300 });
    await killMidJob();
    const r1 = await once;
    assert.equal(r1.status, 200);
    assert.deepEqual(r1.head, { slept: true });
    // Lost twice: 503 (the HTTP worker adds Retry-After), never a hang.
    const twice = client.submit(SLEEP, { ms: 60_000 });
    await killMidJob();
    await killMidJob();
    assert.equal((await twice).status, 503);
    const s = host.stats();
    assert.equal(s.restarts, 3);
    assert.equal(s.slabFree, s.chunks, "no slab chunk leaked");
    // The third thread works.
    assert.equal((await client.submit(SLEEP, { ms: 1 })).status, 200);
  } finally {
    host.terminate();
  }
});

Deno.test("pool: killing the pool thread during a real listing never leaves a connection hanging", async () => {
  const dir = `${root}/many`;
  Deno.mkdirSync(dir);
  for (let i = 0; i < 20_000; i++) Deno.writeFileSync(`${dir}/n${i}`, new Uint8Array(0));
  const cluster = (await start(1, 1)) as Supervisor;
  const port = cluster.addr.port;
  try {
    const pending = get(port, "/many/?order=desc");
    await until(() => cluster.stats().pool!.active === 1, 30_000, "the listing job to start");
    cluster.killPoolThread(0);
    const { res, body } = await pending;
    // Retried on the replacement (200, whole) unless it had already finished.
    assert.equal(res.status, 200);
    assert.match(new TextDecoder().decode(body), /n19999.*<\/html>/s);
    assert.equal(cluster.stats().pool!.restarts, 1);
    await until(
      () => {
        const p = cluster.stats().pool!;
        return p.active === 0 && p.slabFree === p.chunks;
      },
      30_000,
      `every slab chunk back (${JSON.stringify(cluster.stats().pool)})`,
    );
    assert.equal((await get(port, "/many/?sort=size")).res.status, 200);
  } finally {
    await cluster.shutdown();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("pool: a replaced HTTP worker never receives its predecessor's job results", async () => {
  const dir = `${root}/many2`;
  Deno.mkdirSync(dir);
  for (let i = 0; i < 20_000; i++) Deno.writeFileSync(`${dir}/n${i}`, new Uint8Array(0));
  const cluster = (await start(1, 1)) as Supervisor;
  const port = cluster.addr.port;
  try {
    // A slow job in flight when its worker dies (its connection dies with it).
    const orphan = get(port, "/many2/?order=desc").catch(() => null);
    await until(() => cluster.stats().pool!.active === 1, 30_000, "the listing job to start");
    cluster.crashWorker(0);
    await until(
      () => cluster.stats().workers[0].restarts === 1 && cluster.stats().workers[0].alive,
      30_000,
      "the worker to be replaced",
    );
    await orphan;
    // The replacement's first job must get its own answer, not the orphan's.
    const { res, body } = await get(port, "/d0/?sort=size&order=desc");
    assert.equal(res.status, 200);
    const html = new TextDecoder().decode(body);
    assert.match(html, /f299\.txt/);
    assert.doesNotMatch(html, /n19999/);
    await until(
      () => {
        const p = cluster.stats().pool!;
        return p.active === 0 && p.queued === 0 && p.slabFree === p.chunks;
      },
      30_000,
      `every slab chunk back (${JSON.stringify(cluster.stats().pool)})`,
    );
  } finally {
    await cluster.shutdown();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("pool: with ownWaits false a job's result arrives only through turn() (an epoll worker's turn hook)", async () => {
  const host = await startPoolHost();
  const client = new JobClient(host.buffers, 0, { ownWaits: false });
  try {
    let settled = false;
    const job = Promise.resolve(client.submit(SLEEP, { ms: 1 })).then((r) => {
      settled = true;
      return r;
    });
    // The pool finishes the job; without a turn nothing takes its completion.
    await until(() => host.stats().done >= 1, 30_000, "the pool to finish the job");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(settled, false, "settled without a turn: the client waited on its own");
    assert.equal(client.outstanding, 1);
    client.turn();
    const r = await job;
    assert.equal(r.status, 200);
    assert.deepEqual(r.head, { slept: true });
    assert.equal(client.outstanding, 0);
  } finally {
    host.terminate();
  }
});
