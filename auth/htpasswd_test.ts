import assert from "node:assert/strict";
import { AuthFileError, credentialFromFlag, parseHtpasswd, readHtpasswd } from "./htpasswd.ts";
import { Verifier } from "./verify.ts";
import { deno, htpasswd, LOCK, withDir } from "./_test_util.ts";

/** UTF-8 names and password (prefer-ascii: escapes). */
const JURGEN = "j\u00fcrgen", ZOE = "zo\u00eb", PASS = "p\u00e4ssw\u00f6rd";
const enc = (s: string) => new TextEncoder().encode(s);
const basic = (user: string, pw: string) =>
  "Basic " + btoa(String.fromCharCode(...enc(`${user}:${pw}`)));

Deno.test("htpasswd: files made by Debian's htpasswd -B and -m verify, wrong passwords do not", async () => {
  await withDir(async (dir) => {
    const file = `${dir}/users`;
    await htpasswd("-cbB", file, "alice", "s3cret");
    await htpasswd("-bB", "-C", "10", file, "bob", "b:o:b");
    await htpasswd("-bm", file, "carol", "apr1-pass");
    await htpasswd("-b", file, JURGEN, PASS); // default scheme: apr1
    await htpasswd("-bB", file, ZOE, PASS);
    const users = await readHtpasswd(file);
    assert.deepEqual([...users.keys()], ["alice", "bob", "carol", JURGEN, ZOE]);
    assert.match(users.get("alice")!.hash, /^\$2y\$05\$/);
    assert.match(users.get("bob")!.hash, /^\$2y\$10\$/);
    assert.equal(users.get("carol")!.scheme, "apr1");
    assert.equal(users.get(JURGEN)!.scheme, "apr1");
    using v = new Verifier({ users });
    for (
      const [user, pw] of [["alice", "s3cret"], ["bob", "b:o:b"], ["carol", "apr1-pass"], [
        JURGEN,
        PASS,
      ], [ZOE, PASS]]
    ) {
      assert.deepEqual(await v.verify(basic(user, pw)), { ok: true, name: user, kind: "basic" });
      assert.deepEqual(await v.verify(basic(user, pw + "x")), { ok: false, reason: "wrong" }, user);
      assert.deepEqual(await v.verify(basic(user, "")), { ok: false, reason: "wrong" }, user);
    }
    assert.deepEqual(await v.verify(basic("mallory", "s3cret")), { ok: false, reason: "unknown" });
  });
});

Deno.test("htpasswd: every other scheme is refused with its line number and why", async () => {
  const line = async (flag: string, user: string) =>
    (await htpasswd("-nb" + flag, user, "pw")).trim();
  const good = (await htpasswd("-nbB", "ok", "pw")).trim();
  const lines = [
    "# a comment, then a blank line",
    "",
    good, // 3
    await line("s", "sha"), // 4 {SHA}
    await line("d", "des"), // 5 crypt
    await line("p", "plain"), // 6 plain
    await line("2", "sha256"), // 7 $5$
    await line("5", "sha512"), // 8 $6$
    "md5crypt:$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", // 9 MD5-crypt (openssl passwd -1)
    "badbcrypt:$2y$05$tooShort", // 10
    "nocolon", // 11
    ":$apr1$dS/TidQo$MRSz4eNgjXYy.LMY9O0Z21", // 12 empty user
    good, // 13 duplicate
    "hugecost:$2y$99$" + "a".repeat(53), // 14
  ];
  assert.match(lines[3], /:\{SHA\}/);
  assert.match(lines[6], /:\$5\$/);
  assert.match(lines[7], /:\$6\$/);
  await withDir(async (dir) => {
    const file = `${dir}/users`;
    await Deno.writeTextFile(file, lines.join("\r\n") + "\r\n");
    const e = await readHtpasswd(file).then(() => undefined, (e) => e);
    assert.ok(e instanceof AuthFileError, String(e));
    const got = e.problems.map((p) => [p.line, p.reason]);
    const want: Array<[number, RegExp]> = [
      [4, /SHA-1 \(\{SHA\}\)/],
      [5, /DES crypt/],
      [6, /plain text/],
      [7, /SHA-crypt \(\$5\$\)/],
      [8, /SHA-crypt \(\$6\$\)/],
      [9, /MD5-crypt/],
      [10, /malformed bcrypt/],
      [11, /no ':'/],
      [12, /empty user name/],
      [13, /already on line 3/],
      [14, /cost must be 4-31, got 99/],
    ];
    assert.equal(got.length, want.length, JSON.stringify(got));
    for (let i = 0; i < want.length; i++) {
      assert.equal(got[i][0], want[i][0]);
      assert.match(got[i][1] as string, want[i][1]);
    }
    assert.match(e.message, new RegExp(`^${file}:4: SHA-1`));
    assert.match(e.message, /re-create it with htpasswd -B/);
  });
});

