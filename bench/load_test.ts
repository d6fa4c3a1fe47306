import assert from "node:assert/strict";
import {
  makeMixedFixture,
  mixedReport,
  mixedSummary,
  parseConfig,
  parseWrk,
  perWorker,
  startListingClient,
  type WrkResult,
} from "./load.ts";
import {
  type ListingClientOptions,
  listingQuery,
  type ListingStats,
  percentile,
} from "./_listing_client.ts";
import { HOST, startCluster } from "../tests/_harness.ts";

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

Deno.test("listingQuery cycles through every sort, order and format", () => {
  const seen = new Set(Array.from({ length: 12 }, (_, n) => listingQuery(n)));
  assert.equal(seen.size, 12);
  assert.equal(listingQuery(12), listingQuery(0));
  assert.equal(listingQuery(0), "sort=name&order=asc");
  assert.equal(listingQuery(11), "sort=mtime&order=desc&format=json");
});

Deno.test("percentile is nearest-rank and 0 for no samples", () => {
  const v = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(v, 50), 50);
  assert.equal(percentile(v, 99), 99);
  assert.equal(percentile(v, 100), 100);
  assert.equal(percentile([7], 99), 7);
  assert.equal(percentile([], 99), 0);
});

Deno.test("parseConfig: mixed-load variants are data, selected by --only like scenarios", () => {
  const cfg = parseConfig([
    "--only=mixed,pool-2",
    "--variant=pool-2:--pool 2 --cache-mb 8",
    "--mixed-duration",
    "3",
    "--cold=touch",
  ]);
  assert.deepEqual([...cfg.only], ["mixed", "pool-2"]);
  assert.deepEqual(cfg.variants.map((v) => v.id), ["pool-0", "pool-default", "pool-2"]);
  assert.deepEqual(cfg.variants[2].args, ["--pool", "2", "--cache-mb", "8"]);
  assert.deepEqual(cfg.variants[0].args, ["--pool", "0"]);
  assert.equal(cfg.mixedDurationS, 3);
  assert.equal(cfg.cold, "touch");
  // A --variant with a built-in id replaces it.
  assert.deepEqual(parseConfig(["--variant=pool-0:--pool 0 --x"]).variants[0].args, [
    "--pool",
    "0",
    "--x",
  ]);
});

Deno.test("mixedReport prints the p99 ratio and listings/s over the pool-0 baseline", () => {
  const wrkResult = (reqPerSec: number, p99Ms: number): WrkResult => ({
    requests: reqPerSec,
    reqPerSec,
    bytesPerSec: 0,
    p50Ms: 1,
    p99Ms,
    socketErrors: 0,
    non2xx: 0,
  });
  const listing = (listingsPerSec: number): ListingStats => ({
    listings: listingsPerSec,
    cold: listingsPerSec,
    stale: 0,
    unverified: 0,
    errors: 0,
    windowMs: 1000,
    listingsPerSec,
    p50Ms: 5,
    p99Ms: 20,
    maxMs: 30,
  });
  const text = mixedReport([
    {
      id: "pool-0",
      label: "pool 0",
      args: [],
      rounds: [],
      alone: wrkResult(1000, 2),
      loaded: wrkResult(500, 8),
      listing: listing(50),
    },
    {
      id: "pool-default",
      label: "pool default",
      args: [],
      rounds: [],
      alone: wrkResult(1000, 2),
      loaded: wrkResult(900, 3),
      listing: listing(150),
    },
  ], { listers: 4, cold: "rename" });
  assert.match(text, /pool 0 .* 4\.00x .* 50\.0 .* 100 %/);
  assert.match(text, /pool default .* 1\.50x .* 150\.0 /);
  assert.match(text, /listings\/s pool default \/ pool 0: 3\.00x/);
});

Deno.test({
  name: "the listing client fetches cold listings from a real server and restores the fixture",
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "ringhttpd-listing-client-" });
    try {
      const dirs = ["a", "b", "c"];
      await makeMixedFixture(root, dirs, 200);
      {
        await using server = await startCluster({ root });
        const { port } = server;
        const opts: ListingClientOptions = {
          base: `http://${HOST}:${port}/`,
          parentDir: `${root}/mixed`,
          parentUrl: "mixed/",
          dirs,
          concurrency: 2,
          cold: "rename",
          t0Ms: Date.UTC(2010, 0, 1),
          touchFile: "entry-0000.txt",
        };
        const client = await startListingClient(opts);
        // A measuring window, not a wait for an event.
        await new Promise((r) => setTimeout(r, 1500));
        const s = await client.stop();
        assert.equal(s.errors, 0, s.firstError);
        assert.ok(s.listings > 0, "no listing in 1.5 s");
        // Renamed before each fetch: every answer was read after its touch.
        assert.equal(s.cold, s.listings);
        assert.ok(s.windowMs >= 1400 && s.windowMs < 10_000, `window ${s.windowMs} ms`);
        assert.ok(s.p50Ms > 0 && s.p50Ms <= s.p99Ms && s.p99Ms <= s.maxMs);
        assert.ok(Math.abs(s.listingsPerSec - (1000 * s.listings) / s.windowMs) < 1e-6);
        assert.ok(
          s.clientCpuPct !== undefined && s.clientCpuPct > 0,
          `client CPU ${s.clientCpuPct}`,
        );
      }
      const names: string[] = [];
      for await (const e of Deno.readDir(`${root}/mixed`)) names.push(e.name);
      assert.deepEqual(names.sort(), dirs);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("mixedSummary takes medians of wrk and listing latencies, sums listing counts", () => {
  const w = (reqPerSec: number, p99Ms: number, socketErrors = 0): WrkResult => ({
    requests: 10,
    reqPerSec,
    bytesPerSec: 0,
    p50Ms: 1,
    p99Ms,
    socketErrors,
    non2xx: 0,
  });
  const l = (listings: number, windowMs: number, p99Ms: number): ListingStats => ({
    listings,
    cold: listings - 1,
    stale: 1,
    unverified: 0,
    errors: 0,
    windowMs,
    listingsPerSec: (1000 * listings) / windowMs,
    p50Ms: 1,
    p99Ms,
    maxMs: p99Ms * 2,
  });
  const s = mixedSummary([
    { alone: w(100, 5), loaded: w(50, 9, 1), listing: l(10, 1000, 20) },
    { alone: w(300, 1), loaded: w(70, 30), listing: l(30, 1000, 40) },
    { alone: w(200, 2), loaded: w(60, 10, 2), listing: l(20, 2000, 30) },
  ]);
  assert.equal(s.alone.reqPerSec, 200);
  assert.equal(s.alone.p99Ms, 2);
  assert.equal(s.loaded.p99Ms, 10);
  assert.equal(s.loaded.socketErrors, 3);
  assert.equal(s.listing.listings, 60);
  assert.equal(s.listing.stale, 3);
  assert.equal(s.listing.listingsPerSec, 15); // 60 in 4 s
  assert.equal(s.listing.p99Ms, 30);
  assert.equal(s.listing.maxMs, 80);
  assert.equal(s.listing.clientCpuPct, undefined);
});
