/// <reference lib="deno.worker" />
/**
 * The search index thread: the supervisor starts it once (with a watcher
 * running), it allocates the shared name index and sends its buffers back
 * at once (the HTTP workers attach to them; search walks until the index is
 * ready), walks the root into it reporting progress, then applies the
 * changed paths the supervisor forwards from its watcher. The only writer
 * of the index (`http/_name_index.ts`).
 *
 * @module
 */
import { IndexWriter } from "../http/_name_index.ts";
import type { ServePolicy } from "../http/resolve.ts";

/** Supervisor -> index thread. */
export type ToIndex =
  | { type: "start"; policy: ServePolicy }
  | { type: "changed"; paths: string[] | null };

/** Index thread -> supervisor. */
export type FromIndex =
  | { type: "buffers"; buffers: import("../http/_name_index.ts").IndexBuffers }
  | { type: "progress"; names: number; done: boolean; ms: number; bytes: number };

let writer: IndexWriter | undefined;
let pending: Array<string[] | null> = [];
let root = "";

self.onmessage = (e: MessageEvent<ToIndex>) => {
  const m = e.data;
  if (m.type === "start") {
    root = m.policy.root;
    writer = new IndexWriter(m.policy);
    self.postMessage({ type: "buffers", buffers: writer.index.buffers } satisfies FromIndex);
    const t0 = performance.now();
    // After this turn, so the buffers message leaves first.
    setTimeout(() => {
      writer!.build((names, done) =>
        self.postMessage(
          {
            type: "progress",
            names,
            done,
            ms: performance.now() - t0,
            bytes: writer!.index.buffers.recs.byteLength +
              2 * writer!.index.buffers.names.byteLength,
          } satisfies FromIndex,
        )
      );
      for (const p of pending) apply(p);
      pending = [];
    }, 0);
  } else if (m.type === "changed") {
    if (writer === undefined || !writer.index.ready) pending.push(m.paths);
    else apply(m.paths);
  }
};

function apply(paths: string[] | null): void {
  // Events lost (inotify overflow): the root's own entries are rescanned; a
  // full rebuild waits for the next start.
  for (const p of paths ?? [root]) writer!.changed(p);
}