Deno.test("htpasswd: a line that is not UTF-8 is refused with its number", () => {
  const bytes = new Uint8Array([
    ...enc("a:$apr1$dS/TidQo$MRSz4eNgjXYy.LMY9O0Z21\n"),
    0x6a,
    0xfc,
    0x3a,
    0x78,
    0x0a,
  ]);
  assert.throws(() => parseHtpasswd(bytes, "f"), /^AuthFileError: f:2: not UTF-8$/);
});

Deno.test("htpasswd: a missing file, a directory, an unreadable file fail with the reason", async () => {
  await withDir(async (dir) => {
    await assert.rejects(readHtpasswd(`${dir}/none`), /cannot read .*none: no such file/);
    await assert.rejects(readHtpasswd(dir), /not a regular file/);
    // Unreadable: the tests run as root, which reads any mode; a process
    // denied the read (Deno permissions) sees what a non-root user would.
    await Deno.writeTextFile(`${dir}/users`, await htpasswd("-nbB", "a", "b"));
    const r = await deno(
      [
        "run",
        `--lock=${LOCK}`,
        `--allow-read=${new URL(".", import.meta.url).pathname}`,
        "--allow-env",
        "-",
      ],
      `import { readHtpasswd } from "${new URL("./htpasswd.ts", import.meta.url)}";
      try { await readHtpasswd(${JSON.stringify(`${dir}/users`)}); console.log("read"); }
      catch (e) { console.log(e.message); }`,
    );
    assert.match(r.stdout, /cannot read .*users: permission denied/, r.stderr);
  });
});

Deno.test("--auth USER:PASSWORD: hashed with bcrypt at start (the password may hold ':'), verified in the Worker", async () => {
  const c = credentialFromFlag("ana:pa:ss:w\u00f6rd", 4);
  assert.equal(c.user, "ana");
  assert.equal(c.scheme, "bcrypt");
  assert.match(c.hash, /^\$2b\$04\$[./A-Za-z0-9]{53}$/);
  assert.ok(!c.hash.includes("pa:ss"));
  assert.notEqual(credentialFromFlag("ana:x", 4).hash, credentialFromFlag("ana:x", 4).hash);
  using v = new Verifier({ users: new Map([["ana", c]]) });
  assert.equal((await v.verify(basic("ana", "pa:ss:w\u00f6rd"))).ok, true);
  assert.equal((await v.verify(basic("ana", "pa:ss"))).ok, false);
  assert.throws(() => credentialFromFlag("ana"), /--auth must be USER:PASSWORD, got no ':'/);
  assert.throws(() => credentialFromFlag(":pw"), /empty user name/);
  assert.throws(() => credentialFromFlag("ana:"), /empty password for "ana"/);
  assert.throws(() => credentialFromFlag("a\tb:pw"), /control character/);
  assert.throws(() => credentialFromFlag("ana:" + "x".repeat(73)), /longer than 72 bytes/);
  assert.throws(() => credentialFromFlag("ana:pw", 3), /cost must be 4-31, got 3/);
  // The message never carries the password.
  try {
    credentialFromFlag("ana:" + "S3CRET".repeat(13));
  } catch (e) {
    assert.ok(!(e as Error).message.includes("S3CRET"));
  }
});
