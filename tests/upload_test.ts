/**
 * Uploads over real sockets and with real clients (curl, rclone, cadaver,
 * ccache): the engine's body path (`http/engine.ts` + write/body.ts) in front
 * of the write stage, in this process (`serveDenoConn`), with a grant that
 * lets every request write under /up/ (who may write is the authentication
 * stage's business, tested with the CLI in tests/webdav_test.ts).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ConnectionSet, serveDenoConn } from "../http/engine.ts";
import { createHandler } from "../http/handler.ts";
import { isTempName } from "../write/atomic.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Site extends AsyncDisposable {
  root: string;
  port: number;
  url: string;
}

async function site(maxUploadBytes = 64 * 1024 * 1024): Promise<Site> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_upload_" }));
  await Deno.mkdir(`${root}/up`);
  await Deno.writeTextFile(`${root}/up/old.txt`, "old");
  const handler = await createHandler({
    root,
    webdav: true,
    write: { grant: (_u, path) => path.startsWith("/up/"), maxUploadBytes },
  });
  const set = new ConnectionSet(100);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      served.push(
        serveDenoConn(conn, handler, set, { idleTimeoutMs: 1500, bodies: handler.bodies }),
      );
    }
  })();
  const port = listener.addr.port;
  return {
    root,
    port,
    url: `http://127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      await set.drain();
      await Promise.all(served);
      await Deno.remove(root, { recursive: true });
    },
  };
}

async function run(
  cmd: string,
  args: string[],
  opts: { stdin?: string; cwd?: string; env?: Record<string, string> } = {},
) {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { RCLONE_CONFIG: "/dev/null", ...opts.env },
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(enc.encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function temps(dir: string): string[] {
  return [...Deno.readDirSync(dir)].filter((e) => isTempName(e.name)).map((e) => e.name);
}

/** Waits (on the file system's state, bounded) until `dir` holds no temporary upload. */
async function noTemps(dir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (temps(dir).length > 0) {
    assert.ok(Date.now() < deadline, `temporary files left: ${temps(dir)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A raw connection: send bytes, read the answer's status line (and the rest until close). */
class Raw {
  conn!: Deno.TcpConn;
  static async open(port: number): Promise<Raw> {
    const r = new Raw();
    r.conn = await Deno.connect({ hostname: "127.0.0.1", port });
    return r;
  }
  async send(b: Uint8Array | string): Promise<void> {
    const bytes = typeof b === "string" ? enc.encode(b) : b;
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }
  /** Reads until `pattern` shows in what was read (or the peer closes). */
  async until(pattern: RegExp): Promise<string> {
    let text = "";
    const buf = new Uint8Array(65536);
    while (!pattern.test(text)) {
      const n = await this.conn.read(buf);
      if (n === null) break;
      text += dec.decode(buf.subarray(0, n));
    }
    return text;
  }
  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

function random(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
  return b;
}

Deno.test("curl -T uploads (Content-Length, 100-continue, chunked) arrive byte for byte: 201, then 204", async () => {
  await using s = await site();
  const tmp = await Deno.makeTempFile();
  try {
    await Deno.writeFile(tmp, random(3_000_000));
    const put = (args: string[]) =>
      run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", ...args]);
    assert.equal((await put(["-T", tmp, `${s.url}/up/a/b.bin`])).stdout, "201");
    assert.deepEqual(await Deno.readFile(`${s.root}/up/a/b.bin`), await Deno.readFile(tmp));
    assert.equal((await put(["-T", tmp, `${s.url}/up/a/b.bin`])).stdout, "204");
    const viaStdin = await new Deno.Command("sh", {
      args: [
        "-c",
        `curl -sS -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' -T - '${s.url}/up/c.bin' < '${tmp}'`,
      ],
      stdout: "piped",
    }).output();
    assert.equal(dec.decode(viaStdin.stdout), "201");
    assert.deepEqual(await Deno.readFile(`${s.root}/up/c.bin`), await Deno.readFile(tmp));
    await noTemps(`${s.root}/up`);
  } finally {
    await Deno.remove(tmp);
  }
});

