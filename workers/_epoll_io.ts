/**
 * Ring mode's fast I/O for an HTTP worker: the worker owns an epoll fd; the
 * acceptor registers each connection there (EPOLLIN, data = the fd) before
 * pushing the fd into the worker's ring. The worker waits in `epoll_wait` on
 * Deno's blocking pool (so its event loop keeps running for the handler's
 * file operations and timers) and reads and writes sockets with FFI
 * `read`/`write`. A connection costs one wake-up (data arrived), instead of
 * two wake-ups (ring, then socket) plus a `node:net` Socket.
 *
 * Per connection: level-triggered interest is `EPOLLIN` unless the peer sent
 * EOF, plus `EPOLLOUT` while output is pending. While reading is paused (the
 * engine returned a promise from `feed`) `EPOLLIN` is dropped only once the
 * socket actually reports input: a client usually waits for its response, so
 * most pauses cost no `epoll_ctl` at all. A write goes straight to the
 * socket; what the kernel does not take is queued, and the returned promise
 * settles when the queue is flushed (or the connection closes).
 *
 * @module
 */
import type { SpscRing } from "../queue/spsc.ts";
import { type ConnectionSet, HttpConnection, type Transport } from "../http/engine.ts";
import type { Handler, Peer } from "../http/types.ts";
import type { ConnectionTap } from "./_access_log.ts";
import {
  close,
  E,
  EPOLL_EVENT_SIZE,
  epollCreate,
  EPOLLERR,
  epollEventBits,
  epollEventFd,
  EPOLLHUP,
  EPOLLIN,
  epollMod,
  EPOLLOUT,
  epollPoll,
  epollWait,
  peerAddress,
  pollIn,
  readFd,
  sendFileFd,
  writeFd,
  writeMoreFd,
} from "./_libc.ts";

const MAX_EVENTS = 256;
/** The event loop gets a turn at least this often (ms): timers, supervisor messages. */
const TURN_MS = 10;
/** How often an event-loop turn is a timer turn (runs timers and waitAsync callbacks). */
const TIMER_TURN_MS = 50;
const READ_SIZE = 64 * 1024;
/** One `sendfile` call sends at most this much (the kernel's own cap is ~2 GiB). */
const SENDFILE_MAX = 1 << 30;
const EINVAL = 22;
const ENOSYS = 38;
const EOVERFLOW = 75;

/** A `sendFile` in progress: the head still to go, then file bytes `[off, end)`. */
interface FileSend {
  head: Uint8Array | null;
  fd: number;
  start: number;
  off: number;
  end: number;
  progress: (() => void) | undefined;
  done: (sent: number) => void;
}

/** Engine timeouts. */
export interface EngineOptions {
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  writeTimeoutMs: number;
}

/**
 * One socket fd driven through epoll; the engine's {@linkcode Transport}, and
 * its own {@linkcode Peer} (no object more per connection).
 */
class FdConnection implements Transport, Peer {
  readonly fd: number;
  conn!: HttpConnection;
  /** The peer's address once asked for (null: not yet). */
  #address: string | undefined | null = null;
  #loop: EpollLoop;
  #pending: Uint8Array[] = [];
  #waiters: (() => void)[] = [];
  #paused = false;
  /** EPOLLIN was dropped because input arrived while paused. */
  #muted = false;
  #eof = false;
  #closed = false;
  #interest = EPOLLIN;
  #file: FileSend | null = null;

  constructor(fd: number, loop: EpollLoop) {
    this.fd = fd;
    this.#loop = loop;
  }

  /** This connection as the request's `remote`. */
  get peer(): Peer {
    return this;
  }

