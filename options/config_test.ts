/** The config file: every flag through it, override order, each kind of error. */
import assert from "node:assert/strict";
import { checkConfig, ConfigError, loadConfig } from "./config.ts";
import {
  BY_KEY,
  effectiveSettings,
  FLAGS,
  mergeSettings,
  parseCommandLine,
  type Settings,
  toServeOptions,
} from "./flags.ts";
import { REPO, runCli as run, startCli } from "../tests/_harness.ts";

/** Each config key: the command line that sets it, and the same in the file. */
const SAME: Record<string, [string[], unknown]> = {
  port: [["-p", "8080"], 8080],
  host: [["--host", "[::1]"], "[::1]"],
  workers: [["--workers", "3"], 3],
  pool: [["--pool=0"], 0],
  accept: [["--accept", "reuseport"], "reuseport"],
  maxConns: [["--max-conns", "100"], 100],
  headerTimeout: [["--header-timeout", "2.5"], 2.5],
  idleTimeout: [["--idle-timeout", ".5"], 0.5],
  writeTimeout: [["--write-timeout", "7"], 7],
  grace: [["--grace", "0"], 0],
  dirListing: [["--no-dir-listing"], false],
  dotfiles: [["--dotfiles"], true],
  followSymlinks: [["--follow-symlinks"], true],
  maxArchiveMb: [["--max-archive-mb", "3"], 3],
  cacheMb: [["--cache-mb", "0"], 0],
  cert: [["--cert", "/c.pem", "--key", "/k.pem"], "/c.pem"],
  key: [["--key", "/k.pem", "--cert", "/c.pem"], "/k.pem"],
  cors: [["--cors"], true],
  dev: [["--dev"], true], // browse (#17)
  headers: [["-H", "X-A: 1", "-H", "X-B: two words"], { "X-A": "1", "X-B": "two words" }],
  verbose: [["-v"], true],
  accessLog: [["--access-log", "/var/log/r.log"], "/var/log/r.log"],
  logFormat: [["--log-format", "common"], "common"],
  metricsPath: [["--metrics-path", "/m"], "/m"],
  // net: listeners and per-connection limits
  listen: [["--listen", "127.0.0.1:1", "--listen", "unix:/s.sock"], [
    "127.0.0.1:1",
    "unix:/s.sock",
  ]],
  unixMode: [["--unix-mode", "600"], "600"],
  maxConnsPerIp: [["--max-conns-per-ip", "4"], 4],
  limitRate: [["--limit-rate", "1.5"], 1.5],
  limitRateAfter: [["--limit-rate-after", "64"], 64],
  // site rules (#13)
  nosniff: [["--no-nosniff"], false],
  coopCoep: [["--coop-coep"], true],
  notFoundPage: [["--404", "/srv/404.html"], "/srv/404.html"],
  spa: [["--spa=app.html"], "app.html"],
  cacheControl: [["--cache-control=html:no-store"], { html: "no-store" }],
  healthPath: [["--health-path", "/healthz"], "/healthz"],
  healthLog: [["--health-log"], true],
  rateLimit: [["--rate-limit", "100/s:200"], "100/s:200"],
  // write (#14)
  webdav: [["--webdav"], true],
  upload: [["--upload", "/a/**", "--upload", "/b/*"], ["/a/**", "/b/*"]],
  maxUploadMb: [["--max-upload-mb", "1.5"], 1.5],
  durable: [["--durable"], true],
  auth: [["--auth", "a:1", "--auth", "b:2:3"], ["a:1", "b:2:3"]],
  authFile: [["--auth-file", "/u"], "/u"],
  tokenFile: [["--token-file", "/t"], "/t"],
  public: [["--public", "/a/**", "--public", "/b", "--auth-file", "/u"], ["/a/**", "/b"]],
  realm: [["--realm", "my docs", "--auth-file", "/u"], "my docs"],
};

function cliSettings(args: string[]): Settings {
  const line = parseCommandLine(args);
  assert.ok("settings" in line);
  return line.settings;
}

Deno.test("every flag has a config key, and the file gives the same options as the flag", () => {
  const keyed = FLAGS.filter((f) => f.key).map((f) => f.key!);
  assert.deepEqual(keyed.sort(), Object.keys(SAME).sort(), "a flag without a config test");
  const meta = FLAGS.filter((f) => !f.key).map((f) => f.name);
  assert.deepEqual(meta, ["config", "print-config", "help", "version"]);
  for (const [key, [args, value]] of Object.entries(SAME)) {
    const file: Record<string, unknown> = { [key]: value };
    if (key === "cert") file.key = "/k.pem";
    if (key === "key") file.cert = "/c.pem";
    if (key === "public" || key === "realm") file.authFile = "/u";
    assert.deepEqual(
      toServeOptions(checkConfig(file, "/")),
      toServeOptions(cliSettings(args)),
      key,
    );
  }
});

