/**
 * The listing side of the mixed-load scenario of `bench/load.ts`: a separate
 * process (so its work never shares the benchmark's event loop) that fetches
 * 1,000-entry directory listings with a cold cache, as fast as `concurrency`
 * keep-alive connections allow, until its stdin closes; then prints one JSON
 * line of {@linkcode ListingStats}.
 *
 * Protocol: one argument, the JSON {@linkcode ListingClientOptions}. After one
 * warm-up listing per connection it prints `ready`; the measured window runs
 * from then until stdin reaches end of file. Every directory it renamed is
 * renamed back before it exits.
 *
 * Making each listing cold, before every fetch of a directory:
 * - `touch`: set the mtime of one file of that directory (`entry-0000.txt`)
 *   to a time never used before in this run (`t0Ms` + n seconds, n counting
 *   up). A server that serves the page from a cache it did not invalidate
 *   answers with an older Last-Modified. The fetch follows the touch at once,
 *   so a server that invalidates asynchronously (a file watcher) can still
 *   answer some from its cache: this mode measures that path, stale answers
 *   included.
 * - `rename` (touch, and first rename the directory to a name never used
 *   before): the URL is new, so no cache keyed by path can hold it, whatever
 *   its revalidation window or invalidation latency. The default of
 *   `bench/load.ts`: with ringhttpd's 1 s listing revalidation, `touch` alone
 *   left 96 % of listings served from the cache (8 directories, ~200/s).
 *
 * Coldness is checked on every response, not assumed: the listing's
 * Last-Modified is the newest mtime of the directory and its entries, so it
 * equals the touch just made exactly when the server read the directory after
 * that touch (the fixture's other mtimes are older than `t0Ms`). Those are
 * counted as `cold`; an older Last-Modified as `stale`; none at all (nginx's
 * autoindex sends none) as `unverified`. The query cycles over sort x order x
 * format, so every sort and both renderers run.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-read --allow-write=DIR bench/_listing_client.ts '{...}'
 * ```
 *
 * @module
 */

/** What the client is told: where the server is and which directories it may use. */
export interface ListingClientOptions {
  /** Server base URL, ending in `/`, e.g. `http://127.0.0.1:8000/`. */
  base: string;
  /** Filesystem path of the directory holding the listing directories. */
  parentDir: string;
  /** URL path of `parentDir` under `base`, e.g. `mixed/` (empty: the root). */
  parentUrl: string;
  /** Names of the listing directories inside `parentDir`. */
  dirs: string[];
  /** Keep-alive connections, each fetching one listing at a time. */
  concurrency: number;
  /** How each fetch is made cold. */
  cold: "rename" | "touch";
  /** The touch times are `t0Ms` + n seconds; every other fixture mtime must be older. */
  t0Ms: number;
  /** The file touched in each directory. */
  touchFile: string;
  /**
   * Number of the first listing (names `DIR.n`, touch times, queries): a
   * later run against the same server starts past the earlier one's, so it
   * never repeats a name and time the server may have cached. @default 0
   */
  first?: number;
}

