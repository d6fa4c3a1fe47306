/**
 * Validators and preconditions (RFC 9110 sec. 8.8, sec. 13). Pure: no I/O.
 *
 * @module
 */

/**
 * Builds a strong ETag from size, mtime and inode: a file replaced by another
 * of the same size within the same millisecond still gets a new inode, and an
 * in-place rewrite changes the mtime.
 *
 * @param size File size in bytes.
 * @param mtimeMs Modification time in ms since the epoch (0 if unknown).
 * @param ino Inode number (0 if unknown).
 * @returns A quoted strong entity tag, e.g. `"1a-lq3k2x-4f2"`.
 * @example
 * ```ts
 * import { makeETag } from "./conditional.ts";
 * makeETag(26, 1700000000000, 1234); // "\"q-loyw3v28-ya\""
 * ```
 */
export function makeETag(size: number, mtimeMs: number, ino: number): string {
  return `"${size.toString(36)}-${Math.floor(mtimeMs).toString(36)}-${ino.toString(36)}"`;
}

/**
 * Formats a time as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
 *
 * @param ms Milliseconds since the epoch.
 * @returns The HTTP-date string.
 * @example
 * ```ts
 * import { httpDate } from "./conditional.ts";
 * httpDate(0); // "Thu, 01 Jan 1970 00:00:00 GMT"
 * ```
 */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/**
 * Parses an HTTP-date; `NaN` when invalid. HTTP dates have whole seconds.
 *
 * @param value The header value.
 * @returns Milliseconds since the epoch, or `NaN`.
 * @example
 * ```ts
 * import { parseHttpDate } from "./conditional.ts";
 * parseHttpDate("Thu, 01 Jan 1970 00:00:01 GMT"); // 1000
 * ```
 */
export function parseHttpDate(value: string): number {
  // Date.parse is lenient (accepts "1"); require the GMT of all three forms
  // or the asctime layout so a garbage value is ignored, as RFC 9110 says.
  if (value.length < 20 || value.length > 40) return NaN;
  return Date.parse(value);
}

function opaque(tag: string): string {
  return tag.startsWith("W/") ? tag.slice(2) : tag;
}

/**
 * Whether an If-Match / If-None-Match list matches `etag`.
 *
 * @param list The header value: `*` or a comma-separated list of entity tags.
 * @param etag Our current entity tag (quoted).
 * @param weak Weak comparison (If-None-Match) ignores `W/`; strong comparison
 *   (If-Match) requires both tags strong and equal.
 * @returns Whether any listed tag matches.
 * @example
 * ```ts
 * import { etagMatches } from "./conditional.ts";
 * etagMatches('W/"a", "b"', '"a"', true); // true
 * ```
 */
export function etagMatches(list: string, etag: string, weak: boolean): boolean {
  const t = list.trim();
  if (t === "*") return true;
  const ours = weak ? opaque(etag) : etag;
  if (!weak && ours.startsWith("W/")) return false;
  for (const part of t.split(",")) {
    const p = part.trim();
    if (p === "") continue;
    if (weak ? opaque(p) === ours : p === ours) return true;
  }
  return false;
}

/** Request headers that decide a precondition; absent ones are `undefined`. */
export interface Preconditions {
  /** The `If-Match` header value. */
  ifMatch?: string;
  /** The `If-None-Match` header value. */
  ifNoneMatch?: string;
  /** The `If-Modified-Since` header value (ignored when `If-None-Match` is present). */
  ifModifiedSince?: string;
  /** The `If-Unmodified-Since` header value (ignored when `If-Match` is present). */
  ifUnmodifiedSince?: string;
}

/**
 * Evaluates preconditions in RFC 9110 sec. 13.2.2 order for a GET or HEAD.
 *
 * 1. If-Match (strong) fails -> 412; else if absent, If-Unmodified-Since
 *    older than Last-Modified -> 412.
 * 2. If-None-Match (weak) matches -> 304; else if absent, If-Modified-Since
 *    not older than Last-Modified -> 304.
 *
 * @param p The conditional request headers.
 * @param etag The current entity tag.
 * @param mtimeMs Last modification time in ms (compared at 1 s resolution).
 * @returns 200 to proceed, 304 or 412.
 * @example
 * ```ts
 * import { evaluatePreconditions } from "./conditional.ts";
 * evaluatePreconditions({ ifNoneMatch: '"x"' }, '"x"', 0); // 304
 * ```
 */
export function evaluatePreconditions(
  p: Preconditions,
  etag: string,
  mtimeMs: number,
): 200 | 304 | 412 {
  const lastMod = Math.floor(mtimeMs / 1000) * 1000;
  if (p.ifMatch !== undefined) {
    if (!etagMatches(p.ifMatch, etag, false)) return 412;
  } else if (p.ifUnmodifiedSince !== undefined) {
    const d = parseHttpDate(p.ifUnmodifiedSince);
    if (!Number.isNaN(d) && lastMod > d) return 412;
  }
  if (p.ifNoneMatch !== undefined) {
    if (etagMatches(p.ifNoneMatch, etag, true)) return 304;
  } else if (p.ifModifiedSince !== undefined) {
    const d = parseHttpDate(p.ifModifiedSince);
    if (!Number.isNaN(d) && lastMod <= d) return 304;
  }
  return 200;
}
