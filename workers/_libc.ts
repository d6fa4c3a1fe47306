/**
 * The socket and epoll calls of the acceptor and the HTTP workers, over the
 * one libc binding (`sys/libc.ts`): a listening TCP socket (IPv4 or IPv6),
 * `accept4`, `poll`, `close`, `getrlimit`, `errno`, epoll, `read`/`send`/
 * `sendfile`. Linux x86_64/aarch64 constants only; callers check
 * `Deno.build.os === "linux"` first.
 *
 * Every call is a synchronous FFI call, so it runs on the calling thread and
 * `errno` (thread-local, read through `__errno_location`) belongs to it.
 *
 * @module
 */
import { errno, libc, strerror } from "../sys/libc.ts";

export { errno };

/** errno values used by the acceptor (Linux). */
export const E = {
  PERM: 1,
  INTR: 4,
  AGAIN: 11,
  NOMEM: 12,
  ACCES: 13,
  NFILE: 23,
  MFILE: 24,
  ADDRINUSE: 98,
  ADDRNOTAVAIL: 99,
  CONNABORTED: 103,
  NOBUFS: 105,
} as const;

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const POLLIN = 1;
const RLIMIT_NOFILE = 7;

/** An error from a libc call, carrying its errno. */
export class LibcError extends Error {
  /**
   * @param call the libc function that failed, e.g. `bind`
   * @param code its errno
   * @param message what it means to the user
   */
  constructor(readonly call: string, readonly code: number, message?: string) {
    super(message ?? `${call}() failed: ${strerror(code)} (errno ${code})`);
    this.name = "LibcError";
  }
}

/** A parsed IP literal. */
export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/**
 * Parses an IPv4 or IPv6 literal (`"localhost"` is `127.0.0.1`).
 *
 * @param host the text, e.g. `0.0.0.0`, `::1`, `[::]`
 * @returns the address, or undefined when `host` is not a literal
 */
export function parseIp(host: string): IpAddress | undefined {
  if (host === "localhost") host = "127.0.0.1";
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  const v4 = parseIpv4(host);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIpv6(host);
  return v6 ? { family: 6, bytes: v6 } : undefined;
}

