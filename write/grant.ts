/**
 * Write grants from `--upload GLOB` (repeatable): every authenticated user
 * and token may write under paths matching one of the globs (picomatch over
 * the decoded URL path, `**` for any depth, dotfiles matched like any name:
 * whether a dotfile may be named at all is the `dotfiles` flag's business).
 * An anonymous request (no `user`: authentication is off, or the path is
 * public) never writes. Finer grants (per user, create-only, no delete)
 * belong to the config file's path rules.
 *
 * @module
 */
// @ts-types="@types/picomatch"
import picomatch from "picomatch";
import type { WriteGrant } from "./stage.ts";

/**
 * The grant of a list of `--upload` globs.
 *
 * @param globs URL-path globs, each starting with `/`
 * @returns a grant for the write stage
 * @throws {RangeError} naming a bad glob
 * @example
 * ```ts
 * import { uploadGrant } from "./grant.ts";
 * import assert from "node:assert/strict";
 *
 * const grant = uploadGrant(["/cache/**"]);
 * assert.ok(grant("ci", "/cache/ab/cd", "put"));
 * assert.ok(!grant(undefined, "/cache/ab/cd", "put")); // anonymous
 * assert.ok(!grant("ci", "/site/index.html", "put"));
 * ```
 */
export function uploadGrant(globs: readonly string[]): WriteGrant {
  const tests = globs.map((g) => {
    if (!g.startsWith("/")) {
      throw new RangeError(`--upload must start with "/", got ${JSON.stringify(g)}`);
    }
    try {
      return picomatch(g, { dot: true, strictBrackets: true });
    } catch (e) {
      throw new RangeError(`--upload ${JSON.stringify(g)}: ${(e as Error).message}`);
    }
  });
  return (user, path) => {
    if (user === undefined || user === "") return false;
    // A directory is asked for as "/a/b/"; the glob "/a/**" matches both spellings.
    const p = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
    return tests.some((t) => t(p));
  };
}