Deno.test("flags override the file; -H replaces a file header of the same name in any case", () => {
  const file = checkConfig({ port: 1, cors: true, headers: { "X-A": "file", "X-B": "file" } }, "/");
  const merged = mergeSettings(file, cliSettings(["-p", "2", "-H", "x-a: cli", "-H", "X-C: cli"]));
  assert.equal(merged.port, 2);
  assert.equal(merged.cors, true);
  assert.deepEqual(merged.headers, { "X-B": "file", "x-a": "cli", "X-C": "cli" });
  // Only what the command line gave overrides: the file's port stays without -p.
  assert.equal(mergeSettings(file, cliSettings(["--cors"])).port, 1);
});

Deno.test("file names in the file are relative to the file's folder", () => {
  const s = checkConfig(
    { root: "pub", cert: "c.pem", key: "/abs/k.pem", accessLog: "a.log" },
    "/etc/r",
  );
  assert.deepEqual(s, {
    root: "/etc/r/pub",
    cert: "/etc/r/c.pem",
    key: "/abs/k.pem",
    accessLog: "/etc/r/a.log",
  });
});

Deno.test("rules: a list of { path, headers }, checked", () => {
  const rules = [
    { path: "/docs/**", headers: { "Cache-Control": "no-cache" } },
    { path: "/a/*.html" },
    { path: "/" },
  ];
  assert.deepEqual(checkConfig({ rules }, "/").rules, rules);
});

