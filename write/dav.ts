/**
 * WebDAV, class 1 read side (RFC 4918): OPTIONS (`DAV: 1` and what is
 * allowed), PROPFIND with Depth 0 and 1, PROPPATCH (403 per property: no
 * dead properties are stored), LOCK/UNLOCK (405: we are not class 2, so a
 * client that needs locks before it writes sees writing as unavailable
 * rather than failing halfway; macOS Finder then mounts the share read-only,
 * Windows Explorer's mini-redirector refuses to write, while rclone, cadaver,
 * curl, davfs2 with `use_locks 0`, and GNOME/KDE file managers write without locks).
 *
 * PROPFIND shows what a listing shows: the target is resolved like a GET
 * (decode, real path inside the root, dotfiles and symlinks per policy) and
 * a directory's members come from the listing entry collector
 * (`http/_collect.ts`), so every filter a listing applies applies here.
 * Depth infinity is refused (403 with `propfind-finite-depth`, RFC 4918
 * sec. 9.1): walking a whole tree per request is a denial of service.
 *
 * @module
 */
import { getHeader, type Reply } from "../http/types.ts";
import { decodePath } from "../http/resolve.ts";
import { httpDate, makeETag } from "../http/conditional.ts";
import { contentType } from "../http/mime.ts";
import { collectEntriesAsync } from "../http/_collect.ts";
import { collectGuards, realInRoot, type Site, underRoot } from "../http/_site.ts";
import { isTempName } from "./atomic.ts";
import {
  DAV,
  emptyProp,
  escapeXml,
  MAX_XML_BYTES,
  parsePropfind,
  parseProppatch,
  type PropfindRequest,
  XmlError,
} from "./dav_xml.ts";
import { type WriteOptions, type WriteRequest, WriteStage } from "./stage.ts";
import { type BodyAcceptance, BodyError } from "./body.ts";

/** The DAV properties we compute (RFC 4918 sec. 15), in the order they are sent. */
const LIVE = [
  "displayname",
  "getcontentlength",
  "getcontenttype",
  "getetag",
  "getlastmodified",
  "creationdate",
  "resourcetype",
] as const;

const XML_TYPE = "application/xml; charset=utf-8";
const encoder = new TextEncoder();

/** One resource as PROPFIND describes it. */
interface Resource {
  href: string;
  name: string;
  isDir: boolean;
  size: number;
  mtimeMs: number;
  birthMs: number;
  ino: number;
}

function resourceOf(href: string, name: string, info: Deno.FileInfo): Resource {
  const mtimeMs = info.mtime?.getTime() ?? 0;
  return {
    href,
    name,
    isDir: info.isDirectory,
    size: info.size,
    mtimeMs,
    birthMs: info.birthtime?.getTime() ?? mtimeMs,
    ino: info.ino ?? 0,
  };
}

/** The value of a live property, or undefined when this resource has none. */
function liveValue(r: Resource, name: string): string | undefined {
  switch (name) {
    case "displayname":
      return escapeXml(r.name);
    case "getcontentlength":
      return r.isDir ? undefined : String(r.size);
    case "getcontenttype":
      return r.isDir ? undefined : escapeXml(contentType(r.name));
    case "getetag":
      return r.isDir ? undefined : escapeXml(makeETag(r.size, r.mtimeMs, r.ino));
    case "getlastmodified":
      return httpDate(r.mtimeMs);
    case "creationdate":
      return new Date(r.birthMs).toISOString().replace(/\.\d{3}Z$/, "Z");
    case "resourcetype":
      return r.isDir ? "<D:collection/>" : "";
  }
  return undefined;
}

function propstat(props: string, status: string): string {
  return `<D:propstat><D:prop>${props}</D:prop><D:status>HTTP/1.1 ${status}</D:status></D:propstat>`;
}

