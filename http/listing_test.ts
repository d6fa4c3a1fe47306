import assert from "node:assert/strict";
import fc from "npm:fast-check@^4.11.0";
import {
  collectEntries,
  compareNames,
  type Entry,
  entryHref,
  escapeHtml,
  filterEntries,
  humanSize,
  isoLike,
  listingETag,
  parseListingQuery,
  renderHtml,
  renderJson,
  rfc3339,
  sortEntries,
} from "./listing.ts";
import { renderPage, variantKey } from "./_listing_page.ts";
import { countEntries, iconOf, wrappableName } from "./_listing_html.ts";

const dec = new TextDecoder();
const Q = parseListingQuery("");

function e(name: string, isDir = false, size = 0, mtimeMs = 0): Entry {
  return { name, type: isDir ? "dir" : "file", isDir, size, mtimeMs };
}

Deno.test("parseListingQuery() reads sort, order, page and format, ignoring junk", () => {
  assert.deepEqual(Q, { sort: "name", order: "asc", page: 1, json: false });
  assert.deepEqual(parseListingQuery("sort=size&order=desc&page=3&format=json"), {
    sort: "size",
    order: "desc",
    page: 3,
    json: true,
  });
  assert.deepEqual(parseListingQuery("sort=evil&order=up&page=0&page=-1&format=xml"), Q);
});

Deno.test("sortEntries() puts directories first, then natural case-insensitive names", () => {
  const list = [e("b10"), e("B2"), e("a"), e("zdir", true), e("Adir", true), e("b1")];
  assert.deepEqual(sortEntries(list, "name", "asc").map((x) => x.name), [
    "Adir",
    "zdir",
    "a",
    "b1",
    "B2",
    "b10",
  ]);
  assert.deepEqual(sortEntries(list, "name", "desc").map((x) => x.name), [
    "zdir",
    "Adir",
    "b10",
    "B2",
    "b1",
    "a",
  ]);
});

Deno.test("sortEntries() orders any names exactly as Intl.Collator does (its fast keys included)", () => {
  // Printable ASCII takes the precomputed-key path; the rest the collator.
  const ascii = fc.string({
    unit: fc.oneof(
      fc.constantFrom(..."0000123456789"),
      fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    ),
    minLength: 1,
    maxLength: 12,
  });
  const any = fc.oneof(ascii, fc.string({ unit: "binary", minLength: 1, maxLength: 6 }));
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(fc.oneof(ascii, ascii, any), fc.boolean(), fc.nat(3)), {
        selector: (t) => t[0],
        maxLength: 60,
      }),
      fc.constantFrom("name", "size", "mtime"),
      fc.constantFrom("asc", "desc"),
      (rows, sort: "name" | "size" | "mtime", order: "asc" | "desc") => {
        const list = rows.map(([name, isDir, n]) => e(name, isDir, n, 3 - n));
        const d = order === "desc" ? -1 : 1;
        const expected = list.slice().sort((a, b) =>
          a.isDir !== b.isDir ? (a.isDir ? -1 : 1) : d * (
            (sort === "size" ? a.size - b.size : sort === "mtime" ? a.mtimeMs - b.mtimeMs : 0) ||
            compareNames(a.name, b.name)
          )
        );
        assert.deepEqual(
          sortEntries(list, sort, order).map((x) => x.name),
          expected.map((x) => x.name),
        );
      },
    ),
    { numRuns: 2000 },
  );
  // Leading zeros, long numbers, punctuation around digits, case.
  const names = ["a01", "a1", "a001b", "a1c", "x", "x0", "x00", "9".repeat(120), "1".repeat(96)];
  names.push("1.10", "1.5", "-1", "1", "A-b", "ab", "a b", "_a", "~", "$", "Zz", "zZ");
  const sorted = sortEntries(names.map((n) => e(n)), "name", "asc").map((x) => x.name);
  assert.deepEqual(sorted, names.slice().sort(compareNames));
});

Deno.test("sortEntries() sorts by size and mtime with name as tie-break", () => {
  const list = [e("c", false, 5, 3), e("a", false, 5, 1), e("b", false, 1, 2)];
  assert.deepEqual(sortEntries(list, "size", "asc").map((x) => x.name), ["b", "a", "c"]);
  assert.deepEqual(sortEntries(list, "mtime", "desc").map((x) => x.name), ["c", "b", "a"]);
});

