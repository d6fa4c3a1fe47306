/**
 * The entry collector: what a directory holds, as every view that shows a
 * directory's contents sees it (listings in HTML and JSON, folder downloads).
 *
 * One per-entry rule, {@linkcode entryRule}: hidden name? -> `lstat` ->
 * symlink? -> real path -> servable (inside the root, not hidden) -> `stat`
 * of the target. It is written once, as a generator that yields the file
 * system calls it needs; {@linkcode collectEntries} runs it synchronously and
 * {@linkcode collectEntriesAsync} between event-loop turns, so both front-ends
 * list exactly the same entries. Entries a GET would answer 404 (a symlink
 * leaving the root, to a dotfile, dangling or looping) are left out without a
 * word: listing them would leak what GET hides. Entries the server may serve
 * but cannot read (`lstat` refused) are reported to `onUnreadable`, so a view
 * that must not drop things silently (the archive) can say so.
 *
 * @module
 */
import {
  percentEncodeBytes,
  rawAvailable,
  rawEachEntry,
  rawInvalidNames,
  rawRealPath,
  rawStat,
} from "./_rawfs.ts";
import { servable, type ServePolicy } from "./resolve.ts";
import { isTempName } from "../write/atomic.ts";

/** One directory entry as listed. */
export interface Entry {
  /** The name as Deno reports it (lossy: invalid UTF-8 became U+FFFD). */
  name: string;
  /** What the entry itself is (a symlink is not followed here). */
  type: "file" | "dir" | "symlink";
  /** Listed and sorted as a directory (a dir, or a symlink to one). */
  isDir: boolean;
  /** Bytes (of its target for a symlink). */
  size: number;
  /** Modification time, ms since the epoch; 0 if unknown. */
  mtimeMs: number;
  /**
   * The on-disk name is not valid UTF-8: Deno 2.9.6 hands out a lossy name
   * that does not open. Listed with `href` when FFI could read the raw bytes
   * (a file), else without a link.
   */
  lossy?: boolean;
  /** For a lossy file name: its raw bytes, percent-encoded (not HTML-escaped). */
  href?: string;
  /** A symlink's real path (what to open instead of `dir/name`); with `detail` only. */
  target?: string;
  /**
   * Neither a regular file nor a directory (FIFO, socket, device), known only
   * where the `lstat` said so (the portable reader; the FFI reader folds
   * these into `"file"`, and a GET of one answers 404); with `detail` only.
   */
  special?: true;
  /** Permission bits of the entry (its target's for a symlink), when known; with `detail` only. */
  mode?: number;
}

/** What `lstat` says about one entry, as far as the rule needs it. */
export interface EntryFacts {
  kind: "file" | "dir" | "symlink" | "special";
  size: number;
  mtimeMs: number;
  mode?: number;
}

/** A file system call the rule asks its front-end to make. */
export type FsCall =
  | { op: "lstat"; path: string }
  | { op: "realPath"; path: string }
  | { op: "stat"; path: string };

/** Told about an entry left out because it could not be read. */
export type OnUnreadable = (name: string, error: unknown) => void;

function factsOf(info: Deno.FileInfo): EntryFacts {
  return {
    kind: info.isSymlink ? "symlink" : info.isDirectory ? "dir" : info.isFile ? "file" : "special",
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? 0,
    mode: info.mode ?? undefined,
  };
}

/**
 * The per-entry rule. Yields the calls it needs (each answered with a
 * `Deno.FileInfo` or a path, or thrown into it on failure) and returns the
 * entry, or null when it is not listed.
 *
 * @param base The directory's path, ending in `/`.
 * @param name The entry's name.
 * @param policy What GET serves.
 * @param known The entry's `lstat` facts when the reader already has them.
 * @param o `detail` and `onUnreadable`.
 * @returns A generator of calls, returning the entry or null.
 */
