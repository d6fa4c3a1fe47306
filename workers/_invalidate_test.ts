import assert from "node:assert/strict";
import {
  type Invalidatable,
  InvalidationConsumer,
  InvalidationHub,
  RECORD_BYTES,
  RING_RECORDS,
} from "./_invalidate.ts";

/** A target that records what it was told. */
function recorder(): Invalidatable & { seen: string[] } {
  const seen: string[] = [];
  return { seen, invalidate: (p) => seen.push(p), invalidateAll: () => seen.push("*") };
}

Deno.test("invalidation ring: paths arrive in order, relative encoding restores them exactly", () => {
  const hub = new InvalidationHub(2, "/srv/www");
  const paths = [
    "/srv/www/a.txt",
    "/srv/www/dir with space/\u00e9 \u{1f995}.html",
    "/srv/www",
    "/srv/www/",
    "/srv/www/sub/<>&\"'%?#.txt",
  ];
  hub.push(...paths);
  for (const i of [0, 1]) {
    const t = recorder();
    assert.equal(new InvalidationConsumer(hub.slot(i)).poll(t), paths.length);
    assert.deepEqual(t.seen, [paths[0], paths[1], "/srv/www", "/srv/www", paths[4]]);
  }
});

Deno.test("invalidation ring: the filesystem root as served root", () => {
  const hub = new InvalidationHub(1, "/");
  hub.push("/etc/x", "/");
  const t = recorder();
  new InvalidationConsumer(hub.slot(0)).poll(t);
  assert.deepEqual(t.seen, ["/etc/x", "/"]);
});

Deno.test("invalidation ring: what cannot be sent exactly becomes one 'drop everything'", () => {
  const hub = new InvalidationHub(1, "/srv");
  hub.push("/elsewhere/a.txt"); // not under the root
  hub.push("/srv/" + "x".repeat(RECORD_BYTES)); // too long for a record
  hub.push(null); // the watcher lost events
  const c = new InvalidationConsumer(hub.slot(0));
  const t = recorder();
  assert.equal(c.poll(t), 1);
  assert.deepEqual(t.seen, ["*"]);
  assert.equal(c.poll(t), 0, "the flag was taken");
});

Deno.test("invalidation ring: a full ring sets LOST, later records still flow", () => {
  const hub = new InvalidationHub(1, "/srv");
  for (let i = 0; i < RING_RECORDS + 5; i++) hub.push(`/srv/f${i}`);
  const c = new InvalidationConsumer(hub.slot(0));
  const t = recorder();
  assert.equal(c.poll(t), RING_RECORDS + 1);
  assert.equal(t.seen[0], "*");
  assert.deepEqual(t.seen.slice(1), Array.from({ length: RING_RECORDS }, (_, i) => `/srv/f${i}`));
  hub.push("/srv/after");
  t.seen.length = 0;
  c.poll(t);
  assert.deepEqual(t.seen, ["/srv/after"]);
});

Deno.test("invalidation ring: a path repeated while its record is still queued is sent once", () => {
  const hub = new InvalidationHub(1, "/srv");
  for (let i = 0; i < 50; i++) hub.push("/srv/big.bin");
  const c = new InvalidationConsumer(hub.slot(0));
  const t = recorder();
  c.poll(t);
  assert.deepEqual(t.seen, ["/srv/big.bin"]);
  // Consumed: the same path again is a new change and must be sent again.
  hub.push("/srv/big.bin");
  c.poll(t);
  assert.deepEqual(t.seen, ["/srv/big.bin", "/srv/big.bin"]);
});

