/// <reference lib="deno.worker" />
/**
 * Worker entry for `_invalidate_test.ts`: consumes one invalidation slot with
 * {@linkcode InvalidationConsumer.run} and posts back every path it applies
 * (`"*"` for "drop everything"). Private to `workers/`.
 *
 * @module
 */
import { InvalidationConsumer, type InvalidationSlot } from "./_invalidate.ts";

self.onmessage = (e: MessageEvent<InvalidationSlot>) => {
  const consumer = new InvalidationConsumer(e.data);
  consumer.run({
    invalidate: (path) => self.postMessage(path),
    invalidateAll: () => self.postMessage("*"),
  });
  self.postMessage("ready");
};
