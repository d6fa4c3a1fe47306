/**
 * Search against the path rules in the real server (the CLI with a config
 * file): from the root, an anonymous client never finds names in a hidden
 * folder, a protected folder or below a folder whose listing is off, nor a
 * public symlink into the protected folder, in any format (HTML, JSON,
 * text); the protected folder's user does find its names. Both ways search
 * answers: from the shared index (the default) and by walking the tree
 * (`--cache-mb 0`: no watcher, so no index).
 */
import assert from "node:assert/strict";
import { startServer } from "./_server.ts";
import type { Lines } from "./_harness.ts";

async function sh(cmd: string[]): Promise<void> {
  const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null", stderr: "piped" })
    .output();
  assert.ok(r.success, `${cmd[0]}: ${new TextDecoder().decode(r.stderr)}`);
}

function logLine(s: { stdout: Lines; stderr: Lines }, re: RegExp): Promise<unknown> {
  const o = { timeoutMs: 60_000 };
  return Promise.any([s.stdout.waitFor(re, o), s.stderr.waitFor(re, o)]);
}

const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_search_access_" }));
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const root = `${dir}/site`;
for (const d of ["pub", "secret/deep", "team/sub", "closed/inner"]) {
  await Deno.mkdir(`${root}/${d}`, { recursive: true });
}
for (
  const p of [
    "pub/needle-pub.txt",
    "secret/needle-secret.txt",
    "secret/deep/needle-deep.txt",
    "team/needle-team.txt",
    "team/sub/needle-teamsub.txt",
    "closed/needle-closed.txt",
    "closed/inner/needle-inner.txt",
  ]
) await Deno.writeTextFile(`${root}/${p}`, "x\n");
// A public name leading into the protected folder.
await Deno.symlink(`${root}/team/needle-team.txt`, `${root}/pub/needle-link.txt`);
await sh(["htpasswd", "-cbB", `${dir}/users`, "alice", "wonder"]);
await Deno.writeTextFile(
  `${dir}/rules.jsonc`,
  JSON.stringify({
    rules: [
      { path: "/secret", hidden: true },
      { path: "/team", access: ["alice"] },
      { path: "/closed", list: false },
      { path: "/**", access: "public" },
    ],
  }),
);
const ALICE = "Basic " + btoa("alice:wonder");
const LEAKS = [
  "secret",
  "needle-deep",
  "needle-team",
  "needle-teamsub",
  "needle-closed",
  "needle-inner",
  "needle-link",
];

for (const [way, flags] of [["index", []], ["walk", ["--cache-mb", "0"]]] as const) {
  Deno.test(`search (${way}) shows an anonymous client no hidden, protected or unlisted name; alice sees hers`, async () => {
    await using server = await startServer({
      root,
      flags: [
        "--workers",
        "1",
        "--config",
        `${dir}/rules.jsonc`,
        "--auth-file",
        `${dir}/users`,
        ...flags,
      ],
    });
    if (way === "index") await logLine(server, /search index ready/);
    const base = `http://${server.hostname}:${server.port}`;
    const ask = async (query: string, auth?: string) => {
      const r = await fetch(`${base}/?${query}`, { headers: auth ? { authorization: auth } : {} });
      const body = await r.text();
      assert.equal(r.status, 200, `${query}: ${body}`);
      assert.equal(r.headers.get("x-search-partial"), null, `${query}: complete`);
      return body;
    };
    const names = async (query: string, auth?: string) =>
      JSON.parse(await ask(query + "&format=json", auth)).map((e: { name: string }) => e.name)
        .sort();
    assert.deepEqual(await names("q=needle"), ["pub/needle-pub.txt"]);
    // A folder whose listing is off is found by its name (its parent's listing shows it),
    // nothing below it is.
    assert.deepEqual((await ask("q=closed&format=txt")).trim(), "closed/");
    for (
      const query of [
        "q=needle",
        "q=needle&format=json",
        "q=needle&format=txt",
        "q=e",
        "q=e&format=json",
        "q=e&format=txt",
      ]
    ) {
      const body = await ask(query);
      assert.ok(body.includes("needle-pub.txt"), `${query}: finds the public name`);
      for (const leak of LEAKS) assert.ok(!body.includes(leak), `${query}: shows ${leak}`);
    }
    // The link is left out for her too: it leads where other rules protect (as listings do).
    assert.deepEqual(await names("q=needle", ALICE), [
      "pub/needle-pub.txt",
      "team/needle-team.txt",
      "team/sub/needle-teamsub.txt",
    ]);
  });
}
