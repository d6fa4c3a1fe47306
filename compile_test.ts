/**
 * `deno task compile`, proved as far as this machine allows: `deno compile`
 * downloads its `denort` runtime from Deno's download host, unreachable here
 * (no npm package ships it: `@deno/linux-x64-glibc` holds only `deno`). So the
 * compile runs with `DENORT_BIN` pointing at a stand-in executable: it must
 * build and embed the whole module graph, Worker files included, with the
 * permissions and the `net` unstable feature in the embedded metadata. Only
 * the runtime the binary would start is missing.
 */
import assert from "node:assert/strict";
import { COMPILE_FLAGS, ENTRY, runtimeProblem } from "./scripts/compile.ts";

const ROOT = new URL("./", import.meta.url);
const denoJson = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));

/** `deno compile` arguments of the task: its wrapper's flags, `-o dist/ringhttpd` and the entry. */
function taskArgs(): string[] {
  return [...COMPILE_FLAGS, "-o", "dist/ringhttpd", ENTRY];
}

/** Values of a repeatable flag (`--include x` or `--include=x`). */
function flagValues(args: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) out.push(args[++i]);
    else if (args[i].startsWith(flag + "=")) out.push(args[i].slice(flag.length + 1));
  }
  return out;
}

/** The entry point: the last argument. */
function entryOf(args: string[]): string {
  return args[args.length - 1];
}

/** Local modules of the graph rooted at `file`, as `file:` URLs (`deno info --json`). */
async function localGraph(file: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL(file, ROOT).pathname],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `deno info ${file} failed: ${new TextDecoder().decode(out.stderr)}`);
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  return (info.modules as { specifier: string }[])
    .map((m) => m.specifier)
    .filter((s) => s.startsWith("file:"));
}

/**
 * Files a module loads with `new Worker(...)`: the argument is either
 * `new URL("./x.ts", import.meta.url)` or a constant defined that way in the
 * same module. Any other form fails the test, so that it cannot be missed.
 */
export function workerFiles(source: string, moduleUrl: string): string[] {
  const consts = new Map<string, string>();
  const urlRe = /const\s+(\w+)\s*=\s*new URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g;
  for (const m of source.matchAll(urlRe)) consts.set(m[1], m[2]);
  const found: string[] = [];
  for (const m of source.matchAll(/new Worker\(\s*(new URL\([^)]*\)|\w+\b(?!\()|.{0,30})/g)) {
    const arg = m[1].trim();
    const inline = arg.match(/^new URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)$/);
    const rel = inline ? inline[1] : consts.get(arg);
    if (rel === undefined) {
      throw new Error(`${moduleUrl}: cannot tell which file "new Worker(${arg}" loads`);
    }
    found.push(new URL(rel, moduleUrl).href);
  }
  return found;
}

Deno.test("workerFiles() finds inline and constant Worker URLs", () => {
  const src = `const W = new URL("./w.ts", import.meta.url);
new Worker(W, { type: "module" });
new Worker(new URL("../x/y.ts", import.meta.url), { type: "module" });`;
  assert.deepEqual(workerFiles(src, "file:///r/a/m.ts"), [
    "file:///r/a/w.ts",
    "file:///r/x/y.ts",
  ]);
  assert.throws(() => workerFiles("new Worker(pick(), {})", "file:///r/m.ts"), /cannot tell/);
});

Deno.test("the compile task lists every Worker file the program loads in --include", async () => {
  const args = taskArgs();
  const included = new Set(flagValues(args, "--include").map((f) => new URL(f, ROOT).href));
  const seen = new Set<string>();
  const loaded = new Set<string>();
  // Worker files have graphs of their own, which may start more Workers.
  let roots = [new URL(entryOf(args), ROOT).href];
  while (roots.length > 0) {
    const next: string[] = [];
    for (const root of roots) {
      for (const mod of await localGraph(new URL(root).pathname)) {
        if (seen.has(mod)) continue;
        seen.add(mod);
        for (const w of workerFiles(await Deno.readTextFile(new URL(mod)), mod)) {
          if (!loaded.has(w)) next.push(w);
          loaded.add(w);
        }
      }
    }
    roots = next;
  }
  assert.ok(loaded.size >= 2, `expected the acceptor and worker files, found ${[...loaded]}`);
  const missing = [...loaded].filter((w) => !included.has(w));
  assert.deepEqual(missing, [], `add --include for these to the compile task: ${missing}`);
});

