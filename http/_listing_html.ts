/**
 * The HTML listing page: a complete HTML5 document, inline CSS with a dark
 * scheme, usable without JavaScript. Re-exported by `listing.ts`.
 *
 * Crawlers: the only `<a href>`s on a page are the entries, the breadcrumbs,
 * `../` and the pager (canonical URLs: `?page=N` alone while the order is the
 * default). Sorting, the page size, the name filter and the folder download
 * are `<form method="get">` buttons, which `wget -r` and other crawlers do
 * not submit (wget ignores `rel=nofollow`), so a mirror fetches each file once
 * and each listing page once. A browser submits them like links, JavaScript
 * or not.
 *
 * @module
 */
import type { Entry } from "./_collect.ts";
import { entryHref, escapeHtml, humanSize, isoLike } from "./_listing_format.ts";
import type { ListingQuery, SortKey, SortOrder } from "./listing.ts";

/** Everything the renderer needs besides the entries. */
export interface RenderContext {
  /** The decoded URL path of the directory, starting and ending with `/`. */
  path: string;
  /** The parsed query string, for sort links and paging. */
  query: ListingQuery;
  /** Total number of pages (>= 1). */
  pages: number;
  /** Entries across all pages (those matching the filter, if one is given). */
  total: number;
  /** Entries in the directory, filter or not. @default total */
  all?: number;
  /** Collection stopped at `all` entries: the directory holds more. */
  truncated?: boolean;
  /** Offer the folder as a tar download (`?download=tar`) and the selection downloads. */
  download?: boolean;
  /** Counts over the whole folder (not only this page): folders, files and their bytes. */
  counts?: Counts;
  /** The folder's README, rendered to HTML (already safe), shown below the listing. */
  readme?: string;
  /** The README's file name, for its heading. */
  readmeName?: string;
  /** A search's page (`?q=` over the folder's tree): hits named by their path. */
  search?: { partial: boolean; more: boolean };
  /** Extra markup before `</body>` (the `--dev` live-reload script). */
  tail?: string;
}

/** What a folder holds, as the summary line says it. */
export interface Counts {
  dirs: number;
  files: number;
  /** Bytes of the files (symlinks: their targets'). */
  bytes: number;
}

/**
 * Counts folders, files and the files' bytes.
 *
 * @param entries The whole folder.
 * @returns The counts.
 * @example
 * ```ts
 * import { countEntries } from "./_listing_html.ts";
 * countEntries([]); // { dirs: 0, files: 0, bytes: 0 }
 * ```
 */
export function countEntries(entries: readonly Entry[]): Counts {
  const c: Counts = { dirs: 0, files: 0, bytes: 0 };
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.isDir) c.dirs++;
    else {
      c.files++;
      c.bytes += e.size;
    }
  }
  return c;
}

const encoder = new TextEncoder();

/**
 * The page's style. The columns have fixed widths (`table-layout:fixed`) and
 * the table a maximum width, so Size and Date stand at the same x in every
 * folder and close to the names on a wide screen; names wrap at word
 * boundaries (`<wbr>` after separators in long names, `overflow-wrap` only
 * for a single word wider than the column); under 40em the date column
 * hides, keeping name and size readable on a phone.
 */
