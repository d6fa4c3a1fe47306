/**
 * Directory listings: collect (readDir + lstat, I/O) -> sort -> render (pure,
 * entries -> bytes, so it can run in any thread). One unreadable entry is
 * skipped, never fails the page (nginx autoindex).
 *
 * @module
 */

/** One directory entry as listed. */
export interface Entry {
  /** The name as Deno reports it (lossy: invalid UTF-8 became U+FFFD). */
  name: string;
  /** What the entry itself is (a symlink is not followed here). */
  type: "file" | "dir" | "symlink";
  /** Listed and sorted as a directory (a dir, or a symlink to one). */
  isDir: boolean;
  /** Bytes (of its target for a symlink). */
  size: number;
  /** Modification time, ms since the epoch; 0 if unknown. */
  mtimeMs: number;
  /**
   * The on-disk name is not valid UTF-8: Deno 2.9.6 hands out a lossy name
   * that does not open. Listed with `href` when FFI could read the raw bytes
   * (a file), else without a link.
   */
  lossy?: boolean;
  /** For a lossy file name: its raw bytes, percent-encoded (not HTML-escaped). */
  href?: string;
}

/** What a listing is sorted by. */
export type SortKey = "name" | "size" | "mtime";
/** Sort direction. */
export type SortOrder = "asc" | "desc";

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
  /** `?download=tar` was given: the folder as a tar archive instead of a listing. */
  download?: "tar";
}

/**
 * Parses `sort`, `order`, `page`, `format` and `download` from a query string; unknown or
 * invalid values fall back to name / asc / 1 (a listing is never an error).
 *
 * @param query The query string without `?`.
 * @returns The listing options.
 * @example
 * ```ts
 * import { parseListingQuery } from "./listing.ts";
 * parseListingQuery("sort=size&order=desc"); // { sort: "size", order: "desc", page: 1, json: false }
 * ```
 */
export function parseListingQuery(query: string): ListingQuery {
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
    else if (k === "download" && v === "tar") q.download = "tar";
  }
  return q;
}

import {
  percentEncodeBytes,
  rawAvailable,
  rawEachEntry,
  rawInvalidNames,
  rawRealPath,
  rawStat,
} from "./_rawfs.ts";
import { servable, type ServePolicy } from "./resolve.ts";

/** Mirrors `RAW_MAX_BYTES` in handler.ts: larger non-UTF-8 files get no link. */
const RAW_LINK_MAX = 16 * 1024 * 1024;

const lossyDecoder = new TextDecoder(); // replacement mode, like Deno's own conversion

/**
 * Fills in a lossy entry from the raw name whose lossy form matches it; null
 * when it must not be listed (a symlink that does not resolve, or whose
 * target `policy` would not serve, or that cannot be checked).
 */
function lossyEntry(
  dir: string,
  d: Deno.DirEntry,
  raws: Uint8Array[],
  policy: ServePolicy,
): Entry | null {
  const type = d.isDirectory ? "dir" : d.isSymlink ? "symlink" : "file";
  const e: Entry = { name: d.name, type, isDir: d.isDirectory, size: 0, mtimeMs: 0, lossy: true };
  const matches = raws.filter((r) => lossyDecoder.decode(r) === d.name);
  // Two raw names with one lossy form cannot be told apart: link neither.
  if (matches.length !== 1) return d.isSymlink ? null : e;
  const raw = matches[0];
  const path = new Uint8Array([...new TextEncoder().encode(dir + "/"), ...raw]);
  if (d.isSymlink) {
    // Lossy decoding keeps the root prefix and every "/." intact.
    const real = rawRealPath(path);
    if (real === null || !servable(policy, lossyDecoder.decode(real))) return null;
  }
  const info = rawStat(path);
  if (info === null) return d.isSymlink ? null : e;
  e.size = info.size;
  e.mtimeMs = info.mtimeMs;
  if (info.isFile && info.size <= RAW_LINK_MAX) e.href = percentEncodeBytes(raw);
  else if (info.isDirectory) e.isDir = true;
  return e;
}

