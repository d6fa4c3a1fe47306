/**
 * Development mode (`--dev`): wraps the whole handler. Every reply gets
 * `Cache-Control: no-cache` (CORS is switched on by the options); every
 * `text/html` 200 (files and listings) gets a small script before its
 * `</body>` that listens on {@linkcode DEV_EVENTS}, a server-sent-events
 * stream fed by a watcher of the root (started with the first listener,
 * stopped with the last): a changed stylesheet that the page links is
 * swapped in place (a cache-busting query), any other change reloads the
 * page. Requests lose `Accept-Encoding` here so HTML comes uncompressed and
 * the script can go in. Without `--dev` this module is not in the pipeline
 * at all.
 *
 * @module
 */
import type { BodyPart, Handler, Reply, RequestHead } from "./types.ts";
import type { ServePolicy } from "./resolve.ts";
import type { PathRules } from "./path_rules.ts";
import { type TreeWatch, watchTree } from "../workers/_watch_tree.ts";

/** The live-reload event stream's path (a dot segment: never a file a listing shows). */
export const DEV_EVENTS = "/.ringhttpd/livereload";
/** Largest HTML reply the script is put into (bigger ones go out unchanged). */
const INJECT_MAX = 8 * 1024 * 1024;
/** A comment every so often keeps proxies and idle timers from closing the stream. */
const PING_MS = 10_000;

/**
 * The script: a stylesheet change swaps that `<link>`, anything else reloads.
 * `data:` of an event is the changed file's URL path.
 */
export const LIVE_RELOAD_SCRIPT = "<script>(function(){" +
  `var s=new EventSource("${DEV_EVENTS}");` +
  "s.addEventListener('ready',function(){document.documentElement.dataset.livereload='on'});" +
  "s.onmessage=function(e){var p=e.data,hit=false;" +
  "if(/\\.css$/i.test(p)){var ls=document.querySelectorAll('link[rel~=stylesheet]');" +
  "for(var i=0;i<ls.length;i++){var u=new URL(ls[i].href);" +
  "if(u.origin===location.origin&&decodeURIComponent(u.pathname)===p){" +
  "u.searchParams.set('livereload',Date.now());ls[i].href=u.href;hit=true}}}" +
  "if(!hit)location.reload()}})();</script>";

const enc = new TextEncoder();
const SCRIPT_BYTES = enc.encode(LIVE_RELOAD_SCRIPT);

/** Listeners of the event stream and the watcher feeding them. */
class ReloadHub {
  readonly #root: string;
  readonly #policy: ServePolicy;
  readonly #clients = new Set<(chunk: Uint8Array) => void>();
  #watch?: TreeWatch;
  #ping?: ReturnType<typeof setInterval>;

  readonly #paths: PathRules | undefined;

  constructor(root: string, policy: ServePolicy, paths?: PathRules) {
    this.#root = root;
    this.#policy = policy;
    this.#paths = paths;
  }

  #start(): void {
    this.#watch = watchTree(this.#root, (ev) => {
      for (const p of ev.paths) {
        const url = this.#urlOf(p);
        if (url !== null) this.#send(enc.encode(`data: ${url}\n\n`));
      }
      if (ev.flag === "rescan") this.#send(enc.encode("data: /\n\n"));
    }, () => {});
    const ping = setInterval(() => this.#send(enc.encode(": ping\n\n")), PING_MS);
    Deno.unrefTimer(ping);
    this.#ping = ping;
  }

  /** The URL path of a changed real path; null when a listing would not show it (dotfiles). */
  #urlOf(p: string): string | null {
    const root = this.#root;
    if (p !== root && !p.startsWith(root === "/" ? "/" : root + "/")) return null;
    const rel = p.slice(root === "/" ? 0 : root.length) || "/";
    // An editor's swap files (`.x.swp`) and .git churn reload nothing.
    if (!this.#policy.dotfiles && /\/\./.test(rel)) return null;
    // The stream is answered before the access stage, to anyone: it names
    // only what an anonymous requester may read (path rules, #13).
    const paths = this.#paths;
    if (paths?.filters && !paths.mayRead(rel, undefined)) return null;
    return rel.replace(/[\r\n]/g, "");
  }

  #send(chunk: Uint8Array): void {
    for (const c of this.#clients) c(chunk);
  }

  /** One listener's stream (its `finally` runs when the client goes). */
  async *stream(): AsyncGenerator<Uint8Array> {
    const queue: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    const push = (c: Uint8Array) => {
      queue.push(c);
      wake?.();
    };
    this.#clients.add(push);
    if (this.#watch === undefined) this.#start();
    // Watching from here on: the page may rely on changes after `ready` being seen.
    push(enc.encode("retry: 300\nevent: ready\ndata: 1\n\n"));
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        await new Promise<void>((r) => wake = r);
        wake = undefined;
      }
    } finally {
      this.#clients.delete(push);
      if (this.#clients.size === 0) {
        this.#watch?.close();
        this.#watch = undefined;
        clearInterval(this.#ping);
      }
    }
  }
}

