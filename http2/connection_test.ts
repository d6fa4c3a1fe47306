/**
 * The HTTP/2 engine on byte fixtures: no socket, a transport that collects
 * output, and `tick(now)` driven by the test, so deadlines and memory bounds
 * are checked exactly (the same cases over TLS are in rfc9113_test.ts and
 * protections_test.ts).
 */
import assert from "node:assert/strict";
import {
  H2_DEADLINE_HEAD,
  H2_DEADLINE_IDLE,
  H2_DEADLINE_WRITE,
  type H2Hooks,
  Http2Connection,
} from "./connection.ts";
import { ByteWriter, Decoder, Encoder } from "./hpack.ts";
import {
  DATA,
  END_HEADERS,
  END_STREAM,
  GOAWAY,
  HEADERS,
  PREFACE,
  SETTINGS,
  SETTINGS_INITIAL_WINDOW_SIZE,
  WINDOW_UPDATE,
  writeFrameHeader,
} from "./frames.ts";
import type { Reply } from "../http/types.ts";

interface Out {
  type: number;
  flags: number;
  stream: number;
  payload: Uint8Array;
}

/** A connection over a fake transport; `frames()` parses what it wrote. */
function setup(reply: () => Reply, o: { writeBlocks?: boolean } = {}) {
  const written: Uint8Array[] = [];
  let closed = false;
  const deadlines: number[] = [];
  const released: number[] = [];
  let pendingWrite: (() => void) | null = null;
  const hooks: H2Hooks = {
    tap: () => ({
      handler: () => {
        const r = reply();
        return { ...r, release: () => released.push(1) };
      },
      onResponse() {},
    }),
    onDeadline: (k) => deadlines.push(k),
  };
  const c = new Http2Connection(
    {
      write(b) {
        written.push(b.slice());
        // A peer that stops reading: the write never completes.
        if (o.writeBlocks) return new Promise<void>((r) => pendingWrite = r);
        return undefined;
      },
      close() {
        closed = true;
        pendingWrite?.();
      },
    },
    hooks,
    { headerTimeoutMs: 1000, idleTimeoutMs: 2000, writeTimeoutMs: 3000 },
  );
  const enc = new Encoder();
  const frame = (type: number, flags: number, stream: number, payload: Uint8Array) => {
    const w = new ByteWriter();
    writeFrameHeader(w, payload.length, type, flags, stream);
    w.ensure(payload.length);
    w.buf.set(payload, w.length);
    w.length += payload.length;
    return w.bytes().slice();
  };
  const request = (stream: number, path: string) => {
    const w = new ByteWriter();
    enc.encode([[":method", "GET"], [":scheme", "https"], [":path", path]], w);
    return frame(HEADERS, END_HEADERS | END_STREAM, stream, w.bytes().slice());
  };
  const settings = (entries: Array<[number, number]> = []) => {
    const p = new Uint8Array(entries.length * 6);
    entries.forEach(([id, v], i) => {
      p[i * 6 + 1] = id;
      new DataView(p.buffer).setUint32(i * 6 + 2, v);
    });
    return frame(SETTINGS, 0, 0, p);
  };
  const dec = new Decoder();
  const frames = (): Out[] => {
    const out: Out[] = [];
    for (const b of written.splice(0)) {
      let i = 0;
      while (i < b.length) {
        const len = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
        const f = {
          type: b[i + 3],
          flags: b[i + 4],
          stream: new DataView(b.buffer, b.byteOffset).getUint32(i + 5) & 0x7fffffff,
          payload: b.slice(i + 9, i + 9 + len),
        };
        if (f.type === HEADERS) dec.decode(f.payload, [], 1 << 20);
        out.push(f);
        i += 9 + len;
      }
    }
    return out;
  };
  return {
    c,
    frame,
    request,
    settings,
    frames,
    deadlines,
    released,
    get closed() {
      return closed;
    },
  };
}

const turn = () => new Promise((r) => setTimeout(r, 0));
const body = (n: number): Reply => ({
  status: 200,
  headers: [],
  body: [new Uint8Array(n)],
  length: n,
});

Deno.test("engine: a request fed byte by byte is answered (SETTINGS, ACK, HEADERS, DATA with END_STREAM), then no buffer is held", async () => {
  const t = setup(() => body(10));
  const bytes = new Uint8Array([...PREFACE, ...t.settings(), ...t.request(1, "/x")]);
  for (let i = 0; i < bytes.length; i++) t.c.feed(bytes.subarray(i, i + 1));
  await turn();
  const f = t.frames();
  assert.deepEqual(f.map((x) => x.type), [SETTINGS, SETTINGS, HEADERS, DATA]);
  assert.equal(f[3].flags, END_STREAM);
  assert.equal(f[3].payload.length, 10);
  assert.deepEqual(t.released, [1]);
  // Idle again: no output or input buffer held (pooled per thread).
  assert.ok(t.c.buffered <= 2048, `idle connection holds ${t.c.buffered} bytes`);
});

