import assert from "node:assert/strict";
import {
  archiveBytes,
  ArchiveChanged,
  type ArchivePolicy,
  collectMembers,
  contentDisposition,
  leftOutNote,
  walkTree,
} from "./archive.ts";
import { tarHead, tarLayout } from "./_archive_layout.ts";

/** The tar of `dir` as the server lays it out, streamed whole. */
async function* tarStream(
  dir: string,
  base: string,
  policy: ArchivePolicy,
): AsyncGenerator<Uint8Array> {
  const l = tarLayout((await collectMembers(dir, base, policy)).members);
  yield* archiveBytes(l, 0, l.size, new Map());
}

const enc = new TextEncoder();

async function sh(cmd: string, cwd?: string): Promise<{ ok: boolean; out: string }> {
  const r = await new Deno.Command("sh", {
    args: ["-c", cmd],
    cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** Deterministic bytes: a failure names the same content every run. */
function bytesOf(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const LONG = "l".repeat(120);
const HOSTILE = `<>&"' %?#`;

/**
 * A hostile tree under `<tmp>/root/top`, and `<tmp>/outside` beside the root.
 * Returns the files an archive of `top` must hold (path below `top` -> bytes),
 * and the directories.
 */
async function makeTree(tmp: string) {
  const root = `${tmp}/root`;
  const top = `${root}/top`;
  const files = new Map<string, Uint8Array>();
  const dirs = new Set<string>([""]);
  const put = async (rel: string, data: Uint8Array, expected = true) => {
    await Deno.writeFile(`${top}/${rel}`, data);
    if (expected) files.set(rel, data);
  };
  await Deno.mkdir(`${top}/sub/deeper`, { recursive: true });
  await Deno.mkdir(`${top}/empty`);
  await Deno.mkdir(`${top}/${LONG}/${LONG}`, { recursive: true });
  await Deno.mkdir(`${top}/.hidden-dir`);
  await Deno.mkdir(`${tmp}/outside`);
  for (const d of ["sub", "sub/deeper", "empty", LONG, `${LONG}/${LONG}`]) dirs.add(d);
  let seed = 1;
  for (const size of [0, 1, 511, 512, 513, 65536, 200_001]) {
    await put(`size-${size}.bin`, bytesOf(size, seed++));
  }
  await put("sub/a.txt", enc.encode("a\n"));
  await put("sub/deeper/b.txt", enc.encode("b\n"));
  await put(`${HOSTILE}.txt`, enc.encode("hostile\n"));
  await put("caf\u00e9 \u65e5\u672c\u8a9e.txt", enc.encode("utf-8 name\n"));
  await put(`${LONG}/${LONG}/${LONG}.txt`, enc.encode("long\n"));
  await put("run.sh", enc.encode("#!/bin/sh\n"));
  await Deno.chmod(`${top}/run.sh`, 0o755);
  await put(".env", enc.encode("SECRET=1\n"), false);
  await put(".hidden-dir/x.txt", enc.encode("hidden\n"), false);
  await Deno.writeFile(`${tmp}/outside/secret.txt`, enc.encode("outside\n"));
  // Symlinks: inside the root are archived as their target; outside, dangling
  // and looping ones are left out.
  await Deno.symlink("sub/a.txt", `${top}/link-to-a.txt`);
  files.set("link-to-a.txt", files.get("sub/a.txt")!);
  await Deno.symlink("sub/deeper", `${top}/link-to-deeper`);
  dirs.add("link-to-deeper");
  files.set("link-to-deeper/b.txt", files.get("sub/deeper/b.txt")!);
  await Deno.symlink(`${tmp}/outside/secret.txt`, `${top}/out-file.txt`);
  await Deno.symlink(`${tmp}/outside`, `${top}/out-dir`);
  await Deno.symlink("nowhere", `${top}/dangling`);
  await Deno.symlink("..", `${top}/sub/loop-up`); // back to top: a loop
  await Deno.symlink("self", `${top}/self`); // ELOOP
  await Deno.symlink(".hidden-dir/x.txt", `${top}/to-hidden.txt`);
  await sh(`mkfifo '${top}/fifo'`);
  // A name that is not UTF-8: Deno cannot open it by name, so it is left out.
  await sh(`printf x > "$(printf 'bad-\\377.txt')"`, top);
  return { root, top, files, dirs };
}

/** Every file (path -> bytes) and directory under `dir`, without following symlinks. */
async function readTree(dir: string) {
  const files = new Map<string, Uint8Array>();
  const dirs = new Set<string>([""]);
  const links: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(rel ? `${dir}/${rel}` : dir)) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isSymlink) links.push(p);
      else if (e.isDirectory) {
        dirs.add(p);
        await walk(p);
      } else files.set(p, await Deno.readFile(`${dir}/${p}`));
    }
  };
  await walk("");
  return { files, dirs, links };
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  // Copy: a block may be reused once the next is asked for.
  for await (const b of stream) parts.push(b.slice());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function withTree(
  fn: (t: Awaited<ReturnType<typeof makeTree>> & { tmp: string }) => Promise<void>,
) {
  const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-tar-" }));
  try {
    await fn({ ...(await makeTree(tmp)), tmp });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test("tarStream() archives a hostile tree that system tar extracts byte for byte", async () => {
  await withTree(async ({ tmp, root, top, files, dirs }) => {
    assert.ok([...Deno.readDirSync(top)].some((e) => e.name.includes("\uFFFD")), "fixture");
    const policy: ArchivePolicy = { root, dotfiles: false, followSymlinks: false };
    const tar = await collect(tarStream(top, "top", policy));
    await Deno.writeFile(`${tmp}/top.tar`, tar);
    await Deno.mkdir(`${tmp}/x`);
    const r = await sh(`tar -xf '${tmp}/top.tar' -C '${tmp}/x'`);
    assert.ok(r.ok, r.out);
    const got = await readTree(`${tmp}/x/top`);
    assert.deepEqual(got.links, [], "symlinks are archived as their targets");
    assert.deepEqual([...got.dirs].sort(), [...dirs].sort());
    assert.deepEqual([...got.files.keys()].sort(), [...files.keys()].sort());
    for (const [name, data] of files) assert.deepEqual(got.files.get(name), data, name);
    const mode = (await Deno.stat(`${tmp}/x/top/run.sh`)).mode! & 0o777;
    assert.equal(mode & 0o100, 0o100, "the execute bit survives");
    // The listing of the archive agrees: no dotfiles, nothing from outside.
    const list = await sh(`tar -tf '${tmp}/top.tar'`);
    assert.ok(list.ok, list.out);
    assert.doesNotMatch(list.out, /\.env|\.hidden|secret|out-file|out-dir|dangling|fifo|bad-/);
    assert.match(list.out, /^top\/$/m);
  });
});

Deno.test("tarStream() with dotfiles and followSymlinks adds hidden names and outside targets", async () => {
  await withTree(async ({ tmp, root, top }) => {
    const policy: ArchivePolicy = { root, dotfiles: true, followSymlinks: true };
    await Deno.writeFile(`${tmp}/top.tar`, await collect(tarStream(top, "top", policy)));
    await Deno.mkdir(`${tmp}/x`);
    const r = await sh(`tar -xf '${tmp}/top.tar' -C '${tmp}/x'`);
    assert.ok(r.ok, r.out);
    const got = await readTree(`${tmp}/x/top`);
    assert.equal(new TextDecoder().decode(got.files.get(".env")), "SECRET=1\n");
    assert.equal(new TextDecoder().decode(got.files.get("to-hidden.txt")), "hidden\n");
    assert.equal(new TextDecoder().decode(got.files.get("out-file.txt")), "outside\n");
    assert.equal(new TextDecoder().decode(got.files.get("out-dir/secret.txt")), "outside\n");
    assert.ok(!got.files.has("sub/loop-up/sub/a.txt"), "a loop is never followed");
  });
});

Deno.test("tarLayout() size is the exact archive length; collectMembers() stops early past a limit", async () => {
  await withTree(async ({ root, top }) => {
    const policy: ArchivePolicy = { root, dotfiles: false, followSymlinks: false };
    const { members } = await collectMembers(top, "top", policy);
    const tar = await collect(tarStream(top, "top", policy));
    assert.equal(tarLayout(members).size, tar.length);
    const capped = await collectMembers(top, "top", policy, 4096);
    assert.ok(capped.tooLarge && capped.members.length < members.length);
    // Non-ASCII top-level name: every member gets a pax header.
    const tar2 = await collect(tarStream(top, "t\u00f6p", policy));
    const l2 = tarLayout((await collectMembers(top, "t\u00f6p", policy)).members);
    assert.equal(l2.size, tar2.length);
  });
});

Deno.test("tarStream() stopped after the first block closes its open file (no leak)", async () => {
  await withTree(async ({ root, top }) => {
    const policy: ArchivePolicy = { root, dotfiles: false, followSymlinks: false };
    for await (const _ of tarStream(top, "top", policy)) break;
    // Deno's resource sanitizer fails this test if a file stayed open.
  });
});

Deno.test("archiveBytes() yields blocks of at most 256 KiB, streamed, not one buffer", async () => {
  await withTree(async ({ root, top }) => {
    const policy: ArchivePolicy = { root, dotfiles: false, followSymlinks: false };
    let blocks = 0;
    for await (const b of tarStream(top, "top", policy)) {
      assert.ok(b.length > 0 && b.length <= 262144, `block of ${b.length}`);
      blocks++;
    }
    assert.ok(blocks >= 5, "streamed, not one buffer");
  });
});

Deno.test("walkTree() lists in name order, directories before their contents", async () => {
  await withTree(async ({ root, top }) => {
    const policy: ArchivePolicy = { root, dotfiles: false, followSymlinks: false };
    const names: string[] = [];
    for await (const item of walkTree(top, "top", policy)) names.push(item.name);
    assert.equal(names[0], "top/");
    assert.ok(names.indexOf("top/sub/") < names.indexOf("top/sub/a.txt"));
    assert.equal(new Set(names).size, names.length, "no member twice");
  });
});

Deno.test("tarHead() is one ustar block, or a pax header before it for long and non-ASCII names", () => {
  const m = (name: string) => ({
    kind: "file" as const,
    name,
    path: "",
    size: 1,
    mtimeMs: 0,
    mode: 0o644,
  });
  assert.equal(tarHead(m("a.txt")).length, 512);
  assert.equal(tarHead(m("d/".repeat(70) + "f")).length, 512, "split into prefix and name");
  assert.equal(tarHead(m("x".repeat(101))).length, 1536);
  assert.equal(tarHead(m("caf\u00e9")).length, 1536);
  assert.equal(tarHead(m("y".repeat(600))).length, 2048, "pax records longer than one block");
});

Deno.test("contentDisposition() quotes ASCII names and adds filename* for others (RFC 6266)", () => {
  assert.equal(contentDisposition("photos.tar"), 'attachment; filename="photos.tar"');
  assert.equal(
    contentDisposition('a"b\\c%d.tar'),
    `attachment; filename="a_b_c_d.tar"; filename*=UTF-8''a%22b%5Cc%25d.tar`,
  );
  assert.equal(
    contentDisposition("\u00e9t\u00e9 (1)*'.tar"),
    `attachment; filename="_t_ (1)*'.tar"; filename*=UTF-8''%C3%A9t%C3%A9%20%281%29%2A%27.tar`,
  );
  // No CR/LF can reach the header.
  assert.ok(!/[\r\n]/.test(contentDisposition("a\r\nSet-Cookie: x.tar")));
});

Deno.test("archiveBytes() fails, rather than pad with zeros, when a large file shrinks while read", async () => {
  const tmp = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-tar-" }));
  try {
    await Deno.mkdir(`${tmp}/d`);
    await Deno.writeFile(`${tmp}/d/big.bin`, bytesOf(2 * 1024 * 1024, 7));
    const policy: ArchivePolicy = { root: tmp, dotfiles: false, followSymlinks: false };
    const it = tarStream(`${tmp}/d`, "d", policy)[Symbol.asyncIterator]();
    assert.equal((await it.next()).done, false);
    // Files are read as the consumer pulls, a block at a time.
    await Deno.truncate(`${tmp}/d/big.bin`, 512 * 1024);
    await assert.rejects(
      (async () => {
        while (!(await it.next()).done) { /* drain */ }
      })(),
      ArchiveChanged,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("leftOutNote(): one path per line under a heading; never replaces a real top-level name", () => {
  const note = leftOutNote("docs", ["locked/", "a.txt", "sub/x\ny"], new Set());
  assert.equal(note.name, "docs/_unreadable.txt");
  assert.equal(
    new TextDecoder().decode(note.body),
    "The server could not read these, so this archive of docs/ leaves them out:\n" +
      'locked/\na.txt\n"sub/x\\ny"\n',
  );
  const taken = new Set(["_unreadable.txt", "__unreadable.txt"]);
  assert.equal(leftOutNote("docs", [""], taken).name, "docs/___unreadable.txt");
});

Deno.test("walkTree() asks policy.guards for each folder's collector options, by its path below the top", async () => {
  await withTree(async ({ root, top }) => {
    const asked: string[] = [];
    const policy: ArchivePolicy = {
      root,
      dotfiles: false,
      followSymlinks: false,
      guards: (rel, dir) => {
        asked.push(`${rel}|${dir.slice(top.length)}`);
        return {};
      },
    };
    const dirs: string[] = [];
    for await (const item of walkTree(top, "top", policy)) {
      if (item.kind === "dir") dirs.push(item.name.slice(4));
    }
    assert.ok(asked.includes("|"), asked.join(" "));
    assert.ok(asked.includes("sub/|/sub"));
    assert.ok(asked.includes("sub/deeper/|/sub/deeper"));
    assert.equal(asked.length, dirs.length, "once per folder archived");
  });
});