const CSS = "body{font:14px/1.45 system-ui,sans-serif;margin:1.2em 1.5em;color:#222;" +
  "background:#fff}[hidden]{display:none!important}a{color:#0645ad;text-decoration:none}a:hover{text-decoration:underline}" +
  "h1{font-size:1.35em;font-weight:600;margin:0 0 .6em;overflow-wrap:break-word}" +
  "h1 a.h{display:inline-flex;align-items:center;gap:.25em;padding:0 .3em;border-radius:4px;" +
  "background:#eef2fb;margin-right:.15em}" +
  "table{border-collapse:collapse;table-layout:fixed;width:100%;max-width:52em}" +
  "th,td{padding:.25em .6em;text-align:left;vertical-align:top}" +
  "td:first-child{overflow-wrap:break-word;padding-left:.3em}" +
  "th:nth-child(2),td:nth-child(2){text-align:right;width:6.5em;white-space:nowrap}" +
  "th:nth-child(3),td:nth-child(3){width:11.5em;white-space:nowrap}" +
  "tbody tr:nth-child(odd){background:#f4f4f4}tbody tr:focus-within{background:#dde7fb}" +
  "td svg{width:16px;height:16px;vertical-align:-3px;margin:0 .35em 0 .15em}" +
  "td input{margin:0 .2em 0 0;vertical-align:-2px}td .l{color:#888;font-size:.9em}" +
  "nav{margin:.8em 0}.x{color:#888}form{display:inline;margin:0}" +
  "th button{font:inherit;font-weight:bold;color:#0645ad;background:none;border:0;padding:0;" +
  "cursor:pointer}th button:hover{text-decoration:underline}" +
  "#bar{display:flex;flex-wrap:wrap;gap:.5em 1.2em;align-items:center;margin:0 0 .6em}" +
  "#bar input{font:inherit;padding:.15em .5em;width:16em;max-width:100%}" +
  "#sum{color:#555;margin:0 0 .5em}" +
  "table.f tbody tr:nth-child(odd){background:none}table.f tbody tr.o{background:#f4f4f4}" +
  "#gal{display:flex;flex-wrap:wrap;gap:.6em;margin:.8em 0}#gal a{display:block;width:10em;" +
  "font-size:.85em;overflow-wrap:break-word}#gal img{width:10em;height:10em;object-fit:cover;" +
  "display:block;background:#eee}" +
  "#readme{max-width:60em;border-top:1px solid #ddd;margin-top:1.5em;padding-top:.5em}" +
  "#readme img{max-width:100%}#readme pre{overflow:auto;background:#f4f4f4;padding:.6em}" +
  "@media (max-width:40em){body{margin:.8em .5em}th:nth-child(3),td:nth-child(3){display:none}" +
  "th:nth-child(2),td:nth-child(2){width:5.6em}th,td{padding:.3em .35em}}" +
  "@media (prefers-color-scheme:dark){body{color:#ddd;background:#161616}a,th button" +
  "{color:#8ab4f8}tbody tr:nth-child(odd),table.f tbody tr.o{background:#222}" +
  "tbody tr:focus-within{background:#263450}h1 a.h{background:#232c3d}#sum{color:#aaa}" +
  "#readme{border-color:#333}#readme pre{background:#222}#gal img{background:#222}}";

/**
 * The icon sprite: one `<symbol>` per file kind, used by reference from each
 * row (`<svg><use href=#d>`), so an icon costs a row ~30 bytes and no
 * request.
 */
const SPRITE = '<svg style="display:none" aria-hidden="true">' +
  // d: folder
  '<symbol id="d" viewBox="0 0 16 16"><path fill="#e8a93b" d="M1 3.5C1 2.7 1.7 2 2.5 2h3.8l1.6 ' +
  '1.6h5.6c.8 0 1.5.7 1.5 1.5v7.4c0 .8-.7 1.5-1.5 1.5h-11C1.7 14 1 13.3 1 12.5z"/></symbol>' +
  // f: file
  '<symbol id="f" viewBox="0 0 16 16"><path fill="#fff" stroke="#8a8f98" d="M3.5 1.5h6l3 3v10h-9z' +
  'M9.5 1.5v3h3"/></symbol>' +
  // t: text / document
  '<symbol id="t" viewBox="0 0 16 16"><path fill="#fff" stroke="#5a7bb5" d="M3.5 1.5h6l3 3v10h-9z' +
  'M9.5 1.5v3h3"/><path stroke="#5a7bb5" d="M5 7.5h6M5 9.5h6M5 11.5h4"/></symbol>' +
  // c: code
  '<symbol id="c" viewBox="0 0 16 16"><path fill="#fff" stroke="#7a5ab5" d="M3.5 1.5h6l3 3v10h-9z' +
  'M9.5 1.5v3h3"/><path fill="none" stroke="#7a5ab5" d="M6.5 8 5 9.5 6.5 11M9.5 8l1.5 1.5L9.5 11"/>' +
  "</symbol>" +
  // i: image
  '<symbol id="i" viewBox="0 0 16 16"><rect x="1.5" y="2.5" width="13" height="11" rx="1" ' +
  'fill="#fff" stroke="#3c9a5f"/><circle cx="5.5" cy="6" r="1.3" fill="#3c9a5f"/>' +
  '<path fill="#3c9a5f" d="M2 13l4-4.5 2.5 2.5 2-2 3.5 4z"/></symbol>' +
  // a: audio
  '<symbol id="a" viewBox="0 0 16 16"><path fill="#c0508a" d="M6 3l7-1.5v9a2 2 0 1 1-1-1.7V4.2L7 ' +
  '5.3v7.2a2 2 0 1 1-1-1.7z"/></symbol>' +
  // v: video
  '<symbol id="v" viewBox="0 0 16 16"><rect x="1.5" y="3" width="13" height="10" rx="1.5" ' +
  'fill="#d9534f"/><path fill="#fff" d="M6.5 5.5v5l4-2.5z"/></symbol>' +
  // z: archive
  '<symbol id="z" viewBox="0 0 16 16"><path fill="#f2e6c9" stroke="#a5862e" d="M3.5 1.5h9v13h-9z"/>' +
  '<path stroke="#a5862e" d="M8 2v1.5M8 4.5v1.5M8 7v1.5"/><rect x="6.8" y="9" width="2.4" ' +
  'height="2.6" fill="#a5862e"/></symbol>' +
  // p: pdf
  '<symbol id="p" viewBox="0 0 16 16"><path fill="#fff" stroke="#c33" d="M3.5 1.5h6l3 3v10h-9z' +
  'M9.5 1.5v3h3"/><rect x="4.5" y="8" width="7" height="4" fill="#c33"/></symbol>' +
  // l: symlink badge
  '<symbol id="l" viewBox="0 0 16 16"><path fill="none" stroke="#888" stroke-width="1.6" ' +
  'd="M3 12c0-4 2.5-6 7-6M8 3l3 3-3 3"/></symbol>' +
  // h: home
  '<symbol id="h" viewBox="0 0 16 16"><path fill="currentColor" d="M8 1.5 1 7.5h2v7h4v-4h2v4h4v-7' +
  'h2z"/></symbol></svg>\n';

