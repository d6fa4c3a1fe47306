/**
 * ringhttpd: a multi-core static file server with directory listing.
 *
 * @module
 */
export type { BodyPart, FileSlice, Handler, Reply, RequestHead } from "./http/types.ts";
export { getHeader } from "./http/types.ts";