function parseIpv4(s: string): Uint8Array | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return undefined;
    const n = Number(parts[i]);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(s: string): Uint8Array | undefined {
  if (!s.includes(":")) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = parseIpv4(item);
        if (!v4) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) {
        out.push(parseInt(item, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...new Array(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/**
 * Encodes a `sockaddr_in` / `sockaddr_in6`.
 *
 * @param ip the address
 * @param port the port, host order
 * @returns the bytes to pass to `bind`
 */
export function encodeSockaddr(ip: IpAddress, port: number): Uint8Array {
  const buf = new Uint8Array(ip.family === 4 ? 16 : 28);
  const view = new DataView(buf.buffer);
  view.setUint16(0, ip.family === 4 ? AF_INET : AF_INET6, true);
  view.setUint16(2, port, false);
  buf.set(ip.bytes, ip.family === 4 ? 4 : 8);
  return buf;
}

function setInt(fd: number, level: number, name: number, value: number): void {
  const v = new Int32Array([value]);
  if (libc().setsockopt(fd, level, name, new Uint8Array(v.buffer), 4) !== 0) {
    throw new LibcError("setsockopt", errno());
  }
}

/**
 * Creates a non-blocking, close-on-exec listening TCP socket.
 *
 * @param hostname an IP literal or `localhost`
 * @param port 0 for any free port
 * @param backlog the `listen` backlog
 * @returns the fd and the port actually bound
 * @throws {LibcError} with a user-facing message, e.g. `port 8000 is in use`
 */
export function listenTcp(
  hostname: string,
  port: number,
  backlog = 4096,
): { fd: number; port: number } {
  const ip = parseIp(hostname);
  if (!ip) {
    throw new TypeError(`host must be an IPv4 or IPv6 address or "localhost", got "${hostname}"`);
  }
  const c = libc();
  const fd = c.socket(
    ip.family === 4 ? AF_INET : AF_INET6,
    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
    0,
  );
  if (fd < 0) throw new LibcError("socket", errno());
  try {
    setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux, so one
    // call here saves one per connection (checked in _libc_test.ts).
    setInt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    // "::" serves IPv4 too, like Deno.listen does.
    if (ip.family === 6) setInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    const addr = encodeSockaddr(ip, port);
    if (c.bind(fd, addr, addr.length) !== 0) {
      const code = errno();
      const where = `${hostname}:${port}`;
      if (code === E.ADDRINUSE) {
        throw new LibcError("bind", code, `port ${port} is in use (${where})`);
      }
      if (code === E.ACCES) {
        throw new LibcError("bind", code, `permission denied binding ${where} (ports < 1024?)`);
      }
      if (code === E.ADDRNOTAVAIL) {
        throw new LibcError("bind", code, `address ${hostname} is not available on this machine`);
      }
      throw new LibcError("bind", code);
    }
    if (c.listen(fd, backlog) !== 0) throw new LibcError("listen", errno());
    return { fd, port: boundPort(fd) };
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

/** The local port of a bound socket (`getsockname`). */
export function boundPort(fd: number): number {
  const addr = new Uint8Array(28);
  const len = new Uint32Array([28]);
  if (libc().getsockname(fd, addr, new Uint8Array(len.buffer)) !== 0) {
    throw new LibcError("getsockname", errno());
  }
  return new DataView(addr.buffer).getUint16(2, false);
}

/** Whether TCP_NODELAY is set on `fd` (for tests). */
export function noDelay(fd: number): boolean {
  const v = new Int32Array(1);
  const len = new Uint32Array([4]);
  if (
    libc().getsockopt(
      fd,
      IPPROTO_TCP,
      TCP_NODELAY,
      new Uint8Array(v.buffer),
      new Uint8Array(len.buffer),
    ) !== 0
  ) throw new LibcError("getsockopt", errno());
  return v[0] !== 0;
}

/**
 * `accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)`.
 *
 * @returns the new fd, or `-errno` (e.g. `-E.AGAIN` when none is pending)
 */
export function accept(fd: number): number {
  const r = libc().accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return r >= 0 ? r : -errno();
}

const peer = new Uint8Array(28);
const peerLen = new Uint32Array(1);

/**
 * The peer's IP address of a connected socket, as text: `203.0.113.7`, or
 * `2001:db8::1`; an IPv4-mapped IPv6 peer is shown as IPv4.
 *
 * @param fd a connected TCP socket
 * @returns the address, `"unix"` for a Unix socket, or `"-"` when
 *   `getpeername` fails (peer gone)
 */
export function peerAddress(fd: number): string {
  peerLen[0] = peer.length;
  if (libc().getpeername(fd, peer, new Uint8Array(peerLen.buffer)) !== 0) return "-";
  const family = peer[0] | (peer[1] << 8);
  if (family === AF_INET) return peer.subarray(4, 8).join(".");
  // A Unix socket peer has no address worth logging (net: --listen unix:).
  if (family === 1) return "unix";
  if (family !== AF_INET6) return "-";
  const a = peer.subarray(8, 24);
  if (a.subarray(0, 10).every((b) => b === 0) && a[10] === 0xff && a[11] === 0xff) {
    return a.subarray(12, 16).join(".");
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((a[i] << 8) | a[i + 1]).toString(16));
  // RFC 5952: the longest run (>= 2) of zero groups becomes "::".
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

const pollfd = new Int32Array(2);
const pollfdBytes = new Uint8Array(pollfd.buffer);

/**
 * Waits until `fd` is readable (a connection is pending) or the timeout ends.
 *
 * @param fd a listening socket
 * @param timeoutMs how long to block this thread
 * @returns true when readable
 */
export function pollIn(fd: number, timeoutMs: number): boolean {
  pollfd[0] = fd;
  pollfd[1] = POLLIN; // events (short) = POLLIN, revents (short) = 0
  const r = libc().poll(pollfdBytes, 1n, timeoutMs);
  return r > 0 && (pollfd[1] >>> 16 & POLLIN) !== 0;
}

/** `close(fd)`, ignoring errors (the fd is gone either way). */
export function close(fd: number): void {
  libc().close(fd);
}

/** The soft `RLIMIT_NOFILE`, or undefined when it cannot be read. */
export function openFileLimit(): number | undefined {
  const buf = new BigUint64Array(2);
  if (libc().getrlimit(RLIMIT_NOFILE, new Uint8Array(buf.buffer)) !== 0) return undefined;
  const soft = buf[0];
  return soft > 0x7fffffffn ? 0x7fffffff : Number(soft);
}

// ---- epoll (ring mode's I/O in the HTTP workers) ---------------------------

/** epoll event bits. */
export const EPOLLIN = 0x001, EPOLLOUT = 0x004, EPOLLERR = 0x008, EPOLLHUP = 0x010;
const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
/** `struct epoll_event` is packed on x86-64 (12 bytes), naturally aligned elsewhere (16). */
export const EPOLL_EVENT_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
const EPOLL_DATA_OFFSET = Deno.build.arch === "x86_64" ? 4 : 8;

/** `epoll_create1(EPOLL_CLOEXEC)`. */
export function epollCreate(): number {
  const fd = libc().epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw new LibcError("epoll_create1", errno());
  return fd;
}

const ctlEvent = new Uint8Array(16);
const ctlView = new DataView(ctlEvent.buffer);

function epollCtl(epfd: number, op: number, fd: number, events: number): number {
  ctlView.setUint32(0, events, true);
  ctlView.setUint32(EPOLL_DATA_OFFSET, fd, true);
  ctlView.setUint32(EPOLL_DATA_OFFSET + 4, 0, true);
  return libc().epoll_ctl(epfd, op, fd, ctlEvent) === 0 ? 0 : -errno();
}

/** Registers `fd` (as the event's data) with `events`; returns 0 or -errno. */
export function epollAdd(epfd: number, fd: number, events: number): number {
  return epollCtl(epfd, EPOLL_CTL_ADD, fd, events);
}

/** Changes the events `fd` is registered for; returns 0 or -errno. */
export function epollMod(epfd: number, fd: number, events: number): number {
  return epollCtl(epfd, EPOLL_CTL_MOD, fd, events);
}

/** Unregisters `fd`; returns 0 or -errno. */
export function epollDel(epfd: number, fd: number): number {
  return epollCtl(epfd, EPOLL_CTL_DEL, fd, 0);
}

/**
 * `epoll_wait` on a thread of Deno's blocking pool, so this thread's event
 * loop keeps running meanwhile. `events` must not be touched until it settles.
 *
 * @returns the number of events (0 on timeout or EINTR)
 */
export async function epollWait(
  epfd: number,
  events: Uint8Array,
  timeoutMs: number,
): Promise<number> {
  const n = await libc().epoll_wait_async(
    epfd,
    events,
    events.length / EPOLL_EVENT_SIZE,
    timeoutMs,
  );
  return n < 0 ? 0 : n;
}

/**
 * `epoll_wait` on this thread: blocks it for up to `timeoutMs` (0: just
 * collect what is ready).
 *
 * @returns the number of events (0 on timeout or EINTR)
 */
export function epollPoll(epfd: number, events: Uint8Array, timeoutMs = 0): number {
  const n = libc().epoll_wait(epfd, events, events.length / EPOLL_EVENT_SIZE, timeoutMs);
  return n < 0 ? 0 : n;
}

/** The event bits of event `i` of an `epoll_wait` result (no allocation: the loop's hot path). */
export function epollEventBits(view: DataView, i: number): number {
  return view.getUint32(i * EPOLL_EVENT_SIZE, true);
}

/** The fd (the registered data) of event `i` of an `epoll_wait` result. */
export function epollEventFd(view: DataView, i: number): number {
  return view.getInt32(i * EPOLL_EVENT_SIZE + EPOLL_DATA_OFFSET, true);
}

/** `read(fd, buf, buf.length)`: bytes read, 0 at end of stream, or -errno. */
export function readFd(fd: number, buf: Uint8Array): number {
  const n = Number(libc().read(fd, buf, BigInt(buf.length)));
  return n >= 0 ? n : -errno();
}

const MSG_NOSIGNAL = 0x4000;

/**
 * `send(fd, buf, buf.length, MSG_NOSIGNAL)`: bytes written or -errno. A peer
 * that went away gives EPIPE, never SIGPIPE (whatever the signal's disposition).
 */
export function writeFd(fd: number, buf: Uint8Array): number {
  const n = Number(libc().send(fd, buf, BigInt(buf.length), MSG_NOSIGNAL));
  return n >= 0 ? n : -errno();
}

const MSG_MORE = 0x8000;

/**
 * Like {@linkcode writeFd}, with `MSG_MORE`: the kernel holds a short write
 * back for the data that follows (a response head before its `sendfile`).
 */
export function writeMoreFd(fd: number, buf: Uint8Array): number {
  const n = Number(libc().send(fd, buf, BigInt(buf.length), MSG_NOSIGNAL | MSG_MORE));
  return n >= 0 ? n : -errno();
}

const sendfileOffset = new BigInt64Array(1);

/**
 * `sendfile(out, in, &offset, count)`: bytes sent from file `inFd` at
 * `offset` to socket `out` (0: the file ends before `offset`), or -errno.
 * The file's own position is not used or changed.
 */
export function sendFileFd(out: number, inFd: number, offset: number, count: number): number {
  sendfileOffset[0] = BigInt(offset);
  const n = Number(libc().sendfile(out, inFd, sendfileOffset, BigInt(count)));
  return n >= 0 ? n : -errno();
}

// ---- listeners (net: --listen unix:, socket activation) --------------------

const AF_UNIX = 1;
const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;
const SO_DOMAIN = 39;
const F_SETFD = 2, F_GETFL = 3, F_SETFL = 4;
const FD_CLOEXEC = 1;
const O_NONBLOCK = 0o4000;
const ECONNREFUSED = 111;
const ENOENT = 2;
const netLibc = libc;

const cString = (s: string): Uint8Array => new TextEncoder().encode(s + "\0");

/** A `sockaddr_un` for `path` (at most 107 bytes: the caller checked). */
function sockaddrUn(path: string): Uint8Array {
  const buf = new Uint8Array(110);
  new DataView(buf.buffer).setUint16(0, AF_UNIX, true);
  buf.set(new TextEncoder().encode(path), 2);
  return buf;
}

/**
 * Whether a server accepts connections on the Unix socket at `path` (a
 * non-blocking `connect`: ECONNREFUSED means nobody listens: a leftover).
 *
 * @param path the socket file
 * @returns true when something listens there
 */
export function unixSocketLive(path: string): boolean {
  const c = netLibc();
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new LibcError("socket", errno());
  try {
    const addr = sockaddrUn(path);
    if (c.connect(fd, addr, addr.length) === 0) return true;
    const code = errno();
    // EAGAIN: its backlog is full, so it is very much alive.
    return code !== ECONNREFUSED && code !== ENOENT;
  } finally {
    c.close(fd);
  }
}

/**
 * `unlink(path)`.
 *
 * @returns 0, or the errno
 */
export function unlinkPath(path: string): number {
  return netLibc().unlink(cString(path)) === 0 ? 0 : errno();
}

/**
 * Creates a non-blocking, close-on-exec listening Unix stream socket at
 * `path` with file mode `mode`. The mode is set between `bind` and `listen`,
 * so no client can connect while the file still has the umask's mode.
 * The caller has dealt with a file already at `path`.
 *
 * @param path where (absolute, at most 107 bytes)
 * @param backlog the `listen` backlog
 * @param mode permission bits of the socket file, e.g. `0o660`
 * @returns the fd
 * @throws {LibcError} with the errno's text
 */
export function listenUnix(path: string, backlog: number, mode: number): number {
  const c = netLibc();
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new LibcError("socket", errno());
  try {
    const addr = sockaddrUn(path);
    if (c.bind(fd, addr, addr.length) !== 0) throw new LibcError("bind", errno());
    if (c.chmod(cString(path), mode) !== 0) {
      const code = errno();
      unlinkPath(path);
      throw new LibcError("chmod", code);
    }
    if (c.listen(fd, backlog) !== 0) {
      const code = errno();
      unlinkPath(path);
      throw new LibcError("listen", code);
    }
    return fd;
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

/** What an inherited listening socket is. */
export type SocketInfo =
  | { family: "tcp"; hostname: string; port: number }
  | { family: "unix"; path: string };

function intOpt(fd: number, name: number): number {
  const v = new Int32Array(1);
  const len = new Uint32Array([4]);
  if (
    netLibc().getsockopt(fd, SOL_SOCKET, name, new Uint8Array(v.buffer), new Uint8Array(len.buffer))
  ) throw new LibcError("getsockopt", errno());
  return v[0];
}

/**
 * Checks that `fd` (inherited, e.g. from systemd) is a listening stream
 * socket, makes it non-blocking and close-on-exec, and says what it is.
 *
 * @param fd the descriptor
 * @returns its address
 * @throws {Error} naming the fd when it is not a listening TCP or Unix stream socket
 */
export function adoptListener(fd: number): SocketInfo {
  const c = netLibc();
  let domain: number;
  try {
    if (intOpt(fd, SO_TYPE) !== SOCK_STREAM) throw new Error("not a stream socket");
    if (intOpt(fd, SO_ACCEPTCONN) !== 1) throw new Error("not listening");
    domain = intOpt(fd, SO_DOMAIN);
  } catch (e) {
    const why = e instanceof LibcError && e.code === 88 ? "not a socket" : (e as Error).message;
    throw new Error(`inherited fd ${fd} is ${why.startsWith("not") ? why : `unusable: ${why}`}`);
  }
  if (domain !== AF_INET && domain !== AF_INET6 && domain !== AF_UNIX) {
    throw new Error(`inherited fd ${fd} is not a TCP or Unix socket (domain ${domain})`);
  }
  const flags = c.fcntl(fd, F_GETFL, 0);
  if (flags < 0 || c.fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    throw new LibcError("fcntl", errno());
  }
  c.fcntl(fd, F_SETFD, FD_CLOEXEC);
  const addr = new Uint8Array(112);
  const len = new Uint32Array([addr.length]);
  if (c.getsockname(fd, addr, new Uint8Array(len.buffer)) !== 0) {
    throw new LibcError("getsockname", errno());
  }
  if (domain === AF_UNIX) {
    const raw = addr.subarray(2, len[0]);
    const nul = raw.indexOf(0);
    // An abstract socket starts with a NUL byte: shown with "@", as ss does.
    const path = raw[0] === 0
      ? "@" + new TextDecoder().decode(raw.subarray(1))
      : new TextDecoder().decode(nul < 0 ? raw : raw.subarray(0, nul));
    return { family: "unix", path };
  }
  // Accepted sockets inherit TCP_NODELAY (see listenTcp).
  setInt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  const view = new DataView(addr.buffer);
  const port = view.getUint16(2, false);
  const hostname = domain === AF_INET
    ? addr.subarray(4, 8).join(".")
    : ipv6Text(addr.subarray(8, 24));
  return { family: "tcp", hostname, port };
}

function ipv6Text(a: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((a[i] << 8) | a[i + 1]).toString(16));
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

/**
 * Several listening sockets polled at once (the acceptor with more than one
 * listener): `wait` blocks until one is readable, `ready(k)` says whether
 * listener `k` was.
 */
export class PollSet {
  readonly fds: readonly number[];
  #pollfds: Int32Array;
  #bytes: Uint8Array;

  /** @param fds the listening sockets */
  constructor(fds: readonly number[]) {
    this.fds = fds;
    this.#pollfds = new Int32Array(fds.length * 2);
    this.#bytes = new Uint8Array(this.#pollfds.buffer);
  }

  /**
   * @param timeoutMs how long to block this thread
   * @returns true when at least one listener is readable
   */
  wait(timeoutMs: number): boolean {
    const p = this.#pollfds;
    for (let k = 0; k < this.fds.length; k++) {
      p[2 * k] = this.fds[k];
      p[2 * k + 1] = POLLIN;
    }
    return netLibc().poll(this.#bytes, BigInt(this.fds.length), timeoutMs) > 0;
  }

  /** Whether listener `k` was readable at the last {@linkcode wait}. */
  ready(k: number): boolean {
    return (this.#pollfds[2 * k + 1] >>> 16 & POLLIN) !== 0;
  }
}
