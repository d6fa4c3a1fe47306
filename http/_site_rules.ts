/**
 * Site rules: how the site behaves around the files, as opposed to who may
 * read them (the access rules). Every setting here is plain data (it crosses
 * to the HTTP workers by `postMessage`); the handler builds the stages from
 * it once, and a setting that is off adds no stage:
 *
 * - security headers on every reply: `X-Content-Type-Options: nosniff` (on
 *   unless turned off), cross-origin isolation (`coopCoep`);
 * - the answers to "not found": a custom 404 page, a single-page-app
 *   fallback ({@linkcode notFoundStage});
 * - Cache-Control per kind of file ({@linkcode cachePolicy}), set once in a
 *   file's metadata, so cached replies carry it pre-serialised;
 *
 * @module
 */
import { getHeader, type Handler, type Reply, type RequestHead } from "./types.ts";
import { isThenable } from "./rules.ts";
import type { Replies } from "./_reply.ts";
import { contentType } from "./mime.ts";
import type { Redirect } from "../options/redirects.ts";
import type { RateLimit } from "../options/rate_limit.ts";

/** The site rules of `createHandler()` / `serve()`; every field optional. */
export interface SiteOptions {
  /**
   * Send `X-Content-Type-Options: nosniff` with every reply, so a browser
   * never runs a file as a script or style its Content-Type does not say it
   * is (an uploaded `.txt` holding HTML stays text). @default true
   */
  nosniff?: boolean;
  /**
   * Send `Cross-Origin-Opener-Policy: same-origin` and
   * `Cross-Origin-Embedder-Policy: require-corp` with every reply: the
   * cross-origin isolation pages need for `SharedArrayBuffer` and precise
   * timers. @default false
   */
  coopCoep?: boolean;
  /**
   * A file (a path on disk, not a URL: it may live outside the root) sent as
   * the body of every 404 the handler answers, with its own Content-Type.
   * Read once, at start; at most 1 MiB. @default undefined (a plain-text 404)
   */
  notFoundPage?: string;
  /**
   * Single-page-app fallback: a GET or HEAD that would get a 404, accepts
   * `text/html` and names no extension (or `.html`) is answered with this
   * file of the root, as a request for it would be (200, or 304 to a
   * matching `If-None-Match`). `true` is `index.html`. @default false
   */
  spa?: boolean | string;
  /**
   * Cache-Control on file replies (200, 206, 304, 416), by kind: `html`
   * (text/html), `hashed` (a fingerprinted name like `app.3f9a1c2b.js`),
   * `other`. `true` is {@linkcode CACHE_DEFAULTS}; an object overrides
   * those kinds it names (`"none"`: no header for that kind). A
   * `Cache-Control` in `headers` wins over all of it. @default false
   */
  cacheControl?: boolean | CacheControlKinds;
  /**
   * Redirects, checked at start (`options/redirects.ts`): an exact `from`
   * path or a `/**` prefix whose tail `to` takes as `:splat`. They run after
   * the caller's rules (the access rules), so a protected path is not
   * redirected for someone who may not read it. @default []
   */
  redirects?: Redirect[];
  /**
   * Requests per second per client address, with bursts (GCRA,
   * `http/_rate_limit.ts`): past it, 429 with Retry-After. The first rule,
   * before CORS and the access rules, so floods of any kind are limited.
   * Requests without an address (Unix sockets) are not limited.
   * @default undefined (no limit)
   */
  rateLimit?: RateLimit;
  /**
   * The shared table the limit counts in (`allocateRateTable`): `serve()`
   * makes one for every worker; without it the handler makes its own.
   */
  rateLimitTable?: SharedArrayBuffer;
}

/** Cache-Control values per kind of file. */
export interface CacheControlKinds {
  /** Files served as text/html. */
  html?: string;
  /** Other files whose name carries a content hash. */
  hashed?: string;
  /** Everything else. */
  other?: string;
}

/**
 * What `cacheControl: true` sends: HTML revalidates every time (a deploy
 * shows at once, and the ETag makes that a 304); a fingerprinted name never
 * changes content, so it is cached for a year without revalidation; other
 * files (images, fonts, unhashed scripts) for five minutes, which bounds how
 * stale they get after a deploy, where a missing header would leave it to the
 * browser's heuristic (10% of the file's age: days for an old file).
 */
export const CACHE_DEFAULTS: Readonly<Required<CacheControlKinds>> = {
  html: "no-cache",
  hashed: "public, max-age=31536000, immutable",
  other: "public, max-age=300",
};

