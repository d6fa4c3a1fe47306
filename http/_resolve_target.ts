/**
 * Path resolution, the stage between the route rules and the views: the
 * request path decoded (once, then rejected, never repaired), joined to the
 * root, resolved to its real path, checked against the serving policy and
 * stat'ed, and so classified as a file, a directory, a redirect or an error.
 *
 * @module
 */
import type { RequestHead } from "./types.ts";
import { decodePath, INVALID_UTF8 } from "./resolve.ts";
import { rawAvailable } from "./_rawfs.ts";
import { realInRoot, type Site, underRoot } from "./_site.ts";

/** What a request path names. */
export type Target =
  | { kind: "error"; status: number }
  /** Not UTF-8: may name a file Deno cannot spell; the raw-bytes path serves it. */
  | { kind: "raw" }
  | { kind: "redirect"; location: string }
  | { kind: "file"; real: string }
  | { kind: "dir"; real: string; segments: string[]; info: Deno.FileInfo };

/**
 * Resolves the request's path.
 *
 * @param site the handler
 * @param req the request
 * @returns what it names
 * @throws filesystem errors (NotFound, PermissionDenied...) for the boundary to map
 */
export async function resolveTarget(site: Site, req: RequestHead): Promise<Target> {
  const d = decodePath(req.path, site.policy.dotfiles);
  if (!d.ok) {
    if (d.reason === INVALID_UTF8 && rawAvailable()) return { kind: "raw" };
    return { kind: "error", status: d.status };
  }
  const root = site.root;
  const fsPath = d.segments.length === 0 ? root : root + "/" + d.segments.join("/");
  const real = await realInRoot(site, fsPath);
  if (real === null) return { kind: "error", status: 404 };
  if (real !== fsPath && site.paths?.filters) {
    // Through a symlink: only to a place protected alike, or it would be a
    // way around a path rule (and the caches, keyed by URL, would spread it).
    const there = underRoot(site, real);
    const here = "/" + d.segments.join("/");
    if (there !== undefined && !site.paths.sameProtection(here, there)) {
      return { kind: "error", status: 404 };
    }
  }
  const info = await Deno.stat(real);
  if (info.isDirectory) {
    if (!d.trailingSlash) {
      // Relative links inside the listing resolve against the URL, so the
      // directory URL must end in `/`. Relative Location: never from Host.
      const raw = req.path.slice(req.path.lastIndexOf("/") + 1);
      const location = "./" + raw + "/" + (req.query === "" ? "" : "?" + req.query);
      return { kind: "redirect", location };
    }
    return { kind: "dir", real, segments: d.segments, info };
  }
  // `file/` asks for a directory; opening a FIFO or device would block.
  if (d.trailingSlash || !info.isFile) return { kind: "error", status: 404 };
  return { kind: "file", real };
}
