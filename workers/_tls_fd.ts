/**
 * Two fixes, through FFI, for sockets that `Deno.listenTls` does not expose
 * (a `Deno.TlsConn` has no fd and no `setNoDelay`):
 *
 * - {@linkcode noDelayListener}: sets `TCP_NODELAY` on the TLS listening
 *   socket; Linux copies it to every socket accepted from it. Without it,
 *   a response written in pieces (head, then file chunks) waits for the
 *   peer's delayed ACK: 40 ms per 100 KiB response, measured.
 * - {@linkcode reapSocket} / {@linkcode reapSockets}: close the sockets of
 *   TLS connections whose handshake never finished (or that must go now:
 *   shed at the cap).
 *
 * Why the second: on Deno 2.9.6, `TlsConn.close()` before the handshake completes does
 * not close the TCP socket; Deno first drives the handshake to its end (so a
 * client that connects and sends nothing keeps the socket open for good, a
 * slowloris on the handshake). `Deno.TlsConn` exposes no fd, so this finds
 * the socket by its address pair among the process's fds (`getpeername` +
 * `getsockname` through FFI on fd 3, 4, ... up to RLIMIT_NOFILE, at most
 * 2^20; listing `/proc/self/fd` would need `--allow-all`; one failed FFI call
 * per unused fd number, a few ms for 65,536; {@linkcode reapSockets} finds a
 * whole batch in one scan, so thousands of handshakes timing out together
 * cost one scan, not one each) and calls `shutdown(SHUT_RDWR)`
 * on it: Deno's handshake then fails and Deno closes the fd itself. It never
 * closes an fd, so a reused fd number cannot be hit.
 *
 * Needs Linux and `--allow-ffi`; without them {@linkcode reapSocket} returns
 * false and the socket stays open until the client sends or disconnects.
 *
 * @module
 */
import { encodeSockaddr, openFileLimit, parseIp } from "./_libc.ts";
import { tryLibc } from "../sys/libc.ts";

const POLLNVAL = 0x20;
const SHUT_RDWR = 2;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;

/** Whether `got` (from getpeername/getsockname) is the address `want` (from encodeSockaddr). */
function sameAddress(got: Uint8Array, want: Uint8Array): boolean {
  // Family and port, then the address: bytes 4-7 (IPv4) or 8-23 (IPv6); flowinfo and scope ignored.
  if (got[0] !== want[0] || got[1] !== want[1] || got[2] !== want[2] || got[3] !== want[3]) {
    return false;
  }
  const [from, to] = want.length === 16 ? [4, 8] : [8, 24];
  for (let i = from; i < to; i++) if (got[i] !== want[i]) return false;
  return true;
}

/**
 * Sets `TCP_NODELAY` on every listening socket of this process bound to
 * `local` (with `reusePort`, one per worker; setting it twice is harmless).
 * A listening socket is one with that local address and no peer.
 *
 * @param local the listener's address (`listener.addr`)
 * @returns how many sockets were changed (0 without FFI)
 */
export function noDelayListener(local: Deno.NetAddr): number {
  const c = tryLibc();
  const ip = parseIp(local.hostname);
  if (c === null || !ip) return 0;
  const want = encodeSockaddr(ip, local.port);
  const addr = new Uint8Array(128);
  const len = new Uint32Array(1);
  const lenBytes = new Uint8Array(len.buffer);
  const one = new Uint8Array(new Int32Array([1]).buffer);
  const max = Math.min(openFileLimit() ?? 1024, 1 << 20);
  let n = 0;
  for (let fd = 3; fd < max; fd++) {
    len[0] = addr.length;
    if (c.getsockname(fd, addr, lenBytes) !== 0 || !sameAddress(addr, want)) continue;
    len[0] = addr.length;
    if (c.getpeername(fd, addr, lenBytes) === 0) continue; // a connection, not a listener
    if (c.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, 4) === 0) n++;
  }
  return n;
}

