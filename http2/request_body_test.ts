/**
 * Request bodies over the HTTP/2 engine, on byte fixtures: a body method's
 * DATA reach `req.body` (write/body.ts's pipe) and its stream window stays
 * shut while the reader does not drain, reopening once it does; a reset
 * stream fails the body.
 */
import assert from "node:assert/strict";
import { Http2Connection } from "./connection.ts";
import { ByteWriter, Encoder } from "./hpack.ts";
import {
  DATA,
  END_HEADERS,
  END_STREAM,
  HEADERS,
  PREFACE,
  RST_STREAM,
  SETTINGS,
  WINDOW_UPDATE,
  writeFrameHeader,
} from "./frames.ts";
import type { RequestHead } from "../http/types.ts";
import type { BodyPipe } from "../write/body.ts";

function frame(type: number, flags: number, stream: number, payload: Uint8Array): Uint8Array {
  const w = new ByteWriter();
  writeFrameHeader(w, payload.length, type, flags, stream);
  w.ensure(payload.length);
  w.buf.set(payload, w.length);
  w.length += payload.length;
  return w.bytes().slice();
}

function setup() {
  const written: Uint8Array[] = [];
  let body!: BodyPipe;
  let got!: () => void;
  const handled = new Promise<void>((r) => got = r);
  const c = new Http2Connection({ write: (b) => void written.push(b.slice()), close() {} }, {
    tap: () => ({
      handler: (req: RequestHead) => {
        body = (req as RequestHead & { body: BodyPipe }).body;
        got();
        return new Promise(() => {}); // answered never: the test reads the body
      },
      onResponse() {},
    }),
  }, { bodies: { methods: new Set(["PUT"]), maxBytes: 1 << 20 } });
  const block = new ByteWriter();
  new Encoder().encode([[":method", "PUT"], [":scheme", "https"], [":path", "/up/x"]], block);
  c.feed(new Uint8Array([...PREFACE, ...frame(SETTINGS, 0, 0, new Uint8Array(0))]));
  c.feed(frame(HEADERS, END_HEADERS, 1, block.bytes().slice()));
  /** WINDOW_UPDATE increments sent for stream 1 since the last call. */
  const updates = () => {
    const out: number[] = [];
    for (const b of written.splice(0)) {
      for (let i = 0; i < b.length;) {
        const len = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
        const dv = new DataView(b.buffer, b.byteOffset);
        if (b[i + 3] === WINDOW_UPDATE && (dv.getUint32(i + 5) & 0x7fffffff) === 1) {
          out.push(dv.getUint32(i + 9) & 0x7fffffff);
        }
        if (b[i + 3] === RST_STREAM && (dv.getUint32(i + 5) & 0x7fffffff) === 1) out.push(-1);
        i += 9 + len;
      }
    }
    return out;
  };
  return { c, handled, body: () => body, updates };
}

const turn = () => new Promise((r) => setTimeout(r, 0));

Deno.test("h2 engine: a PUT body reaches req.body; its window stays shut until the reader drains", async () => {
  const t = setup();
  await t.handled;
  // A peer that sends whenever it has credit: with nobody reading, the credit runs out
  // once the pipe's queue is full (64 KiB) and the window (65535) is used.
  let credit = 65535, sent = 0;
  for (let rounds = 0; rounds < 100; rounds++) {
    while (credit >= 16384) {
      t.c.feed(frame(DATA, 0, 1, new Uint8Array(16384).fill(sent & 0xff)));
      credit -= 16384;
      sent += 16384;
    }
    await turn();
    const more = t.updates().reduce((x, y) => x + y, 0);
    if (more === 0) break;
    credit += more;
  }
  assert.ok(sent <= 65536 + 65535 + 16384, `${sent} bytes accepted with nobody reading`);
  let n = 0;
  const reading = (async () => {
    for await (const c of t.body().chunks()) n += c.length;
  })();
  // Reading drains the queue: the window opens again.
  let opened = 0;
  for (let i = 0; i < 50 && opened === 0; i++) {
    await turn();
    opened = t.updates().reduce((x, y) => x + y, 0);
  }
  assert.ok(opened > 0, "WINDOW_UPDATE once the reader drained");
  t.c.feed(frame(DATA, END_STREAM, 1, new Uint8Array(100)));
  await reading;
  assert.equal(n, sent + 100);
  assert.ok(!t.c.closed);
});

Deno.test("h2 engine: a stream reset before its body ends fails the reader", async () => {
  const t = setup();
  await t.handled;
  t.c.feed(frame(DATA, 0, 1, new Uint8Array(10)));
  const u = new Uint8Array(4);
  u[3] = 8; // CANCEL
  t.c.feed(frame(RST_STREAM, 0, 1, u));
  await assert.rejects(
    (async () => {
      for await (const _ of t.body().chunks()) { /* read */ }
    })(),
    /ended before its request body/,
  );
});
