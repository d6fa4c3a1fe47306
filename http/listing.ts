/**
 * Directory listings: collect (`_collect.ts`, I/O) -> sort (`_listing_sort.ts`)
 * -> render (`_listing_html.ts`, and JSON here; pure, entries -> bytes, so it
 * can run in any thread). This module holds the query, the JSON renderer and
 * the validator, and re-exports the rest as the listing API.
 *
 * @module
 */
export type { Entry } from "./_collect.ts";
export { collectEntries } from "./_collect.ts";
export { compareNames, sortEntries } from "./_listing_sort.ts";
export { entryHref, escapeHtml, humanSize, isoLike, rfc3339 } from "./_listing_format.ts";
export { listingHref, type RenderContext, renderHtml } from "./_listing_html.ts";
import type { Entry } from "./_collect.ts";
import { rfc3339 } from "./_listing_format.ts";

/** What a listing is sorted by. */
export type SortKey = "name" | "size" | "mtime";
/** Sort direction. */
export type SortOrder = "asc" | "desc";

/** Largest `?per_page=` unless the server's cap says otherwise. */
export const PER_PAGE_MAX = 10_000;
/** Entries per page without `?per_page=` (or the server's cap if smaller). */
export const PER_PAGE_DEFAULT = 1000;
/** Longest `?q=` filter, in UTF-16 code units. */
export const FILTER_MAX = 256;

/** Listing options taken from the query string. */
export interface ListingQuery {
  /** Column to sort by (`?sort=`); directories always come first. */
  sort: SortKey;
  /** Sort direction (`?order=`). */
  order: SortOrder;
  /** 1-based page number. */
  page: number;
  /** `?format=json` was given. */
  json: boolean;
  /** `?format=txt`: one name per line, folders with a trailing `/`. */
  txt?: boolean;
  /** `?pick=1`: the selection view (a checkbox per row, rendered by the server). */
  pick?: boolean;
  /** `?view=gallery`: the page's images as tiles (HTML only). */
  view?: "gallery";
  /** `?download=tar` was given: the folder as a tar archive instead of a listing. */
  download?: "tar";
  /** `?per_page=`: entries per page, when given. */
  perPage?: number;
  /**
   * `?q=`: a search of the names under the folder, recursively (any case;
   * `*`/`?` globs); with `scope=folder`, only the folder's own names; never empty.
   */
  filter?: string;
  /** `?scope=folder`: `q` filters this folder only (cached like a listing) instead of searching below. */
  here?: boolean;
  /** Why the query is refused (answer 400 with this), when it is. */
  error?: string;
}

function formValue(v: string): string | undefined {
  try {
    return decodeURIComponent(v.replaceAll("+", " "));
  } catch {
    return undefined;
  }
}

/**
 * Parses `sort`, `order`, `page`, `per_page`, `q`, `format` and `download`
 * from a query string. A listing is a view, so unknown or invalid `sort`,
 * `order` and `page` values fall back to name / asc / 1; but a `per_page`
 * outside 1..`maxPerPage` or a bad `q` sets `error` (a 400): silently giving
 * another page size or no filter would look like a wrong answer.
 *
 * @param query The query string without `?`.
 * @param maxPerPage The largest `per_page` accepted.
 * @returns The listing options.
 * @example
 * ```ts
 * import { parseListingQuery } from "./listing.ts";
 * parseListingQuery("sort=size&order=desc"); // { sort: "size", order: "desc", page: 1, json: false }
 * parseListingQuery("per_page=0").error; // 'per_page must be an integer from 1 to 10000, got "0"'
 * ```
 */
