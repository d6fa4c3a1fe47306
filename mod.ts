/**
 * ringhttpd: a multi-core static file server with directory listing.
 *
 * The public API, from the top down:
 *
 * - {@linkcode serve} starts a cluster of workers serving a directory and
 *   returns a {@linkcode Cluster} to watch and stop it.
 * - {@linkcode createHandler} is the single-thread request -> reply rule set
 *   (files, listings, ranges, conditional requests), with the contract types
 *   {@linkcode RequestHead}, {@linkcode Reply} and {@linkcode Handler}.
 * - {@linkcode HttpConnection}, {@linkcode ConnectionSet} and
 *   {@linkcode serveDenoConn} run HTTP/1.1 on sockets you accept yourself.
 * - {@linkcode SpscRing}, {@linkcode MpmcRing} and {@linkcode ByteRing} are
 *   the lock-free `SharedArrayBuffer` rings the cluster is built on.
 *
 * Every other helper (path resolution, Range parsing, listing render, ...)
 * stays importable from its own module under `http/` and `queue/`.
 *
 * Run as a program (`deno task serve [dir]`) it is the command-line server.
 *
 * @example Serve a directory on a free port and fetch a file
 * ```ts
 * import { serve } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const root = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${root}/hello.txt`, "hi");
 * {
 *   await using cluster = await serve({ root, hostname: "127.0.0.1", port: 0, workers: 1 });
 *   const res = await fetch(`http://127.0.0.1:${cluster.addr.port}/hello.txt`);
 *   assert.equal(await res.text(), "hi");
 * } // shut down here
 * await Deno.remove(root, { recursive: true });
 * ```
 *
 * @module
 */
export { serve, type ServeOptions } from "./serve.ts";
// access (#13): authentication and path rules.
export type { AuthOptions, PathRuleSpec } from "./options/types.ts";
export type { PathRulesConfig } from "./http/path_rules.ts";
export type { Credentials } from "./http/_access_stage.ts";
export type { ReloadResult } from "./auth/config.ts";
export type { Peer } from "./http/types.ts";
export type { Cluster, ClusterStats, PoolSample, PoolStats, WorkerStats } from "./serve.ts";
export type { ListenAddress, TcpAddress, UnixAddress } from "./options/listen.ts";
export {
  createHandler,
  type FileHandler,
  type HandlerOptions,
  type JobAnswer,
  type SubmitJob,
} from "./http/handler.ts";
export type {
  CompressArgs,
  CompressHead,
  CrcArgs,
  CrcHead,
  JobKind,
  JobTypes,
  ListingArgs,
  ListingHead,
} from "./http/job_protocol.ts";
export type { Coding, FileVersion } from "./http/_compress.ts";
export type { Page } from "./http/_listing_page.ts";
export type { CacheControlKinds, SiteOptions } from "./http/_site_rules.ts";
export type { Redirect } from "./options/redirects.ts";
export type { RateLimit } from "./options/rate_limit.ts";
export { corsPreflight, type Rule, type RuleContext } from "./http/rules.ts";
export type { BodyPart, FileSlice, Handler, Reply, RequestHead } from "./http/types.ts";
export { getHeader } from "./http/types.ts";
export { ConnectionSet, HttpConnection, serveDenoConn } from "./http/engine.ts";
export type { ConnectionHooks, EngineOptions, Transport } from "./http/engine.ts";
// write (#14): what HandlerOptions.write and FileHandler.bodies are made of.
export type { WriteGrant, WriteOp, WriteOptions, WriteRequest } from "./write/stage.ts";
export type { BodyAcceptance, RequestBody } from "./write/body.ts";
export type { IndexBuffers } from "./http/_name_index.ts";
export {
  ByteRing,
  MpmcRing,
  type MpmcRingOptions,
  SpscRing,
  type SpscRingOptions,
  type WaitResult,
} from "./queue/mod.ts";

if (import.meta.main) Deno.exit(await (await import("./cli.ts")).main(Deno.args));
