/** The one options resolver, through each entry point: `serve()`, `createHandler()`, the CLI. */
import assert from "node:assert/strict";
import { RESERVED_HEADERS, resolveHandlerOptions, resolveServeOptions } from "./resolve.ts";
import { serve } from "../serve.ts";
import { createHandler } from "../http/handler.ts";
import { parseArgs } from "../cli.ts";
import { runCli as run } from "../tests/_harness.ts";

/** Reserved names as a user would write them. */
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

Deno.test("the reserved list holds every framing header the engine writes or HTTP/2 forbids", () => {
  assert.deepEqual([...RESERVED_HEADERS].sort(), RESERVED.map((h) => h.toLowerCase()).sort());
});

Deno.test("serve() refuses each reserved header, naming it, before any thread starts", async () => {
  for (const name of RESERVED) {
    await assert.rejects(
      serve({ root: ".", port: 0, headers: [["X-Ok", "1"], [name, "999"]] }),
      new RangeError(
        `headers[1] cannot set ${name}: the server sets it, got ${JSON.stringify([name, "999"])}`,
      ),
    );
  }
  // The example, in lower case too.
  await assert.rejects(
    serve({ root: ".", headers: [["content-length", "999"], ["Transfer-Encoding", "chunked"]] }),
    /headers\[0\] cannot set content-length: the server sets it/,
  );
});

Deno.test("createHandler() refuses each reserved header, naming it", async () => {
  for (const name of RESERVED) {
    await assert.rejects(
      createHandler({ root: ".", headers: [[name, "x"]] }),
      new RangeError(
        `headers[0] cannot set ${name}: the server sets it, got ${JSON.stringify([name, "x"])}`,
      ),
    );
  }
});

Deno.test("the CLI refuses each reserved header, naming it (parse and a real run: exit 2)", async () => {
  for (const name of RESERVED) {
    assert.throws(() => parseArgs(["-H", `${name}: 1`]), {
      message: `--header cannot set ${name}: the server sets it, got "${name}: 1"`,
    });
  }
  const r = await run(["-H", "Content-Length: 999"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^ringhttpd: --header cannot set Content-Length: the server sets it/);
});

Deno.test("resolveServeOptions names the option and quotes the value", () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ port: 80.5 }, "port must be 0-65535 (0 picks a free port), got 80.5"],
    [{ port: "80" }, 'port must be 0-65535 (0 picks a free port), got "80"'],
    [{ workers: 0 }, "workers must be an integer 1-1024, got 0"],
    [{ hostname: "a b" }, 'hostname must be a hostname or IP address, got "a b"'],
    [{ accept: "epoll" }, 'accept must be "ring" or "reuseport", got "epoll"'],
    [{ graceMs: -1 }, "graceMs must be an integer 0-86400000, got -1"],
    [{ maxArchiveBytes: NaN }, "maxArchiveBytes must be >= 0, got NaN"],
    [{ logRingSize: 12 }, "logRingSize must be a power of two 1-1048576, got 12"],
    [{ cors: "yes" }, 'cors must be true or false, got "yes"'],
    [{ accessLog: "" }, 'accessLog needs a file name, got ""'],
    [
      { metricsPath: "m" },
      'metricsPath must start with "/" and use only letters, digits and "._~/-", got "m"',
    ],
    [
      { headers: [["X A", "1"]] },
      'headers[0] name must be an HTTP token (no spaces), got ["X A","1"]',
    ],
    [{ headers: [["X-A", "1\r\n"]] }, /headers\[0\] value must be visible ASCII.*CR, LF/.source],
    [{ prot: 1 }, 'unknown option "prot" (value 1)'],
    [{ cert: "x" }, "cert and key go together, got only cert"],
  ];
  for (const [extra, message] of cases) {
    assert.throws(
      () => resolveServeOptions({ root: ".", ...extra } as never),
      message.includes(".*") ? new RegExp(message) : { message },
      JSON.stringify(extra),
    );
  }
});

Deno.test("one root check: serve(), createHandler() and the CLI say the same", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/file`, "x");
    for (
      const [root, why] of [[`${dir}/nope`, "does not exist"], [
        `${dir}/file`,
        "is not a directory",
      ]]
    ) {
      const message = `root "${root}" ${why}`;
      await assert.rejects(serve({ root, port: 0 }), new Error(message));
      await assert.rejects(createHandler({ root }), new Error(message));
      assert.throws(() => resolveHandlerOptions({ root }), new Error(message));
      const r = await run([root, "-p", "0"]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `ringhttpd: ${message}\n`);
    }
    assert.equal(resolveServeOptions({ root: `${dir}/.` }).root, await Deno.realPath(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveHandlerOptions passes fields it does not know through and keeps functions", () => {
  const jobs = () => ({ status: 503 });
  const r = resolveHandlerOptions({ root: ".", jobs, somethingNew: 1 } as never) as Record<
    string,
    unknown
  >;
  assert.equal(r.jobs, jobs);
  assert.equal(r.somethingNew, 1);
  assert.deepEqual(r.headers, []);
});
