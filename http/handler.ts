/**
 * The file handler: request head -> reply, as a pipeline of named stages,
 * each in its own module:
 *
 * ```text
 * method check -> route rules (rules.ts: CORS preflight, then options.rules)
 *   -> cached answers (_file_cache.ts, _listing_cache.ts: no I/O)
 *   -> path resolution (_resolve_target.ts)
 *   -> one view: file / index (_file_stage.ts), listing (_listing_stage.ts),
 *      archive (_archive_stage.ts)
 * every reply is decorated with the common headers by _reply.ts
 * ```
 *
 * One catch at the boundary maps errors to statuses (`Replies.mapError`).
 * Metrics are served in front of this handler by the HTTP worker.
 *
 * @module
 */
import type { Handler, Reply, RequestHead } from "./types.ts";
import type { ServePolicy } from "./resolve.ts";
import type { SubmitJob } from "./job_protocol.ts";
import { commonHeaders, Replies, TEXT } from "./_reply.ts";
import { baseHeaders } from "./_file_reply.ts";
import { FileCache } from "./_file_cache.ts";
import { ListingCache } from "./_listing_cache.ts";
import { type IndexBuffers, NameIndex } from "./_name_index.ts";
import { devHandler } from "./_dev.ts";
import { Coalescer } from "./_coalesce.ts";
import { corsPreflight, isThenable, type Rule, type RuleContext, runRules } from "./rules.ts";
import { resolveTarget, type Target } from "./_resolve_target.ts";
import { existingFile, type Site } from "./_site.ts";
import { FileStage } from "./_file_stage.ts";
import { ListingStage, routeKey } from "./_listing_stage.ts";
import { parseArchiveQuery } from "./_archive_query.ts";
import { accessRule, type Credentials, decorating } from "./_access_stage.ts";
import { PathRules, type PathRulesConfig } from "./path_rules.ts";
import { resolveHandlerOptions } from "../options/resolve.ts";
import {
  cachePolicy,
  checkSiteFiles,
  notFoundStage,
  siteHeaders,
  type SiteOptions,
  spaPath,
} from "./_site_rules.ts";
import { redirectRule } from "./_redirects.ts";
import { allocateRateTable, rateLimitRule, RateTable } from "./_rate_limit.ts";
import { checkRedirects } from "../options/redirects.ts";
// WebDAV and writes (#14): the stages after the route rules for every method but GET/HEAD,
// loaded on demand (their XML, digest and glob packages stay out of a read-only worker).
import type { DavStage } from "../write/dav.ts";
import type { WriteOptions } from "../write/stage.ts";
import type { BodyAcceptance } from "../write/body.ts";

export { errorStatus } from "./_fs_errors.ts";
export { COLLECT_MAX } from "./_listing_page.ts";
export { RAW_MAX_BYTES } from "./_file_stage.ts";
export type { JobAnswer, SubmitJob } from "./job_protocol.ts";
export type { Rule, RuleContext } from "./rules.ts";
export type { Credentials } from "./_access_stage.ts";
export type { PathRulesConfig, PathRuleSpec } from "./path_rules.ts";

/**
 * Options of {@link createHandler}. Every field but `root` is optional.
 *
 * @example Files only: no listings, no folder downloads
 * ```ts
 * import type { HandlerOptions } from "./handler.ts";
 *
 * const options: HandlerOptions = { root: ".", dirListing: false, maxArchiveBytes: 0 };
 * console.assert(options.dirListing === false);
 * ```
 */