/** File extension (lower case) -> sprite symbol. */
const KIND: Record<string, string> = {};
for (
  const [id, exts] of [
    ["i", "png jpg jpeg gif webp avif svg bmp ico tif tiff heic jxl"],
    ["a", "mp3 ogg oga flac wav m4a aac opus wma mid midi"],
    ["v", "mp4 webm mkv mov avi m4v ogv wmv mpg mpeg"],
    ["z", "zip tar gz tgz bz2 xz zst 7z rar jar deb rpm iso dmg lz lzma br"],
    ["p", "pdf"],
    ["t", "txt md markdown rst adoc org csv tsv log doc docx odt rtf tex epub"],
    [
      "c",
      "js mjs cjs ts tsx jsx json jsonc html htm css scss xml yaml yml toml ini c h cc cpp hpp " +
      "rs go py rb java kt swift sh bash zsh php pl lua sql wasm vue svelte ex exs hs ml zig",
    ],
  ] as const
) for (const x of exts.split(" ")) KIND[x] = id;

/**
 * The sprite symbol of an entry: folder, else by extension (image, audio,
 * video, archive, pdf, text, code), else a plain file.
 *
 * @param name The entry name.
 * @param isDir Listed as a directory.
 * @returns A symbol id of the sprite.
 * @example
 * ```ts
 * import { iconOf } from "./_listing_html.ts";
 * iconOf("photo.JPG", false); // "i"
 * ```
 */
export function iconOf(name: string, isDir: boolean): string {
  if (isDir) return "d";
  const dot = name.lastIndexOf(".");
  if (dot <= 0) return "f";
  return KIND[name.slice(dot + 1).toLowerCase()] ?? "f";
}

/** Whether a name is an image a browser shows (the gallery view). */
export function isImage(name: string): boolean {
  return iconOf(name, false) === "i";
}

/** Longer names get `<wbr>` break points; shorter ones fit a phone's name column whole. */
const WRAP_FROM = 24;
const SEPARATOR = /[-_.+~,;=@/]/;

/**
 * A name as HTML text, with `<wbr>` after separators (`-`, `_`, `.`, ...)
 * when it is long, so it wraps between its words rather than inside one
 * (`big-50MB.bin` has no break opportunity of its own: UAX #14 keeps a
 * hyphen before a digit).
 *
 * @param name The entry name.
 * @returns The escaped text.
 * @example
 * ```ts
 * import { wrappableName } from "./_listing_html.ts";
 * wrappableName("a<b"); // "a&lt;b"
 * ```
 */
