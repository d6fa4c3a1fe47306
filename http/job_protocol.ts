/**
 * The typed job protocol between HTTP workers and pool threads: what each
 * job kind takes and answers, checked where it crosses the thread boundary
 * (both ends decode JSON: arguments in the pool thread, result heads in the
 * worker), and the code that runs a job in a pool thread. The transport
 * (rings, slab, completion records) is `workers/_jobs.ts`; compression is
 * the same code inline and pooled (`_compress.ts`).
 *
 * @module
 */
import { collectEntries, parseListingQuery, sortEntries } from "./listing.ts";
import {
  COLLECT_MAX,
  newestMtime,
  type Page,
  type PageConfig,
  renderPage,
} from "./_listing_page.ts";
import { isInside, type ServePolicy } from "./resolve.ts";
import { PathRules, type PathRulesConfig } from "./path_rules.ts";
import type { CollectOptions } from "./_collect.ts";
import { loadReadmeSync } from "./_readme.ts";
import { type Coding, compressFileSync, FileChanged, type FileVersion } from "./_compress.ts";
import { crc32 } from "node:zlib";

/** Arguments of a listing job. */
export interface ListingArgs {
  /** The directory's real path (resolved and checked by the worker). */
  real: string;
  /** Its URL path, ending in `/`. */
  path: string;
  /** The raw query string. */
  query: string;
  /** JSON instead of HTML (by query or Accept). */
  json: boolean;
  /**
   * Path rules in force and who asks: the pool thread lists only what this
   * requester may read (`PathRules.entryFilter`). Absent: no rules.
   */
  access?: { rules: PathRulesConfig; user?: string };
}

/** Arguments of a compress job: the file as the worker stat'ed it. */
export interface CompressArgs extends FileVersion {
  /** The file's real path. */
  real: string;
  /** The coding to make. */
  encoding: Coding;
}

/** Result head of a listing job: the page without its body. */
export type ListingHead = Omit<Page, "body">;

/** Result head of a compress job: the version that was compressed. */
export type CompressHead = FileVersion;

/** zip (#15): the arguments of a CRC job, the file version the archive's layout describes. */
export interface CrcArgs {
  /** The file's real path. */
  real: string;
  /** Its size in the layout. */
  size: number;
  /** Its mtime in the layout. */
  mtimeMs: number;
}

/** zip (#15): the result of a CRC job (the body is empty). */
export interface CrcHead {
  /** The CRC-32 of the file's bytes. */
  crc: number;
}

/** Each job kind's arguments and result head. */
export interface JobTypes {
  /** Render one listing page. */
  listing: { args: ListingArgs; head: ListingHead };
  /** Compress one file. */
  compress: { args: CompressArgs; head: CompressHead };
  /** zip (#15): the CRC-32 of one file version (a zip range needs it). */
  crc: { args: CrcArgs; head: CrcHead };
}

/** A job kind. */
export type JobKind = keyof JobTypes;

/**
 * Runs a job elsewhere (the job pool) and answers with its result: status
 * 200 with the result's JSON head and body, or the status to answer.
 *
 * @example A stand-in that has no pool behind it
 * ```ts
 * import type { JobAnswer, SubmitJob } from "./job_protocol.ts";
 * const busy: SubmitJob = () => ({ status: 503 });
 * const args = { real: "/srv/d", path: "/d/", query: "", json: false };
 * const answer = busy("listing", args) as JobAnswer;
 * console.assert(answer.status === 503);
 * ```
 */
export type SubmitJob = <K extends JobKind>(
  kind: K,
  args: JobTypes[K]["args"],
) => Promise<JobAnswer> | JobAnswer;

/**
 * What {@linkcode SubmitJob} answers (the head is still undecoded JSON:
 * {@linkcode resultHead} checks it).
 *
 * @example A listing job's answer
 * ```ts
 * import type { JobAnswer } from "./job_protocol.ts";
 * const a: JobAnswer = { status: 200, head: { status: 200 }, body: new Uint8Array(0) };
 * console.assert(a.status === 200);
 * ```
 */
