import assert from "node:assert/strict";
import { credentialFromFlag } from "./htpasswd.ts";
import { hashToken, parseTokens } from "./tokens.ts";
import {
  CredentialCache,
  MAX_HEADER,
  MAX_PASSWORD_BYTES,
  parseAuthorization,
  Verifier,
} from "./verify.ts";
import { deno, LOCK } from "./_test_util.ts";

/** base64 of raw bytes. */
const b64 = (bytes: number[] | Uint8Array) => btoa(String.fromCharCode(...bytes));
const utf8 = (s: string) => new TextEncoder().encode(s);
const basic = (user: string, pw: string) => "Basic " + b64(utf8(`${user}:${pw}`));

Deno.test("parseAuthorization: Basic with UTF-8 names, any scheme case, extra spaces, ':' in the password", () => {
  const name = "\u00e9l\u00e8ve\u{1f600}";
  assert.deepEqual(parseAuthorization(basic(name, "a:b")), {
    kind: "basic",
    user: name,
    password: "a:b",
  });
  assert.deepEqual(parseAuthorization("bAsIc   " + b64(utf8("u:"))), {
    kind: "basic",
    user: "u",
    password: "",
  });
  // Unpadded base64 (some clients) is accepted, like browsers' atob.
  assert.equal(parseAuthorization("Basic " + b64(utf8("ab:c")).replace(/=+$/, "")).kind, "basic");
  assert.deepEqual(parseAuthorization("Bearer  a-b.c_d~e+f/g=="), {
    kind: "bearer",
    token: "a-b.c_d~e+f/g==",
  });
});

Deno.test("parseAuthorization: malformed values are refused with a reason, never a throw", () => {
  const cases: Array<[string, RegExp]> = [
    ["", /SCHEME/],
    ["Basic", /SCHEME/],
    [" Basic YTpi", /SCHEME/],
    ["Basic ", /not base64/],
    ["Basic !!!!", /not base64/],
    ["Basic YTpi=== ", /not base64/],
    ["Basic YTpiZ", /not base64/], // bad length for base64
    ["Basic " + b64(utf8("nocolon")), /no ':'/],
    ["Basic " + b64(utf8(":pw")), /empty user/],
    ["Basic " + b64([0xff, 0xfe, 0x3a, 0x61]), /not UTF-8/], // latin1 name
    ["Basic " + b64([0x61, 0x3a, 0xc3]), /not UTF-8/], // cut UTF-8 in the password
    ["Basic " + b64([0xed, 0xa0, 0x80, 0x3a, 0x61]), /not UTF-8/], // a surrogate
    ["Basic " + b64(utf8("a\u0000b:pw")), /control character/],
    ["Basic \u00ff\u00feYTpi", /not base64/], // raw non-ASCII bytes in the header
    ["Basic " + b64(utf8("u".repeat(256) + ":pw")), /user longer than 255/],
    ["Basic " + b64(utf8("u:" + "p".repeat(MAX_PASSWORD_BYTES + 1))), /password longer/],
    ["Basic " + "A".repeat(MAX_HEADER), /longer than 4096/],
    ["Bearer", /SCHEME/],
    ["Bearer a b", /bad bearer/],
    ["Bearer \u00e9t\u00e9", /bad bearer/],
    ["Bearer " + "a".repeat(513), /bad bearer/],
    ['Digest username="a"', /unsupported scheme/],
    ["Negotiate YTpi", /unsupported scheme/],
  ];
  for (const [value, why] of cases) {
    const r = parseAuthorization(value);
    assert.equal(r.kind, "malformed", JSON.stringify(value.slice(0, 60)));
    assert.match((r as { reason: string }).reason, why, JSON.stringify(value.slice(0, 60)));
  }
});

Deno.test("parseAuthorization: an absurd length is refused before decoding", () => {
  const huge = "Basic " + "QUFB".repeat(1 << 20); // 4 MiB
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) assert.equal(parseAuthorization(huge).kind, "malformed");
  // Generous: decoding 4 MiB a hundred times would take far longer.
  assert.ok(performance.now() - t0 < 2000);
});

Deno.test("CredentialCache: entries expire after the TTL, and the oldest goes when full", () => {
  let now = 1_000;
  const c = new CredentialCache(3, 500, () => now);
  c.set("a", "alice");
  now += 499;
  assert.equal(c.get("a"), "alice");
  now += 1;
  assert.equal(c.get("a"), undefined);
  assert.equal(c.size, 0);
  for (const k of ["1", "2", "3", "4"]) c.set(k, `n${k}`);
  assert.equal(c.size, 3);
  assert.equal(c.get("1"), undefined);
  assert.equal(c.get("4"), "n4");
  // Set again: a fresh TTL, moved to the end.
  now += 400;
  c.set("2", "n2");
  now += 200;
  assert.equal(c.get("3"), undefined);
  assert.equal(c.get("2"), "n2");
  c.clear();
  assert.equal(c.size, 0);
  assert.throws(() => new CredentialCache(0, 1), /size must be >= 1, got 0/);
  assert.throws(() => new CredentialCache(1, 0), /TTL must be > 0 ms, got 0/);
});

