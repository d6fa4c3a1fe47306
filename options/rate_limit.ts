/**
 * The request rate limit's settings (site rules, #13): the `N/s[:BURST]`
 * text of `--rate-limit` and the config key, and the bounds every entry
 * point checks. Pure; imports nothing of the server. The shared table
 * itself is `http/_rate_limit.ts`.
 *
 * @module
 */

/** Largest burst / rate, seconds: keeps TAT - now far below 2^31 us. */
export const MAX_WINDOW_S = 1000;

/** The settings of a rate limit. */
export interface RateLimit {
  /** Requests a second, sustained (fractions allowed: 0.5 is one every 2 s). */
  rate: number;
  /** Requests allowed at once after a quiet spell (at least 1). */
  burst: number;
}

/**
 * Reads `N/s` or `N/s:BURST` (the flag's and the config key's text).
 * Without a burst, one second's worth (at least 1).
 *
 * @param text e.g. `100/s:200`
 * @returns the limit, or undefined when the text is not one
 * @example
 * ```ts
 * import { parseRateLimit } from "./rate_limit.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseRateLimit("100/s:200"), { rate: 100, burst: 200 });
 * assert.deepEqual(parseRateLimit("0.5/s"), { rate: 0.5, burst: 1 });
 * assert.equal(parseRateLimit("100"), undefined);
 * ```
 */
export function parseRateLimit(text: string): RateLimit | undefined {
  const m = /^(\d+(?:\.\d+)?|\.\d+)\/s(?::(\d+))?$/.exec(text);
  if (m === null) return undefined;
  const rate = Number(m[1]);
  const burst = m[2] === undefined ? Math.max(1, Math.ceil(rate)) : Number(m[2]);
  return rateLimitProblem({ rate, burst }) === undefined ? { rate, burst } : undefined;
}

/**
 * What is wrong with a limit, or undefined.
 *
 * @param l the limit
 * @returns the text completing "must ..."
 */
export function rateLimitProblem(l: RateLimit): string | undefined {
  if (!(typeof l.rate === "number" && l.rate > 0 && l.rate <= 1_000_000)) {
    return "have a rate above 0 and at most 1000000/s";
  }
  if (!(Number.isInteger(l.burst) && l.burst >= 1 && l.burst <= 1_000_000)) {
    return "have a burst of 1-1000000";
  }
  if (l.burst / l.rate > MAX_WINDOW_S) return `have burst / rate at most ${MAX_WINDOW_S} s`;
  return undefined;
}
