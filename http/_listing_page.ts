/**
 * One listing page from collected entries: the part of a listing that runs
 * the same in an HTTP worker (inline, `--pool 0`) and in a pool thread.
 * Plus the asynchronous collect the inline path uses, so a large directory
 * never blocks the worker's connections.
 *
 * @module
 */
import { listingETag, type ListingQuery, renderHtml, renderJson } from "./listing.ts";
import type { Entry } from "./listing.ts";
import { lastModifiedDate } from "./conditional.ts";
import { servable, type ServePolicy } from "./resolve.ts";
import { collectEntries } from "./listing.ts";

/** Most entries read from one directory for a listing (or listingCap if larger). */
export const COLLECT_MAX = 100_000;

/** What every page of one server shares. */
export interface PageConfig {
  /** Entries per page. */
  listingCap: number;
  /** Dotfiles listed (part of the ETag). */
  dotfiles: boolean;
  /** The page offers `?download=tar`. */
  archives: boolean;
}

/** A rendered page, before the server's common headers are added. */
export interface Page {
  /** 200, or 404 for a page number past the last. */
  status: 200 | 404;
  /** Content-Type, Vary, ETag, Last-Modified, and Link / X-Listing-Truncated. */
  headers: Array<[string, string]>;
  /** The headers of the matching 304 (no Content-Type). */
  notModifiedHeaders: Array<[string, string]>;
  etag: string;
  mtimeMs: number;
  body: Uint8Array;
}

/**
 * Renders page `q.page` of `sorted`.
 *
 * @param sorted The whole directory, sorted as `q` asks.
 * @param total Entries collected (`sorted.length`).
 * @param truncated More entries exist than were collected.
 * @param mtimeMs Newest mtime of the directory and its entries (Last-Modified).
 * @param q The parsed query.
 * @param json JSON (by query or Accept) instead of HTML.
 * @param path The directory's URL path, ending in `/` (HTML title, breadcrumbs).
 * @param cfg Server-wide page settings.
 * @returns The page, or a 404 page (empty body) past the last page.
 */
export function renderPage(
  sorted: readonly Entry[],
  truncated: boolean,
  mtimeMs: number,
  q: ListingQuery,
  json: boolean,
  path: string,
  cfg: PageConfig,
): Page {
  const { listingCap } = cfg;
  const total = sorted.length;
  const pages = Math.max(1, Math.ceil(total / listingCap));
  const empty = new Uint8Array(0);
  if (q.page > pages) {
    return { status: 404, headers: [], notModifiedHeaders: [], etag: "", mtimeMs, body: empty };
  }
  const etag = listingETag(
    sorted,
    // `archives` changes the page (the tar link); `2`: the page template.
    `${
      json ? "j" : "h"
    }|${q.sort}|${q.order}|${q.page}|${listingCap}|${cfg.dotfiles}|${cfg.archives}|2`,
  );
  const h: Array<[string, string]> = [
    ["Vary", "Accept"],
    ["ETag", etag],
    ["Last-Modified", lastModifiedDate(mtimeMs)],
  ];
  if (truncated) h.push(["X-Listing-Truncated", String(total)]);
  const notModifiedHeaders = h.slice();
  const slice = sorted.slice((q.page - 1) * listingCap, q.page * listingCap);
  let body: Uint8Array;
  if (json) {
    body = renderJson(slice);
    h.unshift(["Content-Type", "application/json; charset=utf-8"]);
    const link = (n: number, rel: string) =>
      `<?format=json&sort=${q.sort}&order=${q.order}&page=${n}>; rel="${rel}"`;
    if (q.page > 1) h.push(["Link", link(q.page - 1, "prev")]);
    if (q.page < pages) h.push(["Link", link(q.page + 1, "next")]);
  } else {
    body = renderHtml(slice, {
      path,
      query: q,
      pages,
      total,
      truncated,
      download: cfg.archives,
    });
    h.unshift(["Content-Type", "text/html; charset=utf-8"]);
  }
  return { status: 200, headers: h, notModifiedHeaders, etag, mtimeMs, body };
}

/** The newest of the directory's own mtime and its entries'. */
export function newestMtime(dirMtimeMs: number, entries: readonly Entry[]): number {
  let m = dirMtimeMs;
  for (const e of entries) if (e.mtimeMs > m) m = e.mtimeMs;
  return m;
}

/** Entries stat'ed at once by {@linkcode collectEntriesAsync}. */
const STAT_BATCH = 64;

/**
 * The asynchronous twin of `collectEntries` (same entries, same policy):
 * `Deno.readDir` plus `Deno.lstat` in batches of {@linkcode STAT_BATCH}, so a
 * worker that lists inline (`--pool 0`) keeps serving its other connections
 * between batches. About ten times the CPU of the synchronous collect (one
 * op per entry): the price of not blocking, and the reason the pool exists.
 *
 * Names that are not valid UTF-8 (Deno hands out a lossy name that does not
 * open) are listed through the synchronous collect, which knows how to read
 * their raw bytes.
 *
 * @param dir The real path of the directory.
 * @param policy Root, dotfile and symlink policy (what GET serves).
 * @param max Stop after this many entries (directory order, before sorting).
 * @returns The entries, unsorted; unreadable ones are skipped.
 */
export async function collectEntriesAsync(
  dir: string,
  policy: ServePolicy,
  max = Infinity,
): Promise<Entry[]> {
  const base = dir.endsWith("/") ? dir : dir + "/";
  const names: string[] = [];
  for await (const d of Deno.readDir(dir)) {
    if (names.length >= max) break;
    if (!policy.dotfiles && d.name.charCodeAt(0) === 46) continue;
    if (d.name.includes("\uFFFD")) return collectEntries(dir, policy, max);
    names.push(d.name);
  }
  const out: Entry[] = [];
  for (let i = 0; i < names.length; i += STAT_BATCH) {
    const batch = names.slice(i, i + STAT_BATCH);
    const got = await Promise.all(batch.map((name) => entryOf(base, name, policy)));
    for (const e of got) if (e !== null) out.push(e);
  }
  return out;
}

async function entryOf(base: string, name: string, policy: ServePolicy): Promise<Entry | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(base + name);
  } catch {
    return null; // vanished or unreadable: skip the entry, keep the page
  }
  let isDir = info.isDirectory;
  let size = info.size;
  let mtimeMs = info.mtime?.getTime() ?? 0;
  if (info.isSymlink) {
    try {
      const real = await Deno.realPath(base + name);
      if (!servable(policy, real)) return null;
      const t = await Deno.stat(real);
      isDir = t.isDirectory;
      size = t.size;
      mtimeMs = t.mtime?.getTime() ?? mtimeMs;
    } catch {
      return null; // dangling or looping link: GET would answer 404
    }
  }
  return {
    name,
    type: info.isSymlink ? "symlink" : info.isDirectory ? "dir" : "file",
    isDir,
    size,
    mtimeMs,
  };
}
