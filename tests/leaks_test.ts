/**
 * Leak paths of the path rules (#13): for each view of a folder that holds
 * a hidden file, a hidden README and a folder only alice may read, an
 * anonymous or wrong user learns no name, size, date or byte of them:
 * listings (HTML, JSON, txt, sorted), search, PROPFIND, archives (their
 * Content-Length and ETag too), `select=` errors, odd request targets, the
 * --dev live-reload stream, and the same over HTTP/2 (pooled listings).
 */
import assert from "node:assert/strict";
import { type ServerProcess, startCli } from "./_harness.ts";
import { makeCerts } from "./_certs.ts";

const ALICE = "Basic " + btoa("alice:pw");
const BOB = "Basic " + btoa("bob:pw");
/** Bytes and names that only alice (or nobody) may learn. */
const SECRETS = /secret|SECRET|README|priv|PRIV|\.alice/;

async function makeSite(): Promise<{ dir: string; root: string; args: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "ringhttpd_leaks_" });
  const root = `${dir}/site`;
  await Deno.mkdir(`${root}/pub/priv`, { recursive: true });
  await Deno.mkdir(`${root}/pub/caf\u00e9`);
  const files: Record<string, string> = {
    "pub/a.txt": "A\n",
    "pub/secret.txt": "SECRET-BYTES\n",
    "pub/README.md": "# README-SECRET\n",
    "pub/priv/p.txt": "PRIV-BYTES\n",
    "pub/priv/README.md": "# PRIV-README\n",
    "pub/caf\u00e9/c.txt": "PRIV-BYTES (NFC)\n",
  };
  for (const [p, text] of Object.entries(files)) await Deno.writeTextFile(`${root}/${p}`, text);
  // Public names leading into alice's folder and to the hidden file.
  await Deno.symlink("priv", `${root}/pub/ln`);
  await Deno.symlink("secret.txt", `${root}/pub/ln.txt`);
  const old = new Date("2001-01-01T00:00:00Z");
  for (const p of ["pub/a.txt", "pub/secret.txt", "pub/README.md", "pub/priv"]) {
    await Deno.utime(`${root}/${p}`, old, old);
  }
  await Deno.writeTextFile(
    `${dir}/rules.json`,
    JSON.stringify({
      rules: [
        { path: "/pub/secret*", hidden: true },
        { path: "/pub/README.md", hidden: true },
        { path: "/pub/priv/**", access: ["alice"] },
        { path: "/pub/caf\u00e9/**", access: ["alice"] },
        { path: "/pub/*.alice", access: ["alice"] },
        { path: "/pub/**", access: "public" },
      ],
    }),
  );
  const args = [
    root,
    "--workers",
    "1",
    "--auth",
    "alice:pw",
    "--auth",
    "bob:pw",
    "--webdav",
    "--config",
    `${dir}/rules.json`,
  ];
  return { dir, root, args };
}

interface Got {
  status: number;
  headers: Headers;
  body: string;
}

async function get(
  base: string,
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<Got> {
  const res = await fetch(base + path, { method, headers, redirect: "manual" });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** What a client can compare: status, headers but Date, body. */
function shape(g: Got): unknown {
  return { status: g.status, body: g.body, headers: [...g.headers].filter(([k]) => k !== "date") };
}

/** One raw request (Connection: close), the whole reply without its Date line. */
async function raw(port: number, target: string, auth?: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const a = auth === undefined ? "" : `Authorization: ${auth}\r\n`;
    await conn.write(
      new TextEncoder().encode(
        `GET ${target} HTTP/1.1\r\nHost: x\r\n${a}Connection: close\r\n\r\n`,
      ),
    );
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(
      new Uint8Array(chunks.flatMap((c) => [...c])),
    );
    return text.replace(/^date:.*\r\n/gim, "");
  } finally {
    conn.close();
  }
}

/** The anonymous (and bob's) views of /pub/ that must not change when a protected entry does. */
async function views(base: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const auth of [undefined, BOB]) {
    const h: Record<string, string> = auth ? { authorization: auth } : {};
    for (
      const q of [
        "",
        "?format=json",
        "?format=txt",
        "?sort=size&order=desc",
        "?sort=mtime",
        "?q=t&format=json",
        "?download=tar",
        "?download=zip",
      ]
    ) {
      const g = await get(base, "/pub/" + q, h);
      out[`${auth ?? "anon"} ${q}`] = {
        status: g.status,
        etag: g.headers.get("etag"),
        lastModified: g.headers.get("last-modified"),
        length: g.headers.get("content-length"),
        body: g.body,
      };
    }
  }
  return out;
}

