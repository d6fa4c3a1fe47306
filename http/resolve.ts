/**
 * Path safety: request path -> list of decoded segments, or a 4xx status.
 *
 * The rule is "decode once, then reject, never repair" (oak `resolve_path.ts`,
 * SWS `security.rs`): anything a normalising step would have to fix is an
 * error, so there is exactly one spelling of every served file and no second
 * decoding step can reintroduce `..` or `/`. The real-path check against the
 * real root (`isInside`) is the second, independent line of defence that
 * catches symlinks.
 *
 * @module
 */

import { TEMP_PREFIX } from "../write/atomic.ts";

/** A request path that passed every rule. */
export interface DecodedPath {
  /** Discriminant: the path was accepted. */
  ok: true;
  /** Decoded segments, none empty, none `.`/`..`; `[]` for `/`. */
  segments: string[];
  /** Whether the path ended in `/` (a directory was asked for). */
  trailingSlash: boolean;
}

/** A request path that was refused. */
export interface RejectedPath {
  /** Discriminant: the path was refused. */
  ok: false;
  /** 400 for a malformed path, 404 for one that names a hidden file. */
  status: 400 | 404;
  /** Why, for tests and logs. */
  reason: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  c |= 0x20;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function reject(status: 400 | 404, reason: string): RejectedPath {
  return { ok: false, status, reason };
}

/** The `reason` of a path refused only for not being valid UTF-8. */
export const INVALID_UTF8 = "invalid UTF-8";

/** Percent-decodes to bytes; refuses escapes that would change the path's shape. */
function percentDecode(path: string): Uint8Array | RejectedPath {
  const n = path.length;
  const bytes = new Uint8Array(n);
  let len = 0;
  for (let i = 0; i < n; i++) {
    let c = path.charCodeAt(i);
    if (c === 37) {
      const hi = i + 2 < n ? hex(path.charCodeAt(i + 1)) : -1;
      const lo = hi >= 0 ? hex(path.charCodeAt(i + 2)) : -1;
      if (lo < 0) return reject(400, "invalid percent escape");
      c = hi * 16 + lo;
      // These would change the meaning of the path if decoded; a legitimate
      // file name cannot contain NUL or `/`, and `\` is a separator elsewhere.
      if (c === 0) return reject(400, "encoded NUL");
      if (c === 47) return reject(400, "encoded slash");
      if (c === 92) return reject(400, "encoded backslash");
      i += 2;
    }
    bytes[len++] = c;
  }
  return bytes.subarray(0, len);
}

/**
 * Percent-decodes a request path once and checks it segment by segment.
 *
 * Rejected with 400: not starting with `/`; bytes outside printable ASCII;
 * an invalid `%` escape; an encoded NUL, `/` (`%2F`) or `\` (`%5C`); a literal
 * backslash; invalid or overlong UTF-8 after decoding; `.` or `..` segments;
 * empty segments (`//`). Rejected with 404: a segment starting with `.` when
 * `dotfiles` is false (hidden files must look absent, not forbidden).
 *
 * @param path The request path up to `?`, still percent-encoded.
 * @param dotfiles Whether names starting with `.` may be served.
 * @returns The decoded segments, or the status to answer.
 * @example Decoding a path
 * ```ts
 * import { decodePath } from "./resolve.ts";
 * decodePath("/a%20b/c.txt", false); // { ok: true, segments: ["a b", "c.txt"], trailingSlash: false }
 * ```
 */
export function decodePath(path: string, dotfiles: boolean): DecodedPath | RejectedPath {
  const n = path.length;
  if (n === 0 || path.charCodeAt(0) !== 47) return reject(400, "path must start with /");
  let hasEscape = false;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return reject(400, "raw byte outside printable ASCII");
    if (c === 92) return reject(400, "backslash");
    if (c === 37) hasEscape = true;
  }
  let decoded = path;
  if (hasEscape) {
    const bytes = percentDecode(path);
    if (!(bytes instanceof Uint8Array)) return bytes;
    try {
      decoded = utf8.decode(bytes);
    } catch {
      return reject(400, INVALID_UTF8);
    }
  }
  const trailingSlash = decoded.charCodeAt(decoded.length - 1) === 47;
  const body = decoded.slice(1, trailingSlash ? -1 : undefined);
  if (body === "") return { ok: true, segments: [], trailingSlash: true };
  const segments = body.split("/");
  for (const s of segments) {
    if (s === "") return reject(400, "empty segment");
    if (s.charCodeAt(0) === 46) {
      if (s === "." || s === "..") return reject(400, "dot segment");
      if (!dotfiles) return reject(404, "dotfile");
      // An upload in progress (write/atomic.ts): never served, even with dotfiles on.
      if (s.startsWith(TEMP_PREFIX)) return reject(404, "temporary upload");
    }
  }
  return { ok: true, segments, trailingSlash };
}

/**
 * Whether `real` is `root` itself or a path under it. Both must be real
 * (symlink-free, absolute) paths; `root` without a trailing `/` except `/`.
 *
 * @param root The real root directory.
 * @param real The real path of the requested file.
 * @returns `true` when `real` is inside `root`.
 * @example
 * ```ts
 * import { isInside } from "./resolve.ts";
 * isInside("/srv", "/srv/a"); // true
 * isInside("/srv", "/srvx"); // false
 * ```
 */
