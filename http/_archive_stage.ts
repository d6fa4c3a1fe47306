/**
 * The archive view: `?download=tar` of a directory, as a tar stream of
 * unknown length (built by `archive.ts`). With a bound, the exact archive
 * size is counted first (stopping at the bound), so a folder that is too
 * large is refused before a byte is sent rather than cut off mid-download.
 *
 * @module
 */
import type { Reply } from "./types.ts";
import { type ArchivePolicy, archivePreflight, contentDisposition, tarStream } from "./archive.ts";
import { TEXT } from "./_reply.ts";
import { collectGuards, type Site } from "./_site.ts";

const encoder = new TextEncoder();

/**
 * The folder `real` as a tar download.
 *
 * @param site the handler
 * @param real the directory's real path
 * @param segments its decoded URL path segments (the last names the archive)
 * @param user the requester (`req.user`): the path rules filter what it holds
 * @returns a streamed 200, or 403 when the archive would pass maxArchiveBytes
 */
export async function archiveReply(
  site: Site,
  real: string,
  segments: string[],
  user?: string,
): Promise<Reply> {
  const { root, replies, maxArchiveBytes } = site;
  const policy = archivePolicy(site, segments, user);
  const base = segments.length > 0
    ? segments[segments.length - 1]
    : root.slice(root.lastIndexOf("/") + 1) || "root";
  // Unreadable: throws, 403 like its listing. Bounded: the size first.
  const size = await archivePreflight(real, base, policy, maxArchiveBytes);
  if (size > maxArchiveBytes) {
    const body = encoder.encode(
      `403 Forbidden\nThis folder is more than ${maxArchiveBytes} bytes as a tar archive, ` +
        `the largest download this server allows.\n`,
    );
    return replies.reply(403, [["Content-Type", TEXT]], [body], body.length);
  }
  const r = replies.reply(
    200,
    [
      ["Content-Type", "application/x-tar"],
      ["Content-Disposition", contentDisposition(base + ".tar")],
    ],
    [],
    -1,
  );
  // A generator: nothing is opened until the engine pulls (never for HEAD).
  r.stream = tarStream(real, base, policy, maxArchiveBytes);
  return r;
}

/**
 * The handler's policy plus, under path rules, which entries each folder of
 * the download may hold for this requester: what they may read, and not
 * what a rule keeps from being listed (`list: false`).
 */
function archivePolicy(site: Site, segments: string[], user: string | undefined): ArchivePolicy {
  const paths = site.paths;
  if (paths === undefined) return site.policy;
  const top = segments.length === 0 ? "" : "/" + segments.join("/");
  return {
    ...site.policy,
    guards: (rel, dir) => {
      const url = top + "/" + rel;
      const g = collectGuards(site, url, dir, user);
      const filter = g?.filter;
      return {
        linkOk: g?.linkOk,
        filter: (name) =>
          (filter === undefined || filter(name)) && paths.rulesFor(url + name).list !== false,
      };
    },
  };
}
