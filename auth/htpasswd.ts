/**
 * Apache htpasswd files (`--auth-file`) and `--auth USER:PASSWORD` values:
 * each becomes a {@linkcode Credential}, a user name with a password hash
 * the verify Worker checks (`auth/_verify_worker.ts`).
 *
 * Accepted schemes, as Debian's apache2-utils `htpasswd` writes them:
 * - bcrypt (`htpasswd -B`): `$2y$`, `$2b$`, `$2a$` + two-digit cost + 53 chars;
 * - Apache MD5 (`htpasswd -m`, the default): `$apr1$` + salt (1-8 chars) + `$` + 22 chars.
 *
 * Refused, with the line number and why: SHA-1 (`{SHA}`, `-s`), DES crypt
 * (`-d`), MD5-crypt (`$1$`), SHA-256/512-crypt (`$5$`/`$6$`, `-2`/`-5`),
 * plain text (`-p`) and anything else. Like Apache's mod_authn_file, blank
 * lines and lines starting with `#` are skipped; a user may appear once
 * (a second line for the same user is refused, not silently shadowed).
 *
 * @module
 */
import bcrypt from "bcryptjs";

/** A user and the hash a password is verified against. */
export interface Credential {
  /** The user name (UTF-8, no `:`). */
  readonly user: string;
  /** How `hash` is verified. */
  readonly scheme: "bcrypt" | "apr1";
  /** The hash as written in the file, e.g. `$2y$05$...` or `$apr1$salt$...`. */
  readonly hash: string;
}

/** One refused line of an auth or token file. */
export interface FileProblem {
  /** 1-based line number. */
  readonly line: number;
  /** Why it was refused. */
  readonly reason: string;
}

/**
 * An auth or token file that cannot be used: names the file and every
 * refused line (`FILE:LINE: why`).
 */
export class AuthFileError extends Error {
  /** The refused lines (empty when the file itself could not be read). */
  readonly problems: readonly FileProblem[];
  /**
   * @param file the file's path, as given
   * @param problems the refused lines
   * @param cause what failed, when the file could not be read
   */
  constructor(file: string, problems: readonly FileProblem[], cause?: string) {
    const lines = problems.slice(0, 10).map((p) => `${file}:${p.line}: ${p.reason}`);
    if (problems.length > 10) lines.push(`... and ${problems.length - 10} more`);
    super(cause !== undefined ? `cannot read ${file}: ${cause}` : lines.join("\n"));
    this.name = "AuthFileError";
    this.problems = problems;
  }
}

/** Longest user name accepted, in bytes (also the bound for a Basic header's user). */
export const MAX_USER_BYTES = 255;
/** Biggest auth or token file read, bytes (a mistaken path to a huge file fails fast). */
export const MAX_FILE_BYTES = 16 << 20;

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const APR1 = /^\$apr1\$[^$]{1,8}\$[./A-Za-z0-9]{22}$/;
const DES = /^[./A-Za-z0-9]{13}$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** Why a hash of an unsupported scheme is refused (the user reads this). */
function refusal(hash: string): string {
  const redo = "re-create it with htpasswd -B (bcrypt)";
  if (hash.startsWith("{SHA}")) return `SHA-1 ({SHA}) is unsalted and fast to guess: ${redo}`;
  if (hash.startsWith("$1$")) return `MD5-crypt ($1$) is not supported: ${redo} or -m`;
  if (hash.startsWith("$5$") || hash.startsWith("$6$")) {
    return `SHA-crypt (${hash.slice(0, 3)}) is not supported: ${redo}`;
  }
  if (hash.startsWith("$2") || hash.startsWith("$apr1$")) {
    return `malformed ${hash.startsWith("$2") ? "bcrypt" : "apr1"} hash: ${redo}`;
  }
  if (DES.test(hash)) return `DES crypt uses only 8 password characters: ${redo}`;
  return `plain text or unknown scheme: ${redo}`;
}

/**
 * Checks a user name: non-empty, no `:`, no control characters, at most
 * {@linkcode MAX_USER_BYTES} UTF-8 bytes.
 *
 * @param user the name
 * @returns why it is refused, or undefined when it is fine
 */
export function userProblem(user: string): string | undefined {
  if (user === "") return "empty user name";
  if (user.includes(":")) return "a user name cannot contain ':'";
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(user)) return "control character in the user name";
  if (encoder.encode(user).length > MAX_USER_BYTES) {
    return `user name longer than ${MAX_USER_BYTES} bytes`;
  }
  return undefined;
}

/**
 * Parses htpasswd content.
 *
 * @param bytes the file's bytes (UTF-8; CRLF line ends accepted)
 * @param file the path, for messages
 * @returns the credentials by user name
 * @throws {AuthFileError} naming every refused line
 * @example A file made by `htpasswd -B`
 * ```ts
 * import { parseHtpasswd } from "./htpasswd.ts";
 * import assert from "node:assert/strict";
 *
 * const text = "alice:$2y$05$Gd7701LYHIyp1pP7FJ6CDOZu4utT3H34qhTgxirHQfcoW2zSLlJ7O\n";
 * const users = parseHtpasswd(new TextEncoder().encode(text), "users.htpasswd");
 * assert.equal(users.get("alice")?.scheme, "bcrypt");
 * assert.throws(() => parseHtpasswd(new TextEncoder().encode("bob:{SHA}x=\n"), "f"), /f:1: SHA-1/);
 * ```
 */
