/**
 * File-side benchmarks (`deno task bench bench/http_bench.ts`): listing render
 * and the cached-file handler path. Set-up is outside `fn`.
 */
import {
  type Entry,
  parseListingQuery,
  renderHtml,
  renderJson,
  sortEntries,
} from "../http/listing.ts";
import { createHandler } from "../http/handler.ts";
import type { RequestHead } from "../http/types.ts";

/** 1,000 entries, one in ten a directory; hostile names need escaping. */
function makeEntries(hostile: boolean): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < 1000; i++) {
    const dir = i % 10 === 0;
    const file = hostile ? `file-${i} <&> \u00e9t\u00e9.txt` : `IMG_${20240000 + i}.jpg`;
    out.push({
      name: dir ? `folder ${i}` : file,
      type: dir ? "dir" : "file",
      isDir: dir,
      size: i * 997,
      mtimeMs: 1_700_000_000_000 + i * 60_000,
    });
  }
  return sortEntries(out, "name", "asc");
}
const entries = makeEntries(true);
const plain = makeEntries(false);
const ctx = { path: "/some/dir/", query: parseListingQuery(""), pages: 1, total: 1000 };

Deno.bench({
  group: "listing-html",
  name: "renderHtml 1,000 plain names",
  baseline: true,
  fn() {
    renderHtml(plain, ctx);
  },
});

Deno.bench({
  group: "listing-html",
  name: "renderHtml 1,000 hostile names (<&> + Latin-1)",
  fn() {
    renderHtml(entries, ctx);
  },
});

Deno.bench({
  group: "listing-json",
  name: "JSON.stringify + encode 1,000 entry objects (baseline)",
  baseline: true,
  fn() {
    new TextEncoder().encode(JSON.stringify(entries));
  },
});

Deno.bench({
  group: "listing-json",
  name: "renderJson 1,000 plain names",
  fn() {
    renderJson(plain);
  },
});

Deno.bench({
  group: "listing-json",
  name: "renderJson 1,000 hostile names",
  fn() {
    renderJson(entries);
  },
});

Deno.bench({
  group: "listing-sort",
  name: "sortEntries 1,000 entries by name",
  fn() {
    sortEntries(entries, "name", "asc");
  },
});

// Cached 1 KiB file: RequestHead -> Reply -> head bytes in an output buffer.
const root = await Deno.makeTempDir({ prefix: "ringhttpd-bench-" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));
await Deno.writeFile(`${root}/index.css`, new Uint8Array(1024).fill(97));
const handle = await createHandler({ root, revalidateMs: 3_600_000 });
const headers = [
  "host",
  "localhost:8000",
  "user-agent",
  "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
  "accept",
  "text/css,*/*;q=0.1",
  "accept-language",
  "en-US,en;q=0.5",
  "accept-encoding",
  "gzip, deflate, br, zstd",
  "connection",
  "keep-alive",
  "referer",
  "http://localhost:8000/",
];
const reqHead = (): RequestHead => ({
  method: "GET",
  target: "/index.css",
  path: "/index.css",
  query: "",
  minor: 1,
  headers,
});
const warm = await handle(reqHead());
warm.release?.();
const out = new Uint8Array(4096);
const dateLine = new TextEncoder().encode(
  `Date: ${new Date().toUTCString()}\r\nConnection: keep-alive\r\n\r\n`,
);

Deno.bench({
  group: "cached-1k",
  name: "new Response(1 KiB, headers) (Deno.serve-style baseline)",
  baseline: true,
  fn() {
    new Response(out.subarray(0, 1024), {
      headers: { "content-type": "text/css; charset=utf-8", etag: '"x"' },
    });
  },
});

Deno.bench({
  group: "cached-1k",
  name: "handler hit: RequestHead -> Reply -> serialised head",
  fn() {
    const reply = handle(reqHead()) as Awaited<ReturnType<typeof handle>>;
    out.set(reply.rawHead!, 0);
    out.set(dateLine, reply.rawHead!.length);
  },
});

Deno.bench({
  group: "cached-1k",
  name: "handler hit with If-None-Match (304 built per request)",
  fn() {
    const r = reqHead();
    r.headers = [...headers, "if-none-match", warm.headers[2][1]];
    const reply = handle(r) as Awaited<ReturnType<typeof handle>>;
    if (reply.status !== 304) throw new Error(`expected 304, got ${reply.status}`);
  },
});
