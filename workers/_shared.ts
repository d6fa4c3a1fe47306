/**
 * What the supervisor, the acceptor and the HTTP workers share: the layout of
 * the control `SharedArrayBuffer` and the messages they exchange.
 *
 * Control words (an `Int32Array`, every access through `Atomics`, which is
 * sequentially consistent; the layout relies on that and nothing weaker):
 *
 * ```text
 * word 0   STATE      supervisor writes: RUNNING -> STOPPING; acceptor reads each loop
 * word 1   MAX_CONNS  supervisor writes once: cap on open + queued connections
 * word 2   ACCEPTED   acceptor: connections accepted (stat)
 * word 3   DROPPED    acceptor: fds closed because no live worker could take them (stat)
 * word 4   EMFILE     acceptor: accept() failures for lack of fds (stat)
 * word 5   DRAIN      supervisor: 1 once the acceptor stopped; workers drain
 *                    (also sent as a message; an epoll worker may see that late)
 * word 6   CRASH      supervisor's test hook: the acceptor throws when it sees 1
 * word 7   PER_IP_REFUSED  acceptor: connections closed at accept, over --max-conns-per-ip (stat)
 * word 8   POOL_LIVE  supervisor: job pool threads running (+1 when one is ready, -1 when it dies)
 * word 16 + 16*i     slot i (one per HTTP worker), 64 bytes apart so the
 *                    acceptor's and the workers' writes fall on different cache lines:
 *   +0 OPEN      acceptor adds 1 per fd it hands over; the worker subtracts 1
 *                when that connection closes. Invariant: open + queued for slot i.
 *   +1 ALIVE     supervisor: 1 once the worker said ready, 0 when it died
 *   +2 ACK       acceptor: 1 once it saw ALIVE = 0, stopped pushing to the ring
 *                and closed what was queued in it; supervisor resets it to 0
 *   +3 REQUESTS  worker: responses sent (stat)
 *   +4 CONNS     worker: connections taken (stat)
 *   +5 RESTARTS  supervisor: replacements of this slot (stat)
 *   +6 EPFD      epoll I/O: the worker stores its epoll fd before saying
 *                ready; the acceptor registers each fd it hands over there,
 *                and closes it when the worker died
 *   +7 WORKER_CRASH  supervisor's test hook: the worker throws when it sees 1
 *   +8 SHED      acceptor adds n: "close n of your connections that cost most
 *                and give least" (at the cap, or out of fds); the worker
 *                takes the request (exchange to 0) each loop turn and sheds
 *                what it can (never a connection mid-response)
 * ```
 *
 * Owners (epoll I/O only; an `Int32Array` indexed by fd number): the acceptor
 * stores `slot + 1` before handing an fd over, the worker stores 0 just
 * before it closes the fd (so a reused fd number is never clobbered). When a
 * worker dies its raw fds stay open (they are not Deno resources); the
 * acceptor closes every fd still owned by the dead slot.
 *
 * Note: the acceptor reads OPEN racily while workers decrement it; a stale
 * value only makes one dispatch slightly less balanced, never wrong.
 *
 * @module
 */
import type { Credential } from "../auth/htpasswd.ts";
import type { PathRulesConfig } from "../http/path_rules.ts";
import type { IndexBuffers } from "../http/_name_index.ts";
import type { InvalidationSlot } from "./_invalidate.ts";

import type { PoolBuffers } from "./_jobs.ts";
import type { SiteOptions } from "../http/_site_rules.ts";

/** Index of the state word. */
export const STATE = 0;
/** Index of the connection cap. */
export const MAX_CONNS = 1;
/** Index of the accepted-connections counter. */
export const ACCEPTED = 2;
/** Index of the dropped-fds counter. */
export const DROPPED = 3;
/** Index of the EMFILE/ENFILE counter. */
export const EMFILE = 4;
/** Index of the drain flag. */
export const DRAIN = 5;
/** Index of the acceptor's test-only crash request. */
export const CRASH = 6;
/** Index of the per-address refusals counter (net: --max-conns-per-ip). */
export const PER_IP_REFUSED = 7;
/** Index of the count of live job pool threads (the health page reads it). */
export const POOL_LIVE = 8;