/**
 * Reads a directory: its names and each one's `lstat`. Through FFI where it
 * works ({@linkcode rawEachEntry}: `getdents64` + `fstatat` on the directory's
 * descriptor, ~2.3x faster on 100,000 entries), else `readDirSync` +
 * `lstatSync` per entry. Synchronous on purpose: one async op per entry
 * costs ~10x more (see DENO_FACTS), and the entry count is bounded by the
 * caller's cap only after sorting, so the worker blocks for ~2-5 ms per
 * 1,000 entries.
 *
 * Lists only what GET would serve ({@linkcode servable}): a symlink whose
 * real path leaves the root (unless `followSymlinks`) or is hidden (unless
 * `dotfiles`) is left out, or its target's size and mtime would leak what
 * GET answers 404; dangling and looping links too (they would 404). Only
 * symlinks pay for a `realPathSync`.
 *
 * @param dir The real path of the directory.
 * @param policy Root, dotfile and symlink policy (what GET serves).
 * @param max Stop after this many entries (directory order, before sorting).
 * @param raw Use the FFI path when available (false: always the portable one).
 * @returns The entries, unsorted; unreadable ones are skipped.
 * @example
 * ```ts ignore
 * import { collectEntries } from "./listing.ts";
 * const policy = { root: "/srv/www", dotfiles: false, followSymlinks: false };
 * const entries = collectEntries("/srv/www", policy);
 * ```
 */
export function collectEntries(
  dir: string,
  policy: ServePolicy,
  max = Infinity,
  raw = true,
): Entry[] {
  if (raw) {
    const fast = collectRaw(dir, policy, max);
    if (fast !== null) return fast;
  }
  const out: Entry[] = [];
  const base = dir.endsWith("/") ? dir : dir + "/";
  const dotfiles = policy.dotfiles;
  let raws: Uint8Array[] | undefined;
  for (const d of Deno.readDirSync(dir)) {
    if (out.length >= max) break;
    const name = d.name;
    if (!dotfiles && name.charCodeAt(0) === 46) continue;
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(base + name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound && name.includes("\uFFFD")) {
        raws ??= rawAvailable() ? rawInvalidNames(dir) : [];
        const lossy = lossyEntry(base.slice(0, -1), d, raws, policy);
        if (lossy !== null) out.push(lossy);
      }
      continue; // vanished or unreadable: skip the entry, keep the page
    }
    let isDir = info.isDirectory;
    let size = info.size;
    let mtimeMs = info.mtime?.getTime() ?? 0;
    if (info.isSymlink) {
      try {
        const real = Deno.realPathSync(base + name);
        if (!servable(policy, real)) continue;
        const t = Deno.statSync(real);
        isDir = t.isDirectory;
        size = t.size;
        mtimeMs = t.mtime?.getTime() ?? mtimeMs;
      } catch {
        continue; // dangling or looping link: GET would answer 404
      }
    }
    out.push({
      name,
      type: info.isSymlink ? "symlink" : info.isDirectory ? "dir" : "file",
      isDir,
      size,
      mtimeMs,
    });
  }
  return out;
}

/** {@linkcode collectEntries} through {@linkcode rawEachEntry}; null when that is unavailable. */
function collectRaw(dir: string, policy: ServePolicy, max: number): Entry[] | null {
  const out: Entry[] = [];
  const base = dir.endsWith("/") ? dir : dir + "/";
  const invalid: Array<{ raw: Uint8Array; kind: Entry["type"] }> = [];
  const ok = rawEachEntry(dir, policy.dotfiles, (r) => {
    const name = r.name;
    if (name === undefined) {
      // Not valid UTF-8: listed as readDirSync names it (lossy), at the end.
      invalid.push({ raw: r.raw!.slice(), kind: r.kind });
      return invalid.length < max;
    }
    let isDir = r.kind === "dir";
    let size = r.size;
    let mtimeMs = r.mtimeMs;
    if (r.kind === "symlink") {
      try {
        const real = Deno.realPathSync(base + name);
        if (!servable(policy, real)) return true;
        const t = Deno.statSync(real);
        isDir = t.isDirectory;
        size = t.size;
        mtimeMs = t.mtime?.getTime() ?? mtimeMs;
      } catch {
        return true; // dangling or looping link: GET would answer 404
      }
    }
    out.push({ name, type: r.kind, isDir, size, mtimeMs });
    return out.length < max;
  });
  if (!ok) return null;
  const raws = invalid.map((r) => r.raw);
  for (const r of invalid) {
    if (out.length >= max) break;
    const d = {
      name: lossyDecoder.decode(r.raw),
      isFile: r.kind === "file",
      isDirectory: r.kind === "dir",
      isSymlink: r.kind === "symlink",
    };
    const lossy = lossyEntry(base.slice(0, -1), d, raws, policy);
    if (lossy !== null) out.push(lossy);
  }
  return out;
}

const collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

/**
 * Collation codes for printable ASCII, taken from `collator` itself at load:
 * 0 for a character without a fast key (controls, DEL: ICU ignores them),
 * `DIGIT` for 0-9, else 1 + the character's rank (case-equal letters share
 * one). ICU ranks every non-digit ASCII character either below all digits
 * (punctuation, symbols) or above them (letters), so one code between the two
 * groups stands for a whole number.
 */
const ASCII_CODE = new Uint8Array(128);
let DIGIT = 0;
{
  const chars = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i));
  chars.sort((a, b) => collator.compare(a, b));
  let code = 0;
  let prev = "";
  for (const ch of chars) {
    if (ch >= "0" && ch <= "9") {
      if (DIGIT === 0) DIGIT = ++code;
      ASCII_CODE[ch.charCodeAt(0)] = DIGIT;
      continue;
    }
    if (prev === "" || collator.compare(prev, ch) !== 0) code++;
    ASCII_CODE[ch.charCodeAt(0)] = code;
    prev = ch;
  }
}
/** Longest digit run (leading zeros stripped) a fast key encodes. */
const KEY_MAX_DIGITS = 0x7f - 0x20;
const keyCodes: number[] = [];

/**
 * A string whose code-unit order (`<`) is `collator`'s order, for names of
 * printable ASCII only; undefined for any other name (compare those with the
 * collator). Each character becomes its collation code; a digit run becomes
 * `DIGIT`, its length without leading zeros (ICU ignores them) and those
 * digits, so a longer number sorts after a shorter one and equal lengths
 * compare digit by digit. http/listing_test.ts checks it against `collator`.
 */
function sortKey(name: string): string | undefined {
  const codes = keyCodes;
  codes.length = 0;
  const n = name.length;
  for (let i = 0; i < n;) {
    const ch = name.charCodeAt(i);
    const code = ch < 128 ? ASCII_CODE[ch] : 0;
    if (code === 0) return undefined;
    if (code !== DIGIT) {
      codes.push(code);
      i++;
      continue;
    }
    let j = i;
    while (j < n && name.charCodeAt(j) === 48) j++;
    let k = j;
    while (k < n && name.charCodeAt(k) >= 48 && name.charCodeAt(k) <= 57) k++;
    if (k - j > KEY_MAX_DIGITS) return undefined;
    codes.push(DIGIT, 0x20 + k - j);
    for (let d = j; d < k; d++) codes.push(name.charCodeAt(d));
    i = k;
  }
  return String.fromCharCode.apply(null, codes);
}

/**
 * `collator.compare(a, b)`, then code points: the name order of listings.
 *
 * @param a A name.
 * @param b Another name.
 * @returns Negative, zero (equal names only) or positive.
 * @example
 * ```ts
 * import { compareNames } from "./listing.ts";
 * compareNames("file10", "File9"); // > 0
 * ```
 */
export function compareNames(a: string, b: string): number {
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * Sorts entries in place: directories first, then by the key (names
 * natural and case-insensitive; ties broken by name, then code points, so
 * the order is total and stable across runs).
 *
 * Names of printable ASCII compare through a precomputed key
 * ({@linkcode sortKey}) rather than `Intl.Collator#compare`: ~0.25 us per
 * call made sorting 100,000 names take ~0.4 s, as long as reading them.
 *
 * @param entries The entries to sort.
 * @param sort The key.
 * @param order The direction (directories stay first either way).
 * @returns `entries`.
 * @example
 * ```ts
 * import { sortEntries } from "./listing.ts";
 * sortEntries([], "name", "asc");
 * ```
 */
export function sortEntries(entries: Entry[], sort: SortKey, order: SortOrder): Entry[] {
  const n = entries.length;
  const dir = order === "desc" ? -1 : 1;
  const list = entries.slice();
  const keys: (string | undefined)[] = new Array(n);
  const nums = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const e = list[i];
    keys[i] = sortKey(e.name);
    nums[i] = sort === "size" ? e.size : sort === "mtime" ? e.mtimeMs : 0;
  }
  const order32 = new Uint32Array(n);
  for (let i = 0; i < n; i++) order32[i] = i;
  order32.sort((i, j) => {
    const a = list[i], b = list[j];
    if (a.isDir !== b.isDir) return a.isDir ? -1 : 1;
    let c = nums[i] - nums[j];
    if (c === 0) {
      const ka = keys[i], kb = keys[j];
      c = ka !== undefined && kb !== undefined && ka !== kb
        ? (ka < kb ? -1 : 1)
        : compareNames(a.name, b.name);
    }
    return dir * c;
  });
  for (let i = 0; i < n; i++) entries[i] = list[order32[i]];
  return entries;
}

