/**
 * Replies of unknown length (`Reply.stream`, `length: -1`): chunked on
 * HTTP/1.1, close-delimited on HTTP/1.0, no body for HEAD, backpressure,
 * and clean-up when the stream fails or the client leaves.
 */
import assert from "node:assert/strict";
import { ConnectionSet, HttpConnection, serveDenoConn, type Transport } from "./engine.ts";
import type { Handler, Reply } from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);

/** Records output; optionally holds writes until `flush()`. */
class MemTransport implements Transport {
  chunks: Uint8Array[] = [];
  closed = 0;
  hold = false;
  failWrites = false;
  #waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  write(b: Uint8Array): Promise<void> | void {
    if (this.failWrites) return Promise.reject(new Error("reset by peer"));
    this.chunks.push(b.slice());
    if (!this.hold) return;
    return new Promise<void>((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }
  /** Completes every held write; resolves after the engine had a turn. */
  async flush(): Promise<void> {
    for (const w of this.#waiting.splice(0)) w.resolve();
    await new Promise((r) => setTimeout(r, 0));
  }
  close(): void {
    this.closed++;
    for (const w of this.#waiting.splice(0)) w.reject(new Error("closed"));
  }
  get text(): string {
    return this.chunks.map((c) => dec.decode(c)).join("");
  }
}

/** An async iterable over `parts` that records how far it was pulled and whether it was closed. */
function source(parts: string[], failAt = -1) {
  const state = { started: false, pulled: 0, finished: false, returned: false };
  const iterable: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      state.started = true;
      try {
        for (let i = 0; i < parts.length; i++) {
          if (i === failAt) throw new Error("disk on fire");
          state.pulled++;
          yield bytes(parts[i]);
        }
        state.finished = true;
      } finally {
        state.returned = true;
      }
    },
  };
  return { iterable, state };
}

function streamHandler(stream: AsyncIterable<Uint8Array>, count: { released: number }): Handler {
  return (): Reply => ({
    status: 200,
    headers: [["Content-Type", "application/x-tar"]],
    body: [],
    length: -1,
    stream,
    release: () => void count.released++,
  });
}

const GET = (path = "/", extra = "", version = "1.1") =>
  `GET ${path} HTTP/${version}\r\nHost: h\r\n${extra}\r\n`;

Deno.test("engine: a stream reply on HTTP/1.1 is sent chunked, without Content-Length, and keeps the connection", async () => {
  const t = new MemTransport();
  const count = { released: 0 };
  const { iterable, state } = source(["ab", "", "cdefghijklmnopq"]);
  const c = new HttpConnection(t, streamHandler(iterable, count));
  await c.feed(bytes(GET()));
  const out = t.text;
  const head = out.slice(0, out.indexOf("\r\n\r\n"));
  const body = out.slice(head.length + 4);
  assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(head, /\r\nTransfer-Encoding: chunked\r\n/);
  assert.match(head, /\r\nConnection: keep-alive$/);
  assert.doesNotMatch(head, /Content-Length/i);
  // The empty chunk is skipped: it would end the body.
  assert.equal(body, "2\r\nab\r\nf\r\ncdefghijklmnopq\r\n0\r\n\r\n");
  assert.equal(state.finished, true);
  assert.equal(count.released, 1);
  assert.equal(c.closed, false);
  assert.equal(t.closed, 0);
});

Deno.test("engine: a pipelined request after a stream reply is answered after the last chunk", async () => {
  const t = new MemTransport();
  let n = 0;
  const c = new HttpConnection(t, () => {
    n++;
    const { iterable } = source([`body${n}`]);
    return { status: 200, headers: [], body: [bytes("<")], length: -1, stream: iterable };
  });
  await c.feed(bytes(GET("/a") + GET("/b")));
  const out = t.text;
  const first = out.indexOf("0\r\n\r\n");
  const second = out.indexOf("HTTP/1.1 200", 1);
  assert.ok(first > 0 && second > first, out);
  assert.match(out, /\r\n\r\n1\r\n<\r\n5\r\nbody1\r\n0\r\n\r\nHTTP\/1\.1 200 OK/);
  assert.ok(out.endsWith("1\r\n<\r\n5\r\nbody2\r\n0\r\n\r\n"));
});

Deno.test("engine: a stream reply on HTTP/1.0 is close-delimited, even when keep-alive was asked", async () => {
  const t = new MemTransport();
  const count = { released: 0 };
  const { iterable } = source(["hello ", "world"]);
  const c = new HttpConnection(t, streamHandler(iterable, count));
  await c.feed(bytes(GET("/", "Connection: keep-alive\r\n", "1.0")));
  const out = t.text;
  const head = out.slice(0, out.indexOf("\r\n\r\n"));
  assert.match(head, /\r\nConnection: close$/);
  assert.doesNotMatch(head, /Content-Length|Transfer-Encoding/i);
  assert.equal(out.slice(head.length + 4), "hello world");
  assert.equal(t.closed, 1, "the close ends the body");
  assert.equal(count.released, 1);
});

Deno.test("engine: HEAD of a stream reply sends the head only and never starts the stream", async () => {
  for (const version of ["1.1", "1.0"]) {
    const t = new MemTransport();
    const count = { released: 0 };
    const { iterable, state } = source(["x"]);
    const c = new HttpConnection(t, streamHandler(iterable, count));
    await c.feed(bytes(`HEAD / HTTP/${version}\r\nHost: h\r\nConnection: keep-alive\r\n\r\n`));
    const out = t.text;
    assert.ok(out.endsWith("\r\n\r\n"), out);
    assert.equal(out.indexOf("\r\n\r\n"), out.length - 4, "no body");
    if (version === "1.1") assert.match(out, /Transfer-Encoding: chunked/);
    else assert.doesNotMatch(out, /Transfer-Encoding/);
    assert.match(out, /Connection: keep-alive/, "no body to delimit, so the connection stays");
    assert.equal(state.started, false);
    assert.equal(count.released, 1);
    assert.equal(c.closed, false);
  }
});

Deno.test("engine: a stream is pulled only as fast as its chunks are written (backpressure)", async () => {
  const t = new MemTransport();
  t.hold = true;
  const count = { released: 0 };
  const { iterable, state } = source(["1", "2", "3", "4"]);
  const c = new HttpConnection(t, streamHandler(iterable, count));
  const done = c.feed(bytes(GET()));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(t.chunks.length, 1, "only the head is in flight");
  assert.equal(state.pulled, 0);
  await t.flush();
  assert.equal(state.pulled, 1, "one chunk pulled per completed write");
  assert.equal(t.chunks.length, 2);
  await t.flush();
  assert.equal(state.pulled, 2);
  while (t.chunks.length < 6) await t.flush();
  await t.flush();
  await done;
  assert.equal(state.finished, true);
  assert.equal(count.released, 1);
});

Deno.test("engine: a stream that throws closes the connection without the last chunk, logs once, releases once", async () => {
  const t = new MemTransport();
  const count = { released: 0 };
  const { iterable, state } = source(["ok", "never"], 1);
  const c = new HttpConnection(t, streamHandler(iterable, count));
  const logged: unknown[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => void logged.push(a.join(" "));
  try {
    await c.feed(bytes(GET() + GET("/next")));
  } finally {
    console.error = orig;
  }
  const out = t.text;
  assert.ok(out.endsWith("2\r\nok\r\n"), JSON.stringify(out));
  assert.doesNotMatch(out, /0\r\n\r\n$/);
  assert.equal((out.match(/HTTP\/1\.1/g) ?? []).length, 1, "the pipelined request is not answered");
  assert.equal(t.closed, 1);
  assert.equal(c.closed, true);
  assert.equal(count.released, 1);
  assert.equal(state.returned, true);
  assert.equal(logged.length, 1);
  assert.match(String(logged[0]), /disk on fire/);
});

Deno.test("engine: when the client goes away mid-stream the producer is closed (its finally runs)", async () => {
  const t = new MemTransport();
  const count = { released: 0 };
  const { iterable, state } = source(["a", "b", "c", "d"]);
  const c = new HttpConnection(t, streamHandler(iterable, count));
  let writes = 0;
  const write = t.write.bind(t);
  t.write = (b) => {
    if (++writes === 3) t.failWrites = true;
    return write(b);
  };
  await c.feed(bytes(GET()));
  assert.equal(state.returned, true);
  assert.equal(state.finished, false);
  assert.ok(state.pulled < 4);
  assert.equal(t.closed, 1);
  assert.equal(count.released, 1);
});

Deno.test("engine: a stream reply with rawHead, a FileSlice part or a length below -1 is a 500", async () => {
  const { iterable } = source(["x"]);
  const bad: Reply[] = [
    { status: 200, headers: [], body: [], length: -1, stream: iterable, rawHead: bytes("x") },
    { status: 200, headers: [], body: [], length: -2, stream: iterable },
    {
      status: 200,
      headers: [],
      body: [{ file: null as unknown as Deno.FsFile, start: 0, end: 0 }],
      length: -1,
      stream: iterable,
    },
    { status: 99, headers: [], body: [], length: -1, stream: iterable },
    { status: 200, headers: [["X", "a\r\nb"]], body: [], length: -1, stream: iterable },
  ];
  const orig = console.error;
  console.error = () => {};
  try {
    for (const reply of bad) {
      const t = new MemTransport();
      let released = 0;
      const c = new HttpConnection(t, () => ({ ...reply, release: () => void released++ }));
      await c.feed(bytes(GET()));
      assert.match(t.text, /^HTTP\/1\.1 500 /);
      assert.equal(released, 1);
      assert.equal(t.closed, 1);
    }
  } finally {
    console.error = orig;
  }
});

Deno.test("serveDenoConn: fetch reads a chunked stream reply and the connection is reused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const set = new ConnectionSet();
  const served: Promise<void>[] = [];
  const big = new Uint8Array(300_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  const handler: Handler = () => ({
    status: 200,
    headers: [["Content-Type", "application/octet-stream"]],
    body: [],
    length: -1,
    stream: (async function* () {
      for (let off = 0; off < big.length; off += 70_000) yield big.subarray(off, off + 70_000);
    })(),
  });
  const accepting = (async () => {
    for await (const conn of listener) served.push(serveDenoConn(conn, handler, set));
  })();
  const client = Deno.createHttpClient({});
  try {
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`http://127.0.0.1:${listener.addr.port}/`, { client });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("transfer-encoding"), "chunked");
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), big);
    }
    assert.equal(served.length, 1, "both requests went over one kept-alive connection");
  } finally {
    client.close();
    await set.drain();
    listener.close();
    await accepting;
    await Promise.all(served);
  }
});