export interface HandlerOptions extends SiteOptions {
  /** The directory to serve. */
  root: string;
  /** Answer a directory without `index.html` with a listing. @default true */
  dirListing?: boolean;
  /** Serve and list names starting with `.`. @default false */
  dotfiles?: boolean;
  /** Serve files whose real path leaves the root through a symlink. @default false */
  followSymlinks?: boolean;
  /**
   * Add `Access-Control-Allow-Origin: *` to every reply and answer CORS
   * preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
   * with 204 and the `Access-Control-Allow-*` headers. @default false
   */
  cors?: boolean;
  /** Extra headers added to every reply. @default [] */
  headers?: Array<[string, string]>;
  /** Most entries per listing page: the cap of `?per_page=` (pages of 1,000 by default, or of this if smaller). @default 10000 */
  listingCap?: number;
  /** Largest file kept in the in-memory cache, bytes. @default 65536 */
  cacheMaxFileBytes?: number;
  /**
   * Total bytes of cached file bodies and rendered listings (listings take at
   * most a quarter). @default 67108864 (64 MiB)
   */
  cacheMaxBytes?: number;
  /**
   * How long a cache entry (file or listing) is trusted before a stat, or for
   * a listing a new collect, re-checks it, ms. @default 1000
   */
  revalidateMs?: number;
  /**
   * Largest folder download (`?download=tar`, only offered with listings), in
   * bytes of tar: a larger folder is refused with 403 before anything is sent.
   * 0 turns folder downloads off. @default Infinity
   */
  maxArchiveBytes?: number;
  /**
   * Compress text files of 1 KiB or more with gzip or brotli when the
   * client accepts it and no precompressed sibling exists. @default true
   */
  compress?: boolean;
  /**
   * Where listings are rendered and files compressed: the server's job pool
   * (an HTTP worker passes its `JobClient`). Undefined: in this thread, with
   * asynchronous I/O. @default undefined
   */
  jobs?: SubmitJob;
  /**
   * Route rules run on every request after the method check, before the
   * caches and path resolution, in order; the first that answers wins
   * (see {@linkcode Rule}). With `cors`, CORS preflight runs before them.
   * @default []
   */
  rules?: Rule[];
  /**
   * Answer WebDAV's read side (OPTIONS with `DAV: 1`, PROPFIND Depth 0/1,
   * PROPPATCH and LOCK refused): a share a file manager or rclone can mount
   * and browse, with the same dotfile, symlink and access rules as listings.
   * @default false (true when `write` is set)
   */
  webdav?: boolean;
  /**
   * Accept writes (PUT, DELETE, MKCOL, COPY, MOVE) where `write.grant`
   * allows them; see write/stage.ts. Undefined: every write is 405.
   * @default undefined
   */
  write?: WriteOptions;
  /**
   * `--upload` globs: a `write` whose grant lets every authenticated user
   * and token write under matching URL paths (write/grant.ts). Ignored when
   * `write` is given. @default []
   */
  upload?: string[];
  /** Largest upload, bytes (with `upload`). @default Infinity */
  maxUploadBytes?: number;
  /** fsync the directory after each rename (with `upload`). @default false */
  durable?: boolean;
  /**
   * Path rules (the config file's `rules`, `--public` globs): who may read
   * what, hidden paths, listings on/off, headers per path. Applied by the
   * access stage, first after CORS preflight (before the caches and
   * `rules`), and by every view that shows a directory's contents.
   * `auth` is taken from `credentials`. @default {}
   */
  pathRules?: PathRulesConfig;
  /**
   * Authentication (e.g. `auth/rule.ts` `Authenticator`): with it, every
   * path needs credentials unless a path rule makes it public.
   * @default undefined
   */
  credentials?: Credentials;
  // browse (#17): search
  /**
   * The shared name index search reads (`?q=` below a folder), built and
   * kept current by the supervisor; undefined: search walks the tree within
   * a time budget and says when the answer may be partial. @default undefined
   */
  searchIndex?: IndexBuffers;
  /**
   * Development mode: `Cache-Control: no-cache` on every reply, CORS on,
   * and HTML replies get the live-reload script (`_dev.ts`). @default false
   */
  dev?: boolean;
}

/**
 * The handler {@linkcode createHandler} returns: a {@linkcode Handler} plus
 * the entry points a filesystem watcher calls to drop stale cache entries
 * before the per-entry stat revalidation (every `revalidateMs`) would.
 *
 * @example Drop what a changed file left in the cache
 * ```ts
 * import { createHandler } from "./handler.ts";
 *
 * const root = await Deno.realPath(await Deno.makeTempDir());
 * const handle = await createHandler({ root });
 * handle.invalidate(`${root}/a.txt`);
 * handle.invalidateAll();
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export type FileHandler = Handler & {
  /**
   * The request bodies this handler reads (WebDAV, uploads), for the
   * engine's `bodies` option; undefined: none.
   */
  bodies?: BodyAcceptance;
  /**
   * Forgets cached files whose real path is `realPath` or lies under it (a
   * removed or renamed directory), a cached file whose precompressed sibling
   * (`.gz`, `.br`) this is, and the cached listings of `realPath` and of its
   * parent directory. Requests reading a file meanwhile do not cache it.
   *
   * @param realPath an absolute path as the root's real path spells it
   */
  invalidate(realPath: string): void;
  /** Forgets every cached file and listing (the watcher lost events). */
  invalidateAll(): void;
};

