/**
 * `--dev` in a real browser: an HTML page and a listing get the live-reload
 * script, an edit reloads the page (the time is printed), a stylesheet edit
 * swaps the stylesheet without a reload; without `--dev` there is no script
 * and no event endpoint. Also the CLI flag, end to end.
 */
import assert from "node:assert/strict";
import { ConnectionSet, serveDenoConn } from "../http/engine.ts";
import { createHandler } from "../http/handler.ts";
import { DEV_EVENTS } from "../http/_dev.ts";
import { Browser, findChromium } from "./_cdp.ts";
import { startServer } from "./_server.ts";

const chromium = findChromium();

async function serveRoot(root: string, dev: boolean) {
  const handler = await createHandler({ root, dev });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const set = new ConnectionSet();
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) served.push(serveDenoConn(conn, handler, set));
    } catch {
      // closed
    }
  })();
  return {
    base: `http://127.0.0.1:${listener.addr.port}`,
    close: async () => {
      listener.close();
      await accepting;
      await set.drain();
      await Promise.all(served);
    },
  };
}

async function site(): Promise<string> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-dev-" }));
  await Deno.writeTextFile(
    `${root}/index.html`,
    '<!DOCTYPE html><html><head><link rel="icon" href="data:,"><link rel="stylesheet" href="style.css"></head>' +
      "<body><h1>v1</h1></body></html>",
  );
  await Deno.writeTextFile(`${root}/style.css`, "h1{color:rgb(255, 0, 0)}");
  await Deno.mkdir(`${root}/sub`);
  await Deno.writeTextFile(`${root}/sub/a.txt`, "a");
  return root;
}

Deno.test("without --dev: no script, no event endpoint, no Cache-Control added", async () => {
  const root = await site();
  const s = await serveRoot(root, false);
  try {
    const page = await fetch(`${s.base}/`);
    assert.ok(!(await page.text()).includes("EventSource"));
    assert.equal(page.headers.get("cache-control"), null);
    const listing = await fetch(`${s.base}/sub/`);
    assert.ok(!(await listing.text()).includes("EventSource"));
    const ev = await fetch(`${s.base}${DEV_EVENTS}`);
    await ev.body?.cancel();
    assert.equal(ev.status, 404);
  } finally {
    await s.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--dev (CLI): no-cache and CORS on every reply, the script in HTML, none in text", async () => {
  const root = await site();
  try {
    await using server = await startServer({ root, flags: ["--dev", "--workers", "1"] });
    const base = `http://${server.hostname}:${server.port}`;
    for (const path of ["/", "/index.html", "/sub/", "/sub/a.txt", "/style.css", "/nope"]) {
      const r = await fetch(base + path, { headers: { "accept-encoding": "gzip" } });
      const text = await r.text();
      assert.equal(r.headers.get("cache-control"), "no-cache", path);
      assert.equal(r.headers.get("access-control-allow-origin"), "*", path);
      assert.equal(
        text.includes(`new EventSource("${DEV_EVENTS}")`),
        path === "/" ||
          path === "/index.html" || path === "/sub/",
        path,
      );
      if (r.status === 200) {
        assert.equal(
          Number(r.headers.get("content-length")),
          new TextEncoder().encode(text).length,
        );
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "--dev in chromium: an edit reloads the page, a stylesheet edit swaps it without a reload",
  ignore: chromium === null,
  async fn() {
    const root = await site();
    const s = await serveRoot(root, true);
    let browser: Browser | null = null;
    try {
      browser = await Browser.launch(chromium!);
      const page = await browser.newPage();
      const listening = async () => {
        const t0 = Date.now();
        while (await page.eval("document.documentElement.dataset.livereload") !== "on") {
          assert.ok(Date.now() - t0 < 20_000, "the event stream never said ready");
          await new Promise((r) => setTimeout(r, 20)); // polling the page's state
        }
      };
      await page.goto(`${s.base}/`);
      await listening();
      // A stylesheet edit: swapped in place, the page (and this mark) stays.
      await page.eval("window.mark = 42");
      await Deno.writeTextFile(`${root}/style.css`, "h1{color:rgb(0, 0, 255)}");
      const t1 = Date.now();
      while (
        await page.eval<string>("getComputedStyle(document.querySelector('h1')).color") !==
          "rgb(0, 0, 255)"
      ) {
        assert.ok(Date.now() - t1 < 20_000, "the stylesheet was not swapped");
        await new Promise((r) => setTimeout(r, 10));
      }
      const cssMs = Date.now() - t1;
      assert.equal(await page.eval("window.mark"), 42, "no reload for a stylesheet");
      // An HTML edit: the page reloads with the new text.
      const loaded = page.nextLoad();
      const t0 = performance.now();
      await Deno.writeTextFile(
        `${root}/index.html`,
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"><link rel="stylesheet" href="style.css"></head>' +
          "<body><h1>v2</h1></body></html>",
      );
      await loaded;
      const reloadMs = performance.now() - t0;
      assert.equal(await page.eval("document.querySelector('h1').textContent"), "v2");
      assert.equal(await page.eval("window.mark"), undefined, "a reload");
      console.log(
        `  edit -> page reloaded in ${reloadMs.toFixed(0)} ms; stylesheet swapped in ${cssMs} ms`,
      );
      // The issue asks for 500 ms; the bound here is generous for a loaded CI machine.
      assert.ok(reloadMs < 5_000, `reload took ${reloadMs} ms`);
      // A listing reloads too when a file in its folder changes.
      await page.goto(`${s.base}/sub/`);
      await listening();
      const again = page.nextLoad();
      await Deno.writeTextFile(`${root}/sub/b.txt`, "b");
      await again;
      assert.ok((await page.eval<string>("document.body.textContent")).includes("b.txt"));
      assert.deepEqual(page.errors, []);
    } catch (e) {
      if (browser) console.error(browser.log.slice(-2000));
      throw e;
    } finally {
      await browser?.close();
      await s.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});
