/// <reference lib="deno.worker" />
/**
 * Test helper: takes from a shared rate table in its own thread, on a
 * frozen clock. In: `{ sab, go, now, keys, rounds }` (takes each key
 * `rounds` times, keys interleaved, once word 0 of `go` is set); out:
 * `"ready"`, then the number of requests allowed per key.
 */
import { RateTable } from "./_rate_limit.ts";

self.onmessage = (
  e: MessageEvent<
    { sab: SharedArrayBuffer; go: SharedArrayBuffer; now: number; keys: string[]; rounds: number }
  >,
) => {
  const { sab, go, now, keys, rounds } = e.data;
  const table = new RateTable(sab, () => now);
  const flag = new Int32Array(go);
  self.postMessage("ready");
  // Start together (bounded waits: a lost wake-up must not hang the test).
  while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0, 50);
  const allowed = keys.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < keys.length; k++) if (table.take(keys[k]) === 0) allowed[k]++;
  }
  self.postMessage(allowed);
};
