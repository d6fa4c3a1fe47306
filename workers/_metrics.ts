/**
 * Per-worker counters in a `SharedArrayBuffer`, and their Prometheus text
 * exposition.
 *
 * Layout (an `Int32Array`): slot `i` (one per HTTP worker) starts at word
 * `64 * i` (256 bytes apart: each worker writes only its own cache lines).
 *
 * ```text
 * +0        SEQ    even; odd while a counter's high word changes (see below)
 * +2 + 2*k  LO, HI counter k (k = REQ_1XX ... CLOSE_HANDSHAKE): 64-bit, HI * 2^32 + (LO >>> 0)
 * ```
 *
 * Each slot has one writer (its worker; a replacement worker carries on from
 * the stored values). An update stores LO only, unless the high word changes
 * (every 4 GiB of bytes or 2^32 requests): then the writer stores SEQ odd,
 * HI, LO, SEQ even. A reader loads SEQ, HI, LO, SEQ and retries while SEQ
 * was odd or moved. Every JS `Atomics` operation is sequentially consistent,
 * which is all this relies on; a reader racing an LO-only update sees the old
 * or the new value, both valid.
 *
 * @module
 */
import { type PoolBuffers, type PoolSample, samplePool } from "./_jobs.ts";
import { ByteRing } from "../queue/byte_ring.ts";
import { SpscRing } from "../queue/spsc.ts";
import type { Handler, Reply, RequestHead } from "../http/types.ts";
import {
  ACCEPTED,
  ALIVE,
  CONNS,
  DROPPED,
  EMFILE,
  OPEN,
  PER_IP_REFUSED,
  RESTARTS,
  slot,
} from "./_shared.ts";

/** Counter indexes. */
export const REQ_1XX = 0,
  REQ_2XX = 1,
  REQ_3XX = 2,
  REQ_4XX = 3,
  REQ_5XX = 4,
  BYTES = 5,
  LOGGED = 6,
  LOG_DROPPED = 7,
  INVALIDATIONS = 8,
  /** Connections closed to make room for new ones at the connection cap (or out of fds). */
  SHED = 9,
  /** Connections closed by a deadline: header (head), idle, write, TLS handshake. */
  CLOSE_HEAD = 10,
  CLOSE_IDLE = 11,
  CLOSE_WRITE = 12,
  CLOSE_HANDSHAKE = 13;
// HTTP/2 protections (#18): one counter per `EV_*` of http2/connection.ts, in its order.
/** Rapid reset, SETTINGS/PING/empty-frame floods, oversized header blocks, lists over the limit (431), refused streams, protocol errors. */
export const H2_RAPID_RESET = 14,
  H2_FLOOD = 15,
  H2_BLOCK_TOO_BIG = 16,
  H2_LIST_TOO_BIG = 17,
  H2_REFUSED = 18,
  H2_PROTOCOL_ERROR = 19;
const H2_KINDS = [
  "rapid_reset",
  "flood",
  "block_too_big",
  "list_too_big",
  "refused_stream",
  "protocol_error",
];
const COUNTERS = 20;
/** Words per slot: 2 + 2 * COUNTERS, rounded up to 256 bytes. */
const SLOT_WORDS = 64;
const SEQ = 0;
const TWO32 = 4294967296;

/** Allocates the counters of `workers` slots. */
export function allocateMetrics(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOT_WORDS * workers * 4);
}

/**
 * Reads counter `k` of slot `i`. Bounded: a writer terminated in the middle
 * of a high-word update leaves SEQ odd until its replacement starts; then
 * the value read is the best available (off by at most one carry).
 */
export function readCounter(i32: Int32Array, i: number, k: number): number {
  const base = SLOT_WORDS * i;
  let v = 0;
  for (let tries = 0; tries < 1000; tries++) {
    const s1 = Atomics.load(i32, base + SEQ);
    const hi = Atomics.load(i32, base + 2 + 2 * k + 1);
    const lo = Atomics.load(i32, base + 2 + 2 * k);
    const s2 = Atomics.load(i32, base + SEQ);
    v = hi * TWO32 + (lo >>> 0);
    if ((s1 & 1) === 0 && s1 === s2) break;
  }
  return v;
}

/** One worker's writer of its slot. Not for use from two threads at once. */
export class CounterWriter {
  readonly #i32: Int32Array;
  readonly #base: number;
  readonly #value = new Float64Array(COUNTERS);
  readonly #hi = new Float64Array(COUNTERS);

