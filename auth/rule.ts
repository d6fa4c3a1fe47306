/**
 * The authentication stage: a route {@linkcode Rule} (the pipeline's
 * `http/rules.ts` type) that lets a request through when it carries valid
 * credentials, or its path is public, and otherwise answers:
 *
 * - 401 with `WWW-Authenticate: Basic realm="...", charset="UTF-8"` (and a
 *   `Bearer realm="..."` challenge when tokens are configured): no or bad
 *   credentials (RFC 9110 11.6.1, RFC 7617, RFC 6750);
 * - 429 with `Retry-After`: the client's address failed too often
 *   ({@linkcode Attempts}), checked before any hash is computed, so a
 *   guessing client costs nothing once blocked;
 * - 503 with `Retry-After: 1`: too many verifications queued.
 *
 * A passed request gets the user or token name in `user` (for the access
 * log). A request whose value was verified before passes synchronously
 * (one `Map.get`); others wait for the verify Worker. The `Authorization`
 * value is never logged, nor put in a reply.
 *
 * Public paths (`--public GLOB`): picomatch globs over the decoded URL path,
 * `**` for any depth, dotfiles included. A path that does not decode, or
 * holds `.`/`..` segments, a backslash, NUL or an encoded `/`, is never
 * public (the resolve stage refuses those anyway; here they must not be
 * a way around the check).
 *
 * @module
 */
import picomatch from "picomatch";
import type { Reply, RequestHead } from "../http/types.ts";
import { getHeader } from "../http/types.ts";
import type { Rule, RuleContext } from "../http/rules.ts";

export type { Rule, RuleContext };
import type { Attempts } from "./attempts.ts";
import type { Verifier } from "./verify.ts";

/** A request that passed the stage: `user` names who (for the access log). */
export type AuthenticatedRequest = RequestHead;

/** {@linkcode authRule} settings. */
export interface AuthRuleOptions extends AuthenticatorOptions {
  /** `--public` globs over the URL path. @default [] */
  public?: readonly string[];
}

/**
 * Compiles `--public` globs into one matcher.
 *
 * @param globs patterns over the URL path, each starting with `/`
 * @returns a test of a decoded path
 * @throws {RangeError} naming the bad glob
 * @example
 * ```ts
 * import { publicMatcher } from "./rule.ts";
 * import assert from "node:assert/strict";
 *
 * const isPublic = publicMatcher(["/assets/**", "/favicon.ico"]);
 * assert.ok(isPublic("/assets/css/site.css"));
 * assert.ok(!isPublic("/private/x"));
 * ```
 */
export function publicMatcher(globs: readonly string[]): (path: string) => boolean {
  const tests = globs.map((g) => {
    if (!g.startsWith("/")) {
      throw new RangeError(`--public must start with "/", got ${JSON.stringify(g)}`);
    }
    try {
      return (picomatch as unknown as (g: string, o: object) => (p: string) => boolean)(g, {
        dot: true,
        strictBrackets: true,
      });
    } catch (e) {
      throw new RangeError(`--public ${JSON.stringify(g)}: ${(e as Error).message}`);
    }
  });
  return (path) => tests.some((t) => t(path));
}

/** The decoded path when it is one a glob may judge; undefined when it must not be public. */
function decodedPath(raw: string): string | undefined {
  if (/%2f|%5c|%00/i.test(raw)) return undefined;
  let p: string;
  try {
    p = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  if (!p.startsWith("/") || p.includes("\\") || p.includes("\0")) return undefined;
  if (/\/\.\.?(?:\/|$)/.test(p)) return undefined;
  return p;
}

/** A quoted-string (RFC 9110 5.6.4) of a realm. */
function quoted(realm: string): string {
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(realm)) {
    throw new RangeError("the realm cannot hold control characters");
  }
  return `"${realm.replace(/["\\]/g, "\\$&")}"`;
}

/** {@linkcode Authenticator} settings. */
export interface AuthenticatorOptions {
  /** Checks credentials. */
  verifier: Verifier;
  /** Failed-attempt counter shared by every thread; undefined: no blocking. */
  attempts?: Attempts;
  /**
   * The realm shown by browsers' login prompts.
   * @default "ringhttpd"
   */
  realm?: string;
  /**
   * The client's address of a request; undefined: unknown, and then not
   * counted (one shared counter would let one guesser block everyone).
   * @default the request's `remote?.address`
   */
  addressOf?: (req: RequestHead) => string | undefined;
}

/**
 * Checks a request's credentials: sets `req.user` and passes, or answers
 * 401 / 429 / 503 (see the module doc). Used by the access stage
 * (`http/_access_stage.ts`) for the paths that need credentials.
 */
export class Authenticator {
  readonly #verifier: Verifier;
  readonly #attempts: Attempts | undefined;
  readonly #realm: string;
  readonly #addressOf: (req: RequestHead) => string | undefined;