/** One `<D:response>` for a resource. */
function responseXml(r: Resource, ask: PropfindRequest): string {
  let found = "";
  let missing = "";
  if (ask.kind === "prop") {
    for (const p of ask.props) {
      const v = p.ns === DAV ? liveValue(r, p.name) : undefined;
      if (v === undefined) missing += emptyProp(p);
      else found += v === "" ? `<D:${p.name}/>` : `<D:${p.name}>${v}</D:${p.name}>`;
    }
  } else {
    for (const name of LIVE) {
      const v = liveValue(r, name);
      if (v === undefined) continue;
      if (ask.kind === "propname" || v === "") found += `<D:${name}/>`;
      else found += `<D:${name}>${v}</D:${name}>`;
    }
  }
  let out = `<D:response><D:href>${escapeXml(r.href)}</D:href>`;
  if (found !== "" || missing === "") out += propstat(found, "200 OK");
  if (missing !== "") out += propstat(missing, "404 Not Found");
  return out + "</D:response>";
}

function hrefOf(segments: readonly string[], dir: boolean): string {
  let h = "/";
  for (const s of segments) h += encodeURIComponent(s) + "/";
  return dir || segments.length === 0 ? h : h.slice(0, -1);
}

/**
 * Reads a small body whole (DAV XML), refusing more than `max` bytes.
 *
 * @param req the request
 * @param max the most bytes accepted
 * @returns the bytes (empty when none was sent)
 * @throws {XmlError} 413 past `max`
 */
