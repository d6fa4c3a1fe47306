/**
 * Path rules: the config file's ordered `rules` plus `--public` globs,
 * compiled once into one matcher every stage asks ({@linkcode PathRules}):
 * the access stage (hidden? who may read?), the listing and archive views
 * (which entries may this requester see?), and the reply decoration
 * (headers, Cache-Control).
 *
 * Patterns are picomatch globs over the decoded URL path (`*` within a name,
 * `**` any depth, dotfiles matched like any name). A directory is matched
 * without its trailing `/`, the root as `/`; `/docs/**` matches `/docs`
 * itself too.
 *
 * Precedence: first match, per setting. For each setting the first rule (in
 * file order) that matches and sets it decides; `--public` globs come after
 * the file's rules; then the defaults (access: any authenticated user when
 * credentials are configured, else public; listed; not hidden). Why first
 * match: the order is the user's own, read top to bottom like a firewall,
 * and it is well defined for globs, where "most specific" is not (is
 * `/a/*.html` more specific than `/a/b/**`?). Put exceptions first.
 *
 * The protective settings, `access` and `hidden`, are inherited: a rule
 * matching a directory also covers everything below it (`{"path":
 * "/private", "access": ["alice"]}` protects `/private/x` too), so a
 * restriction on a folder cannot be stepped around by asking for its files.
 * `list`, `headers` and `cacheControl` apply where the glob matches only.
 *
 * @module
 */
import picomatch from "picomatch";
import { decodePath, INVALID_UTF8 } from "./resolve.ts";
import type { PathRuleSpec } from "../options/types.ts";

export type { PathRuleSpec };

/** Who may read, as the config file says it. */
export type AccessSpec = "public" | "deny" | readonly string[];

/** What {@linkcode PathRules} is built from (plain data: it crosses to other threads). */
export interface PathRulesConfig {
  /** The config file's rules, in order. */
  rules?: readonly PathRuleSpec[];
  /** `--public` globs (access `"public"`, after the rules). */
  public?: readonly string[];
  /** Credentials are configured: paths need them unless a rule says otherwise. */
  auth?: boolean;
}

/** Who may read a path, resolved. */
export type Access = "public" | "authenticated" | "deny" | ReadonlySet<string>;

/** The merged settings of one path. */
export interface PathSettings {
  /** Answered like a missing path; never listed. */
  readonly hidden: boolean;
  /** Who may read. */
  readonly access: Access;
  /** Listings: undefined leaves it to the server-wide setting. */
  readonly list: boolean | undefined;
  /** Headers to set (replacing one of the same name). */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** Lower-case names of headers to remove. */
  readonly remove: readonly string[];
  /** The rule's `cacheControl` (also in `headers`), for stages that choose a default. */
  readonly cacheControl: string | undefined;
  /** Whether replies get anything from headers/remove. */
  readonly decorates: boolean;
}

/** A rule that does not compile: its place and why (the CLI exits 2 with it). */
export class PathRuleError extends RangeError {
  /**
   * @param where `rules[2]` or `--public "..."`
   * @param why what is wrong
   */
  constructor(where: string, why: string) {
    super(`${where}: ${why}`);
    this.name = "PathRuleError";
  }
}

type Matcher = (path: string) => boolean;
// picomatch ships no types; this is the one call used.
const compileGlob = picomatch as unknown as (
  glob: string,
  options: { dot: boolean; strictBrackets: boolean },
) => Matcher;

interface Compiled {
  test: Matcher;
  access?: Access;
  hidden?: boolean;
  list?: boolean;
  headers: Array<[string, string | null]>;
}

/** Most paths whose settings are remembered (then the memo starts over). */
const MEMO_MAX = 8192;

const PUBLIC: PathSettings = Object.freeze({
  hidden: false,
  access: "public",
  list: undefined,
  headers: [],
  remove: [],
  cacheControl: undefined,
  decorates: false,
});

function accessOf(spec: AccessSpec): Access {
  if (spec === "public" || spec === "deny") return spec;
  return new Set(spec);
}