export function parseHtpasswd(bytes: Uint8Array, file: string): Map<string, Credential> {
  const users = new Map<string, Credential>();
  const lines = new Map<string, number>();
  const problems: FileProblem[] = [];
  let start = 0;
  for (let n = 1; start < bytes.length; n++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const raw = bytes.subarray(start, end > start && bytes[end - 1] === 0x0d ? end - 1 : end);
    start = end + 1;
    let line: string;
    try {
      line = utf8.decode(raw);
    } catch {
      problems.push({ line: n, reason: "not UTF-8" });
      continue;
    }
    if (line.trim() === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon < 0) {
      problems.push({ line: n, reason: "no ':' between the user and the hash" });
      continue;
    }
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    const bad = userProblem(user);
    if (bad !== undefined) {
      problems.push({ line: n, reason: bad });
      continue;
    }
    const seen = lines.get(user);
    if (seen !== undefined) {
      problems.push({ line: n, reason: `user ${JSON.stringify(user)} already on line ${seen}` });
      continue;
    }
    const cost = BCRYPT.exec(hash);
    if (cost !== null) {
      const c = Number(cost[1]);
      if (c < 4 || c > 31) {
        problems.push({ line: n, reason: `bcrypt cost must be 4-31, got ${c}` });
        continue;
      }
      users.set(user, { user, scheme: "bcrypt", hash });
    } else if (APR1.test(hash)) {
      users.set(user, { user, scheme: "apr1", hash });
    } else {
      problems.push({ line: n, reason: refusal(hash) });
      continue;
    }
    lines.set(user, n);
  }
  if (problems.length > 0) throw new AuthFileError(file, problems);
  return users;
}

/**
 * Reads and parses an htpasswd file.
 *
 * @param path the file
 * @returns the credentials by user name
 * @throws {AuthFileError} when it cannot be read (missing, unreadable, too
 *   big, a directory) or has refused lines
 * @example
 * ```ts
 * import { AuthFileError, readHtpasswd } from "./htpasswd.ts";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(readHtpasswd("/nonexistent/users"), AuthFileError);
 * ```
 */
export async function readHtpasswd(path: string): Promise<Map<string, Credential>> {
  return parseHtpasswd(await readAuthFile(path), path);
}

/**
 * Reads a small auth or token file whole.
 *
 * @param path the file
 * @returns its bytes
 * @throws {AuthFileError} when it is missing, unreadable, not a file or too big
 */
export async function readAuthFile(path: string): Promise<Uint8Array> {
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) throw new Error("not a regular file");
    if (st.size > MAX_FILE_BYTES) throw new Error(`bigger than ${MAX_FILE_BYTES} bytes`);
    return await Deno.readFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable
      ? "permission denied"
      : (e as Error).message;
    throw new AuthFileError(path, [], why);
  }
}

/** bcrypt cost used for `--auth` passwords (htpasswd -B uses 5; 10 is bcrypt's usual default). */
export const FLAG_COST = 10;

/**
 * Turns an `--auth USER:PASSWORD` value into a credential, hashing the
 * password with bcrypt (a fresh salt each time) so the process keeps no
 * plain password. The user ends at the first `:`; the password may contain
 * `:`. Runs once at start (it takes as long as one bcrypt verification).
 *
 * @param value `USER:PASSWORD`
 * @param cost bcrypt cost (4-31)
 * @returns the credential
 * @throws {RangeError} with a message naming the problem (never the password)
 * @example
 * ```ts
 * import { credentialFromFlag } from "./htpasswd.ts";
 * import assert from "node:assert/strict";
 *
 * const c = credentialFromFlag("alice:s3cret:x", 4);
 * assert.equal(c.user, "alice");
 * assert.match(c.hash, /^\$2b\$04\$/);
 * assert.throws(() => credentialFromFlag("alice"), /--auth must be USER:PASSWORD/);
 * ```
 */
export function credentialFromFlag(value: string, cost: number = FLAG_COST): Credential {
  const colon = value.indexOf(":");
  if (colon < 0) throw new RangeError("--auth must be USER:PASSWORD, got no ':'");
  const user = value.slice(0, colon);
  const password = value.slice(colon + 1);
  const bad = userProblem(user);
  if (bad !== undefined) throw new RangeError(`--auth: ${bad}`);
  if (password === "") throw new RangeError(`--auth: empty password for ${JSON.stringify(user)}`);
  if (encoder.encode(password).length > 72) {
    // bcrypt reads only the first 72 bytes: a longer password would accept its prefix.
    throw new RangeError(`--auth: password for ${JSON.stringify(user)} longer than 72 bytes`);
  }
  if (!Number.isInteger(cost) || cost < 4 || cost > 31) {
    throw new RangeError(`bcrypt cost must be 4-31, got ${cost}`);
  }
  return { user, scheme: "bcrypt", hash: bcrypt.hashSync(password, bcrypt.genSaltSync(cost)) };
}
