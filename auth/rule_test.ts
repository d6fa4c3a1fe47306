import assert from "node:assert/strict";
import { ConnectionSet, reasonPhrase, serveDenoConn } from "../http/engine.ts";
import type { Handler, Reply, RequestHead } from "../http/types.ts";
import { allocateAttempts, Attempts } from "./attempts.ts";
import { credentialFromFlag, readHtpasswd } from "./htpasswd.ts";
import { type AuthenticatedRequest, authRule, publicMatcher, type RuleContext } from "./rule.ts";
import { hashToken, parseTokens } from "./tokens.ts";
import { Verifier } from "./verify.ts";
import { htpasswd, withDir } from "./_test_util.ts";

const enc = new TextEncoder();
const text = (status: number, headers: Array<[string, string]>, body: string): Reply => {
  const b = enc.encode(body);
  return { status, headers, body: [b], length: b.length };
};
/** A RuleContext like the pipeline's: plain-text errors. */
const ctx: RuleContext = {
  root: "/srv",
  reply: (status, headers, body = [], length = 0) => ({ status, headers, body, length }),
  error: (status, extra = []) =>
    text(
      status,
      [["Content-Type", "text/plain; charset=utf-8"], ...extra],
      `${status} ${reasonPhrase(status)}`,
    ),
};
const req = (path: string, auth?: string, remote = "192.0.2.1"): AuthenticatedRequest => ({
  method: "GET",
  target: path,
  path,
  query: "",
  minor: 1,
  headers: auth === undefined ? ["host", "x"] : ["host", "x", "authorization", auth],
  remote: { address: remote },
});
const basic = (u: string, p: string) =>
  "Basic " + btoa(String.fromCharCode(...enc.encode(`${u}:${p}`)));
const headerValues = (r: Reply, name: string) =>
  r.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);

async function setup(threshold = 3) {
  const tokens = parseTokens(enc.encode(`ci:${await hashToken("T0KEN")}\n`), "t");
  const verifier = new Verifier({
    users: new Map([["al", credentialFromFlag("al:pw", 4)]]),
    tokens,
  });
  const attempts = new Attempts(allocateAttempts({ threshold }));
  const rule = authRule({
    verifier,
    attempts,
    realm: 'my "site"',
    public: ["/pub/**", "/robots.txt"],
  });
  return { verifier, attempts, rule };
}

Deno.test("auth rule: no credentials get 401 with the Basic (UTF-8) and Bearer challenges", async () => {
  const { verifier, rule } = await setup();
  using _ = verifier;
  const r = await rule(req("/a.txt"), ctx) as Reply;
  assert.equal(r.status, 401);
  assert.deepEqual(headerValues(r, "www-authenticate"), [
    'Basic realm="my \\"site\\"", charset="UTF-8"',
    'Bearer realm="my \\"site\\""',
  ]);
  assert.deepEqual(headerValues(r, "cache-control"), ["no-store"]);
  // Without tokens only Basic is offered.
  using v2 = new Verifier({ users: new Map() });
  const only = authRule({ verifier: v2 })(req("/"), ctx) as Reply;
  assert.deepEqual(headerValues(only, "www-authenticate"), [
    'Basic realm="ringhttpd", charset="UTF-8"',
  ]);
});

Deno.test("auth rule: valid Basic and Bearer pass with the name attached, then from the cache synchronously", async () => {
  const { verifier, rule } = await setup();
  using _ = verifier;
  const a = req("/a.txt", basic("al", "pw"));
  assert.equal(await rule(a, ctx), undefined);
  assert.equal(a.user, "al");
  const again = req("/b.txt", basic("al", "pw"));
  // Cached: answered without a promise.
  assert.equal(rule(again, ctx), undefined);
  assert.equal(again.user, "al");
  const t = req("/a.txt", "Bearer T0KEN");
  assert.equal(await rule(t, ctx), undefined);
  assert.equal(t.user, "ci");
  assert.equal(((await rule(req("/a.txt", "Bearer nope"), ctx)) as Reply).status, 401);
});

