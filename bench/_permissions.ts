/**
 * Permission checks for the `*_bench.ts` modules, private to `bench/`.
 *
 * Plain `deno bench` (no flags) grants nothing, and deno.json's bench
 * permission sets apply only with `-P` (with them in the config, plain
 * `deno bench` refuses to start). So a bench module that needs a permission
 * asks first and, when it is missing, registers nothing and prints one line
 * naming the command that runs it, instead of failing on its set-up.
 *
 * @module
 */

/** The command that grants every bench its permissions (deno.json's `bench` task). */
export const BENCH_COMMAND = "deno task bench";

/** One permission a bench needs; `path` narrows a read or write to one file or folder. */
export type Need =
  | { name: "read" | "write"; path?: string | URL }
  | { name: "run" | "ffi" | "net" | "env" | "sys" };

function granted(need: Need): boolean {
  return Deno.permissions.querySync(need).state === "granted";
}

function flag(need: Need): string {
  return `--allow-${need.name}`;
}

/**
 * Whether every permission in `needs` is granted. When one is not, prints one
 * line, `<what> skipped: needs --allow-x --allow-y; run \`deno task bench\``,
 * so the caller registers no bench for it.
 *
 * @param what The bench module (or part of it) that needs the permissions.
 * @param needs The permissions it needs.
 * @returns `true` when all are granted.
 *
 * @example Skip a module's benches without write access
 * ```ts ignore
 * if (permitted("bench/archive_bench.ts", [{ name: "write" }])) {
 *   const dir = await Deno.makeTempDir();
 *   Deno.bench("tar", () => {});
 * }
 * ```
 */
export function permitted(what: string, needs: readonly Need[]): boolean {
  const missing = needs.filter((n) => !granted(n));
  if (missing.length === 0) return true;
  const flags = [...new Set(missing.map(flag))].join(" ");
  console.log(`${what} skipped: needs ${flags}; run \`${BENCH_COMMAND}\``);
  return false;
}
