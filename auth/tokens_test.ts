import assert from "node:assert/strict";
import { AuthFileError } from "./htpasswd.ts";
import { hashToken, MAX_TOKEN, parseTokens, readTokens, TokenSet } from "./tokens.ts";
import { deno, LOCK, withDir } from "./_test_util.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const CLI = new URL("./tokens.ts", import.meta.url).pathname;

Deno.test("tokens: hashToken is SHA-256 hex (FIPS 180-2 test vector)", async () => {
  assert.equal(
    await hashToken("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("tokens: a file of NAME:SHA256HEX verifies its tokens, and nothing else", async () => {
  const text = [
    "# deploy bots",
    `ci:${await hashToken("tok-ci_1.2~3+4/5==")}`,
    "",
    `rclone:${(await hashToken("Zm9vYmFy")).toUpperCase()}\r`,
  ].join("\n");
  const set = parseTokens(enc(text), "tokens");
  assert.equal(set.size, 2);
  assert.equal(await set.verify("tok-ci_1.2~3+4/5=="), "ci");
  assert.equal(await set.verify("Zm9vYmFy"), "rclone");
  assert.equal(await set.verify("Zm9vYmFz"), undefined);
  assert.equal(await set.verify(""), undefined);
  assert.equal(await set.verify("has space"), undefined);
  assert.equal(await set.verify("x".repeat(MAX_TOKEN + 1)), undefined);
  // Sent to another thread as plain data, rebuilt there.
  const copy = new TokenSet(structuredClone(set.entries()));
  assert.equal(await copy.verify("Zm9vYmFy"), "rclone");
});

Deno.test("tokens: bad lines are refused with their numbers", async () => {
  const h = await hashToken("a");
  const text = [
    `ok:${h}`,
    "nocolon",
    `bad name:${await hashToken("b")}`,
    "short:abcd",
    `ok:${await hashToken("c")}`,
    `other:${h}`,
  ].join("\n");
  const e = (() => {
    try {
      parseTokens(enc(text), "t.txt");
      return undefined;
    } catch (e) {
      return e;
    }
  })();
  assert.ok(e instanceof AuthFileError);
  assert.deepEqual(e.problems.map((p) => p.line), [2, 3, 4, 5, 6]);
  assert.match(e.message, /^t\.txt:2: expected NAME:SHA256HEX/);
  assert.match(e.message, /t\.txt:4: expected the token's SHA-256 as 64 hex digits/);
  assert.match(e.message, /t\.txt:5: name ok already on line 1/);
  assert.match(e.message, /t\.txt:6: same token as line 1/);
  assert.throws(() => parseTokens(new Uint8Array([0x61, 0x3a, 0xff]), "t"), /t:1: not UTF-8/);
  await withDir(async (dir) => {
    await assert.rejects(readTokens(`${dir}/missing`), /cannot read .*missing: no such file/);
  });
});

Deno.test("tokens: the CLI makes a random token and its line, or hashes one from stdin", async () => {
  const made = await deno(["run", `--lock=${LOCK}`, CLI, "ci-bot"]);
  assert.equal(made.code, 0, made.stderr);
  const token = /shown once\): (\S+)/.exec(made.stderr)?.[1];
  assert.ok(token !== undefined && token.length >= 43, made.stderr);
  assert.equal(made.stdout, `ci-bot:${await hashToken(token)}\n`);
  const set = parseTokens(enc(made.stdout), "new");
  assert.equal(await set.verify(token), "ci-bot");
  const given = await deno(["run", `--lock=${LOCK}`, CLI, "ops", "-"], "my.token\n");
  assert.equal(given.stdout, `ops:${await hashToken("my.token")}\n`);
  assert.equal(given.stderr, "");
  const bad = await deno(["run", `--lock=${LOCK}`, CLI, "bad name"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^usage: /);
});
