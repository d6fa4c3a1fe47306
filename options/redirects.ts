/**
 * Redirect rules (site rules, #13), checked once at start by every entry
 * point: the config file's `"redirects"`, `serve()` and `createHandler()`'s
 * `redirects` option. Pure; imports nothing of the server, so the resolver
 * (`resolve.ts`) and the config file (`config.ts`) can use it.
 *
 * ```jsonc
 * "redirects": [
 *   { "from": "/old.html", "to": "/new.html" },                  // exact path, 301
 *   { "from": "/blog/**", "to": "/posts/:splat", "status": 308 }, // the tail carried over
 *   { "from": "/chat", "to": "https://chat.example.org/", "status": 302 }
 * ]
 * ```
 *
 * @module
 */

/** One redirect: where from, where to, which status. */
export interface Redirect {
  /**
   * The request path (as sent, percent-encoded): exact (`/old.html`), or a
   * prefix ending in `/**` that matches everything under it and captures the
   * rest of the path (`/blog/**` matches `/blog/` and `/blog/2024/a.html`).
   */
  from: string;
  /**
   * Where to: a path on this site (`/new/`), or an absolute `http(s)://`
   * URL. With a `/**` `from`, `:splat` stands for the captured tail.
   */
  to: string;
  /** 301, 302, 307 or 308. @default 301 */
  status?: 301 | 302 | 307 | 308;
}

const STATUSES = [301, 302, 307, 308];
/** A request path's characters: visible ASCII but the ones that end it or are never in one. */
const PATH = /^\/[\x21-\x7e]*$/;

const q = (v: unknown): string => {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

/** What is wrong with `to`, or undefined. */
function toProblem(to: string, splat: boolean): string | undefined {
  if (!/^[\x21-\x7e]+$/.test(to)) return "must be visible ASCII without spaces";
  if (!splat && to.includes(":splat")) return 'uses ":splat" but "from" does not end in "/**"';
  if (to.startsWith("/")) {
    // "//host" and "/\host" are read by browsers as another host.
    if (/^\/[\/\\]/.test(to)) return 'must not start with "//" or "/\\" (another host)';
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(to.replaceAll(":splat", "splat"));
  } catch {
    return 'must be a path starting with "/" or an absolute http(s) URL';
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return 'must be a path starting with "/" or an absolute http(s) URL';
  }
  // The tail may only land after the authority: "https://x:splat" would let it pick the host.
  const afterHost = to.indexOf("/", to.indexOf("//") + 2);
  const at = to.indexOf(":splat");
  if (at >= 0 && (afterHost < 0 || at < afterHost)) {
    return 'must put ":splat" after the host, in the path';
  }
  return undefined;
}

/**
 * Checks a list of redirects; the message of a bad one names it by index
 * and says what is wrong, with the value.
 *
 * @param value the list as given
 * @param at what to call the list in messages
 * @returns a copy, statuses filled in
 * @throws {RangeError} naming the rule, the key and the value
 * @example
 * ```ts
 * import { checkRedirects } from "./redirects.ts";
 * import assert from "node:assert/strict";
 * assert.equal(checkRedirects([{ from: "/a", to: "/b" }])[0].status, 301);
 * assert.throws(
 *   () => checkRedirects([{ from: "/a", to: "//evil.example" }]),
 *   /redirects\[0\]\.to must not start with "\/\/"/,
 * );
 * ```
 */
export function checkRedirects(value: unknown, at = "redirects"): Required<Redirect>[] {
  if (!Array.isArray(value)) {
    throw new RangeError(`${at} must be an array of { "from", "to", "status" }, got ${q(value)}`);
  }
  const seen = new Set<string>();
  return value.map((r, i) => {
    const here = `${at}[${i}]`;
    if (typeof r !== "object" || r === null || Array.isArray(r)) {
      throw new RangeError(
        `${here} must be an object like { "from": "/a", "to": "/b" }, got ${q(r)}`,
      );
    }
    for (const k of Object.keys(r)) {
      if (k !== "from" && k !== "to" && k !== "status") {
        throw new RangeError(
          `${here}.${k} is not a redirect key (known: from, to, status), got ${q(r[k])}`,
        );
      }
    }
    const { from, to, status = 301 } = r as Record<string, unknown>;
    if (typeof from !== "string" || !PATH.test(from) || /[?#]/.test(from)) {
      throw new RangeError(
        `${here}.from must be a URL path starting with "/" (visible ASCII, no "?" or "#"), got ${
          q(from)
        }`,
      );
    }
    const splat = from.endsWith("/**");
    if (from.slice(0, splat ? -2 : undefined).includes("*")) {
      throw new RangeError(
        `${here}.from may hold "*" only as a final "/**" (everything under a prefix), got ${
          q(from)
        }`,
      );
    }
    if (seen.has(from)) {
      throw new RangeError(`${here}.from repeats an earlier rule's, got ${q(from)}`);
    }
    seen.add(from);
    if (typeof to !== "string") throw new RangeError(`${here}.to must be a string, got ${q(to)}`);
    const problem = toProblem(to, splat);
    if (problem !== undefined) throw new RangeError(`${here}.to ${problem}, got ${q(to)}`);
    if (!STATUSES.includes(status as number)) {
      throw new RangeError(`${here}.status must be 301, 302, 307 or 308, got ${q(status)}`);
    }
    return { from, to, status: status as 301 | 302 | 307 | 308 };
  });
}
