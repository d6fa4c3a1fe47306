/**
 * Search under a folder (`?q=TEXT`, recursive): from the shared name index
 * when it is ready ({@linkcode NameIndex}), else by walking the tree with the
 * listings' own collector within a time budget (the answer then says it may
 * be partial). Either way each hit passes the serving policy again (dotfiles,
 * symlinks out of the root, hidden paths: `servable` on its real path) and
 * the per-requester filter when one is given, and only the page's hits are
 * stat'ed (size, mtime).
 *
 * Hits are sorted by path (folders first within a folder, as listings
 * sort), at most {@linkcode SEARCH_MAX}; the entries handed to the renderers
 * carry the path relative to the searched folder as their name and a
 * per-segment encoded href.
 *
 * @module
 */
import { collectEntriesAsync, type Entry } from "./_collect.ts";
import { compileQuery, type Hit, type Matcher, type NameIndex } from "./_name_index.ts";
import { servable, type ServePolicy } from "./resolve.ts";
import { compareNames } from "./_listing_sort.ts";

/** Most hits one search collects. */
export const SEARCH_MAX = 10_000;
/** How long a walk may take before answering what it found (partial), ms. */
export const WALK_BUDGET_MS = 300;

/** A search's hits, before paging. */
export interface SearchResult {
  hits: Hit[];
  /** The walk ran out of time (or the index was not ready and the walk did). */
  partial: boolean;
  /** More than SEARCH_MAX hits. */
  more: boolean;
  /** Where the hits came from. */
  source: "index" | "walk";
}

/** May the requester see this path (relative to the root)? The access filter's hook. */
export type PathFilter = (relPath: string, isDir: boolean) => boolean;

function matches(m: Matcher, name: string): boolean {
  const lower = name.toLowerCase();
  if (m.test !== undefined) return m.test.test(lower);
  return lower.includes(new TextDecoder().decode(m.needle));
}

/**
 * Walks `folder` breadth-first with the listings' collector, within `budgetMs`.
 *
 * @param policy What GET serves.
 * @param folderRel The folder relative to the root ("" for the root).
 * @param m The compiled query.
 * @param budgetMs Time budget.
 * @param allow The access filter.
 * @returns The hits.
 */
export async function walkSearch(
  policy: ServePolicy,
  folderRel: string,
  m: Matcher,
  budgetMs: number,
  allow?: PathFilter,
): Promise<SearchResult> {
  const t0 = Date.now();
  const hits: Hit[] = [];
  const queue = [folderRel];
  while (queue.length > 0) {
    if (Date.now() - t0 > budgetMs) return { hits, partial: true, more: false, source: "walk" };
    const rel = queue.shift()!;
    let entries: Entry[];
    try {
      entries = await collectEntriesAsync(
        rel === "" ? policy.root : policy.root + "/" + rel,
        policy,
      );
    } catch {
      continue; // unreadable or gone: as a listing of it would answer, nothing
    }
    for (const e of entries) {
      if (e.lossy) continue;
      const path = rel === "" ? e.name : rel + "/" + e.name;
      if (allow !== undefined && !allow(path, e.isDir)) continue;
      if (matches(m, e.name)) {
        if (hits.length >= SEARCH_MAX) return { hits, partial: false, more: true, source: "walk" };
        hits.push({ path, isDir: e.isDir, isLink: e.type === "symlink" });
      }
      // Symlinked folders are not descended: their targets are searched where they are.
      if (e.isDir && e.type !== "symlink") queue.push(path);
    }
  }
  return { hits, partial: false, more: false, source: "walk" };
}

/** Whether every folder above `path` (and it) passes the access filter. */
function allowedAll(allow: PathFilter, path: string, isDir: boolean): boolean {
  const segs = path.split("/");
  for (let i = 1; i < segs.length; i++) {
    if (!allow(segs.slice(0, i).join("/"), true)) return false;
  }
  return allow(path, isDir);
}

/**
 * Searches `folderRel` for `text`: the index when ready, else a walk.
 *
 * @param policy What GET serves.
 * @param index The shared index, if the server has one.
 * @param folderRel The folder relative to the root.
 * @param text The `?q=` value.
 * @param allow The access filter.
 * @returns The hits, sorted.
 */
export async function search(
  policy: ServePolicy,
  index: NameIndex | undefined,
  folderRel: string,
  text: string,
  allow?: PathFilter,
): Promise<SearchResult> {
  const m = compileQuery(text);
  let r: SearchResult;
  if (index !== undefined && index.ready) {
    const q = index.query(m, folderRel, SEARCH_MAX, (h) => {
      // Dotfiles (in any folder on the way) and the access rules, as a listing applies them.
      if (!policy.dotfiles && /(^|\/)\./.test(h.path)) return false;
      if (allow !== undefined && !allowedAll(allow, h.path, h.isDir)) return false;
      return true;
    });
    r = { hits: q.hits, partial: false, more: q.more, source: "index" };
  } else {
    r = await walkSearch(policy, folderRel, m, WALK_BUDGET_MS, allow);
  }
  r.hits.sort(byPath);
  return r;
}

/** Path order: segment by segment, folders before files in the same folder. */
function byPath(a: Hit, b: Hit): number {
  const x = a.path.split("/"), y = b.path.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    const xd = i < x.length - 1 || a.isDir, yd = i < y.length - 1 || b.isDir;
    if (xd !== yd) return xd ? -1 : 1;
    return compareNames(x[i], y[i]);
  }
  return x.length - y.length;
}

/**
 * The entries of one page of hits: each stat'ed now (size, mtime); a hit
 * whose real path is no longer servable (a symlink retargeted out of the
 * root, a name gone) is left out.
 *
 * @param policy What GET serves.
 * @param folderRel The searched folder.
 * @param hits This page's hits.
 * @param linkOk The path rules' symlink check (the collector's `linkOk`): a
 *   symlinked hit whose target is protected otherwise is left out.
 * @returns Entries named by their path under the folder, with hrefs.
 */
export function hitEntries(
  policy: ServePolicy,
  folderRel: string,
  hits: readonly Hit[],
  linkOk?: (link: string, real: string) => boolean,
): Entry[] {
  const out: Entry[] = [];
  const cut = folderRel === "" ? 0 : folderRel.length + 1;
  for (const h of hits) {
    const abs = policy.root + "/" + h.path;
    let size = 0, mtimeMs = 0, isDir = h.isDir;
    try {
      const real = h.isLink ? Deno.realPathSync(abs) : abs;
      if (!servable(policy, real)) continue;
      if (h.isLink && linkOk !== undefined && !linkOk(abs, real)) continue;
      const st = Deno.statSync(real);
      size = st.size;
      mtimeMs = st.mtime?.getTime() ?? 0;
      isDir = st.isDirectory;
    } catch {
      continue;
    }
    const name = h.path.slice(cut);
    out.push({
      name,
      type: h.isLink ? "symlink" : isDir ? "dir" : "file",
      isDir,
      size,
      mtimeMs,
      href: name.split("/").map(encodeURIComponent).join("/") + (isDir ? "/" : ""),
    });
  }
  return out;
}

export { compileQuery };