export function* entryRule(
  base: string,
  name: string,
  policy: ServePolicy,
  known: EntryFacts | undefined,
  o: CollectOptions,
): Generator<FsCall, Entry | null, Deno.FileInfo | string> {
  if (name.charCodeAt(0) === 46 && (!policy.dotfiles || isTempName(name))) return null;
  if (o.filter !== undefined && !o.filter(name)) return null;
  let facts = known;
  if (facts === undefined) {
    try {
      facts = factsOf((yield { op: "lstat", path: base + name }) as Deno.FileInfo);
    } catch (e) {
      // Vanished: nothing to say. Unreadable: the caller may want to know.
      if (e instanceof Deno.errors.PermissionDenied) o.onUnreadable?.(name, e);
      return null;
    }
  }
  const e: Entry = {
    name,
    type: facts.kind === "special" ? "file" : facts.kind,
    isDir: facts.kind === "dir",
    size: facts.size,
    mtimeMs: facts.mtimeMs,
  };
  const detail = o.detail === true;
  if (detail && facts.kind === "special") e.special = true;
  if (detail && facts.mode !== undefined) e.mode = facts.mode;
  if (facts.kind !== "symlink") return e;
  try {
    const real = (yield { op: "realPath", path: base + name }) as string;
    // Outside the root, or hidden: GET answers 404, so it is not here either.
    if (!servable(policy, real)) return null;
    if (o.linkOk !== undefined && !o.linkOk(base + name, real)) return null;
    const t = factsOf((yield { op: "stat", path: real }) as Deno.FileInfo);
    e.isDir = t.kind === "dir";
    e.size = t.size;
    e.mtimeMs = t.mtimeMs || e.mtimeMs;
    if (detail) {
      e.target = real;
      if (t.kind === "special") e.special = true;
      if (t.mode !== undefined) e.mode = t.mode;
      else delete e.mode;
    }
    return e;
  } catch {
    return null; // dangling or looping link: GET would answer 404
  }
}

/** Runs the rule with synchronous calls. */
function runSync(rule: Generator<FsCall, Entry | null, Deno.FileInfo | string>): Entry | null {
  let step = rule.next();
  while (!step.done) {
    const c = step.value;
    let answer: Deno.FileInfo | string;
    try {
      answer = c.op === "lstat"
        ? Deno.lstatSync(c.path)
        : c.op === "stat"
        ? Deno.statSync(c.path)
        : Deno.realPathSync(c.path);
    } catch (e) {
      step = rule.throw(e);
      continue;
    }
    step = rule.next(answer);
  }
  return step.value;
}

/** Mirrors `RAW_MAX_BYTES` in handler.ts: larger non-UTF-8 files get no link. */
const RAW_LINK_MAX = 16 * 1024 * 1024;

const lossyDecoder = new TextDecoder(); // replacement mode, like Deno's own conversion

/**
 * The rule for a name that is not valid UTF-8, on its raw bytes (FFI): the
 * lossy name Deno hands out opens nothing. Null when it must not be listed
 * (a symlink that does not resolve, or whose target `policy` would not
 * serve, or that cannot be checked).
 */
function lossyEntry(
  dir: string,
  d: { name: string; isDirectory: boolean; isSymlink: boolean },
  raws: Uint8Array[],
  policy: ServePolicy,
): Entry | null {
  const type = d.isDirectory ? "dir" : d.isSymlink ? "symlink" : "file";
  const e: Entry = { name: d.name, type, isDir: d.isDirectory, size: 0, mtimeMs: 0, lossy: true };
  const matches = raws.filter((r) => lossyDecoder.decode(r) === d.name);
  // Two raw names with one lossy form cannot be told apart: link neither.
  if (matches.length !== 1) return d.isSymlink ? null : e;
  const raw = matches[0];
  const path = new Uint8Array([...new TextEncoder().encode(dir + "/"), ...raw]);
  if (d.isSymlink) {
    // Lossy decoding keeps the root prefix and every "/." intact.
    const real = rawRealPath(path);
    if (real === null || !servable(policy, lossyDecoder.decode(real))) return null;
  }
  const info = rawStat(path);
  if (info === null) return d.isSymlink ? null : e;
  e.size = info.size;
  e.mtimeMs = info.mtimeMs;
  if (info.isFile && info.size <= RAW_LINK_MAX) e.href = percentEncodeBytes(raw);
  else if (info.isDirectory) e.isDir = true;
  return e;
}

