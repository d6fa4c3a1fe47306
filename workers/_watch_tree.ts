/**
 * Watching a whole tree for the invalidation hub (`_invalidate.ts`), also
 * when part of it cannot be read.
 *
 * `Deno.watchFs(root, { recursive: true })` fails as a whole, with
 * PermissionDenied, when one folder anywhere below the root cannot be read
 * (inotify needs read access to add a watch). Then the tree is walked once
 * and watched in two parts: the folders on the way to an unreadable one,
 * each on its own (non-recursive: their entries, the unreadable folder's
 * name included), and every other readable folder below them recursively.
 * What cannot be watched is reported in one line. A folder that appears (or
 * becomes readable) under a folder watched on its own gets a watcher of its
 * own when its event arrives, up to {@linkcode EXTRA_WATCHERS_MAX}.
 *
 * @module
 */
import { isTempName } from "../write/atomic.ts";

/** Watchers added later for new or newly readable folders (each is an inotify instance). */
export const EXTRA_WATCHERS_MAX = 32;

/** A running watch of a tree. */
export interface TreeWatch {
  /** Folders below the root it could not watch (`/`-joined, relative to the root). */
  readonly unreadable: readonly string[];
  /** Stops every watcher. */
  close(): void;
}

/** What the walk found: folders to watch alone, subtrees to watch whole, folders it cannot read. */
interface Plan {
  alone: string[];
  whole: string[];
  unreadable: string[];
}

/**
 * Walks `root` and splits it as described in the module doc. Directories
 * only, symlinks not followed (a symlinked folder inside the root is watched
 * where it really is).
 */
function plan(root: string): Plan {
  const p: Plan = { alone: [], whole: [], unreadable: [] };
  /** Readable dirs, and whether their subtree holds an unreadable one. */
  const walk = (dir: string): boolean => {
    let subdirs: string[];
    try {
      subdirs = [];
      for (const e of Deno.readDirSync(dir)) if (e.isDirectory) subdirs.push(e.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      p.unreadable.push(dir);
      return true;
    }
    const base = dir.endsWith("/") ? dir : dir + "/";
    const clean: string[] = [];
    let dirty = false;
    for (const s of subdirs) {
      // A clean child adds nothing to the plan: its parent watches it whole.
      if (walk(base + s)) dirty = true;
      else clean.push(base + s);
    }
    if (dirty) {
      p.alone.push(dir);
      p.whole.push(...clean);
    }
    return dirty;
  };
  if (!walk(root)) p.whole.push(root);
  return p;
}

/**
 * Watches `root` recursively, falling back to the split watch when part of
 * the tree cannot be read.
 *
 * @param root The real path of the served root.
 * @param onEvent Each event, as Deno reports it.
 * @param onError A watcher stopped (the error), after which changes it
 *   covered are no longer reported.
 * @param log Told once when no more watchers are added for new folders.
 * @returns The running watch.
 * @throws The error of watching when even the split watch cannot start.
 * @example
 * ```ts ignore
 * import { watchTree } from "./_watch_tree.ts";
 * const w = watchTree("/srv/www", (ev) => console.log(ev.paths), console.error);
 * if (w.unreadable.length > 0) console.log("not watched:", w.unreadable);
 * w.close();
 * ```
 */
export function watchTree(
  root: string,
  onEvent: (ev: Deno.FsEvent) => void,
  onError: (e: unknown) => void,
  log: (line: string) => void = () => {},
): TreeWatch {
  const watchers: Deno.FsWatcher[] = [];
  let closed = false;
  /** Set in split mode: adds watchers for new folders. */
  const hook: { grow?: (ev: Deno.FsEvent) => void } = {};
  const pump = async (w: Deno.FsWatcher) => {
    try {
      for await (const ev of w) {
        // An upload being written (write/atomic.ts) changes nothing a cache holds until
        // its rename, whose event names the target too: skip the per-write events.
        if (ev.paths.every((p) => isTempName(p.slice(p.lastIndexOf("/") + 1)))) continue;
        if (!closed) hook.grow?.(ev);
        onEvent(ev);
      }
    } catch (e) {
      if (!closed) onError(e);
    }
  };
  const start = (paths: string | string[], recursive: boolean) => {
    const w = Deno.watchFs(paths, { recursive });
    watchers.push(w);
    pump(w);
  };
  const close = () => {
    closed = true;
    for (const w of watchers.splice(0)) {
      try {
        w.close();
      } catch {
        // already closed
      }
    }
  };
  try {
    start(root, true);
    return { unreadable: [], close };
  } catch (e) {
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
  }
  let p = plan(root);
  try {
    if (p.alone.length > 0) start(p.alone, false);
    if (p.whole.length > 0) start(p.whole, true);
  } catch (e) {
    // The tree changed between the walk and the watch: once more.
    close();
    closed = false;
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
    p = plan(root);
    if (p.alone.length > 0) start(p.alone, false);
    if (p.whole.length > 0) start(p.whole, true);
  }
  const alone = new Set(p.alone);
  const unreadable = new Set(p.unreadable);
  const watched = new Set(p.whole);
  let extra = 0;
  const rel = (d: string) => d === root ? "." : d.slice(root.length + (root === "/" ? 0 : 1));
  hook.grow = (ev: Deno.FsEvent) => {
    // A folder created in, or made readable in, a folder watched on its own.
    for (const path of ev.paths) {
      const parent = path.slice(0, path.lastIndexOf("/")) || "/";
      if (!alone.has(parent) || watched.has(path) || extra > EXTRA_WATCHERS_MAX) continue;
      try {
        if (!Deno.lstatSync(path).isDirectory) continue;
        if (extra === EXTRA_WATCHERS_MAX) {
          extra++;
          log(
            `watching no more new folders beside unreadable ones under ${root} ` +
              `(${EXTRA_WATCHERS_MAX} added); changes in newer ones show within 1 s`,
          );
          continue;
        }
        start(path, true);
        extra++;
        watched.add(path);
        unreadable.delete(path);
      } catch {
        // still unreadable, or gone: its name's events still come from the parent
      }
    }
  };
  return {
    get unreadable() {
      return [...unreadable].map(rel);
    },
    close,
  };
}
