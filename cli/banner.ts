/**
 * The start-up lines: what is served and every URL it answers on, the way
 * `vite` and `@std/http/file-server` print them, plus a notice when the
 * server listens on every interface (the folder is then on the network).
 *
 * @module
 */

/** `[host]` for IPv6 so the URL parses. */
export function urlHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

/** What the start-up lines describe. */
export interface Listening {
  /** `http` or `https`. */
  scheme: string;
  /** The bound address. */
  hostname: string;
  /** The bound port. */
  port: number;
  /** HTTP worker threads. */
  workers: number;
  /** Accept mode. */
  mode: string;
  /** The absolute root served. */
  root: string;
}

/**
 * This machine's non-loopback addresses a wildcard bind answers on, or
 * undefined when `--allow-sys=networkInterfaces` is missing.
 */
function interfaceAddresses(ipv6: boolean): string[] | undefined {
  if (Deno.permissions.querySync({ name: "sys", kind: "networkInterfaces" }).state !== "granted") {
    return undefined;
  }
  const out = new Set<string>();
  for (const nic of Deno.networkInterfaces()) {
    if (nic.family === "IPv4" && !nic.address.startsWith("127.")) out.add(nic.address);
    // Link-local IPv6 needs a zone id a browser will not take: left out.
    if (ipv6 && nic.family === "IPv6" && nic.address !== "::1" && !/^fe80:/i.test(nic.address)) {
      out.add(nic.address);
    }
  }
  return [...out];
}

/**
 * The lines printed to stdout once the server listens. The first is
 * `Listening on URL (N workers, MODE mode)`; scripts parse it.
 *
 * @param l what is listening
 * @returns the lines
 *
 * @example
 * ```ts
 * import { startupLines } from "./banner.ts";
 * const lines = startupLines({
 *   scheme: "http", hostname: "127.0.0.1", port: 8000, workers: 2, mode: "ring", root: "/srv",
 * });
 * console.assert(lines[0] === "Listening on http://127.0.0.1:8000/ (2 workers, ring mode)");
 * ```
 */
export function startupLines(l: Listening): string[] {
  const url = (host: string) => `${l.scheme}://${urlHost(host)}:${l.port}/`;
  const lines = [
    `Listening on ${url(l.hostname)} (${l.workers} ${
      l.workers === 1 ? "worker" : "workers"
    }, ${l.mode} mode)`,
    `  Serving ${l.root}`,
  ];
  const wildcard = l.hostname === "0.0.0.0" || l.hostname === "::";
  if (!wildcard) return lines;
  lines.push(`  Local:   ${url("localhost")}`);
  const addresses = interfaceAddresses(l.hostname === "::");
  if (addresses === undefined) {
    lines.push("  Network: (run with --allow-sys=networkInterfaces to list the addresses)");
  } else {
    for (const a of addresses) lines.push(`  Network: ${url(a)}`);
  }
  lines.push(
    `  Notice: listening on every interface (${l.hostname}): anyone who can reach this ` +
      `machine can read ${l.root}; --host 127.0.0.1 keeps it to this machine`,
  );
  return lines;
}
