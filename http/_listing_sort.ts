/**
 * The order of a listing: directories first, then names in natural,
 * case-insensitive order (ICU's, through `Intl.Collator`), or by size or
 * modification time with the name as tie-break. Re-exported by `listing.ts`.
 *
 * @module
 */
import type { Entry } from "./_collect.ts";
import type { SortKey, SortOrder } from "./listing.ts";

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
