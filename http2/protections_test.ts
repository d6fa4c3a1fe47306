/**
 * HTTP/2 protections, each attack mounted over raw TLS sockets against the
 * real server, while a second client (fetch over HTTP/2) must be served, the
 * server's memory stays bounded, and `/metrics` counts the event.
 */
import assert from "node:assert/strict";
import { makeCerts } from "../tests/_certs.ts";
import { type ServerProcess, startCluster } from "../tests/_harness.ts";
import { get, RawH2, u32Payload } from "./_test_client.ts";
import {
  CONTINUATION,
  END_HEADERS,
  END_STREAM,
  ENHANCE_YOUR_CALM,
  HEADERS,
  PING,
  REFUSED_STREAM,
  RST_STREAM,
  SETTINGS,
  SETTINGS_INITIAL_WINDOW_SIZE,
} from "./frames.ts";
import { MAX_CONTINUATIONS, PING_LIMIT, RESET_LIMIT, SETTINGS_LIMIT } from "./connection.ts";

const dir = await Deno.makeTempDir({ prefix: "ringhttpd_h2prot_" });
const root = `${dir}/root`;
await Deno.mkdir(root);
await Deno.writeTextFile(`${root}/a.txt`, "hello h2");
await Deno.writeFile(`${root}/big.bin`, new Uint8Array(4 << 20).fill(1));
const { cert, key, ca } = await makeCerts(dir);
const server: ServerProcess = await startCluster({
  root,
  cert,
  key,
  workers: 1,
  headerTimeoutMs: 1500,
  writeTimeoutMs: 1500,
  idleTimeoutMs: 10_000,
  metricsPath: "/metrics",
}, { perms: ["--allow-net", "--allow-read", "--allow-ffi", "--allow-sys"] });
const port = server.port;
const client = Deno.createHttpClient({ caCerts: [ca], http1: false, http2: true });
globalThis.addEventListener("unload", () => {
  client.close();
  server.kill("SIGKILL");
  Deno.removeSync(dir, { recursive: true });
});
const opts = { sanitizeResources: false, sanitizeOps: false };
const MiB = 1 << 20;

/** A normal client's request over its own HTTP/2 connection. */
async function probe(): Promise<void> {
  const res = await fetch(`https://localhost:${port}/a.txt`, { client });
  assert.equal(await res.text(), "hello h2");
}

