/**
 * Loading the credentials at start and reloading them (SIGHUP): the users
 * of `--auth-file` plus `--auth`, and the tokens of `--token-file`. A reload
 * that fails keeps what was loaded before and says why.
 *
 * @module
 */
import { type Credential, readHtpasswd } from "./htpasswd.ts";
import { readTokens, type TokenSet } from "./tokens.ts";
import type { Verifier } from "./verify.ts";

/** Where the credentials come from. */
export interface AuthSources {
  /** `--auth-file`: an htpasswd file. */
  authFile?: string;
  /** `--token-file`: a token file. */
  tokenFile?: string;
  /** `--auth` values, already hashed (`credentialFromFlag`). */
  flags?: readonly Credential[];
}

/** The loaded credentials. */
export interface AuthData {
  /** Users by name. */
  users: Map<string, Credential>;
  /** Tokens, when a token file is given. */
  tokens?: TokenSet;
}

/**
 * Reads every source.
 *
 * @param src the sources
 * @returns the users and tokens
 * @throws {AuthFileError} a file cannot be read or has refused lines
 * @throws {RangeError} an `--auth` user is also in the file, or given twice
 * @example
 * ```ts
 * import { loadAuth } from "./config.ts";
 * import { credentialFromFlag } from "./htpasswd.ts";
 * import assert from "node:assert/strict";
 *
 * const data = await loadAuth({ flags: [credentialFromFlag("al:pw", 4)] });
 * assert.deepEqual([...data.users.keys()], ["al"]);
 * ```
 */
export async function loadAuth(src: AuthSources): Promise<AuthData> {
  const users = src.authFile !== undefined ? await readHtpasswd(src.authFile) : new Map();
  for (const c of src.flags ?? []) {
    if (users.has(c.user)) {
      const where = src.authFile !== undefined ? `also in ${src.authFile}` : "given twice";
      throw new RangeError(`--auth ${JSON.stringify(c.user)}: the user is ${where}`);
    }
    users.set(c.user, c);
  }
  const tokens = src.tokenFile !== undefined ? await readTokens(src.tokenFile) : undefined;
  return { users, tokens };
}

/** What a reload did. */
export type ReloadResult =
  | { readonly ok: true; readonly users: number; readonly tokens: number }
  | { readonly ok: false; readonly reason: string };

/**
 * Re-reads the sources into `verifier` (its cache is forgotten). On any
 * error the verifier keeps the credentials it had.
 *
 * @param src the sources
 * @param verifier the verifier to update
 * @returns the new counts, or why nothing changed
 * @example
 * ```ts
 * import { reloadAuth } from "./config.ts";
 * import { Verifier } from "./verify.ts";
 * import assert from "node:assert/strict";
 *
 * using v = new Verifier({ users: new Map() });
 * const r = await reloadAuth({ authFile: "/nonexistent/users" }, v);
 * assert.equal(r.ok, false);
 * ```
 */
export async function reloadAuth(src: AuthSources, verifier: Verifier): Promise<ReloadResult> {
  let data: AuthData;
  try {
    data = await loadAuth(src);
  } catch (e) {
    return { ok: false, reason: `${(e as Error).message} (keeping the credentials loaded before)` };
  }
  verifier.update(data.users, data.tokens);
  return { ok: true, users: data.users.size, tokens: data.tokens?.size ?? 0 };
}
