import assert from "node:assert/strict";
import { HELP, parseArgs, USAGE, UsageError, VERSION } from "./cli.ts";
import { DUPLICATE_WINDOW_MS } from "./cli/lifecycle.ts";
import { ACCEPT_MODES, runCli as run, startCli } from "./tests/_harness.ts";

/** Every header the server owns, in the case a user would write it. */
const RESERVED = [
  "Content-Length",
  "Transfer-Encoding",
  "Connection",
  "Keep-Alive",
  "Date",
  "Upgrade",
  "Trailer",
  "TE",
  "Proxy-Connection",
  "Content-Range",
  "Content-Encoding",
];

/** The options parsed from `args`, failing the test on help/version. */
function opts(...args: string[]) {
  const parsed = parseArgs(args);
  assert.ok("options" in parsed, `expected options from ${JSON.stringify(args)}`);
  return parsed.options;
}

/** Asserts that `args` is rejected with exactly `message`. */
function rejects(args: string[], message: string): void {
  assert.throws(() => parseArgs(args), (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${e}`);
    assert.equal(e.message, message);
    return true;
  });
}

Deno.test("parseArgs: no arguments serve . with the server's defaults", () => {
  assert.deepEqual(opts(), { root: "." });
});

Deno.test("parseArgs: the positional argument is the root", () => {
  assert.deepEqual(opts("./public"), { root: "./public" });
  assert.deepEqual(opts("-p", "1", "dir"), { root: "dir", port: 1 });
  assert.deepEqual(opts("--", "-weird"), { root: "-weird" });
  assert.deepEqual(opts("-"), { root: "-" });
});

Deno.test("parseArgs: -p/--port in every form", () => {
  for (
    const args of [
      ["-p", "8080"],
      ["-p8080"],
      ["-p=8080"],
      ["--port", "8080"],
      ["--port=8080"],
    ]
  ) {
    assert.equal(opts(...args).port, 8080, JSON.stringify(args));
  }
  assert.equal(opts("--port=0").port, 0);
  assert.equal(opts("--port=65535").port, 65535);
});

Deno.test("parseArgs: --port rejects non-numbers and out-of-range values with the value", () => {
  const msg = (v: string) => `--port must be 0-65535 (0 picks a free port), got "${v}"`;
  rejects(["--port", "80a"], msg("80a"));
  rejects(["-p", "65536"], msg("65536"));
  rejects(["--port=-1"], msg("-1"));
  rejects(["--port="], msg(""));
  rejects(["-p", "8.5"], msg("8.5"));
  rejects(["-p", " 80"], msg(" 80"));
});

Deno.test("parseArgs: --host, with IPv6 brackets removed", () => {
  assert.equal(opts("--host", "127.0.0.1").hostname, "127.0.0.1");
  assert.equal(opts("--host=localhost").hostname, "localhost");
  assert.equal(opts("--host=::1").hostname, "::1");
  assert.equal(opts("--host", "[::1]").hostname, "::1");
  rejects(["--host="], `--host must be a hostname or IP address, got ""`);
  rejects(["--host=a b"], `--host must be a hostname or IP address, got "a b"`);
  rejects(["--host=http://x/"], `--host must be a hostname or IP address, got "http://x/"`);
  rejects(["--host=[]"], `--host must be a hostname or IP address, got "[]"`);
});

Deno.test("parseArgs: --workers takes an integer 1-1024", () => {
  assert.equal(opts("--workers", "4").workers, 4);
  assert.equal(opts("--workers=1").workers, 1);
  assert.equal(opts("--workers=1024").workers, 1024);
  for (const v of ["0", "1025", "two", "1.5", "-2"]) {
    rejects([`--workers=${v}`], `--workers must be an integer 1-1024, got "${v}"`);
  }
});

Deno.test("parseArgs: --accept takes ring or reuseport", () => {
  assert.equal(opts("--accept=ring").accept, "ring");
  assert.equal(opts("--accept", "reuseport").accept, "reuseport");
  rejects(["--accept=Ring"], `--accept must be "ring" or "reuseport", got "Ring"`);
  rejects(["--accept", "epoll"], `--accept must be "ring" or "reuseport", got "epoll"`);
});

Deno.test("parseArgs: --max-conns takes a positive integer", () => {
  assert.equal(opts("--max-conns", "100").maxConns, 100);
  assert.equal(opts("--max-conns=1").maxConns, 1);
  for (const v of ["0", "1e3", "many"]) {
    rejects([`--max-conns=${v}`], `--max-conns must be an integer >= 1, got "${v}"`);
  }
});

Deno.test("parseArgs: --cache-mb takes MiB, 0 turns the cache off", () => {
  assert.equal(opts("--cache-mb", "16").cacheMaxBytes, 16 * 1024 * 1024);
  assert.equal(opts("--cache-mb=0").cacheMaxBytes, 0);
  assert.equal(opts().cacheMaxBytes, undefined);
  for (const v of ["-1", "1.5", "64M", "", "1048577"]) {
    rejects([`--cache-mb=${v}`], `--cache-mb must be an integer 0-1048576 (MiB), got "${v}"`);
  }
});

Deno.test("parseArgs: timeouts are seconds, decimals allowed, stored as ms", () => {
  assert.deepEqual(
    opts(
      "--header-timeout",
      "0.5",
      "--idle-timeout=15",
      "--write-timeout",
      "30",
      "--grace=2.25",
    ),
    {
      root: ".",
      headerTimeoutMs: 500,
      idleTimeoutMs: 15_000,
      writeTimeoutMs: 30_000,
      graceMs: 2250,
    },
  );
  assert.equal(opts("--idle-timeout=.1").idleTimeoutMs, 100);
  assert.equal(opts("--grace=0").graceMs, 0);
});

Deno.test("parseArgs: timeouts reject zero, units and junk; --grace accepts 0 only", () => {
  for (const flag of ["header-timeout", "idle-timeout", "write-timeout"]) {
    for (const v of ["abc", "10s", "-1", "1e3", "", "0", "0.0001", "86401"]) {
      rejects(
        [`--${flag}=${v}`],
        `--${flag} must be a number of seconds > 0 (at most 86400), got "${v}"`,
      );
    }
  }
  for (const v of ["soon", "86401", "-0"]) {
    rejects(
      [`--grace=${v}`],
      `--grace must be a number of seconds >= 0 (at most 86400), got "${v}"`,
    );
  }
});

Deno.test("parseArgs: boolean flags", () => {
  assert.deepEqual(
    opts("--no-dir-listing", "--dotfiles", "--follow-symlinks", "--cors", "--verbose"),
    {
      root: ".",
      dirListing: false,
      dotfiles: true,
      followSymlinks: true,
      cors: true,
      verbose: true,
    },
  );
  assert.equal(opts("-v").verbose, true);
});

Deno.test("parseArgs: boolean flags take no value", () => {
  rejects(["--cors=true"], `--cors takes no value, got "--cors=true"`);
  rejects(["--no-dir-listing=1"], `--no-dir-listing takes no value, got "--no-dir-listing=1"`);
  rejects(["--verbose="], `--verbose takes no value, got "--verbose="`);
});

Deno.test("parseArgs: -H/--header is repeatable, trimmed and keeps order", () => {
  assert.deepEqual(
    opts(
      "-H",
      "X-Frame-Options: DENY",
      "--header=Cache-Control:max-age=60, public",
      "-HX-Empty:",
      "--header",
      "X-Tab:\tv\t",
    ).headers,
    [["X-Frame-Options", "DENY"], ["Cache-Control", "max-age=60, public"], ["X-Empty", ""], [
      "X-Tab",
      "v",
    ]],
  );
});

Deno.test("parseArgs: -H rejects malformed, unsafe and server-owned headers", () => {
  rejects(["-H", "NoColon"], `--header must be "Name: value", got "NoColon"`);
  rejects(["-H", ": v"], `--header must be "Name: value", got ": v"`);
  rejects(
    ["-H", "Bad Name: v"],
    `--header name must be an HTTP token (no spaces), got "Bad Name: v"`,
  );
  rejects(["-H", "X(: v"], `--header name must be an HTTP token (no spaces), got "X(: v"`);
  const value = "value must be visible ASCII, space or tab (no CR, LF or other control characters)";
  rejects(
    ["-H", "X-A: a\r\nSet-Cookie: x"],
    `--header ${value}, got "X-A: a\\r\\nSet-Cookie: x"`,
  );
  rejects(["-H", "X-A: caf\u00e9"], `--header ${value}, got "X-A: caf\u00e9"`);
  rejects(
    ["-H", "content-length: 5"],
    `--header cannot set content-length: the server sets it, got "content-length: 5"`,
  );
  for (const name of RESERVED) {
    rejects(
      ["-H", `${name}: x`],
      `--header cannot set ${name}: the server sets it, got "${name}: x"`,
    );
  }
});

Deno.test("parseArgs: a repeated -H replaces the earlier one of the same name, in any case", () => {
  assert.deepEqual(opts("-H", "X-A: 1", "-H", "x-a: 2", "-H", "X-B: 3").headers, [
    ["x-a", "2"],
    ["X-B", "3"],
  ]);
});

Deno.test("parseArgs: a value flag without its value says so", () => {
  rejects(["--port"], "--port needs a value");
  rejects(["-p"], "--port needs a value");
  rejects(["--host", "--cors"], `--host needs a value, got "--cors"`);
  rejects(["-H", "-v"], `--header needs a value, got "-v"`);
  rejects(["--workers", "--", "2"], `--workers needs a value`);
});

Deno.test("parseArgs: unknown flags and extra roots are errors", () => {
  rejects(["--bogus"], `unknown flag "--bogus"`);
  rejects(["--bogus=1"], `unknown flag "--bogus"`);
  rejects(["--Port=1"], `unknown flag "--Port"`);
  rejects(["-x"], `unknown flag "-x"`);
  rejects(["-vx"], `unknown flag "-x"`);
  rejects(["a", "b"], `expected one root directory, got "a", "b"`);
  rejects(["a", "--", "b"], `expected one root directory, got "a", "b"`);
  rejects([""], `root directory must not be empty, got ""`);
});

Deno.test("parseArgs: short booleans group, a value flag ends the group", () => {
  assert.deepEqual(opts("-vp", "9000"), { root: ".", verbose: true, port: 9000 });
  assert.deepEqual(opts("-vp9000"), { root: ".", verbose: true, port: 9000 });
});

Deno.test("parseArgs: -h/-V win over other arguments, even bad ones", () => {
  assert.deepEqual(parseArgs(["-h"]), { help: true });
  assert.deepEqual(parseArgs(["--help", "--bogus"]), { help: true });
  assert.deepEqual(parseArgs(["-p", "80a", "-h"]), { help: true });
  assert.deepEqual(parseArgs(["-V"]), { version: true });
  assert.deepEqual(parseArgs(["--version"]), { version: true });
  assert.deepEqual(opts("--", "-h"), { root: "-h" });
});

Deno.test("the help text documents every flag the parser accepts", () => {
  for (
    const flag of [
      "--port",
      "--host",
      "--workers",
      "--accept",
      "--max-conns",
      "--cache-mb",
      "--header-timeout",
      "--idle-timeout",
      "--write-timeout",
      "--grace",
      "--no-dir-listing",
      "--dotfiles",
      "--follow-symlinks",
      "--cors",
      "--header",
      "--verbose",
      "--help",
      "--version",
    ]
  ) {
    assert.ok(HELP.includes(flag), flag);
  }
  assert.match(USAGE, /^Usage: ringhttpd \[root\] \[options\]/);
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
});

Deno.test("CLI: a bad flag exits 2 with the error and the usage line on stderr", async () => {
  const r = await run(["--port", "80a"]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.equal(
    r.stderr,
    `ringhttpd: --port must be 0-65535 (0 picks a free port), got "80a"\n${USAGE}\n`,
  );
  const u = await run(["--bogus"]);
  assert.equal(u.code, 2);
  assert.equal(u.stderr, `ringhttpd: unknown flag "--bogus"\n${USAGE}\n`);
});

Deno.test("CLI: a missing root exits 1 with one line, before listening", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = `${dir}/nope`;
    const r = await run([missing, "--port", "0"]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, `ringhttpd: root "${missing}" does not exist\n`);
    await Deno.writeTextFile(`${dir}/file`, "x");
    const f = await run([`${dir}/file`, "--port", "0"]);
    assert.equal(f.code, 1);
    assert.equal(f.stderr, `ringhttpd: root "${dir}/file" is not a directory\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: -h prints the help and -V the version, both exit 0", async () => {
  const h = await run(["-h"]);
  assert.equal(h.code, 0);
  assert.equal(h.stdout, HELP + "\n");
  const v = await run(["--version"]);
  assert.equal(v.code, 0);
  assert.equal(v.stdout, `ringhttpd ${VERSION} (deno ${Deno.version.deno})\n`);
});

Deno.test("CLI: a port already in use exits 1 with one line", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  const r = await run([".", "--host", "127.0.0.1", "--port", String(port)]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `ringhttpd: port ${port} on 127.0.0.1 is already in use\n`);
});

