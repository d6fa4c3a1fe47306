/**
 * Integrity fields of an upload (RFC 9530): `Content-Digest` (of the content
 * as sent, after transfer decoding) and `Repr-Digest` (of the representation:
 * the same bytes here, since uploads with a Content-Encoding are refused).
 * Parsed with the `structured-headers` package (RFC 8941 dictionaries);
 * sha-256 and sha-512 are checked, incrementally, as the body streams in;
 * other algorithms are ignored (RFC 9530 sec. 2: a recipient may ignore
 * what it does not support). A digest may also come as a trailer field.
 *
 * A malformed field, or a digest of the wrong length, is 400; so is a
 * mismatch, found before the rename, so nothing on disk changes.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { parseDictionary } from "structured-headers";

/** Algorithms we verify, RFC 9530 names -> node:crypto names and digest lengths. */
const ALGORITHMS: Record<string, { node: string; bytes: number }> = {
  "sha-256": { node: "sha256", bytes: 32 },
  "sha-512": { node: "sha512", bytes: 64 },
};

/** One expected digest. */
export interface ExpectedDigest {
  /** The field it came from. */
  field: "content-digest" | "repr-digest";
  /** The RFC 9530 algorithm name, e.g. `sha-256`. */
  algorithm: string;
  /** The digest bytes. */
  value: Uint8Array;
}

/** A digest field that does not parse; the client gets 400. */
export class DigestError extends Error {
  override name = "DigestError";
}

/**
 * The digests a field value asks us to check.
 *
 * @param field which field
 * @param value its value (all lines combined)
 * @returns the expected digests we can check (maybe none)
 * @throws {DigestError} malformed value, or a known algorithm with a value
 *   that is not a byte sequence of the right length
 * @example
 * ```ts
 * import { parseDigestField } from "./digest.ts";
 * const d = parseDigestField("content-digest", "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
 * console.assert(d.length === 1 && d[0].value.length === 32);
 * ```
 */
export function parseDigestField(
  field: "content-digest" | "repr-digest",
  value: string,
): ExpectedDigest[] {
  let dict;
  try {
    dict = parseDictionary(value);
  } catch (e) {
    throw new DigestError(`${field} is not a structured dictionary: ${(e as Error).message}`);
  }
  const out: ExpectedDigest[] = [];
  for (const [name, member] of dict) {
    const alg = ALGORITHMS[name];
    if (alg === undefined) continue;
    const v = member[0];
    if (!(v instanceof ArrayBuffer) || v.byteLength !== alg.bytes) {
      throw new DigestError(`${field} ${name} must be a ${alg.bytes}-byte sequence`);
    }
    out.push({ field, algorithm: name, value: new Uint8Array(v) });
  }
  return out;
}

/**
 * The digests in a flat field list (request headers, or trailers).
 *
 * @param fields `[name, value, ...]`, names lower-cased
 * @returns the expected digests
 * @throws {DigestError} for a malformed field
 */
export function digestsOf(fields: readonly string[]): ExpectedDigest[] {
  const out: ExpectedDigest[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const n = fields[i];
    if (n === "content-digest" || n === "repr-digest") {
      for (const d of parseDigestField(n, fields[i + 1])) out.push(d);
    }
  }
  return out;
}

/**
 * Hashes a body as it streams, then compares with what was announced.
 * Hashes only what some expected digest needs; with nothing announced in the
 * head it still hashes sha-256 when `maybeTrailers` (a chunked body may
 * announce its digest in a trailer).
 *
 * @example
 * ```ts
 * import { DigestCheck, parseDigestField } from "./digest.ts";
 * const check = new DigestCheck(
 *   parseDigestField("repr-digest", "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:"),
 * );
 * check.update(new TextEncoder().encode("hello"));
 * console.assert(check.verify([]) === null);
 * ```
 */
export class DigestCheck {
  #expected: ExpectedDigest[];
  readonly #hashes = new Map<string, Hash>();

  /**
   * @param expected the digests from the head
   * @param maybeTrailers also prepare for a sha-256 in a trailer
   */
  constructor(expected: ExpectedDigest[], maybeTrailers = false) {
    this.#expected = expected;
    for (const e of expected) this.#hash(e.algorithm);
    if (maybeTrailers) this.#hash("sha-256");
  }

  #hash(alg: string): void {
    if (!this.#hashes.has(alg)) this.#hashes.set(alg, createHash(ALGORITHMS[alg].node));
  }

  /** Whether any hashing happens (nothing announced, no trailers: free). */
  get active(): boolean {
    return this.#hashes.size > 0;
  }

  /**
   * Adds body bytes.
   *
   * @param data the next bytes
   */
  update(data: Uint8Array): void {
    for (const h of this.#hashes.values()) h.update(data);
  }

  /**
   * Compares, once the body is complete.
   *
   * @param trailers the body's trailer fields (flat)
   * @returns null when every checkable digest matches, else why not
   * @throws {DigestError} for a malformed digest trailer
   */
  verify(trailers: readonly string[]): string | null {
    const late = digestsOf(trailers);
    const all = [...this.#expected, ...late];
    const results = new Map<string, Uint8Array>();
    for (const [alg, h] of this.#hashes) results.set(alg, new Uint8Array(h.digest()));
    for (const e of all) {
      const got = results.get(e.algorithm);
      // A trailer with an algorithm we did not hash: nothing to compare.
      if (got === undefined) continue;
      if (got.length !== e.value.length || got.some((b, i) => b !== e.value[i])) {
        return `${e.field} ${e.algorithm} does not match the body`;
      }
    }
    return null;
  }
}