Deno.test("Expect: 100-continue: a refused upload gets its final status without 100, and nothing is read", async () => {
  await using s = await site(1000);
  for (
    const [path, len, want] of [["/elsewhere.bin", 10, 403], ["/up/big.bin", 5000, 413]] as const
  ) {
    const raw = await Raw.open(s.port);
    await raw.send(
      `PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${len}\r\nExpect: 100-continue\r\n\r\n`,
    );
    const answer = await raw.until(/\r\n\r\n/);
    assert.match(answer, new RegExp(`^HTTP/1.1 ${want} `), answer);
    raw.close();
  }
  const raw = await Raw.open(s.port);
  await raw.send(
    "PUT /up/ok.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
  );
  assert.match(await raw.until(/\r\n\r\n/), /^HTTP\/1.1 100 Continue\r\n\r\n/);
  await raw.send("ok");
  assert.match(await raw.until(/201 Created\n/), /HTTP\/1.1 201 /);
  raw.close();
  assert.ok(!(await Deno.stat(`${s.root}/elsewhere.bin`).catch(() => null)));
});

Deno.test("keep-alive after an upload: a pipelined GET behind the body is answered on the same connection", async () => {
  await using s = await site();
  const raw = await Raw.open(s.port);
  await raw.send(
    "PUT /up/p.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "3\r\nnew\r\n0\r\n\r\nGET /up/p.txt HTTP/1.1\r\nHost: x\r\n\r\n",
  );
  const text = await raw.until(/\r\n\r\nnew$/);
  raw.close();
  assert.match(text, /^HTTP\/1.1 201 [\s\S]*HTTP\/1.1 200 [\s\S]*\r\n\r\nnew$/);
});