export function wrappableName(name: string): string {
  if (name.length < WRAP_FROM) return escapeHtml(name);
  let out = "";
  let last = 0;
  for (let i = 0; i < name.length - 1; i++) {
    if (SEPARATOR.test(name[i]) && !SEPARATOR.test(name[i + 1])) {
      out += escapeHtml(name.slice(last, i + 1)) + "<wbr>";
      last = i + 1;
    }
  }
  return out + escapeHtml(name.slice(last));
}

/**
 * Keyboard and filter, on top of a page that works without it: typing in
 * the filter box hides this page's rows live (Enter asks the server, `?q=`,
 * script or not); `/` focuses the box, Escape leaves it; arrows or j/k move
 * between entries (focus on the link, so Enter opens it natively);
 * Backspace or h goes up. Names are read from the DOM on first use, so
 * rendering pays nothing per entry for it.
 */
const PAGE_JS = "(function(){" +
  "var t=document.getElementById('list'),f=document.getElementById('filter');" +
  "if(!t||!t.tBodies[0])return;" +
  "var rows=null,names=null;" +
  "if(f)f.addEventListener('input',function(){" +
  "if(!rows){rows=[];names=[];var all=t.tBodies[0].rows;" +
  "for(var i=0;i<all.length;i++){var n=all[i].cells[0].textContent;" +
  "if(n!=='../'){rows.push(all[i]);names.push(n.toLowerCase())}}}" +
  "var v=f.value.trim().toLowerCase(),k=0;t.classList.toggle('f',v!=='');" +
  "for(var j=0;j<rows.length;j++){var hide=v!==''&&names[j].indexOf(v)<0;" +
  "rows[j].hidden=hide;if(!hide)rows[j].classList.toggle('o',k++%2===0)}});" +
  "var sel=document.getElementById('sel'),p=document.getElementById('pick');" +
  "if(sel&&p){p.hidden=true;var r=t.tBodies[0].rows;for(var i=0;i<r.length;i++){" +
  "var a=r[i].cells[0].querySelector('a');if(!a||a.getAttribute('href')==='../')continue;" +
  "var n=a.textContent;if(a.getAttribute('href').slice(-1)==='/')n=n.slice(0,-1);" +
  "var c=document.createElement('input');c.type='checkbox';c.name='select';c.value=n;" +
  "c.setAttribute('form','sel');r[i].cells[0].insertBefore(c,r[i].cells[0].firstChild)}}" +
  "function links(){var o=[],r=t.tBodies[0].rows;for(var i=0;i<r.length;i++){" +
  "if(r[i].hidden)continue;var a=r[i].cells[0].querySelector('a');if(a)o.push(a)}return o}" +
  "document.addEventListener('keydown',function(e){" +
  "if(e.ctrlKey||e.metaKey||e.altKey)return;var a=document.activeElement,k=e.key;" +
  "if(a&&(a.tagName==='INPUT'&&a.type!=='checkbox'||a.tagName==='SELECT'||" +
  "a.tagName==='TEXTAREA')){if(k==='Escape'){a.blur()}return}" +
  "if(k==='/'&&f){e.preventDefault();f.focus();return}" +
  "if(k==='ArrowDown'||k==='j'||k==='ArrowUp'||k==='k'){var l=links();if(!l.length)return;" +
  "e.preventDefault();var i=l.indexOf(a&&a.closest?a.closest('td')&&a.closest('td')" +
  ".querySelector('a'):null),d=(k==='ArrowDown'||k==='j')?1:-1;" +
  "i=i<0?(d>0?0:l.length-1):Math.max(0,Math.min(l.length-1,i+d));l[i].focus();return}" +
  "if((k==='Backspace'||k==='h')&&location.pathname!=='/'){e.preventDefault();" +
  "location.href='../'}})})();";

/** What a URL of this listing keeps from the current query. */
interface Keep {
  sort?: SortKey;
  order?: SortOrder;
  page?: number;
  perPage?: number;
  filter?: string;
  view?: "gallery";
  /** `scope=folder`: `filter` stays within the folder. */
  here?: boolean;
}