Deno.test("Verifier: a kept-alive client pays bcrypt once; concurrent identical values verify once; the cache expires", async () => {
  let now = 0;
  const users = new Map([["al", credentialFromFlag("al:pw", 4)]]);
  using v = new Verifier({ users, cacheTtlMs: 1000, now: () => now });
  const h = basic("al", "pw");
  assert.equal(v.workerRunning, false);
  const p1 = v.verify(h), p2 = v.verify(h);
  assert.equal(p1, p2);
  assert.equal(v.workerRunning, true);
  assert.deepEqual(await p1, { ok: true, name: "al", kind: "basic" });
  assert.equal(v.cached(h), "al");
  assert.equal(v.cacheSize, 1);
  now = 1000;
  assert.equal(v.cached(h), undefined);
  // A wrong password is never cached.
  assert.equal((await v.verify(basic("al", "no"))).ok, false);
  assert.equal(v.cached(basic("al", "no")), undefined);
});

Deno.test("Verifier: the queue is bounded (busy), malformed and unknown never reach a hash", async () => {
  const users = new Map([["al", credentialFromFlag("al:pw", 4)]]);
  using v = new Verifier({ users, maxPending: 1 });
  const first = v.verify(basic("al", "1"));
  assert.deepEqual(await v.verify(basic("al", "2")), { ok: false, reason: "busy" });
  assert.equal((await first).ok, false);
  assert.deepEqual(await v.verify("Basic !!"), { ok: false, reason: "malformed" });
  // Bearer without tokens configured: malformed for this server.
  assert.deepEqual(await v.verify("Bearer abc"), { ok: false, reason: "malformed" });
  using none = new Verifier({ users: new Map() });
  assert.deepEqual(await none.verify(basic("x", "y")), { ok: false, reason: "unknown" });
  assert.equal(none.workerRunning, false);
});

Deno.test("Verifier: Bearer tokens, and update() swaps the credentials and forgets the cache", async () => {
  const tokens = parseTokens(utf8(`ci:${await hashToken("t0k")}\n`), "t");
  const users = new Map([["al", credentialFromFlag("al:pw", 4)]]);
  using v = new Verifier({ users, tokens });
  assert.equal(v.bearer, true);
  assert.deepEqual(await v.verify("Bearer t0k"), { ok: true, name: "ci", kind: "bearer" });
  assert.deepEqual(await v.verify("bearer t0k"), { ok: true, name: "ci", kind: "bearer" });
  assert.equal(v.cached("Bearer t0k"), "ci");
  assert.deepEqual(await v.verify("Bearer t0k"), { ok: true, name: "ci", kind: "bearer" });
  assert.deepEqual(await v.verify("Bearer nope"), { ok: false, reason: "wrong" });
  assert.equal((await v.verify(basic("al", "pw"))).ok, true);
  v.update(new Map([["bo", credentialFromFlag("bo:pw2", 4)]]));
  assert.equal(v.bearer, false);
  assert.equal(v.cached(basic("al", "pw")), undefined);
  assert.deepEqual(await v.verify(basic("al", "pw")), { ok: false, reason: "unknown" });
  assert.equal((await v.verify(basic("bo", "pw2"))).ok, true);
});

Deno.test("Verifier: close() terminates the verify Worker (the process then exits by itself)", async () => {
  const v = new Verifier({ users: new Map([["al", credentialFromFlag("al:pw", 4)]]) });
  assert.equal((await v.verify(basic("al", "pw"))).ok, true);
  v.close();
  assert.equal(v.workerRunning, false);
  assert.deepEqual(await v.verify(basic("al", "other")), { ok: false, reason: "wrong" });
  // A Worker left running keeps a Deno process alive: a child that
  // verifies, closes and then must exit on its own shows none leaked.
  const mod = new URL("./verify.ts", import.meta.url);
  const hp = new URL("./htpasswd.ts", import.meta.url);
  const r = await deno(
    ["run", `--lock=${LOCK}`, "--allow-read", "-"],
    `
    import { Verifier } from "${mod}";
    import { credentialFromFlag } from "${hp}";
    const v = new Verifier({ users: new Map([["al", credentialFromFlag("al:pw", 4)]]) });
    const ok = (await v.verify("Basic " + btoa("al:pw"))).ok;
    v.close();
    console.log("verified", ok, v.workerRunning);
  `,
    60_000,
  );
  assert.equal(r.stdout, "verified true false\n", r.stderr);
  assert.equal(r.code, 0, "the child did not exit: a Worker leaked");
});

Deno.test("Verifier: bcrypt runs off this thread: the event loop keeps turning during a cost-10 verification", async () => {
  const users = new Map([["al", credentialFromFlag("al:pw", 10)]]);
  using v = new Verifier({ users });
  await v.verify(basic("al", "warm-up")); // Worker start and JIT
  let ticks = 0, done = false;
  const turning = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, 0));
      ticks++;
    }
  })();
  const out = await v.verify(basic("al", "pw"));
  done = true;
  await turning;
  assert.equal(out.ok, true);
  // Verified on this thread, no timer could have run until it finished.
  assert.ok(ticks >= 3, `only ${ticks} event-loop turns during the verification`);
});
