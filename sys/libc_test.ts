import assert from "node:assert/strict";
import { errno, libc, strerror, tryLibc } from "./libc.ts";

const linux = Deno.build.os === "linux";

Deno.test({
  name: "libc: one binding per thread; errno and strerror of a failed close(-1) (EBADF)",
  ignore: !linux,
  fn() {
    const lib = tryLibc();
    assert.ok(lib !== null);
    assert.equal(libc(), lib, "libc() and tryLibc() share the one dlopen");
    assert.equal(lib.close(-1), -1);
    assert.equal(errno(), 9);
    assert.match(strerror(9), /bad file descriptor/i);
    assert.equal(typeof lib.getpgrp(), "number");
  },
});

Deno.test({
  name: "libc: without --allow-ffi tryLibc() is null and libc() throws Deno's permission error",
  ignore: !linux,
  async fn() {
    const code = `
      import { libc, tryLibc } from ${JSON.stringify(new URL("./libc.ts", import.meta.url).href)};
      let threw = "";
      try { libc(); } catch (e) { threw = e.constructor.name; }
      console.log(JSON.stringify({ tried: tryLibc(), threw }));
    `;
    // `deno run -` reads the program from stdin and grants nothing (`deno eval` grants all).
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-lock", "-"],
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(code));
    await w.close();
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const got = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(got.tried, null);
    assert.equal(got.threw, "NotCapable");
  },
});
