/**
 * One listing page from collected entries: the part of a listing that runs
 * the same in an HTTP worker (inline, `--pool 0`) and in a pool thread:
 * filter (`?q=`), page (`?page=`, `?per_page=`), render, validators.
 *
 * @module
 */
import {
  filterEntries,
  listingETag,
  type ListingQuery,
  PER_PAGE_DEFAULT,
  renderHtml,
  renderJson,
} from "./listing.ts";
import type { Entry } from "./_collect.ts";
import { lastModifiedDate } from "./conditional.ts";
import { countEntries } from "./_listing_html.ts";
import type { SearchResult } from "./_search.ts";
import type { Hit } from "./_name_index.ts";

export { collectEntriesAsync, newestMtime } from "./_collect.ts";

/** Most entries read from one directory for a listing (or listingCap if larger). */
export const COLLECT_MAX = 100_000;

/** What every page of one server shares. */
export interface PageConfig {
  /** Most entries per page (`?per_page=` up to this; the default page is the smaller of it and 1,000). */
  listingCap: number;
  /** Dotfiles listed (part of the ETag). */
  dotfiles: boolean;
  /** The page offers `?download=tar`. */
  archives: boolean;
}

/** A rendered page, before the server's common headers are added. */
export interface Page {
  /** 200; 404 for a page number past the last; 400 for a bad query (body: why). */
  status: 200 | 400 | 404;
  /** Content-Type, Vary, ETag, Last-Modified, and Link / X-Listing-Truncated. */
  headers: Array<[string, string]>;
  /** The headers of the matching 304 (no Content-Type). */
  notModifiedHeaders: Array<[string, string]>;
  /** The page's strong validator. */
  etag: string;
  /** Newest mtime of the directory and its entries. */
  mtimeMs: number;
  /** The rendered page (empty for a 404). */
  body: Uint8Array;
}

/**
 * Entries per page for `q` under `cfg`: `?per_page=` (at most the cap), else
 * {@linkcode PER_PAGE_DEFAULT} (or the cap if smaller).
 *
 * @param q The parsed query.
 * @param cfg Server-wide page settings.
 * @returns Entries per page.
 */
export function pageSize(q: ListingQuery, cfg: PageConfig): number {
  return Math.max(1, Math.min(q.perPage ?? PER_PAGE_DEFAULT, cfg.listingCap));
}

/**
 * The cache key of one rendered page among a directory's variants: every
 * query field that changes the bytes, and the URL path for HTML (title,
 * breadcrumbs; JSON does not show it).
 *
 * @param q The parsed query.
 * @param json JSON (by query or Accept) instead of HTML.
 * @param path The directory's URL path.
 * @returns The variant key.
 * @example
 * ```ts
 * import { parseListingQuery } from "./listing.ts";
 * import { variantKey } from "./_listing_page.ts";
 * variantKey(parseListingQuery("q=a"), true, "/"); // "j|name|asc|1||a"
 * ```
 */
export function variantKey(q: ListingQuery, json: boolean, path: string): string {
  const form = q.txt ? "t" : json ? "j" : "h" + path;
  return `${form}|${q.sort}|${q.order}|${q.page}|${q.perPage ?? ""}|${q.filter ?? ""}${
    q.txt || json ? "" : `|${q.view ?? ""}|${q.pick ? 1 : ""}`
  }`;
}

const encoder = new TextEncoder();

/** What a page shows besides the entries (HTML only). */
export interface PageExtras {
  /** The folder's README as safe HTML. */
  readme?: string;
  /** Its file name. */
  readmeName?: string;
  /** A validator of the README's bytes (part of the ETag). */
  readmeTag?: string;
}

/**
 * The plain-text form (`?format=txt`): one name per line, folders with a
 * trailing `/`, for scripts (`curl ... | while read`). A name holding a line
 * break would read as two: it is left out here (the JSON form carries it).
 *
 * @param entries The entries of this page.
 * @returns The encoded text.
 * @example
 * ```ts
 * import { renderTxt } from "./_listing_page.ts";
 * renderTxt([]); // empty bytes
 * ```
 */
export function renderTxt(entries: readonly Entry[]): Uint8Array {
  let s = "";
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.name.includes("\n") || e.name.includes("\r")) continue;
    s += e.name + (e.isDir ? "/\n" : "\n");
  }
  return encoder.encode(s);
}

/**
 * Renders one page of a search (`?q=` under a folder): the hits are paged
 * here and only the page's are turned into entries (`toEntries` stats them).
 * Not cached and without validators: a search answers from the index as it
 * is now.
 *
 * @param r The search result (hits sorted).
 * @param toEntries The page's hits as entries.
 * @param q The parsed query.
 * @param json JSON instead of HTML.
 * @param path The folder's URL path.
 * @param cfg Server-wide page settings.
 * @returns The page (404 past the last page).
 */
