/**
 * The redirect stage (site rules, #13): a route rule answering the config
 * file's redirects. An exact `from` wins over a prefix (`/**`); among
 * prefixes, the longest. The Location is the rule's `to`, with the captured
 * tail (still percent-encoded, as sent) for `:splat` and the request's query
 * appended when `to` has none. It can never name another host unless `to`
 * is an absolute URL: leading slashes and backslashes of a relative result
 * are collapsed to one (`/old//evil.example` does not become
 * `//evil.example`), and the tail only lands in a URL's path (checked at
 * start, `options/redirects.ts`).
 *
 * @module
 */
import type { Rule } from "./rules.ts";
import type { Redirect } from "../options/redirects.ts";
import { TEXT } from "./_reply.ts";

/**
 * The rule answering `list`.
 *
 * @param list checked redirects (`checkRedirects`)
 * @returns the rule
 * @example
 * ```ts
 * import { redirectRule } from "./_redirects.ts";
 * import type { RuleContext } from "./rules.ts";
 * import assert from "node:assert/strict";
 *
 * const rule = redirectRule([{ from: "/blog/**", to: "/posts/:splat", status: 308 }]);
 * const ctx = {
 *   reply: (status: number, headers: Array<[string, string]>) => ({ status, headers, body: [], length: 0 }),
 * } as unknown as RuleContext;
 * const req = { method: "GET", target: "/blog/a?x=1", path: "/blog/a", query: "x=1", minor: 1 as const, headers: [] };
 * const r = rule(req, ctx) as { status: number; headers: Array<[string, string]> };
 * assert.equal(r.status, 308);
 * assert.deepEqual(r.headers[0], ["Location", "/posts/a?x=1"]);
 * ```
 */
export function redirectRule(list: readonly Required<Redirect>[]): Rule {
  const exact = new Map<string, Required<Redirect>>();
  const prefixes: Array<[string, Required<Redirect>]> = [];
  for (const r of list) {
    if (r.from.endsWith("/**")) prefixes.push([r.from.slice(0, -2), r]);
    else exact.set(r.from, r);
  }
  prefixes.sort((a, b) => b[0].length - a[0].length);
  return (req, ctx) => {
    const p = req.path;
    let r = exact.get(p);
    let tail = "";
    if (r === undefined) {
      for (const [prefix, x] of prefixes) {
        if (p.startsWith(prefix)) {
          r = x;
          tail = p.slice(prefix.length);
          break;
        }
      }
      if (r === undefined) return undefined;
    }
    let loc = r.to.replaceAll(":splat", tail);
    if (loc.charCodeAt(0) === 47 /* / */) loc = loc.replace(/^[\/\\]+/, "/");
    if (req.query !== "" && !r.to.includes("?")) loc += "?" + req.query;
    // A request target is visible ASCII already; say no rather than send anything else.
    if (!/^[\x21-\x7e]+$/.test(loc)) return undefined;
    return ctx.reply(r.status, [["Location", loc], ["Content-Type", TEXT]]);
  };
}
