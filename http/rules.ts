/**
 * Route rules: the stage every request passes after the method check and
 * before path resolution, caches included. A rule looks at the request and
 * either answers it (a {@linkcode Reply}) or passes (`undefined`); the first
 * answer wins. This is where access rules and site rules (redirects,
 * per-path headers) plug in; CORS preflight is the first rule when the
 * `cors` option is on.
 *
 * Rules run on every request, so a rule that passes should do so cheaply
 * (no allocation, no await) for the requests it does not concern.
 *
 * @module
 */
import { getHeader, type Reply, type RequestHead } from "./types.ts";

/**
 * What a rule may use to answer: replies built here carry the server's
 * common headers (`headers` option, CORS), like every other reply.
 */
export interface RuleContext {
  /** The real path of the served root. */
  readonly root: string;
  /**
   * A reply with the common headers added.
   *
   * @param status the status code
   * @param headers the reply's own headers (taken over)
   * @param body the body parts
   * @param length the body length
   */
  reply(
    status: number,
    headers: Array<[string, string]>,
    body?: Reply["body"],
    length?: number,
  ): Reply;
  /**
   * A plain-text error reply (`<status> <reason>`).
   *
   * @param status the status code
   * @param extra headers to add (e.g. `Allow`)
   */
  error(status: number, extra?: Array<[string, string]>): Reply;
}

/**
 * A route rule: answers the request, or passes it on (`undefined`).
 *
 * @example Refuse everything under /private/
 * ```ts
 * import type { Rule } from "./rules.ts";
 *
 * const privateDir: Rule = (req, ctx) =>
 *   req.path.startsWith("/private/") ? ctx.error(403) : undefined;
 * console.assert(typeof privateDir === "function");
 * ```
 */
export type Rule = (
  req: RequestHead,
  ctx: RuleContext,
) => Reply | undefined | Promise<Reply | undefined>;

/**
 * Whether a stage's answer is a promise (rules and views may answer either way).
 *
 * @param v an answer
 * @returns true for a thenable
 */
export function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === "function";
}

/**
 * Runs `rules` in order from `from`; the first answer wins. Synchronous as
 * long as the rules are: a rule's promise is awaited, then the rest run.
 *
 * @param rules the stage list
 * @param req the request
 * @param ctx what rules answer with
 * @param from the first rule to run
 * @returns the first answer, or undefined when every rule passed
 * @example
 * ```ts
 * import { runRules, type Rule, type RuleContext } from "./rules.ts";
 * import assert from "node:assert/strict";
 *
 * const ctx = {
 *   root: "/srv",
 *   reply: (status: number) => ({ status, headers: [], body: [], length: 0 }),
 *   error: (status: number) => ({ status, headers: [], body: [], length: 0 }),
 * } as RuleContext;
 * const pass: Rule = () => undefined;
 * const teapot: Rule = async (_req, c) => c.error(418);
 * const req = { method: "GET", target: "/", path: "/", query: "", minor: 1 as const, headers: [] };
 * assert.equal(runRules([pass], req, ctx), undefined);
 * assert.equal((await runRules([pass, teapot, pass], req, ctx))?.status, 418);
 * ```
 */
export function runRules(
  rules: readonly Rule[],
  req: RequestHead,
  ctx: RuleContext,
  from = 0,
): Reply | undefined | Promise<Reply | undefined> {
  for (let i = from; i < rules.length; i++) {
    const r = rules[i](req, ctx);
    if (r === undefined) continue;
    if (isThenable(r)) {
      return r.then((a) => a !== undefined ? a : runRules(rules, req, ctx, i + 1));
    }
    return r;
  }
  return undefined;
}

/** The methods this server answers (GET and HEAD read; OPTIONS asks). */
export const ALLOWED_METHODS = "GET, HEAD, OPTIONS";
/** Request headers a preflight is told it may send when its own list is not a token list. */
const SAFE_HEADERS = "Range, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, " +
  "If-Range, Accept, Accept-Encoding, Accept-Language, Content-Language";
/** `token *( OWS "," OWS token )` (RFC 9110 5.6.1, 5.6.2). */
const TOKEN_LIST = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;
/** How long a browser may cache the preflight answer, seconds (one day). */
const MAX_AGE = "86400";

/**
 * CORS preflight (Fetch standard, "CORS protocol"): an `OPTIONS` request
 * with `Origin` and `Access-Control-Request-Method` gets 204 with the
 * methods allowed, the request headers allowed (the ones asked for, when
 * they are a list of tokens; else a safe list) and how long to cache that.
 * `Access-Control-Allow-Origin: *` comes with the common headers (the
 * `cors` option). Other requests pass.
 *
 * @param req the request
 * @param ctx what it answers with
 * @returns the 204, or undefined when the request is not a preflight
 * @example
 * ```ts
 * import { corsPreflight, type RuleContext } from "./rules.ts";
 * import assert from "node:assert/strict";
 *
 * const ctx = {
 *   root: "/srv",
 *   reply: (status: number, headers: Array<[string, string]>) => ({ status, headers, body: [], length: 0 }),
 *   error: (status: number) => ({ status, headers: [], body: [], length: 0 }),
 * } as RuleContext;
 * const req = {
 *   method: "OPTIONS", target: "/a.txt", path: "/a.txt", query: "", minor: 1 as const,
 *   headers: ["origin", "https://x.example", "access-control-request-method", "GET"],
 * };
 * const r = corsPreflight(req, ctx) as { status: number };
 * assert.equal(r.status, 204);
 * ```
 */
export function corsPreflight(req: RequestHead, ctx: RuleContext): Reply | undefined {
  if (req.method !== "OPTIONS") return undefined;
  if (getHeader(req, "origin") === undefined) return undefined;
  if (getHeader(req, "access-control-request-method") === undefined) return undefined;
  const h: Array<[string, string]> = [
    ["Allow", ALLOWED_METHODS],
    ["Access-Control-Allow-Methods", ALLOWED_METHODS],
  ];
  const asked = getHeader(req, "access-control-request-headers")?.trim();
  if (asked !== undefined && asked !== "") {
    const echo = TOKEN_LIST.test(asked) ? asked.split(",").map((s) => s.trim()).join(", ") : null;
    h.push(["Access-Control-Allow-Headers", echo ?? SAFE_HEADERS]);
    // The answer depends on what was asked.
    h.push(["Vary", "Access-Control-Request-Headers"]);
  }
  h.push(["Access-Control-Max-Age", MAX_AGE]);
  return ctx.reply(204, h);
}
