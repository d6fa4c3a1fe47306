/**
 * Bearer tokens (`--token-file`). The file holds one token a line as
 * `NAME:SHA256HEX`: the name (1-64 of `A-Z a-z 0-9 . _ @ + -`, shown in the
 * access log) and the SHA-256 of the token in hex, so the file may be
 * readable by others without giving the tokens away. Blank lines and lines
 * starting with `#` are skipped; a name or a hash may appear once.
 *
 * A token is what a client sends after `Bearer ` (RFC 6750 `b64token`:
 * `A-Z a-z 0-9 - . _ ~ + /` then `=` padding), at most {@linkcode MAX_TOKEN}
 * characters.
 *
 * Make a line (prints the new token on stderr, the file line on stdout):
 *
 * ```sh
 * deno run auth/tokens.ts ci-bot >> tokens.txt          # a random token
 * printf %s "$TOKEN" | deno run auth/tokens.ts ci-bot - # hash a given token
 * ```
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { AuthFileError, type FileProblem, readAuthFile } from "./htpasswd.ts";

/** Longest token accepted, characters. */
export const MAX_TOKEN = 512;
const NAME = /^[A-Za-z0-9._@+-]{1,64}$/;
const HEX = /^[0-9a-fA-F]{64}$/;
/** RFC 6750 section 2.1 `b64token`. */
export const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The configured tokens: names and SHA-256 digests. */
export class TokenSet {
  readonly #names: string[];
  readonly #digests: Uint8Array[];

  /**
   * @param entries `[name, 32-byte SHA-256 digest]` pairs
   */
  constructor(entries: ReadonlyArray<readonly [string, Uint8Array]>) {
    this.#names = entries.map(([n]) => n);
    this.#digests = entries.map(([, d]) => d);
  }

  /**
   * The names and digests, e.g. to send the set to another thread
   * (`new TokenSet(set.entries())` there).
   *
   * @returns `[name, digest]` pairs (copies)
   */
  entries(): Array<[string, Uint8Array]> {
    return this.#names.map((n, i) => [n, this.#digests[i].slice()]);
  }

  /** How many tokens. */
  get size(): number {
    return this.#names.length;
  }

  /**
   * The name of the token whose digest is `digest`. Compares against every
   * entry in constant time (no early exit), so the time depends only on the
   * number of tokens.
   *
   * @param digest a 32-byte SHA-256 digest
   * @returns the token's name, or undefined
   */
  match(digest: Uint8Array): string | undefined {
    let found = -1;
    for (let i = 0; i < this.#digests.length; i++) {
      if (timingSafeEqual(this.#digests[i], digest)) found = i;
    }
    return found < 0 ? undefined : this.#names[found];
  }

  /**
   * Verifies a presented bearer token.
   *
   * @param token the token (after `Bearer `)
   * @returns the token's name, or undefined when it is not one of the set
   * @example
   * ```ts
   * import { hashToken, parseTokens } from "./tokens.ts";
   * import assert from "node:assert/strict";
   *
   * const line = `ci:${await hashToken("t0k3n")}\n`;
   * const set = parseTokens(new TextEncoder().encode(line), "tokens.txt");
   * assert.equal(await set.verify("t0k3n"), "ci");
   * assert.equal(await set.verify("other"), undefined);
   * ```
   */
  async verify(token: string): Promise<string | undefined> {
    if (token.length > MAX_TOKEN || !B64TOKEN.test(token)) return undefined;
    return this.match(await digest(token));
  }
}

async function digest(token: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
}

/**
 * The SHA-256 of a token in lower-case hex, as written in a token file.
 *
 * @param token the token
 * @returns 64 hex digits
 * @example
 * ```ts
 * import { hashToken } from "./tokens.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   await hashToken("abc"),
 *   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 * );
 * ```
 */
export async function hashToken(token: string): Promise<string> {
  return Array.from(await digest(token), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Parses token-file content.
 *
 * @param bytes the file's bytes
 * @param file the path, for messages
 * @returns the tokens
 * @throws {AuthFileError} naming every refused line
 * @example
 * ```ts
 * import { parseTokens } from "./tokens.ts";
 * import assert from "node:assert/strict";
 *
 * const text = "# bots\nci:" + "ab".repeat(32) + "\n";
 * assert.equal(parseTokens(new TextEncoder().encode(text), "t").size, 1);
 * assert.throws(() => parseTokens(new TextEncoder().encode("ci:xyz\n"), "t"), /t:1: /);
 * ```
 */
export function parseTokens(bytes: Uint8Array, file: string): TokenSet {
  const problems: FileProblem[] = [];
  const names = new Map<string, number>();
  const hashes = new Map<string, number>();
  const entries: Array<[string, Uint8Array]> = [];
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new AuthFileError(file, [{ line: 1, reason: "not UTF-8" }]);
  }
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (line.trim() === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon < 0) {
      problems.push({ line: n, reason: "expected NAME:SHA256HEX, found no ':'" });
      continue;
    }
    const name = line.slice(0, colon);
    const hex = line.slice(colon + 1).toLowerCase();
    if (!NAME.test(name)) {
      problems.push({ line: n, reason: "a name is 1-64 of A-Z a-z 0-9 . _ @ + -" });
    } else if (!HEX.test(hex)) {
      problems.push({
        line: n,
        reason:
          "expected the token's SHA-256 as 64 hex digits (make one: deno run auth/tokens.ts NAME)",
      });
    } else if (names.has(name)) {
      problems.push({ line: n, reason: `name ${name} already on line ${names.get(name)}` });
    } else if (hashes.has(hex)) {
      problems.push({ line: n, reason: `same token as line ${hashes.get(hex)}` });
    } else {
      names.set(name, n);
      hashes.set(hex, n);
      const d = new Uint8Array(32);
      for (let k = 0; k < 32; k++) d[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
      entries.push([name, d]);
    }
  }
  if (problems.length > 0) throw new AuthFileError(file, problems);
  return new TokenSet(entries);
}

/**
 * Reads and parses a token file.
 *
 * @param path the file
 * @returns the tokens
 * @throws {AuthFileError} when it cannot be read or has refused lines
 */
export async function readTokens(path: string): Promise<TokenSet> {
  return parseTokens(await readAuthFile(path), path);
}

async function main(args: string[]): Promise<number> {
  const [name, from] = args;
  if (name === undefined || !NAME.test(name) || args.length > 2 || (from ?? "-") !== "-") {
    console.error("usage: deno run auth/tokens.ts NAME [-]   (- reads the token from stdin)");
    return 2;
  }
  let token: string;
  if (from === "-") {
    token = (await new Response(Deno.stdin.readable).text()).trim();
    if (token.length > MAX_TOKEN || !B64TOKEN.test(token)) {
      console.error(`a token is 1-${MAX_TOKEN} of A-Z a-z 0-9 - . _ ~ + / then = padding`);
      return 2;
    }
  } else {
    const raw = crypto.getRandomValues(new Uint8Array(32));
    token = btoa(String.fromCharCode(...raw)).replaceAll("+", "-").replaceAll("/", "_")
      .replace(/=+$/, "");
    console.error(`token for ${name} (shown once): ${token}`);
  }
  console.log(`${name}:${await hashToken(token)}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
