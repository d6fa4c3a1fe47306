/**
 * The path-rule matcher: first match per setting, inheritance of the
 * protective settings, `--public` after the file's rules, raw paths, the
 * collector's filter and the symlink check; and the access stage on a
 * handler (hidden exactly like missing, deny, list off).
 */
import assert from "node:assert/strict";
import { PathRuleError, PathRules } from "./path_rules.ts";
import { createHandler } from "./handler.ts";
import type { RequestHead } from "./types.ts";

Deno.test("path rules: first match per setting; exceptions go first", () => {
  const r = new PathRules({
    auth: true,
    rules: [
      { path: "/docs/public/**", access: "public" },
      { path: "/docs/**", access: ["alice"], cacheControl: "no-cache" },
      { path: "/docs/*.html", cacheControl: "max-age=60", headers: { "X-A": "1" } },
      { path: "/**", headers: { "X-A": "2", "X-B": "3", Server: null } },
    ],
  });
  assert.equal(r.rulesFor("/docs/public/a").access, "public");
  assert.deepEqual([...(r.rulesFor("/docs/a.html").access as Set<string>)], ["alice"]);
  // cacheControl from the first rule that sets it; X-A from the first naming it.
  const s = r.rulesFor("/docs/a.html");
  assert.equal(s.cacheControl, "no-cache");
  assert.deepEqual(s.headers, [["Cache-Control", "no-cache"], ["X-A", "1"], ["X-B", "3"]]);
  assert.deepEqual(s.remove, ["server"]);
  // Not matched by any access rule: credentials are needed.
  assert.equal(r.rulesFor("/other").access, "authenticated");
  assert.equal(new PathRules({}).rulesFor("/x").access, "public");
});

Deno.test("path rules: access and hidden cover everything below a matching folder; list and headers do not", () => {
  const r = new PathRules({
    auth: true,
    rules: [
      { path: "/private", access: ["alice"] },
      { path: "/secret", hidden: true },
      { path: "/flat", list: false, headers: { "X-Flat": "1" } },
    ],
  });
  assert.ok(!r.mayRead("/private/deep/x.txt", "bob"));
  assert.ok(r.mayRead("/private/deep/x.txt", "alice"));
  assert.equal(r.rulesFor("/secret/a/b").hidden, true);
  assert.equal(r.rulesFor("/secret/").hidden, true);
  assert.equal(r.rulesFor("/secretive").hidden, false);
  assert.equal(r.rulesFor("/flat").list, false);
  assert.equal(r.rulesFor("/flat/sub").list, undefined);
  assert.deepEqual(r.rulesFor("/flat/sub").headers, []);
});

Deno.test("path rules: --public globs come after the file's rules", () => {
  const r = new PathRules({
    auth: true,
    rules: [{ path: "/pub/secret/**", access: ["alice"] }],
    public: ["/pub/**"],
  });
  assert.equal(r.rulesFor("/pub/a.css").access, "public");
  assert.ok(!r.mayRead("/pub/secret/k", undefined));
});

Deno.test("path rules: raw request paths decode once; bad ones are left to the resolver", () => {
  const r = new PathRules({ rules: [{ path: "/a b/**", hidden: true }] });
  assert.equal(r.forRequest("/a%20b/x")?.hidden, true);
  assert.equal(r.forRequest("/a%20b/")?.hidden, true);
  assert.equal(r.forRequest("/a%2fb"), null);
  assert.equal(r.forRequest("/a/../b"), null);
  // Not UTF-8: matched in its lossy spelling, so the folder's rule still holds.
  assert.equal(r.forRequest("/a%20b/%ff%fe")?.hidden, true);
});

