/**
 * The listing page in a real browser: Debian's headless chromium driven over
 * the DevTools protocol (tests/_cdp.ts), against the handler served
 * in-process by the engine. Skipped, with a message, when chromium is not
 * installed (`.ci/run` installs it). Screenshots go to `$RINGHTTPD_TEST_OUT`
 * (else a temp dir); their paths are printed.
 */
import assert from "node:assert/strict";
import { ConnectionSet, serveDenoConn } from "../http/engine.ts";
import { createHandler } from "../http/handler.ts";
import { Browser, findChromium, type Page } from "./_cdp.ts";

const chromium = findChromium();
if (chromium === null) {
  console.warn(
    "tests/browser_test.ts: SKIPPED, chromium is not installed (apt-get install -y chromium)",
  );
}

const enc = new TextEncoder();

async function makeFixture(): Promise<string> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-browser-" }));
  const file = async (path: string, size: number, mtime: number) => {
    await Deno.writeFile(`${root}/${path}`, new Uint8Array(size).fill(97));
    await Deno.utime(`${root}/${path}`, mtime, mtime);
  };
  await Deno.mkdir(`${root}/docs/sub`, { recursive: true });
  await file(`docs/a <b> & "c".txt`, 10, Date.UTC(2024, 0, 1) / 1000);
  await file("docs/Zeta.md", 3000, Date.UTC(2020, 0, 1) / 1000);
  await file("docs/beta.txt", 1, Date.UTC(2025, 0, 1) / 1000);
  await file("docs/\u65e5\u672c\u8a9e.txt", 500, Date.UTC(2023, 0, 1) / 1000);
  await file("docs/.hidden", 5, Date.UTC(2024, 0, 1) / 1000);
  await Deno.writeFile(`${root}/docs/sub/inner.txt`, enc.encode("inner\n"));
  await Deno.mkdir(`${root}/big`);
  for (let i = 0; i < 1000; i++) {
    await Deno.writeFile(`${root}/big/file-${i}.txt`, enc.encode(`${i}\n`.repeat(i % 50)));
  }
  return root;
}

/** The names in the listing's rows that are displayed, `../` left out. */
function visibleNames(page: Page): Promise<string[]> {
  return page.eval<string[]>(
    `[...document.querySelectorAll("tbody tr")].filter((r) => !r.hidden)
      .map((r) => r.cells[0].textContent).filter((n) => n !== "../")`,
  );
}

const DOCS_BY_NAME = ["sub/", `a <b> & "c".txt`, "beta.txt", "Zeta.md", "\u65e5\u672c\u8a9e.txt"];

