/**
 * ringhttpd: a multi-core static file server with directory listing.
 *
 * @example Serve the current directory on a free port
 * ```ts ignore
 * import { serve } from "./mod.ts";
 *
 * const cluster = await serve({ root: ".", hostname: "127.0.0.1", port: 0 });
 * console.log(`Listening on http://127.0.0.1:${cluster.addr.port}/`);
 * await cluster.shutdown();
 * ```
 *
 * @module
 */
export type { BodyPart, FileSlice, Handler, Reply, RequestHead } from "./http/types.ts";
export { getHeader } from "./http/types.ts";
export { serve, type ServeOptions } from "./serve.ts";
export type { Cluster, ClusterStats, WorkerStats } from "./serve.ts";
export { COLLECT_MAX, createHandler, errorStatus, RAW_MAX_BYTES } from "./http/handler.ts";
export type { HandlerOptions } from "./http/handler.ts";
export {
  archiveSize,
  contentDisposition,
  tarHeaderBytes,
  tarStream,
  walkTree,
} from "./http/archive.ts";
export type { ArchiveItem, ArchivePolicy } from "./http/archive.ts";
export {
  decodePath,
  decodeRawPath,
  hasDotComponent,
  INVALID_UTF8,
  isInside,
  servable,
} from "./http/resolve.ts";
export type { DecodedPath, RawPath, RejectedPath, ServePolicy } from "./http/resolve.ts";
export {
  etagMatches,
  evaluatePreconditions,
  httpDate,
  makeETag,
  parseHttpDate,
} from "./http/conditional.ts";
export type { Preconditions } from "./http/conditional.ts";
export { ifRangeHolds, MAX_RANGES, multipartLayout, parseRange } from "./http/range.ts";
export type { ByteRange, MultipartPiece, RangeResult } from "./http/range.ts";
export { contentType, DEFAULT_TYPE } from "./http/mime.ts";
export { acceptsCoding } from "./http/encoding.ts";
export {
  collectEntries,
  entryHref,
  escapeHtml,
  humanSize,
  isoLike,
  listingETag,
  parseListingQuery,
  renderHtml,
  renderJson,
  rfc3339,
  sortEntries,
} from "./http/listing.ts";
export type { Entry, ListingQuery, RenderContext, SortKey, SortOrder } from "./http/listing.ts";
export { MpmcRing, type MpmcRingOptions, SpscRing, type SpscRingOptions } from "./queue/mod.ts";
export type { WaitResult } from "./queue/mod.ts";
export { parseRequest, RequestParser } from "./http/parser.ts";
export {
  ConnectionSet,
  errorResponse,
  HttpConnection,
  reasonPhrase,
  serveDenoConn,
} from "./http/engine.ts";
export type { ConnectionHooks, EngineOptions, Transport } from "./http/engine.ts";
export {
  MAX_CONTENT_LENGTH_DIGITS,
  MAX_DISCARD_BODY,
  MAX_HEADER_BLOCK,
  MAX_HEADERS,
  MAX_METHOD,
  MAX_REQUEST_LINE,
} from "./http/limits.ts";

if (import.meta.main) Deno.exit(await (await import("./cli.ts")).main(Deno.args));
