/**
 * Content-Type by file extension, from the `mime-db` database. The map is
 * built once at module load; a lookup is one `lastIndexOf` and one `Map.get`.
 *
 * @module
 */
import rawDb from "mime-db";

interface MimeInfo {
  source?: string;
  charset?: string;
  extensions?: string[];
}
const db = rawDb as Record<string, MimeInfo>;

/** The type sent when the extension is unknown. */
export const DEFAULT_TYPE = "application/octet-stream";

// When two types claim one extension, prefer the source web servers use
// (the same order as the `mime-types` package): nginx, apache, none, iana.
const RANK: Record<string, number> = { nginx: 4, apache: 3, iana: 1 };

function buildMap(): Map<string, string> {
  const best = new Map<string, { type: string; rank: number }>();
  for (const [type, info] of Object.entries(db)) {
    const exts = info.extensions;
    if (!exts) continue;
    const rank = info.source ? (RANK[info.source] ?? 2) : 2;
    for (const ext of exts) {
      const prev = best.get(ext);
      if (prev && (prev.rank > rank || (prev.rank === rank && prev.type.startsWith("text/")))) {
        continue;
      }
      best.set(ext, { type, rank });
    }
  }
  const map = new Map<string, string>();
  for (const [ext, { type }] of best) {
    // Text needs a charset or browsers guess; we assume files are UTF-8.
    const info = db[type];
    const text = type.startsWith("text/") || info.charset?.toUpperCase() === "UTF-8";
    map.set(ext, text ? `${type}; charset=utf-8` : type);
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
