/**
 * `.ci/run` is what CI executes on a fresh clone: a shell syntax error there
 * (an `if` left without its `fi` by a merge) fails CI before any test runs.
 *
 * @module
 */
import assert from "node:assert/strict";

Deno.test(".ci/run parses as bash (bash -n)", async () => {
  const out = await new Deno.Command("bash", {
    args: ["-n", new URL("../.ci/run", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
});