Deno.test("engine: a partial frame past the header timeout closes with GOAWAY (trickled head)", async () => {
  const t = setup(() => body(1));
  t.c.feed(new Uint8Array([...PREFACE, ...t.settings()]));
  const req = t.request(1, "/x");
  t.c.feed(req.subarray(0, 5));
  assert.equal(t.c.tick(10_000), 0); // stamps the partial frame
  t.c.feed(req.subarray(5, 6)); // a byte more does not restart it
  assert.equal(t.c.tick(10_500), 0);
  assert.equal(t.c.tick(11_001), H2_DEADLINE_HEAD);
  await turn();
  assert.ok(t.frames().some((x) => x.type === GOAWAY));
  assert.ok(t.closed);
});

Deno.test("engine: no stream open for the idle timeout closes the connection", async () => {
  const t = setup(() => body(1));
  t.c.feed(new Uint8Array([...PREFACE, ...t.settings()]));
  await turn();
  assert.equal(t.c.tick(1_000), 0);
  assert.equal(t.c.tick(3_001), H2_DEADLINE_IDLE);
  await turn();
  assert.ok(t.closed);
});

Deno.test("engine: a zero window never opened hits the write deadline; no file buffer is held", async () => {
  const t = setup(() => body(100_000));
  t.c.feed(new Uint8Array([...PREFACE, ...t.settings([[SETTINGS_INITIAL_WINDOW_SIZE, 0]])]));
  for (let i = 0; i < 50; i++) t.c.feed(t.request(1 + 2 * i, "/x"));
  await turn();
  assert.equal(t.frames().filter((x) => x.type === DATA).length, 0);
  assert.equal(t.c.streams, 50);
  assert.ok(t.c.buffered < 256 * 1024, `buffered ${t.c.buffered}`);
  assert.equal(t.c.tick(0), 0);
  assert.equal(t.c.tick(2_000), 0);
  assert.equal(t.c.tick(3_001), H2_DEADLINE_WRITE);
  assert.ok(t.closed);
  assert.equal(t.released.length, 50, "every reply released");
});

Deno.test("engine: a peer that does not read: DATA stops at the high-water mark, the write deadline closes", async () => {
  const t = setup(() => body(4 << 20), { writeBlocks: true });
  t.c.feed(
    new Uint8Array([...PREFACE, ...t.settings([[SETTINGS_INITIAL_WINDOW_SIZE, 0x7fffffff]])]),
  );
  t.c.feed(t.frame(WINDOW_UPDATE, 0, 0, Uint8Array.of(0x7f, 0xff, 0, 0)));
  t.c.feed(t.request(1, "/x"));
  await turn();
  await turn();
  // One write is pending; the next buffer fills up to the mark only.
  assert.ok(t.c.buffered < 2 * 1024 * 1024, `buffered ${t.c.buffered}`);
  // 4 MiB of reply, a 2 GiB window: what is held is the pending write and one buffer to the mark.
  assert.ok(t.c.buffered < 1024 * 1024, `buffered ${t.c.buffered}`);
  assert.ok(t.c.tick(0) === 0);
  assert.equal(t.c.tick(3_001), H2_DEADLINE_WRITE);
  assert.ok(t.closed);
});

Deno.test("engine: drain sends GOAWAY; streams above its last id are ignored; the one in flight finishes, then close", async () => {
  const t = setup(() => body(100));
  t.c.feed(new Uint8Array([...PREFACE, ...t.settings([[SETTINGS_INITIAL_WINDOW_SIZE, 0]])]));
  t.c.feed(t.request(1, "/x"));
  await turn();
  const closed = t.c.drain();
  await turn();
  // A request racing the GOAWAY, with a body: ignored, not a connection error.
  t.c.feed(t.request(3, "/y"));
  t.c.feed(t.frame(DATA, END_STREAM, 3, new Uint8Array(5)));
  await turn();
  let f = t.frames();
  const goaways = f.filter((x) => x.type === GOAWAY);
  assert.equal(goaways.length, 1);
  assert.equal(new DataView(goaways[0].payload.buffer).getUint32(0), 1, "last stream id");
  assert.equal(new DataView(goaways[0].payload.buffer).getUint32(4), 0, "NO_ERROR");
  assert.ok(!t.closed);
  t.c.feed(t.frame(WINDOW_UPDATE, 0, 1, Uint8Array.of(0, 0, 1, 0)));
  await closed;
  f = t.frames();
  const data = f.filter((x) => x.type === DATA && x.stream === 1);
  assert.equal(data.reduce((n, x) => n + x.payload.length, 0), 100);
  assert.equal(data.at(-1)!.flags & END_STREAM, END_STREAM);
  assert.ok(!f.some((x) => x.stream === 3), "nothing sent on stream 3");
  assert.ok(t.closed);
});
