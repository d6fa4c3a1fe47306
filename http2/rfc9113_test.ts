/**
 * RFC 9113 over raw TLS sockets against the real server: one table row per
 * error case (the clause beside it), then flow-control arithmetic, stream
 * states, CONTINUATION, and graceful GOAWAY. Frames are built byte by byte
 * (`_test_client.ts`).
 */
import assert from "node:assert/strict";
import { makeCerts } from "../tests/_certs.ts";
import { type ServerProcess, startCluster } from "../tests/_harness.ts";
import { get, RawH2, settingsPayload, u32Payload } from "./_test_client.ts";
import {
  COMPRESSION_ERROR,
  CONTINUATION,
  DATA,
  END_HEADERS,
  END_STREAM,
  FLOW_CONTROL_ERROR,
  FRAME_SIZE_ERROR,
  GOAWAY,
  HEADERS,
  NO_ERROR,
  PADDED,
  PING,
  PRIORITY,
  PROTOCOL_ERROR,
  PUSH_PROMISE,
  RST_STREAM,
  SETTINGS,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_FRAME_SIZE,
  STREAM_CLOSED,
  WINDOW_UPDATE,
} from "./frames.ts";

const dir = await Deno.makeTempDir({ prefix: "ringhttpd_h2rfc_" });
const root = `${dir}/root`;
await Deno.mkdir(root);
await Deno.writeTextFile(`${root}/a.txt`, "hello h2");
const SIZE = 1000;
const thousand = new Uint8Array(SIZE).map((_, i) => i & 0xff);
await Deno.writeFile(`${root}/k.bin`, thousand);
const BIG = 300_000;
await Deno.writeFile(`${root}/big.bin`, new Uint8Array(BIG).fill(7));
const { cert, key, ca } = await makeCerts(dir);
const server: ServerProcess = await startCluster({ root, cert, key, workers: 1 }, {
  perms: ["--allow-net", "--allow-read", "--allow-ffi", "--allow-sys"],
});
const port = server.port;
globalThis.addEventListener("unload", () => {
  server.kill("SIGKILL");
  Deno.removeSync(dir, { recursive: true });
});
const opts = { sanitizeResources: false, sanitizeOps: false };
const enc = new TextEncoder();

async function open(settings: Array<[number, number]> = []): Promise<RawH2> {
  return await RawH2.open(port, ca, { settings });
}

type Expect = { goaway: number } | { rst: [number, number] };
interface Row {
  sec: string;
  what: string;
  send(c: RawH2): Promise<unknown>;
  expect: Expect;
}

const f = (
  c: RawH2,
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array = new Uint8Array(0),
) => c.frame(type, flags, stream, payload);

