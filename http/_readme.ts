/**
 * A folder's README under its listing, as GitHub and Caddy templates show
 * it: `README.md`, else `readme.md`, else `index.md`, among the entries the
 * listing itself shows (so a README the policy hides is never read), rendered
 * by markdown-it with raw HTML off (a `<script>` in it shows as text), and
 * no image from another origin (the page makes no request elsewhere: such an
 * image becomes its alt text; a link elsewhere stays a link, `rel=noopener
 * noreferrer nofollow`). Relative links and images are left relative: the
 * listing's URL is always the folder's, ending in `/`, so the browser
 * resolves them against the folder, and one rendering serves every URL path
 * that leads to the folder (the cache keys listings by real path).
 *
 * @module
 */
import type MarkdownIt from "markdown-it";
import type { Entry } from "./_collect.ts";

/** README names, in order of preference. */
export const README_NAMES: readonly string[] = ["README.md", "readme.md", "index.md"];
/** Larger READMEs are not rendered (a listing stays cheap). */
export const README_MAX_BYTES = 256 * 1024;

/** A rendered README, kept with the listing it belongs to. */
export interface Readme {
  /** Its file name. */
  name: string;
  /** Safe HTML. */
  html: string;
  /** Changes with the file (size and mtime): part of the page's ETag. */
  tag: string;
}

/**
 * The README entry of a folder, if it has one small enough to render.
 *
 * @param entries The folder's listed entries.
 * @returns The entry, or undefined.
 * @example
 * ```ts
 * import { findReadme } from "./_readme.ts";
 * findReadme([{ name: "README.md", type: "file", isDir: false, size: 5, mtimeMs: 0 }])?.name;
 * // "README.md"
 * ```
 */
export function findReadme(entries: readonly Entry[]): Entry | undefined {
  let best: Entry | undefined;
  let rank = README_NAMES.length;
  for (const e of entries) {
    if (e.isDir || e.lossy || e.special) continue;
    const r = README_NAMES.indexOf(e.name);
    if (r >= 0 && r < rank && e.size <= README_MAX_BYTES) {
      best = e;
      rank = r;
    }
  }
  return best;
}

const BASE = "http://readme.invalid/dir/";

/** Whether a URL written in the README stays on this server (relative, or a bare path). */
function sameOrigin(url: string): boolean {
  try {
    return new URL(url, BASE).origin === "http://readme.invalid";
  } catch {
    return false;
  }
}

/** The renderer, once loaded: markdown-it is imported on first use, not at worker start. */
/** A configured markdown-it instance. */
type Renderer = InstanceType<typeof MarkdownIt>;
let md: Renderer | undefined;
let loading: Promise<void> | undefined;

function configure(Md: typeof MarkdownIt): Renderer {
  const m = new Md({ html: false, linkify: false, typographer: false });
  m.core.ruler.push("ringhttpd_urls", (state) => {
    for (const block of state.tokens) {
      for (const t of block.children ?? []) {
        if (t.type === "link_open") {
          if (!sameOrigin(String(t.attrGet("href") ?? ""))) {
            t.attrSet("rel", "noopener noreferrer nofollow");
          }
        } else if (t.type === "image") {
          if (sameOrigin(String(t.attrGet("src") ?? ""))) t.attrSet("loading", "lazy");
          else {
            // No request to another origin: the alt text stands in.
            t.type = "text";
            t.children = null;
          }
        }
      }
    }
    return true;
  });
  return m;
}

/**
 * Loads the markdown renderer (a dynamic import, once): HTTP workers on the
 * first README they meet, pool threads when they start (their jobs are
 * synchronous).
 *
 * @returns Resolves when {@linkcode renderReadme} can run.
 */
export function loadMarkdown(): Promise<void> {
  loading ??= import("markdown-it").then((m) => {
    md = configure(m.default);
  });
  return loading;
}

/**
 * Renders a README to safe HTML ({@linkcode loadMarkdown} first).
 *
 * @param source The markdown.
 * @returns The HTML.
 * @example
 * ```ts
 * import { loadMarkdown, renderReadme } from "./_readme.ts";
 * await loadMarkdown();
 * renderReadme("[a](x.txt) <b>"); // '<p><a href="x.txt">a</a> &lt;b&gt;</p>\n'
 * ```
 */
export function renderReadme(source: string): string {
  if (md === undefined) throw new Error("renderReadme() before loadMarkdown()");
  return md.render(source);
}

const decoder = new TextDecoder();

function readmeOf(e: Entry, bytes: Uint8Array): Readme {
  return {
    name: e.name,
    html: renderReadme(decoder.decode(bytes)),
    tag: `${e.name}:${e.size}:${e.mtimeMs}`,
  };
}

/**
 * Finds, reads and renders a folder's README synchronously (a pool thread,
 * which loaded the renderer when it started; without it: no README).
 *
 * @param real The folder's real path.
 * @param entries Its listed entries.
 * @returns The README, or undefined (none, too large, or unreadable).
 */
export function loadReadmeSync(
  real: string,
  entries: readonly Entry[],
): Readme | undefined {
  const e = findReadme(entries);
  if (e === undefined || md === undefined) return undefined;
  try {
    const bytes = Deno.readFileSync(e.target ?? real + "/" + e.name);
    return bytes.length > README_MAX_BYTES ? undefined : readmeOf(e, bytes);
  } catch {
    return undefined; // one unreadable file never fails the page
  }
}

/**
 * {@linkcode loadReadmeSync} with an asynchronous read (an HTTP worker
 * listing inline; the rendering itself is bounded by README_MAX_BYTES).
 *
 * @param real The folder's real path.
 * @param entries Its listed entries.
 * @returns The README, or undefined.
 */
export async function loadReadme(
  real: string,
  entries: readonly Entry[],
): Promise<Readme | undefined> {
  const e = findReadme(entries);
  if (e === undefined) return undefined;
  try {
    await loadMarkdown();
    const bytes = await Deno.readFile(e.target ?? real + "/" + e.name);
    return bytes.length > README_MAX_BYTES ? undefined : readmeOf(e, bytes);
  } catch {
    return undefined;
  }
}
