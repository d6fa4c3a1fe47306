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
 * The Last-Modified value for a modification time: never later than now, the
 * response's Date (RFC 9110 sec. 8.8.2.1: an mtime in the future is replaced
 * by the message origination date).
 *
 * @param mtimeMs Modification time in ms since the epoch.
 * @param nowMs The current time (the engine's `Date` comes from the same clock, later).
 * @returns The IMF-fixdate of `min(mtimeMs, nowMs)`.
 * @example
 * ```ts
 * import { lastModifiedDate } from "./conditional.ts";
 * lastModifiedDate(5_000, 2_000); // "Thu, 01 Jan 1970 00:00:02 GMT"
 * ```
 */
export function lastModifiedDate(mtimeMs: number, nowMs: number = Date.now()): string {
  return httpDate(mtimeMs < nowMs ? mtimeMs : nowMs);
}

/**
 * The time a precondition compares a date with: the Last-Modified we send
 * (clamped to now, whole seconds).
 *
 * @param mtimeMs Modification time in ms.
 * @param nowMs The current time.
 * @returns Milliseconds, a whole second.
 */
export function validatorTime(mtimeMs: number, nowMs: number = Date.now()): number {
  return Math.floor((mtimeMs < nowMs ? mtimeMs : nowMs) / 1000) * 1000;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `n` digits at `s[at]` as a number, or -1. */
function num(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** `HH:MM:SS` at `s[at]` as ms into the day, or -1 (a leap second 60 is taken). */
function timeOfDay(s: string, at: number): number {
  if (s.charCodeAt(at + 2) !== 58 || s.charCodeAt(at + 5) !== 58) return -1;
  const h = num(s, at, 2);
  const m = num(s, at + 3, 2);
  const sec = num(s, at + 6, 2);
  if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60) return -1;
  return ((h * 60 + m) * 60 + sec) * 1000;
}

function utc(year: number, month: number, day: number, time: number): number {
  if (month < 0 || day < 1 || day > 31 || time < 0) return NaN;
  const ms = Date.UTC(year, month, day);
  // Date.UTC rolls 31 Feb into March: a day the month does not have is invalid.
  if (new Date(ms).getUTCDate() !== day) return NaN;
  return ms + time;
}

/**
 * Parses an HTTP-date in any of its three formats (RFC 9110 sec. 5.6.7: a
 * recipient MUST accept all three): IMF-fixdate `Sun, 06 Nov 1994 08:49:37
 * GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` (a two-digit year more than
 * 50 years ahead is taken in the past century) and asctime `Sun Nov  6
 * 08:49:37 1994`. Exact grammar, case-sensitive: anything else (a list of
 * dates, ISO 8601, extra spaces) is `NaN`, so the header holding it is
 * ignored as RFC 9110 sec. 13.1.3 / 13.1.4 say.
 *
 * @param value The header value.
 * @param nowMs The current time, for the RFC 850 century.
 * @returns Milliseconds since the epoch, or `NaN`.
 * @example
 * ```ts
 * import { parseHttpDate } from "./conditional.ts";
 * parseHttpDate("Thu, 01 Jan 1970 00:00:01 GMT"); // 1000
 * ```
 */
export function parseHttpDate(value: string, nowMs: number = Date.now()): number {
  const n = value.length;
  if (n === 29 && value.charCodeAt(3) === 44) {
    // IMF-fixdate: day-name "," SP 2DIGIT SP month SP 4DIGIT SP time SP "GMT".
    if (
      !DAYS.includes(value.substring(0, 3)) || value.charCodeAt(4) !== 32 ||
      value.charCodeAt(7) !== 32 || value.charCodeAt(11) !== 32 ||
      value.charCodeAt(16) !== 32 || value.charCodeAt(25) !== 32 || !value.endsWith(" GMT")
    ) return NaN;
    const year = num(value, 12, 4);
    if (year < 0) return NaN;
    return utc(
      year,
      MONTHS.indexOf(value.substring(8, 11)),
      num(value, 5, 2),
      timeOfDay(value, 17),
    );
  }
  const comma = value.indexOf(",");
  if (comma >= 6 && comma <= 9 && n === comma + 24) {
    // rfc850-date: day-name-l "," SP 2DIGIT "-" month "-" 2DIGIT SP time SP "GMT".
    const c = comma;
    if (
      !LONG_DAYS.includes(value.substring(0, c)) || value.charCodeAt(c + 1) !== 32 ||
      value.charCodeAt(c + 4) !== 45 || value.charCodeAt(c + 8) !== 45 ||
      value.charCodeAt(c + 11) !== 32 || !value.endsWith(" GMT")
    ) return NaN;
    const yy = num(value, c + 9, 2);
    if (yy < 0) return NaN;
    const nowYear = new Date(nowMs).getUTCFullYear();
    let year = nowYear - (nowYear % 100) + yy;
    if (year > nowYear + 50) year -= 100;
    return utc(
      year,
      MONTHS.indexOf(value.substring(c + 5, c + 8)),
      num(value, c + 2, 2),
      timeOfDay(value, c + 12),
    );
  }
  if (n === 24 && value.charCodeAt(3) === 32) {
    // asctime-date: day-name SP month SP ( 2DIGIT / SP DIGIT ) SP time SP 4DIGIT.
    if (
      !DAYS.includes(value.substring(0, 3)) || value.charCodeAt(7) !== 32 ||
      value.charCodeAt(10) !== 32 || value.charCodeAt(19) !== 32
    ) return NaN;
    const day = value.charCodeAt(8) === 32 ? num(value, 9, 1) : num(value, 8, 2);
    const year = num(value, 20, 4);
    if (year < 0 || day < 0) return NaN;
    return utc(year, MONTHS.indexOf(value.substring(4, 7)), day, timeOfDay(value, 11));
  }
  return NaN;
}

/**
 * Whether an If-Match / If-None-Match list matches `etag`.
 *
 * The list is read by its grammar (RFC 9110 sec. 8.8.3, 13.1.1): `*`, or
 * entity-tags (`"..."` or `W/"..."`, commas allowed inside the quotes)
 * separated by commas, empty elements allowed (sec. 5.6.1). A list that does
 * not parse matches nothing (If-None-Match: full response; If-Match: 412).
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
  if (list === "*" || list.trim() === "*") return true;
  const ourWeak = etag.startsWith("W/");
  if (!weak && ourWeak) return false;
  const ours = ourWeak ? etag.slice(2) : etag;
  const n = list.length;
  let found = false;
  let i = 0;
  for (;;) {
    while (i < n && isListSpace(list.charCodeAt(i), true)) i++;
    if (i >= n) return found;
    let tagWeak = false;
    if (list.startsWith("W/", i)) {
      tagWeak = true;
      i += 2;
    }
    if (list.charCodeAt(i) !== 34) return false;
    const s = i++;
    for (;;) {
      if (i >= n) return false;
      const c = list.charCodeAt(i);
      if (c === 34) break;
      // etagc = %x21 / %x23-7E / obs-text
      if (c < 0x21 || c === 0x7f || c > 0xff) return false;
      i++;
    }
    i++;
    if (!found && i - s === ours.length && list.startsWith(ours, s) && (weak || !tagWeak)) {
      found = true;
    }
    while (i < n && isListSpace(list.charCodeAt(i), false)) i++;
    if (i < n && list.charCodeAt(i) !== 44) return false;
  }
}

/** SP / HTAB (and `,` when `comma`): what may sit between list elements. */
function isListSpace(c: number, comma: boolean): boolean {
  return c === 32 || c === 9 || (comma && c === 44);
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
 * @param mtimeMs Last modification time in ms (compared at 1 s resolution,
 *   and never later than `nowMs`, like the Last-Modified we send).
 * @param nowMs The current time.
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
  nowMs: number = Date.now(),
): 200 | 304 | 412 {
  if (p.ifMatch !== undefined) {
    if (!etagMatches(p.ifMatch, etag, false)) return 412;
  } else if (p.ifUnmodifiedSince !== undefined) {
    const d = parseHttpDate(p.ifUnmodifiedSince, nowMs);
    if (!Number.isNaN(d) && validatorTime(mtimeMs, nowMs) > d) return 412;
  }
  if (p.ifNoneMatch !== undefined) {
    if (etagMatches(p.ifNoneMatch, etag, true)) return 304;
  } else if (p.ifModifiedSince !== undefined) {
    const d = parseHttpDate(p.ifModifiedSince, nowMs);
    if (!Number.isNaN(d) && validatorTime(mtimeMs, nowMs) <= d) return 304;
  }
  return 200;
}