/** The methods answered with 405 name what is allowed. */
const ALLOW: Array<[string, string]> = [["Allow", "GET, HEAD"]];

/** The stages of one handler, wired together. */
class Pipeline {
  readonly #site: Site;
  readonly #rules: readonly Rule[];
  readonly #ctx: RuleContext;
  readonly #file: FileStage;
  readonly #listing: ListingStage;
  readonly #files: FileCache;
  /** WebDAV and writes; undefined: only GET, HEAD (and OPTIONS through the rules). */
  #dav: DavStage | undefined;

  constructor(site: Site, rules: readonly Rule[]) {
    this.#site = site;
    site.slow = this.slow;
    this.#rules = rules;
    const replies = site.replies;
    this.#ctx = {
      root: site.root,
      reply: (status, headers, body, length) => replies.reply(status, headers, body, length),
      error: (status, extra) => replies.error(status, extra),
    };
    this.#files = site.files;
    this.#file = new FileStage(site);
    this.#listing = new ListingStage(site);
  }

  /** Turns WebDAV (and writes, when the stage has them) on; before the first request. */
  set dav(stage: DavStage) {
    this.#dav = stage;
  }

  /** The whole pipeline. Never throws: errors become 4xx/5xx replies. */
  readonly handle = (req: RequestHead): Reply | Promise<Reply> => {
    try {
      const m = req.method;
      const read = m === "GET" || m === "HEAD";
      if (!read && m !== "OPTIONS" && this.#dav === undefined) return this.#notAllowed();
      if (this.#rules.length !== 0) {
        const r = runRules(this.#rules, req, this.#ctx);
        if (r !== undefined) {
          if (!isThenable(r)) return r;
          return r.then((a) => a ?? this.#afterRules(req)).catch(this.#site.replies.mapError);
        }
      }
      // OPTIONS that no rule answered (not a CORS preflight): as before, 405.
      return read ? this.#serve(req) : this.#afterRules(req);
    } catch (e) {
      return this.#site.replies.mapError(e);
    }
  };

  #afterRules(req: RequestHead): Reply | Promise<Reply> {
    const m = req.method;
    if (m === "GET" || m === "HEAD") return this.#serve(req);
    return this.#dav?.handle(req) ?? this.#notAllowed();
  }

  /** After the rules: the caches' answers (hot path: no I/O, no allocation), else the slow path. */
  #serve(req: RequestHead): Reply | Promise<Reply> {
    const files = this.#files;
    const hit = files.get(req.path);
    if (hit !== undefined) {
      if (files.fresh(hit, Date.now())) return this.#file.hit(req, hit);
      return this.#file.revalidate(req, hit).catch(this.#site.replies.mapError);
    }
    const { listings, replies } = this.#site;
    if (listings.routeCount !== 0 && req.path.charCodeAt(req.path.length - 1) === 47 /* / */) {
      const key = routeKey(req, this.#site.paths);
      const r = listings.route(key);
      if (r !== undefined) {
        // The key is the only allocation unless the request is conditional.
        if (r.snap.claimed || listings.fresh(r.snap, Date.now())) {
          return this.#listing.listed(req, r.page);
        }
        return this.#listing.relist(req, key, r).catch(replies.mapError);
      }
    }
    return this.slow(req).catch(replies.mapError);
  }

  /** The full path: resolve, then one view. `plainOnly`: never compress. */
  readonly slow = async (req: RequestHead, plainOnly = false): Promise<Reply> => {
    const { files, replies } = this.#site;
    // Taken before the first await: an invalidation during this request's
    // path resolution or read keeps what it found out of the cache.
    const gen = files.generation;
    const t = await resolveTarget(this.#site, req);
    switch (t.kind) {
      case "error":
        return replies.error(t.status);
      case "raw":
        return this.#file.raw(req);
      case "redirect":
        return replies.reply(301, [["Location", t.location], ["Content-Type", TEXT]]);
      case "file":
        return this.#file.serve(req, t.real, req.path, gen, plainOnly);
      case "dir":
        return this.#directory(req, t, gen, plainOnly);
    }
  };

  /** A directory: its archive, its index.html, or its listing. */
  async #directory(
    req: RequestHead,
    t: Extract<Target, { kind: "dir" }>,
    gen: number,
    plainOnly: boolean,
  ): Promise<Reply> {
    const site = this.#site;
    const paths = site.paths;
    const dir = "/" + t.segments.join("/");
    const listed = paths?.rulesFor(dir).list ?? site.dirListing;
    if (site.archives && req.query.includes("download=")) {
      const q = parseArchiveQuery(req.query);
      // Loaded on the first download: workers that never serve one never load the tar encoder.
      if (q !== undefined) {
        if (!listed) return site.replies.error(404);
        const { archiveReply } = await import("./_archive_stage.ts");
        return archiveReply(site, req, t.real, t.segments, q);
      }
    }
    // An index.html the requester may not read is as good as missing.
    const index = paths?.filters && !paths.mayRead(dir + "/index.html", req.user)
      ? null
      : await existingFile(site, t.real + "/index.html");
    if (index !== null) return this.#file.serve(req, index, req.path, gen, plainOnly);
    if (!listed) return site.replies.error(404);
    return this.#listing.serve(req, t.real, t.segments, t.info);
  }

  #notAllowed(): Reply {
    return this.#site.replies.error(405, ALLOW.slice());
  }

  /** Forgets what a change at `path` made stale (see {@linkcode FileHandler.invalidate}). */
  readonly invalidate = (path: string): void => {
    const { files, listings, running } = this.#site;
    files.invalidate(path);
    listings.invalidate(path, running.paths());
  };

  /** Forgets everything cached. */
  readonly invalidateAll = (): void => {
    this.#site.files.clear();
    this.#site.listings.clear();
  };
}

