import assert from "node:assert/strict";
import fc from "npm:fast-check@^4.11.0";
import { createHandler, errorStatus, type FileHandler, type HandlerOptions } from "./handler.ts";
import { decodePath, isInside } from "./resolve.ts";
import type { Handler, Reply, RequestHead } from "./types.ts";
import { rawAvailable } from "./_rawfs.ts";
import { replyBytes } from "./_test_reply.ts";

const dec = new TextDecoder();

function req(target: string, headers: Record<string, string> = {}, method = "GET"): RequestHead {
  const q = target.indexOf("?");
  const flat = ["host", "localhost"];
  for (const [k, v] of Object.entries(headers)) flat.push(k.toLowerCase(), v);
  return {
    method,
    target,
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? "" : target.slice(q + 1),
    minor: 1,
    headers: flat,
  };
}

interface Answer {
  status: number;
  headers: Headers;
  body: Uint8Array;
  text: string;
  reply: Reply;
}

/** Runs the handler, reads every body part (like the engine), then releases. */
async function get(h: Handler, r: RequestHead): Promise<Answer> {
  const reply = await h(r);
  const headers = new Headers();
  for (const [k, v] of reply.headers) headers.append(k, v);
  const body = await replyBytes(reply);
  assert.equal(body.length, reply.length, "Reply.length must equal the body bytes");
  return { status: reply.status, headers, body, text: dec.decode(body), reply };
}

const SECRET = "TOP-SECRET-OUTSIDE-THE-ROOT";
const HOSTILE = [
  `<>&"'.txt`,
  "100%.txt",
  "q?x.txt",
  "h#x.txt",
  "sp ace.txt",
  "a:b.txt",
  "javascript:alert(1)",
  "\u00e9".repeat(100) + ".txt", // 204 bytes of UTF-8
  "\u{1f600} emoji.txt",
  "+plus&amp;.txt",
];

interface Fixture {
  tmp: string;
  root: string;
  nonUtf8: boolean;
}

async function sh(cmd: string): Promise<boolean> {
  const out = await new Deno.Command("sh", { args: ["-c", cmd], stderr: "null" }).output();
  return out.success;
}

