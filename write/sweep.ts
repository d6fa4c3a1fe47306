/**
 * Start-up clean-up: removes the temporary files (write/atomic.ts) that a
 * crash or a kill left under the folders uploads may write to.
 *
 * @module
 */
import { sweepTemps } from "./atomic.ts";
import { isInside } from "../http/resolve.ts";

/**
 * Removes unfinished uploads under each `--upload` glob's base folder.
 *
 * @param root the real root
 * @param globs the `--upload` globs
 * @returns how many temporary files were removed
 * @example
 * ```ts
 * import { sweepUploads } from "./sweep.ts";
 * const root = await Deno.realPath(await Deno.makeTempDir());
 * console.assert(sweepUploads(root, ["/cache/**"]) === 0);
 * await Deno.remove(root);
 * ```
 */
export function sweepUploads(root: string, globs: readonly string[]): number {
  // Each base folder with how deep below it its globs can write (a `**` anywhere: any depth;
  // else the segments after the base), so a temp-like name where no upload can land stays.
  const depths = new Map<string, number>();
  for (const g of globs) {
    const base = globBase(g);
    const below = g.split("/").length - base.split("/").filter(Boolean).length - 2;
    const depth = g.includes("**") ? 64 : Math.max(0, below);
    depths.set(base, Math.max(depths.get(base) ?? 0, depth));
  }
  const bases = [...depths.keys()].sort();
  let removed = 0;
  for (const [i, base] of bases.entries()) {
    // A base under another one that is swept at any depth is swept with it.
    const covered = bases.slice(0, i).some((b) =>
      depths.get(b) === 64 && (b === "/" || base.startsWith(b + "/"))
    );
    if (covered) continue;
    const dir = base === "/" ? root : root + base;
    try {
      if (!isInside(root, Deno.realPathSync(dir))) continue;
    } catch {
      continue; // not there yet
    }
    removed += sweepTemps(dir, depths.get(base));
  }
  return removed;
}

/**
 * The folder a glob cannot match outside of: its leading segments without
 * glob syntax (`/cache/**` -> `/cache`, `/a/*.txt` -> `/a`, `/**` -> `/`).
 *
 * @param glob a URL-path glob starting with `/`
 * @returns the URL path of that folder
 * @example
 * ```ts
 * import { globBase } from "./sweep.ts";
 * console.assert(globBase("/cache/**") === "/cache");
 * ```
 */
export function globBase(glob: string): string {
  const segs = glob.split("/").slice(1);
  const out: string[] = [];
  for (const s of segs.slice(0, -1)) {
    if (/[*?[\]{}()!+@\\]/.test(s)) break;
    out.push(s);
  }
  return "/" + out.join("/");
}
