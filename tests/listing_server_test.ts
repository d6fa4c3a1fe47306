/**
 * Listings and folder downloads through the real CLI server, where the bytes
 * matter (issue 12): a `wget -r -np` mirror fetches each file and each
 * listing page once and nothing else; listings and archives agree on what
 * the server cannot read (run with root's DAC capabilities dropped, so
 * `chmod 000` binds in CI too); big-folder query parameters end to end.
 * Each case runs with the job pool and inline (`--pool 0`): two code paths.
 */
import assert from "node:assert/strict";
import { startCli } from "./_harness.ts";
import { NO_UNPRIVILEGED, unprivilegedPrefix } from "./_unprivileged.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const MODES = [["--pool", "0"], ["--pool", "1"]];

/** Every regular file under `dir`: path relative to it -> bytes. */
async function filesUnder(dir: string, rel = ""): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(`${dir}/${rel}`)) {
    const r = rel === "" ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory) { for (const [k, v] of await filesUnder(dir, r)) out.set(k, v); }
    else if (e.isFile) out.set(r, await Deno.readFile(`${dir}/${r}`));
  }
  return out;
}

async function hasWget(): Promise<boolean> {
  try {
    return (await new Deno.Command("wget", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

async function withTmp(fn: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-lsrv-" }));
  try {
    await fn(tmp);
  } finally {
    await new Deno.Command("chmod", { args: ["-R", "u+rwx", tmp] }).output();
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test("wget -r -np mirrors a tree fetching each file and each listing page once, nothing else", async () => {
  if (!(await hasWget())) {
    console.log("  skipped: no wget on PATH (.ci/run installs it)");
    return;
  }
  await withTmp(async (tmp) => {
    const root = `${tmp}/www`;
    await Deno.mkdir(`${root}/docs/deep/er`, { recursive: true });
    await Deno.mkdir(`${root}/many`);
    await Deno.writeTextFile(`${root}/readme.txt`, "hello\n");
    await Deno.writeFile(`${root}/docs/blob.bin`, new Uint8Array(200_000).map((_, i) => i * 31));
    await Deno.writeTextFile(`${root}/docs/a b&c.txt`, "spaces and an ampersand\n");
    await Deno.writeTextFile(`${root}/docs/deep/er/leaf.md`, "# leaf\n");
    await Deno.writeTextFile(`${root}/.hidden`, "not listed, not fetched\n");
    // 1,500 entries: two pages of the default 1,000, so the pager must be followed.
    for (let i = 0; i < 1500; i++) {
      await Deno.writeTextFile(`${root}/many/f${i}.txt`, `file ${i}\n`);
    }
    const source = await filesUnder(root);
    source.delete(".hidden");
    const dirs = ["", "docs/", "docs/deep/", "docs/deep/er/", "many/"];
    for (const flags of MODES) {
      await using server = await startCli([root, ...flags]);
      const out = `${tmp}/mirror${flags[1]}`;
      const r = await new Deno.Command("wget", {
        args: ["-r", "-np", "-nH", "-nv", "-P", out, `${server.origin}/`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const log = dec.decode(r.stderr) + dec.decode(r.stdout);
      // wget exits 8 for the 404 of /robots.txt, which it asks for first.
      assert.ok(r.code === 0 || r.code === 8, log);
      const fetched = log.split("\n").filter((l) => / URL:\S+ \[\d+(\/\d+)?\] -> "/.test(l));
      const got = await filesUnder(out);
      // The index pages: index.html per folder, plus page 2 of the big one.
      const pages = new Map<string, number>();
      for (const d of dirs) {
        const body = new Uint8Array(await (await fetch(`${server.origin}/${d}`)).arrayBuffer());
        pages.set(`${d}index.html`, body.length);
      }
      const p2 = new Uint8Array(await (await fetch(`${server.origin}/many/?page=2`)).arrayBuffer());
      pages.set("many/index.html?page=2", p2.length);
      const names = [...got.keys()].sort();
      assert.deepEqual(names, [...source.keys(), ...pages.keys()].sort(), log.slice(-3000));
      for (const [k, v] of source) assert.deepEqual(got.get(k), v, k);
      let sum = 0;
      for (const v of source.values()) sum += v.length;
      for (const n of pages.values()) sum += n;
      let mirrored = 0;
      for (const v of got.values()) mirrored += v.length;
      assert.equal(mirrored, sum, "bytes: the files plus the index pages");
      assert.equal(fetched.length, source.size + pages.size, "one request per file and page");
      assert.ok(
        !/sort=|download=|per_page=|q=/.test(log),
        "no sort, tar or filter URL was fetched",
      );
      console.log(
        `  ${flags.join(" ")}: wget fetched ${fetched.length} URLs, ${mirrored} bytes ` +
          `(${source.size} files + ${pages.size} index pages)`,
      );
    }
  });
});

Deno.test("an unreadable folder: listing and download both 403; a readable one's archive names what it left out", async () => {
  const prefix = unprivilegedPrefix();
  if (prefix === null) {
    console.log(`  ${NO_UNPRIVILEGED}`);
    return;
  }
  await withTmp(async (tmp) => {
    const root = `${tmp}/www`;
    await Deno.mkdir(`${root}/locked`, { recursive: true });
    await Deno.mkdir(`${root}/sub/locked2`, { recursive: true });
    await Deno.writeTextFile(`${root}/locked/inside.txt`, "in locked\n");
    await Deno.writeTextFile(`${root}/sub/locked2/in2.txt`, "in locked2\n");
    await Deno.writeTextFile(`${root}/sub/fine.txt`, "fine\n");
    await Deno.writeTextFile(`${root}/ok.txt`, "ok\n");
    await Deno.writeTextFile(`${root}/noread.txt`, "no\n");
    await Deno.chmod(`${root}/noread.txt`, 0);
    await Deno.chmod(`${root}/locked`, 0);
    await Deno.chmod(`${root}/sub/locked2`, 0);
    // The second mode also bounds archives: the size is counted first, note included.
    for (const flags of [MODES[0], [...MODES[1], "--max-archive-mb", "1"]]) {
      await using server = await startCli([root, ...flags], { prefix });
      const o = server.origin;
      const status = async (path: string) => {
        const r = await fetch(o + path);
        await r.body?.cancel();
        return r.status;
      };
      assert.equal(await status("/locked/"), 403, server.diagnosis());
      assert.equal(
        await status("/locked/?download=tar"),
        403,
        "like its listing, not an empty 200",
      );
      assert.equal(await status("/noread.txt"), 403);
      assert.equal(await status("/ok.txt"), 200);
      const listed = (await (await fetch(`${o}/?format=json`)).json()).map((e: { name: string }) =>
        e.name
      );
      assert.deepEqual(listed.sort(), ["locked", "noread.txt", "ok.txt", "sub"]);
      const res = await fetch(`${o}/?download=tar`);
      assert.equal(res.status, 200);
      const tar = `${tmp}/root${flags[1]}.tar`;
      await Deno.writeFile(tar, new Uint8Array(await res.arrayBuffer()));
      const x = `${tmp}/x${flags[1]}`;
      await Deno.mkdir(x);
      const t = await new Deno.Command("tar", { args: ["-xf", tar, "-C", x] }).output();
      assert.ok(t.success, dec.decode(t.stderr));
      const got = await filesUnder(`${x}/www`);
      assert.deepEqual([...got.keys()].sort(), ["_unreadable.txt", "ok.txt", "sub/fine.txt"]);
      const note = dec.decode(got.get("_unreadable.txt"));
      assert.deepEqual(note.split("\n").slice(1, -1), ["locked/", "noread.txt", "sub/locked2/"]);
      // Everything the listing shows is in the archive or named in the note.
      for (const name of listed) {
        assert.ok(
          [...got.keys()].some((k) => k === name || k.startsWith(name + "/")) ||
            note.includes(name),
          name,
        );
      }
      // The watcher keeps the readable part and says what it cannot watch, once.
      const notice = server.stderr.lines.filter((l) => l.includes("unreadable folder"));
      assert.equal(notice.length, 1, server.stderr.text);
      assert.match(notice[0], /except 2 unreadable folders \(locked, sub\/locked2\)/);
      assert.ok(!server.stderr.text.includes("cannot watch"), server.stderr.text);
    }
  });
});

Deno.test("big folders end to end: ?per_page, ?q over the whole folder, 400 for a bad page size", async () => {
  await withTmp(async (tmp) => {
    const root = `${tmp}/www`;
    await Deno.mkdir(`${root}/big`, { recursive: true });
    for (let i = 0; i < 2500; i++) await Deno.writeFile(`${root}/big/n${i}.txt`, enc.encode("x"));
    for (const flags of MODES) {
      await using server = await startCli([root, ...flags]);
      const o = `${server.origin}/big/`;
      const names = async (q: string) =>
        (await (await fetch(`${o}?format=json&${q}`)).json())
          .map((e: { name: string }) => e.name);
      assert.equal((await names("")).length, 1000, "default page size");
      assert.deepEqual(await names("per_page=3&page=2"), ["n3.txt", "n4.txt", "n5.txt"]);
      // n2499 is on page 3 unfiltered: the filter covers the whole folder.
      assert.deepEqual(await names("q=N249"), [
        "n249.txt",
        ...Array.from({ length: 10 }, (_, i) => `n${2490 + i}.txt`),
      ]);
      for (const bad of ["0", "abc", "10001"]) {
        const r = await fetch(`${o}?per_page=${bad}`);
        assert.equal(r.status, 400);
        assert.equal(
          await r.text(),
          `400 Bad Request\nper_page must be an integer from 1 to 10000, got "${bad}"\n`,
        );
      }
      const html = await (await fetch(`${o}?page=2`)).text();
      assert.equal(html.match(/page 2 of 3 \(2500 entries\)/g)?.length, 2, "pager above and below");
      // Repeated pages come from the cache: same bytes, same validator.
      const a = await fetch(`${o}?page=3`);
      const b = await fetch(`${o}?page=3`);
      assert.equal(a.headers.get("etag"), b.headers.get("etag"));
      assert.equal(await a.text(), await b.text());
    }
  });
});
