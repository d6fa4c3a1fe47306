/// <reference lib="deno.worker" />
/**
 * Test helper: counts failures into a shared attempts table from its own
 * thread. In: `{ sab, now, keys, rounds }` (fails each key `rounds` times,
 * keys interleaved, after every helper is started: it waits on word 0 of
 * `go`); out: `"ready"` (then it waits for `go`), `"done"`.
 */
import { Attempts } from "./attempts.ts";

self.onmessage = (
  e: MessageEvent<
    { sab: SharedArrayBuffer; go: SharedArrayBuffer; now: number; keys: string[]; rounds: number }
  >,
) => {
  const { sab, go, now, keys, rounds } = e.data;
  const table = new Attempts(sab, () => now);
  const flag = new Int32Array(go);
  self.postMessage("ready");
  // Start together (bounded waits: a lost wake-up must not hang the test).
  while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0, 50);
  for (let r = 0; r < rounds; r++) for (const k of keys) table.fail(k);
  self.postMessage("done");
};
