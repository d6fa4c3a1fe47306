/// <reference lib="deno.worker" />
/**
 * The acceptor thread (ring mode): owns the listening socket, accepts with
 * `accept4` through FFI and hands each fd to the least-loaded live HTTP worker
 * through that worker's SPSC ring (one word per record: the fd).
 *
 * Loop: `poll()` with a 100 ms timeout (so a stop request is seen within
 * 100 ms without any wake-up that could be lost), then accept until EAGAIN
 * (at most the remaining cap), then one `publish` per ring per batch.
 *
 * - Near the connection cap (open + queued, summed over live slots, above
 *   `cap - cap/16`) new connections are still taken: for each one the
 *   workers are asked (SHED word) to close a connection that costs most and
 *   gives least (kept-alive idle first, then slow request heads; never one
 *   mid-response), as nginx reuses connections when it runs short. At the
 *   cap itself it stops calling accept and asks for sheds while a
 *   connection waits; when nothing can be shed (every connection is
 *   mid-response) new connections wait in the kernel backlog.
 * - EMFILE/ENFILE/ENOBUFS/ENOMEM: count, ask the workers to shed, back off
 *   (10 ms doubling to 500 ms), retry. The thread never exits because of fd
 *   exhaustion.
 * - A slot whose ALIVE word drops to 0 is skipped from then on; whatever is
 *   still queued in its ring is taken back here (the producer becomes the
 *   consumer: the dead worker no longer runs) and handed to live workers, or
 *   closed when none is live; then ACK is set so the supervisor can start a
 *   replacement on the same ring. No queued fd is leaked or dropped.
 *
 * Started by the supervisor with a `start` message carrying an
 * {@linkcode AcceptorConfig}; answers `ready` (with the real port and the
 * listening fd), `error`, and `stopped` once STATE leaves RUNNING and the
 * listening socket is closed.
 *
 * @module
 */
import { SpscRing } from "../queue/spsc.ts";
import { accept, close, E, epollAdd, EPOLLIN, pollIn, PollSet } from "./_libc.ts";
import { PerIpLimit } from "./_per_ip.ts";
import {
  ACCEPTED,
  type AcceptorConfig,
  ACK,
  ALIVE,
  CRASH,
  DROPPED,
  EMFILE,
  EPFD,
  type FromAcceptor,
  MAX_CONNS,
  OPEN,
  PER_IP_REFUSED,
  RUNNING,
  SHED,
  shedMark,
  slot,
  STATE,
} from "./_shared.ts";

const BATCH = 256;
const POLL_MS = 100;

function send(msg: FromAcceptor): void {
  self.postMessage(msg);
}

self.onmessage = (e: MessageEvent<{ type: "start"; config: AcceptorConfig }>) => {
  if (e.data.type !== "start") return;
  const config = e.data.config;
  // The supervisor opened the listeners (main thread): raw fds are process-wide.
  send({ type: "ready" });
  run(config.listenFds, config);
  for (const fd of config.listenFds) close(fd);
  send({ type: "stopped" });
};

