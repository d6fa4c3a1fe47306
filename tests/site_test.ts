/**
 * Site rules end to end (#13): the real CLI, asked by curl. Each test starts
 * one server with the rules it checks and removes what it made.
 */
import assert from "node:assert/strict";
import { runCli, type ServerProcess, startCli } from "./_harness.ts";
import { checkRedirects } from "../options/redirects.ts";

const dec = new TextDecoder();

/** One curl exchange: status, headers (lower-cased names), body. */
interface Got {
  status: number;
  headers: Map<string, string[]>;
  body: string;
}

/** `curl -si` ARGS against `server`'s PATH; the last response of the output. */
async function curl(server: ServerProcess, path: string, ...args: string[]): Promise<Got> {
  const out = await new Deno.Command("curl", {
    args: ["-si", "--max-time", "30", ...args, `http://${server.hostname}:${server.port}${path}`],
  }).output();
  assert.equal(out.code, 0, dec.decode(out.stderr));
  let text = dec.decode(out.stdout);
  // -L: the responses one after the other; keep the last.
  while (args.includes("-L") && /^HTTP\/1\.1 3\d\d /.test(text)) {
    text = text.slice(text.indexOf("\r\n\r\n") + 4);
  }
  const end = text.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const headers = new Map<string, string[]>();
  for (const l of lines) {
    const c = l.indexOf(":");
    const k = l.slice(0, c).toLowerCase();
    headers.set(k, [...(headers.get(k) ?? []), l.slice(c + 1).trim()]);
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body: text.slice(end + 4) };
}

const one = (g: Got, name: string): string | undefined => {
  const v = g.headers.get(name);
  assert.ok(v === undefined || v.length === 1, `${name} sent ${v?.length} times`);
  return v?.[0];
};

