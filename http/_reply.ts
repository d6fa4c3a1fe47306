/**
 * Reply decoration and building: every reply the handler makes passes
 * through {@linkcode Replies}, which adds the server's common headers (the
 * `headers` option, CORS) once, and serialises the heads of the frozen
 * replies the caches share. Error replies and the one boundary that maps a
 * thrown error to a status live here too.
 *
 * @module
 */
import type { Reply } from "./types.ts";
import { reasonPhrase } from "./engine.ts";
import { errorStatus } from "./_fs_errors.ts";

const encoder = new TextEncoder();
/** Content-Type of every plain-text reply. */
export const TEXT = "text/plain; charset=utf-8";

/**
 * The server's common headers, checked once: a name that is not an HTTP
 * token or a value with CR, LF or NUL would break or inject into every reply.
 *
 * @param headers the `headers` option
 * @param cors add `Access-Control-Allow-Origin: *`
 * @returns the headers every reply carries
 * @throws {Error} naming the bad header
 */
export function commonHeaders(
  headers: Array<[string, string]> = [],
  cors = false,
): Array<[string, string]> {
  const common: Array<[string, string]> = [];
  for (const [k, v] of headers) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) {
      throw new Error(`header name must be an HTTP token, got ${JSON.stringify(k)}`);
    }
    if (/[\0\r\n]/.test(v)) {
      throw new Error(`header value must not contain CR, LF or NUL, got ${JSON.stringify(v)}`);
    }
    common.push([k, v]);
  }
  if (cors) common.push(["Access-Control-Allow-Origin", "*"]);
  return common;
}

/**
 * Builds replies decorated with the common headers.
 *
 * @example A 404 with a site header
 * ```ts
 * import { Replies } from "./_reply.ts";
 * import assert from "node:assert/strict";
 *
 * const r = new Replies([["X-Site", "a"]]).error(404);
 * assert.equal(r.status, 404);
 * assert.deepEqual(r.headers.at(-1), ["X-Site", "a"]);
 * ```
 */
export class Replies {
  readonly #common: ReadonlyArray<[string, string]>;

  /** @param common the headers every reply carries ({@linkcode commonHeaders}) */
  constructor(common: ReadonlyArray<[string, string]>) {
    this.#common = common;
  }

  /**
   * A reply with the common headers appended to `headers` (which it takes over).
   *
   * @param status the status code
   * @param headers the reply's own headers
   * @param body the body parts
   * @param length the body length (-1: a stream of unknown length)
   * @param release called once when the engine is done with the reply
   * @returns the reply
   */
  reply(
    status: number,
    headers: Array<[string, string]>,
    body: Reply["body"] = [],
    length = 0,
    release?: () => void,
  ): Reply {
    for (const h of this.#common) headers.push(h);
    return release ? { status, headers, body, length, release } : { status, headers, body, length };
  }

  /**
   * A plain-text error reply: `<status> <reason>\n`.
   *
   * @param status the status code
   * @param extra headers before the common ones (Allow, Retry-After)
   * @returns the reply
   */
  error(status: number, extra: Array<[string, string]> = []): Reply {
    const body = encoder.encode(`${status} ${reasonPhrase(status)}\n`);
    return this.reply(status, [["Content-Type", TEXT], ...extra], [body], body.length);
  }

  /**
   * The boundary's one catch: a thrown error as its status (NotFound 404,
   * PermissionDenied 403, out of descriptors 503 + Retry-After because it is
   * temporary, anything else 500 and one log line).
   *
   * @param e what was thrown
   * @returns the error reply
   */
  readonly mapError = (e: unknown): Reply => {
    const status = errorStatus(e);
    if (status === 503) return this.error(503, [["Retry-After", "1"]]);
    if (status === 500) {
      console.error(`ringhttpd: 500: ${e instanceof Error ? `${e.name}: ${e.message}` : e}`);
    }
    return this.error(status);
  };

  /**
   * A job that did not produce a result: 503 (pool busy or failed) comes
   * with Retry-After; a 200 without a well-formed result is a 500.
   *
   * @param status what the job answered
   * @returns the error reply
   */
  jobError(status: number): Reply {
    if (status === 503) return this.error(503, [["Retry-After", "1"]]);
    return this.error(status === 200 ? 500 : status);
  }

  /**
   * A shared, frozen reply with its head pre-serialised (the caches' hits
   * cost no allocation). `bytes` null: no body and no Content-Length (304).
   *
   * @param status the status code
   * @param headers the reply's own headers (copied, not changed)
   * @param bytes the whole body, or null
   * @returns the frozen reply, with `rawHead`
   */
  frozen(status: number, headers: Array<[string, string]>, bytes: Uint8Array | null): Reply {
    // A copy: one rendered page can be frozen by two coalesced requests, and
    // the first freeze must not make the second one's push throw.
    headers = headers.concat(this.#common);
    let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
    for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
    if (bytes !== null) head += `Content-Length: ${bytes.length}\r\n`;
    return Object.freeze({
      status,
      headers: Object.freeze(headers) as Array<[string, string]>,
      body: Object.freeze(bytes === null ? [] : [bytes]) as Reply["body"],
      length: bytes === null ? 0 : bytes.length,
      rawHead: encoder.encode(head),
    });
  }
}
