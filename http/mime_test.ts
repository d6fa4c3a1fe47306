import assert from "node:assert/strict";
import { contentType, DEFAULT_TYPE } from "./mime.ts";
import { buildTypes, renderTable } from "../scripts/gen_mime.ts";

Deno.test("contentType() adds charset=utf-8 to text types", () => {
  assert.equal(contentType("index.html"), "text/html; charset=utf-8");
  assert.equal(contentType("a.CSS"), "text/css; charset=utf-8");
  assert.equal(contentType("a.txt"), "text/plain; charset=utf-8");
  assert.match(contentType("a.js"), /javascript; charset=utf-8$/);
  assert.equal(contentType("a.json"), "application/json; charset=utf-8");
});

Deno.test("contentType() gives binary types without charset", () => {
  assert.equal(contentType("a.png"), "image/png");
  assert.equal(contentType("/x/y.wasm"), "application/wasm");
  assert.equal(contentType("a.svg"), "image/svg+xml");
});

Deno.test("contentType() falls back to application/octet-stream", () => {
  for (const n of ["noext", "a.unknownext", "dir.d/file", "trailing.", ".bashrc"]) {
    assert.equal(contentType(n), DEFAULT_TYPE, n);
  }
});

Deno.test("the generated _mime_table.ts matches mime-db (else run scripts/gen_mime.ts)", async () => {
  const file = await Deno.readTextFile(new URL("./_mime_table.ts", import.meta.url));
  assert.equal(
    file,
    renderTable(buildTypes()),
    "run: deno run --allow-write=http scripts/gen_mime.ts",
  );
});

Deno.test("contentType() gives mime-db's type for every extension mime-db knows", () => {
  const types = buildTypes();
  assert.ok(types.size > 1000, `only ${types.size} extensions`);
  for (const [ext, type] of types) {
    assert.equal(contentType(`a.${ext}`), type, ext);
    assert.equal(contentType(`A.${ext.toUpperCase()}`), type, ext);
  }
});
