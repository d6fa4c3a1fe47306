/**
 * The access stage: the first route rule after CORS preflight, before the
 * caches (so a reply cached for one requester is never handed to another
 * who may not read it). It asks the path rules ({@linkcode PathRules}) what
 * the request's path is, then:
 *
 * - hidden: 404, the very reply a missing path gets (same status, body and
 *   headers; checked before anything touches the disk, so no timing or
 *   redirect tells them apart);
 * - `deny`: 403 for everyone, whether the path exists or not;
 * - public: passes; credentials sent anyway are checked (a listing may
 *   show that user more, and the log names them), bad ones get 401;
 * - otherwise credentials are checked ({@linkcode Credentials}: 401, 429,
 *   503), then a user not on the path's list gets 403.
 *
 * `OPTIONS` passes (it is answered 405 or as a CORS preflight, the same for
 * every path), and so does a path that does not decode (the resolve stage
 * refuses it the same way for everyone).
 *
 * Afterwards, {@linkcode decorate} applies the path's `headers` and
 * `cacheControl` to whatever the pipeline answered.
 *
 * @module
 */
import { getHeader, type Reply, type RequestHead } from "./types.ts";
import { isThenable, type Rule, type RuleContext } from "./rules.ts";
import { type Access, allows, type PathRules, type PathSettings } from "./path_rules.ts";

/**
 * Who a request is: the authentication stage's interface as the pipeline
 * uses it (`auth/rule.ts` `Authenticator` implements it).
 */
export interface Credentials {
  /**
   * Names the user of a value verified before, if any; never answers.
   *
   * @param req the request (gets `user`)
   */
  identify(req: RequestHead): void;
  /**
   * Checks the request's credentials: undefined (passes, `req.user` set) or
   * the reply (401, 429, 503).
   *
   * @param req the request
   * @param ctx what to answer with
   */
  check(req: RequestHead, ctx: RuleContext): Reply | undefined | Promise<Reply | undefined>;
}

/**
 * The access stage as a route rule.
 *
 * @param paths the compiled path rules
 * @param credentials the authentication, when credentials are configured
 * @returns the rule
 * @example
 * ```ts
 * import { accessRule } from "./_access_stage.ts";
 * import { PathRules } from "./path_rules.ts";
 * import assert from "node:assert/strict";
 *
 * const rule = accessRule(new PathRules({ rules: [{ path: "/secret/**", hidden: true }] }));
 * const ctx = {
 *   root: "/srv",
 *   reply: (status: number) => ({ status, headers: [], body: [], length: 0 }),
 *   error: (status: number) => ({ status, headers: [], body: [], length: 0 }),
 * };
 * const req = (path: string) => ({ method: "GET", target: path, path, query: "", minor: 1 as const, headers: [] });
 * assert.equal((rule(req("/secret/a"), ctx) as { status: number }).status, 404);
 * assert.equal(rule(req("/a"), ctx), undefined);
 * ```
 */
export function accessRule(paths: PathRules, credentials?: Credentials): Rule {
  const admit = (access: Access, req: RequestHead, ctx: RuleContext): Reply | undefined =>
    allows(access, req.user) ? undefined : ctx.error(403);
  return (req, ctx) => {
    if (req.method === "OPTIONS") return undefined;
    const s = paths.forRequest(req.path);
    if (s === null) return undefined;
    if (s.hidden) return ctx.error(404);
    const access = s.access;
    if (access === "public") {
      // Credentials sent anyway are checked: what a listing shows may depend
      // on who asks, and a public path must not be an unthrottled oracle.
      if (credentials === undefined || getHeader(req, "authorization") === undefined) {
        return undefined;
      }
      return credentials.check(req, ctx);
    }
    if (access === "deny" || credentials === undefined) return ctx.error(403);
    const r = credentials.check(req, ctx);
    if (r === undefined) return admit(access, req, ctx);
    if (isThenable(r)) return r.then((a) => a ?? admit(access, req, ctx));
    return r;
  };
}

/**
 * A reply with a path's headers applied: the rule's headers replace the
 * server's of the same name, removed names go. A shared (cached) reply is
 * copied, without its pre-serialised head.
 *
 * @param reply what the pipeline answered
 * @param s the request path's settings
 * @returns the reply to send
 */
export function decorate(reply: Reply, s: PathSettings): Reply {
  if (!s.decorates) return reply;
  const drop = new Set(s.remove);
  for (const [k] of s.headers) drop.add(k.toLowerCase());
  const headers: Array<[string, string]> = [];
  for (const h of reply.headers) if (!drop.has(h[0].toLowerCase())) headers.push(h);
  for (const [k, v] of s.headers) headers.push([k, v]);
  const out: Reply = { ...reply, headers };
  delete out.rawHead;
  return out;
}

/**
 * Wraps a pipeline so every reply gets its path's headers.
 *
 * @param paths the path rules
 * @param inner the pipeline
 * @returns the decorated pipeline
 */
export function decorating(
  paths: PathRules,
  inner: (req: RequestHead) => Reply | Promise<Reply>,
): (req: RequestHead) => Reply | Promise<Reply> {
  return (req) => {
    const r = inner(req);
    const s = paths.forRequest(req.path);
    if (s === null || !s.decorates) return r;
    return isThenable(r) ? r.then((a) => decorate(a, s)) : decorate(r, s);
  };
}