  /**
   * @param buffer from {@linkcode allocateMetrics}
   * @param i this worker's slot; the stored values are carried on
   */
  constructor(buffer: SharedArrayBuffer, i: number) {
    this.#i32 = new Int32Array(buffer);
    this.#base = SLOT_WORDS * i;
    // The previous writer of this slot (a worker that was terminated) may
    // have stopped mid-update: we are the only writer now, so close it.
    const seq = Atomics.load(this.#i32, this.#base + SEQ);
    if ((seq & 1) !== 0) Atomics.store(this.#i32, this.#base + SEQ, seq + 1);
    for (let k = 0; k < COUNTERS; k++) {
      const v = readCounter(this.#i32, i, k);
      this.#value[k] = v;
      this.#hi[k] = Math.floor(v / TWO32);
    }
  }

  /** Adds `n` (a non-negative integer) to counter `k`. */
  add(k: number, n: number): void {
    const v = this.#value[k] + n;
    this.#value[k] = v;
    const hi = Math.floor(v / TWO32);
    const i32 = this.#i32;
    const at = this.#base + 2 + 2 * k;
    if (hi === this.#hi[k]) {
      Atomics.store(i32, at, v % TWO32);
      return;
    }
    this.#hi[k] = hi;
    const seq = this.#base + SEQ;
    Atomics.add(i32, seq, 1);
    Atomics.store(i32, at + 1, hi);
    Atomics.store(i32, at, v % TWO32);
    Atomics.add(i32, seq, 1);
  }

  /** Counts one response: its status class and bytes. */
  response(status: number, bytes: number): void {
    const c = (status / 100) | 0;
    if (c >= 1 && c <= 5) this.add(c - 1, 1);
    if (bytes > 0) this.add(BYTES, bytes);
  }
}

/** One worker's figures, as read by {@linkcode Cluster.stats} and the metrics page. */
export interface WorkerCounters {
  /** Responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]`. */
  responses: number[];
  /** Response bytes written (heads included). */
  bytes: number;
  /** Access-log records queued to the supervisor. */
  logged: number;
  /** Access-log records dropped because the worker's log ring was full. */
  logDropped: number;
  /** Cache invalidation records applied (`_invalidate.ts`; a "drop all" counts one). */
  invalidations: number;
  /** Connections shed at the connection cap (idle or slow ones, for new clients). */
  shed?: number;
  /** Connections closed by each deadline. */
  deadlineCloses?: { head: number; idle: number; write: number; handshake: number };
  /** HTTP/2 protection events, by kind (rapid_reset, flood, ...). */
  h2?: Record<string, number>;
}

/** Reads slot `i`'s counters. */
export function readWorker(i32: Int32Array, i: number): WorkerCounters {
  return {
    responses: [REQ_1XX, REQ_2XX, REQ_3XX, REQ_4XX, REQ_5XX].map((k) => readCounter(i32, i, k)),
    bytes: readCounter(i32, i, BYTES),
    logged: readCounter(i32, i, LOGGED),
    logDropped: readCounter(i32, i, LOG_DROPPED),
    invalidations: readCounter(i32, i, INVALIDATIONS),
    shed: readCounter(i32, i, SHED),
    deadlineCloses: {
      head: readCounter(i32, i, CLOSE_HEAD),
      idle: readCounter(i32, i, CLOSE_IDLE),
      write: readCounter(i32, i, CLOSE_WRITE),
      handshake: readCounter(i32, i, CLOSE_HANDSHAKE),
    },
    h2: Object.fromEntries(H2_KINDS.map((k, j) => [k, readCounter(i32, i, H2_RAPID_RESET + j)])),
  };
}

/** Everything the metrics page shows for one worker. */
export interface WorkerSample extends WorkerCounters {
  up: boolean;
  open: number;
  connections: number;
  restarts: number;
  /** Connections queued in its ring (ring mode), else undefined. */
  connRing?: number;
  /** Records waiting in its log ring (logging on), else undefined. */
  logRing?: number;
}

/** Whole-server figures for the metrics page. */
export interface Sample {
  mode: string;
  /** "tcp" or "tls" (the label of the shed and deadline counters). */
  transport?: string;
  accepted: number;
  dropped: number;
  emfile: number;
  /** Connections closed at accept: over --max-conns-per-ip (net). */
  perIpRefused?: number;
  workers: WorkerSample[];
  /** The job pool, when there is one. */
  pool?: PoolSample;
}

type Family = [name: string, type: "counter" | "gauge", help: string, lines: string[]];

/**
 * Renders Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE`
 * once per family, then `name{labels} value` lines, ending in a newline.
 *
 * @param s the figures
 * @returns the page body
 * @example Render one idle worker
 * ```ts ignore
 * renderPrometheus({ mode: "ring", accepted: 0, dropped: 0, emfile: 0, workers: [...] });
 * ```
 */
export function renderPrometheus(s: Sample): string {
  const fam = (name: string, type: Family[1], help: string): Family => [name, type, help, []];
  const requests = fam(
    "ringhttpd_responses_total",
    "counter",
    "Responses sent, by worker and status class.",
  );
  const bytes = fam(
    "ringhttpd_response_bytes_total",
    "counter",
    "Response bytes written (HTTP/1: status line and headers included; HTTP/2: body).",
  );
  const up = fam(
    "ringhttpd_worker_up",
    "gauge",
    "1 while the worker runs, 0 while it is replaced.",
  );
  const open = fam("ringhttpd_open_connections", "gauge", "Connections open (ring: and queued).");
  const conns = fam("ringhttpd_connections_total", "counter", "Connections taken by the worker.");
  const restarts = fam("ringhttpd_worker_restarts_total", "counter", "Replacements of the worker.");
  const connRing = fam("ringhttpd_conn_ring_depth", "gauge", "Connections queued in the ring.");
  const logRing = fam("ringhttpd_log_ring_depth", "gauge", "Access-log records not yet written.");
  const logged = fam("ringhttpd_log_records_total", "counter", "Access-log records queued.");
  const dropped = fam(
    "ringhttpd_log_dropped_total",
    "counter",
    "Access-log records dropped: the worker's log ring was full.",
  );
  const invalidations = fam(
    "ringhttpd_invalidations_total",
    "counter",
    "Cache invalidation records applied (changes seen on disk).",
  );
  const shed = fam(
    "ringhttpd_connections_shed_total",
    "counter",
    "Connections closed at the connection cap to admit new ones (idle first, then slow heads).",
  );
  const deadlines = fam(
    "ringhttpd_deadline_closes_total",
    "counter",
    "Connections closed by a deadline, by kind (head, idle, write, handshake).",
  );
  const h2 = fam(
    "ringhttpd_h2_protections_total",
    "counter",
    "HTTP/2 attacks and errors answered, by kind (rapid_reset, flood, block_too_big, list_too_big, refused_stream, protocol_error).",
  );
  const transport = `transport="${s.transport ?? "tcp"}"`;
  const classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
  s.workers.forEach((w, i) => {
    const l = `worker="${i}"`;
    w.responses.forEach((n, c) => requests[3].push(`{${l},code="${classes[c]}"} ${n}`));
    bytes[3].push(`{${l}} ${w.bytes}`);
    up[3].push(`{${l}} ${w.up ? 1 : 0}`);
    open[3].push(`{${l}} ${w.open}`);
    conns[3].push(`{${l}} ${w.connections}`);
    restarts[3].push(`{${l}} ${w.restarts}`);
    if (w.connRing !== undefined) connRing[3].push(`{${l}} ${w.connRing}`);
    if (w.logRing !== undefined) logRing[3].push(`{${l}} ${w.logRing}`);
    logged[3].push(`{${l}} ${w.logged}`);
    dropped[3].push(`{${l}} ${w.logDropped}`);
    invalidations[3].push(`{${l}} ${w.invalidations}`);
    shed[3].push(`{${l},${transport}} ${w.shed ?? 0}`);
    for (const [kind, n] of Object.entries(w.deadlineCloses ?? {})) {
      deadlines[3].push(`{${l},${transport},kind="${kind}"} ${n}`);
    }
    for (const [kind, n] of Object.entries(w.h2 ?? {})) h2[3].push(`{${l},kind="${kind}"} ${n}`);
  });
  const accepted = fam(
    "ringhttpd_accepted_total",
    "counter",
    "Connections accepted (ring: by the acceptor; reuseport: by the workers).",
  );
  accepted[3].push(` ${s.accepted}`);
  const fdDropped = fam(
    "ringhttpd_accept_dropped_total",
    "counter",
    "Accepted connections closed unserved: no live worker could take them.",
  );
  fdDropped[3].push(` ${s.dropped}`);
  const emfile = fam(
    "ringhttpd_accept_emfile_total",
    "counter",
    "accept() failures for lack of fds.",
  );
  emfile[3].push(` ${s.emfile}`);
  // net: --max-conns-per-ip
  const perIp = fam(
    "ringhttpd_accept_per_ip_refused_total",
    "counter",
    "Connections closed at accept: their client address was at --max-conns-per-ip.",
  );
  perIp[3].push(` ${s.perIpRefused ?? 0}`);
  const pool: Family[] = [];
  if (s.pool) {
    const p = s.pool;
    const one = (name: string, type: Family[1], help: string, v: number): Family => [
      name,
      type,
      help,
      [` ${v}`],
    ];
    pool.push(
      one("ringhttpd_pool_threads", "gauge", "Job pool threads.", p.threads),
      one("ringhttpd_pool_queue_depth", "gauge", "Jobs waiting in the job ring.", p.queued),
      one("ringhttpd_pool_active", "gauge", "Jobs running in the pool now.", p.active),
      one("ringhttpd_pool_jobs_total", "counter", "Jobs the pool finished.", p.done),
      one("ringhttpd_pool_slab_free_chunks", "gauge", "Free result-slab chunks.", p.slabFree),
      one("ringhttpd_pool_slab_chunks", "gauge", "Result-slab chunks.", p.chunks),
    );
  }
  let out = "";
  for (
    const [name, type, help, lines] of [
      requests,
      bytes,
      up,
      open,
      conns,
      restarts,
      connRing,
      logRing,
      logged,
      dropped,
      invalidations,
      shed,
      deadlines,
      h2,
      accepted,
      fdDropped,
      emfile,
      perIp,
      ...pool,
    ]
  ) {
    if (lines.length === 0) continue;
    out += `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
    for (const line of lines) out += `${name}${line}\n`;
  }
  return out;
}

/** Reads the figures of every slot from shared memory (no locking: each value is exact, the set is not a snapshot). */
export class Collector {
  readonly #ctl: Int32Array;
  readonly #counters: Int32Array;
  readonly #mode: string;
  readonly #workers: number;
  readonly #connRings: SpscRing[];
  readonly #logRings: ByteRing[];
  readonly #pool?: PoolBuffers;
  readonly #poolViews = {};
  readonly #transport: string;

  /**
   * @param mode "ring" or "reuseport"
   * @param workers number of slots
   * @param ctl the control words
   * @param metrics the counters buffer
   * @param connRings ring mode: every slot's connection ring
   * @param logRings access log on: every slot's log ring
   * @param pool the job pool's shared memory, if there is a pool
   * @param transport "tcp" or "tls"
   */
  constructor(
    mode: string,
    workers: number,
    ctl: SharedArrayBuffer,
    metrics: SharedArrayBuffer,
    connRings: SharedArrayBuffer[] = [],
    logRings: SharedArrayBuffer[] = [],
    pool?: PoolBuffers,
    transport = "tcp",
  ) {
    this.#transport = transport;
    this.#pool = pool;
    this.#mode = mode;
    this.#workers = workers;
    this.#ctl = new Int32Array(ctl);
    this.#counters = new Int32Array(metrics);
    // Views used only for size(): two loads, no side effects on the ring.
    this.#connRings = connRings.map((b) => new SpscRing(b));
    this.#logRings = logRings.map((b) => new ByteRing(b));
  }

  /** @returns the current figures */
  sample(): Sample {
    const ctl = this.#ctl;
    const workers: WorkerSample[] = [];
    let conns = 0;
    for (let i = 0; i < this.#workers; i++) {
      const w: WorkerSample = {
        ...readWorker(this.#counters, i),
        up: Atomics.load(ctl, slot(i, ALIVE)) === 1,
        open: Atomics.load(ctl, slot(i, OPEN)),
        connections: Atomics.load(ctl, slot(i, CONNS)),
        restarts: Atomics.load(ctl, slot(i, RESTARTS)),
        connRing: this.#connRings[i]?.size(),
        logRing: this.#logRings[i]?.size(),
      };
      conns += w.connections;
      workers.push(w);
    }
    return {
      mode: this.#mode,
      transport: this.#transport,
      accepted: this.#mode === "ring" ? Atomics.load(ctl, ACCEPTED) : conns,
      dropped: Atomics.load(ctl, DROPPED),
      emfile: Atomics.load(ctl, EMFILE),
      perIpRefused: Atomics.load(ctl, PER_IP_REFUSED),
      workers,
      pool: this.#pool && samplePool(this.#pool, this.#poolViews),
    };
  }
}

const encoder = new TextEncoder();
const NOT_ALLOWED = encoder.encode("405 Method Not Allowed\n");

/**
 * Wraps `inner` so that `GET`/`HEAD` of exactly `path` (query ignored)
 * answers the Prometheus page; other methods there get 405. Every other
 * request goes to `inner` untouched.
 *
 * @param path the metrics path, e.g. `/.ringhttpd/metrics`
 * @param collector reads the figures
 * @param inner the file handler
 * @returns the wrapped handler
 */
export function metricsHandler(path: string, collector: Collector, inner: Handler): Handler {
  return (req: RequestHead) => {
    if (req.path !== path) return inner(req);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return {
        status: 405,
        headers: [["Allow", "GET, HEAD"], ["Content-Type", "text/plain; charset=utf-8"]],
        body: [NOT_ALLOWED],
        length: NOT_ALLOWED.length,
      } satisfies Reply;
    }
    const body = encoder.encode(renderPrometheus(collector.sample()));
    return {
      status: 200,
      headers: [
        ["Content-Type", "text/plain; version=0.0.4; charset=utf-8"],
        ["Cache-Control", "no-store"],
      ],
      body: [body],
      length: body.length,
    } satisfies Reply;
  };
}
