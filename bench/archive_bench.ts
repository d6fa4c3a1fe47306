/**
 * Folder download throughput (`deno task bench bench/archive_bench.ts`):
 * The tar and zip of a 33 MiB tree (128 files of 256 KiB + 1,000 files of 1 KiB)
 * drained in-process, next to the system `tar -c` writing to a pipe that
 * Deno drains (the baseline: C, same page cache). Set-up is outside `fn`.
 * Needs read, write (a temp tree) and run (`tar`): plain `deno bench` skips it.
 */
import { archiveBytes, collectMembers } from "../http/archive.ts";
import { tarLayout, zipLayout } from "../http/_archive_layout.ts";
import { permitted } from "./_permissions.ts";

if (
  permitted("bench/archive_bench.ts", [{ name: "read" }, { name: "write" }, { name: "run" }])
) {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-tarbench-" }));
  const dir = `${root}/tree`;
  await Deno.mkdir(`${dir}/big`, { recursive: true });
  await Deno.mkdir(`${dir}/small`);
  const big = new Uint8Array(256 * 1024).map((_, i) => i * 31);
  for (let i = 0; i < 128; i++) await Deno.writeFile(`${dir}/big/f${i}.bin`, big);
  const small = new Uint8Array(1024).fill(120);
  for (let i = 0; i < 1000; i++) await Deno.writeFile(`${dir}/small/s${i}.txt`, small);
  const policy = { root, dotfiles: false, followSymlinks: false };

  globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

  Deno.bench({
    group: "tar-33MiB",
    name: "system tar -c | drain (baseline)",
    baseline: true,
    async fn() {
      const child = new Deno.Command("tar", {
        args: ["-cf", "-", "-C", root, "tree"],
        stdout: "piped",
      }).spawn();
      for await (const _ of child.stdout) { /* drain */ }
      await child.status;
    },
  });

  Deno.bench({
    group: "tar-33MiB",
    name: "tar: walk + layout + archiveBytes drained",
    async fn() {
      const l = tarLayout((await collectMembers(dir, "tree", policy)).members);
      for await (const _ of archiveBytes(l, 0, l.size, new Map())) { /* drain */ }
    },
  });

  Deno.bench({
    group: "tar-33MiB",
    name: "zip: walk + layout + archiveBytes (CRC-32 on the way) drained",
    async fn() {
      const l = zipLayout((await collectMembers(dir, "tree", policy)).members);
      for await (const _ of archiveBytes(l, 0, l.size, new Map())) { /* drain */ }
    },
  });
}

/*
 * zip (#15), end to end: the real CLI serving a folder of 10 MiB files
 * (1 GiB in all; ZIP_BENCH_MB to change it), fetched by curl to /dev/null
 * as `?download=zip` next to the same bytes as one file (baseline: the
 * sendfile path). Also printed: the server's RSS above idle during the zip
 * download, and the time to the first byte of a 70,000-file zip
 * (ZIP_BENCH_FILES) from a fresh walk. Needs net, run, read, write and env.
 */
if (
  permitted("bench/archive_bench.ts (zip download)", [
    { name: "read" },
    { name: "write" },
    { name: "run" },
    { name: "net" },
    { name: "env" },
  ])
) {
  const { startCli } = await import("../tests/_harness.ts");
  const mb = Number(Deno.env.get("ZIP_BENCH_MB") ?? 1024);
  const files = Number(Deno.env.get("ZIP_BENCH_FILES") ?? 70000);
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "ringhttpd-zipbench-" }));
  await Deno.mkdir(`${root}/tens`);
  await Deno.mkdir(`${root}/many`);
  const ten = new Uint8Array(10 * 1024 * 1024).map((_, i) => (i * 2654435761) >>> 24);
  const one = await Deno.open(`${root}/one.bin`, { write: true, create: true });
  for (let i = 0; i < Math.ceil(mb / 10); i++) {
    await Deno.writeFile(`${root}/tens/f${String(i).padStart(4, "0")}.bin`, ten);
    await one.write(ten);
  }
  one.close();
  for (let d = 0; d * 1000 < files; d++) {
    Deno.mkdirSync(`${root}/many/d${d}`);
    for (let i = 0; i < Math.min(1000, files - d * 1000); i++) {
      Deno.writeFileSync(`${root}/many/d${d}/f${i}.txt`, ten.subarray(0, i % 200));
    }
  }
  const server = await startCli([root, "--max-archive-mb", String(4 * mb)]);
  const base = `http://127.0.0.1:${server.port}`;
  const curl = async (path: string) => {
    const out = await new Deno.Command("curl", {
      args: [
        "-sS",
        "-f",
        "-o",
        "/dev/null",
        "-w",
        "%{time_starttransfer} %{speed_download}",
        base + path,
      ],
      stdout: "piped",
    }).output();
    if (!out.success) throw new Error(`curl ${path} failed`);
    const [first, speed] = new TextDecoder().decode(out.stdout).split(" ").map(Number);
    return { first, speed };
  };
  await curl("/one.bin"); // page cache
  const idle = server.rss();
  globalThis.addEventListener("unload", () => {
    Deno.removeSync(root, { recursive: true });
  });
  // Stopped when the benches end (unload runs after them, and cannot await).
  globalThis.addEventListener("unload", () => {
    try {
      Deno.kill(server.pid, "SIGKILL");
    } catch {
      // already gone
    }
  });

  Deno.bench({
    group: "zip-download",
    name: `one ${mb} MiB file (baseline)`,
    baseline: true,
    n: 3,
    warmup: 1,
    async fn() {
      await curl("/one.bin");
    },
  });

  Deno.bench({
    group: "zip-download",
    name: `zip of ${Math.ceil(mb / 10)} files of 10 MiB`,
    n: 3,
    warmup: 1,
    async fn() {
      let peak = 0;
      const timer = setInterval(() => (peak = Math.max(peak, server.rss())), 50);
      try {
        const { speed } = await curl("/tens/?download=zip");
        console.log(
          `zip: ${(speed / 2 ** 20).toFixed(0)} MiB/s, RSS +${
            ((peak - idle) / 2 ** 20).toFixed(1)
          } MiB over idle`,
        );
      } finally {
        clearInterval(timer);
      }
    },
  });

  Deno.bench({
    group: "zip-first-byte",
    name: `first byte of a ${files}-file zip (walk + layout + ETag), then all of it`,
    n: 3,
    warmup: 0,
    async fn() {
      const { first } = await curl("/many/?download=zip");
      console.log(`${files}-file zip: first byte after ${(first * 1000).toFixed(0)} ms`);
    },
  });
}
