import assert from "node:assert/strict";
import { findReadme, loadMarkdown, renderReadme } from "./_readme.ts";
import { createHandler } from "./handler.ts";
import { runListingJob } from "./job_protocol.ts";
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

Deno.test("renderReadme() escapes raw HTML, keeps relative URLs, drops images from elsewhere", async () => {
  await loadMarkdown();
  const html = renderReadme(
    "# Title\n\n<script>alert(1)</script>\n\n[doc](sub/a%20b.md) [up](../x) " +
      "[ext](https://example.com/) [js](javascript:alert(1))\n\n" +
      "![pic](img/p.png) ![remote](https://example.com/t.png) ![pr](//example.com/t.png)\n",
  );
  assert.ok(html.includes("<h1>Title</h1>"));
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
  assert.ok(!html.includes("<script"));
  assert.ok(html.includes('<a href="sub/a%20b.md">doc</a>'));
  assert.ok(html.includes('<a href="../x">up</a>'));
  assert.ok(html.includes('<a href="https://example.com/" rel="noopener noreferrer nofollow">'));
  assert.ok(!html.includes('href="javascript'), "markdown-it refuses the scheme");
  assert.ok(html.includes('<img src="img/p.png" alt="pic" loading="lazy">'));
  assert.ok(!/src="(https?:)?\/\//.test(html), "no image from another origin");
  assert.ok(html.includes("remote") && html.includes("pr"), "their alt text stands in");
});

Deno.test("findReadme() prefers README.md, then readme.md, then index.md; skips folders and big files", () => {
  const f = (name: string, size = 10, isDir = false) => ({
    name,
    type: isDir ? "dir" as const : "file" as const,
    isDir,
    size,
    mtimeMs: 0,
  });
  assert.equal(findReadme([f("index.md"), f("readme.md"), f("README.md")])?.name, "README.md");
  assert.equal(findReadme([f("index.md"), f("readme.md")])?.name, "readme.md");
  assert.equal(findReadme([f("README.md", 10, true), f("index.md")])?.name, "index.md");
  assert.equal(findReadme([f("README.md", 10_000_000)]), undefined);
  assert.equal(findReadme([f("README.txt")]), undefined);
});

Deno.test("a folder's README shows below its listing, inline and from a pool job, and follows edits", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-readme-" }));
  try {
    await Deno.mkdir(`${root}/d`);
    await Deno.writeTextFile(`${root}/d/README.md`, "Hello *there* <b>x</b> ![p](p.png)\n");
    await Deno.writeTextFile(`${root}/d/p.png`, "png");
    await Deno.writeTextFile(`${root}/.hidden.md`, "secret");
    await Deno.mkdir(`${root}/h`);
    await Deno.writeTextFile(`${root}/h/.README.md`, "SECRET-README");
    const h = await createHandler({ root, revalidateMs: 0 });
    const page = async (t: string) => dec.decode(await replyBytes(await h(req(t))));
    const a = await page("/d/");
    assert.ok(a.includes('<article id="readme">'));
    assert.ok(a.includes("Hello <em>there</em> &lt;b&gt;x&lt;/b&gt;"));
    assert.ok(a.indexOf('<article id="readme">') > a.indexOf("</table>"), "below the listing");
    assert.ok(!(await page("/d/?format=json")).includes("Hello"));
    assert.ok(!(await page("/d/?format=txt")).includes("Hello"));
    // Edited: the cached page goes (the README's size and mtime are in the snapshot).
    await Deno.writeTextFile(`${root}/d/README.md`, "Changed text, longer than before\n");
    await Deno.utime(`${root}/d/README.md`, 1e9, 1e9);
    assert.ok((await page("/d/")).includes("Changed text"));
    // A README the listing hides is not read.
    assert.ok(!(await page("/h/")).includes("SECRET-README"));
    // The pool thread renders the same page (it loads the renderer when it starts).
    await loadMarkdown();
    const ctx = {
      policy: { root, dotfiles: false, followSymlinks: false },
      page: { listingCap: 1000, dotfiles: false, archives: false },
    };
    const job = runListingJob({ real: `${root}/d`, path: "/d/", query: "", json: false }, ctx);
    const body = dec.decode(job.body);
    assert.ok(body.includes("Changed text"));
    const json = runListingJob({ real: `${root}/d`, path: "/d/", query: "", json: true }, ctx);
    assert.ok(!dec.decode(json.body).includes("Changed"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
