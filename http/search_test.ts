import assert from "node:assert/strict";
import { compileQuery, IndexWriter, NameIndex } from "./_name_index.ts";
import { createHandler } from "./handler.ts";
import { hitEntries, search, walkSearch } from "./_search.ts";
import { renderSearch } from "./_listing_page.ts";
import { parseListingQuery } from "./listing.ts";
import type { RequestHead } from "./types.ts";
import { replyBytes } from "./_test_reply.ts";

const dec = new TextDecoder();

function req(target: string): RequestHead {
  const q = target.indexOf("?");
  return {
    method: "GET",
    target,
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? "" : target.slice(q + 1),
    minor: 1,
    headers: ["host", "localhost"],
  };
}

/** root/{a/{Report-2024.TXT, deep/report.md, .secret-report}, b/notes.txt, .hidden/report,
 *  out -> ../outside (symlink out of the root), inlink -> a/deep (inside)} and outside/report-out */
async function fixture(): Promise<{ tmp: string; root: string }> {
  const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-search-" }));
  const root = `${tmp}/root`;
  await Deno.mkdir(`${root}/a/deep`, { recursive: true });
  await Deno.mkdir(`${root}/b`);
  await Deno.mkdir(`${root}/.hidden`);
  await Deno.mkdir(`${tmp}/outside`);
  for (const f of ["a/Report-2024.TXT", "a/deep/report.md", "a/.secret-report", "b/notes.txt"]) {
    await Deno.writeTextFile(`${root}/${f}`, f);
  }
  await Deno.writeTextFile(`${root}/.hidden/report`, "x");
  await Deno.writeTextFile(`${tmp}/outside/report-out`, "x");
  await Deno.symlink(`${tmp}/outside`, `${root}/out`);
  await Deno.symlink(`${root}/a/deep`, `${root}/inlink`);
  return { tmp, root };
}

const policyOf = (root: string) => ({ root, dotfiles: false, followSymlinks: false });

Deno.test("compileQuery(): substring by default, whole-name globs with * and ?", () => {
  assert.deepEqual(compileQuery("ABC").needle, new TextEncoder().encode("abc"));
  assert.equal(compileQuery("abc").test, undefined);
  const g = compileQuery("*.tx?");
  assert.ok(g.test!.test("a.txt"));
  assert.ok(!g.test!.test("a.txt.gz"));
  assert.deepEqual(g.needle, new TextEncoder().encode(".tx"));
  assert.ok(compileQuery("a(b)*").test!.test("a(b)c"), "regex characters are literal");
  assert.ok(compileQuery("file-1?-4?.txt").test!.test("file-12-40.txt"));
  assert.ok(compileQuery("a/b*[x]\\").test!.test("a/bc[x]\\"));
});