// zip: a stream whose length is known ahead (a folder archive).
function knownLength(stream: AsyncIterable<Uint8Array>, length: number): Handler {
  return (): Reply => ({ status: 200, headers: [], body: [], length, stream });
}

Deno.test("engine: a stream reply with a known length goes out with Content-Length, unchunked, kept alive", async () => {
  const t = new MemTransport();
  const { iterable, state } = source(["ab", "cde"]);
  const c = new HttpConnection(t, knownLength(iterable, 5));
  await c.feed(bytes(GET()));
  const out = t.text;
  const head = out.slice(0, out.indexOf("\r\n\r\n"));
  assert.match(head, /\r\nContent-Length: 5\r\n/);
  assert.doesNotMatch(head, /Transfer-Encoding/i);
  assert.match(head, /\r\nConnection: keep-alive$/);
  assert.equal(out.slice(head.length + 4), "abcde");
  assert.equal(state.finished, true);
  assert.equal(t.closed, 0);
});

Deno.test("engine: a known-length stream that ends short or runs over is cut at that point", async () => {
  for (const [parts, length, sent] of [[["ab"], 5, "ab"], [["ab", "cdefg"], 5, "ab"]] as const) {
    const t = new MemTransport();
    const { iterable } = source([...parts]);
    const c = new HttpConnection(t, knownLength(iterable, length));
    const orig = console.error;
    console.error = () => {};
    try {
      await c.feed(bytes(GET()));
    } finally {
      console.error = orig;
    }
    const out = t.text;
    assert.match(out, /Content-Length: 5\r\n/);
    assert.equal(out.slice(out.indexOf("\r\n\r\n") + 4), sent);
    assert.equal(t.closed, 1, "closed, so the client sees a short body");
  }
});