/** The measured window's counts and latencies. */
export interface ListingStats {
  /** Listings answered 200 in full within the window. */
  listings: number;
  /** Of those, read from the directory after its touch (Last-Modified says so). */
  cold: number;
  /** Of those, older than the touch: a cached page. */
  stale: number;
  /** Of those, without Last-Modified: coldness not checked. */
  unverified: number;
  /** Non-200 answers and failed fetches. */
  errors: number;
  firstError?: string;
  windowMs: number;
  listingsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const SORTS = ["name", "size", "mtime"] as const;
const ORDERS = ["asc", "desc"] as const;
const FORMATS = ["html", "json"] as const;

/**
 * The query of the n-th listing: cycles through the 12 combinations of sort,
 * order and format.
 *
 * @param n Listing number, from 0.
 * @returns A query string without `?`.
 * @example
 * ```ts
 * import { listingQuery } from "./_listing_client.ts";
 * listingQuery(0); // "sort=name&order=asc"
 * listingQuery(7); // "sort=size&order=desc&format=json"
 * ```
 */
export function listingQuery(n: number): string {
  const sort = SORTS[n % 3];
  const order = ORDERS[Math.floor(n / 3) % 2];
  const format = FORMATS[Math.floor(n / 6) % 2];
  return `sort=${sort}&order=${order}${format === "json" ? "&format=json" : ""}`;
}

/**
 * Nearest-rank percentile of an ascending array; 0 when empty.
 *
 * @param sorted Values in ascending order.
 * @param p Percentile, 0-100.
 * @returns The value at rank ceil(p/100 x length).
 * @example
 * ```ts
 * import { percentile } from "./_listing_client.ts";
 * percentile([1, 2, 3, 4], 50); // 2
 * ```
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** A listing directory: its original name and the name it has now. */
interface Dir {
  original: string;
  current: string;
}

/**
 * Runs the client until `stop` resolves; `onReady` is called when the
 * measured window starts (after one warm-up listing per connection).
 */
export async function runListingClient(
  opts: ListingClientOptions,
  stop: Promise<void>,
  onReady: () => void = () => {},
): Promise<ListingStats> {
  const dirs: Dir[] = opts.dirs.map((d) => ({ original: d, current: d }));
  const concurrency = Math.max(1, Math.min(opts.concurrency, dirs.length));
  let n = opts.first ?? 0;
  let stopped = false;
  let windowStart = 0;
  let windowEnd = 0;
  const latencies: number[] = [];
  const s = { listings: 0, cold: 0, stale: 0, unverified: 0, errors: 0 } as Omit<
    ListingStats,
    "windowMs" | "listingsPerSec" | "p50Ms" | "p99Ms" | "maxMs"
  >;
  const go = Promise.withResolvers<void>();
  let warm = 0;

  /** One cold listing of `d`; `count` false for the warm-up. */
  async function once(d: Dir, client: Deno.HttpClient, count: boolean) {
    const i = n++;
    if (opts.cold === "rename") {
      const next = `${d.original}.${i}`;
      await Deno.rename(`${opts.parentDir}/${d.current}`, `${opts.parentDir}/${next}`);
      d.current = next;
    }
    const touchedMs = opts.t0Ms + i * 1000;
    const t = new Date(touchedMs);
    await Deno.utime(`${opts.parentDir}/${d.current}/${opts.touchFile}`, t, t);
    const url = `${opts.base}${opts.parentUrl}${encodeURIComponent(d.current)}/?${listingQuery(i)}`;
    const started = performance.now();
    let status = 0;
    let lastModified: string | null = null;
    try {
      const res = await fetch(url, { client });
      status = res.status;
      lastModified = res.headers.get("last-modified");
      await res.arrayBuffer();
    } catch (e) {
      if (count && !stopped) {
        s.errors++;
        s.firstError ??= `GET ${url}: ${(e as Error).message}`;
      }
      return;
    }
    const ms = performance.now() - started;
    if (!count || stopped) return;
    if (status !== 200) {
      s.errors++;
      s.firstError ??= `GET ${url}: status ${status}`;
      return;
    }
    s.listings++;
    latencies.push(ms);
    if (lastModified === null) s.unverified++;
    else if (Date.parse(lastModified) === touchedMs) s.cold++;
    else s.stale++;
  }

  async function loop(j: number) {
    // Each connection owns its directories: no two fetches race on a rename.
    const mine = dirs.filter((_, i) => i % concurrency === j);
    const client = Deno.createHttpClient({});
    try {
      await once(mine[0], client, false);
      if (++warm === concurrency) go.resolve();
      await go.promise;
      for (let k = 1; !stopped; k++) await once(mine[k % mine.length], client, true);
    } finally {
      client.close();
    }
  }

  const loops = Array.from({ length: concurrency }, (_, j) => loop(j));
  // A loop only ends before `stopped` by throwing: that ends the run.
  const failed = Promise.race(loops).then(() => {});
  failed.catch(() => {}); // handled by the races below, or by Promise.all
  try {
    await Promise.race([go.promise, failed]);
    windowStart = performance.now();
    onReady();
    await Promise.race([stop, failed]);
    windowEnd = performance.now();
    stopped = true;
    await Promise.all(loops);
  } finally {
    stopped = true;
    await Promise.allSettled(loops);
    for (const d of dirs) {
      if (d.current !== d.original) {
        await Deno.rename(`${opts.parentDir}/${d.current}`, `${opts.parentDir}/${d.original}`);
      }
    }
  }
  latencies.sort((a, b) => a - b);
  const windowMs = windowEnd - windowStart;
  return {
    ...s,
    windowMs,
    listingsPerSec: windowMs > 0 ? (1000 * s.listings) / windowMs : 0,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? 0,
  };
}

if (import.meta.main) {
  const opts = JSON.parse(Deno.args[0]) as ListingClientOptions;
  // The window ends when the benchmark closes our stdin.
  const stop = (async () => {
    for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
  })();
  const stats = await runListingClient(opts, stop, () => console.log("ready"));
  console.log(JSON.stringify(stats));
}
