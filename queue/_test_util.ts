/**
 * Helpers for the ring tests: start the test worker and collect its outcome.
 * Private to `queue/`.
 *
 * @module
 */
import type { Job, Outcome, Progress } from "./_test_worker.ts";

/** A started test worker and its single answer. */
export interface Running {
  worker: Worker;
  outcome: Promise<Outcome>;
}

/**
 * Starts `_test_worker.ts` on `job`; an error in the worker rejects `outcome`.
 * `onProgress` gets the worker's progress messages, if any.
 */
export function start(job: Job, onProgress?: (p: Progress) => void): Running {
  const worker = new Worker(new URL("./_test_worker.ts", import.meta.url), { type: "module" });
  const outcome = new Promise<Outcome>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<Outcome | Progress>) => {
      if ("progress" in e.data) onProgress?.(e.data);
      else resolve(e.data);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`${job.role} worker failed: ${e.message}`));
    };
  });
  worker.postMessage(job);
  return { worker, outcome };
}

/** A seed from `RING_SEED` when set (to replay a failure), else a random one. */
export function seedFromEnv(): number {
  let fromEnv: string | undefined;
  try {
    fromEnv = Deno.env.get("RING_SEED");
  } catch {
    fromEnv = undefined; // no --allow-env: fine, pick a random seed
  }
  return fromEnv ? Number(fromEnv) | 0 : (Math.random() * 2 ** 31) | 0;
}
