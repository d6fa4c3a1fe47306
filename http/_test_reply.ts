/**
 * Test helper (not a test file): a reply's body bytes, read the way the
 * engine reads them (byte parts as they are, file slices from their file).
 *
 * @module
 */
import type { Reply } from "./types.ts";

/**
 * Reads every body part of `reply`, then releases it.
 *
 * @param reply a handler's reply
 * @returns the body bytes
 */
export async function replyBytes(reply: Reply): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  try {
    for (const part of reply.body) {
      if (part instanceof Uint8Array) {
        chunks.push(part);
      } else {
        const buf = new Uint8Array(part.end - part.start);
        await part.file.seek(part.start, Deno.SeekMode.Start);
        let got = 0;
        while (got < buf.length) {
          const n = await part.file.read(buf.subarray(got));
          if (n === null) break;
          got += n;
        }
        chunks.push(buf.subarray(0, got));
      }
    }
  } finally {
    reply.release?.();
  }
  const body = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    body.set(c, off);
    off += c.length;
  }
  return body;
}
