/**
 * Filesystem errors -> HTTP statuses: one rule for the HTTP workers and the
 * pool threads (which must not load the whole handler to use it).
 *
 * @module
 */

function errCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === "string" ? c : undefined;
}

/**
 * Maps an error thrown by a filesystem call to the status the client sees:
 * missing, not-a-directory, symlink loop and name-too-long look absent (404);
 * permission denied is 403; out of descriptors is 503 (temporary); anything
 * else is 500.
 *
 * @param e The thrown value.
 * @returns 403, 404, 500 or 503.
 * @example
 * ```ts
 * import { errorStatus } from "./_fs_errors.ts";
 * errorStatus(new Deno.errors.NotFound("gone")); // 404
 * ```
 */
export function errorStatus(e: unknown): 403 | 404 | 500 | 503 {
  const code = errCode(e);
  if (
    e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory ||
    e instanceof Deno.errors.FilesystemLoop || code === "ENAMETOOLONG" ||
    code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP"
  ) return 404;
  if (e instanceof Deno.errors.PermissionDenied || code === "EACCES") return 403;
  if (code === "EMFILE" || code === "ENFILE") return 503;
  return 500;
}