export function isInside(root: string, real: string): boolean {
  if (real === root) return true;
  if (root === "/") return real.startsWith("/");
  return real.length > root.length && real.charCodeAt(root.length) === 47 &&
    real.startsWith(root);
}

/**
 * Whether a decoded segment list names a hidden file anywhere on the real
 * path (`.` prefix) - used on the real path so a symlink named `x` that points
 * at `.git` does not reveal it.
 *
 * @param root The real root directory.
 * @param real A real path inside `root`.
 * @returns `true` if some component below the root starts with `.`.
 * @example
 * ```ts
 * import { hasDotComponent } from "./resolve.ts";
 * hasDotComponent("/srv", "/srv/.git/config"); // true
 * ```
 */
export function hasDotComponent(root: string, real: string): boolean {
  const start = root === "/" ? 0 : root.length;
  return real.indexOf("/.", start) >= 0;
}

/** What may be served (and so listed or archived): the handler's symlink and dotfile policy. */
export interface ServePolicy {
  /** The real root directory (symlink-free, no trailing `/` except `/`). */
  root: string;
  /** Serve names starting with `.`. */
  dotfiles: boolean;
  /** Serve symlinks whose target leaves the root. */
  followSymlinks: boolean;
}

/**
 * Whether a real path may be served under `policy`: inside the root and not
 * hidden (no dot component below the root unless dotfiles are on), or
 * anywhere when symlinks are followed. The one rule GET, listings and folder
 * downloads share, so a listing never shows what GET would answer 404.
 *
 * @param policy Root, dotfile and symlink policy.
 * @param real The real (symlink-free) path of the entry.
 * @returns `true` when `real` may be served.
 * @example
 * ```ts
 * import { servable } from "./resolve.ts";
 * const policy = { root: "/srv", dotfiles: false, followSymlinks: false };
 * servable(policy, "/srv/a.txt"); // true
 * servable(policy, "/etc"); // false
 * servable(policy, "/srv/.env"); // false
 * ```
 */
export function servable(policy: ServePolicy, real: string): boolean {
  if (isInside(policy.root, real)) {
    if (!policy.dotfiles) return !hasDotComponent(policy.root, real);
    // Dotfiles shown: a temporary upload (write/atomic.ts) still is not.
    return real.indexOf("/" + TEMP_PREFIX, policy.root.length) < 0;
  }
  return policy.followSymlinks;
}

const TEMP_BYTES = new TextEncoder().encode(TEMP_PREFIX);

/** A request path kept as raw bytes (for names that are not UTF-8). */
export interface RawPath {
  /** Discriminant: the path was accepted. */
  ok: true;
  /** The decoded path without its leading and trailing `/`. */
  bytes: Uint8Array;
  /** Whether the path ended in `/` (a directory was asked for). */
  trailingSlash: boolean;
}

/**
 * The byte-level twin of {@link decodePath}, for paths that decodePath
 * refused only as invalid UTF-8: the same rules applied to bytes, with the
 * bytes kept as they are (the kernel treats them as opaque, so nothing is
 * repaired). Overlong forms (lead byte C0/C1, E0 80-9F, F0 80-8F), which
 * lenient decoders turn into `/` or `.`, are still refused with 400.
 *
 * @param path The request path up to `?`, still percent-encoded.
 * @param dotfiles Whether names starting with `.` may be served.
 * @returns The raw bytes, or the status to answer.
 * @example
 * ```ts
 * import { decodeRawPath } from "./resolve.ts";
 * decodeRawPath("/a%FF.txt", false); // { ok: true, bytes: [0x61, 0xff, ...], trailingSlash: false }
 * ```
 */
export function decodeRawPath(path: string, dotfiles: boolean): RawPath | RejectedPath {
  const d = decodePath(path, dotfiles);
  if (!d.ok && d.reason !== INVALID_UTF8) return d;
  const all = percentDecode(path);
  if (!(all instanceof Uint8Array)) return all;
  for (let i = 0; i < all.length; i++) {
    const b = all[i];
    const next = i + 1 < all.length ? all[i + 1] : 0;
    if (
      b === 0xc0 || b === 0xc1 || (b === 0xe0 && next < 0xa0 && next >= 0x80) ||
      (b === 0xf0 && next < 0x90 && next >= 0x80)
    ) {
      return reject(400, "overlong UTF-8");
    }
  }
  const trailingSlash = all[all.length - 1] === 47;
  const bytes = all.subarray(1, trailingSlash ? all.length - 1 : all.length);
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 47) continue;
    const len = i - start;
    if (len === 0) return reject(400, "empty segment");
    if (bytes[start] === 46) {
      if (len === 1 || (len === 2 && bytes[start + 1] === 46)) return reject(400, "dot segment");
      if (!dotfiles) return reject(404, "dotfile");
      if (TEMP_BYTES.every((b, k) => bytes[start + k] === b)) {
        return reject(404, "temporary upload");
      }
    }
    start = i + 1;
  }
  return { ok: true, bytes, trailingSlash };
}