/**
 * A fingerprinted file name: a `.` or `-`, then a content hash (8+ hex
 * digits, or 8 base64url characters, holding both a digit and a letter),
 * then the extension(s): `main.7f3e9a1c.chunk.js`, `index-B4x9Qa1z.css`.
 * A name that merely has a date or a word there (`photo-20240101.jpg`,
 * `my-document.pdf`) is not one: calling a mutable file immutable is the
 * mistake to avoid, missing a hash only costs a revalidation.
 */
const HASHED =
  /[.-](?:(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{8,}|(?=[\w-]{0,7}\d)(?=[\w-]{0,7}[A-Za-z])[\w-]{8})(?:\.[A-Za-z0-9]+)+$/;

/**
 * The Cache-Control policy of `cacheControl`, or undefined when off.
 *
 * @param o the option
 * @returns `(name, type) => value or undefined`
 * @example
 * ```ts
 * import { cachePolicy } from "./_site_rules.ts";
 * import assert from "node:assert/strict";
 * const p = cachePolicy(true)!;
 * assert.equal(p("/srv/index.html", "text/html; charset=utf-8"), "no-cache");
 * assert.equal(p("/srv/app.3f9a1c2b.js", "text/javascript"), "public, max-age=31536000, immutable");
 * assert.equal(p("/srv/logo.png", "image/png"), "public, max-age=300");
 * ```
 */
export function cachePolicy(
  o: boolean | CacheControlKinds | undefined,
): ((name: string, type: string) => string | undefined) | undefined {
  if (o === undefined || o === false) return undefined;
  const k = o === true ? CACHE_DEFAULTS : { ...CACHE_DEFAULTS, ...o };
  const v = (s: string) => s === "none" ? undefined : s;
  const html = v(k.html), hashed = v(k.hashed), other = v(k.other);
  return (name, type) => {
    if (type.startsWith("text/html")) return html;
    return HASHED.test(name.slice(name.lastIndexOf("/") + 1)) ? hashed : other;
  };
}

/** The site options' field names (what `serve()` passes on to every worker's handler). */
export const SITE_KEYS = [
  "nosniff",
  "coopCoep",
  "notFoundPage",
  "spa",
  "cacheControl",
  "redirects",
  "rateLimit",
  "rateLimitTable",
] as const satisfies ReadonlyArray<
  keyof SiteOptions
>;

/**
 * The site options among `o`, for the workers' handler config.
 *
 * @param o options holding (among others) site options
 * @returns only the site options that are set
 * @example
 * ```ts
 * import { siteOptionsOf } from "./_site_rules.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(siteOptionsOf({ coopCoep: true, port: 1 } as object), { coopCoep: true });
 * ```
 */
export function siteOptionsOf(o: SiteOptions): SiteOptions {
  const out: Record<string, unknown> = {};
  for (const k of SITE_KEYS) if (o[k] !== undefined) out[k] = o[k];
  return out as SiteOptions;
}

/**
 * The headers the site rules add to every reply. A header the user set
 * (`headers` option, `-H`) of the same name wins: it is not sent twice.
 *
 * Cross-Origin-Resource-Policy is not sent with `coopCoep`: `require-corp`
 * needs it only on cross-origin resources, which a site's own files are not
 * for its own pages, while `same-origin` would stop other sites embedding our
 * files (a change of policy nobody asked for) and `cross-origin` would undo
 * what a site chose; set it with `-H` when you mean one.
 *
 * @param o the site options
 * @param user the headers the user set
 * @returns the headers to append to the common ones
 * @example
 * ```ts
 * import { siteHeaders } from "./_site_rules.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(siteHeaders({}, []), [["X-Content-Type-Options", "nosniff"]]);
 * assert.deepEqual(siteHeaders({ nosniff: false }, []), []);
 * ```
 */
export function siteHeaders(
  o: SiteOptions,
  user: ReadonlyArray<readonly [string, string]>,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const taken = new Set(user.map(([k]) => k.toLowerCase()));
  const add = (k: string, v: string) => {
    if (!taken.has(k.toLowerCase())) out.push([k, v]);
  };
  if (o.nosniff ?? true) add("X-Content-Type-Options", "nosniff");
  if (o.coopCoep) {
    add("Cross-Origin-Opener-Policy", "same-origin");
    add("Cross-Origin-Embedder-Policy", "require-corp");
  }
  return out;
}

/** Largest `notFoundPage`, bytes: it is held in memory by every worker. */
export const NOT_FOUND_MAX = 1024 * 1024;

/**
 * The root-relative URL path of the SPA file, or undefined when off.
 *
 * @param spa the `spa` option
 * @returns e.g. `/index.html`
 */
export function spaPath(spa: boolean | string | undefined): string | undefined {
  if (spa === undefined || spa === false) return undefined;
  const name = spa === true ? "index.html" : spa;
  return "/" + name.replace(/^\/+/, "");
}

/**
 * Checks the files the site options name, before anything starts: the 404
 * page is a readable file of at most {@linkcode NOT_FOUND_MAX} bytes; the SPA
 * file is a relative name (no `..`, `.`, `\`, `?`, `#`, `%`) of a file under the root.
 *
 * @param root the real root
 * @param o the site options
 * @returns the 404 page's bytes and type when one is set
 * @throws {Error} naming the option and the file
 * @example
 * ```ts
 * import { checkSiteFiles } from "./_site_rules.ts";
 * import assert from "node:assert/strict";
 * assert.throws(() => checkSiteFiles("/", { notFoundPage: "/no/such" }), /notFoundPage "\/no\/such": no such file/);
 * ```
 */
export function checkSiteFiles(
  root: string,
  o: SiteOptions,
): { bytes: Uint8Array; type: string } | undefined {
  const spa = spaPath(o.spa);
  if (spa !== undefined) {
    const where = `spa ${JSON.stringify(o.spa)}`;
    if (
      typeof o.spa === "string" &&
      (o.spa === "" || /[\\?#%\0]/.test(o.spa) ||
        o.spa.split("/").some((s) => s === ".." || s === "."))
    ) {
      throw new Error(`${where} must be a file name under the root (no "..", "\\", "?", "#", "%")`);
    }
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(root + spa);
    } catch {
      throw new Error(`${where}: no such file under the root ${JSON.stringify(root)}`);
    }
    if (!info.isFile) throw new Error(`${where} is not a file`);
  }
  if (o.notFoundPage === undefined) return undefined;
  const where = `notFoundPage ${JSON.stringify(o.notFoundPage)}`;
  let bytes: Uint8Array;
  try {
    const info = Deno.statSync(o.notFoundPage);
    if (!info.isFile) throw new Error(`${where} is not a file`);
    if (info.size > NOT_FOUND_MAX) {
      throw new Error(`${where} is ${info.size} bytes; at most ${NOT_FOUND_MAX}`);
    }
    bytes = Deno.readFileSync(o.notFoundPage);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`${where}: no such file`);
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new Error(`${where} is not readable: ${(e as Error).message}`);
    }
    throw e;
  }
  return { bytes, type: contentType(o.notFoundPage) };
}

