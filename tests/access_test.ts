/**
 * Authentication and path rules against the real CLI (ring mode, 2
 * workers): every view that could leak a protected or hidden path (listing
 * HTML and JSON, tar, HEAD, Range, 304, error pages, the directory-slash
 * redirect, symlinks, the caches), real clients (curl -u, wget -r, rclone
 * with a Bearer header, files made by Debian's htpasswd -B and -m), bad
 * input, SIGHUP reloads, the failed-attempts limit across workers and the
 * access log.
 */
import assert from "node:assert/strict";
import { runCli, type ServerProcess, startCli } from "./_harness.ts";
import { hashToken } from "../auth/tokens.ts";

const TOKEN = "ci-token-0123456789abcdef";

async function sh(
  cmd: string[],
  cwd?: string,
): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** The site, the auth files and a config with the path rules. */
async function makeSite(): Promise<{ dir: string; root: string; args: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "ringhttpd_access_" });
  const root = `${dir}/site`;
  for (const d of ["pub/staff", "drafts", "team", "nolist"]) {
    await Deno.mkdir(`${root}/${d}`, { recursive: true });
  }
  const files: Record<string, string> = {
    "top.txt": "top\n",
    "pub/a.txt": "public a\n",
    "pub/hidden.txt": "HIDDEN-BYTES\n",
    "pub/staff/s.txt": "STAFF-BYTES\n",
    "drafts/d.txt": "DRAFT-BYTES\n",
    "team/t.txt": "TEAM-BYTES ".repeat(100) + "\n",
    "nolist/n.txt": "n\n",
  };
  for (const [p, text] of Object.entries(files)) await Deno.writeTextFile(`${root}/${p}`, text);
  // A way around /team/'s rule if symlinks were not checked.
  await Deno.symlink(`${root}/team`, `${root}/pub/link`);
  // Dates that must not show through the anonymous /pub/ listing.
  const future = new Date("2030-01-01T00:00:00Z");
  await Deno.utime(`${root}/pub/hidden.txt`, future, future);
  await Deno.utime(`${root}/pub/staff`, future, future);
  // Debian's htpasswd: alice bcrypt (-B), bob apr1 (-m).
  assert.equal((await sh(["htpasswd", "-cbB", `${dir}/users`, "alice", "wonder land"])).code, 0);
  assert.equal((await sh(["htpasswd", "-bm", `${dir}/users`, "bob", "b0b"])).code, 0);
  await Deno.writeTextFile(`${dir}/tokens`, `# bots\nci-bot:${await hashToken(TOKEN)}\n`);
  await Deno.writeTextFile(
    `${dir}/r.jsonc`,
    JSON.stringify({
      rules: [
        { path: "/pub/hidden.txt", hidden: true },
        { path: "/pub/staff/**", access: ["alice"] },
        { path: "/drafts", hidden: true },
        { path: "/team/**", access: ["alice", "ci-bot"] },
        { path: "/nolist/**", list: false },
        {
          path: "/pub/**",
          access: "public",
          cacheControl: "max-age=60",
          headers: { "X-Rule": "pub" },
        },
      ],
    }),
  );
  const args = [
    root,
    "--workers",
    "2",
    "--config",
    `${dir}/r.jsonc`,
    "--auth-file",
    `${dir}/users`,
    "--auth",
    "carol:c:4r0l",
    "--token-file",
    `${dir}/tokens`,
    "--realm",
    "files",
    "--access-log",
    `${dir}/access.log`,
  ];
  return { dir, root, args };
}

const basic = (user: string, pw: string) => "Basic " + btoa(`${user}:${pw}`);
const ALICE = basic("alice", "wonder land");
const BOB = basic("bob", "b0b");

interface Got {
  status: number;
  headers: Headers;
  body: string;
}

