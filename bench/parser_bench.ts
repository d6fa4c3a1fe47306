/**
 * `deno bench bench/parser_bench.ts`: the per-request cost of the HTTP engine.
 *
 * @module
 */
import { RequestParser } from "../http/parser.ts";
import { HttpConnection, type Transport } from "../http/engine.ts";
import type { Reply } from "../http/types.ts";

/** A typical browser GET for a sub-resource (Firefox 120 shape), about 400 bytes. */
const BROWSER_GET = "GET /assets/app.js?v=1234 HTTP/1.1\r\n" +
  "Host: localhost:8000\r\n" +
  "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n" +
  "Accept: */*\r\n" +
  "Accept-Language: en-US,en;q=0.5\r\n" +
  "Accept-Encoding: gzip, deflate, br\r\n" +
  "Referer: http://localhost:8000/\r\n" +
  "Connection: keep-alive\r\n" +
  "Sec-Fetch-Dest: script\r\n" +
  "Sec-Fetch-Mode: no-cors\r\n" +
  "Sec-Fetch-Site: same-origin\r\n" +
  'If-None-Match: "5f3a-18c2b4e1a00"\r\n' +
  "\r\n";
const bytes = new TextEncoder().encode(BROWSER_GET);
if (bytes.length < 360 || bytes.length > 440) throw new Error(`request is ${bytes.length} bytes`);

const parser = new RequestParser();
let sink = 0;

Deno.bench({
  group: "parse",
  name: `parse a ${bytes.length}-byte browser GET`,
  baseline: true,
  fn() {
    sink += parser.parse(bytes, 0);
  },
});

/** Only finds the line ends: a floor that shows how loaded the machine is. */
function countLines(buf: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < buf.length; i++) if (buf[i] === 10) n++;
  return n;
}
Deno.bench({
  group: "parse",
  name: "floor: count LF bytes of the same GET (no parsing)",
  fn() {
    sink += countLines(bytes);
  },
});

const split = 200;
const first = bytes.subarray(0, split);
Deno.bench({
  group: "parse",
  name: "parse the same GET arriving in two reads",
  fn() {
    parser.parse(first, 0);
    sink += parser.parse(bytes, 0);
  },
});

const body = new Uint8Array(1024).fill(120);
const reply: Reply = {
  status: 200,
  headers: [["Content-Type", "text/plain; charset=utf-8"], ["ETag", '"abc-123"']],
  body: [body],
  length: body.length,
};
let written = 0;
const transport: Transport = {
  write(b) {
    written += b.length;
  },
  close() {},
};
const conn = new HttpConnection(transport, () => reply);
Deno.bench({
  group: "engine",
  name: "engine round trip: feed GET -> 1 KiB in-memory reply (sync transport)",
  baseline: true,
  fn() {
    conn.feed(bytes);
  },
});

const pipelined = new Uint8Array(bytes.length * 16);
for (let i = 0; i < 16; i++) pipelined.set(bytes, i * bytes.length);
Deno.bench({
  group: "engine",
  name: "engine round trip: 16 pipelined GETs in one read (per 16)",
  fn() {
    conn.feed(pipelined);
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === 0 || written === 0) console.error("benchmark did nothing");
});
