/**
 * Checking an `Authorization` header: the parser (Basic with UTF-8 user
 * names, Bearer; bounded; anything odd is malformed, never an exception),
 * the verified-credentials cache (bounded size, TTL: a kept-alive client
 * pays bcrypt once), and the {@linkcode Verifier} that runs bcrypt/apr1 in
 * a dedicated Worker (`auth/_verify_worker.ts`) so the calling thread's
 * event loop never does.
 *
 * Constant time: passwords are checked by bcrypt / apr1 + `timingSafeEqual`
 * in the Worker, tokens by their SHA-256 against every configured digest
 * with `timingSafeEqual`. An unknown user is verified against a configured
 * hash anyway (result ignored), so the answer time does not say whether the
 * user exists. The cache is a `Map` keyed by the exact header value: a hit
 * compares nothing secret byte by byte against attacker input except inside
 * the Map's hash-bucket equality, which needs a full hash collision with an
 * entry the attacker does not know.
 *
 * @module
 */
import type { Credential } from "./htpasswd.ts";
import { MAX_USER_BYTES } from "./htpasswd.ts";
import { B64TOKEN, MAX_TOKEN, type TokenSet } from "./tokens.ts";
import type { VerifyJob } from "./_verify_worker.ts";

/** Longest `Authorization` value looked at, characters (longer: malformed). */
export const MAX_HEADER = 4096;
/** Longest password accepted, UTF-8 bytes (bcrypt reads 72; apr1 all). */
export const MAX_PASSWORD_BYTES = 1024;

/** A parsed `Authorization` value. */
export type Authorization =
  | { readonly kind: "basic"; readonly user: string; readonly password: string }
  | { readonly kind: "bearer"; readonly token: string }
  | { readonly kind: "malformed"; readonly reason: string };

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses an `Authorization` header value (RFC 9110 11.6.2; Basic: RFC 7617
 * with `charset="UTF-8"`; Bearer: RFC 6750). The value is the header as
 * the request parser gives it (latin1: one character per byte). Never throws.
 *
 * @param value the header value
 * @returns the credentials, or `malformed` with why (for tests and debugging;
 *   never logged with the value)
 * @example
 * ```ts
 * import { parseAuthorization } from "./verify.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseAuthorization("Basic YWxpY2U6czNjcjN0"), {
 *   kind: "basic", user: "alice", password: "s3cr3t",
 * });
 * assert.deepEqual(parseAuthorization("Bearer abc.def"), { kind: "bearer", token: "abc.def" });
 * assert.equal(parseAuthorization("Basic !!!").kind, "malformed");
 * ```
 */
export function parseAuthorization(value: string): Authorization {
  if (value.length > MAX_HEADER) return malformed(`longer than ${MAX_HEADER} characters`);
  const sp = value.indexOf(" ");
  if (sp <= 0) return malformed("expected SCHEME credentials");
  const scheme = value.slice(0, sp).toLowerCase();
  let i = sp;
  while (value.charCodeAt(i) === 0x20) i++;
  const rest = value.slice(i);
  if (scheme === "bearer") {
    if (rest.length > MAX_TOKEN || !B64TOKEN.test(rest)) return malformed("bad bearer token");
    return { kind: "bearer", token: rest };
  }
  if (scheme !== "basic") return malformed("unsupported scheme");
  if (!BASE64.test(rest)) return malformed("credentials are not base64");
  let bin: string;
  try {
    bin = atob(rest);
  } catch {
    return malformed("credentials are not base64");
  }
  const bytes = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
  const colon = bytes.indexOf(0x3a);
  if (colon < 0) return malformed("no ':' in the credentials");
  if (colon === 0) return malformed("empty user name");
  if (colon > MAX_USER_BYTES) return malformed(`user longer than ${MAX_USER_BYTES} bytes`);
  if (bytes.length - colon - 1 > MAX_PASSWORD_BYTES) {
    return malformed(`password longer than ${MAX_PASSWORD_BYTES} bytes`);
  }
  let user: string, password: string;
  try {
    user = utf8.decode(bytes.subarray(0, colon));
    password = utf8.decode(bytes.subarray(colon + 1));
  } catch {
    return malformed("credentials are not UTF-8");
  }
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(user)) return malformed("control character in the user name");
  return { kind: "basic", user, password };
}

