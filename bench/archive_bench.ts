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