  /**
   * The client's address, from `getpeername` on first use. Undefined once
   * closed and not asked before: the fd number may belong to another
   * connection by then.
   */
  get address(): string | undefined {
    if (this.#address === null) {
      if (this.#closed) return undefined;
      const a = peerAddress(this.fd);
      this.#address = a === "-" ? undefined : a;
    }
    return this.#address;
  }

  write(bytes: Uint8Array): Promise<void> | void {
    if (this.#closed) return;
    if (this.#pending.length === 0) {
      const n = writeFd(this.fd, bytes);
      if (n === bytes.length) return;
      if (n < 0 && n !== -E.AGAIN && n !== -E.INTR) return this.#abort();
      // The kernel took part: keep the rest (the caller waits, so it will
      // not reuse the buffer before the promise settles).
      bytes = bytes.subarray(n > 0 ? n : 0);
    }
    this.#pending.push(bytes);
    this.#updateInterest();
    return new Promise<void>((r) => this.#waiters.push(r));
  }

  /**
   * Sends `head` (if any), then file bytes `[offset, end)` of `fd` with
   * `sendfile(2)`: no copy through JS, no file read op. Resolves to the body
   * bytes sent: fewer than asked when the file ended early (truncated), -1
   * when the connection is gone, -2 when this file cannot be sendfile'd (the
   * head has still been sent in full: the caller streams the body itself).
   * `progress` is called whenever the socket took more bytes.
   */
  sendFile(
    head: Uint8Array | null,
    fd: number,
    offset: number,
    end: number,
    progress?: () => void,
  ): Promise<number> | number {
    if (this.#closed) return -1;
    if (this.#pending.length > 0 || this.#file !== null) {
      // Not issued by the engine (it waits for each write), but keep order.
      return this.#flushed().then(() => this.sendFile(head, fd, offset, end, progress));
    }
    let result = -3;
    const f: FileSend = {
      head: head !== null && head.length > 0 ? head : null,
      fd,
      start: offset,
      off: offset,
      end,
      progress,
      done: (n) => result = n,
    };
    if (this.#stepFile(f)) return result;
    this.#file = f;
    this.#updateInterest();
    return new Promise<number>((r) => f.done = r);
  }

  #flushed(): Promise<void> {
    return new Promise<void>((r) => this.#waiters.push(r));
  }

  /** Advances `f` until done (true, `f.done` called) or the socket is full (false). */
  #stepFile(f: FileSend): boolean {
    while (f.head !== null) {
      const h = f.head;
      const n = f.off < f.end ? writeMoreFd(this.fd, h) : writeFd(this.fd, h);
      if (n === h.length) f.head = null;
      else if (n >= 0) f.head = h.subarray(n);
      else if (n === -E.AGAIN) return false;
      else if (n !== -E.INTR) return this.#endFile(f, -1, true);
    }
    while (f.off < f.end) {
      const n = sendFileFd(this.fd, f.fd, f.off, Math.min(f.end - f.off, SENDFILE_MAX));
      if (n > 0) {
        f.off += n;
        f.progress?.();
      } else if (n === 0) break; // the file ends before `end`: truncated under us
      else if (n === -E.AGAIN) return false;
      else if (n === -E.INTR) continue;
      else if ((n === -EINVAL || n === -ENOSYS || n === -EOVERFLOW) && f.off === f.start) {
        return this.#endFile(f, -2, false);
      } else {
        // A socket error, or the file failed to read (EIO): either way the
        // promised length cannot be kept.
        return this.#endFile(f, -1, true);
      }
    }
    return this.#endFile(f, f.off - f.start, false);
  }

  #endFile(f: FileSend, result: number, abort: boolean): true {
    if (this.#file === f) {
      this.#file = null;
      this.#updateInterest();
    }
    if (abort) this.#abort();
    f.done(result);
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#loop.release(this.fd);
    for (const w of this.#waiters.splice(0)) w();
    this.#pending.length = 0;
    const f = this.#file;
    if (f !== null) {
      this.#file = null;
      f.done(-1);
    }
  }

  /** The peer went away (reset, error): nothing more can be sent. */
  #abort(): void {
    this.close();
    if (!this.conn.closed) this.conn.end();
  }

  #updateInterest(): void {
    if (this.#closed) return;
    const want = (this.#muted || this.#eof ? 0 : EPOLLIN) |
      (this.#pending.length > 0 || this.#file !== null ? EPOLLOUT : 0);
    if (want !== this.#interest) {
      this.#interest = want;
      epollMod(this.#loop.epfd, this.fd, want);
    }
  }

  readonly #resume = () => {
    this.#paused = false;
    this.#loop.busy--;
    if (this.#muted) {
      this.#muted = false;
      this.#updateInterest();
    }
  };

  onReadable(): void {
    if (this.#closed || this.#eof) return;
    if (this.#paused) {
      // Level-triggered: stop the reports until the engine wants more.
      this.#muted = true;
      return this.#updateInterest();
    }
    const buf = this.#loop.readBuffer;
    const n = readFd(this.fd, buf);
    if (n > 0) {
      // The engine copies whatever it keeps past this call: no copy here.
      const p = this.conn.feed(buf.subarray(0, n));
      if (p) {
        this.#paused = true;
        this.#loop.busy++;
        p.then(this.#resume, this.#resume);
      }
    } else if (n === 0) {
      this.#eof = true;
      this.#updateInterest();
      this.conn.end();
    } else if (n !== -E.AGAIN && n !== -E.INTR) {
      this.#abort();
    }
  }

  hasInput(): boolean {
    return !this.#closed && pollIn(this.fd, 0);
  }

  onWritable(): void {
    if (this.#file !== null) {
      this.#stepFile(this.#file);
      return;
    }
    const q = this.#pending;
    while (q.length > 0 && !this.#closed) {
      const b = q[0];
      const n = writeFd(this.fd, b);
      if (n === b.length) {
        q.shift();
      } else if (n >= 0) {
        q[0] = b.subarray(n);
        return;
      } else if (n === -E.AGAIN || n === -E.INTR) {
        return;
      } else {
        return this.#abort();
      }
    }
    for (const w of this.#waiters.splice(0)) w();
    this.#updateInterest();
  }

  onHangup(): void {
    // Let a read see EOF or the error; if reading is paused, just abort.
    if (this.#paused || this.#eof) this.#abort();
    else this.onReadable();
  }
}

/** The worker's epoll loop over the connections its ring delivers. */
export class EpollLoop {
  readonly epfd: number;
  readonly readBuffer = new Uint8Array(READ_SIZE);
  #conns = new Map<number, FdConnection>();
  #events = new Uint8Array(MAX_EVENTS * EPOLL_EVENT_SIZE);
  #view = new DataView(this.#events.buffer);
  #draining = false;
  #ctl: Int32Array;
  #open: number;
  #owners: Int32Array;
  #handler: Handler;
  #set: ConnectionSet;
  #options: EngineOptions;
  #tap?: (fd: number) => ConnectionTap;
  readonly #adoptRecord = (rec: Int32Array) => this.#adopt(rec[0]);
  /** Connections whose engine work is pending (a `feed` or write promise). */
  busy = 0;
  #lastTurn = 0;
  #lastTimerTurn = 0;
  /** The last epoll call found no socket ready. */
  #idle = false;
  #lastTick = 0;
  #channel = new MessageChannel();
  #yielded: (() => void) | null = null;
  /** One event-loop turn (a MessageChannel message: setTimeout(0) is clamped to ms). */
  #yield(): Promise<void> {
    return new Promise((r) => {
      this.#yielded = r;
      this.#channel.port2.postMessage(null);
    });
  }

  /**
   * @param ctl the control words
   * @param open index of this slot's OPEN word
   * @param owners the owners table
   * @param tap per-connection handler and response hook (access log, counters)
   */
  constructor(
    ctl: Int32Array,
    open: number,
    owners: Int32Array,
    handler: Handler,
    set: ConnectionSet,
    options: EngineOptions,
    tap?: (fd: number) => ConnectionTap,
  ) {
    this.#tap = tap;
    this.epfd = epollCreate();
    this.#ctl = ctl;
    this.#open = open;
    this.#owners = owners;
    this.#handler = handler;
    this.#set = set;
    this.#options = options;
    this.#channel.port1.onmessage = () => {
      const r = this.#yielded;
      this.#yielded = null;
      r?.();
    };
  }

  #adopt(fd: number): void {
    const c = new FdConnection(fd, this);
    const tap = this.#tap?.(fd);
    c.conn = new HttpConnection(c, tap?.handler ?? this.#handler, this.#options, {
      onClose: () => {
        this.#set.remove(c.conn);
        c.close();
      },
      onResponse: tap?.onResponse,
    });
    this.#conns.set(fd, c);
    this.#set.add(c.conn);
    // The request usually arrived with (or before) the accept: read it now
    // rather than after one more epoll_wait. EAGAIN costs one syscall.
    c.onReadable();
  }

  /** Unregisters and closes `fd`, and gives its slot back. */
  release(fd: number): void {
    if (!this.#conns.delete(fd)) return;
    // Owner first: once closed, the number may be accepted again at once.
    Atomics.store(this.#owners, fd, 0);
    close(fd); // also removes it from the epoll set
    Atomics.sub(this.#ctl, this.#open, 1);
  }

  /**
   * Graceful stop: adopts what the ring still holds (the acceptor has stopped
   * by now), then keeps running until every connection has closed.
   */
  beginDrain(ring: SpscRing): number {
    this.#draining = true;
    return ring.drain(this.#adoptRecord);
  }

  /**
   * Runs until {@linkcode beginDrain} was called and no connection is left.
   *
   * @param ring this slot's ring of fds
   * @param onAdopted told how many connections were taken
   * @param turn the worker's control-plane turn hook, called once per loop
   *   turn (at least every 10 ms): drain, crash, shedding, pool completions,
   *   invalidations; a drain it starts calls {@linkcode beginDrain}
   */
  async run(
    ring: SpscRing,
    onAdopted: (n: number) => void,
    turn: () => void,
  ): Promise<void> {
    const view = this.#view;
    while (!this.#draining || this.#conns.size > 0) {
      turn();
      const adopted = this.#draining ? 0 : ring.drain(this.#adoptRecord);
      if (adopted > 0) onAdopted(adopted);
      // On the blocking pool, so this thread's event loop runs meanwhile.
      // Bounded, so a stop request and a lost registration are both noticed.
      let n: number;
      if (this.busy === 0 && performance.now() - this.#lastTurn < TURN_MS) {
        // No engine work is pending (every response so far went out
        // synchronously): nothing but sockets can need this thread, so
        // block in epoll_wait right here, like a C server would.
        n = epollPoll(this.epfd, this.#events, TURN_MS);
      } else {
        // Handler or file I/O is pending, or timers and messages are due: run
        // the event loop. Sleep off-thread only when no socket is ready.
        const before = performance.now();
        if (this.#idle && before - this.#lastTimerTurn >= TIMER_TURN_MS) {
          // A MessageChannel turn does not run due timers or settled
          // Atomics.waitAsync waits (measured: ~1.1 s late with the thread
          // otherwise blocked in epoll_wait); a timer turn does, at the cost
          // of the ~1 ms timer clamp. So take one every TIMER_TURN_MS while no
          // socket is ready (free then); under load the worker's own checks
          // (the turn hook, before each request) cover what timers would.
          this.#lastTimerTurn = before;
          await new Promise((r) => setTimeout(r, 0));
        } else await this.#yield();
        const now = performance.now();
        this.#lastTurn = now;
        if (now - this.#lastTick >= 1000) {
          // Deadlines, here rather than only from the set's setInterval:
          // timers fire late (~40 %) when the thread spends its time blocked
          // in epoll_wait between event-loop turns.
          this.#lastTick = now;
          this.#set.tick(Date.now());
        }
        n = epollPoll(this.epfd, this.#events);
        if (n === 0 && this.busy > 0) n = await epollWait(this.epfd, this.#events, 100);
      }
      this.#idle = n === 0;
      for (let i = 0; i < n; i++) {
        const events = epollEventBits(view, i);
        const fd = epollEventFd(view, i);
        let c = this.#conns.get(fd);
        if (c === undefined) {
          // Registered by the acceptor, not yet published to the ring.
          const more = ring.drain(this.#adoptRecord);
          if (more > 0) onAdopted(more);
          c = this.#conns.get(fd);
          if (c === undefined) continue;
        }
        if (events & EPOLLOUT) c.onWritable();
        if (events & EPOLLIN) c.onReadable();
        else if (events & (EPOLLHUP | EPOLLERR)) c.onHangup();
      }
    }
  }
}
