/**
 * The listening sockets of ring mode, opened on the main thread before the
 * acceptor starts (raw fds are process-wide: the acceptor polls them, and a
 * restarted acceptor takes them over): TCP (`HOST:PORT`, `[IPv6]:PORT`),
 * Unix stream sockets (`unix:/path`), and sockets inherited through systemd
 * socket activation (`LISTEN_FDS`).
 *
 * Unix sockets:
 * - the file gets `mode` (default 0660: the owner and the group may connect),
 *   set between `bind` and `listen`, so nobody connects through a wider mode;
 * - a socket file already there is probed with `connect`: nobody listening
 *   (ECONNREFUSED, a leftover of a killed server) -> it is replaced; a live
 *   server -> refused with a clear message; anything that is not a socket
 *   (a regular file, a directory, a symlink) is never unlinked: refused;
 * - at exit the file is unlinked, but only if it is still the one we made
 *   (same inode): a newer server that replaced it keeps its socket.
 * Inherited sockets are never unlinked (systemd owns them).
 *
 * @module
 */
import { formatListen, type ListenAddress } from "../options/listen.ts";
import {
  adoptListener,
  close,
  E,
  LibcError,
  listenTcp,
  listenUnix,
  unixSocketLive,
  unlinkPath,
} from "./_libc.ts";

/** One listening socket. */
export interface BoundListener {
  fd: number;
  /** Its address (the real port when 0 was asked for). */
  address: ListenAddress;
  /** A Unix socket we created: its inode, to unlink only our own file at exit. */
  ino?: number;
  /** Inherited (socket activation): its `LISTEN_FDNAMES` name. */
  name?: string;
}

/** A listener could not be opened: the message names the address and why. */
export class ListenError extends Error {
  /** @param message `cannot listen on ADDR: WHY` */
  constructor(message: string) {
    super(message);
    this.name = "ListenError";
  }
}

function tcpProblem(e: unknown, port: number): string {
  if (!(e instanceof LibcError)) return e instanceof Error ? e.message : String(e);
  if (e.code === E.ADDRINUSE) return "the port is already in use";
  if (e.code === E.ACCES) {
    return port > 0 && port < 1024
      ? "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
      : "permission denied";
  }
  if (e.code === E.ADDRNOTAVAIL) return "not an address of this machine";
  return e.message;
}

function unixProblem(e: unknown, path: string): string {
  if (!(e instanceof LibcError)) return e instanceof Error ? e.message : String(e);
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  if (e.code === 2 || e.code === 20) return `directory ${JSON.stringify(dir)} does not exist`;
  if (e.code === E.ACCES) return `permission denied in ${JSON.stringify(dir)}`;
  if (e.code === E.ADDRINUSE) return "a file appeared there meanwhile";
  return e.message;
}

/**
 * Makes room for a Unix socket at `path`: nothing there, or a leftover
 * socket nobody listens on (unlinked; `log` says so).
 *
 * @throws {ListenError} when a live server or a non-socket file is there
 */
function clearUnixPath(path: string, log: (line: string) => void): void {
  let info: Deno.FileInfo;
  const where = `cannot listen on unix:${path}`;
  try {
    info = Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    if (e instanceof Deno.errors.NotADirectory) {
      throw new ListenError(`${where}: a parent of it is not a directory`);
    }
    throw new ListenError(`${where}: ${(e as Error).message}`);
  }
  if (!info.isSocket) {
    const what = info.isFile
      ? "a regular file"
      : info.isDirectory
      ? "a directory"
      : info.isSymlink
      ? "a symlink"
      : "a file that is not a socket";
    throw new ListenError(`${where}: ${what} is there (not replacing it)`);
  }
  if (unixSocketLive(path)) {
    throw new ListenError(`${where}: another server is listening on it`);
  }
  const code = unlinkPath(path);
  if (code !== 0 && code !== 2) {
    throw new ListenError(`${where}: cannot remove the stale socket: errno ${code}`);
  }
  log(`notice: replaced the stale socket unix:${path} (nobody was listening on it)`);
}

/**
 * Opens every address, in order; on a failure closes (and unlinks) what was
 * opened so far.
 *
 * @param addresses what to listen on
 * @param backlog the `listen` backlog
 * @param unixMode permission bits of Unix socket files
 * @param log notices (a stale socket replaced)
 * @returns the listeners, in the order given
 * @throws {ListenError} naming the address
 */
export function openListeners(
  addresses: readonly ListenAddress[],
  backlog: number,
  unixMode: number,
  log: (line: string) => void,
): BoundListener[] {
  const out: BoundListener[] = [];
  try {
    for (const a of addresses) {
      if (a.kind === "tcp") {
        try {
          const { fd, port } = listenTcp(a.hostname, a.port, backlog);
          out.push({ fd, address: { ...a, port } });
        } catch (e) {
          throw new ListenError(`cannot listen on ${formatListen(a)}: ${tcpProblem(e, a.port)}`);
        }
        continue;
      }
      if (out.some((l) => l.address.kind === "unix" && l.address.path === a.path)) {
        throw new ListenError(`cannot listen on unix:${a.path}: given twice`);
      }
      clearUnixPath(a.path, log);
      let fd: number;
      try {
        fd = listenUnix(a.path, backlog, unixMode);
      } catch (e) {
        throw new ListenError(`cannot listen on unix:${a.path}: ${unixProblem(e, a.path)}`);
      }
      out.push({ fd, address: a, ino: Deno.lstatSync(a.path).ino ?? undefined });
    }
  } catch (e) {
    closeListeners(out);
    throw e;
  }
  return out;
}

/** The first inherited fd (`SD_LISTEN_FDS_START`). */
export const LISTEN_FDS_START = 3;

/**
 * The sockets systemd (or `systemd-socket-activate`) passed: fds 3, 4, ...
 * `count` of them, checked to be listening stream sockets and made
 * non-blocking.
 *
 * @param count `LISTEN_FDS`
 * @param names `LISTEN_FDNAMES`, colon-separated (optional)
 * @returns the listeners
 * @throws {ListenError} naming the fd when one is not a listening socket
 */
export function adoptInherited(count: number, names?: string): BoundListener[] {
  const labels = names?.split(":") ?? [];
  const out: BoundListener[] = [];
  for (let k = 0; k < count; k++) {
    const fd = LISTEN_FDS_START + k;
    let info;
    try {
      info = adoptListener(fd);
    } catch (e) {
      throw new ListenError(`socket activation: ${(e as Error).message}`);
    }
    const address: ListenAddress = info.family === "unix"
      ? { kind: "unix", path: info.path }
      : { kind: "tcp", hostname: info.hostname, port: info.port };
    out.push({ fd, address, name: labels[k] || undefined });
  }
  return out;
}

/**
 * Unlinks the Unix socket files we created (only while they are still ours);
 * closes the fds too when `closeFds` (the acceptor closes them itself on a
 * normal stop).
 *
 * @param listeners what {@linkcode openListeners} returned
 * @param closeFds close the fds as well
 */
export function closeListeners(listeners: readonly BoundListener[], closeFds = true): void {
  for (const l of listeners) {
    if (closeFds) close(l.fd);
    if (l.address.kind !== "unix" || l.ino === undefined) continue;
    try {
      if (Deno.lstatSync(l.address.path).ino === l.ino) unlinkPath(l.address.path);
      l.ino = undefined;
    } catch {
      // Gone already: nothing to remove.
    }
  }
}