/** STATE value: accept and serve. */
export const RUNNING = 0;
/** STATE value: stop accepting (graceful shutdown). */
export const STOPPING = 1;

/** First word of slot 0. */
export const SLOT_BASE = 16;
/** Words per slot (64 bytes). */
export const SLOT_WORDS = 16;
/** Slot offsets. */
export const OPEN = 0, ALIVE = 1, ACK = 2, REQUESTS = 3, CONNS = 4, RESTARTS = 5, EPFD = 6;
/**
 * Slot offset of the worker's test-only crash request (set by the supervisor's
 * test hook; an epoll worker sees a message late under load, a word at once).
 */
export const WORKER_CRASH = 7;
/** Slot offset of the acceptor's shed request (connections to close for new ones). */
export const SHED = 8;

/**
 * Where shedding starts: the cap less a sixteenth (nginx drains reusable
 * connections once fewer than 1/16 of its connections are free), so a new
 * client finds room without waiting for a close.
 *
 * @param cap the connection cap (of the server, or of one listening worker)
 * @returns the open count above which each new connection sheds one
 */
export function shedMark(cap: number): number {
  return cap - Math.max(1, Math.ceil(cap / 16));
}

/**
 * A listening worker at its share of the cap: sheds what `shed` can, then
 * waits for a connection to close (`onFreed` gets the wake-up), or 100 ms
 * when nothing could be shed (a connection mid-response may be idle then).
 *
 * @param shed closes connections for new ones; returns how many
 * @param onFreed stores the callback a closing connection calls
 * @returns when to look again
 */
export function atCap(shed: () => number, onFreed: (wake: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    onFreed(resolve);
    if (shed() === 0) setTimeout(resolve, 100);
  });
}

/**
 * How ring-mode workers do socket I/O: FFI epoll + read/write, the only way
 * since `ringIo: "socket"` (adopted node:net sockets) was removed (#11). The
 * field stays in the configs until supervisor.ts and acceptor.ts, edited by
 * others this session, drop it.
 */
export type RingIo = "epoll";

/** Index of `field` of slot `i`. */
export function slot(i: number, field: number): number {
  return SLOT_BASE + SLOT_WORDS * i + field;
}

/** Allocates the control words for `workers` slots. */
export function allocateControl(workers: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer((SLOT_BASE + SLOT_WORDS * workers) * 4));
}