Deno.test("escapeHtml() and entryHref() escape hostile names", () => {
  assert.equal(
    escapeHtml(`<a href="x">'&'</a>`),
    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
  );
  assert.equal(entryHref(`a"b<c>'d&e`, false), "a%22b%3Cc%3E&#39;d%26e");
  assert.equal(entryHref("q?x#y %", false), "q%3Fx%23y%20%25");
  assert.equal(entryHref("javascript:alert(1)", false), "./javascript%3Aalert(1)");
  assert.equal(entryHref("dir", true), "dir/");
  assert.equal(entryHref("\u00e9", false), "%C3%A9");
});

Deno.test("humanSize() uses binary units", () => {
  assert.equal(humanSize(0), "0 B");
  assert.equal(humanSize(1023), "1023 B");
  assert.equal(humanSize(1536), "1.5 KiB");
  assert.equal(humanSize(50 * 1024 * 1024), "50 MiB");
});

Deno.test("renderHtml() escapes names in text and href and links the column headers", () => {
  const entries = [
    e("sub<dir>", true),
    e(`x"y'z&.txt`, false, 2048, Date.UTC(2024, 0, 2, 3, 4, 5)),
  ];
  const html = dec.decode(renderHtml(entries, { path: "/a <b>/", query: Q, pages: 1, total: 2 }));
  assert.ok(html.startsWith("<!DOCTYPE html>"));
  assert.ok(html.includes("<title>Index of /a &lt;b&gt;/</title>"));
  assert.ok(html.includes('<a href="/a%20%3Cb%3E/">a &lt;b&gt;</a>/'));
  assert.ok(html.includes('<a href="sub%3Cdir%3E/">sub&lt;dir&gt;/</a>'));
  assert.ok(html.includes('<a href="x%22y&#39;z%26.txt">x&quot;y&#39;z&amp;.txt</a>'));
  assert.ok(html.includes('title="2048 bytes">2.0 KiB<'));
  assert.ok(html.includes("<td>2024-01-02 03:04:05\n"));
  assert.ok(html.includes("Modified (UTC)"), "dates carry their zone, in the header");
  assert.ok(html.includes('<a href="../">../</a>'));
  // Sorting is a GET form per column (crawlers do not submit forms).
  assert.ok(html.includes(
    '<button name="sort" value="name">Name &uarr;</button><input type="hidden" name="order" value="desc">',
  ));
  assert.ok(html.includes(
    '<button name="sort" value="size">Size</button><input type="hidden" name="order" value="asc">',
  ));
  assert.ok(!html.includes("?sort="), "no sort link at all");
  assert.ok(html.includes("prefers-color-scheme:dark"));
  // One script, the filter box: no entry data reaches script context.
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)];
  assert.equal(scripts.length, 1);
  assert.equal((html.match(/<script/gi) ?? []).length, 1);
  assert.ok(!/sub|x&quot;y|<b>/.test(scripts[0][1]));
  // no raw hostile character survives outside markup
  assert.ok(!html.includes("sub<dir>"));
});

Deno.test("renderHtml() has a server-side filter form, and the tar download (a form) only when offered", () => {
  const plain = dec.decode(renderHtml([e("a.txt")], { path: "/d/", query: Q, pages: 1, total: 1 }));
  // The filter works without JavaScript: a GET form over the whole folder (?q=).
  assert.match(plain, /<form method="get" role="search"><input type="search" id="filter" name="q"/);
  assert.ok(!plain.includes("download"));
  const ctx = { path: "/d/", query: Q, pages: 1, total: 1, download: true };
  const html = dec.decode(renderHtml([e("a.txt")], ctx));
  assert.ok(html.includes(
    '<form method="get"><button name="download" value="tar">Download folder as .tar</button></form>',
  ));
  // The only hrefs are the entries, breadcrumbs and ../: nothing a crawler should not fetch.
  const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
  assert.deepEqual(hrefs, ["data:,", "/", "/d/", "../", "a.txt"]);
  // The selection downloads: a GET form whose checkboxes come with ?pick=1 (or the script).
  assert.ok(html.includes('<form method="get" id="sel"><button name="download" value="zip">'));
  assert.ok(html.includes('<button name="download" value="tar">Download selected as .tar'));
  assert.ok(html.includes('<button name="pick" value="1">Select files</button>'));
  assert.ok(!html.includes("type=checkbox"));
  const picked = dec.decode(renderHtml([e("a.txt"), e('b "c"')], {
    ...ctx,
    query: parseListingQuery("pick=1"),
  }));
  assert.ok(picked.includes("<input type=checkbox name=select value=a.txt form=sel>"));
  assert.ok(picked.includes('<input type=checkbox name=select value="b &quot;c&quot;" form=sel>'));
  assert.ok(!picked.includes('name="pick"'));
});