export function parseListingQuery(query: string, maxPerPage = PER_PAGE_MAX): ListingQuery {
  const q: ListingQuery = { sort: "name", order: "asc", page: 1, json: false };
  if (query === "") return q;
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    const k = eq < 0 ? pair : pair.slice(0, eq);
    const v = eq < 0 ? "" : pair.slice(eq + 1);
    if (k === "sort" && (v === "name" || v === "size" || v === "mtime")) q.sort = v;
    else if (k === "order" && (v === "asc" || v === "desc")) q.order = v;
    else if (k === "page" && /^[1-9][0-9]{0,8}$/.test(v)) q.page = Number(v);
    else if (k === "format" && v === "json") q.json = true;
    else if (k === "format" && v === "txt") q.txt = true;
    else if (k === "view" && v === "gallery") q.view = "gallery";
    else if (k === "pick" && v === "1") q.pick = true;
    else if (k === "scope" && v === "folder") q.here = true;
    else if (k === "download" && v === "tar") q.download = "tar";
    else if (k === "per_page") {
      const n = /^[0-9]{1,9}$/.test(v) ? Number(v) : NaN;
      if (n >= 1 && n <= maxPerPage) q.perPage = n;
      else {
        const shown = (formValue(v) ?? v).slice(0, 40);
        q.error ??= `per_page must be an integer from 1 to ${maxPerPage}, got ${
          JSON.stringify(shown)
        }`;
      }
    } else if (k === "q") {
      const f = formValue(v)?.trim();
      if (f === undefined) q.error ??= "q is not valid percent-encoded UTF-8";
      else if (f.length > FILTER_MAX) {
        q.error ??= `q must be at most ${FILTER_MAX} characters, got ${f.length}`;
      } else if (f !== "") q.filter = f;
    }
  }
  return q;
}

/**
 * The names of `entries` that contain `filter`, ignoring case (`toLowerCase`
 * on both sides: simple, and the same rule as the page's live filter).
 *
 * @param entries Sorted entries.
 * @param filter The `?q=` value.
 * @returns The matching entries, in order.
 * @example
 * ```ts
 * import { filterEntries } from "./listing.ts";
 * filterEntries([], "a"); // []
 * ```
 */
export function filterEntries(entries: readonly Entry[], filter: string): Entry[] {
  const f = filter.toLowerCase();
  const out: Entry[] = [];
  for (const e of entries) if (e.name.toLowerCase().includes(f)) out.push(e);
  return out;
}

const encoder = new TextEncoder();

/**
 * Renders one page of a listing as JSON:
 * `[{"name","type":"file"|"dir"|"symlink","size","mtime"}]`: `size` in bytes,
 * `null` for a directory (and a symlink to one: a directory's own size says
 * nothing about its contents); `mtime` in RFC 3339, UTC, with its `Z`.
 * Entries whose name is not valid UTF-8 carry the lossy name.
 *
 * @param entries The sorted entries of this page.
 * @returns The encoded JSON array.
 * @example
 * ```ts
 * import { renderJson } from "./listing.ts";
 * renderJson([]); // bytes of "[]"
 * ```
 */
export function renderJson(entries: readonly Entry[]): Uint8Array {
  let s = "[";
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    s += (i === 0 ? '{"name":' : ',\n{"name":') + JSON.stringify(e.name) + ',"type":"' + e.type +
      '","size":' + (e.isDir ? "null" : e.size) + ',"mtime":"' + rfc3339(e.mtimeMs) + '"}';
  }
  return encoder.encode(s + "]\n");
}

/**
 * A weak validator for a listing page: FNV-1a over every entry's name, type,
 * size and mtime plus the options, because the directory's own mtime does not
 * change when a file inside it is rewritten in place.
 *
 * @param entries All entries (before paging).
 * @param variant Options that change the bytes (sort, order, page, format...).
 * @returns A weak entity tag.
 * @example
 * ```ts
 * import { listingETag } from "./listing.ts";
 * listingETag([], "html"); // 'W/"..."'
 * ```
 */
export function listingETag(entries: readonly Entry[], variant: string): string {
  // The same hash as over `\0${name}\0${type}\0${size}\0${mtimeMs}` per
  // entry, without building that string (a third of the cost at 100,000).
  let h = mixHash(0x811c9dc5, variant);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    h = mixHash(Math.imul(h, 0x01000193), e.name); // ^ 0: the separator
    h = mixHash(Math.imul(h, 0x01000193), e.type);
    h = mixHash(Math.imul(h, 0x01000193), "" + e.size);
    h = mixHash(Math.imul(h, 0x01000193), "" + e.mtimeMs);
  }
  return `W/"l-${(h >>> 0).toString(36)}-${entries.length.toString(36)}"`;
}

/** FNV-1a: `h` with the UTF-16 code units of `s` mixed in. */
function mixHash(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}
