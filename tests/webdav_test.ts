/**
 * WebDAV and writes through the real CLI and real clients (rclone, cadaver,
 * curl). Request bodies reach the write stage once the engine streams them;
 * until then these cover the read side and the refusals.
 */
import assert from "node:assert/strict";
import { startCli } from "./_harness.ts";
import { TEMP_PREFIX } from "../write/atomic.ts";

const dec = new TextDecoder();

async function run(cmd: string, args: string[], stdin?: string) {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { HOME: Deno.env.get("HOME") ?? "/tmp", RCLONE_CONFIG: "/dev/null" },
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function share(): Promise<string> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_dav_" }));
  await Deno.mkdir(`${root}/sub dir`);
  await Deno.writeTextFile(`${root}/sub dir/a.txt`, "hello");
  await Deno.writeTextFile(`${root}/b.txt`, "b");
  await Deno.writeTextFile(`${root}/.hidden`, "h");
  await Deno.writeTextFile(`${root}/${TEMP_PREFIX}0`, "partial");
  return root;
}

Deno.test("a read-only WebDAV share (--webdav) lists with rclone and cadaver, hiding dotfiles and temporary uploads", async () => {
  const root = await share();
  try {
    await using server = await startCli([root, "--webdav", "--workers", "1"]);
    const url = server.origin + "/";
    const ls = await run("rclone", ["lsf", "-R", "--webdav-url", url, ":webdav:"]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(ls.stdout.trim().split("\n").sort(), ["b.txt", "sub dir/", "sub dir/a.txt"]);
    const cat = await run("rclone", ["cat", "--webdav-url", url, ":webdav:sub dir/a.txt"]);
    assert.equal(cat.stdout, "hello");
    const cad = await run("cadaver", [url], "ls\nls 'sub dir'\nquit\n");
    assert.match(cad.stdout, /Coll:\s+sub dir/);
    assert.match(cad.stdout, /b\.txt\s+1 /);
    assert.match(cad.stdout, /a\.txt\s+5 /);
    assert.doesNotMatch(cad.stdout, /hidden|ringhttpd-part/);
    // Writes are off: a PUT is 405 and nothing appears.
    const put = await fetch(url + "new.txt", { method: "PUT", body: "x" });
    await put.body?.cancel();
    assert.equal(put.status, 405);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--upload without an authenticated user writes nothing: PUT, MKCOL, DELETE, MOVE get 403", async () => {
  const root = await share();
  try {
    await using server = await startCli([root, "--upload", "/**", "--workers", "1"]);
    const url = server.origin;
    const tries: Array<[string, string, Record<string, string>]> = [
      ["PUT", "/new.txt", {}],
      ["PUT", "/sub%20dir/a.txt", {}],
      ["MKCOL", "/d/", {}],
      ["DELETE", "/b.txt", {}],
      ["MOVE", "/b.txt", { destination: `${url}/c.txt` }],
      ["COPY", "/b.txt", { destination: `${url}/c.txt` }],
    ];
    for (const [method, path, headers] of tries) {
      const r = await fetch(url + path, {
        method,
        headers,
        body: method === "PUT" ? "x" : undefined,
      });
      await r.body?.cancel();
      assert.equal(r.status, 403, `${method} ${path}`);
    }
    const names = [...Deno.readDirSync(root)].map((e) => e.name).sort();
    assert.deepEqual(names, [".hidden", "b.txt", "sub dir"]); // the crash leftover was swept
    assert.equal(await Deno.readTextFile(`${root}/sub dir/a.txt`), "hello");
    // The share is mountable (WebDAV on with --upload).
    const opt = await fetch(url + "/", { method: "OPTIONS" });
    await opt.body?.cancel();
    assert.equal(opt.headers.get("dav"), "1");
    assert.match(opt.headers.get("allow") ?? "", /PUT, DELETE, MKCOL, COPY, MOVE/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
