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
