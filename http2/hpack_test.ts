/**
 * HPACK tests: RFC 7541 examples, limits, and a cross-check against Debian's
 * python3-hpack (an implementation nobody here wrote) in both directions, on
 * generated header sets (every octet value, long codes, table evictions and
 * size updates). Needs `/usr/bin/python3` with `hpack` (`.ci/run` installs
 * python3-hpack).
 */
import assert from "node:assert/strict";
import { ByteWriter, Decoder, Encoder, HpackError, huffmanDecode, huffmanEncode } from "./hpack.ts";
import { prng } from "../tests/_prng.ts";
import { HUFFMAN_LENGTHS } from "./_huffman_table.ts";

const PEER = new URL("./_hpack_peer.py", import.meta.url).pathname;

async function peer<T>(job: unknown): Promise<T> {
  const p = new Deno.Command("/usr/bin/python3", {
    args: [PEER],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(job)));
  await w.close();
  const out = await p.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout)) as T;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const str = (b: Uint8Array) => String.fromCharCode(...b);

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}

/** Random latin1 strings: all octets, or mostly token characters (short codes), or long-code octets. */
function randomString(rnd: () => number, max: number): string {
  const len = Math.floor(rnd() * max);
  const kind = rnd();
  let s = "";
  for (let i = 0; i < len; i++) {
    if (kind < 0.3) s += String.fromCharCode(Math.floor(rnd() * 256));
    else if (kind < 0.45) s += String.fromCharCode([0, 10, 13, 22, 255, 254, 128][i % 7]);
    else s += "abcdefghijklmnopqrstuvwxyz0123456789-_./:=; "[Math.floor(rnd() * 44)];
  }
  return s;
}

const NAMES = [
  "content-type",
  "cache-control",
  "x-custom",
  "etag",
  "server",
  "accept",
  "set-cookie",
  "x-a",
];

function randomFields(rnd: () => number): [string, string][] {
  const n = 1 + Math.floor(rnd() * 12);
  const out: [string, string][] = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const name = r < 0.6 ? NAMES[Math.floor(rnd() * NAMES.length)] : "x-" +
      randomString(rnd, 12).toLowerCase().replace(/[^a-z0-9-]/g, "q");
    // Some big values (over half the table) and repeats, for evictions and hits.
    const value = rnd() < 0.1
      ? "v".repeat(1000 + Math.floor(rnd() * 3000))
      : rnd() < 0.3
      ? "repeat-" + Math.floor(rnd() * 4)
      : randomString(rnd, 60);
    out.push([name, value]);
  }
  return out;
}

