/** `--max-archive-mb`: parsed into `maxArchiveBytes`, listed in --help. */
import assert from "node:assert/strict";
import { HELP, parseArgs, UsageError } from "../cli.ts";

function maxArchiveBytes(...args: string[]): number | undefined {
  const parsed = parseArgs(args);
  assert.ok("options" in parsed);
  return parsed.options.maxArchiveBytes;
}

Deno.test("parseArgs: --max-archive-mb takes whole MiB >= 0 (0 turns folder downloads off)", () => {
  assert.equal(maxArchiveBytes(), undefined, "unlimited by default");
  assert.equal(maxArchiveBytes("--max-archive-mb", "512"), 512 * 1024 * 1024);
  assert.equal(maxArchiveBytes("--max-archive-mb=0"), 0);
  for (const v of ["-1", "1.5", "10M", "", "99999999"]) {
    assert.throws(() => parseArgs([`--max-archive-mb=${v}`]), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.message, `--max-archive-mb must be an integer >= 0 (MiB), got "${v}"`);
      return true;
    });
  }
  assert.ok(HELP.includes("--max-archive-mb <n>"));
});