/**
 * Whether a request looks like a page navigation: GET or HEAD, accepting
 * `text/html`, its last path segment without an extension or ending in
 * `.html`. A missing `/app.js` is an asset: it keeps its 404.
 *
 * @param req the request
 * @returns true for a navigation
 */
export function isNavigation(req: RequestHead): boolean {
  const m = req.method;
  if (m !== "GET" && m !== "HEAD") return false;
  const p = req.path;
  const last = p.slice(p.lastIndexOf("/") + 1);
  const dot = last.lastIndexOf(".");
  if (dot > 0 && last.slice(dot).toLowerCase() !== ".html") return false;
  return getHeader(req, "accept")?.includes("text/html") ?? false;
}

/**
 * The not-found stage, around the whole pipeline: a 404 (from a rule, the
 * path resolution or a view alike, so a hidden path still answers exactly
 * like a missing one) becomes the SPA page for a navigation, else the custom
 * 404 page. No other status is touched. The SPA page is fetched by running
 * the pipeline again for its own path (query dropped): the access rules,
 * caches, conditionals and compression apply to it as to a direct request,
 * and when that is not a 2xx/304 (the requester may not read it, or it is
 * gone), the 404 stands.
 *
 * @param inner the pipeline
 * @param replies the reply builder (the 404 page carries the common headers)
 * @param page the 404 page, or undefined
 * @param spa the SPA file's URL path, or undefined
 * @returns the pipeline with the stage around it
 */
export function notFoundStage(
  inner: Handler,
  replies: Replies,
  page: { bytes: Uint8Array; type: string } | undefined,
  spa: string | undefined,
): Handler {
  const notFound = (r: Reply): Reply => {
    if (page === undefined) return r;
    r.release?.();
    return replies.reply(404, [["Content-Type", page.type]], [page.bytes], page.bytes.length);
  };
  const fallback = (req: RequestHead, r: Reply): Reply | Promise<Reply> => {
    if (r.status !== 404) return r;
    if (spa === undefined || req.path === spa || !isNavigation(req)) return notFound(r);
    const page = inner({ ...req, target: spa, path: spa, query: "" });
    const pick = (p: Reply): Reply => {
      if ((p.status >= 200 && p.status < 300) || p.status === 304) {
        r.release?.();
        return p;
      }
      p.release?.();
      return notFound(r);
    };
    return isThenable(page) ? page.then(pick) : pick(page);
  };
  return (req) => {
    const r = inner(req);
    return isThenable(r) ? r.then((a) => fallback(req, a)) : fallback(req, r);
  };
}