Deno.test("auth rule: wrong passwords count per address; past the threshold 429 + Retry-After, before any hash", async () => {
  const { verifier, attempts, rule } = await setup(3);
  using _ = verifier;
  for (let i = 0; i < 2; i++) {
    assert.equal(((await rule(req("/", basic("al", `bad${i}`)), ctx)) as Reply).status, 401);
  }
  // Malformed values count too (no free guesses).
  const third = (await rule(req("/", "Basic !!"), ctx)) as Reply;
  assert.equal(third.status, 429);
  const wait = Number(headerValues(third, "retry-after")[0]);
  assert.ok(wait >= 1 && wait <= 61, String(wait));
  // Blocked: answered at once (no promise, no Worker job), even with the right password.
  const blocked = rule(req("/", basic("al", "pw")), ctx) as Reply;
  assert.equal(blocked.status, 429);
  // Another address is not affected; a cached client is not either.
  assert.equal(await rule(req("/", basic("al", "pw"), "192.0.2.2"), ctx), undefined);
  assert.equal(rule(req("/", basic("al", "pw")), ctx), undefined);
  assert.deepEqual(attempts.counts("192.0.2.2"), [0, 0]);
  // No credentials at all is not an attempt.
  for (let i = 0; i < 5; i++) {
    assert.equal((rule(req("/", undefined, "192.0.2.3"), ctx) as Reply).status, 401);
  }
  assert.deepEqual(attempts.counts("192.0.2.3"), [0, 0]);
  // An unknown address is not counted (else one guesser would block everyone).
  const anon = req("/", basic("al", "bad"));
  delete anon.remote;
  for (let i = 0; i < 5; i++) assert.equal(((await rule(anon, ctx)) as Reply).status, 401);
});

Deno.test("auth rule: a full verify queue answers 503 + Retry-After and counts no failure", async () => {
  using verifier = new Verifier({
    users: new Map([["al", credentialFromFlag("al:pw", 4)]]),
    maxPending: 1,
  });
  const attempts = new Attempts(allocateAttempts({ threshold: 1 }));
  const rule = authRule({ verifier, attempts });
  const first = rule(req("/", basic("al", "pw"), "192.0.2.10"), ctx);
  const second = (await rule(req("/", basic("al", "x"), "192.0.2.11"), ctx)) as Reply;
  assert.equal(second.status, 503);
  assert.deepEqual(headerValues(second, "retry-after"), ["1"]);
  assert.deepEqual(attempts.counts("192.0.2.11"), [0, 0]);
  assert.equal(await first, undefined);
});

Deno.test("auth rule: --public globs exempt paths; traversal and encoded tricks never do", async () => {
  const { verifier, rule } = await setup();
  using _ = verifier;
  for (
    // "/pub" itself too: `**` matches zero segments (and /pub only redirects to /pub/).
    const p of [
      "/pub",
      "/pub/",
      "/pub/a/b/c.css",
      "/pub/.well-known/x",
      "/robots.txt",
      "/pub/caf%C3%A9.txt",
    ]
  ) {
    assert.equal(rule(req(p), ctx), undefined, p);
  }
  for (
    const p of [
      "/",
      "/pubx/a",
      "/robots.txt.bak",
      "/pub/../secret.txt",
      "/pub/%2e%2e/secret.txt",
      "/pub/..%2Fsecret.txt",
      "/pub%2F../secret.txt",
      "/pub/%E0%A4%A",
      "/pub/a%5C..%5Csecret",
      "/pub/./a",
      "/pub/a%00.css",
    ]
  ) {
    assert.equal((rule(req(p), ctx) as Reply | undefined)?.status, 401, p);
  }
  assert.throws(
    () => publicMatcher(["assets/**"]),
    /--public must start with "\/", got "assets\/\*\*"/,
  );
  assert.throws(() => publicMatcher(["/a/[b"]), /--public "\/a\/\[b": /);
});