export interface JobAnswer {
  /** 200 with `head` and `body`, else the status to answer (503: busy). */
  status: number;
  /** The job's result head (JSON). */
  head?: unknown;
  /** The job's result body. */
  body?: Uint8Array;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null;
const isStr = (v: unknown): v is string => typeof v === "string";
const isNum = (v: unknown): v is number => typeof v === "number";
const isPairs = (v: unknown): v is Array<[string, string]> =>
  Array.isArray(v) && v.every((p) => Array.isArray(p) && p.length === 2 && p.every(isStr));
const isVersion = (v: Obj) => isNum(v.size) && isNum(v.mtimeMs) && isNum(v.ino);

/** The checks of each kind's arguments and heads, as they arrive as JSON. */
const SHAPES: { [K in JobKind]: { args(v: Obj): boolean; head(v: Obj): boolean } } = {
  listing: {
    args: (v) =>
      isStr(v.real) && isStr(v.path) && isStr(v.query) && typeof v.json === "boolean" &&
      (v.access === undefined ||
        (isObj(v.access) && isObj(v.access.rules) &&
          (v.access.user === undefined || isStr(v.access.user)))),
    head: (v) =>
      (v.status === 200 || v.status === 404) && isPairs(v.headers) &&
      isPairs(v.notModifiedHeaders) && isStr(v.etag) && isNum(v.mtimeMs),
  },
  compress: {
    args: (v) => isStr(v.real) && (v.encoding === "br" || v.encoding === "gzip") && isVersion(v),
    head: isVersion,
  },
  crc: {
    args: (v) => isStr(v.real) && isNum(v.size) && isNum(v.mtimeMs),
    head: (v) => isNum(v.crc),
  },
};

/**
 * The decoded arguments of a `kind` job, checked (the pool thread's end).
 *
 * @param kind the job kind
 * @param v the arguments as parsed from JSON
 * @returns the typed arguments
 * @throws {TypeError} when they are not the kind's shape
 */
export function jobArgs<K extends JobKind>(kind: K, v: unknown): JobTypes[K]["args"] {
  if (isObj(v) && SHAPES[kind].args(v)) return v as unknown as JobTypes[K]["args"];
  throw new TypeError(`malformed ${kind} job arguments`);
}

/**
 * The checked result head of a finished `kind` job (the worker's end).
 *
 * @param kind the job kind
 * @param a what the job answered
 * @returns the typed head and the body, or undefined when the job did not
 *   produce a well-formed result (answer `a.status`, or 500 if that is 200)
 * @example
 * ```ts
 * import { resultHead } from "./job_protocol.ts";
 * const body = new Uint8Array(3);
 * const ok = resultHead("compress", { status: 200, head: { size: 9, mtimeMs: 1, ino: 2 }, body });
 * console.assert(ok?.head.size === 9);
 * console.assert(resultHead("compress", { status: 200, head: { size: "9" }, body }) === undefined);
 * ```
 */
export function resultHead<K extends JobKind>(
  kind: K,
  a: JobAnswer,
): { head: JobTypes[K]["head"]; body: Uint8Array } | undefined {
  if (a.status !== 200 || a.body === undefined || !isObj(a.head)) return undefined;
  if (!SHAPES[kind].head(a.head)) return undefined;
  return { head: a.head as unknown as JobTypes[K]["head"], body: a.body };
}

/** What a pool thread needs to run jobs. */
export interface JobContext {
  /** The real root and the serving policy (what listings show). */
  policy: ServePolicy;
  page: PageConfig;
}

/** A job's result before it is encoded into the slab. */
export interface JobOutput<K extends JobKind> {
  head: JobTypes[K]["head"];
  body: Uint8Array;
}

/**
 * Runs a listing job: collect (sync readdir + lstat), sort, render one page
 * with the same code an HTTP worker uses inline.
 *
 * @param a the job's arguments
 * @param ctx the pool thread's serving policy and page settings
 * @returns the page, its body apart
 */
export function runListingJob(a: ListingArgs, ctx: JobContext): JobOutput<"listing"> {
  const q = parseListingQuery(a.query);
  const collectMax = Math.max(COLLECT_MAX, ctx.page.listingCap);
  const dirInfo = Deno.statSync(a.real);
  const entries = collectEntries(a.real, ctx.policy, {
    max: collectMax + 1,
    ...(a.access === undefined ? {} : guardsOf(a, ctx.policy.root)),
  });
  const truncated = entries.length > collectMax;
  if (truncated) entries.length = collectMax;
  // Under path rules not the folder's own mtime: a hidden entry's creation moves it.
  const mtimeMs = newestMtime(a.access === undefined ? dirInfo.mtime?.getTime() ?? 0 : 0, entries);
  sortEntries(entries, q.sort, q.order);
  // The README is read and rendered here too: off the HTTP worker's loop.
  const readme = a.json || q.json || q.txt ? undefined : loadReadmeSync(a.real, entries);
  const { body, ...head } = renderPage(entries, truncated, mtimeMs, q, a.json, a.path, ctx.page, {
    readme: readme?.html,
    readmeName: readme?.name,
    readmeTag: readme?.tag,
  });
  return { head, body };
}

/**
 * Runs a compress job (synchronous I/O: a pool thread).
 *
 * @param a the file and the version the worker answers about
 * @returns the version compressed and the bytes
 * @throws {import("./_compress.ts").FileChanged} when the file is another version
 */
export function runCompressJob(a: CompressArgs): JobOutput<"compress"> {
  const { version, body } = compressFileSync(a.real, a.encoding, a);
  return { head: version, body };
}

/** Compiled path rules by their JSON (a pool thread serves one set, or a few across reloads). */
const compiled = new Map<string, PathRules>();

/** The collector's filter and symlink check of a listing job under path rules. */
function guardsOf(a: ListingArgs, root: string): Pick<CollectOptions, "filter" | "linkOk"> {
  const key = JSON.stringify(a.access!.rules);
  let rules = compiled.get(key);
  if (rules === undefined) {
    if (compiled.size >= 4) compiled.clear();
    rules = new PathRules(a.access!.rules);
    compiled.set(key, rules);
  }
  const rel = (real: string) =>
    isInside(root, real) ? (root === "/" ? real : real.slice(root.length) || "/") : undefined;
  const filter = rules.entryFilter(a.path, a.access!.user, rel(a.real) ?? a.path);
  const r = rules;
  const linkOk = (link: string, real: string): boolean => {
    const x = rel(link), y = rel(real);
    return x === undefined || y === undefined || r.sameProtection(x, y);
  };
  return { filter, linkOk };
}

/**
 * zip (#15): runs a CRC job (synchronous reads: a pool thread): the CRC-32
 * of the file, checked against the version asked for before and after.
 *
 * @param a the file and the version the archive's layout holds
 * @returns the CRC, with an empty body
 * @throws {FileChanged} when the file is another version (the pool answers 409)
 */
export function runCrcJob(a: CrcArgs): JobOutput<"crc"> {
  using file = Deno.openSync(a.real, { read: true });
  const same = (i: Deno.FileInfo) =>
    i.isFile && i.size === a.size && (i.mtime?.getTime() ?? 0) === a.mtimeMs;
  if (!same(file.statSync())) throw new FileChanged();
  const buf = new Uint8Array(Math.min(1 << 20, Math.max(a.size, 1)));
  let crc = 0;
  for (let left = a.size; left > 0;) {
    const n = file.readSync(buf.subarray(0, Math.min(buf.length, left)));
    if (n === null || n === 0) throw new FileChanged();
    crc = crc32(buf.subarray(0, n), crc);
    left -= n;
  }
  if (!same(file.statSync())) throw new FileChanged();
  return { head: { crc }, body: new Uint8Array(0) };
}