/**
 * The canonical query of a listing URL, HTML-escaped: only what differs
 * from the defaults, so each page has one URL (`./` for the first page in
 * name order), which is what keeps a mirror from fetching a page twice.
 *
 * @param k What to keep.
 * @returns `?...` or `./`.
 * @example
 * ```ts
 * import { listingHref } from "./listing.ts";
 * listingHref({ page: 2 }); // "?page=2"
 * listingHref({ sort: "size", order: "desc", page: 1 }); // "?sort=size&amp;order=desc"
 * ```
 */
export function listingHref(k: Keep): string {
  const parts: string[] = [];
  if ((k.sort ?? "name") !== "name" || (k.order ?? "asc") !== "asc") {
    parts.push("sort=" + (k.sort ?? "name"), "order=" + (k.order ?? "asc"));
  }
  if (k.page !== undefined && k.page > 1) parts.push("page=" + k.page);
  if (k.perPage !== undefined) parts.push("per_page=" + k.perPage);
  if (k.filter !== undefined) parts.push("q=" + encodeURIComponent(k.filter));
  if (k.view !== undefined) parts.push("view=" + k.view);
  if (k.here && k.filter !== undefined) parts.push("scope=folder");
  return parts.length === 0 ? "./" : "?" + escapeHtml(parts.join("&"));
}

/** Hidden form fields carrying `k` along (defaults left out). */
function hidden(k: Keep): string {
  let s = "";
  const field = (name: string, v: string) =>
    s += `<input type="hidden" name="${name}" value="${escapeHtml(v)}">`;
  if (k.sort !== undefined && (k.sort !== "name" || k.order !== "asc")) {
    field("sort", k.sort);
    field("order", k.order ?? "asc");
  }
  if (k.perPage !== undefined) field("per_page", String(k.perPage));
  if (k.filter !== undefined) field("q", k.filter);
  if (k.view !== undefined) field("view", k.view);
  if (k.here && k.filter !== undefined) field("scope", "folder");
  return s;
}

/** A column header: a GET form whose button sorts by `key` (the other way when active). */
function header(label: string, key: SortKey, q: ListingQuery, cls: string): string {
  const active = q.sort === key;
  const next: SortOrder = active && q.order === "asc" ? "desc" : "asc";
  // Entities, not the characters: one non-Latin-1 char makes the whole
  // document a two-byte string and encoding ~2x slower.
  const mark = active ? (q.order === "asc" ? " &uarr;" : " &darr;") : "";
  const aria = active ? ` aria-sort="${q.order === "asc" ? "ascending" : "descending"}"` : "";
  // The button first: the query reads `sort=...&order=...` like the pager's.
  return `<th${cls}${aria}><form method="get"><button name="sort" value="${key}">` +
    `${label}${mark}</button><input type="hidden" name="order" value="${next}">` +
    hidden({ perPage: q.perPage, filter: q.filter, view: q.view, here: q.here }) + "</form></th>";
}

/** The breadcrumb: a labelled Home target, then one link per folder. */
function breadcrumbs(path: string): string {
  let out = '<a class="h" href="/" title="Home (the top folder)"><svg width="16" height="16" ' +
    'aria-hidden="true"><use href=#h></use></svg>Home</a>/';
  let href = "/";
  const segs = path.split("/");
  for (let i = 1; i < segs.length - 1; i++) {
    href += encodeURIComponent(segs[i]) + "/";
    out += `<a href="${escapeHtml(href)}">${escapeHtml(segs[i])}</a>/`;
  }
  return out;
}

function plural(n: number, one: string, many: string): string {
  return n + " " + (n === 1 ? one : many);
}

