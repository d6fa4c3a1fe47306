/**
 * What every stage of one handler shares: the served root and its policy,
 * the reply builder, the caches, the coalescer and the job pool. Built once
 * by `createHandler`; the stages take it instead of capturing variables.
 *
 * @module
 */
import { servable, type ServePolicy } from "./resolve.ts";
import type { Replies } from "./_reply.ts";
import type { FileCache } from "./_file_cache.ts";
import type { ListingCache } from "./_listing_cache.ts";
import type { Coalescer } from "./_coalesce.ts";
import type { SubmitJob } from "./job_protocol.ts";
import type { PageConfig } from "./_listing_page.ts";
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
  /**
   * The full (uncached) path of a request: the file stage falls back to it.
   * `plainOnly`: never compress.
   */
  slow(req: RequestHead, plainOnly?: boolean): Promise<Reply>;
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
