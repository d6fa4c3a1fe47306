/**
 * Test helper: a hostile served root made in a temp dir, with secrets beside
 * and inside it that must never come back in a response body.
 *
 * ```text
 * BASE/
 *   outside/secret.txt            OUTSIDE marker (sibling of the root)
 *   outside/.env                  OUTSIDE marker
 *   root-evil/secret.txt          PREFIX marker (same string prefix as root)
 *   root/                         the served root
 *     hello.txt, big.bin (10,000 bytes), empty.txt, dir/inner.txt, site/index.html
 *     .env, .git/config, .hiddendir/file.txt, dir/.hidden      DOTFILE marker
 *     etc -> /etc                 out -> ../outside      secretlink -> ../outside/secret.txt
 *     chain1 -> chain2 -> ../outside/secret.txt          sub/up -> ../../outside
 *     evilprefix -> ../root-evil/secret.txt              abs_out -> BASE/outside/secret.txt
 *     loop1 <-> loop2, selfloop -> selfloop, notadir.txt (a file)
 *     inside_link -> hello.txt, dirlink -> dir
 *     comp.txt(.gz -> outside, .br -> /etc/passwd), comp2.txt(.gz -> .env)
 *     non-UTF-8: ff fe -bin.txt (file), fe -out -> outside, fd -dot -> .env, fc -evildir -> root-evil
 *     arch/ (for ?download=tar): dotfiles, links out, to /etc, to dotfiles, loops, FIFO
 *     fifo (a FIFO: opening it would block), fifolink -> fifo, devzero -> /dev/zero,
 *     sparse5g.bin (5 GiB sparse: offsets past 2^32)
 *     hostile names: <b>&"'.txt  100%.txt  q?x.txt  hash#x.txt  with space.txt
 *       a:b.txt  long UTF-8, <dir>/, non-UTF-8 (bytes ff fe)
 * ```
 *
 * Private to `tests/`.
 *
 * @module
 */

/** Markers written in files that must never be served. */
export const MARKERS = {
  outside: "ZQX-OUTSIDE-SECRET-7f3a",
  prefix: "ZQX-PREFIX-SECRET-91bd",
  dotfile: "ZQX-DOTFILE-SECRET-c44e",
} as const;

/** Hostile file names created in the root (all servable, 200 expected). */
export const HOSTILE_NAMES: string[] = [
  `<b>&"'.txt`,
  "100%.txt",
  "q?x.txt",
  "hash#x.txt",
  "with space.txt",
  "a:b.txt",
  "javascript:alert(1)",
  "<img src=x onerror=alert(1)>",
  "\u00e9\u00e8\u00ea".repeat(40) + ".txt", // 240 bytes of UTF-8
  "\u65e5\u672c\u8a9e.txt",
  "%2e%2e.txt",
  "plus+and=eq.txt",
];

/** A made fixture; remove it with `await using`. */
export interface Fixture extends AsyncDisposable {
  base: string;
  root: string;
  /** Content of `/etc/passwd` first line (must never be served). */
  passwdLine: string;
  /** Size of big.bin. */
  bigSize: number;
  /** Name of the non-UTF-8 file as Deno reports it (lossy), if created. */
  nonUtf8: boolean;
}

/** Deterministic content: byte i of a file is `(i * 31 + (i >> 8)) & 255`. */
export function patternBytes(size: number, offset = 0): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    const j = i + offset;
    b[i] = (j * 31 + (j >> 8)) & 255;
  }
  return b;
}

/**
 * Creates the hostile fixture.
 *
 * @returns paths and facts; dispose to delete
 */
