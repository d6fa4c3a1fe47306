/// <reference lib="deno.worker" />
/**
 * The password-verify thread: bcrypt and apr1 cost milliseconds each, so
 * they run here, never on an HTTP worker's event loop. Protocol (postMessage):
 * in `{ id, scheme, hash, password }`, out `{ id, ok }`; a job that throws
 * answers `ok: false` (a malformed hash never matches).
 *
 * @module
 */
import bcrypt from "bcryptjs";
import apacheMd5 from "apache-md5";
import { timingSafeEqual } from "node:crypto";

/** A verification job. */
export interface VerifyJob {
  id: number;
  scheme: "bcrypt" | "apr1";
  hash: string;
  password: string;
}

const encoder = new TextEncoder();
// The package is CommonJS (`module.exports = fn`) while its .d.ts declares
// `export default`: Deno's checker then types the default import as the module.
const apr1 = apacheMd5 as unknown as (password: string, salt: string) => string;

/**
 * The UTF-8 bytes of `s` as a string of one char per byte: apache-md5 hashes
 * its input with Node's "ascii" encoding (the low byte of each char), so it
 * sees the bytes htpasswd hashed (a UTF-8 password) only in this form.
 */
function binary(s: string): string {
  let out = "";
  for (const b of encoder.encode(s)) out += String.fromCharCode(b);
  return out;
}

/** Whether `password` matches `hash` (constant time in the compared bytes). */
export function check(job: VerifyJob): boolean {
  if (job.scheme === "bcrypt") return bcrypt.compareSync(job.password, job.hash);
  const got = encoder.encode(apr1(binary(job.password), job.hash));
  const want = encoder.encode(job.hash);
  // Same length for the same salt; the length is not secret.
  return got.length === want.length && timingSafeEqual(got, want);
}

if (typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope) {
  self.onmessage = (e: MessageEvent<VerifyJob>) => {
    const job = e.data;
    let ok = false;
    try {
      ok = check(job);
    } catch {
      ok = false;
    }
    self.postMessage({ id: job.id, ok });
  };
}