const HTML_TEST = /[&<>"']/;
/**
 * Escapes `& < > " '` for HTML text and attribute values.
 *
 * @param s Any string.
 * @returns The escaped string.
 * @example
 * ```ts
 * import { escapeHtml } from "./listing.ts";
 * escapeHtml("<a&b>"); // "&lt;a&amp;b&gt;"
 * ```
 */
export function escapeHtml(s: string): string {
  if (!HTML_TEST.test(s)) return s;
  // A scan with slices beats replace() with a callback by ~5x here.
  let out = "";
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    let r: string;
    switch (s.charCodeAt(i)) {
      case 38:
        r = "&amp;";
        break;
      case 60:
        r = "&lt;";
        break;
      case 62:
        r = "&gt;";
        break;
      case 34:
        r = "&quot;";
        break;
      case 39:
        r = "&#39;";
        break;
      default:
        continue;
    }
    out += s.slice(last, i) + r;
    last = i + 1;
  }
  return out + s.slice(last);
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * The href of an entry relative to its directory: the percent-encoded name
 * (`./`-prefixed if it looks like a URL scheme), `/` appended for directories,
 * then HTML-escaped.
 *
 * @param name The entry name.
 * @param isDir Whether to append `/`.
 * @returns The attribute-ready href.
 * @example
 * ```ts
 * import { entryHref } from "./listing.ts";
 * entryHref("a b&c", false); // "a%20b%26c"
 * ```
 */
export function entryHref(name: string, isDir: boolean): string {
  let h = encodeURIComponent(name);
  // encodeURIComponent leaves ':' encoded already, but a browser decodes
  // nothing before scheme detection, so `./` is belt and braces.
  if (SCHEME.test(name)) h = "./" + h;
  if (isDir) h += "/";
  return escapeHtml(h);
}

/**
 * Human-readable size with binary units: `512 B`, `1.5 KiB`, `12 MiB`.
 *
 * @param n Bytes.
 * @returns The formatted size.
 * @example
 * ```ts
 * import { humanSize } from "./listing.ts";
 * humanSize(1536); // "1.5 KiB"
 * ```
 */
export function humanSize(n: number): string {
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return (v < 10 ? v.toFixed(1) : Math.round(v).toString()) + " " + units[u];
}

const PAD2: string[] = Array.from({ length: 100 }, (_, i) => (i < 10 ? "0" : "") + i);

/**
 * Formats a UTC time as `YYYY-MM-DD?HH:MM:SS` with `sep` between date and
 * time, without allocating a Date (toISOString cost ~0.5 us per entry, half
 * the render budget). Days to civil date: H. Hinnant's algorithm.
 */
function utcParts(ms: number, sep: string): string {
  if (!(ms >= 0 && ms < 253402300800000)) ms = 0; // outside years 1970-9999
  const t = Math.floor(ms / 1000);
  const days = Math.floor(t / 86400);
  const secs = t - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const hh = Math.floor(secs / 3600);
  const mm = Math.floor((secs - hh * 3600) / 60);
  return PAD2[Math.floor(y / 100)] + PAD2[y % 100] + "-" + PAD2[m] + "-" + PAD2[d] + sep +
    PAD2[hh] + ":" + PAD2[mm] + ":" + PAD2[secs % 60];
}

/**
 * `2026-11-26 10:41:15`: the listing's ISO-like UTC time (sortable, no locale).
 *
 * @param ms Milliseconds since the epoch.
 * @returns The formatted time.
 * @example
 * ```ts
 * import { isoLike } from "./listing.ts";
 * isoLike(0); // "1970-01-01 00:00:00"
 * ```
 */
export function isoLike(ms: number): string {
  return utcParts(ms, " ");
}

/**
 * RFC 3339 UTC time with milliseconds, identical to `Date#toISOString()`.
 *
 * @param ms Milliseconds since the epoch.
 * @returns The formatted time.
 * @example
 * ```ts
 * import { rfc3339 } from "./listing.ts";
 * rfc3339(1); // "1970-01-01T00:00:00.001Z"
 * ```
 */
export function rfc3339(ms: number): string {
  if (!(ms >= 0 && ms < 253402300800000)) ms = 0;
  const milli = Math.floor(ms) % 1000;
  return utcParts(ms, "T") + "." + (milli < 100 ? (milli < 10 ? "00" : "0") : "") + milli + "Z";
}

/** Everything the renderer needs besides the entries. */
export interface RenderContext {
  /** The decoded URL path of the directory, starting and ending with `/`. */
  path: string;
  /** The parsed query string, for sort links and paging. */
  query: ListingQuery;
  /** Total number of pages (>= 1). */
  pages: number;
  /** Total entries across all pages. */
  total: number;
  /** Collection stopped at `total` entries: the directory holds more. */
  truncated?: boolean;
  /** Offer the folder as a tar download (`?download=tar`). */
  download?: boolean;
}

const encoder = new TextEncoder();

const CSS = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}" +
  "a{color:#0645ad;text-decoration:none}a:hover{text-decoration:underline}" +
  "table{border-collapse:collapse;width:100%}th,td{padding:.2em .8em;text-align:left;" +
  "white-space:nowrap}td:first-child{white-space:normal;word-break:break-all}" +
  "td.s,th.s{text-align:right}tbody tr:nth-child(odd){background:#f4f4f4}" +
  "nav{margin:1em 0}.x{color:#888}" +
  "#bar{display:flex;flex-wrap:wrap;gap:.5em 1.5em;align-items:center;margin:0 0 .8em}" +
  "#bar input{font:inherit;padding:.15em .5em;width:16em;max-width:100%}" +
  "table.f tbody tr:nth-child(odd){background:none}table.f tbody tr.o{background:#f4f4f4}" +
  "@media (prefers-color-scheme:dark){body{color:#ddd;background:#161616}a{color:#8ab4f8}" +
  "tbody tr:nth-child(odd),table.f tbody tr.o{background:#222}}";

