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

Deno.test("--upload through the CLI: anonymous writes nothing (401, or 403 on a public path); the user writes with curl -T and rclone", async () => {
  const root = await share();
  await Deno.mkdir(`${root}/up`);
  await Deno.writeTextFile(`${root}/up/${TEMP_PREFIX}1`, "left by a crash");
  try {
    await using server = await startCli([
      root,
      "--upload",
      "/up/**",
      "--auth",
      "al:secret",
      "--public",
      "/up/pub/**",
      "--workers",
      "1",
    ]);
    const url = server.origin;
    const tries: Array<[string, string, Record<string, string>, number]> = [
      ["PUT", "/up/new.txt", {}, 401],
      ["PUT", "/up/pub/new.txt", {}, 403], // public and in the glob: still no anonymous write
      ["MKCOL", "/up/d/", {}, 401],
      ["DELETE", "/b.txt", {}, 401],
      ["MOVE", "/b.txt", { destination: `${url}/up/c.txt` }, 401],
    ];
    for (const [method, path, headers, want] of tries) {
      const r = await fetch(url + path, {
        method,
        headers,
        body: method === "PUT" ? "x" : undefined,
      });
      await r.body?.cancel();
      assert.equal(r.status, want, `${method} ${path}`);
    }
    // Authenticated, but outside the --upload glob: 403.
    const auth = { authorization: `Basic ${btoa("al:secret")}` };
    const outside = await fetch(url + "/b.txt", { method: "PUT", headers: auth, body: "x" });
    await outside.body?.cancel();
    assert.equal(outside.status, 403);
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name).sort(), [
      ".hidden",
      `${TEMP_PREFIX}0`, // outside the upload folders: not ours to sweep (and never served)
      "b.txt",
      "sub dir",
      "up",
    ]);
    // The upload folder's leftover from a crash was removed at start.
    assert.deepEqual([...Deno.readDirSync(`${root}/up`)], []);
    assert.equal(await Deno.readTextFile(`${root}/b.txt`), "b");
    // curl -T with credentials, through the worker's epoll engine.
    const file = `${root}/sub dir/a.txt`;
    const curl = await run("curl", [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-u",
      "al:secret",
      "-T",
      file,
      `${url}/up/x/a.txt`,
    ]);
    assert.equal(curl.stdout, "201", curl.stderr);
    assert.equal(await Deno.readTextFile(`${root}/up/x/a.txt`), "hello");
    // rclone copy, then check, with the webdav backend and the user's password.
    const pass = (await run("rclone", ["obscure", "secret"])).stdout.trim();
    const remote = ["--webdav-url", `${url}/up/`, "--webdav-user", "al", "--webdav-pass", pass];
    const copy = await run("rclone", ["copy", `${root}/sub dir`, ...remote, ":webdav:rc"]);
    assert.equal(copy.code, 0, copy.stderr);
    const check = await run("rclone", [
      "check",
      "--download",
      `${root}/sub dir`,
      ...remote,
      ":webdav:rc",
    ]);
    assert.equal(check.code, 0, check.stderr);
    // The share is mountable (WebDAV on with --upload).
    const opt = await fetch(url + "/", { method: "OPTIONS", headers: auth });
    await opt.body?.cancel();
    assert.equal(opt.headers.get("dav"), "1");
    assert.match(opt.headers.get("allow") ?? "", /PUT, DELETE, MKCOL, COPY, MOVE/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--upload without authentication is a usage error (exit 2)", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir());
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../mod.ts", import.meta.url).pathname, root, "--upload", "/**"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2);
    assert.match(dec.decode(out.stderr), /--upload needs authentication/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--upload without write permission (no re-exec possible) exits 1 naming --allow-write", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir());
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-net",
        "--allow-env",
        "--allow-sys",
        "--allow-ffi",
        new URL("../mod.ts", import.meta.url).pathname,
        root,
        "--upload",
        "/**",
        "--auth",
        "al:secret",
        "--port",
        "0",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 1);
    assert.match(
      dec.decode(out.stderr),
      /--upload needs write access to the root: run with --allow-write=/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
