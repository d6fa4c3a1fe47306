/**
 * The archive view: `?download=zip`, `?download=tar` or `?download=tar.gz`
 * of a directory, optionally of some of its names only
 * (`&select=a&select=b`). Reads top to bottom: parse the query, check the
 * folder can be read, walk it into members (`archive.ts`), lay the archive
 * out (`_archive_layout.ts`: length and ETag before any file is read),
 * preconditions, then Range, then the body, streamed with a Content-Length.
 *
 * Zip ranges need the CRC-32 of every file whose data descriptor or central
 * record they hold (and whose data they do not hold whole): those come from
 * the CRC cache (`_crc_cache.ts`, filled by every download that sent a file
 * whole) or are computed before the answer (a pool job each, or inline
 * without a pool), up to {@linkcode CRC_BUDGET}
 * bytes of reading; past it the range is ignored and the whole archive sent
 * (a 200, which RFC 9110 allows and every client handles).
 *
 * @module
 */
import type { Reply, RequestHead } from "./types.ts";
import {
  archiveBytes,
  ArchiveChanged,
  type ArchivePolicy,
  archivePreflight,
  type Collected,
  collectMembers,
  contentDisposition,
  fileCrc,
  gzipped,
} from "./archive.ts";
import {
  archiveETag,
  type ArchiveLayout,
  crcsNeeded,
  type Member,
  tarLayout,
  zipLayout,
} from "./_archive_layout.ts";
import { CrcCache } from "./_crc_cache.ts";
import { resultHead } from "./job_protocol.ts";
import { etagMatches } from "./conditional.ts";
import { multipartLayout, parseRange, type RangeResult } from "./range.ts";
import { pick } from "./_file_reply.ts";
import { TEXT } from "./_reply.ts";
import { collectGuards, type Site } from "./_site.ts";
import { collectEntriesAsync } from "./_collect.ts";
import type { ArchiveFormat, ArchiveQuery } from "./_archive_query.ts";

const encoder = new TextEncoder();

/** Bytes of files read to compute missing CRCs before answering one zip range. */
export const CRC_BUDGET = 1024 * 1024 * 1024;

const TYPES: Record<ArchiveFormat, string> = {
  zip: "application/zip",
  tar: "application/x-tar",
  "tar.gz": "application/gzip",
};

// One boundary per process: it only has to be absent from the part headers.
const BOUNDARY = "ringhttpd-archive-" + crypto.randomUUID().replaceAll("-", "");

/** CRC-32s of the files this thread sent, for later zip ranges. */
const crcCache = new CrcCache();

/**
 * The walk's policy for this request: the handler's, plus (under path
 * rules) the per-requester collector guards of each folder
 * ({@linkcode ArchivePolicy}`.guards`), so an archive holds only what the
 * requester could GET. Without rules: `site.policy` itself.
 */
