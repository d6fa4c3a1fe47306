/**
 * The `Destination` of MOVE and COPY (RFC 4918 sec. 10.3): an absolute URI
 * on this server, or an absolute path. Decoded by the same rule as request
 * paths (`decodePath`: decode once, then reject `..`, `.`, empty segments,
 * encoded `/`, `\` and NUL, never repair), so a Destination can name nothing
 * a request path could not. Another host, another scheme, userinfo, a query
 * or a fragment is refused: we never move files to someone else's server,
 * and no second reading of the URI may differ from ours. `new URL()` is not
 * used for the path on purpose: it resolves `..` instead of refusing it.
 *
 * @module
 */
import { decodePath } from "../http/resolve.ts";
import { isTempName } from "./atomic.ts";

/** A Destination we accept. */
export interface Destination {
  ok: true;
  /** Decoded path segments below the root (`[]`: the root itself). */
  segments: string[];
  /** The raw (still encoded) path, for the reply's Location. */
  path: string;
}

/** A Destination we refuse, with the status to answer. */
export interface BadDestination {
  ok: false;
  /** 400 (malformed), 502 (another server: RFC 4918 sec. 9.8.5, 9.9.4), 404 (hidden). */
  status: 400 | 404 | 502;
  /** Why. */
  reason: string;
}

const ABSOLUTE = /^(https?):\/\/([^/?#]*)(\/[^?#]*)?$/i;

/**
 * Parses a Destination against the request's Host.
 *
 * @param value the Destination header value
 * @param host the request's Host (authority)
 * @param dotfiles whether names starting with `.` may be named
 * @returns the decoded destination, or the refusal
 * @example
 * ```ts
 * import { parseDestination } from "./destination.ts";
 * import assert from "node:assert/strict";
 *
 * const d = parseDestination("http://h:8000/a%20b/c.txt", "h:8000", false);
 * assert.deepEqual(d, { ok: true, segments: ["a b", "c.txt"], path: "/a%20b/c.txt" });
 * assert.equal(parseDestination("http://evil/x", "h:8000", false).ok, false);
 * assert.equal(parseDestination("/a/../../etc/passwd", "h", false).ok, false);
 * ```
 */
export function parseDestination(
  value: string | undefined,
  host: string | undefined,
  dotfiles: boolean,
): Destination | BadDestination {
  if (value === undefined || value === "") {
    return { ok: false, status: 400, reason: "Destination missing" };
  }
  let path = value;
  if (!value.startsWith("/")) {
    const m = ABSOLUTE.exec(value);
    if (m === null) return { ok: false, status: 400, reason: "Destination is not an http URI" };
    const authority = m[2];
    if (authority.includes("@")) {
      return { ok: false, status: 400, reason: "Destination with userinfo" };
    }
    if (host === undefined || authority.toLowerCase() !== host.toLowerCase()) {
      return { ok: false, status: 502, reason: "Destination on another server" };
    }
    path = m[3] ?? "/";
  } else if (value.startsWith("//") || /[?#]/.test(value)) {
    return { ok: false, status: 400, reason: "Destination with authority, query or fragment" };
  }
  const d = decodePath(path, dotfiles);
  if (!d.ok) return { ok: false, status: d.status, reason: d.reason };
  if (d.segments.some(isTempName)) return { ok: false, status: 404, reason: "reserved name" };
  return { ok: true, segments: d.segments, path };
}
