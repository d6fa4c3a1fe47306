/**
 * Preconditions on writes (RFC 9110 sec. 13.1, 13.2.2): `If-None-Match: *`
 * creates only (412 when the target exists), `If-Match` replaces only the
 * version named (412 otherwise, and when nothing exists), so two writers
 * cannot overwrite each other's update unseen. Compared with the same strong
 * ETags GET sends. Pure: the caller stats the target.
 *
 * The check and the write are not one atomic step for a replace (`If-Match`);
 * a create (`If-None-Match: *`) is made atomic by the writer (a hard link
 * that fails when the name exists).
 *
 * @module
 */
import { getHeader, type RequestHead } from "../http/types.ts";
import { etagMatches, parseHttpDate, validatorTime } from "../http/conditional.ts";

/** The target's current version, or null when it does not exist. */
export interface Current {
  /** Its strong ETag, as GET sends it. */
  etag: string;
  /** Its modification time, ms. */
  mtimeMs: number;
}

/**
 * Evaluates the write preconditions of `req` against the target.
 *
 * 1. If-Match: `*` needs a current version; a list needs one that matches
 *    strongly. Else, when absent, If-Unmodified-Since older than the
 *    version -> 412.
 * 2. If-None-Match: `*` needs no current version; a list must not match
 *    (weakly) the current one. A failed If-None-Match on a write is 412,
 *    never 304 (RFC 9110 sec. 13.1.2).
 *
 * @param req the request
 * @param current the target's version, or null when absent
 * @param nowMs the current time
 * @returns 412 when a precondition fails, else 0
 * @example
 * ```ts
 * import { writePrecondition } from "./preconditions.ts";
 * import assert from "node:assert/strict";
 *
 * const req = (headers: string[]) =>
 *   ({ method: "PUT", target: "/a", path: "/a", query: "", minor: 1 as const, headers });
 * assert.equal(writePrecondition(req(["if-none-match", "*"]), { etag: '"x"', mtimeMs: 0 }), 412);
 * assert.equal(writePrecondition(req(["if-none-match", "*"]), null), 0);
 * assert.equal(writePrecondition(req(["if-match", '"x"']), { etag: '"x"', mtimeMs: 0 }), 0);
 * ```
 */
export function writePrecondition(
  req: RequestHead,
  current: Current | null,
  nowMs: number = Date.now(),
): 412 | 0 {
  const ifMatch = getHeader(req, "if-match");
  if (ifMatch !== undefined) {
    if (current === null || !etagMatches(ifMatch, current.etag, false)) return 412;
  } else {
    const ius = getHeader(req, "if-unmodified-since");
    if (ius !== undefined && current !== null) {
      const d = parseHttpDate(ius, nowMs);
      if (!Number.isNaN(d) && validatorTime(current.mtimeMs, nowMs) > d) return 412;
    }
  }
  const ifNoneMatch = getHeader(req, "if-none-match");
  if (ifNoneMatch !== undefined && current !== null) {
    if (etagMatches(ifNoneMatch, current.etag, true)) return 412;
  }
  return 0;
}

/**
 * Whether the request may only create (`If-None-Match: *`): the writer then
 * refuses, atomically, to replace a file that appeared meanwhile.
 *
 * @param req the request
 * @returns true for `If-None-Match: *`
 */
export function createOnly(req: RequestHead): boolean {
  return getHeader(req, "if-none-match")?.trim() === "*";
}