Deno.test({
  name:
    "browser: the listing renders cleanly, sorts, navigates, goes dark, filters 1,000 rows, downloads a tar",
  ignore: chromium === null,
  async fn(t) {
    const root = await makeFixture();
    const handler = await createHandler({ root });
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const set = new ConnectionSet();
    const served: Promise<void>[] = [];
    const accepting = (async () => {
      try {
        for await (const conn of listener) served.push(serveDenoConn(conn, handler, set));
      } catch {
        // listener closed
      }
    })();
    const base = `http://127.0.0.1:${listener.addr.port}`;
    const out = Deno.env.get("RINGHTTPD_TEST_OUT") ??
      await Deno.makeTempDir({ prefix: "ringhttpd-screens-" });
    await Deno.mkdir(out, { recursive: true });
    let browser: Browser | null = null;
    try {
      browser = await Browser.launch(chromium!);
      const page = await browser.newPage();
      await page.send("Emulation.setDeviceMetricsOverride", {
        width: 1000,
        height: 700,
        deviceScaleFactor: 1,
        mobile: false,
      });

      await t.step("renders without console errors, dotfiles hidden", async () => {
        await page.goto(`${base}/docs/`);
        assert.equal(await page.eval("document.title"), "Index of /docs/");
        assert.deepEqual(await visibleNames(page), DOCS_BY_NAME);
        assert.equal(await page.eval("document.compatMode"), "CSS1Compat", "standards mode");
        assert.equal(await page.eval("!!document.getElementById('filter')"), true);
        // The folder download is a form button (wget and other crawlers do not submit forms).
        assert.equal(
          await page.eval("document.querySelector('#bar button[name=download]').value"),
          "tar",
        );
        assert.equal(
          await page.eval("document.querySelectorAll('a[href*=\"download\"]').length"),
          0,
        );
        assert.deepEqual(page.errors, []);
      });

      await t.step("column header links sort by size and date, both ways", async () => {
        await page.navigatingBy(() => page.click("thead th:nth-child(2) button"));
        assert.match(await page.eval<string>("location.search"), /sort=size&order=asc/);
        assert.deepEqual(await visibleNames(page), [
          "sub/",
          "beta.txt",
          `a <b> & "c".txt`,
          "\u65e5\u672c\u8a9e.txt",
          "Zeta.md",
        ]);
        await page.navigatingBy(() => page.click("thead th:nth-child(2) button"));
        assert.match(await page.eval<string>("location.search"), /sort=size&order=desc/);
        assert.deepEqual(await visibleNames(page), [
          "sub/",
          "Zeta.md",
          "\u65e5\u672c\u8a9e.txt",
          `a <b> & "c".txt`,
          "beta.txt",
        ]);
        await page.navigatingBy(() => page.click("thead th:nth-child(3) button"));
        assert.deepEqual(await visibleNames(page), [
          "sub/",
          "Zeta.md",
          "\u65e5\u672c\u8a9e.txt",
          `a <b> & "c".txt`,
          "beta.txt",
        ]);
        assert.equal(
          await page.eval(
            "document.querySelector('thead th:nth-child(3)').getAttribute('aria-sort')",
          ),
          "ascending",
        );
        await page.navigatingBy(() => page.click("thead th:nth-child(1) button"));
        assert.deepEqual(await visibleNames(page), DOCS_BY_NAME);
        assert.deepEqual(page.errors, []);
      });

      await t.step("entry links and breadcrumbs navigate", async () => {
        await page.goto(`${base}/docs/`);
        await page.navigatingBy(() => page.click('tbody a[href="sub/"]'));
        assert.equal(await page.eval("location.pathname"), "/docs/sub/");
        assert.deepEqual(await visibleNames(page), ["inner.txt"]);
        await page.navigatingBy(() => page.click('h1 a[href="/docs/"]'));
        assert.equal(await page.eval("location.pathname"), "/docs/");
        await page.navigatingBy(() => page.click('h1 a[href="/"]'));
        assert.equal(await page.eval("location.pathname"), "/");
        assert.deepEqual(await visibleNames(page), ["big/", "docs/"]);
        await page.navigatingBy(() => page.click('tbody a[href="docs/"]'));
        await page.navigatingBy(() => page.click('tbody a[href="../"]'));
        assert.equal(await page.eval("location.pathname"), "/");
        assert.deepEqual(page.errors, []);
      });

      await t.step("dark mode applies under prefers-color-scheme: dark", async () => {
        await page.goto(`${base}/docs/`);
        const bg = "getComputedStyle(document.body).backgroundColor";
        const light = await page.eval<string>(bg);
        await Deno.writeFile(`${out}/listing-light.png`, await page.screenshot());
        await page.send("Emulation.setEmulatedMedia", {
          features: [{ name: "prefers-color-scheme", value: "dark" }],
        });
        const dark = await page.eval<string>(bg);
        assert.notEqual(dark, light);
        assert.equal(light, "rgb(255, 255, 255)");
        assert.equal(dark, "rgb(22, 22, 22)");
        const fg = await page.eval<string>("getComputedStyle(document.body).color");
        assert.equal(fg, "rgb(221, 221, 221)");
        await Deno.writeFile(`${out}/listing-dark.png`, await page.screenshot());
        await page.send("Emulation.setEmulatedMedia", { features: [] });
      });

      await t.step("a 1,000-entry listing loads and the filter box narrows it", async () => {
        await page.goto(`${base}/big/`);
        const loadMs = await page.eval<number>(
          "performance.getEntriesByType('navigation')[0].loadEventEnd",
        );
        assert.equal((await visibleNames(page)).length, 1000);
        await page.click("#filter");
        assert.equal(await page.eval("document.activeElement.id"), "filter");
        await page.type("file-99");
        const shown = await visibleNames(page);
        assert.deepEqual(
          shown,
          ["file-99.txt", ...Array.from({ length: 10 }, (_, i) => `file-${990 + i}.txt`)],
        );
        assert.equal(
          await page.eval("document.querySelector('tbody tr').hidden"),
          false,
          "../ stays",
        );
        await Deno.writeFile(`${out}/listing-filtered.png`, await page.screenshot());
        // Time one full filter pass over 1,000 rows inside the page.
        const filterMs = await page.eval<number>(`(() => {
          const f = document.getElementById("filter"); const t0 = performance.now();
          f.value = "FILE-5"; f.dispatchEvent(new Event("input"));
          return performance.now() - t0; })()`);
        assert.equal((await visibleNames(page)).length, 111, "case-insensitive");
        await page.eval(`(() => { const f = document.getElementById("filter");
          f.value = ""; f.dispatchEvent(new Event("input")); })()`);
        assert.equal((await visibleNames(page)).length, 1000);
        console.log(
          `  1,000 entries: load event ${loadMs.toFixed(0)} ms, one filter pass ${
            filterMs.toFixed(1)
          } ms`,
        );
        // Generous bounds: this machine is shared; a usable page is far below.
        assert.ok(loadMs < 10_000, `load took ${loadMs} ms`);
        assert.ok(filterMs < 2_000, `filter took ${filterMs} ms`);
        // "/" focuses the filter from anywhere on the page.
        await page.click("h1");
        await page.send("Input.dispatchKeyEvent", { type: "keyDown", key: "/", text: "/" });
        assert.equal(await page.eval("document.activeElement.id"), "filter");
        assert.equal(await page.eval("document.getElementById('filter').value"), "");
        assert.deepEqual(page.errors, []);
      });

      await t.step("the tar link downloads docs.tar, which extracts to the folder", async () => {
        const dl = await Deno.makeTempDir({ prefix: "ringhttpd-dl-" });
        try {
          await browser!.send("Browser.setDownloadBehavior", {
            behavior: "allow",
            downloadPath: dl,
            eventsEnabled: true,
          });
          let name = "";
          const offBegin = browser!.on("Browser.downloadWillBegin", (p) => {
            name = p.suggestedFilename as string;
          });
          let offDone = () => {};
          const done = new Promise<string>((resolve) => {
            offDone = browser!.on("Browser.downloadProgress", (p) => {
              if (p.state === "completed" || p.state === "canceled") resolve(p.state as string);
            });
          });
          try {
            await page.goto(`${base}/docs/`);
            await page.click("#bar button[name=download]");
            assert.equal(await done, "completed");
          } finally {
            offBegin();
            offDone();
          }
          assert.equal(name, "docs.tar");
          const r = await new Deno.Command("tar", { args: ["-xf", `${dl}/docs.tar`, "-C", dl] })
            .output();
          assert.ok(r.success, new TextDecoder().decode(r.stderr));
          assert.deepEqual(
            await Deno.readFile(`${dl}/docs/Zeta.md`),
            await Deno.readFile(`${root}/docs/Zeta.md`),
          );
          assert.equal(await Deno.readTextFile(`${dl}/docs/sub/inner.txt`), "inner\n");
          await assert.rejects(Deno.stat(`${dl}/docs/.hidden`), Deno.errors.NotFound);
          assert.equal(await page.eval("location.pathname"), "/docs/", "the page stays");
          assert.deepEqual(page.errors, []);
        } finally {
          await Deno.remove(dl, { recursive: true });
        }
      });

      await t.step(
        "without JavaScript: the listing, sorting and the filter (server-side, ?q=) still work",
        async () => {
          await page.send("Emulation.setScriptExecutionDisabled", { value: true });
          try {
            await page.goto(`${base}/docs/`);
            assert.deepEqual(await visibleNames(page), DOCS_BY_NAME);
            await page.navigatingBy(() => page.click("thead th:nth-child(2) button"));
            assert.equal((await visibleNames(page))[1], "beta.txt");
            // The filter box is a plain form: Enter asks the server, over the whole folder.
            await page.click("#filter");
            await page.type("ETA");
            await page.navigatingBy(() =>
              page.send("Input.dispatchKeyEvent", {
                type: "keyDown",
                key: "Enter",
                code: "Enter",
                windowsVirtualKeyCode: 13,
                text: "\r",
              })
            );
            assert.match(await page.eval<string>("location.search"), /q=ETA/);
            assert.deepEqual(await visibleNames(page), ["beta.txt", "Zeta.md"]);
          } finally {
            await page.send("Emulation.setScriptExecutionDisabled", { value: false });
          }
        },
      );

      console.log(`  screenshots: ${out}/listing-{light,dark,filtered}.png`);
    } catch (e) {
      if (browser) console.error(browser.log.slice(-2000));
      throw e;
    } finally {
      await browser?.close();
      listener.close();
      await accepting;
      await set.drain();
      await Promise.all(served);
      await Deno.remove(root, { recursive: true });
    }
  },
});