async function makeFixture(many: boolean): Promise<Fixture> {
  const tmp = await Deno.makeTempDir({ prefix: "ringhttpd-files-" });
  const root = `${tmp}/root`;
  await Deno.mkdir(`${tmp}/outside`);
  await Deno.writeTextFile(`${tmp}/outside/secret.txt`, SECRET);
  await Deno.mkdir(root);
  await Deno.writeTextFile(`${root}/hello.txt`, "hello world");
  const big = new Uint8Array(200 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  await Deno.writeFile(`${root}/big.bin`, big);
  await Deno.writeFile(`${root}/empty.txt`, new Uint8Array(0));
  for (const n of HOSTILE) await Deno.writeTextFile(`${root}/${n}`, `content of ${n}`);
  await Deno.writeTextFile(`${root}/.env`, "SECRET=1");
  await Deno.mkdir(`${root}/.git`);
  await Deno.writeTextFile(`${root}/.git/config`, "x");
  await Deno.mkdir(`${root}/sub`);
  await Deno.writeTextFile(`${root}/sub/a.txt`, "in sub");
  await Deno.mkdir(`${root}/site`);
  await Deno.writeTextFile(`${root}/site/index.html`, "<p>site</p>");
  await Deno.mkdir(`${root}/we<ird> dir`);
  await Deno.writeTextFile(`${root}/we<ird> dir/x.txt`, "weird");
  await Deno.symlink("sub/a.txt", `${root}/link-in`);
  await Deno.symlink("../outside/secret.txt", `${root}/link-out`);
  await Deno.symlink("../outside", `${root}/dirlink-out`);
  await Deno.symlink(".env", `${root}/to-dotfile`);
  await Deno.symlink("loop2", `${root}/loop1`);
  await Deno.symlink("loop1", `${root}/loop2`);
  await Deno.writeTextFile(`${root}/app.js`, "console.log(1)");
  await Deno.writeTextFile(`${root}/app.js.br`, "BROTLI");
  await Deno.writeTextFile(`${root}/app.js.gz`, "GZIP");
  await Deno.mkdir(`${root}/many`);
  if (many) {
    for (let i = 0; i < 1000; i++) {
      Deno.writeTextFileSync(`${root}/many/f${i}.txt`, "x".repeat(i));
    }
  }
  await sh(`mkfifo '${root}/fifo'`);
  // Deno cannot create a non-UTF-8 name (paths are strings); the shell can.
  const nonUtf8 = await sh(`printf 'raw bytes' > "${root}/bad-$(printf '\\377\\376').txt"`);
  return { tmp, root, nonUtf8 };
}

async function withFixture(
  fn: (f: Fixture, h: Handler) => Promise<void>,
  options: Partial<HandlerOptions> = {},
  many = false,
): Promise<void> {
  const f = await makeFixture(many);
  try {
    const h = await createHandler({ root: f.root, ...options });
    await fn(f, h);
  } finally {
    await Deno.remove(f.tmp, { recursive: true });
  }
}

Deno.test("handler serves a file with type, validators and Accept-Ranges", async () => {
  await withFixture(async (_f, h) => {
    const a = await get(h, req("/hello.txt"));
    assert.equal(a.status, 200);
    assert.equal(a.text, "hello world");
    assert.equal(a.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.match(a.headers.get("etag")!, /^"[0-9a-z-]+"$/);
    assert.match(a.headers.get("last-modified")!, /GMT$/);
    assert.equal(a.headers.get("accept-ranges"), "bytes");
    const b = await get(h, req("/big.bin"));
    assert.equal(b.status, 200);
    assert.equal(b.body.length, 200 * 1024);
    assert.equal(b.body[1000], 1000 % 251);
    assert.equal(b.headers.get("content-type"), "application/octet-stream");
    const e = await get(h, req("/empty.txt"));
    assert.equal(e.status, 200);
    assert.equal(e.body.length, 0);
  });
});

Deno.test("handler answers HEAD with exactly the GET status and headers", async () => {
  await withFixture(async (_f, h) => {
    for (
      const [path, hdrs] of [
        ["/hello.txt", {}],
        ["/big.bin", {}],
        ["/big.bin", { range: "bytes=0-9" }],
        ["/sub/", {}],
        ["/nope", {}],
      ] as const
    ) {
      const g = await get(h, req(path, hdrs, "GET"));
      const hd = await get(h, req(path, hdrs, "HEAD"));
      assert.equal(hd.status, g.status, path);
      assert.equal(hd.reply.length, g.reply.length, path);
      assert.deepEqual([...hd.headers], [...g.headers], path);
    }
    const etag = (await get(h, req("/big.bin"))).headers.get("etag")!;
    assert.equal((await get(h, req("/big.bin", { "if-none-match": etag }, "HEAD"))).status, 304);
  });
});

Deno.test("handler answers 405 with Allow to methods other than GET and HEAD", async () => {
  await withFixture(async (_f, h) => {
    for (const m of ["POST", "PUT", "DELETE", "OPTIONS", "get", "PATCH"]) {
      const a = await get(h, req("/hello.txt", {}, m));
      assert.equal(a.status, 405, m);
      assert.equal(a.headers.get("allow"), "GET, HEAD");
    }
  });
});

Deno.test("handler rejects traversal and malformed paths with 400 and hides dotfiles with 404", async () => {
  await withFixture(async (_f, h) => {
    for (
      const p of [
        "/../outside/secret.txt",
        "/sub/../../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/sub%2f..%2f..%2foutside/secret.txt",
        "/..%5coutside",
        "/%c0%ae%c0%ae/outside/secret.txt",
        "/hello.txt%00.png",
        "/%zz",
      ]
    ) {
      assert.equal((await get(h, req(p))).status, 400, p);
    }
    for (const p of ["/.env", "/.git/config", "/.git/", "/to-dotfile", "/%2eenv"]) {
      assert.equal((await get(h, req(p))).status, 404, p);
    }
  });
});

Deno.test("handler serves dotfiles when dotfiles is enabled", async () => {
  await withFixture(async (_f, h) => {
    assert.equal((await get(h, req("/.env"))).text, "SECRET=1");
    assert.equal((await get(h, req("/to-dotfile"))).status, 200);
    assert.ok((await get(h, req("/"))).text.includes(".env"));
  }, { dotfiles: true });
});

Deno.test("handler follows symlinks inside the root but 404s those leaving it", async () => {
  await withFixture(async (_f, h) => {
    assert.equal((await get(h, req("/link-in"))).text, "in sub");
    for (
      const p of ["/link-out", "/dirlink-out/secret.txt", "/dirlink-out/", "/loop1", "/loop2/x"]
    ) {
      const a = await get(h, req(p));
      assert.equal(a.status, 404, p);
      assert.ok(!a.text.includes(SECRET));
    }
  });
});

Deno.test("handler serves symlinks leaving the root when followSymlinks is set", async () => {
  await withFixture(async (_f, h) => {
    assert.equal((await get(h, req("/link-out"))).text, SECRET);
    assert.equal((await get(h, req("/dirlink-out/secret.txt"))).text, SECRET);
    assert.equal((await get(h, req("/loop1"))).status, 404);
  }, { followSymlinks: true });
});

Deno.test("handler 404s a file used as a directory, a missing file and a FIFO", async () => {
  await withFixture(async (_f, h) => {
    for (const p of ["/hello.txt/", "/hello.txt/x", "/missing", "/sub/missing/", "/fifo"]) {
      assert.equal((await get(h, req(p))).status, 404, p);
    }
    assert.equal((await get(h, req("/" + "x".repeat(300)))).status, 404);
  });
});

Deno.test("handler redirects /dir to a relative dir/ keeping the query", async () => {
  await withFixture(async (_f, h) => {
    const a = await get(h, req("/sub", { host: "evil.example" }));
    assert.equal(a.status, 301);
    assert.equal(a.headers.get("location"), "./sub/");
    const b = await get(h, req("/we%3Cird%3E%20dir?sort=size"));
    assert.equal(b.status, 301);
    assert.equal(b.headers.get("location"), "./we%3Cird%3E%20dir/?sort=size");
    assert.equal((await get(h, req("/sub/a.txt"))).text, "in sub");
  });
});

Deno.test("handler serves index.html for a directory", async () => {
  await withFixture(async (_f, h) => {
    const a = await get(h, req("/site/"));
    assert.equal(a.status, 200);
    assert.equal(a.text, "<p>site</p>");
    assert.equal(a.headers.get("content-type"), "text/html; charset=utf-8");
  });
});

Deno.test("handler lists a directory in HTML whose every link answers 200", async () => {
  await withFixture(async (f, h) => {
    const a = await get(h, req("/"));
    assert.equal(a.status, 200);
    assert.equal(a.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(a.headers.get("vary"), "Accept");
    assert.ok(a.headers.get("etag")!.startsWith('W/"'));
    assert.ok(a.text.includes("<title>Index of /</title>"));
    assert.ok(!a.text.includes(".env") && !a.text.includes(".git"));
    const hrefs = [...a.text.matchAll(/<\/svg><a href="([^"]*)">/g)].map((m) =>
      m[1].replaceAll("&#39;", "'").replaceAll("&quot;", '"').replaceAll("&lt;", "<")
        .replaceAll("&gt;", ">").replaceAll("&amp;", "&")
    );
    for (const n of HOSTILE) {
      assert.ok(
        hrefs.includes(n.includes(":") ? "./" + encodeURIComponent(n) : encodeURIComponent(n)),
        n,
      );
    }
    // Symlinks GET would 404 are not listed, so only the FIFO links to a 404.
    const skip = new Set(["fifo"]);
    let checked = 0;
    for (const href of hrefs) {
      const rel = href.startsWith("./") ? href.slice(2) : href;
      if (skip.has(rel)) continue; // ASCII names: href === name
      const r = await get(h, req("/" + rel));
      assert.equal(r.status, 200, href);
      checked++;
    }
    assert.ok(checked >= HOSTILE.length + 6);
    if (f.nonUtf8 && rawAvailable()) assert.ok(hrefs.includes("bad-%FF%FE.txt")); // checked above
  });
});

Deno.test("handler listings leave out symlinks GET answers 404: leaving the root, to dotfiles, dangling, looping", async () => {
  await withFixture(async (f, h) => {
    await Deno.symlink("nowhere", `${f.root}/dangling`);
    await Deno.symlink("../../outside/secret.txt", `${f.root}/sub/out`);
    const rawOut = await sh(`ln -s ../outside/secret.txt "${f.root}/out-$(printf '\\376')"`);
    const names = async (
      target: string,
      hh = h,
    ) => (JSON.parse((await get(hh, req(target))).text) as Array<{ name: string; size: number }>);
    const hidden = ["link-out", "dirlink-out", "to-dotfile", "loop1", "loop2", "dangling"];
    const root = await names("/?format=json");
    assert.deepEqual(root.filter((e) => hidden.includes(e.name)), []);
    assert.ok(root.some((e) => e.name === "link-in"));
    if (rawOut) {
      assert.ok(!root.some((e) => e.name === "out-\uFFFD"), "non-UTF-8 link leaving the root");
    }
    assert.ok(!root.some((e) => e.size === SECRET.length), "no entry has the secret's size");
    assert.deepEqual((await names("/sub/?format=json")).map((e) => e.name), ["a.txt"]);
    const html = (await get(h, req("/"))).text;
    for (const n of hidden) assert.ok(!html.includes(`>${n}<`) && !html.includes(`>${n}/<`), n);

    // Each switch lists exactly what it lets GET serve.
    const following = await createHandler({ root: f.root, followSymlinks: true });
    const followed = (await names("/?format=json", following)).map((e) => e.name);
    for (const n of ["link-out", "dirlink-out"]) assert.ok(followed.includes(n), n);
    if (rawOut && rawAvailable()) assert.ok(followed.includes("out-\uFFFD"));
    for (const n of ["to-dotfile", "loop1", "dangling"]) assert.ok(!followed.includes(n), n);
    assert.equal((await get(following, req("/link-out"))).text, SECRET);
    const dotted = await createHandler({ root: f.root, dotfiles: true });
    const withDots = (await names("/?format=json", dotted)).map((e) => e.name);
    assert.ok(withDots.includes("to-dotfile") && !withDots.includes("link-out"));
  });
});

Deno.test("handler lists a subdirectory with breadcrumbs and a ../ row", async () => {
  await withFixture(async (_f, h) => {
    const a = await get(h, req("/we%3Cird%3E%20dir/"));
    assert.equal(a.status, 200);
    assert.ok(a.text.includes("<title>Index of /we&lt;ird&gt; dir/</title>"));
    assert.ok(a.text.includes('<a href="/we%3Cird%3E%20dir/">we&lt;ird&gt; dir</a>/'));
    assert.ok(a.text.includes('<a href="../">../</a>'));
    assert.ok(a.text.includes('<a href="x.txt">x.txt</a>'));
  });
});

Deno.test("handler lists JSON for Accept: application/json and ?format=json", async () => {
  await withFixture(async (f, h) => {
    for (const r of [req("/", { accept: "application/json" }), req("/?format=json")]) {
      const a = await get(h, r);
      assert.equal(a.status, 200);
      assert.equal(a.headers.get("content-type"), "application/json; charset=utf-8");
      assert.equal(a.headers.get("vary"), "Accept");
      const list = JSON.parse(a.text) as Array<
        { name: string; type: string; size: number; mtime: string }
      >;
      // directories (and links to them) first
      const firstFile = list.findIndex((e) => e.type === "file");
      assert.ok(list.slice(firstFile).every((e) => e.type !== "dir"));
      const hello = list.find((e) => e.name === "hello.txt")!;
      assert.equal(hello.type, "file");
      assert.equal(hello.size, 11);
      assert.match(hello.mtime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(list.find((e) => e.name === "link-in")!.type, "symlink");
      for (const n of HOSTILE) assert.ok(list.some((e) => e.name === n), n);
      if (f.nonUtf8) assert.ok(list.some((e) => e.name === "bad-\uFFFD\uFFFD.txt"));
    }
    const html = await get(h, req("/"));
    const json = await get(h, req("/?format=json"));
    assert.notEqual(html.headers.get("etag"), json.headers.get("etag"));
  });
});

Deno.test("handler sorts a 1,000-entry listing by ?sort and ?order", async () => {
  await withFixture(
    async (_f, h) => {
      const byName = JSON.parse((await get(h, req("/many/?format=json"))).text);
      assert.equal(byName.length, 1000);
      assert.deepEqual(byName.slice(0, 3).map((e: { name: string }) => e.name), [
        "f0.txt",
        "f1.txt",
        "f2.txt",
      ]);
      assert.equal(byName[10].name, "f10.txt"); // natural order: f2 < f10
      const bySize = JSON.parse(
        (await get(h, req("/many/?format=json&sort=size&order=desc"))).text,
      );
      assert.equal(bySize[0].name, "f999.txt");
      const html = (await get(h, req("/many/?sort=mtime&order=desc"))).text;
      // Sorting is a form button (issue 12: crawlers must not follow it).
      assert.ok(html.includes(
        '<button name="sort" value="mtime">Modified (UTC) &darr;</button>' +
          '<input type="hidden" name="order" value="asc">',
      ));
      assert.equal(html.match(/<tr><td><svg><use href=#.><\/svg><a /g)!.length, 1001); // ../ + 1,000
    },
    {},
    true,
  );
});

Deno.test("handler paginates listings over listingCap and 404s pages past the end", async () => {
  await withFixture(
    async (_f, h) => {
      const p1 = JSON.parse((await get(h, req("/many/?format=json"))).text);
      const p10 = await get(h, req("/many/?format=json&page=10"));
      assert.equal(p1.length, 100);
      assert.equal(JSON.parse(p10.text).length, 100);
      assert.ok(p10.headers.get("link")!.includes('rel="prev"'));
      assert.equal((await get(h, req("/many/?page=11"))).status, 404);
      const html = (await get(h, req("/many/?page=2"))).text;
      assert.ok(html.includes("page 2 of 10 (1000 entries)"));
      assert.equal(html.match(/<tr><td><svg><use href=#.><\/svg><a /g)!.length, 101);
    },
    { listingCap: 100 },
    true,
  );
});

Deno.test("handler answers 304 to a listing's own ETag and changes it when a file changes", async () => {
  await withFixture(async (f, h) => {
    const a = await get(h, req("/sub/"));
    const etag = a.headers.get("etag")!;
    assert.equal((await get(h, req("/sub/", { "if-none-match": etag }))).status, 304);
    assert.equal(
      (await get(h, req("/sub/", { "if-modified-since": a.headers.get("last-modified")! }))).status,
      304,
    );
    await Deno.writeTextFile(`${f.root}/sub/a.txt`, "in sub, longer now");
    assert.equal((await get(h, req("/sub/", { "if-none-match": etag }))).status, 200);
  }, { revalidateMs: 0 }); // every request re-collects: no window to wait out
});

/** Asks until `ok` holds for an answer (the event), failing after `ms`. */
async function until(
  ask: () => Promise<Answer>,
  ok: (a: Answer) => boolean,
  ms = 10_000,
): Promise<Answer> {
  const deadline = Date.now() + ms;
  for (;;) {
    const a = await ask();
    if (ok(a)) return a;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5)); // a polling interval, not the synchronisation
  }
}

Deno.test("handler answers a cached listing with identical bytes and no I/O within revalidateMs", async () => {
  await withFixture(async (f, h) => {
    for (const [target, hdrs] of [["/sub/", {}], ["/sub/?format=json", {}]] as const) {
      const a = await get(h, req(target, hdrs));
      await Deno.writeTextFile(`${f.root}/sub/new.txt`, "new"); // not seen within the window
      const b = await get(h, req(target, hdrs));
      assert.equal(a.status, 200);
      assert.equal(b.reply, a.reply, "a hit returns the shared reply");
      assert.deepEqual(b.body, a.body);
      assert.ok(!b.text.includes("new.txt"));
      assert.ok(b.reply.rawHead !== undefined);
      const head = dec.decode(b.reply.rawHead);
      assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
      assert.ok(head.includes(`Content-Length: ${a.body.length}\r\n`));
      assert.ok(head.includes("Vary: Accept\r\n"));
      assert.ok(head.includes("X-Test: 1\r\nAccess-Control-Allow-Origin: *\r\n"));
      await Deno.remove(`${f.root}/sub/new.txt`);
    }
  }, { revalidateMs: 3_600_000, cors: true, headers: [["X-Test", "1"]] });
});

Deno.test("handler lists a new entry once revalidateMs has passed and keeps the ETag while nothing changes", async () => {
  await withFixture(async (f, h) => {
    const a = await get(h, req("/sub/"));
    const etag = a.headers.get("etag");
    await Deno.writeTextFile(`${f.root}/sub/fresh.txt`, "fresh");
    const b = await until(() => get(h, req("/sub/")), (x) => x.text.includes("fresh.txt"));
    assert.notEqual(b.headers.get("etag"), etag);
    assert.equal((await get(h, req("/sub/", { "if-none-match": etag! }))).status, 200);
    // A directory that gains an index.html stops being a listing.
    await Deno.writeTextFile(`${f.root}/sub/index.html`, "<p>now a site</p>");
    await until(() => get(h, req("/sub/")), (x) => x.text === "<p>now a site</p>");
  }, { revalidateMs: 20 });
  await withFixture(async (_f, h) => {
    // Re-collected on every request, but unchanged: the rendered bytes are kept.
    const a = await get(h, req("/sub/"));
    const b = await get(h, req("/sub/"));
    assert.equal(b.reply, a.reply);
    assert.equal(b.headers.get("etag"), a.headers.get("etag"));
  }, { revalidateMs: 0 });
});

Deno.test("handler caches the pages of a paginated folder, but not a listing over the cache budget", async () => {
  await withFixture(async (f, h) => {
    await Deno.mkdir(`${f.root}/big`);
    for (const n of ["f0", "f1", "f2"]) await Deno.writeTextFile(`${f.root}/big/${n}`, n);
    const names = async (t: string) =>
      JSON.parse((await get(h, req(t))).text).map((e: { name: string }) => e.name);
    assert.deepEqual(await names("/big/?format=json&page=2"), ["f2"]);
    await Deno.writeTextFile(`${f.root}/big/f3`, "f3");
    // 3 entries > listingCap 2: paginated, and cached all the same (issue 12:
    // a big folder's pages were collected again on every request)...
    assert.deepEqual(await names("/big/?format=json&page=2"), ["f2"]);
    // ...until the watcher says the folder changed.
    (h as FileHandler).invalidate(await Deno.realPath(`${f.root}/big/f3`));
    assert.deepEqual(await names("/big/?format=json&page=2"), ["f2", "f3"]);
    // 1 entry: cached, so a new file stays unseen for the hour.
    assert.deepEqual(await names("/sub/?format=json"), ["a.txt"]);
    await Deno.writeTextFile(`${f.root}/sub/b.txt`, "b");
    assert.deepEqual(await names("/sub/?format=json"), ["a.txt"]);
  }, { listingCap: 2, revalidateMs: 3_600_000 });
  await withFixture(async (_f, h) => {
    // A 4 KiB cache holds at most 1 KiB of listings: the HTML page is larger.
    const a = await get(h, req("/sub/"));
    const b = await get(h, req("/sub/"));
    assert.ok(a.body.length > 1024);
    assert.notEqual(b.reply, a.reply, "rendered again, not kept");
    assert.deepEqual(b.body, a.body);
  }, { cacheMaxBytes: 4096, revalidateMs: 3_600_000 });
});

Deno.test("handler answers 304 and HEAD on a cached listing like on a fresh one", async () => {
  await withFixture(async (_f, h) => {
    const a = await get(h, req("/sub/"));
    const etag = a.headers.get("etag")!;
    for (const method of ["GET", "HEAD"]) {
      const nm = await get(h, req("/sub/", { "if-none-match": etag }, method));
      assert.equal(nm.status, 304, method);
      assert.equal(nm.body.length, 0);
      assert.equal(nm.headers.get("etag"), etag);
      assert.equal(nm.headers.get("vary"), "Accept");
      assert.ok(!dec.decode(nm.reply.rawHead).includes("Content-Length"));
      const ims = await get(
        h,
        req("/sub/", { "if-modified-since": a.headers.get("last-modified")! }, method),
      );
      assert.equal(ims.status, 304, method);
      assert.equal((await get(h, req("/sub/", { "if-match": '"nope"' }, method))).status, 412);
    }
    const hd = await get(h, req("/sub/", {}, "HEAD"));
    assert.equal(hd.status, 200);
    assert.equal(hd.reply.length, a.reply.length);
    assert.deepEqual([...hd.headers], [...a.headers]);
  }, { revalidateMs: 3_600_000 });
});

Deno.test("handler keeps cached listing variants apart: format, Accept, sort, order and URL path", async () => {
  await withFixture(async (f, h) => {
    await Deno.writeTextFile(`${f.root}/sub/bigger.txt`, "0123456789".repeat(10));
    await Deno.symlink("sub", `${f.root}/sublink`);
    const asks: Array<[string, Record<string, string>]> = [
      ["/sub/", {}],
      ["/sub/", { accept: "application/json" }],
      ["/sub/?format=json", {}],
      ["/sub/?sort=size&order=desc", {}],
      ["/sub/?format=json&sort=size&order=desc", {}],
      ["/sub/?format=json&sort=name&order=desc", {}],
      ["/sublink/", {}],
      ["/sublink/?format=json", {}],
    ];
    const first = [];
    for (const [t, hd] of asks) first.push(await get(h, req(t, hd)));
    for (let round = 0; round < 2; round++) {
      for (let i = asks.length - 1; i >= 0; i--) {
        const again = await get(h, req(...asks[i]));
        assert.equal(again.text, first[i].text, asks[i][0]);
        assert.equal(again.headers.get("etag"), first[i].headers.get("etag"), asks[i][0]);
        assert.equal(
          again.headers.get("content-type"),
          first[i].headers.get("content-type"),
          asks[i][0],
        );
      }
    }
    const [html, byAccept, json, sizeHtml, sizeJson, nameDesc, linkHtml, linkJson] = first;
    assert.ok(html.text.startsWith("<!DOCTYPE html>"));
    assert.equal(byAccept.text, json.text);
    assert.deepEqual(JSON.parse(json.text).map((e: { name: string }) => e.name), [
      "a.txt",
      "bigger.txt",
    ]);
    assert.deepEqual(JSON.parse(sizeJson.text).map((e: { name: string }) => e.name), [
      "bigger.txt",
      "a.txt",
    ]);
    assert.equal(JSON.parse(nameDesc.text)[0].name, "bigger.txt");
    assert.notEqual(sizeHtml.text, html.text);
    assert.ok(html.text.includes("<title>Index of /sub/</title>"));
    assert.ok(linkHtml.text.includes("<title>Index of /sublink/</title>"));
    assert.equal(linkJson.text, json.text);
  }, { revalidateMs: 3_600_000 });
});

Deno.test("handler 404s a directory without index.html when dirListing is off", async () => {
  await withFixture(async (_f, h) => {
    assert.equal((await get(h, req("/sub/"))).status, 404);
    assert.equal((await get(h, req("/site/"))).status, 200);
  }, { dirListing: false });
});

Deno.test("handler applies preconditions on cached and uncached files", async () => {
  await withFixture(async (_f, h) => {
    for (const path of ["/hello.txt", "/big.bin"]) {
      for (let round = 0; round < 2; round++) { // second round: cache hit for hello.txt
        const a = await get(h, req(path));
        const etag = a.headers.get("etag")!;
        const lm = a.headers.get("last-modified")!;
        const inm = await get(h, req(path, { "if-none-match": `W/${etag}` }));
        assert.equal(inm.status, 304, path);
        assert.equal(inm.body.length, 0);
        assert.equal(inm.headers.get("etag"), etag);
        assert.equal((await get(h, req(path, { "if-modified-since": lm }))).status, 304);
        assert.equal((await get(h, req(path, { "if-match": '"other"' }))).status, 412);
        assert.equal((await get(h, req(path, { "if-match": etag }))).status, 200);
        assert.equal(
          (await get(h, req(path, { "if-unmodified-since": "Thu, 01 Jan 1970 00:00:00 GMT" })))
            .status,
          412,
        );
      }
    }
  });
});

Deno.test("handler answers ranges: 206 single, multipart, 416, If-Range mismatch 200", async () => {
  await withFixture(async (_f, h) => {
    for (const path of ["/hello.txt", "/big.bin", "/hello.txt"]) {
      const full = await get(h, req(path));
      const size = full.body.length;
      const one = await get(h, req(path, { range: "bytes=2-5" }));
      assert.equal(one.status, 206);
      assert.equal(one.headers.get("content-range"), `bytes 2-5/${size}`);
      assert.deepEqual(one.body, full.body.subarray(2, 6));
      const suffix = await get(h, req(path, { range: "bytes=-3" }));
      assert.deepEqual(suffix.body, full.body.subarray(size - 3));
      const multi = await get(h, req(path, { range: "bytes=0-0,4-5" }));
      assert.equal(multi.status, 206);
      const ct = multi.headers.get("content-type")!;
      assert.match(ct, /^multipart\/byteranges; boundary=/);
      const boundary = ct.split("boundary=")[1];
      const latin = Array.from(multi.body, (b) => String.fromCharCode(b)).join("");
      const bytes = (a: number, b: number) =>
        Array.from(full.body.subarray(a, b), (x) => String.fromCharCode(x)).join("");
      assert.equal(
        latin,
        `--${boundary}\r\nContent-Type: ${full.headers.get("content-type")}\r\n` +
          `Content-Range: bytes 0-0/${size}\r\n\r\n${bytes(0, 1)}\r\n--${boundary}\r\n` +
          `Content-Type: ${full.headers.get("content-type")}\r\nContent-Range: bytes 4-5/${size}` +
          `\r\n\r\n${bytes(4, 6)}\r\n--${boundary}--\r\n`,
      );
      const bad = await get(h, req(path, { range: `bytes=${size}-` }));
      assert.equal(bad.status, 416);
      assert.equal(bad.headers.get("content-range"), `bytes */${size}`);
      const etag = full.headers.get("etag")!;
      assert.equal((await get(h, req(path, { range: "bytes=0-1", "if-range": etag }))).status, 206);
      const stale = await get(h, req(path, { range: "bytes=0-1", "if-range": '"old"' }));
      assert.equal(stale.status, 200);
      assert.equal(stale.body.length, size);
      const lm = full.headers.get("last-modified")!;
      assert.equal((await get(h, req(path, { range: "bytes=0-1", "if-range": lm }))).status, 206);
      const overlap = await get(h, req(path, { range: "bytes=0-5,1-2" }));
      assert.equal(overlap.status, 200);
      assert.equal(overlap.body.length, size);
    }
  });
});

Deno.test("handler serves precompressed siblings by Accept-Encoding, respecting q=0", async () => {
  await withFixture(async (_f, h) => {
    const cases: Array<[string | undefined, string, string | null]> = [
      ["gzip, deflate, br", "BROTLI", "br"],
      ["gzip", "GZIP", "gzip"],
      ["br;q=0, gzip", "GZIP", "gzip"],
      ["br;q=0, gzip;q=0", "console.log(1)", null],
      [undefined, "console.log(1)", null],
    ];
    for (const [ae, body, coding] of cases) {
      const a = await get(h, req("/app.js", ae === undefined ? {} : { "accept-encoding": ae }));
      assert.equal(a.status, 200, ae);
      assert.equal(a.text, body, ae);
      assert.equal(a.headers.get("content-encoding"), coding, ae);
      assert.equal(a.headers.get("vary"), "Accept-Encoding", ae);
      assert.match(a.headers.get("content-type")!, /javascript/);
    }
    const br = await get(h, req("/app.js", { "accept-encoding": "br" }));
    const id = await get(h, req("/app.js"));
    assert.notEqual(br.headers.get("etag"), id.headers.get("etag"));
  });
});

Deno.test("handler keeps serving the original bytes of a file replaced after open", async () => {
  await withFixture(async (f, h) => {
    const reply = await h(req("/big.bin"));
    try {
      await Deno.remove(`${f.root}/big.bin`);
      await Deno.writeTextFile(`${f.root}/big.bin`, "replaced");
      const part = reply.body[0];
      assert.ok(!(part instanceof Uint8Array));
      const buf = new Uint8Array(part.end - part.start);
      await part.file.seek(0, Deno.SeekMode.Start);
      let got = 0;
      while (got < buf.length) got += (await part.file.read(buf.subarray(got))) ?? buf.length;
      assert.equal(reply.length, 200 * 1024);
      assert.equal(buf[300], 300 % 251);
    } finally {
      reply.release?.();
    }
    assert.equal((await get(h, req("/big.bin"))).text, "replaced");
  });
});

Deno.test("handler cache: a hit returns the same pre-serialised reply without I/O", async () => {
  await withFixture(async (f, h) => {
    const a = await get(h, req("/hello.txt")); // miss: reads and caches
    const b = await h(req("/hello.txt"));
    assert.equal(await h(req("/hello.txt")), b); // shared object: no allocation on a hit
    assert.ok(Object.isFrozen(b));
    const head = dec.decode(b.rawHead!);
    assert.ok(head.startsWith("HTTP/1.1 200 OK\r\n"));
    assert.ok(head.endsWith("Content-Length: 11\r\n"));
    assert.ok(head.includes(`ETag: ${a.headers.get("etag")}\r\n`));
    // Within revalidateMs a hit does no I/O: even a deleted file is still served.
    await Deno.remove(`${f.root}/hello.txt`);
    assert.equal((await get(h, req("/hello.txt"))).text, "hello world");
  }, { revalidateMs: 3_600_000 });
});

Deno.test("handler cache: a stale entry is revalidated with a stat and refreshed on change", async () => {
  await withFixture(async (f, h) => {
    assert.equal((await get(h, req("/hello.txt"))).text, "hello world");
    const same = await h(req("/hello.txt"));
    assert.equal(await h(req("/hello.txt")), same); // unchanged: same cached reply
    await Deno.writeTextFile(`${f.root}/hello.txt`, "changed content");
    assert.equal((await get(h, req("/hello.txt"))).text, "changed content");
    await Deno.remove(`${f.root}/hello.txt`);
    assert.equal((await get(h, req("/hello.txt"))).status, 404);
    await Deno.symlink("../outside/secret.txt", `${f.root}/hello.txt`);
    assert.equal((await get(h, req("/hello.txt"))).status, 404);
  }, { revalidateMs: 0 });
});

Deno.test("handler cache respects cacheMaxFileBytes and the total budget", async () => {
  await withFixture(async (_f, h) => {
    const a = await get(h, req("/hello.txt"));
    assert.equal(a.reply.rawHead, undefined);
    assert.ok(a.reply.release !== undefined); // streamed from the open file
  }, { cacheMaxFileBytes: 4 });
  await withFixture(async (_f, h) => {
    await get(h, req("/hello.txt"));
    await get(h, req("/sub/a.txt")); // evicts hello.txt (budget 12 bytes)
    assert.notEqual(await h(req("/hello.txt")), await h(req("/hello.txt")));
  }, { cacheMaxBytes: 12, revalidateMs: 3_600_000 });
});

Deno.test("handler adds CORS and extra headers to every reply", async () => {
  await withFixture(async (_f, h) => {
    for (const p of ["/hello.txt", "/hello.txt", "/big.bin", "/", "/nope", "/sub"]) {
      const a = await get(h, req(p));
      assert.equal(a.headers.get("access-control-allow-origin"), "*", p);
      assert.equal(a.headers.get("x-test"), "1", p);
    }
  }, { cors: true, headers: [["X-Test", "1"]] });
});

Deno.test("handler links a non-UTF-8 file name by its raw bytes and serves it", async () => {
  await withFixture(async (f, h) => {
    if (!f.nonUtf8) return; // filesystem refused the name
    const a = await get(h, req("/"));
    assert.equal(a.status, 200);
    if (!rawAvailable()) {
      // Without --allow-ffi: listed, not linked; the raw spelling is refused.
      assert.ok(a.text.includes('title="name is not valid UTF-8">bad-\uFFFD\uFFFD.txt'));
      assert.equal((await get(h, req("/bad-%FF%FE.txt"))).status, 400);
      return;
    }
    assert.ok(a.text.includes('<a href="bad-%FF%FE.txt">bad-\uFFFD\uFFFD.txt</a>'));
    const r = await get(h, req("/bad-%FF%FE.txt"));
    assert.equal(r.status, 200);
    assert.equal(r.text, "raw bytes");
    assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.match(r.headers.get("etag")!, /^"/);
    const part = await get(h, req("/bad-%FF%FE.txt", { range: "bytes=4-" }));
    assert.equal(part.text, "bytes");
    // The lossy spelling names nothing; other invalid bytes name nothing.
    assert.equal((await get(h, req("/bad-%EF%BF%BD%EF%BF%BD.txt"))).status, 404);
    assert.equal((await get(h, req("/bad-%FF.txt"))).status, 404);
    // Overlong forms and traversal stay refused at the byte level too.
    assert.equal((await get(h, req("/%FF/%c0%af"))).status, 400);
    assert.equal((await get(h, req("/%FF/../outside/secret.txt"))).status, 400);
    assert.equal((await get(h, req("/.%FF"))).status, 404);
  });
});

Deno.test("errorStatus() maps filesystem errors to statuses", () => {
  const code = (c: string) => Object.assign(new Error(c), { code: c });
  assert.deepEqual(errorStatus(new Deno.errors.NotFound("x")), 404);
  assert.deepEqual(errorStatus(new Deno.errors.NotADirectory("x")), 404);
  assert.deepEqual(errorStatus(new Deno.errors.FilesystemLoop("x")), 404);
  assert.deepEqual(errorStatus(code("ENAMETOOLONG")), 404);
  assert.deepEqual(errorStatus(new Deno.errors.PermissionDenied("x")), 403);
  assert.deepEqual(errorStatus(code("EMFILE")), 503);
  assert.deepEqual(errorStatus(code("ENFILE")), 503);
  assert.deepEqual(errorStatus(new Error("boom")), 500);
  assert.deepEqual(errorStatus("a string"), 500);
});

Deno.test("createHandler() refuses a bad root and bad extra headers", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${tmp}/file`, "x");
    await assert.rejects(
      createHandler({ root: `${tmp}/file` }),
      /root ".*file" is not a directory/,
    );
    await assert.rejects(createHandler({ root: `${tmp}/missing` }), /missing/);
    await assert.rejects(
      createHandler({ root: tmp, headers: [["X-A", "b\r\nSet-Cookie: x"]] }),
      /CR, LF/,
    );
    await assert.rejects(createHandler({ root: tmp, headers: [["X A", "b"]] }), /HTTP token/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("property: any URL path resolves inside the root or answers 4xx", async () => {
  await withFixture(async (f, h) => {
    const realRoot = await Deno.realPath(f.root);
    const piece = fc.constantFrom(
      "..",
      ".",
      "%2e",
      "%2E%2e",
      "%2f",
      "%5c",
      "\\",
      "%00",
      "%",
      "%c0%ae",
      "%ff",
      "sub",
      "link-out",
      "dirlink-out",
      "secret.txt",
      "hello.txt",
      "loop1",
      ".env",
      "a",
      "%20",
      "?",
      "#",
      "",
      "outside",
      "many",
      "f1.txt",
      "site",
      "index.html",
      "%252e",
      "..%2f",
      "%e2%82%ac",
    );
    const path = fc.array(piece, { maxLength: 6 }).map((xs) => "/" + xs.join("/"));
    await fc.assert(
      fc.asyncProperty(path, async (p) => {
        const a = await get(h, req(p));
        assert.ok(!a.text.includes(SECRET), p);
        if (a.status >= 400 && a.status < 500) return;
        assert.ok(a.status < 400, `${p} -> ${a.status}`);
        const d = decodePath(a.status === 301 ? p : p.split("?")[0].split("#")[0], false);
        assert.ok(d.ok, p);
        const real = await Deno.realPath([f.root, ...d.segments].join("/"));
        assert.ok(isInside(realRoot, real), `${p} -> ${real}`);
      }),
      { numRuns: 300, seed: 42 },
    );
  });
});

Deno.test("handler: a compressible file asked for with Accept-Encoding is still cached as identity, then served compressed without the disk", async () => {
  const root = await Deno.makeTempDir();
  const text = "cache me, then compress me. ".repeat(100);
  await Deno.writeTextFile(`${root}/a.txt`, text);
  try {
    const h = await createHandler({ root, revalidateMs: 60_000 });
    const gz = await get(h, req("/a.txt", { "accept-encoding": "gzip" }));
    assert.equal(gz.headers.get("content-encoding"), "gzip");
    await Deno.remove(`${root}/a.txt`);
    // Both representations now come from memory (the file is gone).
    const plain = await get(h, req("/a.txt"));
    assert.equal(plain.status, 200);
    assert.equal(plain.text, text);
    assert.equal(plain.headers.get("vary"), "Accept-Encoding");
    const again = await get(h, req("/a.txt", { "accept-encoding": "gzip" }));
    assert.equal(again.headers.get("content-encoding"), "gzip");
    assert.deepEqual(again.body, gz.body);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("handler: concurrent misses of one listing page or one compressed variant share one pool job", async () => {
  const root = await Deno.makeTempDir();
  const real = await Deno.realPath(root);
  await Deno.mkdir(`${root}/d`);
  await Deno.writeTextFile(`${root}/d/a.txt`, "x");
  await Deno.writeTextFile(`${root}/big.txt`, "y".repeat(5000));
  try {
    const calls: string[] = [];
    const h = await createHandler({
      root,
      // A pool that is always busy, slowly: every request must wait for the same job.
      jobs: async (kind) => {
        calls.push(kind);
        await new Promise((r) => setTimeout(r, 50));
        return { status: 503 };
      },
    });
    // A change elsewhere under the root does not split the shared job.
    const listings = await Promise.all(Array.from({ length: 10 }, (_, i) => {
      if (i === 5) h.invalidate(`${real}/unrelated.log`);
      return get(h, req("/d/"));
    }));
    assert.deepEqual(listings.map((a) => a.status), Array(10).fill(503));
    assert.equal(listings[0].headers.get("retry-after"), "1");
    assert.deepEqual(calls, ["listing"]);
    // A busy pool never fails a file: it goes out uncompressed.
    const files = await Promise.all(Array.from({ length: 10 }, (_, i) => {
      if (i === 5) h.invalidate(`${real}/unrelated.log`);
      return get(h, req("/big.txt", { "accept-encoding": "br" }));
    }));
    assert.deepEqual(files.map((a) => a.status), Array(10).fill(200));
    assert.equal(files[0].headers.get("content-encoding"), null);
    assert.equal(files[0].text.length, 5000);
    assert.deepEqual(calls, ["listing", "compress"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