export function renderSearch(
  r: SearchResult,
  toEntries: (hits: readonly Hit[]) => Entry[],
  q: ListingQuery,
  json: boolean,
  path: string,
  cfg: PageConfig,
): Page {
  const per = pageSize(q, cfg);
  const total = r.hits.length;
  const pages = Math.max(1, Math.ceil(total / per));
  const empty = new Uint8Array(0);
  if (q.page > pages) {
    return { status: 404, headers: [], notModifiedHeaders: [], etag: "", mtimeMs: 0, body: empty };
  }
  const slice = toEntries(r.hits.slice((q.page - 1) * per, q.page * per));
  const h: Array<[string, string]> = [["Vary", "Accept"], ["Cache-Control", "no-cache"]];
  if (r.partial) h.push(["X-Search-Partial", "1"]);
  let body: Uint8Array;
  if (q.txt) {
    body = renderTxt(slice);
    h.unshift(["Content-Type", "text/plain; charset=utf-8"]);
  } else if (json) {
    body = renderJson(slice);
    h.unshift(["Content-Type", "application/json; charset=utf-8"]);
    const link = (n: number, rel: string) =>
      `<?format=json&q=${encodeURIComponent(q.filter ?? "")}&page=${n}${
        q.perPage === undefined ? "" : `&per_page=${q.perPage}`
      }>; rel="${rel}"`;
    if (q.page > 1) h.push(["Link", link(q.page - 1, "prev")]);
    if (q.page < pages) h.push(["Link", link(q.page + 1, "next")]);
  } else {
    body = renderHtml(slice, {
      path,
      query: q,
      pages,
      total,
      download: cfg.archives,
      search: { partial: r.partial, more: r.more },
    }, per);
    h.unshift(["Content-Type", "text/html; charset=utf-8"]);
  }
  return { status: 200, headers: h, notModifiedHeaders: [], etag: "", mtimeMs: 0, body };
}

/**
 * Renders page `q.page` of `sorted`, after the `?q=` filter (over the whole
 * directory, so the pages are those of the matching names), with
 * {@linkcode pageSize} entries per page.
 *
 * @param sorted The whole directory, sorted as `q` asks.
 * @param truncated More entries exist than were collected.
 * @param mtimeMs Newest mtime of the directory and its entries (Last-Modified).
 * @param q The parsed query.
 * @param json JSON (by query or Accept) instead of HTML.
 * @param path The directory's URL path, ending in `/` (HTML title, breadcrumbs).
 * @param cfg Server-wide page settings.
 * @param extras The README (HTML only).
 * @returns The page; a 404 page (empty body) past the last page; a 400 page
 *   (body: the reason) for a query `parseListingQuery` refused or a
 *   `per_page` over the cap.
 */
export function renderPage(
  sorted: readonly Entry[],
  truncated: boolean,
  mtimeMs: number,
  q: ListingQuery,
  json: boolean,
  path: string,
  cfg: PageConfig,
  extras: PageExtras = {},
): Page {
  const empty = new Uint8Array(0);
  const per = pageSize(q, cfg);
  if (q.error !== undefined || (q.perPage !== undefined && q.perPage > cfg.listingCap)) {
    const why = q.error ??
      `per_page must be an integer from 1 to ${cfg.listingCap}, got "${q.perPage}"`;
    const body = encoder.encode(`400 Bad Request\n${why}\n`);
    return { status: 400, headers: [], notModifiedHeaders: [], etag: "", mtimeMs, body };
  }
  const shown = q.filter === undefined ? sorted : filterEntries(sorted, q.filter);
  const total = shown.length;
  const pages = Math.max(1, Math.ceil(total / per));
  if (q.page > pages) {
    return { status: 404, headers: [], notModifiedHeaders: [], etag: "", mtimeMs, body: empty };
  }
  const etag = listingETag(
    shown,
    // `archives` changes the page (the download forms); `4`: the page template.
    `${q.txt ? "t" : json ? "j" : "h"}|${q.sort}|${q.order}|${q.page}|${per}|${q.filter ?? ""}|${
      q.view ?? ""
    }|${q.pick ? 1 : ""}|${sorted.length}|${cfg.dotfiles}|${cfg.archives}|${
      extras.readmeTag ?? ""
    }|4`,
  );
  const h: Array<[string, string]> = [
    ["Vary", "Accept"],
    ["ETag", etag],
    ["Last-Modified", lastModifiedDate(mtimeMs)],
  ];
  if (truncated) h.push(["X-Listing-Truncated", String(sorted.length)]);
  const notModifiedHeaders = h.slice();
  const slice = shown.slice((q.page - 1) * per, q.page * per);
  let body: Uint8Array;
  if (q.txt) {
    body = renderTxt(slice);
    h.unshift(["Content-Type", "text/plain; charset=utf-8"]);
  } else if (json) {
    body = renderJson(slice);
    h.unshift(["Content-Type", "application/json; charset=utf-8"]);
    const extra = (q.perPage === undefined ? "" : `&per_page=${q.perPage}`) +
      (q.filter === undefined ? "" : `&q=${encodeURIComponent(q.filter)}`);
    const link = (n: number, rel: string) =>
      `<?format=json&sort=${q.sort}&order=${q.order}&page=${n}${extra}>; rel="${rel}"`;
    if (q.page > 1) h.push(["Link", link(q.page - 1, "prev")]);
    if (q.page < pages) h.push(["Link", link(q.page + 1, "next")]);
  } else {
    body = renderHtml(slice, {
      path,
      query: q,
      pages,
      total,
      all: sorted.length,
      truncated,
      download: cfg.archives,
      counts: countEntries(sorted),
      readme: extras.readme,
      readmeName: extras.readmeName,
    }, per);
    h.unshift(["Content-Type", "text/html; charset=utf-8"]);
  }
  return { status: 200, headers: h, notModifiedHeaders, etag, mtimeMs, body };
}
