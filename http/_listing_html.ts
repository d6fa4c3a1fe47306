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
import { entryHref, escapeHtml, humanSize, isoLikeUtc } from "./_listing_format.ts";
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
  /** Offer the folder as a tar download (`?download=tar`). */
  download?: boolean;
}

const encoder = new TextEncoder();

const CSS = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}" +
  "a{color:#0645ad;text-decoration:none}a:hover{text-decoration:underline}" +
  "table{border-collapse:collapse;width:100%}th,td{padding:.2em .8em;text-align:left;" +
  "white-space:nowrap}td:first-child{white-space:normal;word-break:break-all}" +
  "td.s,th.s{text-align:right}tbody tr:nth-child(odd){background:#f4f4f4}" +
  "nav{margin:.8em 0}.x{color:#888}form{display:inline;margin:0}" +
  "th button{font:inherit;font-weight:bold;color:#0645ad;background:none;border:0;padding:0;" +
  "cursor:pointer}th button:hover{text-decoration:underline}" +
  "#bar{display:flex;flex-wrap:wrap;gap:.5em 1.5em;align-items:center;margin:0 0 .8em}" +
  "#bar input{font:inherit;padding:.15em .5em;width:16em;max-width:100%}" +
  "table.f tbody tr:nth-child(odd){background:none}table.f tbody tr.o{background:#f4f4f4}" +
  "@media (prefers-color-scheme:dark){body{color:#ddd;background:#161616}a,th button" +
  "{color:#8ab4f8}tbody tr:nth-child(odd),table.f tbody tr.o{background:#222}}";

/**
 * Live filtering of this page's rows while typing in the filter box (Enter
 * asks the server to filter the whole folder, `?q=`, script or not); `/`
 * focuses the box; zebra stripes follow the visible rows. Names are read
 * from the DOM on first use, so rendering pays nothing per entry for it.
 */
const FILTER_JS = "(function(){" +
  "var t=document.querySelector('table'),f=document.getElementById('filter');" +
  "if(!t||!f||!t.tBodies[0])return;" +
  "var rows=null,names=null;" +
  "f.addEventListener('input',function(){" +
  "if(!rows){rows=[];names=[];var all=t.tBodies[0].rows;" +
  "for(var i=0;i<all.length;i++){var n=all[i].cells[0].textContent;" +
  "if(n!=='../'){rows.push(all[i]);names.push(n.toLowerCase())}}}" +
  "var v=f.value.trim().toLowerCase(),k=0;t.classList.toggle('f',v!=='');" +
  "for(var j=0;j<rows.length;j++){var hide=v!==''&&names[j].indexOf(v)<0;" +
  "rows[j].hidden=hide;if(!hide)rows[j].classList.toggle('o',k++%2===0)}});" +
  "document.addEventListener('keydown',function(e){" +
  "if(e.key==='/'&&document.activeElement!==f){e.preventDefault();f.focus()}})})();";

/** What a URL of this listing keeps from the current query. */
interface Keep {
  sort?: SortKey;
  order?: SortOrder;
  page?: number;
  perPage?: number;
  filter?: string;
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
    hidden({ perPage: q.perPage, filter: q.filter }) + "</form></th>";
}

function breadcrumbs(path: string): string {
  let out = '<a href="/">/</a>';
  let href = "/";
  const segs = path.split("/");
  for (let i = 1; i < segs.length - 1; i++) {
    href += encodeURIComponent(segs[i]) + "/";
    out += `<a href="${escapeHtml(href)}">${escapeHtml(segs[i])}</a>/`;
  }
  return out;
}

/** The bar above the table: the name filter (whole folder) and the folder download. */
function bar(ctx: RenderContext): string {
  const q = ctx.query;
  const value = q.filter === undefined ? "" : ` value="${escapeHtml(q.filter)}"`;
  let s = '<div id="bar"><form method="get" role="search">' +
    `<input type="search" id="filter" name="q"${value} placeholder="Filter names" ` +
    'autocomplete="off" aria-label="Filter names (Enter: the whole folder)">' +
    hidden({ sort: q.sort, order: q.order, perPage: q.perPage }) +
    " <button>Filter</button></form>";
  if (ctx.download) {
    s += '<form method="get"><button name="download" value="tar">Download folder as .tar' +
      "</button></form>";
  }
  s += "</div>\n";
  if (q.filter !== undefined) {
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
  const keep: Keep = { sort: q.sort, order: q.order, perPage: q.perPage, filter: q.filter };
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
  s += "</select>" + hidden({ sort: q.sort, order: q.order, filter: q.filter }) +
    " <button>per page</button></form></nav>\n";
  return s;
}

function row(e: Entry): string {
  const text = escapeHtml(e.name) + (e.isDir ? "/" : "");
  if (e.lossy && e.href === undefined) {
    return `<tr><td><span class="x" title="name is not valid UTF-8">${text}</span></td>` +
      "<td></td><td></td></tr>\n";
  }
  const href = e.href === undefined ? entryHref(e.name, e.isDir) : escapeHtml(e.href);
  return `<tr><td><a href="${href}">${text}</a></td>` +
    (e.isDir
      ? '<td class="s">-</td>'
      : `<td class="s" title="${e.size} bytes">` + humanSize(e.size) + "</td>") +
    "<td>" + (e.mtimeMs ? isoLikeUtc(e.mtimeMs) : "") + "</td></tr>\n";
}

/**
 * Renders one page of a listing as a complete HTML5 document (UTF-8 bytes).
 * Works without JavaScript; a small inline script filters the page's rows
 * while typing (progressive enhancement).
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
  let s = '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    '<meta name="color-scheme" content="light dark">' +
    // No favicon request: a 404 per listing would be noise in every console.
    '<link rel="icon" href="data:,">' +
    `<title>Index of ${title}</title><style>${CSS}</style></head>\n<body><h1>Index of ` +
    breadcrumbs(ctx.path) + "</h1>\n" + bar(ctx) + nav + "<table><thead><tr>" +
    header("Name", "name", q, "") + header("Size", "size", q, ' class="s"') +
    header("Last modified", "mtime", q, "") + "</tr></thead>\n<tbody>\n";
  if (ctx.path !== "/") s += '<tr><td><a href="../">../</a></td><td></td><td></td></tr>\n';
  for (let i = 0; i < entries.length; i++) s += row(entries[i]);
  s += "</tbody></table>\n";
  if (ctx.truncated) {
    s += `<p>Only the first ${ctx.all ?? ctx.total} entries read from this directory ` +
      "are listed.</p>\n";
  }
  s += nav + "<script>" + FILTER_JS + "</script>\n</body></html>\n";
  return encoder.encode(s);
}
