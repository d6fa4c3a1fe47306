/**
 * Folder downloads end to end: the handler behind the real engine on a
 * socket, fetched with `fetch`, `curl` and `aria2c`, checked with `unzip`,
 * `bsdtar`, `7z`, Python's `zipfile` and `tar`. The 5 GiB and 70,000-file
 * archives (zip64) are built on sparse files / tmpfs; the full `unzip -t` of
 * 5 GiB runs only with RINGHTTPD_STRESS=1.
 */
import assert from "node:assert/strict";
import { ConnectionSet, serveDenoConn } from "./engine.ts";
import { createHandler, type HandlerOptions } from "./handler.ts";
import { archiveBytes, collectMembers } from "./archive.ts";
import { type LayoutFormat, tarLayout, zipLayout } from "./_archive_layout.ts";
import { prng } from "../tests/_prng.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const STRESS = Deno.env.get("RINGHTTPD_STRESS") === "1";

/** Serves `root` on 127.0.0.1 port 0 until `fn` returns. */
async function withServer(
  options: HandlerOptions,
  fn: (base: string, port: number) => Promise<void>,
): Promise<void> {
  const handler = await createHandler(options);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const set = new ConnectionSet();
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) served.push(serveDenoConn(conn, handler, set));
    } catch {
      // listener closed
    }
  })();
  try {
    await fn(`http://127.0.0.1:${listener.addr.port}`, listener.addr.port);
  } finally {
    listener.close();
    await accepting;
    await set.drain();
    await Promise.all(served);
  }
}