async function get(
  base: string,
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<Got> {
  const res = await fetch(base + path, { method, headers, redirect: "manual" });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Status, body and headers but Date: two replies a client cannot tell apart compare equal. */
function shape(g: Got): unknown {
  return { status: g.status, body: g.body, headers: [...g.headers].filter(([k]) => k !== "date") };
}

/** Raw bytes to the server, one request, the reply's status line and headers. */
async function raw(port: number, request: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(request);
    let text = "";
    const buf = new Uint8Array(65536);
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

const tarNames = (bytes: Uint8Array): string[] => {
  const names: string[] = [];
  for (let off = 0; off + 512 <= bytes.length;) {
    const h = bytes.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = new TextDecoder().decode(h.subarray(0, 100)).replace(/\0.*$/s, "");
    const prefix = new TextDecoder().decode(h.subarray(345, 500)).replace(/\0.*$/s, "");
    const size = parseInt(
      new TextDecoder().decode(h.subarray(124, 136)).replace(/\0.*$/s, "").trim() || "0",
      8,
    );
    const type = String.fromCharCode(h[156]);
    if (type !== "x" && type !== "g" && type !== "L") {
      names.push(prefix ? `${prefix}/${name}` : name);
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
};

async function tar(
  base: string,
  path: string,
  auth?: string,
): Promise<{ status: number; names: string[]; text: string }> {
  const res = await fetch(`${base}${path}?download=tar`, {
    headers: auth ? { authorization: auth } : {},
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, names: tarNames(bytes), text: new TextDecoder().decode(bytes) };
}

Deno.test("access: rules, auth and every view against a real server", async (t) => {
  const { dir, args } = await makeSite();
  let server: ServerProcess | undefined;
  try {
    server = await startCli(args);
    const base = `http://127.0.0.1:${server.port}`;

    await t.step(
      "no credentials: 401 with Basic (UTF-8) and Bearer challenges, same for a missing path",
      async () => {
        const a = await get(base, "/top.txt");
        const b = await get(base, "/no-such-file");
        assert.equal(a.status, 401);
        assert.deepEqual(
          a.headers.get("www-authenticate"),
          'Basic realm="files", charset="UTF-8", Bearer realm="files"',
        );
        assert.deepEqual(shape(a), shape(b));
      },
    );

    await t.step("public paths: no credentials, the rule's headers and Cache-Control", async () => {
      const a = await get(base, "/pub/a.txt");
      assert.equal(a.status, 200);
      assert.equal(a.body, "public a\n");
      assert.equal(a.headers.get("x-rule"), "pub");
      assert.equal(a.headers.get("cache-control"), "max-age=60");
    });

    await t.step(
      "listings (HTML and JSON) show only what the requester may read, dates included",
      async () => {
        const anon = await get(base, "/pub/");
        assert.equal(anon.status, 200);
        assert.match(anon.body, /a\.txt/);
        for (const leak of ["hidden.txt", "staff/", 'href="link', "2030"]) {
          assert.ok(!anon.body.includes(leak), leak);
        }
        const lm = new Date(anon.headers.get("last-modified")!).getUTCFullYear();
        assert.ok(
          lm < 2030,
          `Last-Modified ${anon.headers.get("last-modified")} shows a hidden date`,
        );
        const json = await get(base, "/pub/?format=json");
        const names = (JSON.parse(json.body) as Array<{ name: string }>).map((e) => e.name);
        assert.deepEqual(names.sort(), ["a.txt"]);
        const alice = await get(base, "/pub/?format=json", { authorization: ALICE });
        const aliceNames = (JSON.parse(alice.body) as Array<{ name: string }>).map((e) => e.name);
        assert.deepEqual(aliceNames.sort(), ["a.txt", "staff"]);
        // Bob is authenticated but not on /pub/staff's list, nor on /team's.
        const bobRoot = await get(base, "/?format=json", { authorization: BOB });
        const bobNames = (JSON.parse(bobRoot.body) as Array<{ name: string }>).map((e) => e.name);
        assert.deepEqual(bobNames.sort(), ["nolist", "pub", "top.txt"]);
        // A cached listing of Alice's is not Bob's, and the anonymous one is not Alice's.
        const bobPub = await get(base, "/pub/?format=json", { authorization: BOB });
        assert.deepEqual((JSON.parse(bobPub.body) as Array<{ name: string }>).map((e) => e.name), [
          "a.txt",
        ]);
        const again = await get(base, "/pub/", { "if-none-match": alice.headers.get("etag")! });
        assert.equal(again.status, 200);
        assert.ok(!again.body.includes("staff"));
      },
    );

    await t.step(
      "hidden: exactly like missing, for GET, HEAD, Range, conditionals, the slash redirect, everyone",
      async () => {
        const pairs: Array<[string, string]> = [
          ["/pub/hidden.txt", "/pub/missing.txt"],
          ["/drafts", "/nodir"],
          ["/drafts/", "/nodir/"],
          ["/drafts/d.txt", "/nodir/d.txt"],
        ];
        const variants: Array<[Record<string, string>, string]> = [
          [{}, "GET"],
          [{}, "HEAD"],
          [{ range: "bytes=0-3" }, "GET"],
          [{ "if-none-match": "*" }, "GET"],
          [{ "if-modified-since": "Thu, 01 Jan 1970 00:00:00 GMT" }, "GET"],
        ];
        for (const [hidden, missing] of pairs) {
          for (const [h, method] of variants) {
            const a = await get(base, hidden, { authorization: ALICE, ...h }, method);
            const b = await get(base, missing, { authorization: ALICE, ...h }, method);
            assert.equal(a.status, 404, `${method} ${hidden} ${JSON.stringify(h)}`);
            assert.deepEqual(shape(a), shape(b), `${method} ${hidden} ${JSON.stringify(h)}`);
          }
        }
        // The listing's real 301 for comparison: a directory that exists redirects.
        assert.equal((await get(base, "/pub")).status, 301);
      },
    );

    await t.step(
      "access lists: 403 for other users, before the caches; the token's name works",
      async () => {
        const ok = await get(base, "/team/t.txt", { authorization: ALICE });
        assert.equal(ok.status, 200);
        assert.match(ok.body, /TEAM-BYTES/);
        await get(base, "/team/t.txt", { authorization: ALICE }); // now from the cache
        const bob = await get(base, "/team/t.txt", { authorization: BOB });
        assert.equal(bob.status, 403);
        assert.ok(!bob.body.includes("TEAM"));
        const bob304 = await get(base, "/team/t.txt", {
          authorization: BOB,
          "if-none-match": ok.headers.get("etag")!,
        });
        assert.equal(bob304.status, 403);
        assert.equal(bob304.headers.get("etag"), null);
        const range = await get(base, "/team/t.txt", { range: "bytes=0-3" });
        assert.equal(range.status, 401);
        assert.equal(range.headers.get("content-range"), null);
        const bot = await get(base, "/team/t.txt", { authorization: `Bearer ${TOKEN}` });
        assert.equal(bot.status, 200);
        // A 403 for a path that does not exist either: no existence oracle.
        assert.deepEqual(shape(await get(base, "/team/none", { authorization: BOB })), shape(bob));
      },
    );

    await t.step("a symlink into a protected folder is not a way around it", async () => {
      assert.equal((await get(base, "/pub/link/t.txt")).status, 404);
      assert.equal((await get(base, "/pub/link/t.txt", { authorization: ALICE })).status, 404);
    });

    await t.step("folder downloads hold only what the requester may read", async () => {
      const anon = await tar(base, "/pub/");
      assert.equal(anon.status, 200);
      assert.deepEqual(anon.names.sort(), ["pub/", "pub/a.txt"]);
      assert.ok(!anon.text.includes("HIDDEN-BYTES") && !anon.text.includes("STAFF-BYTES"));
      const alice = await tar(base, "/", alice_());
      assert.ok(alice.names.some((n) => n.endsWith("/team/t.txt")), alice.names.join(" "));
      assert.ok(alice.names.some((n) => n.endsWith("/pub/staff/s.txt")));
      for (const n of alice.names) assert.ok(!/hidden|drafts|nolist\/n\.txt|link/.test(n), n);
      const bob = await tar(base, "/", BOB);
      for (const n of bob.names) assert.ok(!/team|staff|hidden|drafts/.test(n), n);
      assert.ok(!bob.text.includes("TEAM-BYTES"));
      // list: false: no listing, no download of it.
      assert.equal((await get(base, "/nolist/", { authorization: BOB })).status, 404);
      assert.equal((await tar(base, "/nolist/", BOB)).status, 404);
      assert.equal((await get(base, "/nolist/n.txt", { authorization: BOB })).status, 200);
    });

    await t.step("bad Authorization values get 401 (never 500), absurd sizes a 4xx", async () => {
      const bad = [
        "Basic",
        "Basic ",
        "Basic !!!!",
        "Basic " + btoa("nocolon"),
        "Basic " + btoa(":pw"),
        "Bearer",
        "Bearer a b",
        "Digest x=1",
        "basic " + btoa("alice:wrong"),
        "Bearer " + "A".repeat(600),
        "Basic " + btoa("alice:" + "x".repeat(2000)),
      ];
      // From an address of its own: each of these counts as a failed attempt.
      for (const v of bad) {
        const r = await sh([
          "curl",
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "--interface",
          "127.0.0.3",
          "-H",
          `Authorization: ${v}`,
          `${base}/top.txt`,
        ]);
        assert.match(r.out, /^(401|429)$/, v);
      }
      const enc = new TextEncoder();
      // A user name that is not UTF-8: base64 of 0xff 0xfe ':' 'p'.
      const nonUtf8 = btoa(String.fromCharCode(0xff, 0xfe, 0x3a, 0x70));
      const r1 = await raw(
        server!.port,
        enc.encode(
          `GET /top.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${nonUtf8}\r\nConnection: close\r\n\r\n`,
        ),
      );
      assert.match(r1, /^HTTP\/1\.1 401 /);
      const r2 = await raw(
        server!.port,
        enc.encode(
          `GET /top.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${
            "A".repeat(60000)
          }\r\nConnection: close\r\n\r\n`,
        ),
      );
      assert.match(r2, /^HTTP\/1\.1 4(01|31|00) /);
      const head = new Uint8Array([
        ...enc.encode("GET /top.txt HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "),
        0xc3,
        0x28,
        ...enc.encode("\r\nConnection: close\r\n\r\n"),
      ]);
      assert.match(await raw(server!.port, head), /^HTTP\/1\.1 4\d\d /);
    });

    await t.step("curl -u, wget --user --password -r, rclone with a Bearer header", async () => {
      const c = await sh(["curl", "-s", "-u", "alice:wonder land", `${base}/team/t.txt`]);
      assert.match(c.out, /^TEAM-BYTES/);
      const m = `${dir}/mirror`;
      const w = await sh([
        "wget",
        "-q",
        "-r",
        "-np",
        "-nH",
        "-e",
        "robots=off",
        "--auth-no-challenge",
        "--user",
        "alice",
        "--password",
        "wonder land",
        "-P",
        m,
        `${base}/`,
      ]);
      assert.ok(w.code === 0 || w.code === 8, w.err); // 8: some 404 (the pager's links)
      assert.match(await Deno.readTextFile(`${m}/team/t.txt`), /TEAM-BYTES/);
      assert.equal(await Deno.readTextFile(`${m}/pub/staff/s.txt`), "STAFF-BYTES\n");
      for (const p of ["pub/hidden.txt", "drafts", "pub/link"]) {
        await assert.rejects(Deno.stat(`${m}/${p}`), Deno.errors.NotFound, p);
      }
      const r = await sh([
        "rclone",
        "lsf",
        "-R",
        "--config",
        "/dev/null",
        "--http-url",
        base,
        "--header",
        `Authorization: Bearer ${TOKEN}`,
        ":http:team",
      ]);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(r.out.trim().split("\n"), ["t.txt"]);
      const cat = await sh([
        "rclone",
        "cat",
        "--config",
        "/dev/null",
        "--http-url",
        base,
        "--header",
        `Authorization: Bearer ${TOKEN}`,
        ":http:team/t.txt",
      ]);
      assert.match(cat.out, /^TEAM-BYTES/);
    });

    await t.step(
      "SIGHUP re-reads the auth file; a bad one keeps the old and says why",
      async () => {
        assert.equal((await sh(["htpasswd", "-bB", `${dir}/users`, "dave", "d4ve"])).code, 0);
        const from = server!.stderr.lines.length;
        server!.kill("SIGHUP");
        await server!.stderr.waitFor(/credentials reloaded \(4 users, 1 tokens\)/, {
          from,
          timeoutMs: 20000,
        });
        assert.equal(
          (await get(base, "/top.txt", { authorization: basic("dave", "d4ve") })).status,
          200,
        );
        await Deno.writeTextFile(`${dir}/users`, "dave:plaintext\n", { append: true });
        const from2 = server!.stderr.lines.length;
        server!.kill("SIGHUP");
        const line = await server!.stderr.waitFor(/credentials not reloaded.*/, {
          from: from2,
          timeoutMs: 20000,
        });
        assert.match(line[0], /users:4: /);
        assert.equal(
          (await get(base, "/top.txt", { authorization: basic("dave", "d4ve") })).status,
          200,
        );
      },
    );

    await t.step(
      "the access log names the user and never holds the Authorization value",
      async () => {
        const log = async () => await Deno.readTextFile(`${dir}/access.log`);
        for (let i = 0; i < 100 && !(await log()).includes(" - ci-bot "); i++) {
          await new Promise((r) => setTimeout(r, 100)); // the log is flushed every 20 ms
        }
        const text = await log();
        assert.match(text, / - alice \[/);
        assert.match(text, / - ci-bot \[/);
        for (const secret of [TOKEN, btoa("alice:wonder land"), "wonder land", "Basic "]) {
          assert.ok(!text.includes(secret), secret);
        }
      },
    );

    await t.step(
      "past the failed-attempt threshold one address gets 429 + Retry-After across workers; another does not",
      async () => {
        let blocked: string | undefined;
        for (let i = 0; i < 14 && blocked === undefined; i++) {
          const r = await sh([
            "curl",
            "-s",
            "-i",
            "--interface",
            "127.0.0.2",
            "-u",
            `alice:wrong${i}`,
            `http://127.0.0.1:${server!.port}/top.txt`,
          ]);
          if (/^HTTP\/1\.1 429/.test(r.out)) blocked = r.out;
        }
        assert.ok(blocked !== undefined, "never blocked");
        assert.match(blocked, /Retry-After: [1-9]\d*/i);
        // Blocked before any hash: even the right password waits.
        const right = await sh([
          "curl",
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "--interface",
          "127.0.0.2",
          "-u",
          "alice:wonder land",
          `http://127.0.0.1:${server!.port}/top.txt`,
        ]);
        assert.equal(right.out, "429");
        assert.equal((await get(base, "/top.txt", { authorization: ALICE })).status, 200);
      },
    );
  } finally {
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

function alice_(): string {
  return ALICE;
}

Deno.test("access: bad auth files, --auth values and globs exit 2 naming the file:line or the rule", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringhttpd_access_bad_" });
  try {
    await Deno.writeTextFile(`${dir}/plain`, "# ok\nalice:secret\n");
    await Deno.writeTextFile(`${dir}/sha`, "bob:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n");
    await Deno.writeTextFile(
      `${dir}/glob.json`,
      '{ "rules": [{ "path": "/ok/**" }, { "path": "/a/[b", "hidden": true }] }',
    );
    await Deno.writeTextFile(
      `${dir}/list.json`,
      '{ "rules": [{ "path": "/a/**", "access": ["alice"] }] }',
    );
    const cases: Array<[string[], RegExp]> = [
      [["--auth-file", `${dir}/none`], /cannot read .*none: no such file/],
      [["--auth-file", dir], /cannot read .*: not a regular file/],
      [["--auth-file", `${dir}/plain`], /plain:2: plain text or unknown scheme/],
      [["--auth-file", `${dir}/sha`], /sha:1: SHA-1/],
      [["--token-file", `${dir}/plain`], /plain:2: expected the token's SHA-256/],
      [["--auth", "nocolon"], /--auth must be USER:PASSWORD/],
      [["--auth", "a:b", "--config", `${dir}/glob.json`], /rules\[1\]: bad glob "\/a\/\[b"/],
      [["--config", `${dir}/list.json`], /rules\[0\]\.access: a list of users needs credentials/],
      [["--public", "/x/**"], /--public needs --auth/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli([dir, "-p", "0", ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(" "));
      assert.ok(!r.stdout.includes("Listening"), args.join(" "));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