/** How to collect. */
export interface CollectOptions {
  /** Stop after this many entries (directory order, before sorting). @default Infinity */
  max?: number;
  /** Use the FFI reader when available (false: always the portable one). @default true */
  raw?: boolean;
  /** Told about each entry left out because it could not be read. */
  onUnreadable?: OnUnreadable;
  /** Also record `target`, `special` and `mode` (what an archive needs). @default false */
  detail?: boolean;
  /**
   * Which names this requester may see (the path rules: hidden, access;
   * `PathRules.entryFilter`). A name it refuses is left out before any
   * `lstat`, as if it did not exist: no name, size or date of it reaches a
   * listing, a JSON listing, a folder download or a search. @default all
   */
  filter?: (name: string) => boolean;
  /**
   * Whether a symlink at `link` (a path under the directory) may lead to
   * `real` (its real path): false leaves it out, as a GET of it answers 404
   * (`PathRules.sameProtection`). @default all
   */
  linkOk?: (link: string, real: string) => boolean;
}

/**
 * Reads a directory synchronously: its names and each one's `lstat`, through
 * FFI where it works ({@linkcode rawEachEntry}: `getdents64` + `fstatat` on
 * the directory's descriptor, ~2.3x faster on 100,000 entries), else
 * `readDirSync` + `lstatSync` per entry; each entry through
 * {@linkcode entryRule}. Synchronous on purpose: one async op per entry costs
 * ~10x more (DENO_FACTS); the pool threads use this.
 *
 * @param dir The real path of the directory.
 * @param policy Root, dotfile and symlink policy (what GET serves).
 * @param max Stop after this many entries, or the options.
 * @param raw Use the FFI reader when available.
 * @returns The entries, unsorted.
 * @throws The error of reading the directory itself (e.g. PermissionDenied).
 * @example
 * ```ts ignore
 * import { collectEntries } from "./_collect.ts";
 * const policy = { root: "/srv/www", dotfiles: false, followSymlinks: false };
 * const entries = collectEntries("/srv/www", policy);
 * ```
 */
export function collectEntries(
  dir: string,
  policy: ServePolicy,
  max: number | CollectOptions = Infinity,
  raw = true,
): Entry[] {
  const o: CollectOptions = typeof max === "number" ? { max, raw } : max;
  const limit = o.max ?? Infinity;
  if (o.raw ?? true) {
    const fast = collectRaw(dir, policy, limit, o);
    if (fast !== null) return fast;
  }
  const out: Entry[] = [];
  const base = dir.endsWith("/") ? dir : dir + "/";
  let raws: Uint8Array[] | undefined;
  for (const d of Deno.readDirSync(dir)) {
    if (out.length >= limit) break;
    const name = d.name;
    if (name.includes("\uFFFD")) {
      // Perhaps not UTF-8 on disk: the lossy name would not lstat.
      try {
        Deno.lstatSync(base + name);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          if (!policy.dotfiles && name.charCodeAt(0) === 46) continue;
          if (o.filter !== undefined && !o.filter(name)) continue;
          raws ??= rawAvailable() ? rawInvalidNames(dir) : [];
          const lossy = lossyEntry(base.slice(0, -1), d, raws, policy);
          if (lossy !== null) out.push(lossy);
          continue;
        }
      }
    }
    const e = runSync(entryRule(base, name, policy, undefined, o));
    if (e !== null) out.push(e);
  }
  return out;
}

