import assert from "node:assert/strict";
import { loadAuth, reloadAuth } from "./config.ts";
import { credentialFromFlag } from "./htpasswd.ts";
import { hashToken } from "./tokens.ts";
import { Verifier } from "./verify.ts";
import { htpasswd, withDir } from "./_test_util.ts";

const basic = (u: string, p: string) => "Basic " + btoa(`${u}:${p}`);

Deno.test("loadAuth: htpasswd file + --auth users + token file; a user in both is refused", async () => {
  await withDir(async (dir) => {
    await htpasswd("-cbB", `${dir}/users`, "alice", "a");
    await Deno.writeTextFile(`${dir}/tokens`, `ci:${await hashToken("tok")}\n`);
    const data = await loadAuth({
      authFile: `${dir}/users`,
      tokenFile: `${dir}/tokens`,
      flags: [credentialFromFlag("bob:b", 4)],
    });
    assert.deepEqual([...data.users.keys()], ["alice", "bob"]);
    assert.equal(data.tokens?.size, 1);
    await assert.rejects(
      loadAuth({ authFile: `${dir}/users`, flags: [credentialFromFlag("alice:x", 4)] }),
      /--auth "alice": the user is also in .*users/,
    );
    const twice = [credentialFromFlag("c:1", 4), credentialFromFlag("c:2", 4)];
    await assert.rejects(loadAuth({ flags: twice }), /the user is given twice/);
    await assert.rejects(
      loadAuth({ tokenFile: `${dir}/none` }),
      /cannot read .*none: no such file/,
    );
  });
});

Deno.test("reloadAuth: a good file replaces the credentials; a bad or missing one keeps the old and says why", async () => {
  await withDir(async (dir) => {
    const file = `${dir}/users`;
    await htpasswd("-cbB", file, "alice", "a");
    const src = { authFile: file };
    using v = new Verifier({ users: (await loadAuth(src)).users });
    assert.equal((await v.verify(basic("alice", "a"))).ok, true);

    // A refused scheme: nothing changes, the reason names the line.
    await Deno.writeTextFile(file, await htpasswd("-nbs", "carol", "c"), { append: true });
    const bad = await reloadAuth(src, v);
    assert.equal(bad.ok, false);
    assert.match(
      (bad as { reason: string }).reason,
      /users:2: SHA-1 .* \(keeping the credentials loaded before\)$/,
    );
    assert.equal(v.cached(basic("alice", "a")), "alice");
    assert.equal((await v.verify(basic("alice", "a"))).ok, true);

    // A missing file: the same.
    await Deno.rename(file, `${file}.moved`);
    const gone = await reloadAuth(src, v);
    assert.match((gone as { reason: string }).reason, /no such file/);
    assert.equal(v.cached(basic("alice", "a")), "alice");

    // Fixed: bob replaces alice, and alice's cached success is forgotten.
    await Deno.writeTextFile(file, await htpasswd("-nbm", "bob", "b"));
    assert.deepEqual(await reloadAuth(src, v), { ok: true, users: 1, tokens: 0 });
    assert.equal(v.cached(basic("alice", "a")), undefined);
    assert.deepEqual(await v.verify(basic("alice", "a")), { ok: false, reason: "unknown" });
    assert.equal((await v.verify(basic("bob", "b"))).ok, true);

    // A token file: a bad line keeps the old tokens too.
    const tokens = `${dir}/tokens`;
    await Deno.writeTextFile(tokens, `ci:${await hashToken("tok")}\n`);
    const both = { authFile: file, tokenFile: tokens };
    assert.deepEqual(await reloadAuth(both, v), { ok: true, users: 1, tokens: 1 });
    await Deno.writeTextFile(tokens, "ci:not-a-hash\n");
    assert.match((await reloadAuth(both, v) as { reason: string }).reason, /tokens:1: expected/);
    assert.equal((await v.verify("Bearer tok")).ok, true);
  });
});
