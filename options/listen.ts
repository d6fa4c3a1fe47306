/**
 * Listen addresses: what `--listen ADDR` (repeatable) and the `listen`
 * option accept, parsed once for every entry point.
 *
 * ```text
 * HOST:PORT          127.0.0.1:8080, 0.0.0.0:80, localhost:8000
 * [IPv6]:PORT        [::1]:8080, [::]:8080 (also takes IPv4, like --host ::)
 * unix:/path         a Unix domain socket (absolute path, at most 107 bytes)
 * ```
 *
 * Pure: no I/O. Binding is `workers/_listeners.ts`'s job.
 *
 * @module
 */

/** A TCP listen address. */
export interface TcpAddress {
  /** Discriminant. */
  kind: "tcp";
  /** An IP literal without brackets, or `localhost`. */
  hostname: string;
  /** 0 picks a free port. */
  port: number;
}

/** A Unix domain socket listen address. */
export interface UnixAddress {
  /** Discriminant. */
  kind: "unix";
  /** Absolute path of the socket file. */
  path: string;
}

/** One listen address. */
export type ListenAddress = TcpAddress | UnixAddress;

/** `sun_path` holds 108 bytes, the terminating NUL included. */
export const UNIX_PATH_MAX = 107;

/**
 * Parses one listen address.
 *
 * @param text e.g. `127.0.0.1:8080`, `[::1]:8080`, `unix:/run/site.sock`
 * @returns the address, or a phrase saying what is wrong (completes
 *   "--listen ...": `needs a port`)
 *
 * @example
 * ```ts
 * import { parseListen } from "./listen.ts";
 * const a = parseListen("[::1]:8080");
 * console.assert(typeof a !== "string" && a.kind === "tcp" && a.hostname === "::1");
 * console.assert(typeof parseListen("8080") === "string");
 * ```
 */
export function parseListen(text: string): ListenAddress | string {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (!path.startsWith("/")) return "unix: needs an absolute path (unix:/run/site.sock)";
    if (new TextEncoder().encode(path).length > UNIX_PATH_MAX) {
      return `unix: path is longer than ${UNIX_PATH_MAX} bytes`;
    }
    if (path.includes("\0")) return "unix: path must not contain NUL";
    if (path.endsWith("/")) return "unix: path names a directory";
    return { kind: "unix", path };
  }
  let host: string;
  let port: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return "needs [IPv6]:PORT, e.g. [::1]:8080";
    host = text.slice(1, close);
    port = text.slice(close + 2);
    if (!host.includes(":")) return "brackets are for IPv6 addresses only";
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return "needs HOST:PORT, [IPv6]:PORT or unix:/path";
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
    if (host.includes(":")) return "an IPv6 address needs brackets: [::1]:8080";
  }
  if (host === "") return "needs a host before the port (0.0.0.0:PORT for every interface)";
  if (!isIpLiteral(host)) return "host must be an IP address or localhost";
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return "port must be 0-65535";
  return { kind: "tcp", hostname: host, port: Number(port) };
}

/** `localhost`, a dotted-quad IPv4 address, or an IPv6 address (no zone id). */
function isIpLiteral(host: string): boolean {
  if (host === "localhost") return true;
  if (host.includes(":")) {
    if (!/^[0-9A-Fa-f:.]+$/.test(host)) return false;
    try {
      new URL(`http://[${host}]/`);
      return true;
    } catch {
      return false;
    }
  }
  const parts = host.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/**
 * How an address is written back (the form `--listen` takes).
 *
 * @param a the address
 * @returns e.g. `[::1]:8080`, `unix:/run/site.sock`
 */
export function formatListen(a: ListenAddress): string {
  if (a.kind === "unix") return `unix:${a.path}`;
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}
