/**
 * The route-rule stage: CORS preflight (the first rule with `cors`),
 * OPTIONS without it, and rules passed in `HandlerOptions.rules` running
 * before the caches. The CLI end to end: tests/cors_test.ts.
 */
import assert from "node:assert/strict";
import { createHandler, type Rule } from "./handler.ts";
import type { Handler, RequestHead } from "./types.ts";

function req(path: string, method = "GET", headers: string[] = []): RequestHead {
  return { method, target: path, path, query: "", minor: 1, headers: ["host", "x", ...headers] };
}

async function withRoot(fn: (root: string) => Promise<void>) {
  const root = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.writeTextFile(`${root}/a.txt`, "hello");
    await Deno.mkdir(`${root}/private`);
    await Deno.writeTextFile(`${root}/private/s.txt`, "secret");
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

const header = (h: Array<[string, string]>, name: string) =>
  h.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];

const PREFLIGHT = ["origin", "https://app.example", "access-control-request-method", "GET"];

Deno.test("cors: an OPTIONS preflight gets 204 with the Allow-* headers and Max-Age", async () => {
  await withRoot(async (root) => {
    const h = await createHandler({ root, cors: true });
    const asked = ["access-control-request-headers", "range,  if-none-match"];
    for (const path of ["/a.txt", "/missing", "/private/"]) {
      const r = await h(req(path, "OPTIONS", [...PREFLIGHT, ...asked]));
      assert.equal(r.status, 204, path);
      assert.equal(r.length, 0);
      assert.equal(header(r.headers, "access-control-allow-origin"), "*");
      assert.equal(header(r.headers, "access-control-allow-methods"), "GET, HEAD, OPTIONS");
      assert.equal(header(r.headers, "access-control-allow-headers"), "range, if-none-match");
      assert.equal(header(r.headers, "access-control-max-age"), "86400");
      assert.equal(header(r.headers, "allow"), "GET, HEAD, OPTIONS");
    }
    // Asked headers that are not a token list: a safe list instead of an echo.
    const odd = await h(req("/a.txt", "OPTIONS", [
      ...PREFLIGHT,
      "access-control-request-headers",
      "x-a, <script>",
    ]));
    assert.equal(odd.status, 204);
    assert.match(header(odd.headers, "access-control-allow-headers")!, /^Range, If-Match/);
    // None asked: no Allow-Headers at all.
    const none = await h(req("/a.txt", "OPTIONS", PREFLIGHT));
    assert.equal(header(none.headers, "access-control-allow-headers"), undefined);
    // GET still carries Allow-Origin and is served as before.
    const get = await h(req("/a.txt"));
    assert.equal(get.status, 200);
    assert.equal(header(get.headers, "access-control-allow-origin"), "*");
    get.release?.();
  });
});

Deno.test("cors: OPTIONS that is not a preflight, and OPTIONS without cors, keep 405 + Allow", async () => {
  await withRoot(async (root) => {
    const on = await createHandler({ root, cors: true });
    const off = await createHandler({ root });
    const cases: Array<[Handler, string[]]> = [
      [on, []],
      [on, ["origin", "https://app.example"]], // no Access-Control-Request-Method
      [off, PREFLIGHT],
    ];
    for (const [h, headers] of cases) {
      const r = await h(req("/a.txt", "OPTIONS", headers));
      assert.equal(r.status, 405, JSON.stringify(headers));
      assert.equal(header(r.headers, "allow"), "GET, HEAD");
    }
    assert.equal((await off(req("/a.txt", "POST"))).status, 405);
  });
});

Deno.test("rules: run in order before the caches; the first answer wins; async rules are awaited", async () => {
  await withRoot(async (root) => {
    const seen: string[] = [];
    const log: Rule = (r) => {
      seen.push(r.path);
      return undefined;
    };
    const deny: Rule = (r, ctx) => r.path.startsWith("/private/") ? ctx.error(403) : undefined;
    const slowPass: Rule = async () => {
      await new Promise((ok) => setTimeout(ok, 1));
      return undefined;
    };
    const teapot: Rule = (r, ctx) =>
      Promise.resolve(r.path === "/tea" ? ctx.reply(418, [["X-Rule", "tea"]]) : undefined);
    const h = await createHandler({
      root,
      rules: [log, deny, slowPass, teapot],
      headers: [["X-Site", "1"]],
    });
    // Warm the cache, then the rule must still see (and could refuse) the hit.
    for (let i = 0; i < 2; i++) {
      const r = await h(req("/a.txt"));
      assert.equal(r.status, 200);
      r.release?.();
    }
    assert.deepEqual(seen, ["/a.txt", "/a.txt"]);
    const denied = await h(req("/private/s.txt"));
    assert.equal(denied.status, 403);
    assert.equal(header(denied.headers, "x-site"), "1", "rule replies carry the common headers");
    const tea = await h(req("/tea"));
    assert.equal(tea.status, 418);
    assert.equal(header(tea.headers, "x-rule"), "tea");
    // A rule that throws is mapped at the boundary like any error.
    const boom = await createHandler({
      root,
      rules: [() => {
        throw new Error("rule bug");
      }],
    });
    const err = console.error;
    console.error = () => {};
    try {
      assert.equal((await boom(req("/a.txt"))).status, 500);
    } finally {
      console.error = err;
    }
  });
});
