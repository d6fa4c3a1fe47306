/**
 * ringhttpd: a multi-core static file server with directory listing.
 *
 * @module
 */
export type { BodyPart, FileSlice, Handler, Reply, RequestHead } from "./http/types.ts";
export { getHeader } from "./http/types.ts";
export { MpmcRing, type MpmcRingOptions, SpscRing, type SpscRingOptions } from "./queue/mod.ts";
export type { WaitResult } from "./queue/mod.ts";
