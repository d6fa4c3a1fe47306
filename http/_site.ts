/**
 * What every stage of one handler shares: the served root and its policy,
 * the reply builder, the caches, the coalescer and the job pool. Built once
 * by `createHandler`; the stages take it instead of capturing variables.
 *
 * @module
 */
import { isInside, servable, type ServePolicy } from "./resolve.ts";
import type { CollectOptions } from "./_collect.ts";
import type { Replies } from "./_reply.ts";
import type { FileCache } from "./_file_cache.ts";
import type { ListingCache } from "./_listing_cache.ts";
import type { Coalescer } from "./_coalesce.ts";
import type { SubmitJob } from "./job_protocol.ts";
import type { PageConfig } from "./_listing_page.ts";
import type { PathRules } from "./path_rules.ts";
import type { NameIndex } from "./_name_index.ts";
import type { Reply, RequestHead } from "./types.ts";

/** One handler's shared state and settings. */
export interface Site {
  /** The real root. */
  root: string;
  /** What GET serves, listings show and folder downloads hold: one rule. */
  policy: ServePolicy;
  replies: Replies;
  files: FileCache;
  listings: ListingCache;
  running: Coalescer;
  /** The job pool; undefined: listings and compression run inline. */
  jobs: SubmitJob | undefined;
  /** Compress text files on the fly. */
  compress: boolean;
  dirListing: boolean;
  /** Folder downloads offered (listings on, a non-zero bound). */
  archives: boolean;
  maxArchiveBytes: number;
  page: PageConfig;
  /** Site rules: the Cache-Control of a file by its real path and type; undefined: none. */
  cacheControl: ((real: string, type: string) => string | undefined) | undefined;
  /** The shared name index of search (browse), when the server has one. */
  search?: NameIndex;
  /**
   * The full (uncached) path of a request: the file stage falls back to it.
   * `plainOnly`: never compress.
   */
  slow(req: RequestHead, plainOnly?: boolean): Promise<Reply>;
  /**
   * The path rules, when any restricts or changes something: every view
   * that shows a directory's contents filters entries through
   * {@linkcode PathRules.entryFilter}, symlinks must keep their
   * protection ({@linkcode PathRules.sameProtection}).
   */
  paths: PathRules | undefined;
}

/**
 * The real path of `path`, or null when it must look absent (outside the
 * root, hidden).
 *
 * @param site the handler
 * @param path an absolute path under the root
 * @returns the real path, or null
 * @throws filesystem errors (NotFound...) for the boundary to map
 */
export async function realInRoot(site: Site, path: string): Promise<string | null> {
  const real = await Deno.realPath(path);
  return servable(site.policy, real) ? real : null;
}

/**
 * The real path of `path` if it is a servable regular file, else null.
 *
 * @param site the handler
 * @param path an absolute path under the root
 * @returns the real path, or null (never throws)
 */
export async function existingFile(site: Site, path: string): Promise<string | null> {
  try {
    const real = await realInRoot(site, path);
    if (real === null) return null;
    return (await Deno.stat(real)).isFile ? real : null;
  } catch {
    return null;
  }
}

/**
 * A real path below the root as a URL path (`/` for the root), or
 * undefined when it lies outside (reached through a followed symlink).
 *
 * @param site the handler
 * @param real a real path
 * @returns the path below the root, starting with `/`
 */
export function underRoot(site: Site, real: string): string | undefined {
  const root = site.root;
  if (!isInside(root, real)) return undefined;
  return root === "/" ? real : real.slice(root.length) || "/";
}

/**
 * What the collector must leave out of one directory for one requester
 * (the path rules), or undefined when nothing is filtered.
 *
 * @param site the handler
 * @param dirPath the directory's decoded URL path
 * @param dirReal the directory's real path
 * @param user the requester (`req.user`)
 * @returns the collector's `filter` and `linkOk`
 */
export function collectGuards(
  site: Site,
  dirPath: string,
  dirReal: string,
  user: string | undefined,
): Pick<CollectOptions, "filter" | "linkOk"> | undefined {
  const paths = site.paths;
  if (paths === undefined || !paths.filters) return undefined;
  const filter = paths.entryFilter(dirPath, user, underRoot(site, dirReal) ?? dirPath);
  const linkOk = (link: string, real: string): boolean => {
    const a = underRoot(site, link), b = underRoot(site, real);
    return a === undefined || b === undefined || paths.sameProtection(a, b);
  };
  return { filter, linkOk };
}
