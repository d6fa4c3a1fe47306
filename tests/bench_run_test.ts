/**
 * `deno bench` as a user types it: plain, at the repo root, in a real
 * subprocess. Benches that need a permission skip with one line naming
 * `deno task bench`; the rest run; a ring-bench Worker that cannot start fails
 * its benches instead of hanging the run.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

interface Run {
  code: number;
  out: string;
  seconds: number;
}

/** Runs `deno <args>` at the repo root; kills it and fails after `boundS` seconds. */
async function deno(args: string[], boundS: number): Promise<Run> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, boundS * 1000);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  const out = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(
    !killed,
    `deno ${args.join(" ")} still running after ${boundS} s:\n${out.slice(-3000)}`,
  );
  return { code, out, seconds };
}

// Measured on a loaded 2-core machine (load average 11): 20 s for the whole
// plain run (type-check included); the bound is for a hang, not a speed test.
Deno.test("plain `deno bench` at the repo root finishes and skips what needs permissions with one line each", async () => {
  const { code, out, seconds } = await deno(["bench"], 240);
  assert.equal(code, 0, out.slice(-3000));
  const skip = (what: string, flags: string) =>
    `${what} skipped: needs ${flags}; run \`deno task bench\``;
  for (
    const line of [
      skip("bench/archive_bench.ts", "--allow-read --allow-write --allow-run"),
      skip("bench/listing_bench.ts", "--allow-read --allow-write"),
      skip("bench/ring_bench.ts", "--allow-read"),
      skip("bench/http_bench.ts (groups cached-1k, whole-path-1k)", "--allow-read --allow-write"),
    ]
  ) {
    assert.equal(out.split("\n").filter((l) => l === line).length, 1, `once: ${line}\n${out}`);
  }
  // The benches that need nothing ran and printed their rows.
  for (const name of ["parse a 396-byte browser GET", "renderHtml 1,000 plain names"]) {
    assert.match(out, new RegExp(`^\\| ${name} +\\| +[\\d.]+ [n\\u00b5m]?s`, "m"), name);
  }
  // No bench tripped over a permission (the old failure: NotCapable, "Requires read access").
  assert.doesNotMatch(out, /NotCapable|Requires \w+ access|error:/);
  console.log(`plain deno bench: ${seconds.toFixed(1)} s`);
});

Deno.test("ring bench: a Worker that cannot load its imports fails its benches, never hangs them", async () => {
  // Read is granted (the bench does not skip) except for one module the
  // worker imports, so every Worker fails to start. --no-check: type-checking
  // a Worker whose imports are unreadable took ~15 s each under load, and the
  // check is not what this test is about.
  const { code, out } = await deno([
    "bench",
    "--no-check",
    "--allow-read",
    "--deny-read=queue/spsc.ts",
    "bench/ring_bench.ts",
  ], 180);
  assert.notEqual(code, 0, out);
  const failed = out.split("\n").filter((l) =>
    /worker failed to start: Requires read access/.test(l)
  );
  // Seven benches, each failing on its own workers' start-up error.
  assert.equal(failed.length, 7, out);
  assert.doesNotMatch(out, /skipped/);
});