const ROWS: Row[] = [
  {
    sec: "3.4",
    what: "a wrong preface",
    send: async (c) => {
      c.close();
      const raw = await RawH2.open(port, ca, { preface: false });
      await raw.send(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      Object.assign(c, { conn: raw.conn });
    },
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "4.2",
    what: "a frame over SETTINGS_MAX_FRAME_SIZE",
    send: (c) => f(c, 0xfa, 0, 0, new Uint8Array(16385)),
    expect: { goaway: FRAME_SIZE_ERROR },
  },
  {
    sec: "5.1",
    what: "DATA on an idle stream",
    send: (c) => f(c, DATA, 0, 1, new Uint8Array(3)),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "5.1",
    what: "RST_STREAM on an idle stream",
    send: (c) => f(c, RST_STREAM, 0, 3, u32Payload(8)),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "5.1",
    what: "WINDOW_UPDATE on an idle stream",
    send: (c) => f(c, WINDOW_UPDATE, 0, 5, u32Payload(100)),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "5.1",
    what: "HEADERS on a half-closed (remote) stream",
    send: async (c) => {
      await c.headers(1, get("/big.bin"));
      await c.headers(1, [["x-trailer", "1"]]);
    },
    expect: { rst: [1, STREAM_CLOSED] },
  },
  {
    sec: "5.1",
    what: "DATA on a half-closed (remote) stream",
    send: async (c) => {
      await c.headers(1, get("/big.bin"));
      await f(c, DATA, 0, 1, new Uint8Array(2));
    },
    expect: { rst: [1, STREAM_CLOSED] },
  },
  {
    sec: "5.1.1",
    what: "an even stream id",
    send: (c) => c.headers(2, get("/a.txt")),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "5.1.1",
    what: "a stream id below the last one",
    send: async (c) => {
      await c.headers(5, get("/a.txt"));
      await c.headers(3, get("/a.txt"));
    },
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "5.3.1",
    what: "a stream depending on itself (PRIORITY)",
    send: (c) => f(c, PRIORITY, 0, 1, Uint8Array.of(0, 0, 0, 1, 16)),
    expect: { rst: [1, PROTOCOL_ERROR] },
  },
  {
    sec: "5.5",
    what: "an unknown frame type inside a header block",
    send: async (c) => {
      await c.headers(1, get("/a.txt"), { endHeaders: false });
      await f(c, 0xfa, 0, 0, new Uint8Array(4));
    },
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.1",
    what: "DATA on stream 0",
    send: (c) => f(c, DATA, 0, 0, new Uint8Array(1)),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.1",
    what: "padding as long as the payload",
    send: async (c) => {
      await c.headers(1, get("/a.txt"), { endStream: false });
      await f(c, DATA, PADDED, 1, Uint8Array.of(4, 0, 0, 0));
    },
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.2",
    what: "HEADERS on stream 0",
    send: (c) => c.headers(0, get("/a.txt")),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.3",
    what: "PRIORITY of length 4",
    send: (c) => f(c, PRIORITY, 0, 1, new Uint8Array(4)),
    expect: { rst: [1, FRAME_SIZE_ERROR] },
  },
  {
    sec: "6.3",
    what: "PRIORITY on stream 0",
    send: (c) => f(c, PRIORITY, 0, 0, new Uint8Array(5)),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.4",
    what: "RST_STREAM on stream 0",
    send: (c) => f(c, RST_STREAM, 0, 0, u32Payload(0)),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.4",
    what: "RST_STREAM of length 3",
    send: async (c) => {
      await c.headers(1, get("/big.bin"));
      await f(c, RST_STREAM, 0, 1, new Uint8Array(3));
    },
    expect: { goaway: FRAME_SIZE_ERROR },
  },
  {
    sec: "6.5",
    what: "SETTINGS on a stream",
    send: (c) => f(c, SETTINGS, 0, 1, new Uint8Array(0)),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.5",
    what: "SETTINGS of length 5",
    send: (c) => f(c, SETTINGS, 0, 0, new Uint8Array(5)),
    expect: { goaway: FRAME_SIZE_ERROR },
  },
  {
    sec: "6.5",
    what: "SETTINGS ACK with a payload",
    send: (c) => f(c, SETTINGS, 1, 0, new Uint8Array(6)),
    expect: { goaway: FRAME_SIZE_ERROR },
  },
  {
    sec: "6.5.2",
    what: "ENABLE_PUSH of 2",
    send: (c) => f(c, SETTINGS, 0, 0, settingsPayload([[SETTINGS_ENABLE_PUSH, 2]])),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.5.2",
    what: "INITIAL_WINDOW_SIZE over 2^31-1",
    send: (c) => f(c, SETTINGS, 0, 0, settingsPayload([[SETTINGS_INITIAL_WINDOW_SIZE, 2 ** 31]])),
    expect: { goaway: FLOW_CONTROL_ERROR },
  },
  {
    sec: "6.5.2",
    what: "MAX_FRAME_SIZE under 16384",
    send: (c) => f(c, SETTINGS, 0, 0, settingsPayload([[SETTINGS_MAX_FRAME_SIZE, 16383]])),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.7",
    what: "PING of length 7",
    send: (c) => f(c, PING, 0, 0, new Uint8Array(7)),
    expect: { goaway: FRAME_SIZE_ERROR },
  },
  {
    sec: "6.7",
    what: "PING on a stream",
    send: (c) => f(c, PING, 0, 1, new Uint8Array(8)),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.8",
    what: "GOAWAY on a stream",
    send: (c) => f(c, GOAWAY, 0, 1, new Uint8Array(8)),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.9",
    what: "WINDOW_UPDATE of 0 on the connection",
    send: (c) => f(c, WINDOW_UPDATE, 0, 0, u32Payload(0)),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.9",
    what: "WINDOW_UPDATE of 0 on a stream",
    send: async (c) => {
      await c.headers(1, get("/big.bin"));
      await f(c, WINDOW_UPDATE, 0, 1, u32Payload(0));
    },
    expect: { rst: [1, PROTOCOL_ERROR] },
  },
  {
    sec: "6.9",
    what: "WINDOW_UPDATE of length 3",
    send: (c) => f(c, WINDOW_UPDATE, 0, 0, new Uint8Array(3)),
    expect: { goaway: FRAME_SIZE_ERROR },
  },
  {
    sec: "6.9.1",
    what: "a connection window over 2^31-1",
    send: (c) => f(c, WINDOW_UPDATE, 0, 0, u32Payload(2 ** 31 - 1)),
    expect: { goaway: FLOW_CONTROL_ERROR },
  },
  {
    sec: "6.9.1",
    what: "a stream window over 2^31-1",
    send: async (c) => {
      await f(c, SETTINGS, 0, 0, settingsPayload([[SETTINGS_INITIAL_WINDOW_SIZE, 0]]));
      await c.headers(1, get("/big.bin"));
      await f(c, WINDOW_UPDATE, 0, 1, u32Payload(2 ** 31 - 1));
      await f(c, WINDOW_UPDATE, 0, 1, u32Payload(1));
    },
    expect: { rst: [1, FLOW_CONTROL_ERROR] },
  },
  {
    sec: "5.1",
    what: "HEADERS on a stream the client reset (closed)",
    send: async (c) => {
      await c.headers(1, get("/big.bin"));
      await f(c, RST_STREAM, 0, 1, u32Payload(8));
      await c.headers(1, get("/a.txt"));
    },
    expect: { goaway: STREAM_CLOSED },
  },
  {
    sec: "6.9.2",
    what: "INITIAL_WINDOW_SIZE overflowing an open stream's window",
    send: async (c) => {
      // Stream 1 takes the whole connection window, so stream 3 is sent nothing:
      // its window is exactly 65,535 + the update = 2^31-1 when the SETTINGS adds 1.
      await c.headers(1, get("/big.bin"));
      let got = 0;
      while (got < 65535) {
        const d = await c.until((x) => x.type === DATA);
        if (d === null) throw new Error("no DATA");
        got += d.payload.length;
      }
      await c.headers(3, get("/big.bin"));
      await f(c, WINDOW_UPDATE, 0, 3, u32Payload(2 ** 31 - 1 - 65535));
      await f(c, SETTINGS, 0, 0, settingsPayload([[SETTINGS_INITIAL_WINDOW_SIZE, 65536]]));
    },
    expect: { goaway: FLOW_CONTROL_ERROR },
  },
  {
    sec: "6.10",
    what: "CONTINUATION without HEADERS",
    send: (c) => f(c, CONTINUATION, END_HEADERS, 1, c.block(get("/a.txt"))),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "6.10",
    what: "CONTINUATION on another stream",
    send: async (c) => {
      const b = c.block(get("/a.txt"));
      await f(c, HEADERS, END_STREAM, 1, b.subarray(0, 2));
      await f(c, CONTINUATION, END_HEADERS, 3, b.subarray(2));
    },
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "8.1.1",
    what: "DATA beyond content-length",
    send: async (c) => {
      await c.headers(1, get("/big.bin", [["content-length", "1"]]), { endStream: false });
      await f(c, DATA, END_STREAM, 1, new Uint8Array(2));
    },
    expect: { rst: [1, PROTOCOL_ERROR] },
  },
  {
    sec: "8.2",
    what: "an upper-case field name",
    send: (c) => c.headers(1, get("/a.txt", [["X-Up", "1"]])),
    expect: { rst: [1, PROTOCOL_ERROR] },
  },
  {
    sec: "8.2.2",
    what: "a connection-specific field",
    send: (c) => c.headers(1, get("/a.txt", [["connection", "keep-alive"]])),
    expect: { rst: [1, PROTOCOL_ERROR] },
  },
  {
    sec: "8.2.2",
    what: "TE other than trailers",
    send: (c) => c.headers(1, get("/a.txt", [["te", "gzip"]])),
    expect: { rst: [1, PROTOCOL_ERROR] },
  },
  {
    sec: "8.3",
    what: "a pseudo-header after a regular one",
    send: (c) =>
      c.headers(1, [[":method", "GET"], [":scheme", "https"], ["x", "1"], [":path", "/"]]),
    expect: { rst: [1, PROTOCOL_ERROR] },
  },
  {
    sec: "8.3",
    what: "an unknown pseudo-header",
    send: (c) => c.headers(1, get("/a.txt", [[":status", "200"]]).sort()),
    expect: { rst: [1, PROTOCOL_ERROR] },
  },
  {
    sec: "8.3.1",
    what: "no :path",
    send: (c) => c.headers(1, [[":method", "GET"], [":scheme", "https"]]),
    expect: { rst: [1, PROTOCOL_ERROR] },
  },
  {
    sec: "8.3.1",
    what: "a duplicated :method",
    send: (c) => c.headers(1, [[":method", "GET"], ...get("/a.txt")]),
    expect: { rst: [1, PROTOCOL_ERROR] },
  },
  {
    sec: "8.4",
    what: "PUSH_PROMISE from the client",
    send: (c) => f(c, PUSH_PROMISE, END_HEADERS, 1, new Uint8Array(4)),
    expect: { goaway: PROTOCOL_ERROR },
  },
  {
    sec: "RFC 7541 (via 4.3)",
    what: "an HPACK index past the table",
    send: (c) => f(c, HEADERS, END_HEADERS | END_STREAM, 1, Uint8Array.of(0xff, 0x10)),
    expect: { goaway: COMPRESSION_ERROR },
  },
];

for (const row of ROWS) {
  const want = "goaway" in row.expect
    ? `GOAWAY ${row.expect.goaway}`
    : `RST_STREAM ${row.expect.rst[1]}`;
  Deno.test(`RFC 9113 sec. ${row.sec}: ${row.what} -> ${want}`, opts, async () => {
    const c = await open();
    try {
      await row.send(c);
      if ("goaway" in row.expect) {
        assert.equal(await c.goaway(), row.expect.goaway);
        assert.ok(await c.closed(), "closed after GOAWAY");
      } else {
        const [stream, code] = row.expect.rst;
        assert.equal(await c.rst(stream), code);
        // A stream error leaves the connection usable.
        await c.headers(101, get("/a.txt"));
        assert.equal((await c.response(101))?.get(":status"), "200");
      }
    } finally {
      c.close();
    }
  });
}

/** Reads DATA on `stream` until `n` octets or a pause of `quietMs`; returns the count and END_STREAM. */
async function readData(c: RawH2, stream: number, quietMs = 500): Promise<[number, boolean]> {
  let got = 0;
  while (true) {
    const fr = await c.until((x) => x.type === DATA && x.stream === stream, quietMs);
    if (fr === null) return [got, false];
    got += fr.payload.length;
    if (fr.flags & END_STREAM) return [got, true];
  }
}

/** DATA octets per stream (1 and 3) until both ended or a pause of `quietMs`. */
async function readBoth(c: RawH2, quietMs: number) {
  const got: Record<number, number> & { ended: Set<number> } = { 1: 0, 3: 0, ended: new Set() };
  while (got.ended.size < 2) {
    const fr = await c.until((x) => x.type === DATA, quietMs);
    if (fr === null) break;
    got[fr.stream] += fr.payload.length;
    if (fr.flags & END_STREAM) got.ended.add(fr.stream);
  }
  return got;
}

Deno.test(
  "RFC 9113 sec. 3.4, 6.5, 6.7: the server's SETTINGS come first; SETTINGS and PING are acknowledged",
  opts,
  async () => {
    const c = await open();
    try {
      const first = await c.next();
      assert.equal(first?.type, SETTINGS);
      assert.equal(first!.flags & 1, 0);
      assert.ok(await c.until((x) => x.type === SETTINGS && x.flags === 1), "SETTINGS ACK");
      await f(c, PING, 0, 0, enc.encode("12345678"));
      const pong = await c.until((x) => x.type === PING);
      assert.equal(pong?.flags, 1);
      assert.equal(new TextDecoder().decode(pong!.payload), "12345678");
    } finally {
      c.close();
    }
  },
);

Deno.test(
  "RFC 9113 sec. 6.9, 6.9.2: DATA never exceeds the stream window, and windows move with WINDOW_UPDATE and INITIAL_WINDOW_SIZE",
  opts,
  async () => {
    const c = await open([[SETTINGS_INITIAL_WINDOW_SIZE, 100]]);
    try {
      await c.headers(1, get("/k.bin"));
      assert.equal((await c.response(1))?.get("content-length"), String(SIZE));
      assert.deepEqual(await readData(c, 1), [100, false]);
      await f(c, WINDOW_UPDATE, 0, 1, u32Payload(250));
      assert.deepEqual(await readData(c, 1), [250, false]);
      // A larger INITIAL_WINDOW_SIZE moves every open stream's window by the difference.
      await f(c, SETTINGS, 0, 0, settingsPayload([[SETTINGS_INITIAL_WINDOW_SIZE, 500]]));
      assert.deepEqual(await readData(c, 1), [400, false]);
      await f(c, WINDOW_UPDATE, 0, 1, u32Payload(10_000));
      assert.deepEqual(await readData(c, 1), [SIZE - 750, true]);
    } finally {
      c.close();
    }
  },
);

Deno.test(
  "RFC 9113 sec. 6.9.1: the connection window bounds all streams together",
  opts,
  async () => {
    // Stream windows are large; the connection window stays 65,535 until opened.
    const c = await open([[SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20]]);
    try {
      await c.headers(1, get("/big.bin"));
      await c.headers(3, get("/big.bin"));
      const first = await readBoth(c, 400);
      assert.equal(first[1] + first[3], 65535);
      await f(c, WINDOW_UPDATE, 0, 0, u32Payload(2 * BIG));
      const rest = await readBoth(c, 3000);
      const [a, b, a2, b2] = [first[1], first[3], rest[1], rest[3]];
      const [endA, endB] = [rest.ended.has(1), rest.ended.has(3)];
      assert.deepEqual([a + a2, b + b2, endA, endB], [BIG, BIG, true, true]);
    } finally {
      c.close();
    }
  },
);

Deno.test(
  "RFC 9113 sec. 6.10, 8.1: a request split over CONTINUATION frames, HEAD, 404, and padded HEADERS",
  opts,
  async () => {
    const c = await open();
    try {
      const b = c.block(get("/a.txt", [["user-agent", "x".repeat(300)]]));
      await f(c, HEADERS, END_STREAM, 1, b.subarray(0, 10));
      await f(c, CONTINUATION, 0, 1, b.subarray(10, 20));
      await f(c, CONTINUATION, END_HEADERS, 1, b.subarray(20));
      const r = await c.response(1);
      assert.equal(r?.get(":status"), "200");
      assert.equal(r?.get("content-length"), "8");
      const [n, end] = await readData(c, 1);
      assert.deepEqual([n, end], [8, true]);
      await c.headers(3, [[":method", "HEAD"], ...get("/a.txt").slice(1)]);
      const head = await c.until((x) => x.type === HEADERS && x.stream === 3);
      assert.equal(head!.flags & END_STREAM, END_STREAM, "HEAD: END_STREAM on HEADERS");
      await c.headers(5, get("/nope"));
      assert.equal((await c.response(5))?.get(":status"), "404");
      const block = c.block(get("/a.txt"));
      const padded = new Uint8Array(1 + block.length + 7);
      padded[0] = 7;
      padded.set(block, 1);
      await f(c, HEADERS, END_HEADERS | END_STREAM | PADDED, 7, padded);
      assert.equal((await c.response(7))?.get(":status"), "200");
    } finally {
      c.close();
    }
  },
);

Deno.test(
  "a request body is not handed to the handler yet: a PUT without Content-Length gets 411, a GET with DATA is served",
  opts,
  async () => {
    const c = await open();
    try {
      await c.headers(1, [[":method", "PUT"], ...get("/new.txt").slice(1)], { endStream: false });
      await f(c, DATA, END_STREAM, 1, enc.encode("data"));
      assert.equal((await c.response(1))?.get(":status"), "411");
      await c.headers(3, get("/a.txt"), { endStream: false });
      await f(c, DATA, END_STREAM, 3, new Uint8Array(0));
      assert.equal((await c.response(3))?.get(":status"), "200");
    } finally {
      c.close();
    }
    await assert.rejects(Deno.stat(`${root}/new.txt`), Deno.errors.NotFound);
  },
);

Deno.test(
  "RFC 9113 sec. 6.8: SIGTERM sends GOAWAY with the last stream id; the stream in flight finishes",
  opts,
  async () => {
    const s2 = await startCluster({ root, cert, key, workers: 1 }, {
      perms: ["--allow-net", "--allow-read", "--allow-ffi", "--allow-sys"],
    });
    try {
      const c = await RawH2.open(s2.port, ca, { settings: [[SETTINGS_INITIAL_WINDOW_SIZE, 1000]] });
      await c.headers(1, get("/big.bin"));
      assert.deepEqual(await readData(c, 1), [1000, false]);
      s2.kill("SIGTERM");
      const g = await c.until((x) => x.type === GOAWAY, 10_000);
      assert.ok(g, "GOAWAY");
      assert.equal(new DataView(g!.payload.buffer).getUint32(0), 1, "last stream id");
      assert.equal(new DataView(g!.payload.buffer).getUint32(4), NO_ERROR);
      await f(c, WINDOW_UPDATE, 0, 1, u32Payload(BIG));
      await f(c, WINDOW_UPDATE, 0, 0, u32Payload(BIG));
      const [rest, end] = await readData(c, 1, 3000);
      assert.deepEqual([1000 + rest, end], [BIG, true]);
      assert.ok(await c.closed(), "closed after the last stream");
      c.close();
      assert.equal((await s2.status).code, 0);
    } finally {
      await s2.stop();
    }
  },
);