export async function makeFixture(): Promise<Fixture> {
  const base = await Deno.makeTempDir({ prefix: "ringhttpd-sec-" });
  const root = `${base}/root`;
  const w = (p: string, s: string | Uint8Array) =>
    typeof s === "string" ? Deno.writeTextFileSync(p, s) : Deno.writeFileSync(p, s);
  for (const d of ["outside", "root-evil", "root"]) Deno.mkdirSync(`${base}/${d}`);
  w(`${base}/outside/secret.txt`, `${MARKERS.outside}\n`);
  w(`${base}/outside/.env`, `${MARKERS.outside}\n`);
  w(`${base}/root-evil/secret.txt`, `${MARKERS.prefix}\n`);

  w(`${root}/hello.txt`, "hello\n");
  w(`${root}/empty.txt`, "");
  const bigSize = 10_000;
  w(`${root}/big.bin`, patternBytes(bigSize));
  Deno.mkdirSync(`${root}/dir`);
  w(`${root}/dir/inner.txt`, "inner\n");
  w(`${root}/dir/.hidden`, `${MARKERS.dotfile}\n`);
  Deno.mkdirSync(`${root}/site`);
  w(`${root}/site/index.html`, "<!doctype html><title>site</title>\n");
  w(`${root}/.env`, `SECRET=${MARKERS.dotfile}\n`);
  Deno.mkdirSync(`${root}/.git`);
  w(`${root}/.git/config`, `[core]\n\tsecret = ${MARKERS.dotfile}\n`);
  Deno.mkdirSync(`${root}/.hiddendir`);
  w(`${root}/.hiddendir/file.txt`, `${MARKERS.dotfile}\n`);
  w(`${root}/notadir.txt`, "i am a file\n");
  w(`${root}/..txt`, `${MARKERS.dotfile}\n`); // starts with a dot: a dotfile

  Deno.symlinkSync("/etc", `${root}/etc`);
  Deno.symlinkSync("../outside", `${root}/out`);
  Deno.symlinkSync("../outside/secret.txt", `${root}/secretlink`);
  Deno.symlinkSync("../outside/secret.txt", `${root}/chain2`);
  Deno.symlinkSync("chain2", `${root}/chain1`);
  Deno.mkdirSync(`${root}/sub`);
  Deno.symlinkSync("../../outside", `${root}/sub/up`);
  Deno.symlinkSync("../root-evil/secret.txt", `${root}/evilprefix`);
  Deno.symlinkSync("../root-evil", `${root}/evildir`);
  Deno.symlinkSync(`${base}/outside/secret.txt`, `${root}/abs_out`);
  Deno.symlinkSync("loop2", `${root}/loop1`);
  Deno.symlinkSync("loop1", `${root}/loop2`);
  Deno.symlinkSync("selfloop", `${root}/selfloop`);
  Deno.symlinkSync("hello.txt", `${root}/inside_link`);
  Deno.symlinkSync("dir", `${root}/dirlink`);
  Deno.symlinkSync("/nonexistent/target", `${root}/dangling`);

  for (const name of HOSTILE_NAMES) w(`${root}/${name}`, `hostile file ${name.length}\n`);
  Deno.mkdirSync(`${root}/<dir>`);
  w(`${root}/<dir>/x.txt`, "x\n");

  // A folder for `?download=tar`: every kind of entry an archive must leave out.
  const arch = `${root}/arch`;
  Deno.mkdirSync(`${arch}/nested/.hidden`, { recursive: true });
  w(`${arch}/ok.txt`, "archived\n");
  w(`${arch}/.env`, `${MARKERS.dotfile}\n`);
  w(`${arch}/nested/.hidden/x`, `${MARKERS.dotfile}\n`);
  w(`${arch}/nested/fine.txt`, "fine\n");
  Deno.symlinkSync("../../outside/secret.txt", `${arch}/secretlink`);
  Deno.symlinkSync("../../outside", `${arch}/outdir`);
  Deno.symlinkSync("/etc", `${arch}/etc`);
  Deno.symlinkSync("../../root-evil", `${arch}/evildir`);
  Deno.symlinkSync("../.env", `${arch}/dotlink`);
  Deno.symlinkSync("../.git", `${arch}/gitlink`);
  Deno.symlinkSync("nested", `${arch}/nestedlink`);
  Deno.symlinkSync(".", `${arch}/self`);
  Deno.symlinkSync("loopb", `${arch}/loopa`);
  Deno.symlinkSync("loopa", `${arch}/loopb`);

  // Precompressed siblings that leave the root or name a dotfile: never used.
  w(`${root}/comp.txt`, "comp\n");
  Deno.symlinkSync("../outside/secret.txt", `${root}/comp.txt.gz`);
  Deno.symlinkSync("/etc/passwd", `${root}/comp.txt.br`);
  w(`${root}/comp2.txt`, "comp2\n");
  Deno.symlinkSync(".env", `${root}/comp2.txt.gz`);

  // Non-UTF-8 names (Deno paths are strings, so bash makes them): a file, a
  // symlink leaving the root, and one pointing at a dotfile.
  const made = await new Deno.Command("bash", {
    args: [
      "-c",
      `cd "$1" && printf 'non utf8\\n' > $'\\xff\\xfe-bin.txt' &&
       ln -s ../outside/secret.txt $'\\xfe-out' && ln -s .env $'\\xfd-dot' &&
       ln -s ../root-evil $'\\xfc-evildir' &&
       mkfifo fifo && ln -s fifo fifolink && ln -s /dev/zero devzero && mkfifo arch/fifo &&
       ln -s /dev/zero arch/devzero && ln -s ../../outside $'arch/\\xfb-out' &&
       truncate -s 5G sparse5g.bin`,
      "bash",
      root,
    ],
  }).output();

  const passwdLine = Deno.readTextFileSync("/etc/passwd").split("\n")[0];
  return {
    base,
    root,
    passwdLine,
    bigSize,
    nonUtf8: made.success,
    async [Symbol.asyncDispose]() {
      await Deno.remove(base, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Byte strings that must never appear in any response body.
 *
 * @param fx the fixture
 * @returns label -> bytes
 */
export function forbiddenContent(fx: Fixture): Array<[string, Uint8Array]> {
  const e = new TextEncoder();
  return [
    ["outside/ secret", e.encode(MARKERS.outside)],
    ["root-evil/ secret (prefix confusion)", e.encode(MARKERS.prefix)],
    ["dotfile content", e.encode(MARKERS.dotfile)],
    ["/etc/passwd", e.encode(fx.passwdLine)],
    ["/etc/passwd", e.encode("root:x:0:0:")],
  ];
}