/** Writes `text` to a temp .jsonc and expects loadConfig to fail with `message` after the name. */
async function refuses(text: string, message: string): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/r.jsonc`;
    await Deno.writeTextFile(file, text);
    await assert.rejects(loadConfig(file), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.message, `${file}: ${message}`.replace(`${file}: ${file}`, file));
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("each kind of config error names the key path and the value", async () => {
  const known = `known keys: root, ${[...BY_KEY.keys()].join(", ")}, rules, redirects`;
  const cases: Array<[string, string]> = [
    ['{ "prot": 8080 }', `unknown key "prot" (value 8080); ${known}`],
    ['{ "port": "8080" }', 'port must be 0-65535 (0 picks a free port), got "8080"'],
    ['{ "port": 70000 }', "port must be 0-65535 (0 picks a free port), got 70000"],
    ['{ "cors": "yes" }', 'cors must be true or false, got "yes"'],
    ['{ "dirListing": 0 }', "dirListing must be true or false, got 0"],
    ['{ "grace": -1 }', "grace must be a number of seconds >= 0 (at most 86400), got -1"],
    ['{ "accept": "fast" }', 'accept must be "ring" or "reuseport", got "fast"'],
    ['{ "root": 5 }', "root must be a directory path, got 5"],
    ['{ "headers": ["X: 1"] }', 'headers must be an object of "Name": "value", got ["X: 1"]'],
    [
      '{ "headers": { "Content-Length": "9" } }',
      'headers["Content-Length"] cannot set Content-Length: the server sets it, got "9"',
    ],
    [
      '{ "headers": { "X-A": 1 } }',
      'headers["X-A"] value must be visible ASCII, space or tab (no CR, LF or other control characters), got 1',
    ],
    ['{ "rules": {} }', "rules must be an array of path rules, got {}"],
    [
      '{ "rules": [{ "path": "docs" }] }',
      'rules[0].path must be a URL path pattern starting with "/" ("*" within a name, "**" for any depth), got "docs"',
    ],
    [
      '{ "rules": [{ "path": "/a/../b" }] }',
      'rules[0].path must be a URL path pattern starting with "/" ("*" within a name, "**" for any depth), got "/a/../b"',
    ],
    [
      '{ "rules": [{ "path": "/x", "deny": true }] }',
      "rules[0].deny is not a rule key (known: path, access, list, headers, cacheControl, hidden), got true",
    ],
    [
      '{ "rules": [{ "path": "/x", "headers": { "Transfer-Encoding": "chunked" } }] }',
      'rules[0].headers["Transfer-Encoding"] cannot set Transfer-Encoding: the server sets it, got "chunked"',
    ],
    ["[1]", "the top level must be an object { ... }, got [1]"],
  ];
  for (const [text, message] of cases) await refuses(text, message);
});

Deno.test("a syntax error says where; comments and trailing commas are fine", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/r.jsonc`;
    await Deno.writeTextFile(file, '{\n  "port": 1\n  "cors": true\n}');
    await assert.rejects(
      loadConfig(file),
      new ConfigError(`${file}:3:3: not valid JSONC: CommaExpected`),
    );
    await Deno.writeTextFile(file, '{ /* a */ "port": 1, // b\n "cors": true, }');
    assert.deepEqual(await loadConfig(file), { port: 1, cors: true });
    await assert.rejects(
      loadConfig(`${dir}/missing.jsonc`),
      new ConfigError(`cannot read config file "${dir}/missing.jsonc": no such file`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README's config example sets every key and is a valid config", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", REPO));
  const from = readme.indexOf("## Config file");
  assert.ok(from >= 0, "README has a Config file section");
  const block = readme.slice(from).match(/```jsonc\n([\s\S]*?)```/);
  assert.ok(block, "the section has a jsonc example");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/r.jsonc`, block[1]);
    const s = await loadConfig(`${dir}/r.jsonc`);
    for (const key of ["root", ...BY_KEY.keys(), "rules"]) {
      assert.ok(key in s, `README's config example has no "${key}"`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI --config serves with the file's settings; flags win; exit 0", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/site/sub`, { recursive: true });
    await Deno.writeTextFile(`${dir}/site/a.txt`, "a");
    await Deno.writeTextFile(
      `${dir}/r.jsonc`,
      `{
        // relative to this file
        "root": "site",
        "workers": 1,
        "cors": true,
        "dirListing": false,
        "headers": { "X-From": "file", "X-Keep": "file" },
        "rules": [{ "path": "/sub/**", "headers": { "X-Rule": "1" } }],
      }`,
    );
    // No root on the command line: the file's, relative to the file.
    await using server = await startCli([
      "--config",
      `${dir}/r.jsonc`,
      "-H",
      "x-from: cli",
    ]);
    const base = `http://127.0.0.1:${server.port}`;
    const file = await fetch(`${base}/a.txt`);
    assert.equal(await file.text(), "a");
    assert.equal(file.headers.get("x-from"), "cli");
    assert.equal(file.headers.get("x-keep"), "file");
    assert.equal(file.headers.get("access-control-allow-origin"), "*");
    const listing = await fetch(`${base}/sub/`);
    await listing.body?.cancel();
    assert.equal(listing.status, 404);
    await server.stdout.waitFor(/^ {2}Serving /);
    assert.ok(server.stdout.lines.includes(`  Serving ${await Deno.realPath(`${dir}/site`)}`));
    // Path rules apply where they match only.
    assert.equal(file.headers.get("x-rule"), null);
    assert.equal(listing.headers.get("x-rule"), "1");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI --print-config prints the effective settings as JSON and exits 0", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/r.jsonc`,
      '{ "root": ".", "port": 1, "grace": 3, "rules": [{ "path": "/x/**" }] }',
    );
    const r = await run(["--config", `${dir}/r.jsonc`, "-p", "2", "--print-config"]);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout);
    assert.deepEqual(
      printed,
      effectiveSettings({ root: dir, port: 2, grace: 3, rules: [{ path: "/x/**" }] }),
    );
    assert.equal(printed.port, 2);
    assert.equal(printed.host, "0.0.0.0");
    // What it prints is itself a valid config file.
    await Deno.writeTextFile(`${dir}/again.json`, r.stdout);
    assert.deepEqual(await loadConfig(`${dir}/again.json`), printed);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: each kind of config error exits 2 with one line, before listening", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: Array<[string, string]> = [
      ["{ oops", "not valid JSONC: InvalidSymbol"],
      ['{ "prot": 1 }', 'unknown key "prot" (value 1)'],
      ['{ "port": "80" }', 'port must be 0-65535 (0 picks a free port), got "80"'],
      ['{ "workers": 0 }', "workers must be an integer 1-1024, got 0"],
      [
        '{ "rules": [{ "path": "/x", "headers": { "Date": "x" } }] }',
        'rules[0].headers.Date cannot set Date: the server sets it, got "x"',
      ],
    ];
    for (const [i, [text, message]] of cases.entries()) {
      const file = `${dir}/c${i}.jsonc`;
      await Deno.writeTextFile(file, text);
      const r = await run(["--config", file, "-p", "0"]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, "");
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0].startsWith(`ringhttpd: ${file}`), lines[0]);
      assert.ok(lines[0].includes(message), `${lines[0]}\nlacks: ${message}`);
    }
    const missing = await run(["--config", `${dir}/nope.jsonc`]);
    assert.equal(missing.code, 2);
    assert.equal(
      missing.stderr,
      `ringhttpd: cannot read config file "${dir}/nope.jsonc": no such file\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
