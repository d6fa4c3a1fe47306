/**
 * The listing view: a directory without index.html as an HTML or JSON page,
 * through the listing cache. Inline (no pool) a directory is collected once
 * per revalidateMs (asynchronously, one collect per directory at a time)
 * and each sort, format and page is rendered from that snapshot once; with
 * a pool, each page is a job and the pages of one directory share a
 * snapshot record that expires as a whole.
 *
 * @module
 */
import { getHeader, type Reply, type RequestHead } from "./types.ts";
import { type ListingQuery, parseListingQuery } from "./listing.ts";
import { hitEntries, search } from "./_search.ts";
import {
  COLLECT_MAX,
  collectEntriesAsync,
  type Page,
  renderPage,
  renderSearch,
  variantKey,
} from "./_listing_page.ts";
import { evaluatePreconditions } from "./conditional.ts";
import { hasConditional, pick } from "./_file_reply.ts";
import { type DirSnap, newSnap, type Rendered, type Route, sameEntries } from "./_listing_cache.ts";
import { resultHead } from "./job_protocol.ts";
import { loadReadme } from "./_readme.ts";
import { TEXT } from "./_reply.ts";
import { collectGuards, type Site, underRoot } from "./_site.ts";
import type { PathRules, PathRulesConfig } from "./path_rules.ts";
import { newestMtime } from "./_collect.ts";

/** Whether the client asked for JSON by header (`?format=json` is in the query). */
function wantsJson(req: RequestHead): boolean {
  const accept = getHeader(req, "accept");
  return accept !== undefined && accept.includes("application/json");
}

/**
 * The listing cache's key of a request: path, query, format.
 *
 * @param req the request
 * @returns the route key
 */
export function routeKey(req: RequestHead, paths?: PathRules): string {
  const key = req.path + "?" + req.query + (wantsJson(req) ? "\0j" : "\0h");
  // Path rules that show each requester their own entries: one page each.
  return paths === undefined ? key : key + paths.viewerKey(req.user);
}

/**
 * What search may show one requester, or undefined when no rule filters: a
 * path (relative to the root) passes when the requester may read it (not
 * hidden, access allows them: as each folder's listing filters it) and no
 * folder above it has its listing off (`list: false`, or listings off and
 * no rule turning them on): such a folder's own name is found, as its
 * parent's listing shows it, but nothing below it, which no listing shows.
 * (`search` asks about every folder on a hit's way, so each asks only about
 * its parent; folders above the searched one are not asked about listing:
 * the searched one is listed, or this view would not run.)
 *
 * @param site the handler
 * @param folderRel the searched folder, relative to the root ("" for the root)
 * @param user the requester (`req.user`)
 * @returns the search's access filter
 */
export function searchFilter(
  site: Site,
  folderRel: string,
  user: string | undefined,
): ((relPath: string, isDir: boolean) => boolean) | undefined {
  const paths = site.paths;
  if (paths === undefined) return undefined;
  const listed = (dir: string) => paths.rulesFor(dir).list ?? site.dirListing;
  return (rel) => {
    const slash = rel.lastIndexOf("/");
    if (!paths.mayRead("/" + rel, user)) return false;
    return slash < folderRel.length || listed("/" + rel.slice(0, slash));
  };
}

/** Both filters (either may be absent). */
function both(
  a: ((rel: string, isDir: boolean) => boolean) | undefined,
  b: ((rel: string) => boolean) | undefined,
): ((rel: string, isDir: boolean) => boolean) | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return (rel, isDir) => a(rel, isDir) && b(rel);
}

/** The listing view of one handler. */
export class ListingStage {
  readonly #site: Site;

  /** @param site the handler's shared state */
  constructor(site: Site) {
    this.#site = site;
  }

  /**
   * A cached listing page answered: preconditions only when the request has any.
   *
   * @param req the request
   * @param page the cached page
   * @returns the shared 200 or 304, or a 412
   */
  listed(req: RequestHead, page: Rendered): Reply {
    if (!hasConditional(req.headers)) return page.ok;
    const pre = evaluatePreconditions(pick(req), page.etag, page.mtimeMs);
    return pre === 304 ? page.notModified : pre === 412 ? this.#site.replies.error(412) : page.ok;
  }

  /**
   * A cached listing past revalidateMs: resolve the path again (it may now
   * have an index.html, be gone, or lead elsewhere) and re-collect. Requests
   * arriving meanwhile keep the old bytes (whole and consistent, only as
   * stale as the window allows) instead of each starting the same I/O.
   *
   * @param req the request
   * @param key its route key
   * @param r its stale route
   * @returns the reply
   */
  async relist(req: RequestHead, key: string, r: Route): Promise<Reply> {
    r.snap.claimed = true;
    try {
      return await this.#site.slow(req);
    } finally {
      r.snap.claimed = false;
      // Not answered with a cached listing this time: forget the route.
      this.#site.listings.dropRoute(key, r);
    }
  }

