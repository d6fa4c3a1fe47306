/**
 * Measures what authentication costs: one bcrypt verification (cost 5, as
 * `htpasswd -B` makes, and 10) and one apr1, through the verify Worker and
 * directly; and the per-request cost of the rule on the cached path, next to
 * a rule that only reads the header. Not a `deno bench` file: `deno task
 * bench` writes deno.lock, which pins only the serve path's packages.
 *
 * ```sh
 * deno run --lock=tests.lock --allow-read --allow-sys=loadavg auth/measure.ts
 * ```
 *
 * @module
 */
import bcrypt from "bcryptjs";
import { credentialFromFlag, parseHtpasswd } from "./htpasswd.ts";
import { authRule, type RuleContext } from "./rule.ts";
import { Verifier } from "./verify.ts";
import { getHeader, type RequestHead } from "../http/types.ts";

const ms = (t0: number, n: number) => ((performance.now() - t0) / n).toFixed(1);

async function viaWorker(hash: string, password: string, n: number): Promise<string> {
  const users = parseHtpasswd(new TextEncoder().encode(`u:${hash}\n`), "m");
  using v = new Verifier({ users, cacheSize: 1 });
  await v.verify("Basic " + btoa(`u:warm-up`)); // Worker start and JIT
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const out = await v.verify("Basic " + btoa(`u:${password}${i % 2 === 0 ? "" : "x"}`));
    if (out.ok !== (i % 2 === 0)) throw new Error("wrong answer");
    v.update(users); // forget the cache: every round pays the hash
  }
  return ms(t0, n);
}

const load = Deno.loadavg();
console.log(
  `${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}, load ${load.join(" ")}`,
);
for (const cost of [5, 10]) {
  const hash = bcrypt.hashSync("pw", cost);
  const n = cost === 5 ? 20 : 4;
  bcrypt.compareSync("pw", hash);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) bcrypt.compareSync("pw", hash);
  console.log(
    `bcrypt cost ${cost}: ${ms(t0, n)} ms this thread, ${await viaWorker(
      hash,
      "pw",
      n,
    )} ms via the Worker`,
  );
}
console.log(
  `apr1: ${await viaWorker(
    "$apr1$dS/TidQo$MRSz4eNgjXYy.LMY9O0Z21",
    "secret",
    20,
  )} ms via the Worker`,
);

const ctx = {
  error: () => ({ status: 401, headers: [], body: [], length: 0 }),
} as unknown as RuleContext;
using v = new Verifier({ users: new Map([["alice", credentialFromFlag("alice:pw", 4)]]) });
const rule = authRule({ verifier: v, public: ["/pub/**"] });
const header = "Basic " + btoa("alice:pw");
const req: RequestHead = {
  method: "GET",
  target: "/a.txt",
  path: "/a.txt",
  query: "",
  minor: 1,
  headers: ["host", "x", "user-agent", "curl/8", "accept", "*/*", "authorization", header],
};
await rule(req, ctx);
const N = 2_000_000;
let sink = 0;
for (let round = 0; round < 3; round++) {
  let t0 = performance.now();
  for (let i = 0; i < N; i++) if (getHeader(req, "authorization") === undefined) sink++;
  const base = (performance.now() - t0) / N * 1e6;
  t0 = performance.now();
  for (let i = 0; i < N; i++) if (rule(req, ctx) !== undefined) sink++;
  const cached = (performance.now() - t0) / N * 1e6;
  console.log(
    `cached path: ${cached.toFixed(0)} ns/request (header lookup alone ${base.toFixed(0)} ns)`,
  );
}
if (sink !== 0) throw new Error("the cached path did not pass");
