/**
 * Test helper: how to run a process that `chmod 000` really stops. As a
 * normal user, nothing is needed. As root (CI), file modes do not bind:
 * CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH bypass them. `setpriv` (util-linux)
 * drops both from the bounding set before exec, so the child runs as root
 * with root's files and Deno cache but is refused what the modes refuse.
 *
 * Private to the test suites.
 *
 * @module
 */

const DROP = ["--bounding-set", "-dac_override,-dac_read_search"];

let cached: string[] | null | undefined;

/**
 * The command prefix that makes a child honour file modes: `[]` for a normal
 * user, `["setpriv", ...]` for root, or null when there is no way (root
 * without a working `setpriv`); the caller then skips with a message.
 *
 * @returns The prefix, or null.
 */
export function unprivilegedPrefix(): string[] | null {
  if (cached !== undefined) return cached;
  if (Deno.uid() !== 0) return cached = [];
  try {
    // Proof, not presence: the dropped capabilities must make a mode-000 file unreadable.
    const dir = Deno.makeTempDirSync({ prefix: "ringhttpd-priv-" });
    try {
      Deno.writeTextFileSync(`${dir}/f`, "x");
      Deno.chmodSync(`${dir}/f`, 0);
      const r = new Deno.Command("setpriv", { args: [...DROP, "cat", `${dir}/f`], stderr: "null" })
        .outputSync();
      cached = r.success ? null : ["setpriv", ...DROP];
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  } catch {
    cached = null;
  }
  return cached;
}

/** The message a suite prints when it skips a sub-case for want of a prefix. */
export const NO_UNPRIVILEGED =
  "skipped: running as root and `setpriv --bounding-set -dac_override,-dac_read_search` " +
  "does not work here, so mode-000 files stay readable";
