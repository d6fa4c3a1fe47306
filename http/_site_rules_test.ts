import assert from "node:assert/strict";
import { cachePolicy, isNavigation } from "./_site_rules.ts";

Deno.test("cachePolicy: fingerprinted names are immutable, dates and words are not", () => {
  const p = cachePolicy(true)!;
  const immutable = "public, max-age=31536000, immutable";
  for (
    const name of [
      "main.7f3e9a1c.chunk.js",
      "app.3f9a1c2b.js",
      "index-B4x9Qa1z.css",
      "vendor.0123456789abcdef0123.js",
      "font-a1b2c3d4.woff2",
    ]
  ) assert.equal(p(`/srv/${name}`, "text/javascript"), immutable, name);
  for (
    const name of [
      "photo-20240101.jpg",
      "my-document.pdf",
      "Document.pdf",
      "backup-deadbeef.tar",
      "jquery-3.6.0.min.js",
      "logo.png",
      "IMG_20240101_1234.jpg",
    ]
  ) assert.equal(p(`/srv/${name}`, "image/png"), "public, max-age=300", name);
  assert.equal(p("/srv/page.3f9a1c2b.html", "text/html; charset=utf-8"), "no-cache");
  assert.equal(cachePolicy(false), undefined);
  const q = cachePolicy({ other: "none", html: "no-store" })!;
  assert.equal(q("/a.png", "image/png"), undefined);
  assert.equal(q("/a.html", "text/html"), "no-store");
});

Deno.test("isNavigation: GET/HEAD accepting HTML, no extension or .html", () => {
  const req = (method: string, path: string, accept?: string) => ({
    method,
    path,
    target: path,
    query: "",
    minor: 1 as const,
    headers: accept === undefined ? [] : ["accept", accept],
  });
  assert.ok(isNavigation(req("GET", "/a/b", "text/html")));
  assert.ok(isNavigation(req("HEAD", "/a.HTML", "text/html,*/*")));
  assert.ok(isNavigation(req("GET", "/v1.2/", "text/html")));
  assert.ok(!isNavigation(req("GET", "/a.js", "text/html")));
  assert.ok(!isNavigation(req("GET", "/a", "*/*")));
  assert.ok(!isNavigation(req("GET", "/a")));
  assert.ok(!isNavigation(req("POST", "/a", "text/html")));
});
