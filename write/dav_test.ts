import assert from "node:assert/strict";
import { createHandler, type FileHandler } from "../http/handler.ts";
import { replyBytes } from "../http/_test_reply.ts";
import { bytesBody } from "./body.ts";
import type { WriteRequest } from "./stage.ts";
import { TEMP_PREFIX } from "./atomic.ts";
import { parsePropfind, XmlError } from "./dav_xml.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function req(method: string, path: string, headers: string[] = [], xml?: string): WriteRequest {
  const r: WriteRequest = {
    method,
    target: path,
    path,
    query: "",
    minor: 1,
    headers: ["host", "h", ...headers],
  };
  if (xml !== undefined) r.body = bytesBody([enc.encode(xml)]);
  return r;
}

async function answer(
  h: FileHandler,
  r: WriteRequest,
): Promise<[number, string, Map<string, string>]> {
  const reply = await h(r);
  const headers = new Map(reply.headers.map(([k, v]) => [k.toLowerCase(), v]));
  return [reply.status, dec.decode(await replyBytes(reply)), headers];
}

/** The hrefs of a multistatus, in order. */
function hrefs(xml: string): string[] {
  return [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]);
}

async function withShare(fn: (h: FileHandler, root: string) => Promise<void>, dotfiles = false) {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd_dav_" }));
  const outside = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/sub dir`);
    await Deno.writeTextFile(`${root}/sub dir/a&b.txt`, "hello");
    await Deno.writeTextFile(`${root}/.secret`, "s");
    await Deno.writeTextFile(`${root}/${TEMP_PREFIX}1`, "partial");
    await Deno.writeTextFile(`${outside}/x`, "outside");
    await Deno.symlink(`${outside}/x`, `${root}/out`);
    await Deno.symlink(`${root}/sub dir`, `${root}/in`);
    await fn(await createHandler({ root, webdav: true, dotfiles }), root);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
}

Deno.test("OPTIONS advertises DAV: 1 and the methods; LOCK/UNLOCK are 405 (class 1 only)", async () => {
  await withShare(async (h) => {
    const [s, , headers] = await answer(h, req("OPTIONS", "/"));
    assert.equal(s, 200);
    assert.equal(headers.get("dav"), "1");
    assert.equal(headers.get("allow"), "GET, HEAD, OPTIONS, PROPFIND, PROPPATCH");
    assert.equal((await answer(h, req("LOCK", "/sub%20dir/a%26b.txt")))[0], 405);
    assert.equal((await answer(h, req("UNLOCK", "/")))[0], 405);
    assert.equal((await answer(h, req("PUT", "/x")))[0], 405); // read-only share
  });
});

Deno.test("PROPFIND Depth 1 lists what a listing shows: no dotfiles, no temporary uploads, no links out of the root", async () => {
  await withShare(async (h) => {
    const [s, xml, headers] = await answer(h, req("PROPFIND", "/", ["depth", "1"]));
    assert.equal(s, 207);
    assert.match(headers.get("content-type")!, /^application\/xml/);
    assert.deepEqual(hrefs(xml).sort(), ["/", "/in/", "/sub%20dir/"]);
    assert.match(xml, /<D:resourcetype><D:collection\/><\/D:resourcetype>/);
  });
  await withShare(async (h) => {
    const [, xml] = await answer(h, req("PROPFIND", "/", ["depth", "1"]));
    assert.deepEqual(hrefs(xml).sort(), ["/", "/.secret", "/in/", "/sub%20dir/"]);
  }, true);
});

Deno.test("PROPFIND Depth 0 of a file gives every live property, escaped; the ETag is GET's", async () => {
  await withShare(async (h) => {
    const [s, xml] = await answer(h, req("PROPFIND", "/sub%20dir/a%26b.txt", ["depth", "0"]));
    assert.equal(s, 207);
    assert.deepEqual(hrefs(xml), ["/sub%20dir/a%26b.txt"]);
    assert.match(xml, /<D:displayname>a&amp;b.txt<\/D:displayname>/);
    assert.match(xml, /<D:getcontentlength>5<\/D:getcontentlength>/);
    assert.match(xml, /<D:getcontenttype>text\/plain; charset=utf-8<\/D:getcontenttype>/);
    assert.match(
      xml,
      /<D:getlastmodified>\w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT<\/D:getlastmodified>/,
    );
    assert.match(xml, /<D:creationdate>\d{4}-\d\d-\d\dT[\d:]{8}Z<\/D:creationdate>/);
    assert.match(xml, /<D:resourcetype\/>/);
    const get = await h(req("GET", "/sub%20dir/a%26b.txt"));
    get.release?.();
    const etag = get.headers.find(([k]) => k.toLowerCase() === "etag")![1];
    assert.ok(xml.includes(`<D:getetag>${etag.replaceAll('"', "&quot;")}</D:getetag>`), xml);
  });
});

Deno.test("PROPFIND with a prop list answers 200 for ours and 404 for unknown properties", async () => {
  await withShare(async (h) => {
    const body = `<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getcontentlength/>` +
      `<o:checksums xmlns:o="http://owncloud.org/ns"/></prop></propfind>`;
    const [s, xml] = await answer(h, req("PROPFIND", "/sub%20dir/a%26b.txt", ["depth", "0"], body));
    assert.equal(s, 207);
    assert.match(
      xml,
      /<D:prop><D:getcontentlength>5<\/D:getcontentlength><\/D:prop><D:status>HTTP\/1.1 200 OK/,
    );
    assert.match(
      xml,
      /<x:checksums xmlns:x="http:\/\/owncloud.org\/ns"\/><\/D:prop><D:status>HTTP\/1.1 404 Not Found/,
    );
  });
});

Deno.test("PROPFIND refuses Depth infinity (403 propfind-finite-depth), hidden or outside targets (404), and hostile XML (400/413)", async () => {
  await withShare(async (h) => {
    const [s, xml] = await answer(h, req("PROPFIND", "/"));
    assert.equal(s, 403);
    assert.match(xml, /<D:propfind-finite-depth\/>/);
    assert.equal((await answer(h, req("PROPFIND", "/", ["depth", "infinity"])))[0], 403);
    assert.equal((await answer(h, req("PROPFIND", "/.secret", ["depth", "0"])))[0], 404);
    assert.equal((await answer(h, req("PROPFIND", `/${TEMP_PREFIX}1`, ["depth", "0"])))[0], 404);
    assert.equal((await answer(h, req("PROPFIND", "/out", ["depth", "0"])))[0], 404);
    assert.equal((await answer(h, req("PROPFIND", "/../etc", ["depth", "0"])))[0], 400);
    const bomb = `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>` +
      `<propfind xmlns="DAV:"><prop><displayname>&b;</displayname></prop></propfind>`;
    assert.equal((await answer(h, req("PROPFIND", "/", ["depth", "0"], bomb)))[0], 400);
    const ext =
      `<?xml version="1.0"?><!DOCTYPE d SYSTEM "file:///etc/passwd"><propfind xmlns="DAV:"/>`;
    assert.equal((await answer(h, req("PROPFIND", "/", ["depth", "0"], ext)))[0], 400);
    assert.equal((await answer(h, req("PROPFIND", "/", ["depth", "0"], "<propfind")))[0], 400);
    assert.equal((await answer(h, req("PROPFIND", "/", ["depth", "0"], "<x:a/>")))[0], 400);
    const huge = `<propfind xmlns="DAV:"><prop>${"<displayname/>".repeat(6000)}</prop></propfind>`;
    assert.equal((await answer(h, req("PROPFIND", "/", ["depth", "0"], huge)))[0], 413);
  });
});

Deno.test("PROPPATCH is refused per property with 403", async () => {
  await withShare(async (h) => {
    const body = `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">` +
      `<D:set><D:prop><Z:author>me</Z:author></D:prop></D:set>` +
      `<D:remove><D:prop><D:displayname/></D:prop></D:remove></D:propertyupdate>`;
    const [s, xml] = await answer(h, req("PROPPATCH", "/sub%20dir/a%26b.txt", [], body));
    assert.equal(s, 207);
    assert.match(
      xml,
      /<x:author xmlns:x="urn:z"\/><D:displayname\/><\/D:prop><D:status>HTTP\/1.1 403 Forbidden/,
    );
  });
});

Deno.test("parsePropfind: allprop, propname, and a prop list with namespaces resolved", () => {
  const p = (s: string) => parsePropfind(enc.encode(s));
  assert.deepEqual(p(`<a:propfind xmlns:a="DAV:"><a:allprop/></a:propfind>`), { kind: "allprop" });
  assert.deepEqual(p(`<propfind xmlns="DAV:"><propname/></propfind>`), { kind: "propname" });
  assert.deepEqual(p(`<propfind xmlns="DAV:"><prop><x xmlns=""/></prop></propfind>`), {
    kind: "prop",
    props: [{ ns: "", name: "x" }],
  });
  assert.throws(() => p(`<propfind xmlns="urn:not-dav"><allprop/></propfind>`), XmlError);
});