Deno.test("parseListingQuery() reads download=tar and ignores other download values", () => {
  assert.equal(parseListingQuery("download=tar").download, "tar");
  assert.equal(parseListingQuery("sort=size&download=tar").sort, "size");
  assert.equal(parseListingQuery("download=zip").download, undefined);
  assert.equal(parseListingQuery("").download, undefined);
});

Deno.test("renderHtml() omits ../ at the root and adds page links when paginated", () => {
  const q = parseListingQuery("page=2&sort=size");
  const html = dec.decode(renderHtml([], { path: "/", query: q, pages: 3, total: 25 }));
  assert.ok(!html.includes('href="../"'));
  assert.ok(html.includes('href="?sort=size&amp;order=asc" rel="prev"'));
  assert.ok(html.includes('href="?sort=size&amp;order=asc&amp;page=3" rel="next"'));
  assert.ok(html.includes("page 2 of 3 (25 entries)"));
  // The pager above the table and below it.
  assert.equal(html.match(/page 2 of 3 \(25 entries\)/g)?.length, 2);
  assert.ok(html.indexOf("page 2 of 3") < html.indexOf("<table"));
  assert.ok(html.lastIndexOf("page 2 of 3") > html.indexOf("</table>"));
  // In name order, page links are canonical: `?page=N` alone, `./` for the first.
  const plain = dec.decode(
    renderHtml([], { path: "/", query: parseListingQuery("page=2"), pages: 3, total: 25 }),
  );
  assert.ok(plain.includes('href="./" rel="prev"'));
  assert.ok(plain.includes('href="?page=3" rel="next"'));
  // per_page and q are carried along.
  const kept = dec.decode(renderHtml([], {
    path: "/",
    query: parseListingQuery("page=2&per_page=10&q=a%20b"),
    pages: 3,
    total: 25,
  }));
  assert.ok(kept.includes('href="?page=3&amp;per_page=10&amp;q=a%20b" rel="next"'));
  assert.ok(kept.includes('<input type="hidden" name="per_page" value="10">'));
});

Deno.test("renderHtml() says when the directory was too large to read whole", () => {
  const ctx = { path: "/", query: Q, pages: 1, total: 5, truncated: true };
  assert.ok(dec.decode(renderHtml([], ctx)).includes("Only the first 5 entries"));
});

Deno.test("renderHtml() lists a lossy (non-UTF-8) name without a link", () => {
  const lossy: Entry = { ...e("a\uFFFDb"), lossy: true };
  const html = dec.decode(renderHtml([lossy], { path: "/", query: Q, pages: 1, total: 1 }));
  assert.ok(html.includes("a\uFFFDb"));
  assert.ok(!html.includes('href="a%EF%BF%BDb"'));
});

Deno.test("renderJson() gives name, type, size and RFC 3339 mtime", () => {
  const entries: Entry[] = [
    e("d", true, 4096, 0),
    { name: 'q"\\\n', type: "symlink", isDir: false, size: 3, mtimeMs: Date.UTC(2024, 0, 2) },
  ];
  const parsed = JSON.parse(dec.decode(renderJson(entries)));
  // A directory's size is null, not its inode's 4096 bytes.
  assert.deepEqual(parsed, [
    { name: "d", type: "dir", size: null, mtime: "1970-01-01T00:00:00.000Z" },
    { name: 'q"\\\n', type: "symlink", size: 3, mtime: "2024-01-02T00:00:00.000Z" },
  ]);
  assert.deepEqual(JSON.parse(dec.decode(renderJson([]))), []);
});