/** The bar above the table: the name filter (whole folder), the views and the downloads. */
function bar(ctx: RenderContext, images: boolean): string {
  const q = ctx.query;
  const value = q.filter === undefined ? "" : ` value="${escapeHtml(q.filter)}"`;
  let s = '<div id="bar"><form method="get" role="search">' +
    `<input type="search" id="filter" name="q"${value} placeholder="Search names below" ` +
    'autocomplete="off" aria-label="Filter this page; Enter searches every folder below">' +
    hidden({ sort: q.sort, order: q.order, perPage: q.perPage, view: q.view }) +
    " <button>Search</button></form>";
  if (images || q.view === "gallery") {
    const to = q.view === "gallery" ? "list" : "gallery";
    s += '<form method="get">' + hidden({ sort: q.sort, order: q.order, perPage: q.perPage }) +
      `<button name="view" value="${to}">${to === "gallery" ? "Gallery view" : "List view"}` +
      "</button></form>";
  }
  if (ctx.download) {
    s += '<form method="get"><button name="download" value="tar">Download folder as .tar' +
      "</button></form>";
    // The rows' checkboxes belong to this form (`form=sel`): no nested forms in the table.
    s += '<form method="get" id="sel"><button name="download" value="zip">Download selected ' +
      'as .zip</button> <button name="download" value="tar">Download selected as .tar</button>' +
      "</form>";
    if (q.pick !== true) {
      // Without script, the checkboxes come with the selection view; with it, at once.
      s += '<form method="get" id="pick">' +
        hidden({ sort: q.sort, order: q.order, perPage: q.perPage, filter: q.filter }) +
        '<button name="pick" value="1">Select files</button></form>';
    }
  }
  s += "</div>\n";
  if (ctx.counts !== undefined) {
    const c = ctx.counts;
    s += `<p id="sum">${plural(c.dirs, "folder", "folders")}, ${
      plural(c.files, "file", "files")
    }, ${humanSize(c.bytes)} in total</p>\n`;
  }
  if (q.filter !== undefined && ctx.search !== undefined) {
    const clear = listingHref({ sort: q.sort, order: q.order, perPage: q.perPage });
    s +=
      `<p id="found">${ctx.total}${ctx.search.more ? "+" : ""} ${
        ctx.total === 1 ? "name" : "names"
      } under this folder match &ldquo;${escapeHtml(q.filter)}&rdquo; (any case; * and ? ` +
      `are wildcards). <a href="${clear}">Show the folder</a></p>\n`;
    if (ctx.search.partial) {
      s += '<p id="partial"><strong>Partial results:</strong> the search index is not ready ' +
        "and the walk of this folder ran out of time; some matches may be missing.</p>\n";
    }
  } else if (q.filter !== undefined) {
    const clear = listingHref({ sort: q.sort, order: q.order, perPage: q.perPage });
    s += `<p>${ctx.total} of ${ctx.all ?? ctx.total} names contain &ldquo;` +
      `${escapeHtml(q.filter)}&rdquo; (any case). <a href="${clear}">Show all</a></p>\n`;
  }
  return s;
}

/** Page sizes offered by the pager's menu (any 1..cap works in the URL). */
const PAGE_SIZES = [100, 1000, 10000];

/** The pager (above and below the table): previous / page i of n / next, and the page size. */
function pager(ctx: RenderContext, perPage: number): string {
  const q = ctx.query;
  if (ctx.pages <= 1 && q.perPage === undefined) return "";
  const keep: Keep = {
    sort: q.sort,
    order: q.order,
    perPage: q.perPage,
    filter: q.filter,
    view: q.view,
    here: q.here,
  };
  let s = "<nav>";
  if (q.page > 1) {
    s += `<a href="${listingHref({ ...keep, page: q.page - 1 })}" rel="prev">previous</a> `;
  }
  s += `page ${q.page} of ${ctx.pages} (${ctx.total} entries)`;
  if (q.page < ctx.pages) {
    s += ` <a href="${listingHref({ ...keep, page: q.page + 1 })}" rel="next">next</a>`;
  }
  s += ' <form method="get"><select name="per_page" aria-label="Entries per page">';
  const sizes = PAGE_SIZES.includes(perPage)
    ? PAGE_SIZES
    : [...PAGE_SIZES, perPage].sort((a, b) => a - b);
  for (const n of sizes) s += `<option${n === perPage ? " selected" : ""}>${n}</option>`;
  s += "</select>" +
    hidden({ sort: q.sort, order: q.order, filter: q.filter, view: q.view, here: q.here }) +
    " <button>per page</button></form></nav>\n";
  return s;
}

/** A `value` attribute: unquoted when the name allows it (a byte saved per quote per row). */
function attrValue(name: string): string {
  return /^[A-Za-z0-9._-]+$/.test(name) ? name : `"${escapeHtml(name)}"`;
}

/**
 * One row. End tags of `td` and `tr` are left out (HTML allows it; ~20 bytes
 * a row, a sixth of a 1,000-entry page); the date's zone is in the header.
 * `select`: the row's checkbox (of the `#sel` form), server-rendered in the
 * selection view (`?pick=1`, no script needed); otherwise the script adds
 * the checkboxes, so the default page does not pay ~50 bytes a row for them.
 */
