/**
 * The seeded PRNG of the test suites (mulberry32: 32 bits of state, full
 * period), so a failing run reproduces from the seed it printed. Plain
 * arithmetic: usable from Workers too (queue/_test_worker.ts).
 *
 * Private to the test suites.
 *
 * @module
 */

/**
 * A seeded PRNG.
 *
 * @param seed any 32-bit integer
 * @returns a function giving numbers in [0, 1), the same sequence for the same seed
 */
export function prng(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
