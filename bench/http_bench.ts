/**
 * File-side benchmarks (`deno task bench bench/http_bench.ts`): listing render
 * and the cached-file handler path. Set-up is outside `fn`. The listing
 * renders need no permission; the handler benches need read and write (a temp
 * root), so plain `deno bench` runs the first and skips the others.
 */
import {
  type Entry,
  parseListingQuery,
  renderHtml,
  renderJson,
  sortEntries,
} from "../http/listing.ts";
import { createHandler } from "../http/handler.ts";
import { HttpConnection, type Transport } from "../http/engine.ts";
import type { RequestHead } from "../http/types.ts";
import { permitted } from "./_permissions.ts";

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

const FS_NEEDS = [{ name: "read" }, { name: "write" }] as const;
if (permitted("bench/http_bench.ts (groups cached-1k, whole-path-1k)", FS_NEEDS)) {
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
    // identity: these benches measure the cached plain file; a br/gzip
    // variant of a 1 KiB text file is not answered synchronously (seen at
    // 6a01470: every br request returns a Promise), which is another path.
    "accept-encoding",
    "identity",
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

  // The whole in-process path for the same cached 1 KiB file: raw request bytes
  // -> HttpConnection.feed (parse) -> the real handler -> head + body serialised
  // into one write on an in-memory transport. The revalidation window is an
  // hour so no iteration waits on a stat (the default 1 s window costs one
  // async stat per second per file, not per request).
  const BROWSER_GET_CSS = new TextEncoder().encode(
    "GET /index.css HTTP/1.1\r\n" +
      "Host: localhost:8000\r\n" +
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
      "Accept: text/css,*/*;q=0.1\r\n" +
      "Accept-Language: en-US,en;q=0.5\r\n" +
      "Accept-Encoding: identity\r\n" + // the plain cached file, as above
      "Referer: http://localhost:8000/\r\n" +
      "Connection: keep-alive\r\n" +
      "Sec-Fetch-Dest: style\r\n" +
      "Sec-Fetch-Mode: no-cors\r\n" +
      "Sec-Fetch-Site: same-origin\r\n" +
      "\r\n",
  );
  let wireBytes = 0;
  let lastWrite: Uint8Array | null = null;
  const memory: Transport = {
    write(b) {
      wireBytes += b.length;
      lastWrite = b;
    },
    close() {
      throw new Error("the bench connection must stay open");
    },
  };
  const wholeConn = new HttpConnection(memory, handle);
  {
    // Set-up check: one synchronous write of a 200 with the 1 KiB body.
    if (wholeConn.feed(BROWSER_GET_CSS) !== undefined) throw new Error("cache miss in the bench");
    const text = new TextDecoder().decode(lastWrite!);
    if (!text.startsWith("HTTP/1.1 200 ") || !text.endsWith("a".repeat(1024))) {
      throw new Error(`unexpected response:\n${text.slice(0, 300)}`);
    }
    if (!/\r\nContent-Length: 1024\r\n/i.test(text)) throw new Error("no Content-Length: 1024");
  }

  Deno.bench({
    group: "whole-path-1k",
    name:
      `whole path: ${BROWSER_GET_CSS.length}-byte GET -> feed -> handler -> 1 KiB response bytes`,
    baseline: true,
    fn() {
      wholeConn.feed(BROWSER_GET_CSS);
    },
  });

  const pipelined16 = new Uint8Array(BROWSER_GET_CSS.length * 16);
  for (let i = 0; i < 16; i++) pipelined16.set(BROWSER_GET_CSS, i * BROWSER_GET_CSS.length);
  Deno.bench({
    group: "whole-path-1k",
    name: "whole path: 16 pipelined GETs in one read (per 16)",
    fn() {
      wholeConn.feed(pipelined16);
    },
  });

  globalThis.addEventListener("unload", () => {
    if (wireBytes === 0) console.error("whole-path benchmark wrote nothing");
  });
}
