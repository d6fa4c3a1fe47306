/**
 * WebDAV PROPFIND against the path rules in the real server (the CLI with
 * `--webdav` and a config file), spoken to with curl: Depth 1 of the root
 * never names a hidden or protected folder to an anonymous client, the
 * protected folder's user sees it; a hidden folder answers 404 and a
 * protected one 401 at any depth; a folder whose listing is off (`list:
 * false`) is not listed through PROPFIND either (403, as with listings off).
 */
import assert from "node:assert/strict";
import { startServer } from "./_server.ts";

const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_dav_access_" }));
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const root = `${dir}/site`;
for (const d of ["pub", "secret-dir", "team-dir", "closed-dir"]) {
  await Deno.mkdir(`${root}/${d}`, { recursive: true });
  await Deno.writeTextFile(`${root}/${d}/inner-${d}.txt`, "x\n");
}
await Deno.writeTextFile(
  `${dir}/rules.jsonc`,
  JSON.stringify({
    rules: [
      { path: "/secret-dir", hidden: true },
      { path: "/team-dir", access: ["alice"] },
      { path: "/closed-dir", list: false },
      { path: "/**", access: "public" },
    ],
  }),
);

async function propfind(base: string, path: string, depth: string, user?: string) {
  const r = await new Deno.Command("curl", {
    args: [
      "--noproxy",
      "*",
      "-sS",
      "-X",
      "PROPFIND",
      "-H",
      `Depth: ${depth}`,
      ...(user ? ["-u", user] : []),
      "-w",
      "\n%{http_code}",
      base + path,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
  const out = new TextDecoder().decode(r.stdout);
  const cut = out.lastIndexOf("\n");
  return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
}

Deno.test("PROPFIND: hidden, protected and unlisted folders stay so for anonymous clients; alice sees hers", async () => {
  await using server = await startServer({
    root,
    flags: [
      "--workers",
      "1",
      "--webdav",
      "--config",
      `${dir}/rules.jsonc`,
      "--auth",
      "alice:wonder",
    ],
  });
  const base = `http://${server.hostname}:${server.port}`;
  const anon = await propfind(base, "/", "1");
  assert.equal(anon.status, 207);
  assert.match(anon.body, /<D:href>\/pub\/<\/D:href>/);
  assert.match(anon.body, /closed-dir/, "an unlisted folder is still named in its parent");
  assert.doesNotMatch(anon.body, /secret-dir|team-dir/);
  const hers = await propfind(base, "/", "1", "alice:wonder");
  assert.equal(hers.status, 207);
  assert.match(hers.body, /team-dir/);
  assert.doesNotMatch(hers.body, /secret-dir/);
  for (const depth of ["0", "1"]) {
    assert.equal(
      (await propfind(base, "/secret-dir/", depth)).status,
      404,
      `hidden, depth ${depth}`,
    );
    assert.equal(
      (await propfind(base, "/team-dir/", depth)).status,
      401,
      `protected, depth ${depth}`,
    );
    assert.equal((await propfind(base, "/team-dir/", depth, "alice:wonder")).status, 207);
  }
  const closed = await propfind(base, "/closed-dir/", "1");
  assert.equal(closed.status, 403, "listing off: no member names");
  assert.doesNotMatch(closed.body, /inner-closed/);
  assert.equal((await propfind(base, "/closed-dir/", "0")).status, 207);
});
