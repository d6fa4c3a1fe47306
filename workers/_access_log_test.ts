import assert from "node:assert/strict";
import { ByteRing } from "../queue/byte_ring.ts";
import type { Reply, RequestHead } from "../http/types.ts";
import {
  AccessLogProducer,
  clfTime,
  LineWriter,
  type LogFormat,
  RECORD_BYTES,
} from "./_access_log.ts";
import {
  allocateMetrics,
  CounterWriter,
  LOG_DROPPED,
  LOGGED,
  readCounter,
  readWorker,
  renderPrometheus,
} from "./_metrics.ts";

const ok: Reply = { status: 200, headers: [], body: [], length: 0 };

function req(
  target: string,
  headers: string[] = [],
  method = "GET",
  minor: 0 | 1 = 1,
): RequestHead {
  return { method, target, path: target.split("?")[0], query: "", minor, headers };
}

/** Runs requests through a producer and formats what its ring holds. */
function lines(
  format: LogFormat,
  run: (tap: ReturnType<AccessLogProducer["tap"]>) => void,
  remote = "192.0.2.1",
  capacity = 16,
) {
  const ring = ByteRing.allocate(capacity, RECORD_BYTES);
  const metrics = allocateMetrics(1);
  const producer = new AccessLogProducer(() => ok, new CounterWriter(metrics, 0), ring);
  run(producer.tap({ transport: "tcp", hostname: remote, port: 1 }));
  const w = new LineWriter(format);
  new ByteRing(ring).drain((b, at) => w.append(b, at));
  return {
    text: new TextDecoder().decode(w.buf.subarray(0, w.length)),
    counters: readWorker(new Int32Array(metrics), 0),
  };
}

Deno.test("access log: a record becomes one Combined Log Format line with status, bytes, referer and user-agent", () => {
  const { text, counters } = lines("combined", (tap) => {
    const r = req("/a%20b.txt?x=1", ["referer", "http://r.test/", "user-agent", "curl/8"]);
    tap.handler(r);
    tap.onResponse(r, 200, 1187);
  });
  assert.match(
    text,
    /^192\.0\.2\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET \/a%20b\.txt\?x=1 HTTP\/1\.1" 200 1187 "http:\/\/r\.test\/" "curl\/8"\n$/,
  );
  assert.deepEqual(counters.responses, [0, 1, 0, 0, 0]);
  assert.equal(counters.bytes, 1187);
  assert.equal(counters.logged, 1);
});

Deno.test("access log: common format, HTTP/1.0, an engine error without a request line", () => {
  const { text } = lines("common", (tap) => {
    const r = req("/", [], "HEAD", 0);
    tap.handler(r);
    tap.onResponse(r, 304, 120);
    tap.onResponse(null, 400, 90);
  });
  const [a, b] = text.trimEnd().split("\n");
  assert.match(a, /^192\.0\.2\.1 - - \[[^\]]+\] "HEAD \/ HTTP\/1\.0" 304 120$/);
  assert.match(b, /^192\.0\.2\.1 - - \[[^\]]+\] "-" 400 90$/);
});

Deno.test("access log: a response marked h2 is logged as HTTP/2.0 and counted like any other", () => {
  const { text, counters } = lines("common", (tap) => {
    const r = req("/a.txt");
    tap.handler(r);
    tap.onResponse(r, 404, 14, true);
  });
  assert.match(text, /^192\.0\.2\.1 - - \[[^\]]+\] "GET \/a\.txt HTTP\/2\.0" 404 14\n$/);
  assert.deepEqual(counters.responses, [0, 0, 0, 1, 0]);
  assert.equal(counters.bytes, 14);
});

Deno.test("access log: quotes, backslashes, control and non-ASCII bytes are escaped as \\xHH; long fields are cut and marked", () => {
  const { text } = lines("combined", (tap) => {
    const r = req("/" + "a".repeat(300), ["user-agent", 'q"\\\x01\xe9' + "u".repeat(200)]);
    tap.handler(r);
    tap.onResponse(r, 200, 1);
  });
  const m = text.match(/"GET \/(a+)\.\.\. HTTP\/1\.1" 200 1 "-" "(.*)"\n$/);
  assert.ok(m, text);
  assert.equal(m[1].length, 215, "target field is 216 bytes, leading slash included");
  assert.ok(m[2].startsWith("q\\x22\\x5C\\x01\\xE9u"), m[2]);
  assert.ok(m[2].endsWith("u..."), "user-agent cut at 96 bytes");
  // deno-lint-ignore no-control-regex
  assert.ok(!/[\x00-\x1f\x7f-\xff]/.test(text.slice(0, -1)), "no raw control or 8-bit bytes");
});

