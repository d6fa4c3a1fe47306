/**
 * Test-only npm packages stay out of the serve path. `deno task` caches every
 * npm package of the lockfile before it runs a task, so deno.lock must pin
 * only what serving imports; the test and check tasks write `tests.lock`
 * (`--lock=tests.lock`), and test files import fast-check by its full
 * `npm:` specifier, not through deno.json's import map.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

interface Lock {
  specifiers: Record<string, string>;
  npm: Record<string, { dependencies?: string[] }>;
}

async function readJson<T>(name: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(new URL(name, ROOT))) as T;
}

/** Package name of a lock key such as `bare-stream@2.13.4_bare-events@2.9.2`. */
function nameOf(key: string): string {
  return key.slice(0, key.indexOf("@", 1));
}

Deno.test("deno.lock pins deno.json's imports and their dependencies, nothing else", async () => {
  const config = await readJson<{ imports: Record<string, string> }>("deno.json");
  const lock = await readJson<Lock>("deno.lock");
  const imported = Object.values(config.imports).filter((s) => s.startsWith("npm:")).sort();
  assert.deepEqual(Object.keys(lock.specifiers).sort(), imported);
  assert.ok(!imported.some((s) => s.includes("fast-check")), "fast-check is test-only");
  // Every package in the lock is reachable from an import.
  const byName = new Map(Object.keys(lock.npm).map((k) => [nameOf(k), k]));
  const reached = new Set<string>();
  const todo = Object.keys(lock.specifiers).map((s) => nameOf(s.slice(4)));
  for (let name = todo.pop(); name !== undefined; name = todo.pop()) {
    const key = byName.get(name);
    if (key === undefined || reached.has(key)) continue;
    reached.add(key);
    todo.push(...(lock.npm[key].dependencies ?? []));
  }
  assert.deepEqual(Object.keys(lock.npm).filter((k) => !reached.has(k)), []);
});

Deno.test("a first `deno task serve` with an empty DENO_DIR fetches only the packages in deno.lock", async () => {
  const denoDir = await Deno.makeTempDir({ prefix: "ringhttpd_denodir_" });
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["task", "serve", "--version"],
      cwd: ROOT,
      env: { DENO_DIR: denoDir, NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, err);
    assert.match(new TextDecoder().decode(stdout), /^ringhttpd \d/);
    const fetched = [];
    for await (const e of Deno.readDir(`${denoDir}/npm/registry.npmjs.org`)) fetched.push(e.name);
    const lock = await readJson<Lock>("deno.lock");
    // A scoped package (@scope/name) sits in a folder named after its scope.
    const locked = [...new Set(Object.keys(lock.npm).map((k) => nameOf(k).split("/")[0]))];
    assert.deepEqual(fetched.sort(), locked.sort(), err);
    assert.ok(!fetched.includes("fast-check"), fetched.join(" "));
  } finally {
    await Deno.remove(denoDir, { recursive: true });
  }
});
