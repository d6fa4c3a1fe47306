/** `-v`, `--access-log`, `--log-format`, `--metrics-path`: parsed into ServeOptions, listed in --help. */
import assert from "node:assert/strict";
import { HELP, parseArgs, UsageError } from "../cli.ts";

function opts(...args: string[]) {
  const parsed = parseArgs(args);
  assert.ok("options" in parsed);
  return parsed.options;
}

function rejects(args: string[], message: string): void {
  assert.throws(() => parseArgs(args), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.equal(e.message, message);
    return true;
  });
}

Deno.test("parseArgs: access log and metrics flags", () => {
  assert.deepEqual(opts("-v"), { root: ".", verbose: true });
  assert.deepEqual(opts("--access-log", "/var/log/r.log"), {
    root: ".",
    accessLog: "/var/log/r.log",
  });
  assert.deepEqual(opts("--log-format=common"), { root: ".", logFormat: "common" });
  assert.deepEqual(opts("--metrics-path", "/.ringhttpd/metrics"), {
    root: ".",
    metricsPath: "/.ringhttpd/metrics",
  });
  rejects(["--log-format", "json"], `--log-format must be "combined" or "common", got "json"`);
  rejects(
    ["--metrics-path=metrics"],
    `--metrics-path must start with "/" and use only letters, digits and "._~/-", got "metrics"`,
  );
  rejects(["--access-log="], `--access-log needs a file name, got ""`);
  for (
    const flag of ["--verbose", "--access-log <file>", "--log-format", "--metrics-path <path>"]
  ) {
    assert.ok(HELP.includes(flag), flag);
  }
});