for (const mode of ACCEPT_MODES) {
  Deno.test({
    name: `CLI: --accept=${mode} on port 0 prints the Listening line, serves, exits 0 on SIGTERM`,
    async fn() {
      const dir = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(`${dir}/hello.txt`, "hello from ringhttpd\n");
        await using server = await startCli([dir, "--workers", "2", `--accept=${mode}`]);
        assert.equal(server.workers, 2);
        assert.ok(server.port > 0);
        const res = await fetch(`http://127.0.0.1:${server.port}/hello.txt`);
        assert.equal(res.status, 200);
        assert.equal(await res.text(), "hello from ringhttpd\n");
        server.child.kill("SIGTERM");
        const status = await server.child.status;
        assert.equal(status.code, 0, server.stderr.lines.join("\n"));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "CLI: SIGUSR2 prints one stats line with a record per worker",
  async fn() {
    await using server = await startCli([".", "--workers", "2"]);
    const res = await fetch(`http://127.0.0.1:${server.port}/deno.json`);
    await res.body?.cancel();
    server.child.kill("SIGUSR2");
    const m = await server.stderr.waitFor(/^ringhttpd stats (\{.*\})$/);
    const stats = JSON.parse(m[1]);
    assert.equal(stats.workers.length, 2);
    for (const w of stats.workers) assert.equal(typeof w.requests, "number");
    // SIGUSR1 would have opened Deno's inspector; SIGUSR2 must not.
    assert.ok(!server.stderr.lines.some((l) => l.includes("Debugger listening")));
  },
});

/** The child's exit status; `poke` runs every `everyMs` until it exits (e.g. to send a signal). */
async function statusWhile(
  child: Deno.ChildProcess,
  poke: () => void,
  everyMs = 200,
): Promise<Deno.CommandStatus> {
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = new Promise<null>((r) => timer = setTimeout(() => r(null), everyMs));
    const st = await Promise.race([child.status, tick]);
    clearTimeout(timer);
    if (st !== null) return st;
    poke();
  }
}

Deno.test({
  name: "CLI: signals within the duplicate window count once; a later one exits at once with 143",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // 32 MiB that the client never reads: the response stays in flight.
      await Deno.writeFile(`${dir}/big.bin`, new Uint8Array(32 * 1024 * 1024));
      await using server = await startCli([dir, "--workers", "1", "--grace", "600"]);
      using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await conn.write(new TextEncoder().encode("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"));
      const first = new Uint8Array(1);
      assert.equal(await conn.read(first), 1); // the response has started
      const t0 = performance.now();
      // One press, three deliveries (the terminal's and two wrappers' copies).
      for (let i = 0; i < 3; i++) server.child.kill("SIGTERM");
      await server.stderr.waitFor(/^ringhttpd: SIGTERM, finishing in-flight requests/);
      const status = await statusWhile(server.child, () => server.child.kill("SIGTERM"));
      assert.ok(
        performance.now() - t0 >= DUPLICATE_WINDOW_MS,
        `exited ${performance.now() - t0} ms after the first signal`,
      );
      assert.equal(status.code, 143, server.stderr.lines.join("\n"));
      const said = server.stderr.lines;
      assert.equal(
        said.filter((l) => l.includes("finishing in-flight")).length,
        1,
        said.join("\n"),
      );
      assert.equal(said.filter((l) => l === "ringhttpd: second SIGTERM, exiting now").length, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("CLI: -H, --cors and --no-dir-listing reach the server", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/sub`);
    await Deno.writeTextFile(`${dir}/a.txt`, "a");
    await using server = await startCli([
      dir,
      "--workers",
      "1",
      "-H",
      "X-Frame-Options: DENY",
      "--header=X-Test:  yes ",
      "--cors",
      "--no-dir-listing",
    ]);
    const base = `http://127.0.0.1:${server.port}`;
    const file = await fetch(`${base}/a.txt`);
    await file.body?.cancel();
    assert.equal(file.status, 200);
    assert.equal(file.headers.get("x-frame-options"), "DENY");
    assert.equal(file.headers.get("x-test"), "yes");
    assert.equal(file.headers.get("access-control-allow-origin"), "*");
    const listing = await fetch(`${base}/sub/`);
    await listing.body?.cancel();
    assert.equal(listing.status, 404);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README's flags table and --help list the same flags", async () => {
  const readme = await Deno.readTextFile(new URL("./README.md", import.meta.url));
  // The table whose header row starts with "| Flag".
  const lines = readme.split("\n");
  const start = lines.findIndex((l) => /^\|\s*Flag\s*\|/.test(l));
  assert.ok(start >= 0, "README has a flags table (a header row starting with | Flag |)");
  const rows = [];
  for (let i = start + 2; i < lines.length && lines[i].startsWith("|"); i++) rows.push(lines[i]);
  const documented = new Set(
    rows.flatMap((row) =>
      [...row.split("|")[1].matchAll(/`(--?[A-Za-z0-9][\w-]*)/g)].map((m) => m[1])
    ),
  );
  const helped = new Set(
    [...HELP.matchAll(/^\s+(?:(-\w), )?(--[\w-]+)/gm)].flatMap((m) => m[1] ? [m[1], m[2]] : [m[2]]),
  );
  assert.ok(helped.size > 20, [...helped].join(" "));
  for (const flag of helped) {
    assert.ok(documented.has(flag), `${flag} is in --help but has no row in README's flags table`);
  }
  for (const flag of documented) {
    assert.ok(helped.has(flag), `README's flags table has ${flag}, which --help does not list`);
  }
});