Deno.test("hpack: Huffman encoding matches python3-hpack on every octet and on padding lengths 0-7", async () => {
  const rnd = prng(7541);
  const strings: string[] = [""];
  for (let c = 0; c < 256; c++) strings.push(String.fromCharCode(c).repeat(1 + (c % 9)));
  for (let i = 0; i < 300; i++) strings.push(randomString(rnd, 80));
  const ours = strings.map((s) => {
    const w = new ByteWriter();
    huffmanEncode(s, w);
    return hex(w.bytes());
  });
  const theirs = await peer<{ encoded: string[] }>({
    op: "huffman",
    strings: strings.map((s) => hex(latin1(s))),
  });
  assert.deepEqual(ours, theirs.encoded);
  // And back: every padding length occurs among these.
  const out = new Uint8Array(1024);
  const pads = new Set<number>();
  for (let i = 0; i < strings.length; i++) {
    const b = unhex(theirs.encoded[i]);
    const n = huffmanDecode(b, 0, b.length, out);
    assert.equal(str(out.subarray(0, n)), strings[i]);
    let bits = 0;
    for (const ch of strings[i]) bits += HUFFMAN_LENGTHS[ch.charCodeAt(0)];
    pads.add(b.length * 8 - bits);
  }
  assert.deepEqual([...pads].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
});

Deno.test("hpack: Huffman strings with EOS, an 8-bit padding or a zero padding are refused", () => {
  const out = new Uint8Array(64);
  // EOS is 30 ones: four 0xff octets hold it.
  assert.throws(() => huffmanDecode(Uint8Array.of(0xff, 0xff, 0xff, 0xff), 0, 4, out), HpackError);
  // "0" is 00000 (5 bits); padded with 111 it is 0x07; one more 0xff octet is 8 bits of padding.
  assert.equal(huffmanDecode(Uint8Array.of(0x07), 0, 1, out), 1);
  assert.throws(() => huffmanDecode(Uint8Array.of(0x07, 0xff), 0, 2, out), HpackError);
  // Padding must be ones: 00000 000.
  assert.throws(() => huffmanDecode(Uint8Array.of(0x00), 0, 1, out), HpackError);
});

Deno.test("hpack: RFC 7541 C.4 requests decode, with the dynamic table carried across blocks", () => {
  const d = new Decoder();
  const blocks = [
    "828684418cf1e3c2e5f23a6ba0ab90f4ff",
    "828684be5886a8eb10649cbf",
    "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
  ];
  const want = [
    ":method GET :scheme http :path / :authority www.example.com",
    ":method GET :scheme http :path / :authority www.example.com cache-control no-cache",
    ":method GET :scheme https :path /index.html :authority www.example.com custom-key custom-value",
  ];
  blocks.forEach((b, i) => {
    const out: string[] = [];
    d.decode(unhex(b), out, 65536);
    assert.equal(out.join(" "), want[i]);
  });
  assert.equal(d.tableSize, 164);
});

Deno.test("hpack: our encoder's blocks decode in python3-hpack (evictions, size updates, Huffman)", async () => {
  const rnd = prng(9113);
  const e = new Encoder();
  const sets: [string, string][][] = [];
  const blocks: string[] = [];
  for (let i = 0; i < 150; i++) {
    // The peer's SETTINGS_HEADER_TABLE_SIZE changes now and then (0 empties the table).
    if (i % 37 === 20) e.setMaxTableSize([0, 256, 4096, 100000][(i / 37) & 3]);
    if (i % 37 === 21) e.setMaxTableSize(4096);
    const fields = randomFields(rnd);
    const w = new ByteWriter(16);
    e.encode(fields, w);
    sets.push(fields);
    blocks.push(hex(w.bytes()));
  }
  const got = await peer<{ lists: [string, string][][]; tableSize: number }>({
    op: "decode",
    blocks,
  });
  assert.deepEqual(got.lists, sets);
  assert.equal(got.tableSize, e.tableSize);
  assert.ok(e.tableSize > 0 && e.tableSize <= 4096);
});

Deno.test("hpack: python3-hpack's blocks decode with ours (never-indexed, raw and Huffman, size updates)", async () => {
  const rnd = prng(42);
  const sets: { size: number | null; huffman: boolean; fields: [string, string, boolean][] }[] = [];
  for (let i = 0; i < 150; i++) {
    const fields = randomFields(rnd).map((
      [n, v],
    ): [string, string, boolean] => [n, v, rnd() < 0.1]);
    sets.push({
      size: i % 41 === 30 ? [0, 512, 4096][(i / 41) % 3 | 0] : null,
      huffman: rnd() < 0.7,
      fields,
    });
  }
  const { blocks } = await peer<{ blocks: string[] }>({ op: "encode", sets });
  const d = new Decoder();
  blocks.forEach((b, i) => {
    const out: string[] = [];
    const r = d.decode(unhex(b), out, 1 << 20);
    assert.equal(r.over, false);
    assert.deepEqual(pairs(out), sets[i].fields.map(([n, v]) => [n, v]));
  });
});

Deno.test("hpack: an expansion bomb is refused after the limit without copying it", () => {
  // One 4,000-octet entry, then 100,000 one-octet references to it: 400 MB decoded.
  const w = new ByteWriter();
  const enc = new Encoder();
  enc.field("x-big", "b".repeat(1900), w); // indexed (under half the table)
  for (let i = 0; i < 100_000; i++) w.buf[w.ensure(1), w.length++] = 0xbe; // index 62
  const out: string[] = [];
  const t0 = performance.now();
  const r = new Decoder().decode(w.bytes(), out, 16384);
  assert.equal(r.over, true);
  assert.ok(out.length <= 2 * 16, `kept ${out.length / 2} fields`);
  assert.ok(performance.now() - t0 < 2000);
});

Deno.test("hpack: malformed blocks are COMPRESSION_ERRORs (RFC 7541 sec. 4.2, 5.1, 6.1, 6.3)", () => {
  const bad = (bytes: number[], why: string) =>
    assert.throws(() => new Decoder().decode(Uint8Array.from(bytes), [], 65536), HpackError, why);
  bad([0x80], "index 0");
  bad([0xbe], "index past an empty dynamic table");
  bad([0xff, 0x80, 0x80, 0x80, 0x80, 0x01], "integer over 2^28");
  bad([0xff, 0x80], "integer runs past the block");
  bad([0x40, 0x05, 0x61], "string runs past the block");
  bad([0x82, 0x3f, 0xe1, 0x1f], "size update after a field");
  bad([0x3f, 0xe2, 0x1f], "size update over the advertised 4096");
  bad([0x20, 0x20, 0x20], "three size updates");
  // Two updates, then fields: allowed.
  const out: string[] = [];
  new Decoder().decode(Uint8Array.of(0x20, 0x3f, 0xe1, 0x1f, 0x82), out, 65536);
  assert.deepEqual(out, [":method", "GET"]);
});

Deno.test("hpack: a list over the limit is refused and the table stays in sync", () => {
  const e = new Encoder();
  const d = new Decoder();
  const w = new ByteWriter();
  e.encode([["x-keep", "1"], ["x-huge", "h".repeat(5000)], ["x-also", "2"]], w);
  const out: string[] = [];
  assert.equal(d.decode(w.bytes(), out, 1000).over, true);
  // The next block refers to entries the refused one added.
  const w2 = new ByteWriter();
  e.encode([["x-keep", "1"], ["x-also", "2"]], w2);
  const out2: string[] = [];
  assert.equal(d.decode(w2.bytes(), out2, 1000).over, false);
  assert.deepEqual(out2, ["x-keep", "1", "x-also", "2"]);
});

Deno.test("hpack: a block with a long Huffman string leaves no large scratch buffer behind (idle memory per connection)", () => {
  const e = new Encoder();
  const w = new ByteWriter();
  e.encode([["cookie", "a".repeat(30_000)]], w); // Huffman: 'a' is 5 bits
  const d = new Decoder();
  const before = d.retained;
  const out: string[] = [];
  d.decode(w.bytes(), out, 1 << 20);
  assert.equal(out[1].length, 30_000);
  assert.ok(d.retained <= Math.max(before, 8192), `holds ${d.retained} octets`);
});