/** Runs `deno compile` with `DENORT_BIN` set to a stand-in runtime. */
async function compileWithStandIn(args: string[], cwd: string, standIn: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["compile", ...args],
    cwd,
    env: { DENORT_BIN: standIn, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { success: out.success, text };
}

Deno.test("deno task compile gets past module-graph building with a stand-in denort", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "ringhttpd_compile_" });
  try {
    // Any executable will do: compile only appends the program to it.
    const standIn = `${tmp}/denort`;
    await Deno.copyFile("/bin/true", standIn);
    const args = taskArgs();
    const o = args.indexOf("-o");
    assert.ok(o >= 0, "the compile task names its output with -o");
    assert.equal(args[o + 1], "dist/ringhttpd");
    args[o + 1] = `${tmp}/ringhttpd`;
    const { success, text } = await compileWithStandIn(args, ROOT.pathname, standIn);
    assert.ok(success, text);
    // The embedded-files tree it prints names every worker file.
    for (
      const f of ["worker.ts", "acceptor.ts", "pool.ts", "tls.ts", "supervisor.ts", "engine.ts"]
    ) {
      assert.match(
        text,
        new RegExp(`\\b${f.replace(".", "\\.")}\\b`),
        `${f} not embedded:\n${text}`,
      );
    }
    const binary = new TextDecoder("latin1").decode(await Deno.readFile(`${tmp}/ringhttpd`));
    // The metadata the runtime would read: permissions and unstable features baked in.
    assert.match(binary, /"allow_net":\[\]/);
    assert.match(binary, /"allow_read":\[\]/);
    assert.match(binary, /"allow_ffi":\[\]/);
    assert.match(binary, /"allow_sys":\["hostname","networkInterfaces"\]/);
    assert.match(binary, /"features":\["net"\]/);
    assert.match(binary, /"entrypoint_key":"mod\.ts"/);
    // The worker sources themselves.
    assert.ok(binary.includes("export function startTls("), "workers/tls.ts source embedded");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("the stand-in compile still fails on a broken module graph (the check is real)", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "ringhttpd_compile_" });
  try {
    const standIn = `${tmp}/denort`;
    await Deno.copyFile("/bin/true", standIn);
    await Deno.writeTextFile(`${tmp}/main.ts`, `import "./missing.ts";\n`);
    const { success, text } = await compileWithStandIn(
      ["--no-config", "-o", `${tmp}/out`, "main.ts"],
      tmp,
      standIn,
    );
    assert.equal(success, false);
    assert.match(text, /missing\.ts/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** Runs `deno task compile` with `args` and `env`; stderr and status. */
async function compileTask(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--config", new URL("deno.json", ROOT).pathname, "compile", ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("the compile task is its wrapper script, run with deno", () => {
  assert.match(denoJson.tasks.compile, /^deno run .* scripts\/compile\.ts$/);
});

Deno.test("deno task compile without its runtime says why and how in one line, exits 1, leaves no dist/", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "ringhttpd_compile_" });
  try {
    // A proxy on a closed port: the runtime download fails at once, as offline.
    using closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const proxy = `http://127.0.0.1:${(closed.addr as Deno.NetAddr).port}`;
    closed.close();
    const out = `${tmp}/dist/ringhttpd`;
    const { code, text } = await compileTask(["-o", out], {
      HTTPS_PROXY: proxy,
      https_proxy: proxy,
      DENORT_BIN: "",
    });
    assert.notEqual(code, 0, text);
    const lines = text.split("\n").filter((l) => l !== "" && !l.startsWith("Task compile"));
    assert.equal(lines.length, 1, text);
    assert.match(lines[0], /^compile: deno could not download its runtime \(denort/);
    assert.match(lines[0], /set DENORT_BIN to a denort binary of Deno \d+\.\d+\.\d+/);
    await assert.rejects(Deno.stat(`${tmp}/dist`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("deno task compile with DENORT_BIN writes the binary where -o says", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "ringhttpd_compile_" });
  try {
    const standIn = `${tmp}/denort`;
    await Deno.copyFile("/bin/true", standIn);
    const out = `${tmp}/out/ringhttpd`;
    const { code, text } = await compileTask(["-o", out], { DENORT_BIN: standIn });
    assert.equal(code, 0, text);
    assert.ok((await Deno.stat(out)).size > (await Deno.stat(standIn)).size, text);
    assert.match(text, new RegExp(`compile: wrote ${out}`));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("runtimeProblem() recognises the download failure only", () => {
  const raw = "error: Writing deno compile executable to temporary file 'dist/x'\n\nCaused by:\n" +
    "    0: Setting up base binary.\n    1: error sending request for url " +
    "(https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): client error " +
    "(Connect): dns error: failed to lookup address information";
  const line = runtimeProblem(raw)!;
  assert.match(line, /denort-x86_64-unknown-linux-gnu\.zip: dns error\)/);
  assert.ok(!line.includes("\n"));
  assert.equal(runtimeProblem('error: Module not found "file:///x.ts"'), undefined);
});
