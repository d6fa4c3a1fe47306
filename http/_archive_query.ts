/**
 * The archive part of a directory's query (`download=`, `select=`), parsed
 * without loading the archive code: the handler imports `_archive_stage.ts`
 * (and its npm tar encoder, node:zlib, node:crypto) only when a download is
 * first asked for, so a worker that never serves one never loads them.
 *
 * @module
 */

/** The archive formats offered. */
export type ArchiveFormat = "zip" | "tar" | "tar.gz";

/** What `?download=` asks for. */
export interface ArchiveQuery {
  format: ArchiveFormat;
  /** Names in the folder to archive (each once, in query order); undefined: all. */
  select?: string[];
  /** Why the query cannot be answered (a 400). */
  error?: string;
}

/** Most `select` names in one request. */
export const SELECT_MAX = 10000;

/** A query value: `+` is a space, then percent-decoded; undefined if not valid UTF-8. */
function formValue(v: string): string | undefined {
  try {
    return decodeURIComponent(v.replaceAll("+", " "));
  } catch {
    return undefined;
  }
}

/**
 * Parses the archive part of a directory's query: `download=zip|tar|tar.gz`
 * and any number of `select=NAME` (form-encoded names in the folder).
 *
 * @param query the raw query string, without `?`
 * @returns undefined when no archive is asked for, else the query (maybe with `error`)
 * @example
 * ```ts
 * import { parseArchiveQuery } from "./_archive_query.ts";
 * parseArchiveQuery("download=zip&select=a+b&select=c"); // { format: "zip", select: ["a b", "c"] }
 * parseArchiveQuery("sort=size"); // undefined
 * ```
 */
export function parseArchiveQuery(query: string): ArchiveQuery | undefined {
  let format: ArchiveFormat | undefined;
  let select: string[] | undefined;
  let error: string | undefined;
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    const k = eq < 0 ? pair : pair.slice(0, eq);
    const v = eq < 0 ? "" : pair.slice(eq + 1);
    if (k === "download") {
      if (v === "zip" || v === "tar" || v === "tar.gz") format = v;
      else error ??= `download must be zip, tar or tar.gz, got ${JSON.stringify(v.slice(0, 40))}`;
    } else if (k === "select") {
      const name = formValue(v);
      select ??= [];
      if (name === undefined) error ??= "select is not valid percent-encoded UTF-8";
      else if (name === "" || name === "." || name === ".." || /[/\0]/.test(name)) {
        error ??= `select must name an entry of this folder, got ${
          JSON.stringify(name.slice(0, 80))
        }`;
      } else if (!select.includes(name)) select.push(name);
      if (select.length > SELECT_MAX) error ??= `select may name at most ${SELECT_MAX} entries`;
    }
  }
  if (format === undefined) return error === undefined ? undefined : { format: "zip", error };
  const q: ArchiveQuery = { format };
  if (select !== undefined) q.select = select;
  if (error !== undefined) q.error = error;
  return q;
}
