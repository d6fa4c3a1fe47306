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

/** Serves `root` in-process on a free port until the returned closer runs. */
async function serveRoot(
  root: string,
  options: Record<string, unknown> = {},
): Promise<{ base: string; close: () => Promise<void> }> {
  const handler = await createHandler({ root, ...options });
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

/** Names a phone must wrap: long, with separators; and the usual hostile ones. */
const MIXED = [
  "big-50MB.bin",
  "release-notes_2026-12-03.final-version.markdown",
  "an extremely long file name with spaces that must wrap on a phone.txt",
  "photo_of_the_mountain_at_sunrise-2025-08-14-IMG_4411.jpeg",
  `<b>&"quoted"'.txt`,
  "\u65e5\u672c\u8a9e\u306e\u30d5\u30a1\u30a4\u30eb\u540d\u306f\u3068\u3066\u3082\u9577\u3044.txt",
  "archive.tar.gz",
  "song.mp3",
  "main.rs",
];

async function makeBrowseFixture(): Promise<string> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-browse-" }));
  await Deno.mkdir(`${root}/mixed/a folder with a long name-and-hyphens`, { recursive: true });
  for (const [i, n] of MIXED.entries()) {
    await Deno.writeFile(`${root}/mixed/${n}`, new Uint8Array(i * 1777 + 3));
  }
  await Deno.symlink("main.rs", `${root}/mixed/link-to-main.rs`);
  await Deno.writeTextFile(
    `${root}/mixed/README.md`,
    "# Mixed names\n\nSee [the notes](release-notes_2026-12-03.final-version.markdown) " +
      "and <script>alert(1)</script>.\n",
  );
  await Deno.mkdir(`${root}/big`);
  for (let i = 0; i < 1000; i++) {
    await Deno.writeFile(`${root}/big/file-${i}.txt`, enc.encode(`${i}\n`.repeat(i % 50)));
  }
  await Deno.mkdir(`${root}/images`);
  for (let i = 0; i < 12; i++) {
    const hue = i * 30;
    await Deno.writeTextFile(
      `${root}/images/picture-${String(i).padStart(2, "0")}.svg`,
      `<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120">` +
        `<rect width="160" height="120" fill="hsl(${hue},70%,55%)"/>` +
        `<circle cx="80" cy="60" r="30" fill="hsl(${hue + 180},70%,75%)"/></svg>`,
    );
  }
  await Deno.writeTextFile(`${root}/images/notes.txt`, "not an image\n");
  return root;
}

/**
 * Line breaks inside a word of any entry name: for each link's text, the
 * characters whose box starts a new line, where the character before and
 * this one are both ASCII letters or digits. Also how many breaks there
 * were at all (a test of wrapping needs some).
 */
function brokenWords(page: Page): Promise<{ inside: string[]; breaks: number }> {
  return page.eval(`(() => {
    const inside = []; let breaks = 0; const word = /[A-Za-z0-9]/;
    for (const a of document.querySelectorAll("tbody td:first-child a")) {
      const chars = [];
      const w = document.createTreeWalker(a, NodeFilter.SHOW_TEXT);
      for (let n = w.nextNode(); n; n = w.nextNode()) {
        for (let i = 0; i < n.length; i++) {
          const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
          const box = r.getClientRects()[0];
          if (box) chars.push({ c: n.data[i], top: box.top });
        }
      }
      for (let i = 1; i < chars.length; i++) {
        if (chars[i].top > chars[i - 1].top + 2) {
          breaks++;
          if (word.test(chars[i - 1].c) && word.test(chars[i].c)) {
            inside.push(a.textContent + " @" + i);
          }
        }
      }
    }
    return { inside, breaks };
  })()`);
}

/** An expression: the query string the `#sel` form submits with its `value` button. */
function submitted(value: string): string {
  return `(() => { const f = document.getElementById("sel");
    const b = f.querySelector("button[value=${value}]");
    return new URLSearchParams(new FormData(f, b)).toString(); })()`;
}

/** Left x of the Size and Date columns (header and first entry row), right x of the sizes. */
function columnXs(page: Page): Promise<number[]> {
  return page.eval(`(() => {
    const th = document.querySelectorAll("thead th");
    const row = document.querySelectorAll("tbody tr")[1];
    return [th[1].getBoundingClientRect().left, th[2].getBoundingClientRect().left,
      row.cells[1].getBoundingClientRect().right, row.cells[2].getBoundingClientRect().left]
      .map(Math.round);
  })()`);
}

