/**
 * Content-Type by file extension, from the `mime-db` database through the
 * table `scripts/gen_mime.ts` generates (`_mime_table.ts`; `mime_test.ts`
 * checks it against mime-db): importing mime-db's JSON in every HTTP worker
 * cost ~6 MiB of RSS each. The map is built once at module load; a lookup is
 * one `lastIndexOf` and one `Map.get`.
 *
 * @module
 */
import { MIME_TABLE } from "./_mime_table.ts";

/** The type sent when the extension is unknown. */
export const DEFAULT_TYPE = "application/octet-stream";

function buildMap(): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of MIME_TABLE.split("\n")) {
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const type = line.slice(eq + 1);
    for (const ext of line.slice(0, eq).split(",")) map.set(ext, type);
  }
  return map;
}

const TYPES: Map<string, string> = buildMap();

/**
 * Returns the Content-Type for a file name or path, by its extension.
 *
 * @param name A file name or path; only the part after the last `.` of the
 *   last segment counts, case-insensitively.
 * @returns e.g. `text/html; charset=utf-8`, or `application/octet-stream`.
 * @example Looking up a type
 * ```ts
 * import { contentType } from "./mime.ts";
 * contentType("index.HTML"); // "text/html; charset=utf-8"
 * ```
 */
export function contentType(name: string): string {
  const dot = name.lastIndexOf(".");
  if (dot < 0 || name.indexOf("/", dot) >= 0) return DEFAULT_TYPE;
  const ext = name.slice(dot + 1);
  return TYPES.get(ext) ?? TYPES.get(ext.toLowerCase()) ?? DEFAULT_TYPE;
}