/**
 * Shuts down the socket connecting `local` to `remote`, if it can find it.
 *
 * @param local the connection's local address (`conn.localAddr`)
 * @param remote the connection's peer address (`conn.remoteAddr`)
 * @returns whether a socket was shut down
 */
export function reapSocket(local: Deno.NetAddr, remote: Deno.NetAddr): boolean {
  const c = tryLibc();
  if (c === null) return false;
  const localIp = parseIp(local.hostname);
  const remoteIp = parseIp(remote.hostname);
  if (!localIp || !remoteIp) return false;
  const wantPeer = encodeSockaddr(remoteIp, remote.port);
  const wantLocal = encodeSockaddr(localIp, local.port);
  const addr = new Uint8Array(128);
  const len = new Uint32Array(1);
  const lenBytes = new Uint8Array(len.buffer);
  const max = Math.min(openFileLimit() ?? 1024, 1 << 20);
  for (let fd = 3; fd < max; fd++) {
    len[0] = addr.length;
    if (c.getpeername(fd, addr, lenBytes) !== 0 || !sameAddress(addr, wantPeer)) continue;
    len[0] = addr.length;
    if (c.getsockname(fd, addr, lenBytes) !== 0 || !sameAddress(addr, wantLocal)) continue;
    return c.shutdown(fd, SHUT_RDWR) === 0;
  }
  return false;
}

/** A connection's address pair, as `conn.localAddr` / `conn.remoteAddr` give it. */
export interface SocketPair {
  local: Deno.NetAddr;
  remote: Deno.NetAddr;
}

/**
 * Shuts down the sockets of every pair in one scan of the fd table (the cost
 * of one {@linkcode reapSocket}, whatever the number of pairs).
 *
 * @param pairs the connections' address pairs
 * @returns how many sockets were shut down (0 without FFI)
 */
export function reapSockets(pairs: SocketPair[]): number {
  const c = tryLibc();
  if (c === null || pairs.length === 0) return 0;
  /** Wanted pairs by peer port (network byte order, as in the sockaddr). */
  const byPort = new Map<number, Array<{ peer: Uint8Array; local: Uint8Array }>>();
  let left = 0;
  for (const { local, remote } of pairs) {
    const localIp = parseIp(local.hostname);
    const remoteIp = parseIp(remote.hostname);
    if (!localIp || !remoteIp) continue;
    const peer = encodeSockaddr(remoteIp, remote.port);
    const key = (peer[2] << 8) | peer[3];
    let list = byPort.get(key);
    if (list === undefined) byPort.set(key, list = []);
    list.push({ peer, local: encodeSockaddr(localIp, local.port) });
    left++;
  }
  const addr = new Uint8Array(128);
  const len = new Uint32Array(1);
  const lenBytes = new Uint8Array(len.buffer);
  const max = Math.min(openFileLimit() ?? 1024, 1 << 20);
  // One poll(2) over every fd number says which are open (POLLNVAL: not),
  // so getpeername runs only on open fds: ~1 us per FFI call adds up.
  const fds = new Int32Array(2 * max);
  for (let fd = 0; fd < max; fd++) fds[2 * fd] = fd;
  const polled = c.poll(new Uint8Array(fds.buffer), BigInt(max), 0) >= 0;
  const revents = new Int16Array(fds.buffer);
  let n = 0;
  for (let fd = 3; fd < max && left > 0; fd++) {
    if (polled && (revents[4 * fd + 3] & POLLNVAL) !== 0) continue;
    len[0] = addr.length;
    if (c.getpeername(fd, addr, lenBytes) !== 0) continue;
    const list = byPort.get((addr[2] << 8) | addr[3]);
    if (list === undefined) continue;
    const i = list.findIndex((w) => sameAddress(addr, w.peer));
    if (i < 0) continue;
    const want = list[i];
    len[0] = addr.length;
    if (c.getsockname(fd, addr, lenBytes) !== 0 || !sameAddress(addr, want.local)) continue;
    list.splice(i, 1);
    left--;
    if (c.shutdown(fd, SHUT_RDWR) === 0) n++;
  }
  return n;
}