Deno.test("listingETag() changes with entries and options", () => {
  const a = [e("a", false, 1, 1)];
  const t = listingETag(a, "h");
  assert.match(t, /^W\/"/);
  assert.equal(listingETag([e("a", false, 1, 1)], "h"), t);
  assert.notEqual(listingETag([e("a", false, 2, 1)], "h"), t);
  assert.notEqual(listingETag(a, "j"), t);
});

Deno.test("collectEntries() lists files, dirs and symlinks, skipping dotfiles and dangling links", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.writeTextFile(`${dir}/f.txt`, "hello");
    await Deno.writeTextFile(`${dir}/.hidden`, "x");
    await Deno.mkdir(`${dir}/sub`);
    await Deno.symlink("sub", `${dir}/link`);
    await Deno.symlink("nowhere", `${dir}/dangling`);
    await Deno.symlink("loop", `${dir}/loop`);
    const policy = { root: dir, dotfiles: false, followSymlinks: false };
    const got = sortEntries(collectEntries(dir, policy), "name", "asc");
    assert.deepEqual(got.map((x) => [x.name, x.type, x.isDir]), [
      ["link", "symlink", true],
      ["sub", "dir", true],
      ["f.txt", "file", false],
    ]);
    assert.equal(got.find((x) => x.name === "f.txt")!.size, 5);
    assert.ok(collectEntries(dir, { ...policy, dotfiles: true }).some((x) => x.name === ".hidden"));
    assert.equal(collectEntries(dir, policy, 2).length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("collectEntries() leaves out symlinks GET would not serve: outside the root, or to a dotfile", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  const root = `${base}/root`;
  try {
    await Deno.mkdir(`${root}/sub`, { recursive: true });
    await Deno.mkdir(`${base}/outside`);
    await Deno.writeTextFile(`${base}/outside/secret.txt`, "a secret of 24 bytes....");
    await Deno.writeTextFile(`${root}/in.txt`, "in");
    await Deno.writeTextFile(`${root}/.env`, "KEY=1");
    await Deno.mkdir(`${base}/root-evil`);
    await Deno.symlink("../outside/secret.txt", `${root}/secretlink`);
    await Deno.symlink(`${base}/outside`, `${root}/abs_out`);
    await Deno.symlink("../root-evil", `${root}/evilprefix`); // shares the root's name as a prefix
    await Deno.symlink("secretlink", `${root}/chain`); // inside, then out
    await Deno.symlink(".env", `${root}/envlink`);
    await Deno.symlink("in.txt", `${root}/inlink`);
    await Deno.symlink("../sub", `${root}/sub/up`); // leaves sub, stays in the root
    const policy = { root, dotfiles: false, followSymlinks: false };
    const names = (dir: string, p = policy) => collectEntries(dir, p).map((e) => e.name).sort();

    assert.deepEqual(names(root), ["in.txt", "inlink", "sub"]);
    assert.deepEqual(names(`${root}/sub`), ["up"]);
    const inlink = collectEntries(root, policy).find((e) => e.name === "inlink")!;
    assert.equal(inlink.size, 2, "a symlink inside the root shows its target's size");
    // Each switch lets through exactly what it lets GET serve.
    assert.deepEqual(names(root, { ...policy, dotfiles: true }), [
      ".env",
      "envlink",
      "in.txt",
      "inlink",
      "sub",
    ]);
    const followed = collectEntries(root, { ...policy, followSymlinks: true });
    assert.deepEqual(followed.map((e) => e.name).sort(), [
      "abs_out",
      "chain",
      "evilprefix",
      "in.txt",
      "inlink",
      "secretlink",
      "sub",
    ]);
    assert.equal(followed.find((e) => e.name === "secretlink")!.size, 24);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("isoLike() and rfc3339() match Date#toISOString for years 1970-9999", () => {
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 20000; i++) {
    const ms = Math.floor(rand() * 253402300799999);
    const iso = new Date(ms).toISOString();
    assert.equal(rfc3339(ms), iso);
    assert.equal(isoLike(ms), iso.slice(0, 10) + " " + iso.slice(11, 19));
  }
  assert.equal(rfc3339(951782400000), "2000-02-29T00:00:00.000Z");
  assert.equal(rfc3339(-5), "1970-01-01T00:00:00.000Z");
  assert.equal(rfc3339(NaN), "1970-01-01T00:00:00.000Z");
});

Deno.test("collectEntries() reads the same entries through FFI as through readDirSync + lstatSync", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  const dir = `${base}/root`;
  try {
    Deno.mkdirSync(`${base}/outside`);
    Deno.writeTextFileSync(`${base}/outside/secret.txt`, "s");
    Deno.mkdirSync(dir);
    Deno.writeTextFileSync(`${dir}/f.txt`, "hello");
    Deno.writeTextFileSync(`${dir}/.hidden`, "x");
    Deno.writeTextFileSync(`${dir}/\u65e5\u672c.txt`, "utf-8 name");
    Deno.mkdirSync(`${dir}/sub`);
    Deno.mkdirSync(`${dir}/.dotdir`);
    Deno.symlinkSync("sub", `${dir}/link`);
    Deno.symlinkSync("f.txt", `${dir}/flink`);
    Deno.symlinkSync("../outside", `${dir}/out`);
    Deno.symlinkSync("nowhere", `${dir}/dangling`);
    Deno.symlinkSync(".hidden", `${dir}/to-hidden`);
    Deno.utimeSync(`${dir}/f.txt`, 1_700_000_000.123, 1_700_000_000.987);
    Deno.writeTextFileSync(`${dir}/old.txt`, "1960");
    Deno.utimeSync(`${dir}/old.txt`, -315_619_199.5, -315_619_199.5);
    // Non-UTF-8 names (Deno paths are strings, so bash makes them).
    const made = await new Deno.Command("bash", {
      args: [
        "-c",
        `cd "$1" && printf 'x' > $'\\xff\\xfe-bin.txt' && printf 'y' > $'\\xff\\xfd-bin.txt' &&
         ln -s ../outside/secret.txt $'\\xfe-out' && mkdir $'\\xfa-dir'`,
        "bash",
        dir,
      ],
    }).output();
    assert.ok(made.success);
    for (const dotfiles of [false, true]) {
      for (const followSymlinks of [false, true]) {
        const policy = { root: dir, dotfiles, followSymlinks };
        const ffi = sortEntries(collectEntries(dir, policy), "name", "asc");
        const portable = sortEntries(collectEntries(dir, policy, Infinity, false), "name", "asc");
        assert.deepEqual(ffi, portable, JSON.stringify(policy));
        assert.equal(collectEntries(dir, policy, 3).length, 3);
      }
    }
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("parseListingQuery() takes per_page 1..max and q, and explains a bad value (a 400)", () => {
  assert.equal(parseListingQuery("per_page=50").perPage, 50);
  assert.equal(parseListingQuery("per_page=10000").perPage, 10000);
  assert.equal(
    parseListingQuery("per_page=5", 4).error,
    'per_page must be an integer from 1 to 4, got "5"',
  );
  for (const v of ["0", "-1", "1.5", "abc", "", "10001", "99999999999"]) {
    const q = parseListingQuery(`per_page=${v}`);
    assert.equal(q.perPage, undefined);
    assert.equal(q.error, `per_page must be an integer from 1 to 10000, got ${JSON.stringify(v)}`);
  }
  assert.equal(parseListingQuery("q=Caf%C3%A9+au").filter, "Caf\u00e9 au", "form encoding");
  assert.equal(parseListingQuery("q=").filter, undefined, "empty: no filter");
  assert.equal(parseListingQuery("q=%20%20").filter, undefined, "blank: no filter");
  assert.equal(parseListingQuery("q=%E0%A4").error, "q is not valid percent-encoded UTF-8");
  assert.equal(
    parseListingQuery(`q=${"x".repeat(257)}`).error,
    "q must be at most 256 characters, got 257",
  );
  assert.deepEqual(parseListingQuery("sort=size"), {
    sort: "size",
    order: "asc",
    page: 1,
    json: false,
  });
});

Deno.test("filterEntries() keeps names containing the filter, any case, in order", () => {
  const list = [e("Alpha.TXT"), e("beta.txt"), e("gamma.md"), e("ALPHABET", true)];
  assert.deepEqual(filterEntries(list, "alpha").map((x) => x.name), ["Alpha.TXT", "ALPHABET"]);
  assert.deepEqual(filterEntries(list, ".TxT").map((x) => x.name), ["Alpha.TXT", "beta.txt"]);
  assert.deepEqual(filterEntries(list, "zzz"), []);
});

Deno.test("renderPage() pages by per_page (default 1,000, capped), filters the whole folder by q", () => {
  const all = sortEntries(
    Array.from({ length: 2500 }, (_, i) => e(`f${i}.txt`, false, i)),
    "name",
    "asc",
  );
  const cfg = { listingCap: 10_000, dotfiles: false, archives: true };
  const json = (query: string) => {
    const p = renderPage(all, false, 0, parseListingQuery(query), true, "/d/", cfg);
    return {
      p,
      names: p.status === 200 ? JSON.parse(dec.decode(p.body)).map((x: Entry) => x.name) : [],
    };
  };
  assert.equal(json("").names.length, 1000, "default page: 1,000");
  assert.equal(json("page=3").names.length, 500);
  assert.equal(json("page=4").p.status, 404);
  assert.equal(json("per_page=2500").names.length, 2500);
  assert.deepEqual(json("per_page=2&page=2").names, ["f2.txt", "f3.txt"]);
  // q filters all 2,500 names, not one page: f1999 is on page 2 unfiltered.
  const f = json("q=F199");
  assert.deepEqual(f.names, [
    "f199.txt",
    ...Array.from({ length: 10 }, (_, i) => `f${1990 + i}.txt`),
  ]);
  assert.deepEqual(json("q=nothing").names, []);
  assert.equal(json("q=nothing").p.status, 200, "an empty result is a page, not a 404");
  // The cap bounds per_page: 400 with the reason.
  const capped = renderPage(all, false, 0, parseListingQuery("per_page=600"), false, "/", {
    ...cfg,
    listingCap: 500,
  });
  assert.equal(capped.status, 400);
  assert.match(dec.decode(capped.body), /per_page must be an integer from 1 to 500, got "600"/);
  const small = renderPage(all, false, 0, parseListingQuery(""), true, "/", {
    ...cfg,
    listingCap: 100,
  });
  assert.equal(JSON.parse(dec.decode(small.body)).length, 100, "a cap under 1,000 is the default");
  // Link headers carry per_page and q.
  const linked = json("per_page=2&page=2&q=f1");
  assert.ok(
    linked.p.headers.some(([k, v]) => k === "Link" && v.includes("page=3&per_page=2&q=f1")),
  );
  // HTML: "N of M" and the filter value shown back, escaped.
  const html = renderPage(all, false, 0, parseListingQuery("q=%3Cf19"), false, "/d/", cfg);
  assert.match(dec.decode(html.body), /0 of 2500 names contain &ldquo;&lt;f19&rdquo;/);
  assert.match(dec.decode(html.body), /name="q" value="&lt;f19"/);
});

Deno.test("variantKey() and the ETag tell apart every query field that changes the bytes", () => {
  const keys = ["", "page=2", "per_page=5", "q=a", "sort=size", "order=desc"].map((s) =>
    variantKey(parseListingQuery(s), false, "/")
  );
  assert.equal(new Set(keys).size, keys.length);
  assert.notEqual(variantKey(Q, true, "/"), variantKey(Q, false, "/"));
  assert.notEqual(variantKey(Q, false, "/a/"), variantKey(Q, false, "/b/"));
  const all = [e("a"), e("b")];
  const cfg = { listingCap: 10, dotfiles: false, archives: false };
  const tags = ["", "per_page=5", "q=a"].map((s) =>
    renderPage(all, false, 0, parseListingQuery(s), false, "/", cfg).etag
  );
  assert.equal(new Set(tags).size, 3);
});

Deno.test("renderHtml() marks kinds with sprite icons, symlinks, and counts the whole folder", () => {
  const entries: Entry[] = [
    e("pics", true),
    e("photo.JPG", false, 2048),
    e("song.mp3", false, 1024),
    e("x.tar.gz"),
    e("notes"),
    { ...e("ln.txt", false, 1), type: "symlink" },
  ];
  const ctx = {
    path: "/d/",
    query: Q,
    pages: 1,
    total: entries.length,
    counts: countEntries(entries),
  };
  const html = dec.decode(renderHtml(entries, ctx));
  // One sprite, used by reference from every row; no external resource.
  assert.equal(html.match(/<symbol id="/g)?.length, 11);
  for (const id of ["d", "i", "a", "z", "f", "t"]) {
    assert.ok(html.includes(`<symbol id="${id}"`), id);
    assert.ok(html.includes(`<use href=#${id}>`), id);
  }
  assert.ok(!/(src|href)="?(https?:)?\/\//.test(html), "nothing from another origin");
  assert.ok(html.includes('<span class="l" title="symbolic link" role="img"'));
  assert.equal(html.match(/title="symbolic link"/g)?.length, 1);
  assert.ok(html.includes("1 folder, 5 files, 3.0 KiB in total"));
  // The home target is labelled.
  assert.match(html, /<a class="h" href="\/" title="Home[^"]*">.*Home<\/a>/);
});

Deno.test("iconOf() and wrappableName()", () => {
  assert.equal(iconOf("a", true), "d");
  assert.equal(iconOf("a.PNG", false), "i");
  assert.equal(iconOf(".bashrc", false), "f");
  assert.equal(iconOf("x.rs", false), "c");
  // Short names are left alone; long ones get a break point after each separator.
  assert.equal(wrappableName("big-50MB.bin"), "big-50MB.bin");
  assert.equal(
    wrappableName("release-notes_2026-12.final<b>.txt"),
    "release-<wbr>notes_<wbr>2026-<wbr>12.<wbr>final&lt;b&gt;.<wbr>txt",
  );
  assert.equal(wrappableName("a".repeat(30)), "a".repeat(30));
});

Deno.test("renderHtml(): a 1,000-entry page stays under 150 KB", () => {
  const entries = Array.from(
    { length: 1000 },
    (_, i) => e(`file-${i}.txt`, false, i * 37, Date.UTC(2025, 0, 1) + i * 1000),
  );
  const ctx = {
    path: "/big/",
    query: Q,
    pages: 1,
    total: 1000,
    download: true,
    counts: countEntries(entries),
  };
  const n = renderHtml(entries, ctx).length;
  assert.ok(n < 150_000, `${n} bytes`);
});

Deno.test("?format=txt: one name per line, folders with /, line breaks left out", () => {
  const entries = [e("sub", true), e("a b.txt"), e("bad\nname")];
  const p = renderPage(entries, false, 0, parseListingQuery("format=txt"), false, "/", {
    listingCap: 1000,
    dotfiles: false,
    archives: false,
  });
  assert.equal(dec.decode(p.body), "sub/\na b.txt\n");
  assert.ok(p.headers.some(([k, v]) => k === "Content-Type" && v.startsWith("text/plain")));
  assert.equal(variantKey(parseListingQuery("format=txt"), false, "/x/"), "t|name|asc|1||");
});

Deno.test("?view=gallery shows the page's images as lazy tiles of the originals", () => {
  const entries = [e("sub", true), e("a b.png"), e("c.txt")];
  const list = dec.decode(renderHtml(entries, { path: "/", query: Q, pages: 1, total: 3 }));
  assert.ok(list.includes('<button name="view" value="gallery">Gallery view</button>'));
  assert.ok(!list.includes("<img"));
  const q = parseListingQuery("view=gallery");
  const gal = dec.decode(renderHtml(entries, { path: "/", query: q, pages: 1, total: 3 }));
  assert.ok(gal.includes('<img loading="lazy" src="a%20b.png" alt="">'));
  assert.ok(gal.includes('<button name="view" value="list">List view</button>'));
  assert.ok(gal.includes('<a href="c.txt">'), "the other entries stay in the table");
  const none = dec.decode(renderHtml([e("c.txt")], { path: "/", query: Q, pages: 1, total: 1 }));
  assert.ok(!none.includes('name="view"'), "no toggle without images");
});

Deno.test("renderHtml(): the folder-only filter (scope=folder) is kept by the pager and the sort forms", () => {
  const q = parseListingQuery("q=a&scope=folder&page=2");
  const html = dec.decode(renderHtml([], { path: "/", query: q, pages: 3, total: 25 }));
  assert.ok(html.includes('href="?page=3&amp;q=a&amp;scope=folder" rel="next"'));
  assert.ok(html.includes('<input type="hidden" name="scope" value="folder">'));
});
