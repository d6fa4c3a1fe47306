import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createHandler, type FileHandler } from "../http/handler.ts";
import { replyBytes } from "../http/_test_reply.ts";
import type { Reply } from "../http/types.ts";
import { BodyError, BodyPipe, bytesBody, type RequestBody } from "./body.ts";
import { isTempName, sweepTemps, TEMP_PREFIX } from "./atomic.ts";
import type { WriteGrant, WriteRequest } from "./stage.ts";
import { parseDestination } from "./destination.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Writes allowed for user "al" under /up/ only. */
const grant: WriteGrant = (user, path) => user === "al" && path.startsWith("/up/");

function req(
  method: string,
  path: string,
  headers: string[] = [],
  body?: RequestBody,
  user: string | null = "al",
): WriteRequest {
  const r: WriteRequest = {
    method,
    target: path,
    path,
    query: "",
    minor: 1,
    headers: ["host", "h:8", ...headers],
  };
  if (user !== null) r.user = user;
  if (body !== undefined) {
    r.body = body;
    if (body.length >= 0) r.headers.push("content-length", String(body.length));
    else r.headers.push("transfer-encoding", "chunked");
  }
  return r;
}

function put(path: string, text: string, headers: string[] = [], user?: string): WriteRequest {
  return req("PUT", path, headers, bytesBody([enc.encode(text)]), user ?? "al");
}

async function status(h: FileHandler, r: WriteRequest): Promise<number> {
  const reply: Reply = await h(r);
  reply.release?.();
  return reply.status;
}

async function text(h: FileHandler, path: string): Promise<string> {
  const reply = await h(req("GET", path));
  return `${reply.status} ${dec.decode(await replyBytes(reply))}`;
}