/** Options every HTTP worker gets. */
export interface WorkerConfig {
  index: number;
  mode: "ring" | "reuseport";
  control: SharedArrayBuffer;
  /** Ring mode: this slot's SPSC ring of fds (one word per record). */
  ring?: SharedArrayBuffer;
  /** Ring mode: how sockets are driven. */
  io: RingIo;
  /** Ring mode with epoll I/O: the owners table. */
  owners?: SharedArrayBuffer;
  /** Reuseport mode: where to listen. */
  hostname: string;
  port: number;
  /** Reuseport mode: this worker's share of the connection cap. */
  maxConns: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
  writeTimeoutMs: number;
  /** HTTPS (`workers/tls.ts`): PEM certificate chain and key; the worker listens itself. */
  tls?: { cert: string; key: string };
  /** Number of worker slots (the metrics page shows them all). */
  workers: number;
  /** Per-slot counters (`_metrics.ts`), written by each slot's worker. */
  metrics: SharedArrayBuffer;
  /** Access log on: every slot's log ring (`_access_log.ts`); this worker produces into its own. */
  logRings?: SharedArrayBuffer[];
  /** Ring mode: every slot's connection ring (the metrics page shows their depths). */
  rings?: SharedArrayBuffer[];
  /** `--limit-rate` (net): bytes per second per response; 0: off. */
  limitRate: number;
  /** `--limit-rate-after` (net): bytes of each response at full speed first. */
  limitRateAfter: number;
  /** Reuseport mode, `--max-conns-per-ip` (net): the shared counts and the limit. */
  perIp?: { buffer: SharedArrayBuffer; limit: number };
  /** Serve the Prometheus text page at this exact path; undefined: off. */
  metricsPath?: string;
  /** Site rules (#13): serve the health JSON at this exact path; undefined: off. */
  healthPath?: string;
  /** Site rules (#13): log health requests too. */
  healthLog?: boolean;
  /** The job pool's shared memory (`_jobs.ts`); undefined: `--pool 0`. */
  pool?: PoolBuffers;
  /** This slot's cache invalidation ring (`_invalidate.ts`); undefined: no watcher, no cache. */
  invalidation?: InvalidationSlot;
  handler: {
    /** Entries per listing page. @default 10000 */
    listingCap?: number;
    root: string;
    dirListing: boolean;
    dotfiles: boolean;
    followSymlinks: boolean;
    maxArchiveBytes: number;
    cors: boolean;
    headers: Array<[string, string]>;
    /** Total bytes of cached files and listings; 0: no cache. */
    cacheMaxBytes: number;
    /** How long a cache entry is trusted before a stat re-checks it, ms. */
    revalidateMs?: number;
    // write (#14)
    /** WebDAV read side on. */
    webdav?: boolean;
    /** `--upload` globs; empty: no writes. */
    upload?: string[];
    /** Largest upload, bytes. */
    maxUploadBytes?: number;
    /** fsync directories after renames. */
    durable?: boolean;
    /** Path rules (`http/path_rules.ts`); `auth` there comes from `WorkerConfig.auth`. */
    pathRules?: PathRulesConfig;
    /** browse (#17): development mode (no-cache, live reload). */
    dev?: boolean;
    /** browse (#17): the shared search index, when the supervisor runs one. */
    searchIndex?: IndexBuffers;
  } & SiteOptions;
  /** Authentication; undefined: none. */
  auth?: WorkerAuth;
}

/** What a worker needs to check credentials (plain data: hashes, never passwords). */
export interface WorkerAuth {
  /** Users and their hashes. */
  users: Credential[];
  /** Token names and SHA-256 digests; undefined: no token file. */
  tokens?: Array<[string, Uint8Array]>;
  /** The realm of the challenge. */
  realm: string;
  /** The failed-attempts table every thread shares (`auth/attempts.ts`). */
  attempts: SharedArrayBuffer;
}

/** Options the acceptor gets. */
export interface AcceptorConfig {
  /** The listening sockets (opened by the supervisor: `_listeners.ts`), polled together. */
  listenFds: number[];
  /** `--max-conns-per-ip` (`_per_ip.ts`); 0: off. */
  maxConnsPerIp: number;
  control: SharedArrayBuffer;
  rings: SharedArrayBuffer[];
  io: RingIo;
  /** With epoll I/O: the owners table. */
  owners?: SharedArrayBuffer;
}

/** Supervisor -> worker. */
export type ToWorker =
  | { type: "start"; config: WorkerConfig }
  /** New credentials (a reload): the verifier takes them, its cache is forgotten. */
  | { type: "auth"; users: Credential[]; tokens?: Array<[string, Uint8Array]> }
  | { type: "drain" }
  | { type: "crash" };

/** Worker -> supervisor. */
export type FromWorker =
  | { type: "ready"; port: number }
  | { type: "drained" }
  /** The credentials of an `auth` message are in use. */
  | { type: "authed" }
  | { type: "error"; message: string };

/** Acceptor -> supervisor. */
export type FromAcceptor =
  | { type: "ready" }
  | { type: "stopped" }
  | { type: "error"; message: string }
  | { type: "log"; message: string };
