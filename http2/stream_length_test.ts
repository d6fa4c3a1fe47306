/**
 * A streamed reply with a known length (zip/tar) over the HTTP/2 engine, on
 * byte fixtures: exactly that many DATA bytes then END_STREAM; a stream that
 * ends short or runs over is cut with RST_STREAM (HTTP/1.1 closes the
 * connection there), never sent as a complete body.
 */
import assert from "node:assert/strict";
import { Http2Connection } from "./connection.ts";
import { ByteWriter, Encoder } from "./hpack.ts";
import {
  DATA,
  END_HEADERS,
  END_STREAM,
  HEADERS,
  INTERNAL_ERROR,
  PREFACE,
  RST_STREAM,
  SETTINGS,
  writeFrameHeader,
} from "./frames.ts";
import type { Reply } from "../http/types.ts";

interface Out {
  type: number;
  flags: number;
  stream: number;
  payload: Uint8Array;
}

/** Serves one GET with `reply` and returns the frames of stream 1 once it ended. */
async function serveOne(reply: Reply): Promise<{ frames: Out[]; released: number }> {
  const written: Uint8Array[] = [];
  let released = 0;
  let ended!: () => void;
  const done = new Promise<void>((r) => ended = r);
  const c = new Http2Connection({ write: (b) => void written.push(b.slice()), close() {} }, {
    tap: () => ({
      handler: () => ({ ...reply, release: () => released++ }),
      onResponse: () => ended(),
    }),
  });
  const w = new ByteWriter();
  w.ensure(PREFACE.length);
  w.buf.set(PREFACE, 0);
  w.length = PREFACE.length;
  writeFrameHeader(w, 0, SETTINGS, 0, 0);
  const block = new ByteWriter();
  new Encoder().encode([[":method", "GET"], [":scheme", "https"], [":path", "/x"]], block);
  writeFrameHeader(w, block.length, HEADERS, END_HEADERS | END_STREAM, 1);
  w.ensure(block.length);
  w.buf.set(block.bytes(), w.length);
  w.length += block.length;
  c.feed(w.bytes().slice());
  await done;
  await new Promise((r) => setTimeout(r, 0)); // the last write of the turn
  const frames: Out[] = [];
  for (const b of written) {
    for (let i = 0; i < b.length;) {
      const len = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
      const stream = new DataView(b.buffer, b.byteOffset).getUint32(i + 5) & 0x7fffffff;
      if (stream === 1) {
        frames.push({
          type: b[i + 3],
          flags: b[i + 4],
          stream,
          payload: b.slice(i + 9, i + 9 + len),
        });
      }
      i += 9 + len;
    }
  }
  return { frames, released };
}

async function* chunks(...sizes: number[]): AsyncGenerator<Uint8Array> {
  for (const n of sizes) yield new Uint8Array(n).fill(n & 0xff);
}

const streamed = (length: number, ...sizes: number[]): Reply => ({
  status: 200,
  headers: [],
  body: [new Uint8Array(3)],
  length,
  stream: chunks(...sizes),
});

const dataBytes = (f: Out[]) =>
  f.filter((x) => x.type === DATA).reduce((n, x) => n + x.payload.length, 0);

Deno.test("h2 engine: a stream with a known length is sent whole, then END_STREAM", async () => {
  const { frames, released } = await serveOne(streamed(3 + 20_000 + 5, 20_000, 0, 5));
  assert.equal(frames[0].type, HEADERS);
  assert.equal(dataBytes(frames), 20_008);
  const last = frames[frames.length - 1];
  assert.equal(last.type, DATA);
  assert.equal(last.flags & END_STREAM, END_STREAM);
  assert.ok(!frames.some((x) => x.type === RST_STREAM));
  assert.equal(released, 1);
});

Deno.test("h2 engine: a stream that ends short of its length is reset, no END_STREAM", async () => {
  const { frames, released } = await serveOne(streamed(100, 40));
  assert.equal(dataBytes(frames), 43);
  assert.ok(!frames.some((x) => x.type === DATA && (x.flags & END_STREAM) !== 0));
  const rst = frames.find((x) => x.type === RST_STREAM);
  assert.ok(rst, "RST_STREAM sent");
  assert.equal(new DataView(rst.payload.buffer).getUint32(0), INTERNAL_ERROR);
  assert.equal(released, 1);
});

Deno.test("h2 engine: a stream that runs past its length is cut there and reset", async () => {
  // Over inside a chunk, and over by a whole chunk after the length was met exactly.
  for (const sizes of [[10, 30], [17, 1]]) {
    const { frames, released } = await serveOne(streamed(20, ...sizes));
    assert.ok(dataBytes(frames) <= 20, `${sizes}: ${dataBytes(frames)} bytes sent`);
    assert.ok(!frames.some((x) => x.type === DATA && (x.flags & END_STREAM) !== 0), `${sizes}`);
    assert.ok(frames.some((x) => x.type === RST_STREAM), `${sizes}: reset`);
    assert.equal(released, 1);
  }
});
