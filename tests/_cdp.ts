/**
 * A minimal Chrome DevTools Protocol driver for tests: starts Debian's
 * headless chromium on `--remote-debugging-port=0`, reads the
 * `DevTools listening on ws://...` line from its stderr, and speaks CDP over
 * Deno's built-in WebSocket (flat sessions, one per page). No npm browser
 * library needed.
 *
 * @module
 */

/** Where chromium is, or null when it is not installed. */
export function findChromium(): string | null {
  const candidates = [Deno.env.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"];
  for (const c of candidates) {
    if (!c) continue;
    try {
      if (Deno.statSync(c).isFile) return c;
    } catch {
      // not there
    }
  }
  return null;
}

type Params = Record<string, unknown>;
type Listener = (params: Params, sessionId?: string) => void;

interface Pending {
  resolve: (v: Params) => void;
  reject: (e: Error) => void;
  method: string;
}

/** A headless chromium and its browser-level CDP connection. */
export class Browser {
  #child: Deno.ChildProcess;
  #ws: WebSocket;
  #dataDir: string;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #listeners = new Map<string, Set<Listener>>();
  #stderr: Promise<void>;
  #closed = false;
  /** Chromium's stderr, for failure messages. */
  log = "";

  private constructor(
    child: Deno.ChildProcess,
    ws: WebSocket,
    dataDir: string,
    stderr: Promise<void>,
  ) {
    this.#child = child;
    this.#ws = ws;
    this.#dataDir = dataDir;
    this.#stderr = stderr;
    ws.onmessage = (ev) => this.#onMessage(JSON.parse(ev.data as string));
    ws.onclose = () => {
      for (const p of this.#pending.values()) p.reject(new Error(`CDP closed during ${p.method}`));
      this.#pending.clear();
    };
  }

  /**
   * Starts chromium headless with a fresh profile and connects to it.
   *
   * @param path The chromium executable.
   * @returns The connected browser.
   */
  static async launch(path: string): Promise<Browser> {
    const dataDir = await Deno.makeTempDir({ prefix: "ringhttpd-chromium-" });
    const child = new Deno.Command(path, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-breakpad",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--window-size=1000,800",
        `--user-data-dir=${dataDir}`,
        "--remote-debugging-port=0",
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let log = "";
    let found!: (url: string) => void;
    const wsUrl = new Promise<string>((resolve) => found = resolve);
    // Keep draining stderr for the browser's whole life: a full pipe would
    // block it.
    const stderr = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stderr) {
        log += dec.decode(chunk, { stream: true });
        const m = log.match(/DevTools listening on (ws:\/\/\S+)/);
        if (m) found(m[1]);
      }
    })();
    const exited = child.status.then((s) => {
      throw new Error(`chromium exited (${s.code}) before DevTools listened:\n${log}`);
    });
    let url: string;
    try {
      url = await Promise.race([wsUrl, exited]);
    } catch (e) {
      await stderr;
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      throw e;
    }
    exited.catch(() => {}); // it exits later, when we close it
    const ws = new WebSocket(url);
    try {
      await new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
      });
    } catch (e) {
      child.kill("SIGKILL");
      await child.status;
      await stderr;
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      throw e;
    }
    const b = new Browser(child, ws, dataDir, stderr);
    b.log = log;
    return b;
  }

  #onMessage(
    msg: {
      id?: number;
      method?: string;
      params?: Params;
      result?: Params;
      error?: { message: string };
      sessionId?: string;
    },
  ) {
    if (msg.id !== undefined) {
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result ?? {});
      return;
    }
    for (const fn of this.#listeners.get(msg.method!) ?? []) fn(msg.params ?? {}, msg.sessionId);
  }

  /**
   * Sends a CDP command.
   *
   * @param method E.g. `Page.navigate`.
   * @param params Its parameters.
   * @param sessionId The page session, or none for browser commands.
   * @returns The result object.
   */
  send(method: string, params: Params = {}, sessionId?: string): Promise<Params> {
    const id = this.#nextId++;
    const msg: Params = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.#ws.send(JSON.stringify(msg));
    });
  }

  /**
   * Listens to a CDP event.
   *
   * @param method The event, e.g. `Page.loadEventFired`.
   * @param fn Called with its params and session.
   * @returns A function that removes the listener.
   */
  on(method: string, fn: Listener): () => void {
    let set = this.#listeners.get(method);
    if (!set) this.#listeners.set(method, set = new Set());
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Opens a new tab and attaches to it. */
  async newPage(): Promise<Page> {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this, sessionId as string);
    await page.init();
    return page;
  }

  /** Closes the browser (CDP `Browser.close`, then SIGKILL if it lingers) and removes its profile. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // A deadline, not synchronisation: kill the browser if it ignores close.
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    try {
      await Promise.race([this.send("Browser.close"), this.#child.status]).catch(() => {});
      await this.#child.status;
    } finally {
      clearTimeout(timer);
    }
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) {
      await new Promise<void>((resolve) => {
        this.#ws.onclose = () => resolve();
        this.#ws.close();
      });
    }
    await this.#stderr;
    await Deno.remove(this.#dataDir, { recursive: true }).catch(() => {});
  }
}

/** One tab: navigation, evaluation, input, screenshots, and the errors it logged. */
export class Page {
  #b: Browser;
  #session: string;
  /** Console errors, uncaught exceptions and error log entries seen so far. */
  errors: string[] = [];

