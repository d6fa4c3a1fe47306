/**
 * Accept-Encoding negotiation for precompressed siblings (RFC 9110 sec. 12.5.3).
 * Pure: no I/O.
 *
 * @module
 */

/**
 * Whether `coding` is acceptable under an Accept-Encoding header value. An
 * explicit entry wins over `*`; `q=0` means "not acceptable".
 *
 * @param header The Accept-Encoding value (`undefined` when absent: only
 *   identity is assumed, so nothing precompressed is sent).
 * @param coding A content-coding token, e.g. `br` or `gzip`.
 * @returns `true` if the client accepts it.
 * @example
 * ```ts
 * import { acceptsCoding } from "./encoding.ts";
 * acceptsCoding("gzip, br;q=0", "br"); // false
 * ```
 */
export function acceptsCoding(header: string | undefined, coding: string): boolean {
  if (header === undefined || header === "") return false;
  let star = false;
  for (const part of header.split(",")) {
    const semi = part.indexOf(";");
    const token = (semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase();
    if (token !== coding && token !== "*" && !(coding === "gzip" && token === "x-gzip")) continue;
    let q = 1;
    if (semi >= 0) {
      const m = /(?:^|;)\s*q\s*=\s*([0-9.]+)/i.exec(part.slice(semi));
      if (m) q = Number(m[1]);
    }
    const ok = q > 0;
    if (token === "*") star = ok;
    else return ok;
  }
  return star;
}