/** Probes every 100 ms while `attack` runs; at least one must be served meanwhile. */
async function whileServing<T>(attack: Promise<T>): Promise<T> {
  let done = false;
  let served = 0;
  const probing = (async () => {
    while (!done) {
      await probe();
      served++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    return await attack;
  } finally {
    done = true;
    await probing;
    assert.ok(served >= 1, "another client was served during the attack");
  }
}

/** A counter of the metrics page, summed over workers. */
async function metric(name: string, kind: string): Promise<number> {
  const text = await (await fetch(`https://localhost:${port}/metrics`, { client })).text();
  let n = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name + "{") && line.includes(`kind="${kind}"`)) {
      n += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return n;
}

async function bounded<T>(f: () => Promise<T>, limit = 128 * MiB): Promise<T> {
  const before = server.rss();
  const r = await f();
  const growth = server.rss() - before;
  assert.ok(growth < limit, `RSS grew ${(growth / MiB).toFixed(1)} MiB`);
  return r;
}

Deno.test(
  "h2: rapid reset (streams opened and cancelled) -> GOAWAY ENHANCE_YOUR_CALM",
  opts,
  async () => {
    const before = await metric("ringhttpd_h2_protections_total", "rapid_reset");
    const code = await bounded(() =>
      whileServing((async () => {
        const c = await RawH2.open(port, ca);
        try {
          let id = 1;
          for (let round = 0; round < 40; round++) {
            const parts: Uint8Array[] = [];
            for (let i = 0; i < 50; i++, id += 2) {
              parts.push(
                RawH2.frameBytes(HEADERS, END_HEADERS | END_STREAM, id, c.block(get("/big.bin"))),
              );
              parts.push(RawH2.frameBytes(RST_STREAM, 0, id, u32Payload(8)));
            }
            if (!await c.send(concat(parts))) break;
            if (id > 2 * RESET_LIMIT + 200) break;
          }
          return await c.goaway();
        } finally {
          c.close();
        }
      })())
    );
    assert.equal(code, ENHANCE_YOUR_CALM);
    assert.ok(await metric("ringhttpd_h2_protections_total", "rapid_reset") > before);
  },
);

Deno.test(
  "h2: a CONTINUATION flood and an oversized header block -> GOAWAY ENHANCE_YOUR_CALM",
  opts,
  async () => {
    const before = await metric("ringhttpd_h2_protections_total", "block_too_big");
    await bounded(() =>
      whileServing((async () => {
        // Bytes: 16 KiB CONTINUATION frames without END_HEADERS, for ever.
        const c = await RawH2.open(port, ca);
        await c.frame(HEADERS, END_STREAM, 1, c.block(get("/a.txt")));
        const junk = new Uint8Array(16384).fill(0x41);
        for (let i = 0; i < 100; i++) {
          if (!await c.frame(CONTINUATION, 0, 1, junk)) break;
        }
        assert.equal(await c.goaway(), ENHANCE_YOUR_CALM);
        c.close();
        // Frames: empty CONTINUATION frames, which add no bytes.
        const d = await RawH2.open(port, ca);
        await d.frame(HEADERS, END_STREAM, 1, d.block(get("/a.txt")));
        const empty = RawH2.frameBytes(CONTINUATION, 0, 1, new Uint8Array(0));
        await d.send(concat(Array(MAX_CONTINUATIONS + 10).fill(empty)));
        assert.equal(await d.goaway(), ENHANCE_YOUR_CALM);
        d.close();
      })())
    );
    assert.ok(await metric("ringhttpd_h2_protections_total", "block_too_big") >= before + 2);
  },
);

Deno.test(
  "h2: an HPACK bomb (one entry referenced 20,000 times) is answered 431 without expanding it",
  opts,
  async () => {
    const before = await metric("ringhttpd_h2_protections_total", "list_too_big");
    await bounded(() =>
      whileServing((async () => {
        const c = await RawH2.open(port, ca);
        try {
          // Literal with incremental indexing, new name: "x-bomb" = 4,000 octets (raw).
          const head = c.block(get("/a.txt"));
          const name = new TextEncoder().encode("x-bomb");
          // 4,000 as a 7-bit prefix integer: 127, then 3,873 = 0x21 | 0x80, 0x1e.
          const lit = [0x40, name.length, ...name, 0x7f, 0xa1, 0x1e];
          const value = new Uint8Array(4000).fill(0x62);
          const refs = new Uint8Array(20_000).fill(0xbe); // index 62: the entry just added
          const block = concat([head, Uint8Array.from(lit), value, refs]);
          await c.frame(HEADERS, END_STREAM, 1, block.subarray(0, 16384));
          await c.frame(CONTINUATION, END_HEADERS, 1, block.subarray(16384));
          const r = await c.response(1);
          assert.equal(r?.get(":status"), "431");
          // The connection goes on: the table stayed in sync.
          // (Static-table indexes and literals only: this client's encoder does not know x-bomb.)
          const raw = (s: string) => [s.length, ...new TextEncoder().encode(s)];
          await c.frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            3,
            Uint8Array.from([0x82, 0x87, 0x04, ...raw("/a.txt"), 0x01, ...raw("localhost")]),
          );
          assert.equal((await c.response(3))?.get(":status"), "200");
        } finally {
          c.close();
        }
      })())
    );
    assert.ok(await metric("ringhttpd_h2_protections_total", "list_too_big") > before);
  },
);