/** The real root, checked to be a readable directory. */
async function realRoot(root: string): Promise<string> {
  try {
    const real = await Deno.realPath(root);
    const st = await Deno.stat(real);
    if (!st.isDirectory) throw new Error("not a directory");
    for await (const _ of Deno.readDir(real)) break; // readable?
    return real;
  } catch (e) {
    throw new Error(`root must be a readable directory, got "${root}": ${(e as Error).message}`);
  }
}

/** The shared state of a handler from its options (defaults applied, values checked). */
function siteOf(root: string, options: HandlerOptions): Site {
  const dirListing = options.dirListing ?? true;
  const dotfiles = options.dotfiles ?? false;
  const policy: ServePolicy = { root, dotfiles, followSymlinks: options.followSymlinks ?? false };
  const listingCap = Math.max(1, options.listingCap ?? 10000);
  const maxBytes = options.cacheMaxBytes ?? 64 * 1024 * 1024;
  const revalidateMs = options.revalidateMs ?? 1000;
  const maxArchiveBytes = options.maxArchiveBytes ?? Infinity;
  if (!(maxArchiveBytes >= 0)) {
    throw new Error(`maxArchiveBytes must be >= 0, got ${options.maxArchiveBytes}`);
  }
  const archives = dirListing && maxArchiveBytes > 0;
  const common = commonHeaders(options.headers, options.cors);
  for (const h of siteHeaders(options, common)) common.push(h);
  const replies = new Replies(common);
  const files: FileCache = new FileCache({
    maxBytes,
    maxFileBytes: options.cacheMaxFileBytes ?? 65536,
    revalidateMs,
    reply: (m, bytes) => replies.frozen(200, baseHeaders(m), bytes),
    reserved: () => listings.bytes,
  });
  // Listings share the budget with files, at most a quarter of it.
  const listings = new ListingCache({
    maxBytes: Math.floor(maxBytes / 4),
    revalidateMs,
    makeRoom: (n) => files.makeRoom(n),
  });
  return {
    root,
    policy,
    replies,
    files,
    listings,
    running: new Coalescer(),
    jobs: options.jobs,
    search: options.searchIndex === undefined ? undefined : new NameIndex(options.searchIndex),
    compress: options.compress ?? true,
    dirListing,
    archives,
    maxArchiveBytes,
    page: { listingCap, dotfiles, archives },
    // A Cache-Control of the user's (`headers`) goes on every reply: it wins.
    cacheControl: common.some(([k]) => k.toLowerCase() === "cache-control")
      ? undefined
      : cachePolicy(options.cacheControl),
    slow: () => Promise.reject(new Error("no pipeline yet")), // set by the Pipeline
    paths: undefined,
  };
}