Deno.test("access log: a full ring drops the record and counts it; logging off queues nothing", () => {
  const { text, counters } = lines(
    "combined",
    (tap) => {
      for (let i = 0; i < 5; i++) {
        const r = req(`/${i}`);
        tap.handler(r);
        tap.onResponse(r, 404, 10);
      }
    },
    "::1",
    2,
  );
  assert.equal(text.split("\n").filter((l) => l).length, 2);
  assert.match(text, /^::1 - - .*"GET \/0 HTTP\/1\.1" 404 10/);
  assert.equal(counters.logged, 2);
  assert.equal(counters.logDropped, 3);
  assert.deepEqual(counters.responses, [0, 0, 0, 5, 0]);

  const metrics = allocateMetrics(1);
  const off = new AccessLogProducer(() => ok, new CounterWriter(metrics, 0));
  assert.equal(off.logging, false);
  // A bad fd: getpeername is not even called when logging is off.
  const tap = off.tap(-1);
  assert.equal(tap, off.tap(-2), "one shared tap: no allocation per connection");
  tap.onResponse(null, 500, 5);
  assert.equal(readCounter(new Int32Array(metrics), 0, LOGGED), 0);
  assert.equal(readCounter(new Int32Array(metrics), 0, LOG_DROPPED), 0);
  assert.deepEqual(readWorker(new Int32Array(metrics), 0).responses, [0, 0, 0, 0, 1]);
});

Deno.test("clfTime: day/Mon/year:hh:mm:ss and the zone offset", () => {
  assert.match(
    clfTime(Date.UTC(2026, 10, 26, 11, 57, 29)),
    /^\[\d\d\/Nov\/2026:\d\d:57:29 [+-]\d{4}\]$/,
  );
});

Deno.test("counters are 64-bit: a value crossing 2^32 reads back exactly, and a new writer carries on", () => {
  const buf = allocateMetrics(2);
  const w = new CounterWriter(buf, 1);
  w.add(5, 2 ** 32 - 10);
  w.add(5, 25);
  const i32 = new Int32Array(buf);
  assert.equal(readCounter(i32, 1, 5), 2 ** 32 + 15);
  assert.equal(readCounter(i32, 0, 5), 0, "slot 0 untouched");
  const again = new CounterWriter(buf, 1);
  again.add(5, 1);
  assert.equal(readCounter(i32, 1, 5), 2 ** 32 + 16);
});

Deno.test("renderPrometheus: HELP and TYPE once per family, labelled samples, newline at the end", () => {
  const text = renderPrometheus({
    mode: "ring",
    accepted: 3,
    dropped: 0,
    emfile: 0,
    workers: [{
      responses: [0, 2, 0, 1, 0],
      bytes: 500,
      logged: 0,
      logDropped: 0,
      invalidations: 4,
      up: true,
      open: 1,
      connections: 3,
      restarts: 0,
      connRing: 0,
    }],
  });
  assert.ok(text.endsWith("\n"));
  assert.match(
    text,
    /^# HELP ringhttpd_responses_total .+\n# TYPE ringhttpd_responses_total counter\n/,
  );
  assert.ok(text.includes('ringhttpd_responses_total{worker="0",code="2xx"} 2\n'));
  assert.ok(text.includes("ringhttpd_accepted_total 3\n"));
  assert.ok(text.includes('ringhttpd_conn_ring_depth{worker="0"} 0\n'));
  assert.ok(!text.includes("ringhttpd_log_ring_depth"), "no log ring: no family");
  assert.ok(text.includes('ringhttpd_invalidations_total{worker="0"} 4\n'));
});

Deno.test("counters: a writer terminated mid-carry (SEQ left odd) neither hangs readers nor its replacement", () => {
  const buf = allocateMetrics(1);
  const i32 = new Int32Array(buf);
  new CounterWriter(buf, 0).add(1, 7);
  Atomics.store(i32, 0, 1); // as if terminated between the two SEQ increments
  assert.equal(readCounter(i32, 0, 1), 7);
  const next = new CounterWriter(buf, 0);
  assert.equal(Atomics.load(i32, 0) & 1, 0);
  next.add(1, 1);
  assert.equal(readCounter(i32, 0, 1), 8);
});