/**
 * The filter box, added by script so that without JavaScript there is no
 * dead input (the page needs none). Filters this page's rows by a
 * case-insensitive substring of the name; `/` focuses it; zebra stripes
 * follow the visible rows. Names are read from the DOM on first use, so
 * rendering pays nothing per entry for it.
 */
const FILTER_JS = "(function(){" +
  "var t=document.querySelector('table'),b=document.getElementById('bar');" +
  "if(!t||!b||!t.tBodies[0])return;" +
  "var f=document.createElement('input');f.type='search';f.id='filter';" +
  "f.placeholder='Filter names';f.autocomplete='off';" +
  "f.setAttribute('aria-label','Filter names on this page');b.insertBefore(f,b.firstChild);" +
  "var rows=null,names=null;" +
  "f.addEventListener('input',function(){" +
  "if(!rows){rows=[];names=[];var all=t.tBodies[0].rows;" +
  "for(var i=0;i<all.length;i++){var n=all[i].cells[0].textContent;" +
  "if(n!=='../'){rows.push(all[i]);names.push(n.toLowerCase())}}}" +
  "var v=f.value.trim().toLowerCase(),k=0;t.classList.toggle('f',v!=='');" +
  "for(var j=0;j<rows.length;j++){var hide=v!==''&&names[j].indexOf(v)<0;" +
  "rows[j].hidden=hide;if(!hide)rows[j].classList.toggle('o',k++%2===0)}});" +
  "document.addEventListener('keydown',function(e){" +
  "if(e.key==='/'&&document.activeElement!==f){e.preventDefault();f.focus()}})})();";

function queryString(sort: SortKey, order: SortOrder, page: number): string {
  let s = "?sort=" + sort + "&amp;order=" + order;
  if (page > 1) s += "&amp;page=" + page;
  return s;
}

