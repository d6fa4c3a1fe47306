/**
 * The one body writer (`_response_writer.ts`), through `HttpConnection`:
 * however a response ends, its reply is released once and reported once.
 */
import assert from "node:assert/strict";
import { HttpConnection, type Transport } from "./engine.ts";
import type { Reply } from "./types.ts";

const enc = new TextEncoder();
const GET = "GET /f HTTP/1.1\r\nHost: x\r\n\r\n";

/** Writes complete at once, until `failAfter` writes: then each rejects (the peer went away). */
class Sink implements Transport {
  writes = 0;
  bytes = 0;
  closed = 0;
  constructor(readonly failAfter = Infinity) {}
  write(b: Uint8Array): Promise<void> {
    if (++this.writes > this.failAfter) return Promise.reject(new Error("EPIPE"));
    this.bytes += b.length;
    return Promise.resolve();
  }
  close(): void {
    this.closed++;
  }
}

/** Runs one GET answered by `reply`; counts releases and reports. */
async function answer(t: Sink, reply: () => Reply | Promise<Reply>) {
  let released = 0;
  const reports: Array<[number, number]> = [];
  const c = new HttpConnection(
    t,
    async () => ({ ...await reply(), release: () => void released++ }),
    {},
    { onResponse: (_req, status, bytes) => void reports.push([status, bytes]) },
  );
  await c.feed(enc.encode(GET));
  return { released, reports, closed: c.closed };
}

const big = (n: number): Reply => ({
  status: 200,
  headers: [],
  body: [new Uint8Array(n).fill(97), new Uint8Array(n).fill(98)],
  length: 2 * n,
});

async function* chunks(n: number, fail = false): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < n; i++) yield enc.encode(`chunk ${i}\n`);
  if (fail) throw new Error("the source broke");
}

const stream = (s: AsyncIterable<Uint8Array>): Reply => ({
  status: 200,
  headers: [["Content-Type", "text/plain"]],
  body: [],
  length: -1,
  stream: s,
});

Deno.test("writer: a multi-write body that completes is released and reported once, bytes counted", async () => {
  const t = new Sink();
  const r = await answer(t, () => big(20_000));
  assert.equal(r.released, 1);
  assert.deepEqual(r.reports, [[200, t.bytes]]);
  assert.ok(t.writes >= 2, "more than the one-write fast path");
  assert.equal(r.closed, false, "kept alive");
});

Deno.test("writer: a peer gone mid-body: released once, reported once with what was handed over, closed", async () => {
  const t = new Sink(1);
  const r = await answer(t, () => big(20_000));
  assert.equal(r.released, 1);
  assert.equal(r.reports.length, 1);
  assert.equal(r.reports[0][0], 200);
  assert.ok(r.reports[0][1] > 0 && r.reports[0][1] < 40_000 + 200);
  assert.equal(t.closed, 1);
});

Deno.test("writer: a chunked stream that ends is released and reported once; one that throws closes without the last chunk", async () => {
  const ok = new Sink();
  const a = await answer(ok, () => stream(chunks(3)));
  assert.equal(a.released, 1);
  assert.deepEqual(a.reports, [[200, ok.bytes]]);
  assert.equal(a.closed, false);

  const broken = new Sink();
  const errors: string[] = [];
  const error = console.error;
  console.error = (m: string) => void errors.push(m);
  try {
    const b = await answer(broken, () => stream(chunks(3, true)));
    assert.equal(b.released, 1);
    assert.deepEqual(b.reports, [[200, broken.bytes]]);
    assert.equal(broken.closed, 1);
  } finally {
    console.error = error;
  }
  assert.equal(errors.length, 1);
  assert.match(errors[0], /streaming \/f failed: Error: the source broke/);
});

Deno.test("writer: a reply arriving after the peer left is released once and not reported", async () => {
  const t = new Sink();
  let release!: () => void;
  const late = new Promise<void>((r) => release = r);
  let released = 0;
  const reports: number[] = [];
  const c = new HttpConnection(
    t,
    async () => {
      await late;
      return { ...big(10), release: () => void released++ };
    },
    {},
    { onResponse: (_r, s) => void reports.push(s) },
  );
  const done = c.feed(enc.encode(GET));
  c.shed(); // the connection goes before the handler answers
  release();
  await done;
  assert.equal(released, 1);
  assert.deepEqual(reports, []);
  assert.equal(t.writes, 0);
});