async function withRoot(files: Record<string, string>, fn: (root: string) => Promise<void>) {
  const root = await Deno.makeTempDir();
  try {
    for (const [name, text] of Object.entries(files)) {
      const at = `${root}/${name}`;
      await Deno.mkdir(at.slice(0, at.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(at, text);
    }
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("site: nosniff on every reply by default (200, 304, 404), once; --no-nosniff drops it; -H wins", async () => {
  await withRoot({ "a.txt": "hello" }, async (root) => {
    {
      await using server = await startCli([root, "--workers", "1"]);
      const ok = await curl(server, "/a.txt");
      assert.equal(ok.status, 200);
      assert.equal(one(ok, "x-content-type-options"), "nosniff");
      const etag = one(ok, "etag")!;
      const again = await curl(server, "/a.txt"); // a cache hit: the frozen reply
      assert.equal(one(again, "x-content-type-options"), "nosniff");
      const nm = await curl(server, "/a.txt", "-H", `If-None-Match: ${etag}`);
      assert.equal(nm.status, 304);
      assert.equal(one(nm, "x-content-type-options"), "nosniff");
      const missing = await curl(server, "/nope");
      assert.equal(missing.status, 404);
      assert.equal(one(missing, "x-content-type-options"), "nosniff");
      assert.equal(one(ok, "cross-origin-opener-policy"), undefined);
    }
    {
      await using server = await startCli([root, "--workers", "1", "--no-nosniff"]);
      const ok = await curl(server, "/a.txt");
      assert.equal(ok.status, 200);
      assert.equal(one(ok, "x-content-type-options"), undefined);
    }
    {
      await using server = await startCli([
        root,
        "--workers",
        "1",
        "--coop-coep",
        "-H",
        "X-Content-Type-Options: nosniff",
      ]);
      const ok = await curl(server, "/a.txt");
      assert.equal(one(ok, "x-content-type-options"), "nosniff"); // once: -H replaced ours
      assert.equal(one(ok, "cross-origin-opener-policy"), "same-origin");
      assert.equal(one(ok, "cross-origin-embedder-policy"), "require-corp");
      assert.equal(one(ok, "cross-origin-resource-policy"), undefined);
      const head = await curl(server, "/nope", "-I");
      assert.equal(head.status, 404);
      assert.equal(one(head, "cross-origin-embedder-policy"), "require-corp");
    }
  });
});

Deno.test("site: --coop-coep and --no-nosniff take no value; config keys must be booleans (exit 2)", async () => {
  await withRoot({}, async (root) => {
    const r = await runCli([root, "--coop-coep=yes"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--coop-coep takes no value, got "--coop-coep=yes"/);
    await Deno.writeTextFile(`${root}/c.jsonc`, '{ "nosniff": "no" }');
    const c = await runCli([root, "--config", `${root}/c.jsonc`]);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /nosniff must be true or false, got "no"/);
  });
});

Deno.test("site: --404 FILE is the body of every 404 (missing, dir without listing, bad path, HEAD without body); 403/405 untouched", async () => {
  await withRoot({ "a.txt": "hello", "d/x.txt": "x", "locked.txt": "no" }, async (root) => {
    const pages = await Deno.makeTempDir(); // outside the root
    try {
      await Deno.writeTextFile(`${pages}/gone.html`, "<h1>Nothing here</h1>");
      await Deno.chmod(`${root}/locked.txt`, 0o000);
      await using server = await startCli([
        root,
        "--workers",
        "1",
        "--no-dir-listing",
        "--404",
        `${pages}/gone.html`,
      ]);
      for (const path of ["/nope", "/d/", "/a.txt/", "/gone.html"]) {
        const g = await curl(server, path);
        assert.equal(g.status, 404, path);
        assert.equal(g.body, "<h1>Nothing here</h1>", path);
        assert.equal(one(g, "content-type"), "text/html; charset=utf-8", path);
        assert.equal(one(g, "content-length"), "21", path);
        assert.equal(one(g, "x-content-type-options"), "nosniff", path);
      }
      const head = await curl(server, "/nope", "-I");
      assert.equal(head.status, 404);
      assert.equal(one(head, "content-length"), "21");
      assert.equal(head.body, "");
      assert.equal((await curl(server, "/a.txt")).body, "hello");
      if (Deno.uid() !== 0) {
        const locked = await curl(server, "/locked.txt");
        assert.equal(locked.status, 403);
        assert.doesNotMatch(locked.body, /Nothing here/);
      }
      const post = await curl(server, "/nope", "-X", "DELETE");
      assert.equal(post.status, 405);
      assert.doesNotMatch(post.body, /Nothing here/);
    } finally {
      await Deno.chmod(`${root}/locked.txt`, 0o644);
      await Deno.remove(pages, { recursive: true });
    }
  });
});

Deno.test("site: --404 with a missing file or a directory exits 1 naming it; with no value exits 2", async () => {
  await withRoot({}, async (root) => {
    const missing = await runCli([root, "--404", `${root}/none.html`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /notFoundPage ".*none\.html": no such file/);
    const dir = await runCli([root, "--404", root]);
    assert.equal(dir.code, 1);
    assert.match(dir.stderr, /is not a file/);
    const none = await runCli([root, "--404"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--404 needs a value/);
  });
});

Deno.test("site: --spa answers page navigations that find nothing with index.html (200, 304), assets keep 404", async () => {
  const files = { "index.html": "<h1>app</h1>", "app.js": "js", "docs/page.html": "doc" };
  await withRoot(files, async (root) => {
    await Deno.writeTextFile(`${root}/404.html`, "custom");
    await using server = await startCli([
      root,
      "--workers",
      "1",
      "--spa",
      "--404",
      `${root}/404.html`,
    ]);
    const html = ["-H", "Accept: text/html,application/xhtml+xml,*/*;q=0.8"];
    for (const path of ["/settings", "/users/42/", "/old.html", "/deep/a/b?x=1"]) {
      const g = await curl(server, path, ...html);
      assert.equal(g.status, 200, path);
      assert.equal(g.body, "<h1>app</h1>", path);
      assert.equal(one(g, "content-type"), "text/html; charset=utf-8");
    }
    const first = await curl(server, "/settings", ...html);
    const etag = one(first, "etag")!;
    const nm = await curl(server, "/elsewhere", ...html, "-H", `If-None-Match: ${etag}`);
    assert.equal(nm.status, 304);
    const head = await curl(server, "/settings", ...html, "-I");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    // Assets, non-navigations and real files.
    const asset = await curl(server, "/missing.js", ...html);
    assert.equal(asset.status, 404);
    assert.equal(asset.body, "custom");
    const api = await curl(server, "/api/users", "-H", "Accept: application/json");
    assert.equal(api.status, 404);
    assert.equal(api.body, "custom");
    assert.equal((await curl(server, "/app.js", ...html)).body, "js");
    assert.equal((await curl(server, "/docs/page.html", ...html)).body, "doc");
    assert.equal((await curl(server, "/nope", "-X", "DELETE", ...html)).status, 405);
  });
});

Deno.test("site: --spa=FILE serves that file; a missing one exits 1; a path out of the root is refused", async () => {
  await withRoot({ "shell.html": "<p>shell</p>", "index.html": "index" }, async (root) => {
    {
      await using server = await startCli([root, "--workers", "1", "--spa=shell.html"]);
      const g = await curl(server, "/route", "-H", "Accept: text/html");
      assert.equal(g.status, 200);
      assert.equal(g.body, "<p>shell</p>");
    }
    const missing = await runCli([root, "--spa=app.html"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /spa "app\.html": no such file under the root/);
    const out = await runCli([root, "--spa=../etc/passwd"]);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /must be a file name under the root/);
    const empty = await runCli([root, "--spa="]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /--spa must be true, false or a file name under the root, got ""/);
  });
});

Deno.test("site: --cache-control by kind on 200, HEAD, 206 and 304 (cached and streamed files); overrides; -H wins", async () => {
  const files = {
    "index.html": "<p>i</p>",
    "assets/main.7f3e9a1c.chunk.js": "js",
    "assets/index-B4x9Qa1z.css": "css",
    "photo-20240101.jpg": "jpg",
    "big.bin": "x".repeat(200_000), // past the cache's file limit: streamed
  };
  await withRoot(files, async (root) => {
    {
      await using server = await startCli([root, "--workers", "1", "--cache-control"]);
      const cases: Array<[string, string]> = [
        ["/", "no-cache"],
        ["/index.html", "no-cache"],
        ["/assets/main.7f3e9a1c.chunk.js", "public, max-age=31536000, immutable"],
        ["/assets/index-B4x9Qa1z.css", "public, max-age=31536000, immutable"],
        ["/photo-20240101.jpg", "public, max-age=300"],
        ["/big.bin", "public, max-age=300"],
      ];
      for (const [path, want] of cases) {
        for (let i = 0; i < 2; i++) { // a miss, then a hit (frozen reply)
          const g = await curl(server, path);
          assert.equal(g.status, 200, path);
          assert.equal(one(g, "cache-control"), want, path);
        }
        const etag = one(await curl(server, path, "-I"), "etag")!;
        const nm = await curl(server, path, "-H", `If-None-Match: ${etag}`);
        assert.equal(nm.status, 304, path);
        assert.equal(one(nm, "cache-control"), want, `304 of ${path}`);
        const part = await curl(server, path, "-H", "Range: bytes=0-0");
        assert.equal(part.status, 206, path);
        assert.equal(one(part, "cache-control"), want, `206 of ${path}`);
      }
      assert.equal(one(await curl(server, "/nope"), "cache-control"), undefined);
    }
    {
      await using server = await startCli([
        root,
        "--workers",
        "1",
        "--cache-control=html:no-store",
        "--cache-control=other:none",
      ]);
      assert.equal(one(await curl(server, "/index.html"), "cache-control"), "no-store");
      assert.equal(one(await curl(server, "/photo-20240101.jpg"), "cache-control"), undefined);
      assert.equal(
        one(await curl(server, "/assets/main.7f3e9a1c.chunk.js"), "cache-control"),
        "public, max-age=31536000, immutable",
      );
    }
    {
      await using server = await startCli([
        root,
        "--workers",
        "1",
        "--cache-control",
        "-H",
        "Cache-Control: max-age=1",
      ]);
      assert.equal(one(await curl(server, "/index.html"), "cache-control"), "max-age=1");
    }
  });
});

Deno.test("site: bad --cache-control values and config entries exit 2 naming them", async () => {
  await withRoot({}, async (root) => {
    for (
      const bad of ["--cache-control=css:no-cache", "--cache-control=html", "--cache-control=html:"]
    ) {
      const r = await runCli([root, bad]);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /--cache-control must be html:VALUE/, bad);
    }
    await Deno.writeTextFile(`${root}/c.jsonc`, '{ "cacheControl": { "htm": "no-cache" } }');
    const c = await runCli([root, "--config", `${root}/c.jsonc`]);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /cacheControl must be true, false or an object of "html"/);
  });
});

Deno.test("site: config redirects: exact, /** with :splat and the query, absolute URLs; no open redirect", async () => {
  await withRoot({ "new.html": "new" }, async (root) => {
    await Deno.writeTextFile(
      `${root}/site.jsonc`,
      JSON.stringify({
        redirects: [
          { from: "/old.html", to: "/new.html" },
          { from: "/blog/**", to: "/posts/:splat", status: 308 },
          { from: "/blog/special", to: "/special", status: 302 },
          { from: "/any/**", to: "/:splat", status: 307 },
          { from: "/chat", to: "https://chat.example.org/room?x=1", status: 302 },
          { from: "/ext/**", to: "https://docs.example.org/v2/:splat" },
        ],
      }),
    );
    await using server = await startCli([root, "--workers", "1", "--config", `${root}/site.jsonc`]);
    const cases: Array<[string, number, string]> = [
      ["/old.html", 301, "/new.html"],
      ["/old.html?q=1", 301, "/new.html?q=1"],
      ["/blog/", 308, "/posts/"],
      ["/blog/2024/a%20b.html?p=2", 308, "/posts/2024/a%20b.html?p=2"],
      ["/blog/special", 302, "/special"],
      ["/chat?y=2", 302, "https://chat.example.org/room?x=1"],
      ["/ext/a/b", 301, "https://docs.example.org/v2/a/b"],
      ["/any//evil.example/x", 307, "/evil.example/x"],
      ["/any/%2F%2Fevil.example", 307, "/%2F%2Fevil.example"],
    ];
    for (const [path, status, location] of cases) {
      const g = await curl(server, path, "--path-as-is");
      assert.equal(g.status, status, path);
      assert.equal(one(g, "location"), location, path);
      assert.equal(one(g, "x-content-type-options"), "nosniff", path);
    }
    const head = await curl(server, "/old.html", "-I");
    assert.equal(head.status, 301);
    assert.equal((await curl(server, "/blog")).status, 404); // the prefix is "/blog/"
    assert.equal((await curl(server, "/new.html")).body, "new");
    // curl follows a relative redirect to the file.
    const followed = await curl(server, "/old.html", "-L");
    assert.equal(followed.status, 200);
    assert.equal(followed.body, "new");
  });
});

Deno.test("site: a bad redirect is refused naming the rule; in the config file, exit 2", async () => {
  await withRoot({}, async (root) => {
    const bad: Array<[unknown, RegExp]> = [
      [{ from: "/a", to: "//evil.example" }, /redirects\[1\]\.to must not start with "\/\/"/],
      [{ from: "/a", to: "/\\evil.example" }, /redirects\[1\]\.to must not start with/],
      [
        { from: "/a", to: "javascript:alert(1)" },
        /redirects\[1\]\.to must be a path .* http\(s\) URL/,
      ],
      [
        { from: "/a/**", to: "https://x:splat" },
        /redirects\[1\]\.to must put ":splat" after the host/,
      ],
      [{ from: "/a", to: "/b/:splat" }, /redirects\[1\]\.to uses ":splat" but "from" does not end/],
      [{ from: "a", to: "/b" }, /redirects\[1\]\.from must be a URL path starting with "\/"/],
      [{ from: "/a*b", to: "/b" }, /redirects\[1\]\.from may hold "\*" only as a final/],
      [
        { from: "/a", to: "/b", status: 303 },
        /redirects\[1\]\.status must be 301, 302, 307 or 308, got 303/,
      ],
      [{ from: "/x", to: "/b" }, /redirects\[1\]\.from repeats an earlier rule's/],
      [{ from: "/a", to: "/b", code: 301 }, /redirects\[1\]\.code is not a redirect key/],
    ];
    for (const [rule, want] of bad) {
      assert.throws(() => checkRedirects([{ from: "/x", to: "/y" }, rule]), want);
    }
    // The CLI says the same, exit 2, for the config file (two of them: a process each).
    for (const [rule, want] of [bad[0], bad[7]]) {
      await Deno.writeTextFile(
        `${root}/c.json`,
        JSON.stringify({ redirects: [{ from: "/x", to: "/y" }, rule] }),
      );
      const r = await runCli([root, "--config", `${root}/c.json`]);
      assert.equal(r.code, 2, JSON.stringify(rule));
      assert.match(r.stderr, want);
    }
  });
});

Deno.test("site: --health-path answers JSON (GET, HEAD; 405 otherwise), wins over a file, is not logged unless --health-log", async () => {
  await withRoot({ "a.txt": "hello", "healthz": "a file" }, async (root) => {
    for (const healthLog of [false, true]) {
      // One worker: its log ring is FIFO, so the probes' lines come before a later request's.
      const flags = [root, "--workers", "1", "--pool", "1", "-v", "--health-path", "/healthz"];
      await using server = await startCli(healthLog ? [...flags, "--health-log"] : flags);
      if (!healthLog) await server.stderr.waitFor(/the health page \/healthz hides the file/);
      const g = await curl(server, "/healthz?probe=1");
      assert.equal(g.status, 200);
      assert.equal(one(g, "content-type"), "application/json");
      assert.equal(one(g, "cache-control"), "no-store");
      assert.deepEqual(JSON.parse(g.body), {
        status: "ok",
        workers: { alive: 1, total: 1 },
        pool: { alive: 1, total: 1 },
      });
      const head = await curl(server, "/healthz", "-I");
      assert.equal(head.status, 200);
      assert.equal(head.body, "");
      assert.equal((await curl(server, "/healthz", "-X", "DELETE")).status, 405);
      // A request after the probes: once its line is out, the probes' would be too.
      await curl(server, "/a.txt");
      await server.stdout.waitFor(/"GET \/a\.txt HTTP\/1\.1" 200/);
      const logged = server.stdout.lines.filter((l) => l.includes("/healthz"));
      assert.equal(logged.length, healthLog ? 3 : 0, logged.join("\n"));
    }
  });
});

Deno.test("site: a bad --health-path, or the metrics path, exits 2", async () => {
  await withRoot({}, async (root) => {
    const bad = await runCli([root, "--health-path", "healthz"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--health-path must start with "\/"/);
    const same = await runCli([root, "--health-path", "/m", "--metrics-path", "/m"]);
    assert.equal(same.code, 2);
    assert.match(same.stderr, /--health-path and --metrics-path must differ, got both "\/m"/);
  });
});

Deno.test("site: bad --rate-limit values and config entries exit 2 naming them", async () => {
  await withRoot({}, async (root) => {
    for (const bad of ["100", "0/s", "10/s:0", "1/m"]) {
      const r = await runCli([root, "--rate-limit", bad]);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /--rate-limit must be N\/s or N\/s:BURST/, bad);
    }
    await Deno.writeTextFile(`${root}/c.jsonc`, '{ "rateLimit": 100 }');
    const c = await runCli([root, "--config", `${root}/c.jsonc`]);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /rateLimit must be N\/s or N\/s:BURST .*, got 100/);
  });
});

Deno.test("site: --rate-limit is one count per client across workers: the burst, then 429 + Retry-After; others go on", async () => {
  await withRoot({ "a.txt": "hello" }, async (root) => {
    // 0.01/s: no refill during the test however slow the machine. Two workers, a new
    // connection per curl: the acceptor alternates them, so a per-worker count would allow 6.
    await using server = await startCli([
      root,
      "--workers",
      "2",
      "--rate-limit",
      "0.01/s:3",
      "--health-path",
      "/healthz",
    ]);
    const statuses: number[] = [];
    let limited: Got | undefined;
    for (let i = 0; i < 6; i++) {
      const g = await curl(server, "/a.txt");
      statuses.push(g.status);
      if (g.status === 429) limited ??= g;
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429]);
    const wait = Number(one(limited!, "retry-after"));
    assert.ok(wait >= 90 && wait <= 100, `Retry-After ${wait}`);
    // Another client address (127.0.0.2 reaches a 127.0.0.1 listener over loopback).
    const other = await curl(server, "/a.txt", "--interface", "127.0.0.2");
    assert.equal(other.status, 200);
    // Probes answer in front of the limit.
    assert.equal((await curl(server, "/healthz")).status, 200);
  });
});

Deno.test("site: a hidden path answers exactly like a missing one under --404 and --spa", async () => {
  await withRoot(
    { "index.html": "<p>app</p>", "secret/plan.txt": "s", "secret/page": "p" },
    async (root) => {
      await Deno.writeTextFile(`${root}/404.html`, "custom 404");
      await Deno.writeTextFile(
        `${root}/c.json`,
        JSON.stringify({ rules: [{ path: "/secret/**", hidden: true }] }),
      );
      await using server = await startCli([
        root,
        "--workers",
        "1",
        "--config",
        `${root}/c.json`,
        "--404",
        `${root}/404.html`,
        "--spa",
      ]);
      const strip = (g: Got) => {
        const h = new Map(g.headers);
        h.delete("date");
        return { status: g.status, headers: [...h].sort(), body: g.body };
      };
      // An asset: the 404 page, the same for hidden and missing.
      const hidden = await curl(server, "/secret/plan.txt");
      const missing = await curl(server, "/secret/none.txt");
      assert.equal(hidden.status, 404);
      assert.equal(hidden.body, "custom 404");
      assert.deepEqual(strip(hidden), strip(missing));
      // A navigation: the app page, the same for hidden and missing; nothing of the hidden file.
      const html = ["-H", "Accept: text/html"];
      const hiddenNav = await curl(server, "/secret/page", ...html);
      const missingNav = await curl(server, "/secret/other", ...html);
      assert.equal(hiddenNav.status, 200);
      assert.equal(hiddenNav.body, "<p>app</p>");
      assert.deepEqual(strip(hiddenNav), strip(missingNav));
    },
  );
});

Deno.test("site: a path rule's cacheControl wins over --cache-control's kind default, on 200 and 304", async () => {
  await withRoot({ "assets/app.3f9a1c2b.js": "js", "page.html": "p" }, async (root) => {
    await Deno.writeTextFile(
      `${root}/c.json`,
      JSON.stringify({ rules: [{ path: "/assets/**", cacheControl: "max-age=5" }] }),
    );
    await using server = await startCli([
      root,
      "--workers",
      "1",
      "--config",
      `${root}/c.json`,
      "--cache-control",
    ]);
    const ok = await curl(server, "/assets/app.3f9a1c2b.js");
    assert.equal(one(ok, "cache-control"), "max-age=5");
    const nm = await curl(
      server,
      "/assets/app.3f9a1c2b.js",
      "-H",
      `If-None-Match: ${one(ok, "etag")}`,
    );
    assert.equal(nm.status, 304);
    assert.equal(one(nm, "cache-control"), "max-age=5");
    assert.equal(one(await curl(server, "/page.html"), "cache-control"), "no-cache");
  });
});