Deno.test("a client that disconnects mid-body leaves the target untouched and no temporary file; a stalled one gets 408", async () => {
  await using s = await site();
  const gone = await Raw.open(s.port);
  await gone.send("PUT /up/old.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
  await gone.send(random(300_000));
  // The upload is in progress once its temporary file exists.
  const deadline = Date.now() + 10_000;
  while (temps(`${s.root}/up`).length === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  gone.close();
  await noTemps(`${s.root}/up`);
  assert.equal(await Deno.readTextFile(`${s.root}/up/old.txt`), "old");

  const stalled = await Raw.open(s.port);
  await stalled.send("PUT /up/old.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf");
  assert.match(await stalled.until(/\r\n\r\n/), /^HTTP\/1.1 408 /); // after the 1.5 s idle deadline
  stalled.close();
  await noTemps(`${s.root}/up`);
  assert.equal(await Deno.readTextFile(`${s.root}/up/old.txt`), "old");
});

Deno.test("concurrent PUTs of one path over the wire: one whole body wins; a reader during a large PUT sees old or new bytes, never a mix", async () => {
  await using s = await site();
  const bodies = Array.from({ length: 6 }, () => random(400_000));
  await Promise.all(bodies.map(async (b) => {
    const r = await fetch(`${s.url}/up/race.bin`, { method: "PUT", body: b });
    await r.body?.cancel();
    assert.ok(r.status === 201 || r.status === 204, String(r.status));
  }));
  const final = await Deno.readFile(`${s.root}/up/race.bin`);
  assert.ok(bodies.some((b) => b.length === final.length && b.every((x, i) => x === final[i])));

  const oldBytes = await Deno.readFile(`${s.root}/up/race.bin`);
  const fresh = random(8_000_000);
  const raw = await Raw.open(s.port);
  await raw.send(`PUT /up/race.bin HTTP/1.1\r\nHost: x\r\nContent-Length: ${fresh.length}\r\n\r\n`);
  const hash = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  const ok = new Set([hash(oldBytes), hash(fresh)]);
  let reads = 0;
  for (let off = 0; off < fresh.length; off += 1_000_000) {
    await raw.send(fresh.subarray(off, off + 1_000_000));
    const got = new Uint8Array(await (await fetch(`${s.url}/up/race.bin`)).arrayBuffer());
    assert.ok(ok.has(hash(got)), `read ${reads}: ${got.length} bytes, neither old nor new`);
    reads++;
  }
  assert.match(await raw.until(/\r\n\r\n/), /^HTTP\/1.1 204 /);
  raw.close();
  assert.equal(hash(await Deno.readFile(`${s.root}/up/race.bin`)), hash(fresh));
});

Deno.test("over the wire: digest mismatch 400, traversal and encoded slashes in paths and Destinations refused, nothing changes", async () => {
  await using s = await site();
  const send = async (head: string, body = "") => {
    const raw = await Raw.open(s.port);
    await raw.send(head + body);
    const status = Number((await raw.until(/\r\n\r\n/)).slice(9, 12));
    raw.close();
    return status;
  };
  const digest = `sha-256=:${createHash("sha256").update("good").digest("base64")}:`;
  assert.equal(
    await send(
      `PUT /up/d.txt HTTP/1.1\r\nHost: x\r\nContent-Digest: ${digest}\r\nContent-Length: 4\r\n\r\n`,
      "evil",
    ),
    400,
  );
  assert.equal(
    await send("PUT /up/../x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n", "x"),
    400,
  );
  assert.equal(
    await send("PUT /up%2f..%2fx HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n", "x"),
    400,
  );
  for (const d of ["/up/../x", "/up%2fx", "http://other/up/x", "/x"]) {
    const st = await send(`MOVE /up/old.txt HTTP/1.1\r\nHost: x\r\nDestination: ${d}\r\n\r\n`);
    assert.ok([400, 403, 502].includes(st), `${d}: ${st}`);
    const cp = await send(`COPY /up/old.txt HTTP/1.1\r\nHost: x\r\nDestination: ${d}\r\n\r\n`);
    assert.ok([400, 403, 502].includes(cp), `${d}: ${cp}`);
  }
  assert.deepEqual([...Deno.readDirSync(s.root)].map((e) => e.name), ["up"]);
  assert.deepEqual([...Deno.readDirSync(`${s.root}/up`)].map((e) => e.name), ["old.txt"]);
});

Deno.test("rclone copy and sync with the webdav backend, then rclone check --download finds no difference", async () => {
  await using s = await site();
  const src = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${src}/d/e`, { recursive: true });
    for (let i = 0; i < 12; i++) await Deno.writeFile(`${src}/d/f${i}.bin`, random(1000 * i + 1));
    await Deno.writeFile(`${src}/d/e/big.bin`, random(2_000_000));
    await Deno.writeTextFile(`${src}/top name.txt`, "top");
    const remote = ["--webdav-url", `${s.url}/up/`, ":webdav:rc"];
    const copy = await run("rclone", ["copy", src, ...remote.slice(0, 2), remote[2]]);
    assert.equal(copy.code, 0, copy.stderr);
    await Deno.remove(`${src}/d/f3.bin`);
    await Deno.writeTextFile(`${src}/top name.txt`, "changed");
    const sync = await run("rclone", ["sync", src, ...remote]);
    assert.equal(sync.code, 0, sync.stderr);
    const check = await run("rclone", ["check", "--download", src, ...remote]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stderr, /0 differences found/);
    assert.ok(!(await Deno.stat(`${s.root}/up/rc/d/f3.bin`).catch(() => null)));
  } finally {
    await Deno.remove(src, { recursive: true });
  }
});

Deno.test("cadaver uploads, moves, lists and deletes", async () => {
  await using s = await site();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/local.txt`, "from cadaver");
    const script = "put local.txt up/c.txt\nmove up/c.txt up/moved.txt\nmkcol up/newdir\n" +
      "ls up\ndelete up/old.txt\nquit\n";
    const out = await run("cadaver", [`${s.url}/`], { stdin: script, cwd: dir });
    assert.doesNotMatch(out.stdout, /failed/i, out.stdout);
    assert.match(out.stdout, /moved\.txt\s+12 /);
    assert.equal(await Deno.readTextFile(`${s.root}/up/moved.txt`), "from cadaver");
    assert.deepEqual([...Deno.readDirSync(`${s.root}/up`)].map((e) => e.name).sort(), [
      "moved.txt",
      "newdir",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ccache with HTTP remote storage: a second clean build gets remote hits and byte-identical objects", async () => {
  await using s = await site();
  const dir = await Deno.makeTempDir();
  try {
    for (let i = 0; i < 3; i++) {
      await Deno.writeTextFile(`${dir}/f${i}.c`, `int f${i}(int x) { return x * ${i + 2}; }\n`);
    }
    const build = async (cache: string): Promise<Map<string, Uint8Array>> => {
      const objs = new Map<string, Uint8Array>();
      for (let i = 0; i < 3; i++) {
        const r = await run("ccache", ["gcc", "-c", `f${i}.c`, "-o", `f${i}.o`], {
          cwd: dir,
          env: {
            PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
            CCACHE_DIR: `${dir}/${cache}`,
            CCACHE_REMOTE_STORAGE: `${s.url}/up/ccache/`,
          },
        });
        assert.equal(r.code, 0, r.stderr);
        objs.set(`f${i}.o`, await Deno.readFile(`${dir}/f${i}.o`));
        await Deno.remove(`${dir}/f${i}.o`);
      }
      return objs;
    };
    const first = await build("cache1");
    const second = await build("cache2"); // an empty local cache: only the server has them
    assert.deepEqual(second, first);
    const stats = await run("ccache", ["--print-stats"], {
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", CCACHE_DIR: `${dir}/cache2` },
    });
    assert.match(stats.stdout, /^remote_storage_hit\t3$/m, stats.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