function header(label: string, key: SortKey, q: ListingQuery, cls: string): string {
  const active = q.sort === key;
  const next: SortOrder = active && q.order === "asc" ? "desc" : "asc";
  // Entities, not the characters: one non-Latin-1 char makes the whole
  // document a two-byte string and encoding ~2x slower.
  const mark = active ? (q.order === "asc" ? " &uarr;" : " &darr;") : "";
  const aria = active ? ` aria-sort="${q.order === "asc" ? "ascending" : "descending"}"` : "";
  return `<th${cls}${aria}><a href="${queryString(key, next, 1)}">${label}${mark}</a></th>`;
}

function breadcrumbs(path: string): string {
  let out = '<a href="/">/</a>';
  let href = "/";
  const segs = path.split("/");
  for (let i = 1; i < segs.length - 1; i++) {
    href += encodeURIComponent(segs[i]) + "/";
    out += `<a href="${escapeHtml(href)}">${escapeHtml(segs[i])}</a>/`;
  }
  return out;
}

/**
 * Renders one page of a listing as a complete HTML5 document (UTF-8 bytes).
 * Works without JavaScript; a small inline script adds a filter box
 * (progressive enhancement). Inline CSS with a dark scheme.
 *
 * @param entries The sorted entries of this page.
 * @param ctx Path, query and paging.
 * @returns The encoded document.
 * @example
 * ```ts
 * import { renderHtml } from "./listing.ts";
 * const q = { sort: "name", order: "asc", page: 1, json: false } as const;
 * renderHtml([], { path: "/", query: q, pages: 1, total: 0 });
 * ```
 */
export function renderHtml(entries: readonly Entry[], ctx: RenderContext): Uint8Array {
  const title = escapeHtml(ctx.path);
  const q = ctx.query;
  let s = '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    '<meta name="color-scheme" content="light dark">' +
    // No favicon request: a 404 per listing would be noise in every console.
    '<link rel="icon" href="data:,">' +
    `<title>Index of ${title}</title><style>${CSS}</style></head>\n<body><h1>Index of ` +
    breadcrumbs(ctx.path) + '</h1>\n<div id="bar">' +
    (ctx.download ? '<a href="?download=tar" rel="nofollow">Download folder as .tar</a>' : "") +
    "</div>\n<table><thead><tr>" +
    header("Name", "name", q, "") + header("Size", "size", q, ' class="s"') +
    header("Last modified", "mtime", q, "") + "</tr></thead>\n<tbody>\n";
  if (ctx.path !== "/") s += '<tr><td><a href="../">../</a></td><td></td><td></td></tr>\n';
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const text = escapeHtml(e.name) + (e.isDir ? "/" : "");
    if (e.lossy && e.href === undefined) {
      s += `<tr><td><span class="x" title="name is not valid UTF-8">${text}</span></td>` +
        "<td></td><td></td></tr>\n";
      continue;
    }
    const href = e.href === undefined ? entryHref(e.name, e.isDir) : escapeHtml(e.href);
    s += `<tr><td><a href="${href}">${text}</a></td>` +
      (e.isDir ? '<td class="s">-</td>' : `<td class="s" title="${e.size} bytes">` +
        humanSize(e.size) + "</td>") +
      "<td>" + (e.mtimeMs ? isoLike(e.mtimeMs) : "") + "</td></tr>\n";
  }
  s += "</tbody></table>\n";
  if (ctx.truncated) {
    s += `<p>Only the first ${ctx.total} entries read from this directory are listed.</p>\n`;
  }
  if (ctx.pages > 1) {
    s += "<nav>";
    if (q.page > 1) {
      s += `<a href="${queryString(q.sort, q.order, q.page - 1)}" rel="prev">previous</a> `;
    }
    s += `page ${q.page} of ${ctx.pages} (${ctx.total} entries)`;
    if (q.page < ctx.pages) {
      s += ` <a href="${queryString(q.sort, q.order, q.page + 1)}" rel="next">next</a>`;
    }
    s += "</nav>\n";
  }
  s += "<script>" + FILTER_JS + "</script>\n</body></html>\n";
  return encoder.encode(s);
}

/**
 * Renders one page of a listing as JSON:
 * `[{"name","type":"file"|"dir"|"symlink","size","mtime"}]`, mtime in RFC 3339
 * (UTC). Entries whose name is not valid UTF-8 carry the lossy name.
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
      '","size":' + e.size + ',"mtime":"' + rfc3339(e.mtimeMs) + '"}';
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
