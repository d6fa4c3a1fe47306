/**
 * ringhttpd: a multi-core static file server with directory listing.
 *
 * @module
 */
export type { BodyPart, FileSlice, Handler, Reply, RequestHead } from "./http/types.ts";
export { getHeader } from "./http/types.ts";

if (import.meta.main) Deno.exit(await (await import("./cli.ts")).main(Deno.args));