function archivePolicy(site: Site, segments: string[], req: RequestHead): ArchivePolicy {
  const paths = site.paths;
  if (paths === undefined) return site.policy;
  const user = req.user;
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

function text(site: Site, status: number, message: string): Reply {
  const body = encoder.encode(message);
  return site.replies.reply(status, [["Content-Type", TEXT]], [body], body.length);
}

/**
 * The folder `real` as an archive download.
 *
 * @param site the handler
 * @param req the request (its query says the format; Range, If-Range, If-None-Match)
 * @param real the directory's real path
 * @param segments its decoded URL path segments (the last names the archive)
 * @param q the parsed archive query ({@linkcode parseArchiveQuery})
 * @returns 200/206/304/412/416, 400 for a bad query, 403 past maxArchiveBytes
 * @throws what reading the folder throws (PermissionDenied: the boundary's 403)
 */
export async function archiveReply(
  site: Site,
  req: RequestHead,
  real: string,
  segments: string[],
  q: ArchiveQuery,
): Promise<Reply> {
  const { root, replies, maxArchiveBytes } = site;
  if (q.error !== undefined) return text(site, 400, `400 Bad Request\n${q.error}\n`);
  const base = segments.length > 0
    ? segments[segments.length - 1]
    : root.slice(root.lastIndexOf("/") + 1) || "root";
  // Unreadable: throws, 403 like its listing.
  await archivePreflight(real);
  const policy = archivePolicy(site, segments, req);
  let only: Set<string> | undefined;
  if (q.select !== undefined) {
    // A name the listing would not show (hidden, denied, absent) is the same 400.
    const shown = new Set(
      (await collectEntriesAsync(real, policy, { ...policy.guards?.("", real), detail: true }))
        .filter((e) => !e.lossy && !e.special).map((e) => e.name),
    );
    const bad = q.select.filter((n) => !shown.has(n));
    if (bad.length > 0) {
      return text(
        site,
        400,
        `400 Bad Request\nselect must name entries of this folder; not found: ${
          bad.slice(0, 5).map((n) => JSON.stringify(n)).join(", ")
        }\n`,
      );
    }
    only = new Set(q.select);
  }
  const collected = await walkShared(
    `${real}\0${base}\0${q.select?.join("\0") ?? ""}`,
    policy === site.policy,
    () => collectMembers(real, base, policy, maxArchiveBytes, only),
  );
  const layout = collected.tooLarge
    ? undefined
    : q.format === "zip"
    ? zipLayout(collected.members)
    : tarLayout(collected.members);
  if (layout === undefined || layout.size > maxArchiveBytes) {
    return text(
      site,
      403,
      `403 Forbidden\nThis folder is more than ${maxArchiveBytes} bytes as a ${q.format} archive, ` +
        `the largest download this server allows.\n`,
    );
  }
  const type = TYPES[q.format];
  const headers: Array<[string, string]> = [
    ["Content-Type", type],
    ["Content-Disposition", contentDisposition(`${base}.${q.format}`)],
  ];
  if (q.format === "tar.gz") {
    // Compressed on the fly: no length, no range, no strong validator.
    const r = replies.reply(200, headers, [], -1);
    r.stream = gzipped(layout);
    return r;
  }
  const etag = archiveETag(q.format, collected.members);
  headers.push(["ETag", etag], ["Accept-Ranges", "bytes"]);
  // Only entity-tag preconditions: the archive has no single modification date.
  const p = pick(req);
  if (p.ifMatch !== undefined && !etagMatches(p.ifMatch, etag, false)) return replies.error(412);
  if (p.ifNoneMatch !== undefined && etagMatches(p.ifNoneMatch, etag, true)) {
    return replies.reply(304, [["ETag", etag]]);
  }
  const size = layout.size;
  // If-Range: only a strong match of our tag keeps the range (a date never does).
  const ifRangeOk = p.ifRange === undefined ||
    (p.ifRange.trim().startsWith('"') && etagMatches(p.ifRange.trim(), etag, false));
  const r: RangeResult = p.range !== undefined && ifRangeOk
    ? parseRange(p.range, size)
    : { kind: "full" };
  if (r.kind === "unsatisfiable") {
    headers.push(["Content-Range", `bytes */${size}`]);
    return replies.reply(416, headers, [], 0);
  }
  const crcs = new Map<number, number>();
  if (r.kind === "ranges" && (await knownCrcs(site, layout, r.ranges, crcs))) {
    if (r.ranges.length === 1) {
      const [start, end] = r.ranges[0];
      headers.push(["Content-Range", `bytes ${start}-${end - 1}/${size}`]);
      const reply = replies.reply(206, headers, [], end - start);
      reply.stream = archiveBytes(layout, start, end, crcs, remember(layout));
      return reply;
    }
    const { pieces, length } = multipartLayout(r.ranges, size, type, BOUNDARY);
    headers[0] = ["Content-Type", `multipart/byteranges; boundary=${BOUNDARY}`];
    const reply = replies.reply(206, headers, [], length);
    reply.stream = (async function* () {
      for (const piece of pieces) {
        if (piece instanceof Uint8Array) yield piece;
        else yield* archiveBytes(layout, piece[0], piece[1], crcs, remember(layout));
      }
    })();
    return reply;
  }
  const reply = replies.reply(200, headers, [], size);
  // A generator: nothing is opened until the engine pulls (never for HEAD).
  reply.stream = archiveBytes(layout, 0, size, crcs, remember(layout));
  return reply;
}

/** Walks in progress, by folder and selection. */
const walking = new Map<string, Promise<Collected>>();

/**
 * One walk for the requests that ask for the same folder while it runs
 * (aria2c's eight connections, a download and its HEAD): all get the
 * listing of the walk the first one started (the same race any listing has
 * with a change made while it is read). Not shared when the walk depends
 * on the requester (path rules: a policy of its own).
 */
function walkShared(
  key: string,
  shareable: boolean,
  walk: () => Promise<Collected>,
): Promise<Collected> {
  if (!shareable) return walk();
  let p = walking.get(key);
  if (p === undefined) {
    p = walk().finally(() => walking.delete(key));
    walking.set(key, p);
  }
  return p;
}

/**
 * The CRC-32 of a member's file: a pool job when there is a pool (the
 * reading and checksumming stay off the connection thread), else inline.
 * Throws {@linkcode ArchiveChanged} when the file is another version.
 */
async function crcOf(site: Site, m: Member): Promise<number> {
  if (site.jobs === undefined || m.body !== undefined) return fileCrc(m);
  const a = await site.jobs("crc", { real: m.path, size: m.size, mtimeMs: m.mtimeMs });
  const r = resultHead("crc", a);
  if (r !== undefined) return r.head.crc;
  if (a.status === 409) throw new ArchiveChanged(`${m.name} changed`);
  return fileCrc(m); // busy or failed: read it here
}

/** Stores each CRC a download computes in the cache, by the file's version. */
function remember(layout: ArchiveLayout): (i: number, crc: number) => void {
  return (i, crc) => {
    const m = layout.members[i];
    if (m.body === undefined) crcCache.set(m.path, m.size, m.mtimeMs, crc);
  };
}

/**
 * Fills `crcs` with every CRC the ranges need (tar: none) from the cache,
 * computing the missing ones when they take at most {@linkcode CRC_BUDGET}
 * bytes of reading.
 *
 * @returns false when the ranges cannot be served (over budget, or a file changed)
 */
async function knownCrcs(
  site: Site,
  layout: ArchiveLayout,
  ranges: Array<[number, number]>,
  crcs: Map<number, number>,
): Promise<boolean> {
  if (layout.format !== "zip") return true;
  const need = crcsNeeded(layout, ranges);
  const missing: number[] = [];
  let bytes = 0;
  for (const i of need) {
    const m = layout.members[i];
    const c = crcCache.get(m.path, m.size, m.mtimeMs);
    if (c !== undefined) crcs.set(i, c);
    else {
      missing.push(i);
      bytes += m.size;
    }
  }
  if (bytes > CRC_BUDGET) return false;
  try {
    for (const i of missing) {
      const m = layout.members[i];
      crcs.set(i, await crcCache.obtain(m.path, m.size, m.mtimeMs, () => crcOf(site, m)));
    }
  } catch (e) {
    // Changed since the walk: the whole (new) archive, not a range of a stale one.
    if (e instanceof ArchiveChanged || e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
  return true;
}