Deno.test("invalidation ring: check() is a no-op until SEQ moves; guard() applies before the request", async () => {
  const hub = new InvalidationHub(1, "/srv");
  const c = new InvalidationConsumer(hub.slot(0));
  const t = recorder();
  assert.equal(c.check(t), 0);
  hub.push("/srv/a");
  assert.equal(c.check(t), 1);
  assert.equal(c.check(t), 0);
  const order: string[] = [];
  const handler = Object.assign(
    () => {
      order.push("request");
      return { status: 200, headers: [], body: [], length: 0 };
    },
    { invalidate: (p: string) => order.push(p), invalidateAll: () => order.push("*") },
  );
  const c2 = new InvalidationConsumer(hub.slot(0));
  const guarded = c2.guard(handler);
  try {
    hub.push("/srv/b");
    await guarded({ method: "GET", target: "/b", path: "/b", query: "", minor: 1, headers: [] });
    assert.deepEqual(order, ["/srv/b", "request"]);
  } finally {
    c2.stop();
  }
});

Deno.test("invalidation ring: a consumer Worker applies every record exactly once, in order", async () => {
  const hub = new InvalidationHub(1, "/srv");
  const w = new Worker(new URL("./_invalidate_test_worker.ts", import.meta.url), {
    type: "module",
  });
  const got: string[] = [];
  let waiter: (() => void) | undefined;
  w.onmessage = (e: MessageEvent<string>) => {
    got.push(e.data);
    waiter?.();
  };
  const until = async (pred: () => boolean, what: string) => {
    const deadline = Date.now() + 20_000;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${got}`);
      await new Promise<void>((r) => {
        waiter = r;
        setTimeout(r, 50);
      });
    }
  };
  try {
    w.postMessage(hub.slot(0));
    await until(() => got.includes("ready"), "ready");
    got.length = 0;
    // Seeded bursts with pauses, so the consumer both drains batches and sleeps.
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const want: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const p = `/srv/f${i}`;
      want.push(p);
      hub.push(p);
      // Stay well below the ring's capacity: no LOST in this test.
      if (want.length - got.length > RING_RECORDS / 2 || rnd() < 0.01) {
        await until(() => got.length === want.length, `record ${i}`);
      }
    }
    await until(() => got.length === want.length, "all records");
    assert.deepEqual(got, want);
  } finally {
    w.terminate();
  }
});

Deno.test("InvalidationHub.watch: a root it cannot watch gives one notice and false", () => {
  const hub = new InvalidationHub(1, "/nonexistent-ringhttpd-root");
  const lines: string[] = [];
  assert.equal(hub.watch((l) => lines.push(l)), false);
  assert.equal(lines.length, 1);
  assert.match(
    lines[0],
    /^cannot watch \/nonexistent-ringhttpd-root \(.+\); changes on disk show within 1 s$/,
  );
  hub.close();
});

Deno.test("InvalidationHub.watch: a change under the root reaches every slot, by its real path too", async () => {
  const root = await Deno.realPath(await Deno.makeTempDir());
  // inotify may report target/ files as link/...: the real path must be sent as well.
  await Deno.mkdir(`${root}/target`);
  await Deno.symlink(`${root}/target`, `${root}/link`);
  const hub = new InvalidationHub(2, root);
  try {
    assert.equal(hub.watch(() => {}), true);
    const consumers = [0, 1].map((i) => new InvalidationConsumer(hub.slot(i)));
    const seen = [recorder(), recorder()];
    const deadline = Date.now() + 20_000;
    const want = [`${root}/new.txt`, `${root}/target/t.txt`];
    // Written until seen: the watch may need a moment to be in place.
    while (!seen.every((t) => want.every((p) => t.seen.includes(p)))) {
      assert.ok(Date.now() < deadline, `no event; got ${JSON.stringify(seen.map((t) => t.seen))}`);
      await Deno.writeTextFile(`${root}/new.txt`, "x");
      await Deno.writeTextFile(`${root}/target/t.txt`, "x");
      await new Promise((r) => setTimeout(r, 20));
      consumers.forEach((c, i) => c.poll(seen[i]));
    }
  } finally {
    hub.close();
    await Deno.remove(root, { recursive: true });
  }
});