export async function readSmallBody(req: WriteRequest, max = MAX_XML_BYTES): Promise<Uint8Array> {
  const body = req.body;
  if (body === undefined) return new Uint8Array();
  if (body.length > max) throw new XmlError(413, "body too large");
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of body.chunks()) {
    n += c.length;
    if (n > max) throw new XmlError(413, "body too large");
    parts.push(c.slice());
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The DAV read side of one handler. */
export class DavStage {
  readonly #site: Site;
  readonly #write: WriteStage | undefined;
  readonly #allow: string;

  /**
   * @param site the handler's shared state
   * @param write the write stage, when writes are configured
   */
  constructor(site: Site, write: WriteStage | undefined) {
    this.#site = site;
    this.#write = write;
    this.#allow = "GET, HEAD, OPTIONS, PROPFIND, PROPPATCH" +
      (write ? ", PUT, DELETE, MKCOL, COPY, MOVE" : "");
  }

  /** The request bodies this stage reads, for the engine (write/body.ts). */
  get bodies(): BodyAcceptance {
    const w = this.#write;
    return {
      methods: new Set(w ? ["PUT", "PROPFIND", "PROPPATCH"] : ["PROPFIND", "PROPPATCH"]),
      maxBytes: w ? w.maxUploadBytes : MAX_XML_BYTES,
    };
  }

  /** The `Allow` value: what this server answers. */
  get allow(): string {
    return this.#allow;
  }

  /**
   * Answers OPTIONS, PROPFIND, PROPPATCH, LOCK, UNLOCK and (through the write
   * stage) the write methods. Never throws.
   *
   * @param req the request
   * @returns the reply
   */
  async handle(req: WriteRequest): Promise<Reply> {
    const replies = this.#site.replies;
    try {
      switch (req.method) {
        case "OPTIONS":
          return replies.reply(200, [["DAV", "1"], ["Allow", this.#allow], [
            "MS-Author-Via",
            "DAV",
          ]]);
        case "PROPFIND":
          return await this.#propfind(req);
        case "PROPPATCH":
          return await this.#proppatch(req);
        case "LOCK":
        case "UNLOCK":
          return replies.error(405, [["Allow", this.#allow]]);
      }
      if (this.#write !== undefined) return await this.#write.handle(req);
      return replies.error(405, [["Allow", this.#allow]]);
    } catch (e) {
      if (e instanceof XmlError || e instanceof BodyError) return replies.error(e.status);
      return replies.mapError(e);
    }
  }

  async #propfind(req: WriteRequest): Promise<Reply> {
    const site = this.#site;
    const depth = (getHeader(req, "depth") ?? "infinity").trim().toLowerCase();
    if (depth !== "0" && depth !== "1") {
      if (depth !== "infinity") return site.replies.error(400);
      return this.#multistatus(
        403,
        `<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>`,
      );
    }
    const ask = parsePropfind(await readSmallBody(req));
    const d = decodePath(req.path, site.policy.dotfiles);
    if (!d.ok) return site.replies.error(d.status);
    if (d.segments.some(isTempName)) return site.replies.error(404);
    const fsPath = d.segments.length === 0 ? site.root : site.root + "/" + d.segments.join("/");
    const real = await realInRoot(site, fsPath);
    if (real === null) return site.replies.error(404);
    // Through a symlink: only to a place protected alike, as GET (resolveTarget).
    const there = real === fsPath ? undefined : underRoot(site, real);
    if (there !== undefined && site.paths?.filters) {
      if (!site.paths.sameProtection("/" + d.segments.join("/"), there)) {
        return site.replies.error(404);
      }
    }
    const info = await Deno.stat(real);
    if (!info.isDirectory && !info.isFile) return site.replies.error(404);
    if (info.isFile && d.trailingSlash) return site.replies.error(404);
    const name = d.segments.length === 0 ? "" : d.segments[d.segments.length - 1];
    let xml = responseXml(resourceOf(hrefOf(d.segments, info.isDirectory), name, info), ask);
    if (depth === "1" && info.isDirectory) {
      // The requester's path rules leave out what they may not read, as in a listing;
      // a folder whose listing is off (a `list: false` rule too) names no members.
      const dirPath = "/" + d.segments.map((s) => s + "/").join("");
      if (!(site.paths?.rulesFor(dirPath).list ?? site.dirListing)) return site.replies.error(403);
      const entries = await collectEntriesAsync(real, site.policy, {
        max: site.page.listingCap,
        detail: true,
        ...collectGuards(site, dirPath, real, req.user),
      });
      for (const e of entries) {
        if (e.lossy || isTempName(e.name)) continue;
        let st: Deno.FileInfo;
        try {
          st = Deno.statSync(e.target ?? real + "/" + e.name);
        } catch {
          continue; // vanished since it was listed
        }
        if (!st.isFile && !st.isDirectory) continue;
        xml += responseXml(
          resourceOf(hrefOf([...d.segments, e.name], st.isDirectory), e.name, st),
          ask,
        );
      }
    }
    return this.#multistatus(207, `<D:multistatus xmlns:D="DAV:">${xml}</D:multistatus>`);
  }

  async #proppatch(req: WriteRequest): Promise<Reply> {
    const site = this.#site;
    const d = decodePath(req.path, site.policy.dotfiles);
    if (!d.ok) return site.replies.error(d.status);
    const fsPath = d.segments.length === 0 ? site.root : site.root + "/" + d.segments.join("/");
    if (await realInRoot(site, fsPath) === null) return site.replies.error(404);
    const props = parseProppatch(await readSmallBody(req));
    // No property can be changed: each is refused (RFC 4918 sec. 9.2.1).
    const list = props.map(emptyProp).join("");
    const xml = `<D:multistatus xmlns:D="DAV:"><D:response><D:href>${
      escapeXml(hrefOf(d.segments, d.trailingSlash))
    }</D:href>${propstat(list, "403 Forbidden")}</D:response></D:multistatus>`;
    return this.#multistatus(207, xml);
  }

  #multistatus(status: number, xml: string): Reply {
    const body = encoder.encode(`<?xml version="1.0" encoding="utf-8"?>\n${xml}\n`);
    return this.#site.replies.reply(status, [["Content-Type", XML_TYPE]], [body], body.length);
  }
}

/** What {@linkcode createDavStage} reads of the handler's options. */
export interface DavOptions {
  /** Explicit grants and limits (wins over `upload`). */
  write?: WriteOptions;
  /** `--upload` globs. */
  upload?: string[];
  /** Largest upload, bytes. */
  maxUploadBytes?: number;
  /** fsync directories after renames. */
  durable?: boolean;
}

/**
 * The DAV stage of a handler, with its write stage when writes are
 * configured (`write`, or `upload` globs through write/grant.ts).
 *
 * @param site the handler's shared state
 * @param options the handler's write settings
 * @param invalidate drops this handler's cache entries for a changed real path
 * @returns the stage
 * @throws {RangeError} for a bad upload glob
 */
export async function createDavStage(
  site: Site,
  options: DavOptions,
  invalidate: (realPath: string) => void,
): Promise<DavStage> {
  let write = options.write;
  const upload = options.upload ?? [];
  if (write === undefined && upload.length > 0) {
    const { uploadGrant } = await import("./grant.ts");
    write = {
      grant: uploadGrant(upload),
      maxUploadBytes: options.maxUploadBytes,
      durable: options.durable,
    };
  }
  const stage = write ? new WriteStage(site, write, invalidate) : undefined;
  return new DavStage(site, stage);
}