Deno.test("auth rule: the Authorization value never reaches a log line or a reply", async () => {
  const secret = "Sup3rS3cretPassw0rd";
  const logged: string[] = [];
  const saved = { ...console };
  for (const k of ["log", "error", "warn", "info", "debug"] as const) {
    console[k] = (...args: unknown[]) => logged.push(args.map(String).join(" "));
  }
  const replies: Reply[] = [];
  try {
    const { verifier, rule } = await setup(2);
    using _ = verifier;
    const values = [
      basic("al", secret),
      basic(secret, secret),
      "Basic " + secret,
      "Bearer " + secret,
      "Basic " + btoa(secret + ":" + secret).repeat(200),
      secret,
    ];
    for (const v of values) replies.push(await rule(req("/", v, "198.51.100.7"), ctx) as Reply);
    // Also once the verify Worker is closed.
    verifier.close();
    replies.push(await rule(req("/", basic("al", secret), "198.51.100.8"), ctx) as Reply);
  } finally {
    Object.assign(console, saved);
  }
  assert.ok(replies.every((r) => r.status === 401 || r.status === 429));
  const seen = logged.join("\n") +
    JSON.stringify(
      replies.map((r) => [r.headers, new TextDecoder().decode(r.body[0] as Uint8Array)]),
    );
  assert.ok(!seen.includes(secret), seen);
  assert.ok(!seen.includes(btoa(`al:${secret}`)), seen);
});

Deno.test("auth rule: real clients (curl -u, wget --user, curl Bearer) against a server built on the engine", async () => {
  await withDir(async (dir) => {
    await htpasswd("-cbB", `${dir}/users`, "alice", "wonder land");
    await htpasswd("-bm", `${dir}/users`, "bob", "b0b");
    const token = "rclone.T0ken_1";
    const verifier = new Verifier({
      users: await readHtpasswd(`${dir}/users`),
      tokens: parseTokens(enc.encode(`rclone:${await hashToken(token)}\n`), "t"),
    });
    const rule = authRule({
      verifier,
      attempts: new Attempts(allocateAttempts({ threshold: 3 })),
      realm: "files",
      public: ["/pub/**"],
    });
    const set = new ConnectionSet();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const served: Promise<void>[] = [];
    const accepting = (async () => {
      for await (const conn of listener) {
        const remote = (conn.remoteAddr as Deno.NetAddr).hostname;
        const handler: Handler = async (head: RequestHead) => {
          const r = head as AuthenticatedRequest;
          r.remote = { address: remote };
          const answer = await rule(r, ctx);
          return answer ??
            text(200, [["Content-Type", "text/plain"]], `hello ${r.user ?? "anyone"}\n`);
        };
        served.push(serveDenoConn(conn, handler, set));
      }
    })();
    const url = `http://127.0.0.1:${listener.addr.port}`;
    const run = async (cmd: string, ...args: string[]) => {
      const o = await new Deno.Command(cmd, { args, stdin: "null" }).output();
      return {
        code: o.code,
        out: new TextDecoder().decode(o.stdout),
        err: new TextDecoder().decode(o.stderr),
      };
    };
    try {
      assert.equal(
        (await run("curl", "-sS", "-u", "alice:wonder land", `${url}/a`)).out,
        "hello alice\n",
      );
      assert.equal((await run("curl", "-sS", "-u", "bob:b0b", `${url}/a`)).out, "hello bob\n");
      assert.equal(
        (await run("curl", "-sS", "-H", `Authorization: Bearer ${token}`, `${url}/a`)).out,
        "hello rclone\n",
      );
      assert.equal((await run("curl", "-sS", `${url}/pub/x`)).out, "hello anyone\n");
      // wget sends credentials after the 401 challenge, as browsers do.
      const w = await run("wget", "-qO-", "--user=alice", "--password=wonder land", `${url}/a`);
      assert.equal(w.out, "hello alice\n", w.err);
      const denied = await run("curl", "-sS", "-i", "-u", "alice:nope", `${url}/a`);
      assert.match(denied.out, /^HTTP\/1\.1 401 /);
      assert.match(denied.out, /\r\nWWW-Authenticate: Basic realm="files", charset="UTF-8"\r\n/i);
      assert.match(denied.out, /\r\nWWW-Authenticate: Bearer realm="files"\r\n/i);
      await run("curl", "-sS", "-o", "/dev/null", "-u", "alice:nope2", `${url}/a`);
      const blocked = await run("curl", "-sS", "-i", "-u", "alice:nope3", `${url}/a`);
      assert.match(blocked.out, /^HTTP\/1\.1 429 /);
      assert.match(blocked.out, /\r\nRetry-After: \d+\r\n/i);
    } finally {
      listener.close();
      await accepting.catch(() => {});
      await set.drain();
      await Promise.all(served);
      verifier.close();
    }
  });
});