function malformed(reason: string): Authorization {
  return { kind: "malformed", reason };
}

/**
 * Verified `Authorization` values -> the user or token name, with a TTL and
 * a size bound. When full, the oldest entry goes (insertion order: a hit does
 * not reorder, so it costs one `Map.get` and one clock read).
 */
export class CredentialCache {
  readonly #map = new Map<string, { name: string; expires: number }>();
  readonly #max: number;
  readonly #ttl: number;
  readonly #now: () => number;

  /**
   * @param max most entries kept (>= 1)
   * @param ttlMs how long an entry is trusted, ms
   * @param now the clock, ms
   */
  constructor(max: number, ttlMs: number, now: () => number = Date.now) {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`cache size must be >= 1, got ${max}`);
    }
    if (!(ttlMs > 0)) throw new RangeError(`cache TTL must be > 0 ms, got ${ttlMs}`);
    this.#max = max;
    this.#ttl = ttlMs;
    this.#now = now;
  }

  /** Entries held (expired ones included until looked up or evicted). */
  get size(): number {
    return this.#map.size;
  }

  /**
   * @param key the header value
   * @returns the name, or undefined when absent or expired
   */
  get(key: string): string | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (this.#now() >= e.expires) {
      this.#map.delete(key);
      return undefined;
    }
    return e.name;
  }

  /**
   * @param key the header value
   * @param name who it authenticates
   */
  set(key: string, name: string): void {
    this.#map.delete(key);
    if (this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(key, { name, expires: this.#now() + this.#ttl });
  }

  /** Forgets everything (the credentials changed). */
  clear(): void {
    this.#map.clear();
  }
}

/** What a verification found. */
export type Outcome =
  | { readonly ok: true; readonly name: string; readonly kind: "basic" | "bearer" }
  | {
    readonly ok: false;
    /** `busy`: too many verifications queued (not the client's fault: not counted). */
    readonly reason: "malformed" | "unknown" | "wrong" | "busy";
  };

/** {@linkcode Verifier} settings. */
export interface VerifierOptions {
  /** Users and their hashes (htpasswd and `--auth`). */
  users: ReadonlyMap<string, Credential>;
  /** Bearer tokens; undefined: Bearer is refused. */
  tokens?: TokenSet;
  /**
   * Verified values remembered.
   * @default 1024
   */
  cacheSize?: number;
  /**
   * How long a verified value is trusted, ms.
   * @default 300000
   */
  cacheTtlMs?: number;
  /**
   * Verifications waiting for the Worker at most; more answer `busy`.
   * @default 64
   */
  maxPending?: number;
  /** Clock for the cache, ms. @default Date.now */
  now?: () => number;
}

const BUSY: Outcome = { ok: false, reason: "busy" };
const MALFORMED: Outcome = { ok: false, reason: "malformed" };
const UNKNOWN: Outcome = { ok: false, reason: "unknown" };
const WRONG: Outcome = { ok: false, reason: "wrong" };

/**
 * Verifies `Authorization` values: {@linkcode Verifier.cached} answers a
 * value verified before synchronously (the hot path); {@linkcode
 * Verifier.verify} checks one in the verify Worker. {@linkcode
 * Verifier.close} terminates the Worker.
 *
 * @example
 * ```ts
 * import { Verifier } from "./verify.ts";
 * import { credentialFromFlag } from "./htpasswd.ts";
 * import assert from "node:assert/strict";
 *
 * const alice = credentialFromFlag("alice:s3cr3t", 4);
 * using v = new Verifier({ users: new Map([["alice", alice]]) });
 * const header = "Basic " + btoa("alice:s3cr3t");
 * assert.equal(v.cached(header), undefined);
 * assert.deepEqual(await v.verify(header), { ok: true, name: "alice", kind: "basic" });
 * assert.equal(v.cached(header), "alice");
 * ```
 */
export class Verifier {
  #users: ReadonlyMap<string, Credential>;
  #tokens: TokenSet | undefined;
  /** Any configured credential: unknown users are verified against it (time hides existence). */
  #decoy: Credential | undefined;
  readonly #cache: CredentialCache;
  readonly #maxPending: number;
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #jobs = new Map<number, (ok: boolean) => void>();
  /** In-flight verifications by header value: the same value sent at once is verified once. */
  readonly #inflight = new Map<string, Promise<Outcome>>();
  #generation = 0;
  #closed = false;

  /** @param options users, tokens, cache bounds */
  constructor(options: VerifierOptions) {
    this.#users = options.users;
    this.#tokens = options.tokens;
    this.#decoy = options.users.values().next().value;
    this.#cache = new CredentialCache(
      options.cacheSize ?? 1024,
      options.cacheTtlMs ?? 300_000,
      options.now,
    );
    this.#maxPending = options.maxPending ?? 64;
  }

  /** Whether Bearer tokens are configured. */
  get bearer(): boolean {
    return this.#tokens !== undefined;
  }

  /** Whether the verify Worker is running (it starts on the first verification). */
  get workerRunning(): boolean {
    return this.#worker !== undefined;
  }

  /** Values in the verified cache. */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /**
   * The name a previously verified value authenticates; synchronous, no
   * allocation on a hit.
   *
   * @param header the `Authorization` value
   * @returns the user or token name, or undefined (verify it)
   */
  cached(header: string): string | undefined {
    return this.#cache.get(header);
  }

  /**
   * Verifies a value off this thread's event loop and caches a success.
   *
   * @param header the `Authorization` value
   * @returns what was found
   */
  verify(header: string): Promise<Outcome> {
    const hit = this.#cache.get(header);
    if (hit !== undefined) {
      return Promise.resolve({
        ok: true,
        name: hit,
        kind: (header.charCodeAt(1) | 0x20) === 0x65 ? "bearer" : "basic",
      });
    }
    const running = this.#inflight.get(header);
    if (running !== undefined) return running;
    if (this.#jobs.size >= this.#maxPending) return Promise.resolve(BUSY);
    const p = this.#verify(header).finally(() => this.#inflight.delete(header));
    this.#inflight.set(header, p);
    return p;
  }

  async #verify(header: string): Promise<Outcome> {
    const gen = this.#generation;
    const a = parseAuthorization(header);
    let out: Outcome;
    if (a.kind === "malformed") return MALFORMED;
    if (a.kind === "bearer") {
      if (this.#tokens === undefined) return MALFORMED;
      const name = await this.#tokens.verify(a.token);
      out = name === undefined ? WRONG : { ok: true, name, kind: "bearer" };
    } else {
      const c = this.#users.get(a.user);
      const against = c ?? this.#decoy;
      if (against === undefined) return UNKNOWN;
      const ok = await this.#run(against, a.password);
      out = c === undefined ? UNKNOWN : ok ? { ok: true, name: c.user, kind: "basic" } : WRONG;
    }
    // Verified against credentials replaced meanwhile: answer, but do not remember.
    if (out.ok && gen === this.#generation) this.#cache.set(header, out.name);
    return out;
  }

  #run(c: Credential, password: string): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    const w = this.#worker ?? this.#spawn();
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#jobs.set(id, resolve);
      const job: VerifyJob = { id, scheme: c.scheme, hash: c.hash, password };
      w.postMessage(job);
    });
  }

  #spawn(): Worker {
    const w = new Worker(new URL("./_verify_worker.ts", import.meta.url), { type: "module" });
    w.onmessage = (e: MessageEvent<{ id: number; ok: boolean }>) => {
      const done = this.#jobs.get(e.data.id);
      this.#jobs.delete(e.data.id);
      done?.(e.data.ok === true);
    };
    w.onerror = (e) => {
      // A crashed verifier must not take the process down: fail what was
      // queued (as wrong, never as right) and start a fresh one next time.
      e.preventDefault();
      console.error(`ringhttpd: auth verify worker failed: ${e.message}`);
      this.#stopWorker();
    };
    this.#worker = w;
    return w;
  }

  #stopWorker(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    for (const done of this.#jobs.values()) done(false);
    this.#jobs.clear();
  }

  /**
   * Replaces the users and tokens (a reload); forgets every cached value.
   *
   * @param users the new users
   * @param tokens the new tokens (undefined: none)
   */
  update(users: ReadonlyMap<string, Credential>, tokens?: TokenSet): void {
    this.#users = users;
    this.#tokens = tokens;
    this.#decoy = users.values().next().value;
    this.#generation++;
    this.#cache.clear();
  }

  /** Terminates the verify Worker; pending and later verifications answer `wrong`. */
  close(): void {
    this.#closed = true;
    this.#stopWorker();
  }

  /** Same as {@linkcode Verifier.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