  /**
   * @param options the verifier, attempts, realm
   * @throws {RangeError} for a realm with control characters
   */
  constructor(options: AuthenticatorOptions) {
    this.#verifier = options.verifier;
    this.#attempts = options.attempts;
    this.#realm = quoted(options.realm ?? "ringhttpd");
    this.#addressOf = options.addressOf ?? ((req: RequestHead) => req.remote?.address);
  }

  /**
   * Sets `req.user` from a value verified before (no verification, no
   * answer): for paths anyone may read, so the access log still names a
   * known user.
   *
   * @param req the request
   */
  identify(req: RequestHead): void {
    const header = getHeader(req, "authorization");
    if (header !== undefined) {
      const name = this.#verifier.cached(header);
      if (name !== undefined) req.user = name;
    }
  }

  /**
   * Checks the request's credentials.
   *
   * @param req the request (gets `user` when it passes)
   * @param ctx what to answer with
   * @returns undefined when it passes (synchronously for a value verified
   *   before), else the 401 / 429 / 503, or a promise of either
   */
  check(req: RequestHead, ctx: RuleContext): Reply | undefined | Promise<Reply | undefined> {
    const verifier = this.#verifier;
    const header = getHeader(req, "authorization");
    if (header === undefined) return this.#challenge(ctx);
    // The hot path: a value verified before passes with one Map lookup.
    const name = verifier.cached(header);
    if (name !== undefined) {
      req.user = name;
      return undefined;
    }
    const addr = this.#addressOf(req);
    const counted = addr === undefined ? undefined : this.#attempts;
    const wait = counted?.retryAfter(addr!) ?? 0;
    if (wait > 0) return this.#blocked(ctx, wait);
    return verifier.verify(header).then((out) => {
      if (out.ok) {
        req.user = out.name;
        return undefined;
      }
      if (out.reason === "busy") return ctx.error(503, [["Retry-After", "1"]]);
      const now = counted?.fail(addr!) ?? 0;
      return now > 0 ? this.#blocked(ctx, now) : this.#challenge(ctx);
    });
  }

  #challenge(ctx: RuleContext): Reply {
    const h: Array<[string, string]> = [
      ["WWW-Authenticate", `Basic realm=${this.#realm}, charset="UTF-8"`],
    ];
    if (this.#verifier.bearer) h.push(["WWW-Authenticate", `Bearer realm=${this.#realm}`]);
    h.push(["Cache-Control", "no-store"]);
    return ctx.error(401, h);
  }

  #blocked(ctx: RuleContext, seconds: number): Reply {
    return ctx.error(429, [["Retry-After", String(seconds)], ["Cache-Control", "no-store"]]);
  }
}

/**
 * The authentication rule on its own: every path needs credentials but the
 * `public` ones. (The server builds the access stage from path rules
 * instead; this is the simple form for `createHandler()` users.)
 *
 * @param options the verifier, attempts, realm, public globs
 * @returns a rule for the pipeline's route-rule stage
 * @throws {RangeError} for a bad public glob or realm
 * @example
 * ```ts
 * import { authRule } from "./rule.ts";
 * import { Verifier } from "./verify.ts";
 * import { credentialFromFlag } from "./htpasswd.ts";
 * import assert from "node:assert/strict";
 *
 * using verifier = new Verifier({ users: new Map([["al", credentialFromFlag("al:pw", 4)]]) });
 * const rule = authRule({ verifier, public: ["/pub/**"] });
 * const ctx = {
 *   root: "/srv",
 *   reply: (status: number, headers: Array<[string, string]>) => ({ status, headers, body: [], length: 0 }),
 *   error: (status: number, headers: Array<[string, string]> = []) => ({ status, headers, body: [], length: 0 }),
 * };
 * const req = (path: string, headers: string[] = []) =>
 *   ({ method: "GET", target: path, path, query: "", minor: 1 as const, headers });
 * assert.equal(rule(req("/pub/a.css"), ctx), undefined);
 * assert.equal((rule(req("/a.txt"), ctx) as { status: number }).status, 401);
 * const ok = req("/a.txt", ["authorization", "Basic " + btoa("al:pw")]);
 * assert.equal(await rule(ok, ctx), undefined);
 * assert.equal((ok as { user?: string }).user, "al");
 * ```
 */
export function authRule(options: AuthRuleOptions): Rule {
  const auth = new Authenticator(options);
  const isPublic = publicMatcher(options.public ?? []);
  const anyPublic = (options.public ?? []).length > 0;
  return (req, ctx) => {
    if (anyPublic) {
      const p = decodedPath(req.path);
      if (p !== undefined && isPublic(p)) {
        auth.identify(req);
        return undefined;
      }
    }
    return auth.check(req, ctx);
  };
}
