/** The public API's documentation: `deno doc --lint mod.ts` must stay clean. */
import assert from "node:assert/strict";

Deno.test("deno doc --lint mod.ts reports nothing (every export documented, no private type leaks)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--lint", new URL("./mod.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  assert.ok(out.success, text);
});