Deno.test("leaks: no view shows a hidden or protected entry to anyone who may not read it", async (t) => {
  const { dir, root, args } = await makeSite();
  let server: ServerProcess | undefined;
  try {
    server = await startCli([...args, "--pool", "0"]);
    const base = `http://127.0.0.1:${server.port}`;

    await t.step(
      "listings (HTML, JSON, txt, sorted, HEAD) and search show only a.txt",
      async () => {
        // Alice asks first: her pages are in the caches when the others ask.
        for (const q of ["", "?format=json", "?format=txt", "?q=t&format=txt", "?download=tar"]) {
          await get(base, "/pub/" + q, { authorization: ALICE });
        }
        for (const auth of [undefined, BOB]) {
          const h: Record<string, string> = auth ? { authorization: auth } : {};
          for (
            const q of ["", "?sort=size", "?sort=mtime&order=desc", "?format=txt", "?format=json"]
          ) {
            const g = await get(base, "/pub/" + q, h);
            assert.equal(g.status, 200, q);
            assert.doesNotMatch(g.body, SECRETS, `${auth ?? "anon"} /pub/${q}`);
            assert.match(g.body, /a\.txt/);
            assert.ok(new Date(g.headers.get("last-modified")!).getUTCFullYear() < 2002);
          }
          const txt = await get(base, "/pub/?format=txt", h);
          assert.equal(txt.body, "a.txt\n");
          // The page repeats the query: what is left must name no hit but a.txt.
          for (const q of ["secret", "README", "p.txt", "txt", "priv", "alice"]) {
            for (const f of ["", "&format=json", "&format=txt"]) {
              const g = await get(base, `/pub/?q=${q}${f}`, h);
              const rest = g.body.replaceAll(q, "");
              assert.doesNotMatch(rest, /secret|README|priv|p\.txt|\.alice/, `?q=${q}${f}`);
            }
            const root = await get(base, `/?q=${q}&format=txt`, { authorization: BOB });
            assert.doesNotMatch(root.body.replaceAll(q, ""), /secret|README|priv|p\.txt/, q);
          }
          const all = await get(base, "/pub/?q=t&format=txt", h);
          assert.equal(all.body, "a.txt\n");
          const head = await fetch(base + "/pub/", { method: "HEAD", headers: h });
          await head.body?.cancel();
          const body = new TextEncoder().encode((await get(base, "/pub/", h)).body);
          assert.equal(Number(head.headers.get("content-length")), body.length);
        }
        // Alice sees her folder, and the search finds her file (the filter is per requester).
        const alice = await get(base, "/pub/?format=json", { authorization: ALICE });
        assert.match(alice.body, /"priv"/);
        const found = await get(base, "/pub/?q=p.txt&format=json", { authorization: ALICE });
        assert.match(found.body, /priv\/p\.txt/);
        const privListing = await get(base, "/pub/priv/", { authorization: ALICE });
        assert.match(privListing.body, /PRIV-README/);
      },
    );

    await t.step("pages, OPTIONS and symlinks tell nothing more", async () => {
      // One visible entry (a.txt): a second page does not exist for anyone but alice.
      const page2 = await get(base, "/pub/?per_page=1&page=2");
      assert.equal(page2.status, 404);
      assert.equal(
        (await get(base, "/pub/?per_page=1&page=2", { authorization: ALICE })).status,
        200,
      );
      for (const auth of [undefined, BOB]) {
        const h: Record<string, string> = auth ? { authorization: auth } : {};
        const opt = async (path: string) => {
          const res = await fetch(base + path, { method: "OPTIONS", headers: h });
          return shape({ status: res.status, headers: res.headers, body: await res.text() });
        };
        assert.deepEqual(await opt("/pub/secret.txt"), await opt("/pub/zecret.txt"));
        assert.deepEqual(await opt("/pub/priv/p.txt"), await opt("/pub/priv/z.txt"));
        for (const path of ["/pub/ln/p.txt", "/pub/ln/", "/pub/ln.txt"]) {
          const g = await get(base, path, h);
          assert.equal(g.status, 404, path);
          assert.doesNotMatch(g.body, SECRETS, path);
        }
      }
    });

    await t.step("PROPFIND Depth 1 lists only what the requester may read", async () => {
      for (const auth of [undefined, BOB]) {
        const res = await fetch(base + "/pub/", {
          method: "PROPFIND",
          headers: { depth: "1", ...(auth ? { authorization: auth } : {}) },
        });
        const body = await res.text();
        assert.equal(res.status, 207);
        assert.match(body, /a\.txt/);
        assert.doesNotMatch(body, SECRETS, `${auth ?? "anon"} PROPFIND`);
      }
      const hidden = await fetch(base + "/pub/secret.txt", {
        method: "PROPFIND",
        headers: { depth: "0" },
      });
      const missing = await fetch(base + "/pub/missing.txt", {
        method: "PROPFIND",
        headers: { depth: "0" },
      });
      assert.equal(hidden.status, 404);
      assert.equal(await hidden.text(), await missing.text());
      // A public symlink to the hidden file or alice's folder: absent too (no size, no date).
      for (const [link, absent] of [["/pub/ln.txt", "/pub/zz.txt"], ["/pub/ln/", "/pub/zz/"]]) {
        for (const depth of ["0", "1"]) {
          const a = await fetch(base + link, { method: "PROPFIND", headers: { depth } });
          const b = await fetch(base + absent, { method: "PROPFIND", headers: { depth } });
          const [ta, tb] = [await a.text(), await b.text()];
          assert.equal(a.status, b.status, `${link} depth ${depth}: ${ta.slice(0, 200)}`);
          assert.equal(ta, tb);
        }
      }
    });

    await t.step(
      "select= errors: a hidden or protected name is refused like an absent one",
      async () => {
        const err = async (name: string) => {
          const g = await get(base, `/pub/?download=zip&select=${encodeURIComponent(name)}`, {
            authorization: BOB,
          });
          return { ...(shape(g) as object), body: g.body.replaceAll(JSON.stringify(name), "N") };
        };
        // Each against an absent name of the same length (the message quotes it).
        for (const name of ["secret.txt", "README.md", "priv", "ln.txt", "ln"]) {
          assert.deepEqual(await err(name), await err("z" + name.slice(1)), name);
        }
      },
    );

    await t.step(
      "odd targets reach a hidden file like a missing one, a protected one never",
      async () => {
        const port = server!.port;
        const pairs: Array<[string, string]> = [
          ["/pub/%73ecret.txt", "/pub/%6Dissing.txt"],
          ["/pub//secret.txt", "/pub//missing.txt"],
          ["/pub/./secret.txt", "/pub/./missing.txt"],
          ["/pub/x/../secret.txt", "/pub/x/../missing.txt"],
          ["/pub%2Fsecret.txt", "/pub%2Fmissing.txt"],
          ["/pub/secret.txt/", "/pub/missing.txt/"],
          ["/pub/secret.txt.", "/pub/missing.txt."],
          ["/pub/SECRET.txt", "/pub/MISSING.txt"],
          ["/pub/secret.txt%00", "/pub/missing.txt%00"],
          ["/pub/secret.txt?download=zip", "/pub/missing.txt?download=zip"],
          ["/pub/README.md", "/pub/README.mdx"],
          ["http://x/pub/secret.txt", "http://x/pub/missing.txt"],
          ["//pub/secret.txt", "//pub/missing.txt"],
          ["/pub/%2e/secret.txt", "/pub/%2e/missing.txt"],
          ["/pub/x/%2e%2e/secret.txt", "/pub/x/%2e%2e/missing.txt"],
          ["/pub/x/%2E%2E/secret.txt", "/pub/x/%2E%2E/missing.txt"],
          ["/pub\\secret.txt", "/pub\\missing.txt"],
          ["/pub/secret.tx%74", "/pub/missing.tx%74"],
          ["/pub/ln.txt", "/pub/zz.txt"],
          ["/pub/ln", "/pub/zz"],
        ];
        for (const [hidden, missing] of pairs) {
          const a = await raw(port, hidden), b = await raw(port, missing);
          assert.equal(a, b, hidden);
          assert.doesNotMatch(a, /SECRET-BYTES|README-SECRET/, hidden);
        }
        // A protected file: every spelling asks for credentials, none gives bytes.
        for (
          const target of [
            "/pub/priv/p.txt",
            "/pub/%70riv/p.txt",
            "/pub//priv/p.txt",
            "/pub/priv%2Fp.txt",
            "/pub/./priv/p.txt",
            "/pub/a/../priv/p.txt",
            "/pub/priv/./p.txt",
            "/pub/priv",
            "/pub/priv/",
            "/pub/priv/?format=json",
            "/pub/priv/?download=tar",
            "/pub/caf%C3%A9/c.txt",
            "/pub/cafe%CC%81/c.txt", // NFD spelling of the same name
            "/pub/CAF%C3%A9/c.txt",
            "/pub/caf%C3%A9/",
          ]
        ) {
          for (const auth of [undefined, BOB]) {
            const r = await raw(port, target, auth);
            assert.doesNotMatch(
              r,
              /PRIV-BYTES|PRIV-README|p\.txt|c\.txt/,
              `${auth ?? "anon"} ${target}`,
            );
            assert.match(
              r,
              /^HTTP\/1\.1 (40[01345]) /,
              `${auth ?? "anon"} ${target}: ${r.slice(0, 40)}`,
            );
          }
        }
        // 401/403 never tell an existing protected path from a missing one.
        assert.equal(await raw(port, "/pub/priv/p.txt"), await raw(port, "/pub/priv/none.txt"));
        assert.equal(
          await raw(port, "/pub/priv/p.txt", BOB),
          await raw(port, "/pub/priv/none.txt", BOB),
        );
      },
    );

    await t.step(
      "a new protected entry changes no byte, length, date or tag of another's view",
      async () => {
        const before = await views(base);
        await Deno.writeTextFile(`${root}/pub/new.alice`, "ALICE-ONLY ".repeat(50));
        await Deno.writeTextFile(`${root}/pub/secret-2.txt`, "more hidden");
        // Wait until the server has seen them (alice's listing shows hers), not for a time.
        const deadline = Date.now() + 15_000;
        for (;;) {
          const a = await get(base, "/pub/?format=json", { authorization: ALICE });
          if (a.body.includes("new.alice")) break;
          assert.ok(Date.now() < deadline, "alice's listing never showed new.alice");
          await new Promise((r) => setTimeout(r, 100));
        }
        const tar = await fetch(base + "/pub/?download=tar", { headers: { authorization: ALICE } });
        assert.match(await tar.text(), /ALICE-ONLY/);
        assert.deepEqual(await views(base), before);
      },
    );
  } finally {
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("leaks: --dev live reload announces only what anyone may read", async () => {
  const { dir, root, args } = await makeSite();
  let server: ServerProcess | undefined;
  const ac = new AbortController();
  try {
    server = await startCli([...args, "--pool", "0", "--dev"]);
    const res = await fetch(`http://127.0.0.1:${server.port}/.ringhttpd/livereload`, {
      signal: ac.signal,
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const until = async (re: RegExp) => {
      while (!re.test(seen)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended: ${seen}`);
        seen += value;
      }
    };
    await until(/event: ready/);
    await Deno.writeTextFile(`${root}/pub/secret.txt`, "SECRET-BYTES changed\n");
    await Deno.writeTextFile(`${root}/pub/priv/p.txt`, "PRIV-BYTES changed\n");
    await Deno.writeTextFile(`${root}/pub/new.alice`, "x");
    await Deno.writeTextFile(`${root}/pub/a.txt`, "A changed\n");
    await until(/data: \/pub\/a\.txt/);
    assert.doesNotMatch(seen, SECRETS);
  } finally {
    ac.abort();
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("leaks: the same views over HTTP/2 (TLS, pooled listings)", async () => {
  const { dir, args } = await makeSite();
  let server: ServerProcess | undefined;
  try {
    const { cert, key } = await makeCerts(dir);
    await Deno.writeTextFile(`${dir}/cert.pem`, cert);
    await Deno.writeTextFile(`${dir}/key.pem`, key);
    server = await startCli([
      ...args,
      "--pool",
      "1",
      "--cert",
      `${dir}/cert.pem`,
      "--key",
      `${dir}/key.pem`,
    ]);
    const base = `https://127.0.0.1:${server.port}`;
    const curl = async (path: string, ...extra: string[]) => {
      const r = await new Deno.Command("curl", {
        args: ["-sk", "--http2", "-D", "-", "-w", "\n%{http_version}", ...extra, base + path],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return new TextDecoder().decode(r.stdout).replace(/^date:.*\r\n/gim, "");
    };
    for (const q of ["", "?format=json", "?format=txt"]) await curl("/pub/" + q, "-u", "alice:pw");
    for (const auth of [[], ["-u", "bob:pw"]]) {
      for (const q of ["", "?format=json", "?format=txt", "?q=e&format=json", "?q=p&format=txt"]) {
        const r = await curl("/pub/" + q, ...auth);
        assert.match(r, /^HTTP\/2 200/, q);
        assert.match(r, /\n2$/);
        assert.doesNotMatch(r, SECRETS, `h2 ${auth.join(" ")} /pub/${q}`);
      }
      assert.equal(
        await curl("/pub/%73ecret.txt", ...auth),
        await curl("/pub/%6Dissing.txt", ...auth),
      );
      for (const extra of [["-I"], ["-r", "0-3"], ["-H", "If-None-Match: *"]]) {
        const a = await curl("/pub/secret.txt", ...auth, ...extra);
        assert.equal(a, await curl("/pub/missing.txt", ...auth, ...extra), extra.join(" "));
        assert.match(a, /^HTTP\/2 404/);
      }
      const p = await curl("/pub/priv/p.txt", ...auth);
      assert.match(p, /^HTTP\/2 40[13]/);
      assert.doesNotMatch(p, /PRIV-BYTES/);
    }
    const alice = await curl("/pub/priv/", "-u", "alice:pw");
    assert.match(alice, /PRIV-README/);
  } finally {
    await server?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