Deno.test("NameIndex: a walk indexes what listings show; queries match any case, under a folder", async () => {
  const { tmp, root } = await fixture();
  try {
    // Tiny initial buffers: the writer grows them in place, under a reader made before.
    const w = new IndexWriter(policyOf(root), 2, 16);
    const reader = new NameIndex(w.index.buffers); // as another thread would attach
    const before = w.index.buffers.recs.byteLength;
    w.build();
    assert.ok(w.index.buffers.recs.byteLength > before);
    assert.ok(reader.ready);
    const paths = (q: string, under = "") =>
      reader.query(compileQuery(q), under, 100).hits.map((h) => h.path).sort();
    // Dotfiles, hidden folders and the symlink out of the root are not in it; the
    // symlinked folder inside is a name but is not descended.
    assert.deepEqual(paths("report"), ["a/Report-2024.TXT", "a/deep/report.md"]);
    assert.deepEqual(paths("REPORT", "a/deep"), ["a/deep/report.md"]);
    assert.deepEqual(paths("*.md"), ["a/deep/report.md"]);
    assert.deepEqual(paths("link"), ["inlink"]);
    assert.deepEqual(paths("out"), []);
    assert.deepEqual(paths("zzz"), []);
    assert.equal(reader.query(compileQuery("e"), "", 2).more, true);
    // A rename: the old name goes, the new one shows (a change of its folder).
    await Deno.rename(`${root}/b/notes.txt`, `${root}/b/minutes.txt`);
    w.changed(`${root}/b/minutes.txt`);
    assert.deepEqual(paths("notes"), []);
    assert.deepEqual(paths("minutes"), ["b/minutes.txt"]);
    // A folder removed: everything under it goes with it.
    await Deno.remove(`${root}/a/deep`, { recursive: true });
    w.changed(`${root}/a/deep`);
    assert.deepEqual(paths("report"), ["a/Report-2024.TXT"]);
    // A new folder is walked whole.
    await Deno.mkdir(`${root}/c/d`, { recursive: true });
    await Deno.writeTextFile(`${root}/c/d/new-report.txt`, "n");
    w.changed(`${root}/c`);
    assert.deepEqual(paths("report"), ["a/Report-2024.TXT", "c/d/new-report.txt"]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("?q= searches below the folder, from the index or by a walk, obeying the listing rules", async () => {
  const { tmp, root } = await fixture();
  try {
    const w = new IndexWriter(policyOf(root));
    w.build();
    for (
      const [how, options] of [["walk", {}], ["index", { searchIndex: w.index.buffers }]] as const
    ) {
      const h = await createHandler({ root, ...options });
      const get = async (t: string) => {
        const r = await h(req(t));
        return { status: r.status, headers: r.headers, text: dec.decode(await replyBytes(r)) };
      };
      const j = await get("/?q=report&format=json");
      assert.equal(j.status, 200, how);
      assert.deepEqual(
        JSON.parse(j.text).map((e: { name: string }) => e.name),
        ["a/deep/report.md", "a/Report-2024.TXT"],
        how,
      );
      const html = await get("/a/?q=REPORT");
      assert.ok(
        html.text.includes('<a href="deep/report.md">deep/<wbr>report.md</a>') ||
          html.text.includes('<a href="deep/report.md">deep/report.md</a>'),
        how,
      );
      assert.ok(html.text.includes("2 names under this folder match &ldquo;REPORT&rdquo;"), how);
      assert.ok(!html.text.includes("secret"), how);
      assert.ok(!html.text.includes("Partial"), how);
      assert.equal((await get("/?q=report-out&format=json")).text, "[]\n", how);
      assert.equal((await get("/?q=*.TXT&format=txt")).text, "a/Report-2024.TXT\nb/notes.txt\n");
      // Paged.
      const p2 = await get("/?q=e&format=json&per_page=1&page=2");
      assert.equal(JSON.parse(p2.text).length, 1, how);
      assert.ok(p2.headers.some(([k, v]) => k === "Link" && v.includes('rel="prev"')), how);
      // The folder-only filter stays: scope=folder.
      const here = await get("/a/?q=report&scope=folder&format=json");
      assert.deepEqual(JSON.parse(here.text).map((e: { name: string }) => e.name), [
        "Report-2024.TXT",
      ]);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a walk out of time answers what it found and says the results may be partial", async () => {
  const { tmp, root } = await fixture();
  try {
    const policy = policyOf(root);
    const cut = await walkSearch(policy, "", compileQuery("report"), -1);
    assert.equal(cut.partial, true);
    const whole = await walkSearch(policy, "", compileQuery("report"), 60_000);
    assert.equal(whole.partial, false);
    assert.equal(whole.hits.length, 2);
    const cfg = { listingCap: 1000, dotfiles: false, archives: false };
    const q = parseListingQuery("q=report");
    const page = renderSearch(cut, (h) => hitEntries(policy, "", h), q, false, "/", cfg);
    assert.ok(page.headers.some(([k, v]) => k === "X-Search-Partial" && v === "1"));
    assert.ok(new TextDecoder().decode(page.body).includes("<strong>Partial results:</strong>"));
    const full = renderSearch(whole, (h) => hitEntries(policy, "", h), q, false, "/", cfg);
    assert.ok(!full.headers.some(([k]) => k === "X-Search-Partial"));
    // An index that is not ready yet is not used: the walk answers.
    const w = new IndexWriter(policy);
    const r = await search(policy, w.index, "", "report");
    assert.equal(r.source, "walk");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