/** The parent of a decoded path (`/a/b` -> `/a`, `/a` -> `/`), or null for `/`. */
function parentOf(path: string): string | null {
  if (path === "/") return null;
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/**
 * The compiled path rules of a handler.
 *
 * @example Public assets, one private folder, one hidden file
 * ```ts
 * import { PathRules } from "./path_rules.ts";
 * import assert from "node:assert/strict";
 *
 * const rules = new PathRules({
 *   auth: true,
 *   rules: [
 *     { path: "/private/**", access: ["alice"] },
 *     { path: "/notes.txt", hidden: true },
 *   ],
 *   public: ["/assets/**"],
 * });
 * assert.equal(rules.rulesFor("/assets/site.css").access, "public");
 * assert.ok(rules.mayRead("/private/a.txt", "alice"));
 * assert.ok(!rules.mayRead("/private/a.txt", "bob"));
 * assert.ok(!rules.mayRead("/private/a.txt", undefined));
 * assert.equal(rules.rulesFor("/notes.txt").hidden, true);
 * assert.equal(rules.rulesFor("/other").access, "authenticated");
 * ```
 */
export class PathRules {
  readonly #rules: Compiled[] = [];
  readonly #auth: boolean;
  readonly #memo = new Map<string, PathSettings>();
  readonly #raw = new Map<string, PathSettings | null>();
  /** Whether what a requester may see depends on who they are. */
  readonly personal: boolean;
  /** Whether any rule hides, denies or restricts (listings must be filtered). */
  readonly filters: boolean;
  /** Whether any rule adds or removes headers. */
  readonly decorates: boolean;
  /** Whether any rule turns listings on or off. */
  readonly lists: boolean;
  /** What it was built from (plain data: a pool thread builds the same rules from it). */
  readonly config: PathRulesConfig;

  /**
   * @param config the rules, `--public` globs, whether credentials exist
   * @throws {PathRuleError} naming the rule whose glob does not compile
   */
  constructor(config: PathRulesConfig) {
    this.config = config;
    this.#auth = config.auth === true;
    let personal = this.#auth, filters = this.#auth, decorates = false, lists = false;
    (config.rules ?? []).forEach((r, i) => {
      const c = this.#compile(r.path, `rules[${i}]`);
      if (r.access !== undefined) {
        c.access = accessOf(r.access);
        if (typeof c.access !== "string") {
          personal = true;
          if (!this.#auth) {
            throw new PathRuleError(
              `rules[${i}].access`,
              "a list of users needs credentials (--auth, --auth-file or --token-file)",
            );
          }
        }
        if (c.access !== "public") filters = true;
      }
      if (r.hidden !== undefined) {
        c.hidden = r.hidden;
        if (r.hidden) filters = true;
      }
      if (r.list !== undefined) {
        c.list = r.list;
        lists = true;
      }
      for (const [k, v] of Object.entries(r.headers ?? {})) c.headers.push([k, v]);
      if (r.cacheControl !== undefined) c.headers.push(["Cache-Control", r.cacheControl]);
      if (c.headers.length > 0) decorates = true;
      this.#rules.push(c);
    });
    for (const g of config.public ?? []) {
      const c = this.#compile(g, `--public ${JSON.stringify(g)}`);
      c.access = "public";
      this.#rules.push(c);
    }
    this.personal = personal;
    this.filters = filters;
    this.decorates = decorates;
    this.lists = lists;
  }

  #compile(glob: string, where: string): Compiled {
    if (typeof glob !== "string" || !glob.startsWith("/")) {
      throw new PathRuleError(
        where,
        `a path glob must start with "/", got ${JSON.stringify(glob)}`,
      );
    }
    let test: Matcher;
    try {
      test = compileGlob(glob.length > 1 ? glob.replace(/\/+$/, "") : glob, {
        dot: true,
        strictBrackets: true,
      });
    } catch (e) {
      throw new PathRuleError(where, `bad glob ${JSON.stringify(glob)}: ${(e as Error).message}`);
    }
    return { test, headers: [] };
  }

  /** Whether no rule and no default restricts or changes anything. */
  get empty(): boolean {
    return !this.filters && !this.decorates && !this.lists;
  }

  /**
   * The settings of a decoded URL path (remembered).
   *
   * @param path a decoded path starting with `/` (a trailing `/` is ignored)
   * @returns the merged settings
   */
  rulesFor(path: string): PathSettings {
    if (path.length > 1 && path.charCodeAt(path.length - 1) === 47) path = path.slice(0, -1);
    const hit = this.#memo.get(path);
    if (hit !== undefined) return hit;
    const s = this.#settle(path);
    if (this.#memo.size >= MEMO_MAX) this.#memo.clear();
    this.#memo.set(path, s);
    return s;
  }

  #settle(path: string): PathSettings {
    let access: Access | undefined, hidden: boolean | undefined, list: boolean | undefined;
    const set = new Map<string, string | null>();
    for (const r of this.#rules) {
      if (r.access === undefined && r.hidden === undefined) {
        if (r.list === undefined && r.headers.length === 0) continue;
      }
      const here = r.test(path);
      if (here) {
        if (list === undefined && r.list !== undefined) list = r.list;
        for (const [k, v] of r.headers) {
          const lk = k.toLowerCase();
          if (!set.has(lk)) set.set(lk, v === null ? null : `${k}\0${v}`);
        }
      }
      if (
        (access === undefined && r.access !== undefined) ||
        (hidden === undefined && r.hidden !== undefined)
      ) {
        // Inherited: the path or any folder above it.
        let covers = here;
        for (let p = parentOf(path); !covers && p !== null; p = parentOf(p)) covers = r.test(p);
        if (covers) {
          if (access === undefined && r.access !== undefined) access = r.access;
          if (hidden === undefined && r.hidden !== undefined) hidden = r.hidden;
        }
      }
    }
    access ??= this.#auth ? "authenticated" : "public";
    hidden ??= false;
    if (access === "public" && !hidden && list === undefined && set.size === 0) return PUBLIC;
    const headers: Array<[string, string]> = [];
    const remove: string[] = [];
    for (const [lk, v] of set) {
      if (v === null) remove.push(lk);
      else {
        const z = v.indexOf("\0");
        headers.push([v.slice(0, z), v.slice(z + 1)]);
      }
    }
    return Object.freeze({
      hidden,
      access,
      list,
      headers,
      remove,
      cacheControl: headers.find(([k]) => k === "Cache-Control")?.[1],
      decorates: headers.length > 0 || remove.length > 0,
    });
  }

  /**
   * The settings of a request's raw (percent-encoded) path, or null when
   * the path does not decode (the resolve stage refuses it the same way for
   * everyone). A path that is not UTF-8 is matched in its lossy spelling
   * (U+FFFD for bad bytes): the folders above it still match.
   *
   * @param raw the request path, still percent-encoded
   * @returns the settings, or null
   */
  forRequest(raw: string): PathSettings | null {
    const hit = this.#raw.get(raw);
    if (hit !== undefined) return hit;
    let s: PathSettings | null = null;
    const d = decodePath(raw, true);
    if (d.ok) s = this.rulesFor("/" + d.segments.join("/"));
    else if (d.reason === INVALID_UTF8) {
      const lossy = lossyDecode(raw);
      if (lossy !== null) s = this.rulesFor(lossy);
    }
    if (this.#raw.size >= MEMO_MAX) this.#raw.clear();
    this.#raw.set(raw, s);
    return s;
  }

  /**
   * Whether `user` may read `path`: not hidden, and the access allows them.
   *
   * @param path a decoded URL path
   * @param user the authenticated name, or undefined (anonymous)
   * @returns true when it may be served and shown to them
   */
  mayRead(path: string, user: string | undefined): boolean {
    const s = this.rulesFor(path);
    return !s.hidden && allows(s.access, user);
  }

  /**
   * The collector's filter for one directory and one requester: a name
   * passes when the requester may read it (see {@linkcode PathRules.mayRead}),
   * both by its URL path and, when the folder was reached through a
   * symlink, by where it really is.
   *
   * @param dirPath the directory's decoded URL path
   * @param user the requester
   * @param realDirPath the directory's real path below the root, as a URL path (default: `dirPath`)
   * @returns a test of an entry name, or undefined when nothing is filtered
   */
  entryFilter(
    dirPath: string,
    user: string | undefined,
    realDirPath: string = dirPath,
  ): ((name: string) => boolean) | undefined {
    if (!this.filters) return undefined;
    const base = dirPath.endsWith("/") ? dirPath : dirPath + "/";
    const real = realDirPath.endsWith("/") ? realDirPath : realDirPath + "/";
    if (base === real) return (name) => this.mayRead(base + name, user);
    return (name) =>
      this.mayRead(base + name, user) && this.sameProtection(base + name, real + name);
  }

  /**
   * Whether two paths are protected alike (same hidden flag, same access):
   * a symlink at `a` may lead to `b` only then, or it would be a way around
   * a rule.
   *
   * @param a a decoded URL path (the link)
   * @param b another (its target, below the root)
   * @returns true when both answer every requester the same
   */
  sameProtection(a: string, b: string): boolean {
    if (!this.filters || a === b) return true;
    const x = this.rulesFor(a), y = this.rulesFor(b);
    return x.hidden === y.hidden && sameAccess(x.access, y.access);
  }

  /**
   * What a listing cache key needs to tell requesters apart: `""` when
   * everyone sees the same, else one key per user.
   *
   * @param user the requester
   * @returns a suffix for cache keys
   */
  viewerKey(user: string | undefined): string {
    if (!this.personal) return "";
    return user === undefined ? "\0-" : "\0u" + user;
  }
}

/**
 * Whether `access` lets `user` read.
 *
 * @param access the path's access
 * @param user the authenticated name, or undefined
 * @returns true when allowed
 */
export function allows(access: Access, user: string | undefined): boolean {
  if (access === "public") return true;
  if (access === "deny" || user === undefined) return false;
  return access === "authenticated" || access.has(user);
}

function sameAccess(a: Access, b: Access): boolean {
  if (a === b) return true;
  if (typeof a === "string" || typeof b === "string") return false;
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}

const lossy = new TextDecoder();

/** Percent-decodes a path, bad UTF-8 as U+FFFD; null when it does not decode at all. */
function lossyDecode(raw: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 37) {
      const h = parseInt(raw.slice(i + 1, i + 3), 16);
      if (!/^[0-9a-fA-F]{2}$/.test(raw.slice(i + 1, i + 3))) return null;
      bytes.push(h);
      i += 2;
    } else bytes.push(c & 0xff);
  }
  const s = lossy.decode(new Uint8Array(bytes));
  const parts = s.split("/").filter((p) => p !== "");
  if (parts.some((p) => p === "." || p === "..")) return null;
  return "/" + parts.join("/");
}