/** {@linkcode collectEntries} through {@linkcode rawEachEntry}; null when that is unavailable. */
function collectRaw(
  dir: string,
  policy: ServePolicy,
  max: number,
  o: CollectOptions,
): Entry[] | null {
  const out: Entry[] = [];
  const base = dir.endsWith("/") ? dir : dir + "/";
  const invalid: Array<{ raw: Uint8Array; kind: Entry["type"] }> = [];
  const facts: EntryFacts = { kind: "file", size: 0, mtimeMs: 0 };
  const ok = rawEachEntry(dir, policy.dotfiles, (r) => {
    const name = r.name;
    if (name === undefined) {
      // Not valid UTF-8: listed as readDirSync names it (lossy), at the end.
      invalid.push({ raw: r.raw!.slice(), kind: r.kind });
      return invalid.length < max;
    }
    facts.kind = r.kind;
    facts.size = r.size;
    facts.mtimeMs = r.mtimeMs;
    const e = runSync(entryRule(base, name, policy, facts, o));
    if (e !== null) out.push(e);
    return out.length < max;
  });
  if (!ok) return null;
  const raws = invalid.map((r) => r.raw);
  for (const r of invalid) {
    if (out.length >= max) break;
    const lossyName = lossyDecoder.decode(r.raw);
    if (o.filter !== undefined && !o.filter(lossyName)) continue;
    const d = {
      name: lossyName,
      isDirectory: r.kind === "dir",
      isSymlink: r.kind === "symlink",
    };
    const lossy = lossyEntry(base.slice(0, -1), d, raws, policy);
    if (lossy !== null) out.push(lossy);
  }
  return out;
}

/** Entries run through the rule between two event-loop turns. */
const TURN_EVERY = 256;

/**
 * One event-loop turn through a MessageChannel message: a `setTimeout(0)`
 * is clamped to a millisecond and, in the epoll worker, may wait for a timer
 * turn that a busy loop takes rarely.
 *
 * @returns Resolves on the next turn.
 * @example
 * ```ts
 * import { turn } from "./_collect.ts";
 * await turn();
 * ```
 */
export function turn(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port2.onmessage = () => {
      ch.port1.close();
      ch.port2.close();
      resolve();
    };
    ch.port1.postMessage(null);
  });
}

/**
 * The asynchronous front-end of {@linkcode collectEntries} (same rule, same
 * entries): `Deno.readDir` for the names, then the rule with synchronous
 * calls, {@linkcode TURN_EVERY} entries per event-loop turn. A worker that
 * lists inline (`--pool 0`) or streams an archive keeps serving its other
 * connections between turns (~1-2 ms each on a local disk), at the CPU cost
 * of the synchronous collect rather than ~10x that with one async op per
 * entry.
 *
 * Names that are not valid UTF-8 (Deno hands out a lossy name that does not
 * open) are listed through the synchronous collect, which knows how to read
 * their raw bytes.
 *
 * @param dir The real path of the directory.
 * @param policy Root, dotfile and symlink policy (what GET serves).
 * @param max Stop after this many entries, or the options (`raw` is ignored).
 * @returns The entries, unsorted.
 * @throws The error of reading the directory itself (e.g. PermissionDenied).
 */
export async function collectEntriesAsync(
  dir: string,
  policy: ServePolicy,
  max: number | CollectOptions = Infinity,
): Promise<Entry[]> {
  const o: CollectOptions = typeof max === "number" ? { max } : max;
  const limit = o.max ?? Infinity;
  const base = dir.endsWith("/") ? dir : dir + "/";
  const names: string[] = [];
  for await (const d of Deno.readDir(dir)) {
    if (names.length >= limit) break;
    if (!policy.dotfiles && d.name.charCodeAt(0) === 46) continue;
    if (d.name.includes("\uFFFD")) return collectEntries(dir, policy, { ...o, raw: false });
    names.push(d.name);
  }
  const out: Entry[] = [];
  for (let i = 0; i < names.length; i++) {
    if (i > 0 && i % TURN_EVERY === 0) await turn();
    const e = runSync(entryRule(base, names[i], policy, undefined, o));
    if (e !== null) out.push(e);
  }
  return out;
}

/**
 * The newest of the directory's own mtime and its entries'.
 *
 * @param dirMtimeMs The directory's mtime.
 * @param entries Its entries.
 * @returns The newest mtime (Last-Modified of a listing).
 * @example
 * ```ts
 * import { newestMtime } from "./_collect.ts";
 * newestMtime(5, []); // 5
 * ```
 */
export function newestMtime(dirMtimeMs: number, entries: readonly Entry[]): number {
  let m = dirMtimeMs;
  for (const e of entries) if (e.mtimeMs > m) m = e.mtimeMs;
  return m;
}
