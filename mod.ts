/**
 * ringhttpd: a multi-core static file server with directory listing.
 *
 * @module
 */
export type { BodyPart, FileSlice, Handler, Reply, RequestHead } from "./http/types.ts";
export { getHeader } from "./http/types.ts";
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