Deno.test({
  name:
    "browser: the listing page at 1280 and 390 px, light and dark: words kept whole, columns fixed, icons, keys, README, gallery, no-JS selection",
  ignore: chromium === null,
  async fn(t) {
    const root = await makeBrowseFixture();
    const server = await serveRoot(root);
    const base = server.base;
    const out = Deno.env.get("RINGHTTPD_TEST_OUT") ??
      new URL("../test-artifacts/browser/", import.meta.url).pathname;
    await Deno.mkdir(out, { recursive: true });
    let browser: Browser | null = null;
    try {
      browser = await Browser.launch(chromium!);
      const page = await browser.newPage();
      const viewport = (width: number, height: number) =>
        page.send("Emulation.setDeviceMetricsOverride", {
          width,
          height,
          deviceScaleFactor: 1,
          mobile: width < 500,
        });
      const scheme = (value: "light" | "dark") =>
        page.send("Emulation.setEmulatedMedia", {
          features: [{ name: "prefers-color-scheme", value }],
        });

      await t.step("screenshots: 3 folders x 1280x900, 390x844 x light, dark", async () => {
        const shots: string[] = [];
        for (const [w, h] of [[1280, 900], [390, 844]]) {
          await viewport(w, h);
          for (const s of ["light", "dark"] as const) {
            await scheme(s);
            for (const [folder, q] of [["mixed", ""], ["big", ""], ["images", "?view=gallery"]]) {
              await page.goto(`${base}/${folder}/${q}`);
              const file = `${out}/${folder}-${w}x${h}-${s}.png`;
              await Deno.writeFile(file, await page.screenshot());
              shots.push(file);
            }
          }
        }
        await scheme("light");
        assert.equal(shots.length, 12);
        for (const f of shots) assert.ok((await Deno.stat(f)).size > 1000, f);
        assert.deepEqual(page.errors, []);
      });

      await t.step("390 px: names wrap between words, never inside one; size stays", async () => {
        await viewport(390, 844);
        await page.goto(`${base}/mixed/`);
        const { inside, breaks } = await brokenWords(page);
        assert.deepEqual(inside, []);
        assert.ok(breaks >= 3, `only ${breaks} line breaks: the test would prove nothing`);
        // The size column is on screen; the date column gives way.
        const sizeRight = await page.eval<number>(
          "document.querySelectorAll('tbody tr')[1].cells[1].getBoundingClientRect().right",
        );
        assert.ok(sizeRight <= 390, `size column ends at ${sizeRight}`);
        assert.equal(
          await page.eval(
            "getComputedStyle(document.querySelector('thead th:nth-child(3)')).display",
          ),
          "none",
        );
        assert.equal(
          await page.eval("document.documentElement.scrollWidth <= innerWidth"),
          true,
          "no horizontal scrolling",
        );
      });

      await t.step("columns stand at the same x in two folders (1280 and 390 px)", async () => {
        for (const [w, h] of [[1280, 900], [390, 844]]) {
          await viewport(w, h);
          await page.goto(`${base}/mixed/`);
          const a = await columnXs(page);
          await page.goto(`${base}/big/`);
          const b = await columnXs(page);
          assert.deepEqual(a, b, `at ${w} px`);
          if (w === 1280) {
            // Not a wide gap: the size column ends within ~800 px of the left edge.
            assert.ok(a[2] < 800, `sizes end at x=${a[2]}`);
          }
        }
      });

      await t.step(
        "every row has a drawn sprite icon of its kind; the symlink is marked",
        async () => {
          await viewport(1280, 900);
          await page.goto(`${base}/mixed/`);
          const icons = await page.eval<string[]>(`[...document.querySelectorAll("tbody tr")]
          .map((r) => { const u = r.querySelector("td:first-child svg use");
            const id = u && u.getAttribute("href").slice(1); const box = u && u.closest("svg").getBoundingClientRect();
            return id && document.getElementById(id) && box.width >= 14 ? id : "missing"; })`);
          assert.equal(icons.length, MIXED.length + 4); // ../, folder, link, README
          assert.ok(!icons.includes("missing"), icons.join(","));
          for (const id of ["d", "i", "z", "a", "c", "t", "f"]) assert.ok(icons.includes(id), id);
          assert.equal(
            await page.eval(`document.querySelector('a[href="link-to-main.rs"]')
            .parentElement.querySelector('[title="symbolic link"]') !== null`),
            true,
          );
          assert.match(
            await page.eval<string>("document.getElementById('sum').textContent"),
            /^1 folder, 11 files, [0-9.]+ KiB in total$/,
          );
          // Everything the page loads comes from this origin (nothing at all, here).
          const foreign = await page.eval<string[]>(
            `performance.getEntriesByType("resource").map((r) => r.name)
            .filter((u) => !u.startsWith(location.origin))`,
          );
          assert.deepEqual(foreign, []);
        },
      );

      await t.step("the README shows below the listing, its raw HTML as text", async () => {
        const html = await page.eval<string>("document.getElementById('readme').innerHTML");
        assert.match(html, /<h1>Mixed names<\/h1>/);
        assert.match(html, /&lt;script&gt;/);
        assert.equal(await page.eval("document.querySelectorAll('#readme script').length"), 0);
        await page.navigatingBy(() => page.click("#readme a"));
        assert.equal(
          await page.eval("location.pathname"),
          "/mixed/release-notes_2026-12-03.final-version.markdown",
        );
      });

      await t.step("keys: j/k and arrows move, Enter opens, Backspace and h go up", async () => {
        await page.goto(`${base}/mixed/`);
        // The step before opened a markdown file: its favicon 404 is not the listing's.
        page.errors.length = 0;
        const key = (k: string, code = k) =>
          page.send("Input.dispatchKeyEvent", { type: "keyDown", key: k, code });
        const focused = () => page.eval<string>("document.activeElement.getAttribute('href')");
        await key("j", "KeyJ");
        assert.equal(await focused(), "../");
        await key("j", "KeyJ");
        await key("ArrowDown");
        await key("k", "KeyK");
        assert.equal(await focused(), "a%20folder%20with%20a%20long%20name-and-hyphens/");
        await page.navigatingBy(() =>
          page.send("Input.dispatchKeyEvent", {
            type: "keyDown",
            key: "Enter",
            code: "Enter",
            windowsVirtualKeyCode: 13,
            text: "\r",
          })
        );
        assert.equal(
          await page.eval("location.pathname"),
          "/mixed/a%20folder%20with%20a%20long%20name-and-hyphens/",
        );
        await page.navigatingBy(() => key("Backspace"));
        assert.equal(await page.eval("location.pathname"), "/mixed/");
        await page.navigatingBy(() => key("h", "KeyH"));
        assert.equal(await page.eval("location.pathname"), "/");
        assert.deepEqual(page.errors, []);
      });

      await t.step("gallery: a toggle, lazy <img> of the originals, which load", async () => {
        await page.goto(`${base}/images/`);
        await page.navigatingBy(() => page.click("button[name=view]"));
        assert.equal(await page.eval("location.search"), "?view=gallery");
        const imgs = await page.eval<Array<[string, string]>>(
          `[...document.querySelectorAll("#gal img")].map((i) => [i.getAttribute("src"), i.loading])`,
        );
        assert.equal(imgs.length, 12);
        assert.deepEqual(imgs[0], ["picture-00.svg", "lazy"]);
        await page.eval(`Promise.all([...document.querySelectorAll("#gal img")].slice(0, 4)
          .map((i) => i.complete ? 0 : new Promise((r) => { i.onload = i.onerror = r; })))`);
        assert.equal(await page.eval("document.querySelector('#gal img').naturalWidth"), 160);
        assert.ok(
          (await visibleNames(page)).includes("notes.txt"),
          "other entries stay in the table",
        );
        await page.navigatingBy(() => page.click("button[name=view]"));
        assert.equal(await page.eval("document.querySelectorAll('#gal img').length"), 0);
      });

      await t.step(
        "with JavaScript the checkboxes are there at once; their form GETs ?download=zip&select=...",
        async () => {
          await page.goto(`${base}/mixed/`);
          assert.equal(await page.eval("document.getElementById('pick').hidden"), true);
          await page.click('input[value="song.mp3"]');
          await page.click('input[value="big-50MB.bin"]');
          // What the zip button GETs, serialised by the browser's own form code (a real
          // submit downloads the zip as an attachment: no page load to wait for).
          assert.equal(
            await page.eval(submitted("zip")),
            "download=zip&select=big-50MB.bin&select=song.mp3",
          );
        },
      );

      await t.step(
        "without JavaScript: page, icons, selection view and its download form work",
        async () => {
          await page.send("Emulation.setScriptExecutionDisabled", { value: true });
          try {
            await page.goto(`${base}/mixed/`);
            assert.equal((await visibleNames(page)).length, MIXED.length + 3);
            assert.equal(
              await page.eval("document.querySelectorAll('input[type=checkbox]').length"),
              0,
            );
            await page.navigatingBy(() => page.click("#pick button"));
            assert.equal(await page.eval("location.search"), "?pick=1");
            await page.click(`input[value='<b>&"quoted"\\'.txt']`);
            // What submitting would GET, serialised by the browser's own form code (a real
            // submit of ?download=tar downloads the folder: no page load to wait for).
            assert.equal(
              await page.eval(submitted("tar")),
              "download=tar&select=%3Cb%3E%26%22quoted%22%27.txt",
            );
          } finally {
            await page.send("Emulation.setScriptExecutionDisabled", { value: false });
          }
        },
      );

      await t.step("?format=txt is one name per line", async () => {
        const r = await fetch(`${base}/mixed/?format=txt`);
        assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8");
        const lines = (await r.text()).split("\n");
        assert.equal(lines[0], "a folder with a long name-and-hyphens/");
        assert.ok(lines.includes("song.mp3"));
      });
      console.log(`  screenshots: ${out}{mixed,big,images}-{1280x900,390x844}-{light,dark}.png`);
    } catch (e) {
      if (browser) console.error(browser.log.slice(-2000));
      throw e;
    } finally {
      await browser?.close();
      await server.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});