async function withSite(
  fn: (h: FileHandler, root: string) => Promise<void>,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_write_" }));
  try {
    await Deno.mkdir(`${root}/up`);
    await Deno.writeTextFile(`${root}/up/old.txt`, "old");
    const h = await createHandler({ root, write: { grant, maxUploadBytes: 1000 }, ...extra });
    await fn(h, root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function sha256(s: string): string {
  return createHash("sha256").update(s).digest("base64");
}

Deno.test("PUT creates (201 + ETag, missing folders made) and replaces (204); GET sees the new bytes at once", async () => {
  await withSite(async (h, root) => {
    assert.equal(await text(h, "/up/old.txt"), "200 old"); // cached now
    const created = await h(put("/up/a/b/new.txt", "new"));
    assert.equal(created.status, 201);
    const etag = created.headers.find(([k]) => k === "ETag")?.[1];
    assert.match(etag ?? "", /^"/);
    assert.equal(await text(h, "/up/a/b/new.txt"), "200 new");
    const head = await h(req("HEAD", "/up/a/b/new.txt"));
    head.release?.();
    assert.equal(head.headers.find(([k]) => k.toLowerCase() === "etag")?.[1], etag);
    assert.equal(await status(h, put("/up/old.txt", "replaced")), 204);
    assert.equal(await text(h, "/up/old.txt"), "200 replaced"); // the writer's cache saw it
    assert.deepEqual([...Deno.readDirSync(`${root}/up`)].filter((e) => isTempName(e.name)), []);
  });
});

Deno.test("writes need a grant: anonymous, another user, or a path outside the rule get 403 and nothing is written", async () => {
  await withSite(async (h, root) => {
    assert.equal(await status(h, put("/up/x.txt", "x", [], "bob")), 403);
    const anon = req("PUT", "/up/x.txt", [], bytesBody([enc.encode("x")]), null);
    assert.equal(await status(h, anon), 403);
    assert.equal(await status(h, put("/other.txt", "x")), 403);
    assert.equal(await status(h, req("DELETE", "/up/old.txt", [], undefined, "bob")), 403);
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name).sort(), ["up"]);
    assert.deepEqual([...Deno.readDirSync(`${root}/up`)].map((e) => e.name), ["old.txt"]);
  });
});

Deno.test("without write options every write method is 405; PROPFIND too unless webdav is on", async () => {
  const root = await Deno.makeTempDir();
  try {
    const h = await createHandler({ root });
    for (const m of ["PUT", "DELETE", "MKCOL", "MOVE", "COPY", "PROPFIND"]) {
      assert.equal(await status(h, req(m, "/a.txt")), 405, m);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("PUT preconditions: If-None-Match: * creates only, If-Match replaces only that version (412)", async () => {
  await withSite(async (h) => {
    assert.equal(await status(h, put("/up/old.txt", "x", ["if-none-match", "*"])), 412);
    assert.equal(await status(h, put("/up/n.txt", "n", ["if-none-match", "*"])), 201);
    assert.equal(await status(h, put("/up/old.txt", "x", ["if-match", '"nope"'])), 412);
    assert.equal(await status(h, put("/up/none.txt", "x", ["if-match", "*"])), 412);
    const get = await h(req("GET", "/up/old.txt"));
    get.release?.();
    const etag = get.headers.find(([k]) => k.toLowerCase() === "etag")![1];
    assert.equal(await status(h, put("/up/old.txt", "v2", ["if-match", etag])), 204);
    assert.equal(await status(h, put("/up/old.txt", "v3", ["if-match", etag])), 412); // stale now
    assert.equal(await text(h, "/up/old.txt"), "200 v2");
  });
});

Deno.test("digests: a matching Content-Digest or Repr-Digest is accepted; a mismatch is 400 and nothing changes", async () => {
  await withSite(async (h, root) => {
    const good = `sha-256=:${sha256("hello")}:`;
    assert.equal(await status(h, put("/up/d.txt", "hello", ["content-digest", good])), 201);
    assert.equal(await status(h, put("/up/d.txt", "hello", ["repr-digest", good])), 204);
    assert.equal(await status(h, put("/up/d.txt", "evil!", ["content-digest", good])), 400);
    assert.equal(await status(h, put("/up/d.txt", "x", ["content-digest", "sha-256=:AAAA:"])), 400);
    assert.equal(await status(h, put("/up/d.txt", "x", ["content-digest", "((bad"])), 400);
    // Unknown algorithms are ignored (RFC 9530 sec. 2).
    assert.equal(await status(h, put("/up/e.txt", "x", ["content-digest", "md5=:AAAA:"])), 201);
    // A digest in a chunked body's trailer is checked too.
    const pipe = new BodyPipe(-1);
    pipe.push(enc.encode("evil!"));
    pipe.end(["content-digest", good]);
    assert.equal(await status(h, req("PUT", "/up/d.txt", [], pipe)), 400);
    assert.equal(await Deno.readTextFile(`${root}/up/d.txt`), "hello");
    assert.deepEqual([...Deno.readDirSync(`${root}/up`)].filter((e) => isTempName(e.name)), []);
  });
});

Deno.test("limits and framing: Content-Length over --max-upload-mb is 413 before reading; a chunked body at the limit; a short body 400; codings 415", async () => {
  await withSite(async (h, root) => {
    let pulled = false;
    const big: RequestBody = {
      length: 1001,
      trailers: [],
      async *chunks() {
        pulled = true;
        yield new Uint8Array(1001);
      },
    };
    assert.equal(await status(h, req("PUT", "/up/big", [], big)), 413);
    assert.equal(pulled, false);
    const pipe = new BodyPipe(-1);
    pipe.push(new Uint8Array(600));
    pipe.push(new Uint8Array(600));
    pipe.end();
    assert.equal(await status(h, req("PUT", "/up/big", [], pipe)), 413);
    const short = bytesBody([enc.encode("abc")], [], 5);
    assert.equal(await status(h, req("PUT", "/up/short", [], short)), 400);
    assert.equal(await status(h, put("/up/gz", "x", ["content-encoding", "gzip"])), 415);
    assert.equal(await status(h, put("/up/r", "x", ["content-range", "bytes 0-0/1"])), 400);
    assert.deepEqual([...Deno.readDirSync(`${root}/up`)].map((e) => e.name), ["old.txt"]);
  });
});

Deno.test("a body that fails mid-way (client gone) leaves the target untouched and no temporary file", async () => {
  await withSite(async (h, root) => {
    const pipe = new BodyPipe(10);
    const answer = h(req("PUT", "/up/old.txt", [], pipe));
    pipe.push(enc.encode("half"));
    // Wait until the writer has made its temporary file (the event we look for).
    while (![...Deno.readDirSync(`${root}/up`)].some((e) => isTempName(e.name))) {
      await new Promise((r) => setTimeout(r, 5));
    }
    // The temporary file is not listed nor served, even with dotfiles shown.
    const temp = [...Deno.readDirSync(`${root}/up`)].find((e) => isTempName(e.name))!.name;
    const shown = await createHandler({ root, dotfiles: true });
    const listing = await shown(req("GET", "/up/", ["accept", "application/json"]));
    assert.doesNotMatch(dec.decode(await replyBytes(listing)), new RegExp(TEMP_PREFIX));
    assert.equal(await status(shown as FileHandler, req("GET", `/up/${temp}`)), 404);
    pipe.fail(new BodyError(400, "client went away"));
    const r = await answer;
    r.release?.();
    assert.equal(await Deno.readTextFile(`${root}/up/old.txt`), "old");
    assert.deepEqual([...Deno.readDirSync(`${root}/up`)].map((e) => e.name), ["old.txt"]);
  });
});

Deno.test("concurrent PUTs of one path: one whole body wins, no torn file, no temporary left", async () => {
  await withSite(async (h, root) => {
    const bodies = Array.from({ length: 8 }, (_, i) => String(i).repeat(900));
    const pipes = bodies.map(() => new BodyPipe(-1, 64));
    const answers = pipes.map((p) => h(req("PUT", "/up/race.bin", [], p)));
    // Interleave the bodies in small pieces.
    for (let off = 0; off < 900; off += 100) {
      pipes.forEach((p, i) => p.push(enc.encode(bodies[i].slice(off, off + 100))));
      await new Promise((r) => setTimeout(r, 0));
    }
    pipes.forEach((p) => p.end());
    const statuses = await Promise.all(answers.map(async (a) => (await a).status));
    assert.ok(statuses.every((s) => s === 201 || s === 204), String(statuses));
    const final = await Deno.readTextFile(`${root}/up/race.bin`);
    assert.ok(bodies.includes(final), "the file is one of the bodies, whole");
    assert.deepEqual([...Deno.readDirSync(`${root}/up`)].filter((e) => isTempName(e.name)), []);
  });
});

Deno.test("DELETE a file or an empty folder (204); a non-empty folder is 409; MKCOL 201, 405 when taken, 409 without parent", async () => {
  await withSite(async (h, root) => {
    assert.equal(await status(h, req("MKCOL", "/up/d/")), 201);
    assert.equal(await status(h, req("MKCOL", "/up/d/")), 405);
    assert.equal(await status(h, req("MKCOL", "/up/no/such/")), 409);
    assert.equal(await status(h, put("/up/d/f", "f")), 201);
    assert.equal(await status(h, req("DELETE", "/up/d/")), 409);
    assert.equal(await status(h, req("DELETE", "/up/d/f")), 204);
    assert.equal(await status(h, req("DELETE", "/up/d/")), 204);
    assert.equal(await status(h, req("DELETE", "/up/gone")), 404);
    assert.equal(await text(h, "/up/d/f"), "404 404 Not Found\n");
    assert.deepEqual([...Deno.readDirSync(`${root}/up`)].map((e) => e.name), ["old.txt"]);
  });
});

Deno.test("MOVE and COPY: Destination parsed and confined, Overwrite: F honoured, 201/204", async () => {
  await withSite(async (h, root) => {
    const dest = (d: string, more: string[] = []) => ["destination", d, ...more];
    assert.equal(await status(h, req("COPY", "/up/old.txt", dest("http://h:8/up/c.txt"))), 201);
    assert.equal(await Deno.readTextFile(`${root}/up/c.txt`), "old");
    assert.equal(
      await status(h, req("COPY", "/up/old.txt", dest("/up/c.txt", ["overwrite", "F"]))),
      412,
    );
    assert.equal(await status(h, req("MOVE", "/up/c.txt", dest("/up/m.txt"))), 201);
    assert.equal(await status(h, req("MOVE", "/up/m.txt", dest("/up/old.txt"))), 204);
    assert.equal(await text(h, "/up/c.txt"), "404 404 Not Found\n");
    // Traversal, encoded slashes, other hosts, outside the grant, temporary names.
    const refused: Array<[string, number]> = [
      ["/up/../../etc/passwd", 400],
      ["/up/..%2f..%2fx", 400],
      ["/up%2fx", 400],
      ["http://evil.example/up/x", 502],
      ["http://h:8@evil/up/x", 400],
      ["//evil/up/x", 400],
      ["/up/x?y", 400],
      ["/elsewhere.txt", 403],
      [`/up/${TEMP_PREFIX}x`, 404],
      ["/up/.hidden", 404],
      ["ftp://h:8/up/x", 400],
    ];
    for (const [d, s] of refused) {
      assert.equal(await status(h, req("MOVE", "/up/old.txt", dest(d))), s, d);
      assert.equal(await status(h, req("COPY", "/up/old.txt", dest(d))), s, d);
    }
    assert.equal(await status(h, req("MOVE", "/up/old.txt", dest("/up/old.txt"))), 403);
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["up"]);
    assert.deepEqual([...Deno.readDirSync(`${root}/up`)].map((e) => e.name), ["old.txt"]);
    // A folder copy holds what a listing shows.
    await Deno.mkdir(`${root}/up/src`);
    await Deno.writeTextFile(`${root}/up/src/a`, "a");
    await Deno.writeTextFile(`${root}/up/src/.secret`, "s");
    assert.equal(await status(h, req("COPY", "/up/src/", dest("/up/dst/"))), 201);
    assert.deepEqual([...Deno.readDirSync(`${root}/up/dst`)].map((e) => e.name), ["a"]);
    assert.equal(await status(h, req("MOVE", "/up/src/", dest("/up/src/in/"))), 409);
  });
});

Deno.test("writes to dotfiles and through symlinks are refused unless the flags allow them", async () => {
  await withSite(async (h, root) => {
    const outside = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${outside}/victim`, "safe");
      await Deno.symlink(outside, `${root}/up/out`);
      await Deno.symlink(`${outside}/victim`, `${root}/up/link`);
      await Deno.symlink(`${root}/up/old.txt`, `${root}/up/inner`);
      assert.equal(await status(h, put("/up/.env", "x")), 404);
      assert.equal(await status(h, put("/up/out/victim", "pwned")), 404);
      assert.equal(await status(h, put("/up/link", "pwned")), 403);
      assert.equal(await status(h, put("/up/inner", "x")), 403); // a link, even inside
      assert.equal(await status(h, req("DELETE", "/up/link")), 404);
      assert.equal(await status(h, req("DELETE", "/up/out/victim")), 404);
      assert.equal(await Deno.readTextFile(`${outside}/victim`), "safe");
      const dot = await createHandler({ root, dotfiles: true, write: { grant } });
      assert.equal(await status(dot, put("/up/.env", "x")), 201);
      assert.equal(await status(dot, put(`/up/${TEMP_PREFIX}x`, "x")), 404);
      const follow = await createHandler({ root, followSymlinks: true, write: { grant } });
      assert.equal(await status(follow, put("/up/inner", "via link")), 204);
      assert.equal(await Deno.readTextFile(`${root}/up/old.txt`), "via link");
      assert.ok((await Deno.lstat(`${root}/up/inner`)).isSymlink);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("sweepTemps removes what a crash left, in sub-folders too, and nothing else", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/a/b`, { recursive: true });
    await Deno.writeTextFile(`${dir}/${TEMP_PREFIX}1`, "x");
    await Deno.writeTextFile(`${dir}/a/b/${TEMP_PREFIX}2`, "x");
    await Deno.writeTextFile(`${dir}/a/keep`, "x");
    assert.equal(sweepTemps(dir), 2);
    assert.deepEqual([...Deno.readDirSync(`${dir}/a`)].map((e) => e.name).sort(), ["b", "keep"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseDestination accepts this host's URIs and absolute paths only", () => {
  assert.deepEqual(parseDestination("HTTP://H:8/a", "h:8", false), {
    ok: true,
    segments: ["a"],
    path: "/a",
  });
  assert.equal(parseDestination(undefined, "h", false).ok, false);
  assert.equal(parseDestination("a/b", "h", false).ok, false);
  assert.equal(parseDestination("http://h/a/./b", "h", false).ok, false);
  assert.equal(parseDestination("http://h/a//b", "h", false).ok, false);
  assert.equal(parseDestination("http://h/a%5cb", "h", false).ok, false);
  assert.equal(parseDestination("http://h/a%00b", "h", false).ok, false);
});

Deno.test("a full disk is 507 with the temporary file removed and the old file intact", async (t) => {
  const mnt = await Deno.makeTempDir({ prefix: "ringhttpd_tmpfs_" });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt],
    stderr: "piped",
  }).output().catch(() => null);
  if (mount === null || !mount.success) {
    console.log(
      `skipped: cannot mount a tmpfs (${mount ? dec.decode(mount.stderr).trim() : "no mount"})`,
    );
    await Deno.remove(mnt);
    return;
  }
  try {
    await Deno.mkdir(`${mnt}/up`);
    await Deno.writeTextFile(`${mnt}/up/old.txt`, "old");
    const h = await createHandler({ root: mnt, write: { grant } });
    const pipe = new BodyPipe(-1);
    const answer = h(req("PUT", "/up/old.txt", [], pipe));
    const mib = new Uint8Array(64 * 1024);
    // The writer stops reading at the full disk: its answer ends the upload.
    for (let i = 0; i < 8; i++) {
      pipe.push(mib);
      await Promise.race([pipe.drained(), answer]);
    }
    pipe.end();
    await t.step("507", async () => assert.equal((await answer).status, 507));
    assert.equal(await Deno.readTextFile(`${mnt}/up/old.txt`), "old");
    assert.deepEqual([...Deno.readDirSync(`${mnt}/up`)].map((e) => e.name), ["old.txt"]);
  } finally {
    await new Deno.Command("umount", { args: [mnt] }).output();
    await Deno.remove(mnt, { recursive: true });
  }
});

Deno.test("review: a symlinked parent folder is not written through without --follow-symlinks, and a followed link needs the grant where it points", async () => {
  await withSite(async (h, root) => {
    await Deno.mkdir(`${root}/pub`);
    await Deno.writeTextFile(`${root}/pub/index.html`, "site");
    await Deno.symlink(`${root}/pub`, `${root}/up/sub`); // a link inside the root, out of the grant
    await Deno.symlink(`${root}/pub/index.html`, `${root}/up/page`);
    assert.equal(await status(h, put("/up/sub/index.html", "pwned")), 403);
    assert.equal(await status(h, put("/up/sub/new.html", "pwned")), 403);
    assert.equal(await status(h, req("DELETE", "/up/sub/index.html")), 403);
    const follow = await createHandler({ root, followSymlinks: true, write: { grant } });
    assert.equal(await status(follow, put("/up/sub/index.html", "pwned")), 403);
    assert.equal(await status(follow, put("/up/page", "pwned")), 403);
    // Followed out of the root: never written (it has no URL a grant could name).
    const outside = await Deno.realPath(await Deno.makeTempDir());
    try {
      await Deno.writeTextFile(`${outside}/victim`, "safe");
      await Deno.symlink(outside, `${root}/up/out`);
      assert.equal(await status(follow, put("/up/out/victim", "pwned")), 403);
      assert.equal(await status(follow, put("/up/out/new", "pwned")), 403);
      assert.equal(
        await status(follow, req("MOVE", "/up/out/victim", ["destination", "/up/v"])),
        403,
      );
      assert.equal(await Deno.readTextFile(`${outside}/victim`), "safe");
      assert.deepEqual([...Deno.readDirSync(outside)].map((e) => e.name), ["victim"]);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
    assert.equal(await Deno.readTextFile(`${root}/pub/index.html`), "site");
    assert.deepEqual([...Deno.readDirSync(`${root}/pub`)].map((e) => e.name), ["index.html"]);
  });
});

Deno.test("review: If-Match is checked again just before the rename (a replace during the upload is 412, not a lost update)", async () => {
  await withSite(async (h, root) => {
    const get = await h(req("GET", "/up/old.txt"));
    get.release?.();
    const etag = get.headers.find(([k]) => k.toLowerCase() === "etag")![1];
    const pipe = new BodyPipe(4);
    const slow = h(req("PUT", "/up/old.txt", ["if-match", etag], pipe));
    pipe.push(enc.encode("sl"));
    while (![...Deno.readDirSync(`${root}/up`)].some((e) => isTempName(e.name))) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(await status(h, put("/up/old.txt", "other writer", ["if-match", etag])), 204);
    pipe.push(enc.encode("ow"));
    pipe.end();
    const r = await slow;
    r.release?.();
    assert.equal(r.status, 412);
    assert.equal(await Deno.readTextFile(`${root}/up/old.txt`), "other writer");
    assert.deepEqual([...Deno.readDirSync(`${root}/up`)].filter((e) => isTempName(e.name)), []);
  });
});

Deno.test("review: COPY or MOVE of a folder onto an existing file (Overwrite: T) replaces it, never 500; Overwrite: F is 412", async () => {
  await withSite(async (h, root) => {
    await Deno.mkdir(`${root}/up/d`);
    await Deno.writeTextFile(`${root}/up/d/f`, "f");
    await Deno.mkdir(`${root}/up/e`);
    await Deno.writeTextFile(`${root}/up/file`, "file");
    await Deno.writeTextFile(`${root}/up/file2`, "file2");
    const to = (m: string, p: string, d: string, extra: string[] = []) =>
      status(h, req(m, p, ["destination", d, ...extra]));
    assert.equal(await to("COPY", "/up/d/", "/up/file", ["overwrite", "F"]), 412);
    assert.equal(await Deno.readTextFile(`${root}/up/file`), "file");
    assert.equal(await to("COPY", "/up/d/", "/up/file"), 204);
    assert.equal(await Deno.readTextFile(`${root}/up/file/f`), "f");
    assert.equal(await to("MOVE", "/up/e/", "/up/file2"), 204);
    assert.ok((await Deno.stat(`${root}/up/file2`)).isDirectory);
    await assert.rejects(Deno.stat(`${root}/up/e`), Deno.errors.NotFound);
  });
});