/**
 * Creates the request handler for a root directory. The real root is
 * resolved once here; every served file's real path must lie under it.
 *
 * @param options Root and behaviour switches.
 * @returns A handler that never throws (errors become 4xx/5xx replies).
 * @throws {Error} If the root is not a readable directory.
 * @example Serving a directory
 * ```ts
 * import { createHandler } from "./handler.ts";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${root}/a.txt`, "hello");
 * const handle = await createHandler({ root });
 * const reply = await handle({
 *   method: "GET", target: "/a.txt", path: "/a.txt", query: "", minor: 1, headers: ["host", "x"],
 * });
 * try {
 *   assert.equal(reply.status, 200);
 *   assert.equal(reply.length, 5);
 * } finally {
 *   reply.release?.();
 *   await Deno.remove(root, { recursive: true });
 * }
 * ```
 */
export async function createHandler(options: HandlerOptions): Promise<FileHandler> {
  options = resolveHandlerOptions(options);
  // browse (#17): --dev turns CORS on, and trusts no cached entry without a
  // stat: a page reloading on a change must not get the bytes from before it.
  if (options.dev) options = { ...options, cors: true, revalidateMs: 0 };
  const root = await realRoot(options.root);
  const site = siteOf(root, options);
  // The route rules, in order: CORS preflight first, then the caller's.
  const rules: Rule[] = [];
  // Site rules (#13): the rate limit first, so every kind of flood is limited.
  if (options.rateLimit !== undefined) {
    const sab = options.rateLimitTable ?? allocateRateTable(options.rateLimit);
    rules.push(rateLimitRule(new RateTable(sab)));
  }
  if (options.cors) rules.push(corsPreflight);
  // Access first after preflight: before the caches and any other rule.
  const credentials = options.credentials;
  if (options.pathRules !== undefined || credentials !== undefined) {
    const paths = new PathRules({ ...options.pathRules, auth: credentials !== undefined });
    if (!paths.empty) {
      site.paths = paths;
      rules.push(accessRule(paths, credentials));
    }
  }
  for (const r of options.rules ?? []) rules.push(r);
  // Site rules (#13): redirects after the caller's (access) rules.
  if (options.redirects !== undefined && options.redirects.length > 0) {
    rules.push(redirectRule(checkRedirects(options.redirects)));
  }
  const pipeline = new Pipeline(site, rules);
  const { handle, invalidate, invalidateAll } = pipeline;
  // Site rules around the pipeline: only those switched on.
  let outer: Handler = handle;
  const page = checkSiteFiles(root, options);
  const spa = spaPath(options.spa);
  if (page !== undefined || spa !== undefined) {
    outer = notFoundStage(outer, site.replies, page, spa);
  }
  const paths = site.paths;
  const decorated = paths?.decorates ? decorating(paths, outer) : outer;
  // browse (#17): --dev wraps the whole pipeline; without it nothing changes.
  const h = options.dev ? devHandler(decorated, root, site.policy, site.paths) : decorated;
  if (options.webdav || options.write || (options.upload ?? []).length > 0) {
    const { createDavStage } = await import("../write/dav.ts");
    const dav = await createDavStage(site, options, pipeline.invalidate);
    pipeline.dav = dav;
    // The engine streams these methods' bodies to the stage (write/body.ts).
    return Object.assign(h, { invalidate, invalidateAll, bodies: dav.bodies });
  }
  return Object.assign(h, { invalidate, invalidateAll });
}