  constructor(browser: Browser, sessionId: string) {
    this.#b = browser;
    this.#session = sessionId;
  }

  /** Enables the domains we listen to and starts collecting errors. */
  async init(): Promise<void> {
    const mine = (fn: (p: Params) => void) => (p: Params, s?: string) => {
      if (s === this.#session) fn(p);
    };
    this.#b.on(
      "Runtime.consoleAPICalled",
      mine((p) => {
        if (p.type === "error" || p.type === "assert" || p.type === "warning") {
          const args = (p.args as { value?: unknown; description?: string }[]) ?? [];
          this.errors.push(
            `console.${p.type}: ${args.map((a) => a.value ?? a.description).join(" ")}`,
          );
        }
      }),
    );
    this.#b.on(
      "Runtime.exceptionThrown",
      mine((p) => {
        const d = p.exceptionDetails as { text?: string; exception?: { description?: string } };
        this.errors.push(`exception: ${d.exception?.description ?? d.text}`);
      }),
    );
    this.#b.on(
      "Log.entryAdded",
      mine((p) => {
        const e = p.entry as { level: string; text: string; url?: string };
        if (e.level === "error" || e.level === "warning") {
          this.errors.push(`log ${e.level}: ${e.text}${e.url ? ` (${e.url})` : ""}`);
        }
      }),
    );
    await this.send("Page.enable");
    await this.send("Runtime.enable");
    await this.send("Log.enable");
  }

  /** Sends a command to this page's session. */
  send(method: string, params: Params = {}): Promise<Params> {
    return this.#b.send(method, params, this.#session);
  }

  /** Resolves at the next `load` event of this page; rejects after `timeoutMs`. */
  nextLoad(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      // A hang becomes a failure: e.g. a click that downloads instead of navigating.
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no page load within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.#b.on("Page.loadEventFired", (_p, s) => {
        if (s !== this.#session) return;
        off();
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Navigates and waits for the load event. */
  async goto(url: string): Promise<void> {
    const loaded = this.nextLoad();
    const r = await this.send("Page.navigate", { url });
    if (r.errorText) throw new Error(`navigating to ${url}: ${r.errorText}`);
    await loaded;
  }

  /** Runs `fn` (which triggers a navigation) and waits for the new page's load event. */
  async navigatingBy(fn: () => Promise<unknown>): Promise<void> {
    const loaded = this.nextLoad();
    await fn();
    await loaded;
  }

  /**
   * Evaluates an expression in the page and returns its value (JSON).
   *
   * @param expression JavaScript, e.g. `document.title`.
   * @returns The value.
   */
  async eval<T = unknown>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    const ex = r.exceptionDetails as { text?: string; exception?: { description?: string } };
    if (ex) throw new Error(`${expression}: ${ex.exception?.description ?? ex.text}`);
    return (r.result as { value: T }).value;
  }

  /** Clicks the centre of the first element matching `selector` with real mouse events. */
  async click(selector: string): Promise<void> {
    const box = await this.eval<{ x: number; y: number } | null>(
      `(() => { const e = document.querySelector(${JSON.stringify(selector)}); if (!e) return null;
        e.scrollIntoView({ block: "center" }); const r = e.getBoundingClientRect();
        return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; })()`,
    );
    if (box === null) throw new Error(`no element matches ${selector}`);
    for (const type of ["mousePressed", "mouseReleased"]) {
      await this.send("Input.dispatchMouseEvent", {
        type,
        x: box.x,
        y: box.y,
        button: "left",
        clickCount: 1,
      });
    }
  }

  /** Types `text` into the focused element, as a keyboard would insert it. */
  async type(text: string): Promise<void> {
    await this.send("Input.insertText", { text });
  }

  /** A PNG of the viewport (or the full page). */
  async screenshot(fullPage = false): Promise<Uint8Array> {
    const r = await this.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: fullPage,
    });
    return Uint8Array.from(atob(r.data as string), (c) => c.charCodeAt(0));
  }
}
