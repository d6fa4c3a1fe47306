/**
 * CORS preflight end to end: the real CLI with `--cors` (two HTTP workers),
 * asked by curl.
 */
import assert from "node:assert/strict";
import { startServer } from "./_server.ts";

Deno.test("cors: the CLI with --cors answers a curl preflight 204, no Content-Length, no body", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${root}/a.txt`, "hello");
    await using server = await startServer({ root, flags: ["--cors", "--workers", "2"] });
    const out = await new Deno.Command("curl", {
      args: [
        "-si",
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://app.example",
        "-H",
        "Access-Control-Request-Method: GET",
        "-H",
        "Access-Control-Request-Headers: range",
        `http://${server.hostname}:${server.port}/a.txt`,
      ],
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(text, /^HTTP\/1\.1 204 No Content\r\n/);
    assert.match(text, /\r\nAccess-Control-Allow-Origin: \*\r\n/i);
    assert.match(text, /\r\nAccess-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n/i);
    assert.match(text, /\r\nAccess-Control-Allow-Headers: range\r\n/i);
    assert.doesNotMatch(text, /content-length/i);
    assert.ok(text.endsWith("\r\n\r\n"), "no body");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
