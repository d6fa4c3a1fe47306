/**
 * Authentication for ringhttpd: htpasswd files and `--auth` users, bearer
 * token files, the verify Worker and its cache, failed attempts counted
 * across threads, and the route rule that puts them in front of the files.
 *
 * @example Protect everything but /pub/ with one user
 * ```ts
 * import { allocateAttempts, Attempts, authRule, credentialFromFlag, Verifier } from "./mod.ts";
 *
 * const users = new Map([["alice", credentialFromFlag("alice:s3cret", 4)]]);
 * using verifier = new Verifier({ users });
 * const attempts = new Attempts(allocateAttempts({ threshold: 10 }));
 * const rule = authRule({ verifier, attempts, realm: "files", public: ["/pub/**"] });
 * console.assert(typeof rule === "function");
 * ```
 *
 * @module
 */
export {
  AuthFileError,
  type Credential,
  credentialFromFlag,
  type FileProblem,
  parseHtpasswd,
  readHtpasswd,
} from "./htpasswd.ts";
export { hashToken, parseTokens, readTokens, TokenSet } from "./tokens.ts";
export {
  type Authorization,
  CredentialCache,
  type Outcome,
  parseAuthorization,
  Verifier,
  type VerifierOptions,
} from "./verify.ts";
export { addressKey, allocateAttempts, Attempts, type AttemptsOptions } from "./attempts.ts";
export {
  type AuthenticatedRequest,
  Authenticator,
  type AuthenticatorOptions,
  authRule,
  type AuthRuleOptions,
  publicMatcher,
  type Rule,
  type RuleContext,
} from "./rule.ts";
export {
  type AuthData,
  type AuthSources,
  loadAuth,
  reloadAuth,
  type ReloadResult,
} from "./config.ts";