async function run(cmd: string, args: string[], cwd?: string) {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

async function must(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await run(cmd, args, cwd);
  assert.ok(r.ok, `${cmd} ${args.join(" ")}:\n${r.out.slice(-2000)}`);
  return r.out;
}

/** The four archive checkers on a zip file. */
async function checkZip(path: string): Promise<void> {
  assert.match(await must("unzip", ["-tq", path]), /No errors detected/);
  await must("bsdtar", ["-tf", path]);
  assert.match(await must("7z", ["t", path]), /Everything is Ok/);
  const py = "import sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nr=z.testzip()\n" +
    "print('BAD', r) if r else print('OK', len(z.infolist()))";
  assert.match(await must("/usr/bin/python3", ["-c", py, path]), /^OK \d+/);
}

async function tmpDir(prefix: string, shm = false): Promise<string> {
  let dir: string | undefined;
  if (shm) {
    try {
      dir = await Deno.makeTempDir({ dir: "/dev/shm", prefix }); // tmpfs: many small files fast
    } catch {
      // no /dev/shm here
    }
  }
  return await Deno.realPath(dir ?? await Deno.makeTempDir({ prefix }));
}

/**
 * `root/top`: unicode and hostile names, empty folders and files, a larger
 * file, plus what must never appear: a dotfile, a hidden folder, a symlink
 * out of the root.
 */
async function makeTree(tmp: string): Promise<{ root: string; top: string }> {
  const root = `${tmp}/www`;
  const top = `${root}/top`;
  await Deno.mkdir(`${top}/empty dir`, { recursive: true });
  await Deno.mkdir(`${top}/sub/\u65e5\u672c\u8a9e`, { recursive: true });
  await Deno.mkdir(`${top}/.hidden`);
  await Deno.mkdir(`${tmp}/outside`);
  await Deno.writeFile(`${tmp}/outside/secret.txt`, enc.encode("outside\n"));
  await Deno.writeFile(`${top}/empty.txt`, new Uint8Array(0));
  await Deno.writeFile(`${top}/caf\u00e9 <&>'"%.txt`, enc.encode("caf\u00e9\n"));
  await Deno.writeFile(`${top}/sub/\u65e5\u672c\u8a9e/\u{1f600}.txt`, enc.encode("emoji\n"));
  const r = prng(15);
  const big = new Uint8Array(3 * 1024 * 1024 + 17).map(() => (r() * 256) | 0);
  await Deno.writeFile(`${top}/sub/big.bin`, big);
  await Deno.writeFile(`${top}/.env`, enc.encode("SECRET=1\n"));
  await Deno.writeFile(`${top}/.hidden/x.txt`, enc.encode("hidden\n"));
  await Deno.symlink(`${tmp}/outside/secret.txt`, `${top}/out.txt`);
  await Deno.symlink(`${tmp}/outside`, `${top}/out-dir`);
  return { root, top };
}

async function withTree(fn: (tmp: string, root: string, top: string) => Promise<void>) {
  const tmp = await tmpDir("ringhttpd-zip-");
  try {
    const { root, top } = await makeTree(tmp);
    await fn(tmp, root, top);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** The archive's bytes as the layout says, made in-process (fills no CRC cache). */
async function expected(format: LayoutFormat, dir: string, root: string): Promise<Uint8Array> {
  const policy = { root, dotfiles: false, followSymlinks: false };
  const { members } = await collectMembers(dir, dir.slice(dir.lastIndexOf("/") + 1), policy);
  const l = format === "zip" ? zipLayout(members) : tarLayout(members);
  const out = new Uint8Array(l.size);
  let n = 0;
  for await (const b of archiveBytes(l, 0, l.size, new Map())) {
    out.set(b, n);
    n += b.length;
  }
  assert.equal(n, l.size);
  return out;
}

async function sameFile(path: string, want: Uint8Array, what: string): Promise<void> {
  const got = await Deno.readFile(path);
  assert.equal(got.length, want.length, `${what}: length`);
  assert.ok(got.every((b, i) => b === want[i]), `${what}: bytes differ`);
}

Deno.test("?download=zip: Content-Length, ETag, HEAD; unzip, bsdtar, 7z and zipfile accept it; nothing hidden inside", async () => {
  await withTree(async (tmp, root, top) => {
    await withServer({ root }, async (base) => {
      const url = `${base}/top/?download=zip`;
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/zip");
      assert.equal(res.headers.get("content-disposition"), 'attachment; filename="top.zip"');
      assert.equal(res.headers.get("accept-ranges"), "bytes");
      const etag = res.headers.get("etag")!;
      assert.match(etag, /^"zip-/);
      const zip = new Uint8Array(await res.arrayBuffer());
      assert.equal(res.headers.get("content-length"), String(zip.length));
      assert.deepEqual(zip, await expected("zip", top, root), "the layout's bytes");
      await Deno.writeFile(`${tmp}/top.zip`, zip);
      await checkZip(`${tmp}/top.zip`);
      await must("unzip", ["-q", `${tmp}/top.zip`, "-d", `${tmp}/x`]);
      assert.deepEqual(
        await Deno.readFile(`${tmp}/x/top/sub/big.bin`),
        await Deno.readFile(`${top}/sub/big.bin`),
      );
      assert.equal(
        await Deno.readTextFile(`${tmp}/x/top/sub/\u65e5\u672c\u8a9e/\u{1f600}.txt`),
        "emoji\n",
      );
      assert.equal((await Deno.stat(`${tmp}/x/top/empty.txt`)).size, 0);
      assert.ok((await Deno.stat(`${tmp}/x/top/empty dir`)).isDirectory);
      const list = await must("/usr/bin/python3", [
        "-c",
        "import sys,zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.filename, i.flag_bits)",
        `${tmp}/top.zip`,
      ]);
      assert.doesNotMatch(list, /\.env|\.hidden|out\.txt|out-dir|secret/);
      assert.match(list, /^top\/caf\u00e9 <&>'"%\.txt 2056$/m, "UTF-8 flag + data descriptor");
      // The mtime survives in the extended timestamp field.
      const info = await must("zipinfo", ["-v", `${tmp}/top.zip`, "top/sub/big.bin"]);
      assert.match(info, /UT extra field modtime/);
      const mtime = (await Deno.stat(`${tmp}/x/top/sub/big.bin`)).mtime!.getTime();
      const want = (await Deno.stat(`${top}/sub/big.bin`)).mtime!.getTime();
      assert.equal(Math.floor(mtime / 1000), Math.floor(want / 1000));
      // HEAD: same head, no body; the tag is stable until the listing changes.
      const head = await fetch(url, { method: "HEAD" });
      assert.equal(head.headers.get("content-length"), String(zip.length));
      assert.equal(head.headers.get("etag"), etag);
      assert.equal((await head.arrayBuffer()).byteLength, 0);
      const again = await fetch(url, { headers: { "if-none-match": etag } });
      assert.equal(again.status, 304);
      await again.body?.cancel();
      await Deno.utime(`${top}/empty.txt`, 1, 1_000_000);
      const changed = await fetch(url, { method: "HEAD" });
      assert.notEqual(changed.headers.get("etag"), etag);
    });
  });
});

Deno.test("curl -C - resumes zip and tar at random offsets, cold and warm, byte-identical to the one-shot download", async () => {
  await withTree(async (tmp, root, top) => {
    await withServer({ root }, async (base) => {
      const r = prng(20261203);
      for (const format of ["zip", "tar"] as const) {
        const want = await expected(format, top, root);
        // Cold first (no CRC known yet: the server computes those the range needs), then warm.
        for (const round of ["cold", "cold", "after one-shot", "after one-shot"]) {
          if (round === "after one-shot") {
            const one = new Uint8Array(
              await (await fetch(`${base}/top/?download=${format}`)).arrayBuffer(),
            );
            assert.deepEqual(one, want);
          }
          const k = Math.floor(r() * want.length);
          const out = `${tmp}/part-${format}`;
          await Deno.writeFile(out, want.subarray(0, k));
          await must("curl", [
            "-sS",
            "-f",
            "-C",
            "-",
            "-o",
            out,
            `${base}/top/?download=${format}`,
          ]);
          await sameFile(out, want, `${format} resumed at ${k} (${round})`);
        }
        if (format === "tar") {
          // A ranged start, then a resume: what tar extracts is the tree.
          const out = `${tmp}/ranged.tar`;
          const first = await fetch(`${base}/top/?download=tar`, {
            headers: { range: "bytes=0-99999" },
          });
          assert.equal(first.status, 206);
          await Deno.writeFile(out, new Uint8Array(await first.arrayBuffer()));
          await must("curl", ["-sS", "-f", "-C", "-", "-o", out, `${base}/top/?download=tar`]);
          await Deno.mkdir(`${tmp}/t`);
          await must("tar", ["-xf", out, "-C", `${tmp}/t`]);
          assert.deepEqual(
            await Deno.readFile(`${tmp}/t/top/sub/big.bin`),
            await Deno.readFile(`${top}/sub/big.bin`),
          );
        }
      }
    });
  });
});

Deno.test("aria2c -x8 splits a zip and a tar into ranges and gets the one-shot bytes", async () => {
  await withTree(async (tmp, root, top) => {
    // Over 8 MiB, so aria2c (1 MiB pieces at least) opens all 8 connections.
    await Deno.writeFile(`${top}/more.bin`, new Uint8Array(7 * 1024 * 1024).map((_, i) => i * 13));
    await withServer({ root }, async (base) => {
      for (const format of ["zip", "tar"] as const) {
        const want = await expected(format, top, root);
        const name = `top-${format}`;
        await must("aria2c", [
          "-q",
          "-x8",
          "-s8",
          "-k1M",
          "--file-allocation=none",
          "--allow-overwrite=true",
          "-d",
          tmp,
          "-o",
          name,
          `${base}/top/?download=${format}`,
        ]);
        await sameFile(`${tmp}/${name}`, want, `aria2c ${format}`);
        if (format === "zip") await checkZip(`${tmp}/${name}`);
      }
    });
  });
});

/** Parses a multipart/byteranges body into its parts' ranges and bytes. */
function parts(body: Uint8Array, boundary: string): Array<{ range: string; bytes: Uint8Array }> {
  const text = new TextDecoder("latin1").decode(body);
  const out: Array<{ range: string; bytes: Uint8Array }> = [];
  const re = new RegExp(
    `--${boundary}\r\nContent-Type: [^\r]+\r\nContent-Range: bytes (\\d+)-(\\d+)/\\d+\r\n\r\n`,
    "g",
  );
  for (let m; (m = re.exec(text)) !== null;) {
    const start = m.index + m[0].length;
    const len = Number(m[2]) - Number(m[1]) + 1;
    out.push({ range: `${m[1]}-${m[2]}`, bytes: body.subarray(start, start + len) });
  }
  return out;
}

Deno.test("multi-range on zip and tar: multipart/byteranges whose parts are the archive's bytes; 416 past the end", async () => {
  await withTree(async (_tmp, root, top) => {
    await withServer({ root }, async (base) => {
      for (const format of ["zip", "tar"] as const) {
        const want = await expected(format, top, root);
        const n = want.length;
        const res = await fetch(`${base}/top/?download=${format}`, {
          headers: { range: `bytes=0-99,2000000-2100000,${n - 300}-` },
        });
        assert.equal(res.status, 206);
        const type = res.headers.get("content-type")!;
        const boundary = /boundary=(\S+)/.exec(type)![1];
        const body = new Uint8Array(await res.arrayBuffer());
        assert.equal(res.headers.get("content-length"), String(body.length));
        const got = parts(body, boundary);
        assert.deepEqual(got.map((p) => p.range), [
          "0-99",
          "2000000-2100000",
          `${n - 300}-${n - 1}`,
        ]);
        assert.deepEqual(got[0].bytes, want.subarray(0, 100));
        assert.deepEqual(got[1].bytes, want.subarray(2000000, 2100001));
        assert.deepEqual(got[2].bytes, want.subarray(n - 300));
        const past = await fetch(`${base}/top/?download=${format}`, {
          headers: { range: `bytes=${n}-` },
        });
        assert.equal(past.status, 416);
        assert.equal(past.headers.get("content-range"), `bytes */${n}`);
        await past.body?.cancel();
      }
    });
  });
});

Deno.test("If-Range with the archive's ETag gets 206; a stale tag or a date gets the fresh 200", async () => {
  await withTree(async (_tmp, root, top) => {
    await withServer({ root }, async (base) => {
      const url = `${base}/top/?download=zip`;
      const etag = (await fetch(url, { method: "HEAD" })).headers.get("etag")!;
      const hit = await fetch(url, { headers: { range: "bytes=10-19", "if-range": etag } });
      assert.equal(hit.status, 206);
      assert.equal((await hit.arrayBuffer()).byteLength, 10);
      const date = await fetch(url, {
        headers: { range: "bytes=10-19", "if-range": new Date().toUTCString() },
      });
      assert.equal(date.status, 200, "an archive has no Last-Modified: a date never matches");
      await date.body?.cancel();
      await Deno.writeFile(`${top}/new.txt`, enc.encode("new\n"));
      const stale = await fetch(url, { headers: { range: "bytes=10-19", "if-range": etag } });
      assert.equal(stale.status, 200);
      assert.notEqual(stale.headers.get("etag"), etag);
      const fresh = new Uint8Array(await stale.arrayBuffer());
      assert.deepEqual(fresh, await expected("zip", top, root));
      const bad = await fetch(url, { headers: { "if-match": etag } });
      assert.equal(bad.status, 412);
      await bad.body?.cancel();
    });
  });
});

/** A raw GET whose body is read only after `between` ran; returns the head and the body bytes got. */
async function rawGet(port: number, path: string, between: () => Promise<void>) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(enc.encode(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
    const buf = new Uint8Array(1 << 16);
    let got = new Uint8Array(0);
    let headEnd = -1;
    while (headEnd < 0) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("closed before the head");
      const all = new Uint8Array(got.length + n);
      all.set(got);
      all.set(buf.subarray(0, n), got.length);
      got = all;
      headEnd = dec.decode(got).indexOf("\r\n\r\n");
    }
    const head = dec.decode(got.subarray(0, headEnd));
    await between();
    let body = got.length - headEnd - 4;
    for (let n; (n = await conn.read(buf)) !== null;) body += n;
    return { head, body };
  } finally {
    conn.close();
  }
}

Deno.test("a file changed while its archive is sent cuts the connection before the final records", async () => {
  const tmp = await tmpDir("ringhttpd-zipcut-");
  try {
    const root = `${tmp}/www`;
    await Deno.mkdir(`${root}/d`, { recursive: true });
    // 64 MiB (sparse) before z.txt: the server cannot reach z.txt while we do not read.
    const f = await Deno.open(`${root}/d/a.bin`, { write: true, create: true });
    await f.truncate(64 * 1024 * 1024);
    f.close();
    await Deno.writeFile(`${root}/d/z.txt`, enc.encode("before\n"));
    await withServer({ root }, async (_base, port) => {
      for (const format of ["zip", "tar"]) {
        await Deno.writeFile(`${root}/d/z.txt`, enc.encode("before\n"));
        const { head, body } = await rawGet(port, `/d/?download=${format}`, async () => {
          await Deno.writeFile(`${root}/d/z.txt`, enc.encode("after!\n")); // same size
          await Deno.utime(`${root}/d/z.txt`, 1, 2_000_000);
        });
        const length = Number(/Content-Length: (\d+)/.exec(head)![1]);
        assert.ok(body < length, `${format}: ${body} of ${length} bytes, then the close`);
        assert.ok(body >= 64 * 1024 * 1024, `${format}: a.bin was sent whole (${body})`);
      }
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("select: only the chosen names, the same rules as the folder; bad, hidden or absent names are 400", async () => {
  await withTree(async (tmp, root) => {
    await withServer({ root }, async (base) => {
      const sel = (q: string) => fetch(`${base}/top/?download=zip&${q}`);
      const res = await sel("select=sub&select=caf%C3%A9+%3C%26%3E%27%22%25.txt");
      assert.equal(res.status, 200);
      await Deno.writeFile(`${tmp}/sel.zip`, new Uint8Array(await res.arrayBuffer()));
      await checkZip(`${tmp}/sel.zip`);
      const list = (await must("bsdtar", ["-tf", `${tmp}/sel.zip`])).trim().split("\n").sort();
      assert.deepEqual(list, [
        "top/",
        `top/caf\u00e9 <&>'"%.txt`,
        "top/sub/",
        "top/sub/big.bin",
        "top/sub/\u65e5\u672c\u8a9e/",
        `top/sub/\u65e5\u672c\u8a9e/\u{1f600}.txt`,
      ]);
      // A hidden name, a link out of the root and an absent one answer alike: nothing leaks.
      const texts: string[] = [];
      for (const q of ["select=.env", "select=out.txt", "select=nope"]) {
        const r = await sel(q);
        assert.equal(r.status, 400, q);
        texts.push((await r.text()).replace(/"[^"]*"/, "NAME"));
      }
      assert.equal(new Set(texts).size, 1, texts.join("|"));
      for (const q of ["select=..", "select=sub%2Fbig.bin", "select=%FF", "download=rar"]) {
        const r = await fetch(`${base}/top/?${q.startsWith("download") ? q : "download=tar&" + q}`);
        assert.equal(r.status, 400, q);
        await r.body?.cancel();
      }
      const tar = await fetch(`${base}/top/?download=tar&select=empty.txt`);
      assert.equal(tar.status, 200);
      assert.equal(Number(tar.headers.get("content-length")), 512 * 2 + 1024);
      await tar.body?.cancel();
    });
  });
});

Deno.test("tar.gz: streamed through gzip without a length or ranges; gunzip + tar read the tree", async () => {
  await withTree(async (tmp, root, top) => {
    await withServer({ root }, async (base) => {
      const res = await fetch(`${base}/top/?download=tar.gz`, { headers: { range: "bytes=0-9" } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/gzip");
      assert.equal(res.headers.get("content-length"), null);
      assert.equal(res.headers.get("accept-ranges"), null);
      await Deno.writeFile(`${tmp}/t.tgz`, new Uint8Array(await res.arrayBuffer()));
      await Deno.mkdir(`${tmp}/x`);
      await must("tar", ["-xzf", `${tmp}/t.tgz`, "-C", `${tmp}/x`]);
      assert.deepEqual(
        await Deno.readFile(`${tmp}/x/top/sub/big.bin`),
        await Deno.readFile(`${top}/sub/big.bin`),
      );
    });
  });
});

Deno.test("zip64: a 5 GiB sparse file and a file after it; HEAD gives the exact length", async () => {
  const tmp = await tmpDir("ringhttpd-zip64-");
  try {
    const root = `${tmp}/www`;
    await Deno.mkdir(`${root}/d`, { recursive: true });
    const big = 5 * 1024 ** 3;
    const f = await Deno.open(`${root}/d/big.bin`, { write: true, create: true });
    await f.truncate(big);
    f.close();
    await Deno.writeFile(`${root}/d/z-after.txt`, enc.encode("after the big one\n"));
    const policy = { root, dotfiles: false, followSymlinks: false };
    const { members } = await collectMembers(`${root}/d`, "d", policy);
    const l = zipLayout(members);
    await withServer({ root }, async (base) => {
      const head = await fetch(`${base}/d/?download=zip`, { method: "HEAD" });
      assert.equal(Number(head.headers.get("content-length")), l.size);
      await head.body?.cancel();
    });
    // The archive as a sparse file: every record from the layout, the big
    // file's data skipped (a hole reads as the zeros it holds). Its CRC (5 GiB
    // of zeros) is computed, and the whole archive read by all four tools,
    // only with RINGHTTPD_STRESS=1; otherwise the structure is checked
    // (zip64 sizes, an offset past 4 GiB, the zip64 end records) by readers
    // that do not read big.bin's bytes.
    let crc = 0;
    if (STRESS) {
      const zeros = new Uint8Array(64 * 1024 * 1024);
      const { crc32 } = await import("node:zlib");
      for (let left = big; left > 0; left -= zeros.length) crc = crc32(zeros, crc);
    }
    const crcs = new Map([[1, crc]]);
    const out = await Deno.open(`${tmp}/d.zip`, { write: true, create: true });
    try {
      for (const seg of l.segments) {
        if (seg.kind === "data" && seg.i === 1) continue;
        await out.seek(seg.at, Deno.SeekMode.Start);
        for await (const b of archiveBytes(l, seg.at, seg.at + seg.len, crcs)) await out.write(b);
      }
      await out.truncate(l.size);
    } finally {
      out.close();
    }
    assert.match(await must("bsdtar", ["-tvf", `${tmp}/d.zip`]), /5368709120 .* d\/big\.bin/);
    const py = "import sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\n" +
      "print([(i.filename,i.file_size,i.header_offset) for i in z.infolist()])\n" +
      "print(z.read('d/z-after.txt'))";
    const listed = await must("/usr/bin/python3", ["-c", py, `${tmp}/d.zip`]);
    assert.match(listed, /\('d\/big\.bin', 5368709120, \d+\)/);
    assert.match(listed, /\('d\/z-after\.txt', 18, 53687\d{5}\)/, "an offset past 4 GiB");
    assert.match(listed, /b'after the big one\\n'/);
    if (STRESS) await checkZip(`${tmp}/d.zip`); // reads 5 GiB with each tool
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("zip64 entry count: 70,000 small files download (first byte timed) and pass all four checkers", async () => {
  const tmp = await tmpDir("ringhttpd-zip70k-", true);
  try {
    const root = `${tmp}/www`;
    for (let d = 0; d < 70; d++) {
      await Deno.mkdir(`${root}/many/d${d}`, { recursive: true });
      for (let i = 0; i < 1000; i++) {
        Deno.writeFileSync(`${root}/many/d${d}/f${i}.txt`, enc.encode(`${i}`));
      }
    }
    await withServer({ root }, async (base) => {
      const t0 = performance.now();
      const res = await fetch(`${base}/many/?download=zip`);
      const reader = res.body!.getReader();
      const first = await reader.read();
      const firstByteMs = performance.now() - t0;
      const out = await Deno.open(`${tmp}/many.zip`, { write: true, create: true });
      try {
        for (let r = first; !r.done; r = await reader.read()) await out.write(r.value);
      } finally {
        out.close();
      }
      console.log(`70,000-file zip: first byte after ${firstByteMs.toFixed(0)} ms`);
      assert.ok(firstByteMs < 20_000, `first byte after ${firstByteMs} ms`);
      assert.equal(
        (await Deno.stat(`${tmp}/many.zip`)).size,
        Number(res.headers.get("content-length")),
      );
    });
    await checkZip(`${tmp}/many.zip`);
    const count = await must("/usr/bin/python3", [
      "-c",
      "import sys,zipfile\nprint(len(zipfile.ZipFile(sys.argv[1]).infolist()))",
      `${tmp}/many.zip`,
    ]);
    assert.equal(count.trim(), String(70_000 + 70 + 1));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