/** The request without `Accept-Encoding` (HTML must come uncompressed to take the script). */
function plain(req: RequestHead): RequestHead {
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === "accept-encoding") {
      const headers = h.slice(0, i).concat(h.slice(i + 2));
      return plain({ ...req, headers });
    }
  }
  return req;
}

function headerOf(r: Reply, name: string): string | undefined {
  for (const [k, v] of r.headers) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** All body bytes of a reply (its file slices read). */
async function bodyBytes(parts: readonly BodyPart[], length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    if (p instanceof Uint8Array) {
      out.set(p, at);
      at += p.length;
    } else {
      await p.file.seek(p.start, Deno.SeekMode.Start);
      let n = p.end - p.start;
      while (n > 0) {
        const got = await p.file.read(out.subarray(at, at + n));
        if (got === null) throw new Error("file shrank while read");
        at += got;
        n -= got;
      }
    }
  }
  return out;
}

/** `html` with the script before its last `</body>` (or at the end). */
function inject(html: Uint8Array): Uint8Array {
  // Latin-1 view of the bytes: finds ASCII `</body>` whatever the encoding of the rest.
  const text = new TextDecoder("latin1").decode(html.subarray(Math.max(0, html.length - 4096)));
  const i = text.toLowerCase().lastIndexOf("</body>");
  const at = i < 0 ? html.length : html.length - text.length + i;
  const out = new Uint8Array(html.length + SCRIPT_BYTES.length);
  out.set(html.subarray(0, at));
  out.set(SCRIPT_BYTES, at);
  out.set(html.subarray(at), at + SCRIPT_BYTES.length);
  return out;
}

/**
 * Wraps a handler for `--dev`.
 *
 * @param inner The pipeline.
 * @param root The real root (watched while a page listens).
 * @param policy What listings show (dotfile changes reload nothing unless served).
 * @param paths The path rules: changes of paths an anonymous requester may not read are not announced.
 * @returns The development handler.
 * @example
 * ```ts ignore
 * import { devHandler } from "./_dev.ts";
 * const h = devHandler(() => ({ status: 204, headers: [], body: [], length: 0 }), "/srv", {
 *   root: "/srv", dotfiles: false, followSymlinks: false,
 * });
 * ```
 */
export function devHandler(
  inner: Handler,
  root: string,
  policy: ServePolicy,
  paths?: PathRules,
): Handler {
  const hub = new ReloadHub(root, policy, paths);
  return async (req) => {
    if (req.path === DEV_EVENTS && (req.method === "GET" || req.method === "HEAD")) {
      return {
        status: 200,
        headers: [
          ["Content-Type", "text/event-stream"],
          ["Cache-Control", "no-cache"],
          ["Access-Control-Allow-Origin", "*"],
        ],
        body: [],
        length: -1,
        stream: hub.stream(),
      };
    }
    const r = await inner(plain(req));
    const headers = r.headers.filter(([k]) => k.toLowerCase() !== "cache-control");
    headers.push(["Cache-Control", "no-cache"]);
    const html = r.status === 200 && r.stream === undefined && r.length >= 0 &&
      r.length <= INJECT_MAX && (headerOf(r, "content-type") ?? "").startsWith("text/html") &&
      headerOf(r, "content-encoding") === undefined;
    if (!html) {
      // A new object: cached replies are shared and frozen; their raw head lacks the header.
      return { status: r.status, headers, body: r.body, length: r.length, release: r.release };
    }
    let body: Uint8Array;
    try {
      const sent = r.body.reduce(
        (n, p) => n + (p instanceof Uint8Array ? p.length : p.end - p.start),
        0,
      );
      body = sent === r.length ? inject(await bodyBytes(r.body, r.length)) : new Uint8Array(0);
    } finally {
      r.release?.();
    }
    const length = body.length === 0 ? r.length + SCRIPT_BYTES.length : body.length;
    const etag = headerOf(r, "etag");
    const out = headers.filter(([k]) => k.toLowerCase() !== "etag");
    if (etag !== undefined) out.push(["ETag", etag.replace(/"$/, '-lr"')]);
    return { status: 200, headers: out, body: body.length === 0 ? [] : [body], length };
  };
}