Deno.test("path rules: a bad glob or a user list without credentials names the rule", () => {
  assert.throws(
    () => new PathRules({ rules: [{ path: "/ok" }, { path: "/a/[b", hidden: true }] }),
    (e: unknown) =>
      e instanceof PathRuleError && /^rules\[1\]: bad glob "\/a\/\[b"/.test(e.message),
  );
  assert.throws(
    () => new PathRules({ rules: [{ path: "x" }] }),
    /rules\[0\]: a path glob must start with "\/"/,
  );
  assert.throws(() => new PathRules({ public: ["/a/{b"] }), /--public "\/a\/\{b": bad glob/);
  assert.throws(
    () => new PathRules({ rules: [{ path: "/a", access: ["al"] }] }),
    /rules\[0\]\.access: a list of users needs credentials/,
  );
});

Deno.test("path rules: the entry filter and the symlink check", () => {
  const r = new PathRules({
    auth: true,
    rules: [{ path: "/d/h.txt", hidden: true }, { path: "/team/**", access: ["alice"] }, {
      path: "/**",
      access: "public",
    }],
  });
  const anon = r.entryFilter("/d/", undefined)!;
  assert.ok(anon("a.txt"));
  assert.ok(!anon("h.txt"));
  const root = r.entryFilter("/", undefined)!;
  assert.ok(!root("team"));
  assert.ok(r.entryFilter("/", "alice")!("team"));
  // A folder reached through a link: names are judged where they really are too.
  assert.ok(!r.entryFilter("/d/", "bob", "/team")!("x"));
  assert.ok(!r.sameProtection("/d/link", "/team"));
  assert.ok(r.sameProtection("/d/a", "/e/b"));
  assert.equal(r.viewerKey(undefined), "\0-");
  assert.equal(new PathRules({ rules: [{ path: "/x", hidden: true }] }).viewerKey("a"), "");
  assert.equal(
    new PathRules({ rules: [{ path: "/x", headers: { A: "1" } }] }).entryFilter("/", undefined),
    undefined,
  );
});

const req = (path: string, method = "GET", headers: string[] = ["host", "x"]): RequestHead => ({
  method,
  target: path,
  path,
  query: "",
  minor: 1,
  headers,
});

Deno.test("createHandler with path rules: hidden like missing, deny 403, list off, headers per path", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/sec`);
    await Deno.mkdir(`${root}/flat`);
    await Deno.writeTextFile(`${root}/sec/a.txt`, "a");
    await Deno.writeTextFile(`${root}/flat/b.txt`, "b");
    await Deno.writeTextFile(`${root}/no.txt`, "no");
    const handle = await createHandler({
      root,
      pathRules: {
        rules: [
          { path: "/sec", hidden: true },
          { path: "/no.txt", access: "deny" },
          { path: "/flat", list: false, headers: { "X-Flat": "yes" } },
        ],
      },
    });
    const text = async (r: RequestHead) => {
      const reply = await handle(r);
      reply.release?.();
      const body = reply.body.map((b) => b instanceof Uint8Array ? new TextDecoder().decode(b) : "")
        .join("");
      return { status: reply.status, headers: reply.headers, body };
    };
    for (
      const [hidden, missing] of [["/sec", "/nope"], ["/sec/", "/nope/"], [
        "/sec/a.txt",
        "/nope/a.txt",
      ]]
    ) {
      for (const method of ["GET", "HEAD", "OPTIONS"]) {
        assert.deepEqual(
          await text(req(hidden, method)),
          await text(req(missing, method)),
          `${method} ${hidden}`,
        );
      }
    }
    assert.equal((await text(req("/no.txt"))).status, 403);
    assert.equal((await text(req("/no-such.txt"))).status, 404);
    const flat = await text(req("/flat/"));
    assert.equal(flat.status, 404);
    assert.deepEqual(flat.headers.find(([k]) => k === "X-Flat"), ["X-Flat", "yes"]);
    assert.equal((await text(req("/flat/b.txt"))).body, "b");
    const list = await text(req("/"));
    assert.equal(list.status, 200);
    assert.ok(!list.body.includes("sec"), list.body);
    assert.ok(list.body.includes("no.txt") === false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