  /**
   * Lists the directory `real`.
   *
   * @param req the request
   * @param real the directory's real path
   * @param segments its decoded URL path segments
   * @param dirInfo its stat
   * @returns the page, a 304/412, or 404 past the last page
   */
  async serve(
    req: RequestHead,
    real: string,
    segments: string[],
    dirInfo: Deno.FileInfo,
  ): Promise<Reply> {
    const { listings, replies } = this.#site;
    const q = parseListingQuery(req.query, this.#site.page.listingCap);
    if (q.error !== undefined) {
      const body = new TextEncoder().encode(`400 Bad Request\n${q.error}\n`);
      return replies.reply(400, [["Content-Type", TEXT]], [body], body.length);
    }
    const json = q.json || wantsJson(req);
    const path = segments.length === 0 ? "/" : "/" + segments.join("/") + "/";
    if (q.filter !== undefined && !q.here) return this.#search(req, real, q, json, path);
    // The HTML shows the URL path (title, breadcrumbs); the JSON does not.
    const paths = this.#site.paths;
    const vkey = variantKey(q, json, path) + (paths?.viewerKey(req.user) ?? "");
    const rkey = routeKey(req, paths);
    if (this.#site.jobs !== undefined) return this.#pooled(req, real, path, json, vkey);
    const snap = await this.#snapshot(real, dirInfo);
    let page = snap.variants.get(vkey);
    if (page === undefined) {
      let sorted = listings.sorted(snap, q.sort, q.order);
      let mtimeMs = snap.mtimeMs;
      const filter = collectGuards(this.#site, path, real, req.user)?.filter;
      let readme = snap.readme;
      if (filter !== undefined) {
        // What this requester may not read leaves no name, size or date: not
        // even the folder's own mtime (a hidden file's creation moves it).
        sorted = sorted.filter((e) => filter(e.name));
        mtimeMs = newestMtime(0, sorted);
        if (readme !== undefined && !filter(readme.name)) readme = undefined;
      }
      const cfg = this.#site.page;
      const p = renderPage(sorted, snap.truncated, mtimeMs, q, json, path, cfg, {
        readme: readme?.html,
        readmeName: readme?.name,
        readmeTag: readme?.tag,
      });
      if (p.status === 404) return replies.error(404);
      page = this.#rendered(p, p.body);
      listings.remember(rkey, snap, vkey, page);
    } else listings.setRoute(rkey, snap, page);
    return this.listed(req, page);
  }

  /**
   * A search below the folder `real` (`?q=` without `scope=folder`): the
   * shared index, or a walk; the page's hits are stat'ed here. The path
   * rules apply as in a listing of each folder on the way ({@linkcode searchFilter}).
   */
  async #search(
    req: RequestHead,
    real: string,
    q: ListingQuery,
    json: boolean,
    path: string,
  ): Promise<Reply> {
    const { policy, replies } = this.#site;
    const root = policy.root;
    // A folder reached through a symlink out of the root (followSymlinks) is not in the index.
    const rel = real === root
      ? ""
      : real.startsWith(root === "/" ? "/" : root + "/")
      ? real.slice(root === "/" ? 1 : root.length + 1)
      : undefined;
    const r = rel === undefined
      ? { hits: [], partial: true, more: false, source: "walk" as const }
      : await search(
        policy,
        this.#site.search,
        rel,
        q.filter!,
        both(searchFilter(this.#site, rel, req.user), this.#allow(req.user)),
      );
    // A symlinked hit must lead where the same rules protect it (as in a listing).
    const linkOk = collectGuards(this.#site, "/", root, req.user)?.linkOk;
    const p = renderSearch(
      r,
      (hits) => hitEntries(policy, rel ?? "", hits, linkOk),
      q,
      json,
      path,
      this.#site.page,
    );
    if (p.status === 404) return replies.error(404);
    return replies.reply(200, p.headers, [p.body], p.body.length);
  }

  /**
   * A listing rendered by the job pool. The pool keeps nothing: each job
   * collects, sorts and renders; a result that raced with an invalidation
   * is answered but not kept.
   */
  async #pooled(
    req: RequestHead,
    real: string,
    path: string,
    json: boolean,
    vkey: string,
  ): Promise<Reply> {
    const { listings, replies, running, jobs } = this.#site;
    const fresh = listings.dir(real);
    if (fresh !== undefined && listings.fresh(fresh, Date.now())) {
      const page = fresh.variants.get(vkey);
      if (page !== undefined) {
        listings.setRoute(routeKey(req), fresh, page);
        return this.listed(req, page);
      }
    }
    const started = listings.epoch(real);
    const submitted = Date.now();
    const a = await running.shared(
      `${real}\0${vkey}\0${started}`,
      () => jobs!("listing", { real, path, query: req.query, json, ...this.#access(req) }),
    );
    const r = resultHead("listing", a);
    if (r === undefined) return replies.jobError(a.status);
    if (r.head.status === 404) return replies.error(404);
    const page = this.#rendered(r.head, r.body);
    if (started !== listings.epoch(real)) return this.listed(req, page);
    let snap = listings.dir(real);
    if (snap === undefined || !listings.fresh(snap, submitted)) {
      snap = newSnap(real, [], false, 0, submitted);
      listings.keep(snap, 256);
    }
    listings.remember(routeKey(req), snap, vkey, page);
    return this.listed(req, page);
  }

  /**
   * Search's filter under path rules: the hits this requester may read, by
   * URL path and, for a name that is (or lies below) a symlink, by where it
   * leads (as the listing's `linkOk`): a public link to a hidden file would
   * give away its size and date.
   */
  #allow(user: string | undefined): ((rel: string) => boolean) | undefined {
    const site = this.#site;
    const paths = site.paths;
    if (paths === undefined || !paths.filters) return undefined;
    return (rel) => {
      const url = "/" + rel;
      if (!paths.mayRead(url, user)) return false;
      let real: string;
      try {
        real = Deno.realPathSync(site.root + url);
      } catch {
        return false;
      }
      const to = underRoot(site, real);
      return to === undefined || paths.sameProtection(url, to);
    };
  }

  /** The path rules and the requester, for a pool thread to filter with (or nothing). */
  #access(req: RequestHead): { access?: { rules: PathRulesConfig; user?: string } } {
    const paths = this.#site.paths;
    if (paths === undefined || !paths.filters) return {};
    return { access: { rules: paths.config, user: paths.personal ? req.user : undefined } };
  }

  /**
   * The collected entries of `real`: from the cache while younger than
   * revalidateMs, else collected again (one collect per directory at a time;
   * one begun before this directory changed may miss the change: not joined).
   */
  #snapshot(real: string, dirInfo: Deno.FileInfo): DirSnap | Promise<DirSnap> {
    // (The snapshot is everyone's: only the symlink check, which is the same
    // for every requester, applies while collecting.)
    const { listings, running } = this.#site;
    const old = listings.dir(real);
    if (old !== undefined && listings.fresh(old, Date.now())) return old;
    return running.shared(
      `${real}\0collect\0${listings.epoch(real)}`,
      () => this.#collect(real, dirInfo, old),
    );
  }

  /** Collects `real`; unchanged entries keep the old snapshot, its bytes and so its ETags. */
  async #collect(real: string, dirInfo: Deno.FileInfo, old?: DirSnap): Promise<DirSnap> {
    const { listings, policy, page } = this.#site;
    const started = listings.epoch(real);
    // Bounded: a huge directory costs at most COLLECT_MAX entries of time and memory.
    const collectMax = Math.max(COLLECT_MAX, page.listingCap);
    const linkOk = collectGuards(this.#site, "/", real, undefined)?.linkOk;
    const entries = await collectEntriesAsync(real, policy, { max: collectMax + 1, linkOk });
    const now = Date.now();
    const truncated = entries.length > collectMax;
    if (truncated) entries.length = collectMax;
    const dirMtimeMs = dirInfo.mtime?.getTime() ?? 0;
    if (old !== undefined && old.live) {
      if (old.dirMtimeMs === dirMtimeMs && sameEntries(old.entries, entries)) {
        old.checked = now;
        return old;
      }
      listings.drop(old);
    }
    const s = newSnap(real, entries, truncated, dirMtimeMs, now);
    s.readme = await loadReadme(real, entries);
    // Paginated directories too (within the listing budget, which the
    // listing cache enforces); not a collect that raced with an invalidation.
    if (started === listings.epoch(real)) {
      let n = 256;
      for (const e of entries) n += 64 + 2 * e.name.length;
      n += 2 * (s.readme?.html.length ?? 0);
      listings.keep(s, n);
    }
    return s;
  }

  /** A page as cached: frozen 200 and 304 replies with their heads serialised. */
  #rendered(p: Omit<Page, "body">, body: Uint8Array): Rendered {
    const replies = this.#site.replies;
    const ok = replies.frozen(200, p.headers, body);
    const notModified = replies.frozen(304, p.notModifiedHeaders, null);
    const bytes = body.length + ok.rawHead!.length + notModified.rawHead!.length;
    return { etag: p.etag, mtimeMs: p.mtimeMs, ok, notModified, bytes };
  }
}