function row(e: Entry, select: boolean): string {
  const text = wrappableName(e.name) + (e.isDir ? "/" : "");
  const icon = `<svg><use href=#${iconOf(e.name, e.isDir)}></svg>`;
  if (e.lossy && e.href === undefined) {
    return `<tr><td>${icon}<span class="x" title="name is not valid UTF-8">${text}</span>` +
      "<td><td>\n";
  }
  const href = e.href === undefined ? entryHref(e.name, e.isDir) : escapeHtml(e.href);
  const box = select && !e.lossy
    ? `<input type=checkbox name=select value=${attrValue(e.name)} form=sel>`
    : "";
  const link = e.type === "symlink"
    ? ' <span class="l" title="symbolic link" role="img" aria-label="symbolic link">' +
      "<svg><use href=#l></svg></span>"
    : "";
  return `<tr><td>${box}${icon}<a href="${href}">${text}</a>${link}` +
    (e.isDir ? "<td>-" : `<td title="${e.size} bytes">` + humanSize(e.size)) +
    "<td>" + (e.mtimeMs ? isoLike(e.mtimeMs) : "") + "\n";
}

/** The gallery: each image of this page as a lazily loaded tile of the original. */
function gallery(entries: readonly Entry[]): string {
  let s = '<div id="gal">';
  for (const e of entries) {
    if (e.isDir || e.lossy || !isImage(e.name)) continue;
    const href = entryHref(e.name, false);
    s += `<a href="${href}"><img loading="lazy" src="${href}" alt="">${escapeHtml(e.name)}</a>`;
  }
  return s + "</div>\n";
}

/**
 * Renders one page of a listing as a complete HTML5 document (UTF-8 bytes).
 * Works without JavaScript; a small inline script adds the live filter and
 * the keyboard (progressive enhancement).
 *
 * @param entries The sorted entries of this page.
 * @param ctx Path, query and paging.
 * @param perPage Entries per page (for the pager's menu). @default 1000
 * @returns The encoded document.
 * @example
 * ```ts
 * import { renderHtml } from "./listing.ts";
 * const q = { sort: "name", order: "asc", page: 1, json: false } as const;
 * renderHtml([], { path: "/", query: q, pages: 1, total: 0 });
 * ```
 */
export function renderHtml(
  entries: readonly Entry[],
  ctx: RenderContext,
  perPage = 1000,
): Uint8Array {
  const title = escapeHtml(ctx.path);
  const q = ctx.query;
  const nav = pager(ctx, perPage);
  let images = false;
  for (let i = 0; i < entries.length && !images; i++) {
    images = !entries[i].isDir && isImage(entries[i].name);
  }
  const galleryView = q.view === "gallery";
  let s = '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    '<meta name="color-scheme" content="light dark">' +
    // No favicon request: a 404 per listing would be noise in every console.
    '<link rel="icon" href="data:,">' +
    `<title>Index of ${title}</title><style>${CSS}</style></head>\n<body>` + SPRITE +
    "<h1>Index of " + breadcrumbs(ctx.path) + "</h1>\n" + bar(ctx, images) + nav;
  if (galleryView) s += gallery(entries);
  s += '<table id="list"><thead><tr>' + header("Name", "name", q, "") +
    header("Size", "size", q, "") + header("Modified (UTC)", "mtime", q, "") +
    "</tr></thead>\n<tbody>\n";
  if (ctx.path !== "/") {
    s += '<tr><td><svg><use href=#d></svg><a href="../">../</a><td><td>\n';
  }
  const select = ctx.download === true && q.pick === true;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (galleryView && !e.isDir && !e.lossy && isImage(e.name)) continue;
    s += row(e, select);
  }
  s += "</tbody></table>\n";
  if (ctx.truncated) {
    s += `<p>Only the first ${ctx.all ?? ctx.total} entries read from this directory ` +
      "are listed.</p>\n";
  }
  s += nav;
  if (ctx.readme !== undefined) {
    s += `<article id="readme"><p class="x">${escapeHtml(ctx.readmeName ?? "README")}</p>` +
      ctx.readme + "</article>\n";
  }
  s += "<script>" + PAGE_JS + "</script>\n" + (ctx.tail ?? "") + "</body></html>\n";
  return encoder.encode(s);
}
