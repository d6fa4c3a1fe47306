/**
 * The 1,000-entry listing in-process: what a request costs cold (collect +
 * sort + render), re-collected but unchanged, and from the listing cache; and
 * the pieces of a collect, to choose between `lstatSync`, `statSync` and FFI.
 *
 * With `LISTING_BENCH_100K=1`, also the steps of a 100,000-entry listing
 * (issue 6: first page <= 2 s): collect through FFI and through
 * `readDirSync` + `lstatSync`, sort by name, the ETag, and one 10,000-entry page.
 *
 * ```sh
 * deno task bench bench/listing_bench.ts
 * LISTING_BENCH_100K=1 deno task bench bench/listing_bench.ts
 * ```
 *
 * Needs read and write (a temp tree): plain `deno bench` skips it.
 *
 * @module
 */
import { createHandler } from "../http/handler.ts";
import {
  collectEntries,
  type Entry,
  listingETag,
  parseListingQuery,
  renderHtml,
  sortEntries,
} from "../http/listing.ts";
import type { Reply, RequestHead } from "../http/types.ts";
import { permitted } from "./_permissions.ts";
import { tryLibc } from "../sys/libc.ts";

if (permitted("bench/listing_bench.ts", [{ name: "read" }, { name: "write" }])) {
  const tmp = await Deno.makeTempDir({ prefix: "ringhttpd-listing-bench-" });
  globalThis.addEventListener("unload", () => Deno.removeSync(tmp, { recursive: true }));
  const dir = `${tmp}/dir1000`;
  await Deno.mkdir(dir);
  // The fixture of bench/load.ts: entry-0000.txt ... entry-0999.txt.
  for (let i = 0; i < 1000; i++) {
    await Deno.writeTextFile(`${dir}/entry-${String(i).padStart(4, "0")}.txt`, `entry ${i}\n`);
  }
  const names = [...Deno.readDirSync(dir)].map((d) => d.name);

  Deno.bench({
    group: "collect",
    name: "collectEntries: readDirSync + lstatSync per entry (what ships)",
    baseline: true,
    fn() {
      collectEntries(dir, { root: dir, dotfiles: false, followSymlinks: false });
    },
  });

  Deno.bench({
    group: "collect",
    name: "readDirSync alone",
    fn() {
      for (const _ of Deno.readDirSync(dir));
    },
  });

  Deno.bench({
    group: "collect",
    name: "lstatSync x 1,000",
    fn() {
      for (const n of names) Deno.lstatSync(dir + "/" + n);
    },
  });

  Deno.bench({
    group: "collect",
    name: "statSync x 1,000",
    fn() {
      for (const n of names) Deno.statSync(dir + "/" + n);
    },
  });

  // The raw path of http/_rawfs.ts, at its cheapest: opendir + readdir64 +
  // fstatat on the directory's fd (no path walk per entry), names read with
  // getCString, sizes and times as 32-bit words (no BigInt).
  const ffi = Deno.build.arch === "x86_64" ? tryLibc() : null;
  const fstatat = ffi?.fstatat ?? null;
  if (ffi !== null && fstatat !== null) {
    const enc = new TextEncoder();
    const dirC = enc.encode(dir + "\0");
    const st = new Uint8Array(144);
    const words = new Int32Array(st.buffer);
    const AT_SYMLINK_NOFOLLOW = 0x100;
    Deno.bench({
      group: "collect",
      name: "FFI: readdir64 + fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)",
      fn() {
        const d = ffi.opendir(dirC)!;
        const fd = ffi.dirfd(d);
        let sum = 0;
        for (let e = ffi.readdir64(d); e !== null; e = ffi.readdir64(d)) {
          const name = Deno.UnsafePointerView.getCString(e, 19);
          if (name.charCodeAt(0) === 46) continue;
          if (fstatat(fd, enc.encode(name + "\0"), st, AT_SYMLINK_NOFOLLOW) !== 0) continue;
          sum += words[12] + words[22]; // st_size, st_mtim.tv_sec (low words)
        }
        ffi.closedir(d);
        if (sum === 0) throw new Error("nothing read");
      },
    });
  }

  const req = (): RequestHead => ({
    method: "GET",
    target: "/dir1000/",
    path: "/dir1000/",
    query: "",
    minor: 1,
    headers: ["host", "localhost", "accept", "text/html"],
  });
  // cacheMaxBytes 0: no listing cache, every request collects, sorts and renders.
  const cold = await createHandler({ root: tmp, cacheMaxBytes: 0 });
  // revalidateMs 0: every request re-collects; unchanged, so the bytes are kept.
  const recollect = await createHandler({ root: tmp, revalidateMs: 0 });
  const warm = await createHandler({ root: tmp, revalidateMs: 3_600_000 });
  for (const h of [cold, recollect, warm]) {
    const r = await h(req());
    if (r.status !== 200 || r.length < 100_000) throw new Error(`set-up: ${r.status} ${r.length}`);
  }

  Deno.bench({
    group: "request",
    name: "cold: collect + sort + render (no listing cache)",
    baseline: true,
    async fn() {
      await cold(req());
    },
  });

  Deno.bench({
    group: "request",
    name: "revalidated: collect, found unchanged, cached bytes",
    async fn() {
      await recollect(req());
    },
  });

  Deno.bench({
    group: "request",
    name: "warm: listing cache hit (no I/O)",
    fn() {
      const r = warm(req()) as Reply;
      if (r.rawHead === undefined) throw new Error("not a cache hit");
    },
  });

  const want100k = Deno.permissions.querySync({ name: "env", variable: "LISTING_BENCH_100K" })
        .state === "granted" && Deno.env.get("LISTING_BENCH_100K") === "1";
  if (want100k) {
    const big = `${tmp}/many`;
    await Deno.mkdir(big);
    const made = await new Deno.Command("bash", {
      args: ["-c", `cd "$1" && seq -f 'f%06g.txt' 1 100000 | xargs touch`, "bash", big],
    }).output();
    if (!made.success) throw new Error("set-up: cannot create 100,000 files");
    const policy = { root: tmp, dotfiles: false, followSymlinks: false };
    const entries = collectEntries(big, policy);
    // Directory order is hash order on most filesystems: sort a shuffled copy.
    let seed = 1;
    const shuffled: Entry[] = entries.slice();
    for (let i = shuffled.length - 1; i > 0; i--) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const j = seed % (i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    const sorted = sortEntries(entries.slice(), "name", "asc");
    const ctx = { path: "/many/", query: parseListingQuery(""), pages: 10, total: 100_000 };

    Deno.bench({
      group: "100k",
      name: "collectEntries, FFI getdents64 + fstatat (what ships)",
      baseline: true,
      n: 10,
      fn() {
        collectEntries(big, policy);
      },
    });
    Deno.bench({
      group: "100k",
      name: "collectEntries, readDirSync + lstatSync (the fallback)",
      n: 10,
      fn() {
        collectEntries(big, policy, Infinity, false);
      },
    });
    Deno.bench({
      group: "100k",
      name: "sortEntries by name (shuffled input)",
      n: 10,
      fn() {
        sortEntries(shuffled.slice(), "name", "asc");
      },
    });
    Deno.bench({
      group: "100k",
      name: "listingETag over every entry",
      n: 10,
      fn() {
        listingETag(sorted, "h");
      },
    });
    Deno.bench({
      group: "100k",
      name: "renderHtml of the first 10,000-entry page",
      n: 10,
      fn() {
        renderHtml(sorted.slice(0, 10_000), ctx);
      },
    });
  }
}
