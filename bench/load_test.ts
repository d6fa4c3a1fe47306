import assert from "node:assert/strict";
import { parseWrk, perWorker } from "./load.ts";

const KEEPALIVE = `Running 1s test @ http://127.0.0.1:8799/a
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms    1.27ms   8.36ms   87.18%
    Req/Sec     2.59k   251.19     3.03k    63.64%
  Latency Distribution
     50%  507.00us
     75%    0.91ms
     90%    2.76ms
     99%    6.30ms
  2828 requests in 1.10s, 557.87KB read
Requests/sec:   2572.41
Transfer/sec:    507.45KB
`;

const ERRORS = `Running 1s test @ http://127.0.0.1:8799/nope
  1 threads and 2 connections
  Latency Distribution
     50%  616.00us
     75%  785.00us
     90%    0.97ms
     99%    1.36s
  3104 requests in 1.10s, 1.54MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 3104
Requests/sec:   2822.34
Transfer/sec:      1.40MB
`;

Deno.test("parseWrk reads req/s, transfer, p50/p99 with their units", () => {
  const r = parseWrk(KEEPALIVE);
  assert.equal(r.requests, 2828);
  assert.equal(r.reqPerSec, 2572.41);
  assert.equal(r.bytesPerSec, 507.45 * 1024);
  assert.equal(r.p50Ms, 0.507);
  assert.equal(r.p99Ms, 6.3);
  assert.equal(r.socketErrors, 0);
  assert.equal(r.non2xx, 0);
});

Deno.test("parseWrk counts socket errors and non-2xx responses", () => {
  const r = parseWrk(ERRORS);
  assert.equal(r.p99Ms, 1360);
  assert.equal(r.bytesPerSec, 1.4 * 1024 * 1024);
  assert.equal(r.socketErrors, 10);
  assert.equal(r.non2xx, 3104);
});

Deno.test("parseWrk rejects output without a summary", () => {
  assert.throws(
    () => parseWrk("unable to connect to 127.0.0.1:1 Connection refused"),
    /wrk output/,
  );
});

Deno.test("perWorker reads workers[i].<field>, else undefined", () => {
  const stats = { workers: [{ requests: 3, connections: 1 }, { requests: 5, connections: 3 }] };
  assert.deepEqual(perWorker(stats, "requests"), [3, 5]);
  assert.deepEqual(perWorker(stats, "connections"), [1, 3]);
  assert.deepEqual(perWorker([{ requests: 1 }], "requests"), [1]);
  assert.equal(perWorker({ workers: [{ conns: 1 }] }, "requests"), undefined);
  assert.equal(perWorker({ workers: [] }, "requests"), undefined);
  assert.equal(perWorker({}, "requests"), undefined);
  assert.equal(perWorker(null, "requests"), undefined);
});