Deno.test("h2: SETTINGS and PING floods -> GOAWAY ENHANCE_YOUR_CALM", opts, async () => {
  const before = await metric("ringhttpd_h2_protections_total", "flood");
  await bounded(() =>
    whileServing((async () => {
      const c = await RawH2.open(port, ca);
      const s = RawH2.frameBytes(SETTINGS, 0, 0, new Uint8Array(0));
      await c.send(concat(Array(SETTINGS_LIMIT + 20).fill(s)));
      assert.equal(await c.goaway(), ENHANCE_YOUR_CALM);
      c.close();
      const d = await RawH2.open(port, ca);
      const p = RawH2.frameBytes(PING, 0, 0, new Uint8Array(8));
      await d.send(concat(Array(PING_LIMIT + 100).fill(p)));
      assert.equal(await d.goaway(), ENHANCE_YOUR_CALM);
      d.close();
    })())
  );
  assert.ok(await metric("ringhttpd_h2_protections_total", "flood") >= before + 2);
});

Deno.test(
  "h2: streams over the limit are refused; zero windows never opened are closed by the write deadline, memory bounded",
  opts,
  async () => {
    const refusedBefore = await metric("ringhttpd_h2_protections_total", "refused_stream");
    const writeBefore = await metric("ringhttpd_deadline_closes_total", "write");
    await bounded(() =>
      whileServing((async () => {
        // Three connections x 100 streams of a 4 MiB file, every window 0.
        const conns = await Promise.all([0, 1, 2].map(() =>
          RawH2.open(port, ca, { settings: [[SETTINGS_INITIAL_WINDOW_SIZE, 0]] })
        ));
        for (const c of conns) {
          const parts: Uint8Array[] = [];
          for (let i = 0; i < 101; i++) {
            parts.push(
              RawH2.frameBytes(
                HEADERS,
                END_HEADERS | END_STREAM,
                1 + 2 * i,
                c.block(get("/big.bin")),
              ),
            );
          }
          await c.send(concat(parts));
        }
        for (const c of conns) {
          assert.equal(await c.rst(201), REFUSED_STREAM);
        }
        // Nobody opens a window: each connection is closed after the write timeout.
        const t0 = Date.now();
        for (const c of conns) {
          assert.ok(await c.closed(15_000), "closed by the write deadline");
        }
        assert.ok(Date.now() - t0 < 15_000);
        for (const c of conns) {
          c.close();
        }
      })()), 96 * MiB);
    assert.ok(
      await metric("ringhttpd_h2_protections_total", "refused_stream") >= refusedBefore + 3,
    );
    assert.ok(await metric("ringhttpd_deadline_closes_total", "write") >= writeBefore + 3);
  },
);

Deno.test(
  "h2: a request head trickled a byte at a time is closed by the header deadline",
  opts,
  async () => {
    const before = await metric("ringhttpd_deadline_closes_total", "head");
    await whileServing((async () => {
      const c = await RawH2.open(port, ca);
      const frame = RawH2.frameBytes(HEADERS, END_HEADERS | END_STREAM, 1, c.block(get("/a.txt")));
      const t0 = Date.now();
      let closed = false;
      for (let i = 0; i < frame.length - 1 && Date.now() - t0 < 10_000; i++) {
        if (!await c.send(frame.subarray(i, i + 1))) {
          closed = true;
          break;
        }
        // Read in between: GOAWAY / EOF means the deadline fired.
        const f = await c.next(200);
        if (f === null && await c.closed(1)) {
          closed = true;
          break;
        }
      }
      closed ||= await c.closed(5000);
      assert.ok(closed, "closed while the head trickled");
      assert.ok(Date.now() - t0 < 10_000);
      c.close();
      // A header block trickled one CONTINUATION at a time: the same deadline.
      const d = await RawH2.open(port, ca);
      const b = d.block(get("/a.txt"));
      await d.frame(HEADERS, END_STREAM, 1, b.subarray(0, 1));
      let i = 1;
      const t1 = Date.now();
      while (i < b.length - 1 && await d.frame(CONTINUATION, 0, 1, b.subarray(i, i + 1))) {
        i++;
        if (await d.closed(300)) break;
      }
      assert.ok(await d.closed(5000), "closed while the block trickled");
      assert.ok(Date.now() - t1 < 10_000);
      d.close();
    })());
    assert.ok(await metric("ringhttpd_deadline_closes_total", "head") >= before + 2);
  },
);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
