import assert from "node:assert/strict";
import {
  ConnectionSet,
  DEADLINE_HEAD,
  DEADLINE_IDLE,
  HttpConnection,
  serveDenoConn,
  SHED_IDLE,
  type Transport,
} from "./engine.ts";
import type { Handler, Reply, RequestHead } from "./types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);

/** An in-memory transport: records output, optionally holds writes until released. */
class MemTransport implements Transport {
  chunks: Uint8Array[] = [];
  closed = 0;
  hold = false;
  #waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
  write(b: Uint8Array): Promise<void> | void {
    this.chunks.push(b.slice());
    if (!this.hold) return;
    return new Promise<void>((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }
  /** Completes every held write. */
  flush(): void {
    for (const w of this.#waiting.splice(0)) w.resolve();
  }
  close(): void {
    this.closed++;
    for (const w of this.#waiting.splice(0)) w.reject(new Error("closed"));
  }
  get text(): string {
    return this.chunks.map((c) => dec.decode(c)).join("");
  }
  /** Status codes of the responses written, in order. */
  get statuses(): number[] {
    return [...this.text.matchAll(/HTTP\/1\.1 (\d{3}) [A-Z]/g)].map((m) => Number(m[1]));
  }
}

const text = (s: string, status = 200): Reply => ({
  status,
  headers: [["Content-Type", "text/plain"]],
  body: [bytes(s)],
  length: bytes(s).length,
});

/** A handler that answers the path, counts calls and releases. */
function echo() {
  const seen: RequestHead[] = [];
  let released = 0;
  const handler: Handler = (req) => {
    seen.push(req);
    return { ...text(req.path), release: () => void released++ };
  };
  return { handler, seen, released: () => released };
}

const GET = (path = "/", extra = "") => `GET ${path} HTTP/1.1\r\nHost: h\r\n${extra}\r\n`;

Deno.test("engine: answers a GET with status line, headers, Date, Connection, Content-Length, body", async () => {
  const t = new MemTransport();
  const e = echo();
  const c = new HttpConnection(t, e.handler);
  await c.feed(bytes(GET("/hello")));
  assert.equal(t.chunks.length, 1, "head and small body in one write");
  const out = t.text;
  assert.match(
    out,
    /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/plain\r\nContent-Length: 6\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\nConnection: keep-alive\r\n\r\n\/hello$/,
  );
  assert.equal(e.released(), 1);
  assert.equal(c.closed, false);
  assert.equal(t.closed, 0);
});

Deno.test("engine: a request split at every byte offset gets exactly one response", async () => {
  const req = bytes(GET("/split", "Accept: */*\r\n"));
  for (let cut = 1; cut < req.length; cut++) {
    const t = new MemTransport();
    const e = echo();
    const c = new HttpConnection(t, e.handler);
    await c.feed(req.subarray(0, cut));
    assert.equal(t.chunks.length, 0, `cut ${cut}`);
    await c.feed(req.subarray(cut));
    assert.deepEqual(t.statuses, [200], `cut ${cut}`);
    assert.equal(e.seen[0].path, "/split");
  }
});

Deno.test("engine: the engine copies what it keeps (the caller reuses its read buffer)", async () => {
  const t = new MemTransport();
  const e = echo();
  const c = new HttpConnection(t, e.handler);
  const req = bytes(GET("/copy"));
  const buf = new Uint8Array(req.length);
  buf.set(req.subarray(0, 10));
  await c.feed(buf.subarray(0, 10));
  buf.fill(0x21);
  buf.set(req.subarray(10));
  await c.feed(buf.subarray(0, req.length - 10));
  assert.equal(e.seen[0].path, "/copy");
});

Deno.test("engine: pipelined requests in one read are answered in order, once each", async () => {
  const t = new MemTransport();
  const e = echo();
  const c = new HttpConnection(t, e.handler);
  await c.feed(bytes(GET("/1") + GET("/2") + GET("/3")));
  assert.deepEqual(t.statuses, [200, 200, 200]);
  assert.deepEqual([...t.text.matchAll(/\r\n\r\n(\/\d)/g)].map((m) => m[1]), ["/1", "/2", "/3"]);
  assert.equal(e.released(), 3);
});

Deno.test("engine: pipelined requests with an async handler and slow writes stay in order", async () => {
  const t = new MemTransport();
  t.hold = true;
  const order: string[] = [];
  const c = new HttpConnection(t, async (req) => {
    order.push(req.path);
    await Promise.resolve();
    return text(req.path);
  });
  const done = c.feed(bytes(GET("/a") + GET("/b")));
  assert.ok(done instanceof Promise);
  // Let the handler run, then complete writes one at a time.
  while (t.statuses.length < 2) {
    await new Promise<void>((r) => queueMicrotask(r));
    t.flush();
  }
  await done;
  assert.deepEqual(order, ["/a", "/b"]);
  assert.deepEqual([...t.text.matchAll(/\r\n\r\n(\/\w)/g)].map((m) => m[1]), ["/a", "/b"]);
});

Deno.test("engine: HTTP/1.0 closes after the response unless keep-alive was asked", async () => {
  {
    const t = new MemTransport();
    const c = new HttpConnection(t, echo().handler);
    await c.feed(bytes("GET /x HTTP/1.0\r\n\r\n"));
    assert.match(t.text, /Connection: close\r\n/);
    assert.equal(t.closed, 1);
    assert.equal(c.closed, true);
  }
  {
    const t = new MemTransport();
    const c = new HttpConnection(t, echo().handler);
    await c.feed(bytes("GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert.match(t.text, /Connection: keep-alive\r\n/);
    assert.equal(t.closed, 0);
  }
  {
    const t = new MemTransport();
    const c = new HttpConnection(t, echo().handler);
    await c.feed(bytes(GET("/x", "Connection: close\r\n") + GET("/y")));
    assert.deepEqual(t.statuses, [200], "nothing after Connection: close");
    assert.equal(t.closed, 1);
  }
});

Deno.test("engine: parser errors get the pre-serialised response and close; no second response", async () => {
  const cases: [string, number][] = [
    ["GET / HTTP/1.1\r\n\r\n", 400],
    ["GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505],
    [GET("/", "Transfer-Encoding: gzip, chunked\r\n"), 501],
    [GET("/", "Content-Length: 70000\r\n"), 413],
    [`GET /${"a".repeat(9000)} HTTP/1.1\r\n`, 414],
    ["GET / HTTP/1.1\r\nHost: h\r\n" + "X: y\r\n".repeat(100) + "\r\n", 431],
  ];
  for (const [req, status] of cases) {
    const t = new MemTransport();
    const e = echo();
    const statuses: number[] = [];
    const c = new HttpConnection(t, e.handler, {}, {
      onResponse: (r, s) => {
        assert.equal(r, null);
        statuses.push(s);
      },
    });
    await c.feed(bytes(req + GET("/after")));
    assert.deepEqual(t.statuses, [status], req.slice(0, 40));
    assert.deepEqual(statuses, [status]);
    assert.match(t.text, /Connection: close\r\n/);
    assert.equal(e.seen.length, 0);
    assert.equal(t.closed, 1);
    assert.equal(c.closed, true);
    await c.feed(bytes(GET("/later")));
    assert.deepEqual(t.statuses, [status]);
  }
});

Deno.test("engine: a body of Content-Length bytes is skipped, never parsed as a request", async () => {
  const t = new MemTransport();
  const e = echo();
  const c = new HttpConnection(t, e.handler);
  const smuggled = GET("/smuggled");
  const req = GET("/a", `Content-Length: ${smuggled.length}\r\n`) + smuggled + GET("/b");
  // Split the body across reads too.
  const all = bytes(req);
  for (let i = 0; i < all.length; i += 7) await c.feed(all.subarray(i, i + 7));
  assert.deepEqual(e.seen.map((r) => r.path), ["/a", "/b"]);
  assert.deepEqual(t.statuses, [200, 200]);
});

Deno.test("engine: HEAD gets the head with the handler's Content-Length and no body", async () => {
  const t = new MemTransport();
  let released = 0;
  const c = new HttpConnection(t, () => ({ ...text("12345"), release: () => void released++ }));
  await c.feed(bytes("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"));
  assert.match(t.text, /Content-Length: 5\r\n/);
  assert.ok(t.text.endsWith("\r\n\r\n"));
  assert.equal(released, 1);
});

Deno.test("engine: 304 and 204 carry no Content-Length and no body", async () => {
  for (const status of [204, 304]) {
    const t = new MemTransport();
    const c = new HttpConnection(
      t,
      () => ({ status, headers: [["ETag", '"x"']], body: [], length: 0 }),
    );
    await c.feed(bytes(GET()));
    assert.doesNotMatch(t.text, /Content-Length/);
    assert.ok(t.text.endsWith("Connection: keep-alive\r\n\r\n"));
  }
});

Deno.test("engine: rawHead is used as is; Date, Connection and the blank line are appended", async () => {
  const t = new MemTransport();
  const raw = bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Cached: 1\r\n");
  const c = new HttpConnection(t, () => ({
    status: 200,
    headers: [["Ignored", "1"]],
    body: [bytes("hi")],
    length: 2,
    rawHead: raw,
  }));
  await c.feed(bytes(GET()));
  assert.match(
    t.text,
    /^HTTP\/1\.1 200 OK\r\nContent-Length: 2\r\nX-Cached: 1\r\nDate: [^\r]+\r\nConnection: keep-alive\r\n\r\nhi$/,
  );
});

Deno.test("engine: a handler exception gives 500, closes, logs one line, releases nothing twice", async () => {
  const t = new MemTransport();
  const errors: unknown[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => void errors.push(a);
  try {
    const c = new HttpConnection(t, () => {
      throw new Error("boom");
    });
    await c.feed(bytes(GET("/x") + GET("/y")));
    assert.deepEqual(t.statuses, [500]);
    assert.equal(t.closed, 1);
    const r = new HttpConnection(new MemTransport(), () => Promise.reject(new Error("async boom")));
    await r.feed(bytes(GET()));
    assert.equal(r.closed, true);
  } finally {
    console.error = orig;
  }
  assert.equal(errors.length, 2);
});

Deno.test("engine: a reply whose body does not match its length is a 500, not a desync", async () => {
  const t = new MemTransport();
  let released = 0;
  const orig = console.error;
  console.error = () => {};
  try {
    const c = new HttpConnection(t, () => ({
      status: 200,
      headers: [],
      body: [bytes("abc")],
      length: 5,
      release: () => void released++,
    }));
    await c.feed(bytes(GET()));
  } finally {
    console.error = orig;
  }
  assert.deepEqual(t.statuses, [500]);
  assert.equal(released, 1);
});

Deno.test("engine: CR/LF in a handler header value is refused (no response splitting)", async () => {
  const t = new MemTransport();
  const orig = console.error;
  console.error = () => {};
  try {
    const c = new HttpConnection(t, () => ({
      status: 200,
      headers: [["X", "a\r\nSet-Cookie: x"]],
      body: [],
      length: 0,
    }));
    await c.feed(bytes(GET()));
  } finally {
    console.error = orig;
  }
  assert.deepEqual(t.statuses, [500]);
  assert.doesNotMatch(t.text, /Set-Cookie/);
});

async function withFile(content: Uint8Array, f: (path: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/f.bin`;
  await Deno.writeFile(path, content);
  try {
    await f(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("engine: FileSlice parts are streamed in chunks; the file is released once", async () => {
  const content = new Uint8Array(200_000);
  for (let i = 0; i < content.length; i++) content[i] = (i * 7) & 0xff;
  await withFile(content, async (path) => {
    const t = new MemTransport();
    let released = 0;
    const files: Deno.FsFile[] = [];
    const c = new HttpConnection(t, async () => {
      const file = await Deno.open(path);
      files.push(file);
      return {
        status: 206,
        headers: [],
        body: [bytes("<"), { file, start: 1000, end: 150_000 }, bytes(">")],
        length: 149_002,
        release: () => {
          released++;
          file.close();
        },
      };
    });
    await c.feed(bytes(GET()));
    const out = new Uint8Array(t.chunks.reduce((n, b) => n + b.length, 0));
    let o = 0;
    for (const b of t.chunks) {
      out.set(b, o);
      o += b.length;
    }
    const headEnd = dec.decode(out.subarray(0, 300)).indexOf("\r\n\r\n") + 4;
    const body = out.subarray(headEnd);
    assert.equal(body.length, 149_002);
    assert.equal(body[0], 60);
    assert.deepEqual(body.subarray(1, 149_001), content.subarray(1000, 150_000));
    assert.equal(body[149_001], 62);
    assert.equal(released, 1);
    assert.ok(t.chunks.length >= 4, "streamed in several writes");
    assert.equal(c.closed, false);
  });
});

Deno.test("engine: a file truncated during transfer closes the connection without padding", async () => {
  await withFile(new Uint8Array(100_000).fill(65), async (path) => {
    const t = new MemTransport();
    let released = 0;
    let status = 0;
    const c = new HttpConnection(
      t,
      async () => {
        const file = await Deno.open(path);
        await Deno.truncate(path, 70_000);
        return {
          status: 200,
          headers: [],
          body: [{ file, start: 0, end: 100_000 }],
          length: 100_000,
          release: () => {
            released++;
            file.close();
          },
        };
      },
      {},
      { onResponse: (_r, s) => void (status = s) },
    );
    await c.feed(bytes(GET() + GET("/next")));
    const total = t.chunks.reduce((n, b) => n + b.length, 0);
    const head = t.text.indexOf("\r\n\r\n") + 4;
    assert.equal(total - head, 70_000);
    assert.equal(t.closed, 1);
    assert.equal(released, 1);
    assert.equal(status, 200);
    assert.deepEqual(t.statuses, [200]);
  });
});

Deno.test("engine: header timeout: 408 for a partial head, silent close for nothing", () => {
  {
    const t = new MemTransport();
    const c = new HttpConnection(t, echo().handler, { headerTimeoutMs: 1000 });
    c.feed(bytes("GET / HT"));
    c.tick(5000);
    c.tick(5999);
    assert.equal(t.closed, 0);
    c.tick(6000);
    assert.deepEqual(t.statuses, [408]);
    assert.equal(t.closed, 1);
  }
  {
    const t = new MemTransport();
    const c = new HttpConnection(t, echo().handler, { headerTimeoutMs: 1000 });
    c.tick(0);
    c.tick(1000);
    assert.equal(t.chunks.length, 0);
    assert.equal(t.closed, 1);
  }
});

Deno.test("engine: more bytes of the same head do not restart the header deadline", () => {
  const t = new MemTransport();
  const c = new HttpConnection(t, echo().handler, { headerTimeoutMs: 1000 });
  c.feed(bytes("GET / HTTP/1.1\r\n"));
  c.tick(0);
  c.feed(bytes("X: 1\r\n"));
  c.tick(500);
  c.feed(bytes("X: 2\r\n"));
  c.tick(1000);
  assert.deepEqual(t.statuses, [408]);
});

Deno.test("engine: keep-alive idle timeout closes silently; a new request resets it", () => {
  const t = new MemTransport();
  const c = new HttpConnection(t, echo().handler, { idleTimeoutMs: 2000, headerTimeoutMs: 500 });
  c.feed(bytes(GET()));
  c.tick(0);
  c.tick(1999);
  c.feed(bytes(GET()));
  c.tick(2000);
  c.tick(3999);
  assert.equal(t.closed, 0);
  c.tick(4000);
  assert.equal(t.closed, 1);
  assert.deepEqual(t.statuses, [200, 200]);
});

Deno.test("engine: a stalled write is closed after writeTimeoutMs and the reply released once", async () => {
  const t = new MemTransport();
  t.hold = true;
  let released = 0;
  const c = new HttpConnection(t, () => ({ ...text("x"), release: () => void released++ }), {
    writeTimeoutMs: 3000,
  });
  const p = c.feed(bytes(GET()));
  c.tick(0);
  c.tick(2999);
  assert.equal(t.closed, 0);
  c.tick(3000);
  assert.equal(t.closed, 1);
  await p;
  assert.equal(released, 1);
});

Deno.test("engine: drain closes an idle connection now, a busy one after its response", async () => {
  {
    const t = new MemTransport();
    const c = new HttpConnection(t, echo().handler);
    c.drain();
    assert.equal(t.closed, 1);
  }
  {
    const t = new MemTransport();
    let resolve!: (r: Reply) => void;
    const c = new HttpConnection(t, () => new Promise<Reply>((r) => resolve = r));
    const p = c.feed(bytes(GET() + GET("/second")));
    c.drain();
    assert.equal(t.closed, 0);
    resolve(text("done"));
    await p;
    assert.deepEqual(t.statuses, [200]);
    assert.match(t.text, /Connection: close\r\n/);
    assert.equal(t.closed, 1);
  }
});

Deno.test("engine: end() (peer EOF) closes when idle; onClose fires once", () => {
  const t = new MemTransport();
  let closes = 0;
  const c = new HttpConnection(t, echo().handler, {}, { onClose: () => void closes++ });
  c.feed(bytes("GET / HTT"));
  c.end();
  c.end();
  c.drain();
  assert.equal(t.closed, 1);
  assert.equal(closes, 1);
  assert.equal(t.chunks.length, 0);
});

Deno.test("engine: ConnectionSet ticks all connections and drain resolves when all are gone", async () => {
  const set = new ConnectionSet(60_000);
  const ts = [new MemTransport(), new MemTransport()];
  const conns: HttpConnection[] = [];
  for (const t of ts) {
    const c: HttpConnection = new HttpConnection(t, echo().handler, { headerTimeoutMs: 10 }, {
      onClose: () => set.remove(c),
    });
    conns.push(c);
    set.add(c);
  }
  assert.equal(set.size, 2);
  set.tick(0);
  set.tick(10);
  assert.equal(set.size, 0);
  const c: HttpConnection = new HttpConnection(new MemTransport(), echo().handler, {}, {
    onClose: () => set.remove(c),
  });
  set.add(c);
  await set.drain();
  assert.equal(set.size, 0);
  assert.equal(c.closed, true);
});

async function readResponse(conn: Deno.Conn, until: (s: string) => boolean): Promise<string> {
  const buf = new Uint8Array(65536);
  let s = "";
  while (!until(s)) {
    const n = await conn.read(buf);
    if (n === null) break;
    s += dec.decode(buf.subarray(0, n));
  }
  return s;
}

Deno.test("serveDenoConn: keep-alive, pipelining and close over a real socket", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const set = new ConnectionSet();
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) served.push(serveDenoConn(conn, echo().handler, set));
  })();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  try {
    await client.write(bytes(GET("/one")));
    const first = await readResponse(client, (s) => s.endsWith("/one"));
    assert.match(first, /^HTTP\/1\.1 200 OK\r\n/);
    await client.write(bytes(GET("/two") + GET("/three", "Connection: close\r\n")));
    const rest = await readResponse(client, () => false);
    assert.deepEqual([...rest.matchAll(/\r\n\r\n(\/[a-z]+)/g)].map((m) => m[1]), [
      "/two",
      "/three",
    ]);
  } finally {
    client.close();
  }
  await Promise.all(served);
  assert.equal(set.size, 0);
  listener.close();
  await accepting;
});

Deno.test("serveDenoConn: a bad request gets 400 and the socket is closed", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const set = new ConnectionSet();
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) served.push(serveDenoConn(conn, echo().handler, set));
  })();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  try {
    await client.write(bytes("GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n"));
    const out = await readResponse(client, () => false);
    assert.match(out, /^HTTP\/1\.1 400 Bad Request\r\n/);
  } finally {
    client.close();
  }
  await Promise.all(served);
  listener.close();
  await accepting;
});

Deno.test("serveDenoConn: drain closes idle kept-alive sockets", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const set = new ConnectionSet();
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) served.push(serveDenoConn(conn, echo().handler, set));
  })();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  try {
    await client.write(bytes(GET("/k")));
    await readResponse(client, (s) => s.endsWith("/k"));
    assert.equal(set.size, 1);
    await set.drain();
    assert.equal(await client.read(new Uint8Array(16)), null);
  } finally {
    client.close();
  }
  await Promise.all(served);
  listener.close();
  await accepting;
});

Deno.test("engine: a small FileSlice body goes out in the same write as the head", async () => {
  const content = bytes("0123456789abcdef");
  await withFile(content, async (path) => {
    const t = new MemTransport();
    let released = 0;
    const c = new HttpConnection(t, async () => {
      const file = await Deno.open(path);
      return {
        status: 206,
        headers: [["Content-Range", "bytes 2-11/16"]],
        body: [{ file, start: 2, end: 12 }],
        length: 10,
        release: () => {
          released++;
          file.close();
        },
      };
    });
    await c.feed(bytes(GET() + GET()));
    assert.equal(t.chunks.length, 2);
    assert.ok(t.text.endsWith("\r\n\r\n23456789ab"));
    assert.deepEqual(t.statuses, [206, 206]);
    assert.equal(released, 2);
  });
});

Deno.test("engine: a small file truncated before it is read closes without a response", async () => {
  await withFile(bytes("0123456789"), async (path) => {
    const t = new MemTransport();
    let released = 0;
    const c = new HttpConnection(t, async () => {
      const file = await Deno.open(path);
      await Deno.truncate(path, 4);
      return {
        status: 200,
        headers: [],
        body: [{ file, start: 0, end: 10 }],
        length: 10,
        release: () => {
          released++;
          file.close();
        },
      };
    });
    await c.feed(bytes(GET()));
    assert.equal(t.chunks.length, 0);
    assert.equal(t.closed, 1);
    assert.equal(released, 1);
  });
});

Deno.test("engine: a reply with an impossible status is a 500", async () => {
  const t = new MemTransport();
  const orig = console.error;
  console.error = () => {};
  try {
    const c = new HttpConnection(t, () => ({ status: 42, headers: [], body: [], length: 0 }));
    await c.feed(bytes(GET()));
  } finally {
    console.error = orig;
  }
  assert.deepEqual(t.statuses, [500]);
});

Deno.test("engine: output buffers are shared, not kept by idle connections", async () => {
  const t1 = new MemTransport();
  const t2 = new MemTransport();
  const c1 = new HttpConnection(t1, echo().handler);
  const c2 = new HttpConnection(t2, echo().handler);
  await c1.feed(bytes(GET("/a")));
  await c2.feed(bytes(GET("/b")));
  await c1.feed(bytes(GET("/c")));
  assert.ok(t1.text.endsWith("/c"));
  assert.ok(t2.text.endsWith("/b"));
  assert.ok(t1.text.includes("\r\n\r\n/a"));
});

Deno.test("engine: a body of exactly MAX_DISCARD_BODY bytes is skipped and the connection kept", async () => {
  const t = new MemTransport();
  const e = echo();
  const c = new HttpConnection(t, e.handler);
  const body = new Uint8Array(65536).fill(0x47);
  await c.feed(bytes(GET("/a", "Content-Length: 65536\r\n")));
  for (let i = 0; i < body.length; i += 8192) await c.feed(body.subarray(i, i + 8192));
  await c.feed(bytes(GET("/b")));
  assert.deepEqual(e.seen.map((r) => r.path), ["/a", "/b"]);
  assert.equal(t.closed, 0);
});

Deno.test("engine: a maximal head fed one byte per read is answered once", async () => {
  const t = new MemTransport();
  const e = echo();
  const c = new HttpConnection(t, e.handler);
  const filler = "X: " + "v".repeat(16384 - 9 - 5) + "\r\n";
  const req = bytes(`GET /${"p".repeat(8000)} HTTP/1.1\r\nHost: h\r\n${filler}\r\n` + GET("/next"));
  for (let i = 0; i < req.length; i++) await c.feed(req.subarray(i, i + 1));
  assert.deepEqual(t.statuses, [200, 200]);
  assert.equal(e.seen[0].headers[3].length, 16384 - 9 - 5);
  assert.equal(e.seen[1].path, "/next");
});

Deno.test("engine: a connection that closes mid-head leaves nothing behind for the next one (pooled parsers)", async () => {
  // Each partial head dies with its connection; the next connection on the
  // thread (which may get the same parser back) must parse from scratch.
  const partials = ["GET /a HTTP/1.1\r\nHo", "GET /b HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n", "GE"];
  for (const partial of partials) {
    const dead = new MemTransport();
    const c1 = new HttpConnection(dead, echo().handler);
    await c1.feed(bytes(partial));
    c1.end();
    assert.equal(dead.closed, 1);
    const t = new MemTransport();
    const e = echo();
    const c2 = new HttpConnection(t, e.handler);
    await c2.feed(bytes(GET("/next", "Connection: close\r\n")));
    assert.deepEqual(t.statuses, [200], `after ${JSON.stringify(partial)}`);
    assert.equal(e.seen[0].path, "/next");
    assert.deepEqual(e.seen[0].headers, ["host", "h", "connection", "close"]);
    assert.equal(t.closed, 1);
  }
});

Deno.test("engine: Connection: close responses reuse the output buffer (no new buffer per connection)", async () => {
  // The bytes a transport sees are only valid until write returns; a reused
  // buffer shows as the same ArrayBuffer across connections.
  const seen = new Set<ArrayBufferLike>();
  for (let i = 0; i < 8; i++) {
    const buffers: ArrayBufferLike[] = [];
    const c = new HttpConnection(
      { write: (b) => void buffers.push(b.buffer), close() {} },
      echo().handler,
    );
    await c.feed(bytes(GET(`/c${i}`, "Connection: close\r\n")));
    assert.equal(c.closed, true);
    for (const b of buffers) seen.add(b);
  }
  assert.equal(seen.size, 1);
});

Deno.test("engine: ConnectionSet with timer: false fires deadlines only from tick()", () => {
  const set = new ConnectionSet(1000, { timer: false });
  const t = new MemTransport();
  const c: HttpConnection = new HttpConnection(t, echo().handler, { headerTimeoutMs: 10 }, {
    onClose: () => set.remove(c),
  });
  set.add(c);
  set.tick(0);
  assert.equal(set.size, 1);
  set.tick(10);
  assert.equal(set.size, 0);
  assert.equal(t.closed, 1);
});

/** The exact bytes of an engine error response: head, and body unless `head`. */
function errorBytes(status: number, reason: string, date: string, head: boolean): string {
  const body = `${status} ${reason}\n`;
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${body.length}\r\nConnection: close\r\n${date}\r\n\r\n` + (head ? "" : body);
}

Deno.test("engine: its own error responses to HEAD are the head only, with the body's Content-Length", async () => {
  const HEAD = (extra = "", version = "HTTP/1.1") =>
    `HEAD /f ${version}\r\nHost: h\r\n${extra}\r\n`;
  const cases: [string, string, number, string][] = [
    [
      "Transfer-Encoding",
      HEAD("Transfer-Encoding: gzip, chunked\r\n") + "0\r\n\r\n",
      501,
      "Not Implemented",
    ],
    ["obs-fold", HEAD("X-A: a\r\n b\r\n"), 400, "Bad Request"],
    ["no Host", "HEAD /f HTTP/1.1\r\n\r\n", 400, "Bad Request"],
    ["two Content-Length", HEAD("Content-Length: 1\r\nContent-Length: 1\r\n"), 400, "Bad Request"],
    ["HTTP/2.0", HEAD("", "HTTP/2.0"), 505, "HTTP Version Not Supported"],
    ["HTTP/0.9 line", "HEAD /f\r\n", 505, "HTTP Version Not Supported"],
    ["not origin-form", "HEAD * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "Bad Request"],
    ["Content-Length 100000", HEAD("Content-Length: 100000\r\n"), 413, "Content Too Large"],
    ["101 headers", HEAD("X-A: 1\r\n".repeat(100)), 431, "Request Header Fields Too Large"],
    [
      "header block > 16 KiB",
      HEAD(`X-A: ${"a".repeat(17000)}\r\n`),
      431,
      "Request Header Fields Too Large",
    ],
  ];
  for (const [name, req, status, reason] of cases) {
    const t = new MemTransport();
    const sizes: number[] = [];
    const c = new HttpConnection(t, echo().handler, {}, {
      onResponse: (_r, _s, n) => sizes.push(n),
    });
    await c.feed(bytes(req + GET("/after")));
    const date = t.text.match(/Date: [^\r]*/)?.[0] ?? "";
    assert.equal(t.text, errorBytes(status, reason, date, true), name);
    assert.deepEqual(sizes, [t.text.length], name);
    assert.equal(t.closed, 1, name);

    // One byte at a time: the method must survive a head that arrives split.
    const s = new MemTransport();
    const p = new HttpConnection(s, echo().handler);
    const all = bytes(req);
    for (let i = 0; i < all.length && !p.closed; i++) await p.feed(all.subarray(i, i + 1));
    const d2 = s.text.match(/Date: [^\r]*/)?.[0] ?? "";
    assert.equal(s.text, errorBytes(status, reason, d2, true), `${name}, fed byte by byte`);
  }
});

Deno.test("engine: error responses keep their body when the method is not HEAD or not yet known", async () => {
  const cases: [string, string, number, string][] = [
    [
      "GET with Transfer-Encoding",
      GET("/f", "Transfer-Encoding: gzip, chunked\r\n"),
      501,
      "Not Implemented",
    ],
    [
      "lower-case head",
      "head /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      501,
      "Not Implemented",
    ],
    // The request line never completed: HEAD is only a prefix of something unknown.
    ["HEAD line over 8 KiB", `HEAD /${"a".repeat(9000)}`, 414, "URI Too Long"],
    ["bare CR in the request line", "HEAD /f\rX HTTP/1.1\r\n", 400, "Bad Request"],
    // A HEAD answered, then a bad next head: the earlier method does not carry over.
    ["bad head after a HEAD", "HEAD /f HTTP/1.1\r\nHost: h\r\n\r\n\rX", 400, "Bad Request"],
  ];
  for (const [name, req, status, reason] of cases) {
    const t = new MemTransport();
    const c = new HttpConnection(t, echo().handler);
    await c.feed(bytes(req));
    const text = t.text.slice(t.text.lastIndexOf("HTTP/1.1 "));
    const date = text.match(/Date: [^\r]*/)?.[0] ?? "";
    assert.equal(text, errorBytes(status, reason, date, false), name);
    assert.equal(c.closed, true, name);
  }
});

Deno.test("engine: a 408 to a HEAD whose request line arrived has no body; a 500 from the handler neither", async () => {
  const t = new MemTransport();
  const c = new HttpConnection(t, echo().handler, { headerTimeoutMs: 10 });
  await c.feed(bytes("HEAD /f HTTP/1.1\r\nHost: h\r\n"));
  c.tick(0);
  c.tick(20);
  const date = t.text.match(/Date: [^\r]*/)?.[0] ?? "";
  assert.equal(t.text, errorBytes(408, "Request Timeout", date, true));

  const u = new MemTransport();
  const d = new HttpConnection(u, echo().handler, { headerTimeoutMs: 10 });
  await d.feed(bytes("HEAD /f HTTP/1.1"));
  d.tick(0);
  d.tick(20);
  const date2 = u.text.match(/Date: [^\r]*/)?.[0] ?? "";
  assert.equal(u.text, errorBytes(408, "Request Timeout", date2, false), "method not known yet");

  const v = new MemTransport();
  const throwing: Handler = () => {
    throw new Error("boom");
  };
  const original = console.error;
  console.error = () => {};
  try {
    const e = new HttpConnection(v, throwing);
    await e.feed(bytes("HEAD /f HTTP/1.1\r\nHost: h\r\n\r\n"));
  } finally {
    console.error = original;
  }
  const date3 = v.text.match(/Date: [^\r]*/)?.[0] ?? "";
  assert.equal(v.text, errorBytes(500, "Internal Server Error", date3, true));
});

Deno.test("engine: ConnectionSet.shed closes idle first (longest idle first), then slow heads; never mid-response or just opened", () => {
  const set = new ConnectionSet(60_000, { timer: false });
  const open = (t: MemTransport): HttpConnection => {
    const c: HttpConnection = new HttpConnection(t, echo().handler, {}, {
      onClose: () => set.remove(c),
    });
    set.add(c);
    return c;
  };
  const idleOld = new MemTransport();
  open(idleOld).feed(bytes("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  const idleNew = new MemTransport();
  open(idleNew).feed(bytes("GET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  const partial = new MemTransport();
  open(partial).feed(bytes("GET /c HT"));
  const silent = new MemTransport();
  open(silent);
  const busy = new MemTransport();
  busy.hold = true;
  open(busy).feed(bytes("GET /d HTTP/1.1\r\nHost: x\r\n\r\n"));
  assert.equal(set.size, 5);
  assert.equal(set.shed(1), 1);
  assert.deepEqual([idleOld.closed, idleNew.closed], [1, 0], "the longest idle goes first");
  assert.equal(set.shed(1, SHED_IDLE), 1);
  assert.equal(set.shed(1, SHED_IDLE), 0, "idle only: the slow head stays");
  assert.equal(set.shed(10), 1);
  assert.equal(partial.closed, 1);
  // Opened just now and silent (its request may be on the way), or mid-response: spared.
  assert.equal(set.shed(10), 0);
  assert.deepEqual([silent.closed, busy.closed, set.size], [0, 0, 2]);
  busy.flush();
});

Deno.test("engine: ConnectionSet reports which deadline closed a connection", () => {
  const kinds: number[] = [];
  const set = new ConnectionSet(60_000, { timer: false, onDeadline: (k) => void kinds.push(k) });
  for (const data of ["", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"]) {
    const c: HttpConnection = new HttpConnection(
      new MemTransport(),
      echo().handler,
      { headerTimeoutMs: 10, idleTimeoutMs: 10 },
      { onClose: () => set.remove(c) },
    );
    set.add(c);
    if (data) c.feed(bytes(data));
  }
  set.tick(0);
  set.tick(10);
  assert.deepEqual(kinds.sort(), [DEADLINE_HEAD, DEADLINE_IDLE]);
  assert.equal(set.size, 0);
});