function run(lfds: readonly number[], config: AcceptorConfig): void {
  // One listener (the default) polls it directly; several go through one poll().
  const lfd = lfds[0];
  const set = lfds.length > 1 ? new PollSet(lfds) : undefined;
  const waiting = set === undefined
    ? (ms: number) => pollIn(lfd, ms)
    : (ms: number) => set.wait(ms);
  const ctl = new Int32Array(config.control);
  const rings = config.rings.map((b) => new SpscRing(b));
  const n = rings.length;
  const live = new Array<boolean>(n).fill(false);
  const pending: number[][] = rings.map(() => []);
  let rr = 0;
  let backoffMs = 10;

  /** Least-loaded live slot (scanning from rr makes ties round-robin), or -1. */
  const pick = (): number => {
    let best = -1;
    let bestLoad = Infinity;
    for (let k = 0; k < n; k++) {
      const i = (rr + k) % n;
      if (!live[i]) continue;
      const load = Atomics.load(ctl, slot(i, OPEN));
      if (load < bestLoad) {
        best = i;
        bestLoad = load;
      }
    }
    rr = (best + 1) % n;
    return best;
  };
  const epoll = config.io === "epoll";
  const owners = epoll ? new Int32Array(config.owners!) : new Int32Array(0);
  const perIp = config.maxConnsPerIp > 0 ? new PerIpLimit(config.maxConnsPerIp, owners) : undefined;
  const drop = (fd: number): void => {
    perIp?.forget(fd);
    if (fd < owners.length) Atomics.store(owners, fd, 0);
    close(fd);
    Atomics.add(ctl, DROPPED, 1);
  };
  const dispatch = (fd: number): void => {
    const i = pick();
    if (i < 0 || (epoll && fd >= owners.length)) return drop(fd);
    if (epoll) {
      // Registered before it is published: the worker wakes when data comes.
      Atomics.store(owners, fd, i + 1);
      if (epollAdd(Atomics.load(ctl, slot(i, EPFD)), fd, EPOLLIN) !== 0) return drop(fd);
    }
    Atomics.add(ctl, slot(i, OPEN), 1);
    pending[i].push(fd);
  };
  const requeue = (rec: Int32Array) => dispatch(rec[0]);
  /** One publish (and at most one wake-up) per ring per batch. */
  const flush = (): void => {
    for (let i = 0; i < n; i++) {
      const fds = pending[i];
      if (fds.length === 0) continue;
      const ring = rings[i];
      const room = ring.reserve(fds.length);
      for (let j = 0; j < room; j++) ring.write(j, 0, fds[j]);
      if (room > 0) ring.publish(room);
      // The ring holds at least the cap, so this only happens if a slot's
      // count went wrong: close rather than leak.
      for (let j = room; j < fds.length; j++) {
        perIp?.forget(fds[j]);
        if (fds[j] < owners.length) Atomics.store(owners, fds[j], 0);
        close(fds[j]);
        Atomics.sub(ctl, slot(i, OPEN), 1);
        Atomics.add(ctl, DROPPED, 1);
      }
      fds.length = 0;
    }
  };

  /**
   * Asks the live workers to close `k` connections in all (less what they
   * were asked and have not taken yet), in proportion to what each holds.
   */
  const requestShed = (k: number): void => {
    let asked = 0;
    let open = 0;
    for (let i = 0; i < n; i++) {
      if (!live[i]) continue;
      asked += Atomics.load(ctl, slot(i, SHED));
      open += Atomics.load(ctl, slot(i, OPEN));
    }
    const need = k - asked;
    if (need <= 0 || open <= 0) return;
    for (let i = 0; i < n; i++) {
      if (!live[i]) continue;
      const share = Math.ceil(need * Atomics.load(ctl, slot(i, OPEN)) / open);
      if (share > 0) Atomics.add(ctl, slot(i, SHED), share);
    }
  };

  /**
   * Extra sheds while connections keep waiting after a batch: doubles each
   * loop that still finds the backlog non-empty (so a deep backlog of new
   * connections gets room in a few loops, not one sixteenth per loop), back
   * to 0 once it is empty.
   */
  let burst = 0;
  const grow = (cap: number): number =>
    burst = Math.min(BATCH, Math.max(Math.ceil(cap / 16), 2 * burst));

  let liveCount = 0;
  /** Refreshes `live` and `liveCount`; returns open + queued over live slots. */
  const scan = (): number => {
    let total = 0;
    liveCount = 0;
    for (let i = 0; i < n; i++) {
      live[i] = Atomics.load(ctl, slot(i, ALIVE)) === 1;
      if (live[i]) {
        liveCount++;
        total += Atomics.load(ctl, slot(i, OPEN));
      }
    }
    return total;
  };

  while (Atomics.load(ctl, STATE) === RUNNING) {
    if (Atomics.load(ctl, CRASH) !== 0) {
      Atomics.store(ctl, CRASH, 0);
      // Leaves the listening fd open: the replacement takes it over.
      throw new Error("acceptor crashed on request (supervisor test hook)");
    }
    // Slot maintenance: a handful of loads per loop.
    let total = scan();
    perIp?.sweep();
    for (let i = 0; i < n; i++) {
      if (live[i] || Atomics.load(ctl, slot(i, ACK)) !== 0) continue;
      // Slot i died: nobody reads its ring now. Hand what was queued there
      // (accepted, never read) to live workers, or close it; then ACK. A
      // fresh view, because a view caches its own side's counter and ours is
      // the producer's.
      const epfd = Atomics.load(ctl, slot(i, EPFD));
      if (epoll && epfd > 0) {
        close(epfd);
        Atomics.store(ctl, slot(i, EPFD), 0);
      }
      new SpscRing(config.rings[i]).drain(requeue);
      flush();
      if (epoll) {
        // Its sockets are raw fds, not Deno resources: they outlive the
        // worker's isolate. Close those it still owned.
        for (let fd = 0; fd < owners.length; fd++) {
          if (owners[fd] === i + 1) {
            Atomics.store(owners, fd, 0);
            close(fd);
          }
        }
      }
      Atomics.store(ctl, slot(i, ACK), 1);
    }
    const cap = Atomics.load(ctl, MAX_CONNS);
    const mark = shedMark(cap);
    if (liveCount === 0 || total >= cap) {
      // A connection is waiting: make room (a no-op while every connection
      // is mid-response); meanwhile it waits in the kernel backlog.
      if (liveCount > 0 && waiting(0)) {
        requestShed(total - mark + grow(cap));
        Atomics.wait(ctl, STATE, RUNNING, 1);
      } else {
        burst = 0;
        Atomics.wait(ctl, STATE, RUNNING, 5);
      }
      continue;
    }
    if (!waiting(POLL_MS)) continue;
    // The poll may have slept 100 ms: see workers that became ready meanwhile.
    total = scan();
    if (liveCount === 0) continue;

    let budget = Math.min(BATCH, cap - total);
    let accepted = 0;
    listeners: for (let k = 0; k < lfds.length && budget > 0; k++) {
      if (set !== undefined && !set.ready(k)) continue;
      const from = lfds[k];
      while (budget > 0) {
        const fd = accept(from);
        if (fd < 0) {
          const code = -fd;
          if (code === E.AGAIN) break;
          // The connection died in the backlog, or a signal: try the next one.
          if (code === E.INTR || code === E.CONNABORTED || code === E.PERM) continue;
          if (code === E.MFILE || code === E.NFILE || code === E.NOBUFS || code === E.NOMEM) {
            // Temporary: connections wait in the backlog until fds free up,
            // which shedding idle or slow connections does at once.
            Atomics.add(ctl, EMFILE, 1);
            requestShed(Math.max(1, Math.min(32, Math.ceil(total / 16))));
            Atomics.wait(ctl, STATE, RUNNING, backoffMs);
            backoffMs = Math.min(backoffMs * 2, 500);
          } else {
            send({ type: "log", message: `accept4() failed with errno ${code}; retrying` });
            Atomics.wait(ctl, STATE, RUNNING, 100);
          }
          break listeners;
        }
        backoffMs = 10;
        budget--;
        if (perIp !== undefined && !perIp.admit(fd)) {
          // Over --max-conns-per-ip: closed at once, never handed over.
          close(fd);
          Atomics.add(ctl, PER_IP_REFUSED, 1);
          continue;
        }
        accepted++;
        dispatch(fd);
      }
    }
    if (accepted === 0) continue;
    Atomics.add(ctl, ACCEPTED, accepted);
    flush();
    // Past the mark, each new connection sheds one (after its publish, so
    // the worker picks among connections it held before).
    if (total + accepted > mark) {
      const more = waiting(0);
      if (!more) burst = 0;
      requestShed(total + accepted - mark + (more ? grow(cap) : 0));
    }
  }
}
