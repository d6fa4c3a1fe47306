/**
 * Findings of an adversarial review of the HTTP/2 engine, each mounted over
 * raw TLS against the real server (`_test_client.ts`), the RFC 9113 clause
 * beside it: trailers, streams we reset, field names, request pseudo-headers.
 */
import assert from "node:assert/strict";
import { makeCerts } from "../tests/_certs.ts";
import { type ServerProcess, startCluster } from "../tests/_harness.ts";
import { EMPTY_LIMIT, RESET_LIMIT } from "./connection.ts";
import { get, RawH2, settingsPayload, u32Payload } from "./_test_client.ts";
import {
  DATA,
  END_HEADERS,
  END_STREAM,
  ENHANCE_YOUR_CALM,
  GOAWAY,
  HEADERS,
  NO_ERROR,
  PADDED,
  PROTOCOL_ERROR,
  RST_STREAM,
  SETTINGS,
  SETTINGS_INITIAL_WINDOW_SIZE,
  u32,
  WINDOW_UPDATE,
} from "./frames.ts";

const dir = await Deno.makeTempDir({ prefix: "ringhttpd_h2rev_" });
const root = `${dir}/root`;
await Deno.mkdir(root);
await Deno.writeTextFile(`${root}/a.txt`, "hello h2");
// Larger than the initial window: its stream stays open until the client opens the window.
await Deno.writeFile(`${root}/big.bin`, new Uint8Array(300_000).fill(7));
await Deno.writeFile(`${root}/k.bin`, new Uint8Array(1000).fill(1));
const { cert, key, ca } = await makeCerts(dir);
const server: ServerProcess = await startCluster({ root, cert, key, workers: 1 }, {
  perms: ["--allow-net", "--allow-read", "--allow-ffi", "--allow-sys"],
});
globalThis.addEventListener("unload", () => {
  server.kill("SIGKILL");
  Deno.removeSync(dir, { recursive: true });
});
const opts = { sanitizeResources: false, sanitizeOps: false };

/** Runs `body` on a fresh connection, then checks the connection still serves a GET. */
async function withConn(body: (c: RawH2) => Promise<void>): Promise<void> {
  const c = await RawH2.open(server.port, ca);
  try {
    await body(c);
    await c.headers(101, get("/a.txt"));
    assert.equal((await c.response(101))?.get(":status"), "200", "the connection still serves");
    assert.ok(!c.frames.some((x) => x.type === GOAWAY), "no GOAWAY");
  } finally {
    c.close();
  }
}

/** Asserts the next RST_STREAM on `stream` carries `code`. */
async function expectRst(c: RawH2, stream: number, code: number): Promise<void> {
  assert.equal(await c.rst(stream), code);
}

Deno.test(
  "h2 review, RFC 9113 sec. 5.1: DATA and trailers on a stream we answered and reset are ignored, not a connection error",
  opts,
  async () => {
    await withConn(async (c) => {
      // A POST with a declared body is answered at once (405) and the stream reset
      // with NO_ERROR while the body is still coming (sec. 8.1).
      await c.headers(1, [[":method", "POST"], ...get("/a.txt").slice(1), [
        "content-length",
        "4",
      ]], { endStream: false });
      assert.ok(await c.response(1), "a response");
      assert.equal(await c.rst(1), NO_ERROR);
      // What the client had in flight: the body, then trailers ending the stream.
      await c.frame(DATA, 0, 1, new Uint8Array(4));
      await c.headers(1, [["x-checksum", "1"]]);
      // The stream error or GOAWAY would come before the answer on stream 101.
      await c.headers(3, get("/a.txt"));
      assert.equal((await c.response(3))?.get(":status"), "200");
      const rsts = c.frames.filter((x) => x.type === RST_STREAM && x.stream === 1);
      assert.deepEqual(rsts.map((x) => u32(x.payload, 0)), [NO_ERROR], "frames ignored");
    });
  },
);

Deno.test(
  "h2 review, RFC 9113 sec. 8.1: trailers with a pseudo-header are malformed (RST_STREAM PROTOCOL_ERROR)",
  opts,
  async () => {
    await withConn(async (c) => {
      await c.headers(1, get("/big.bin"), { endStream: false });
      await c.headers(1, [[":path", "/other"]]);
      await expectRst(c, 1, PROTOCOL_ERROR);
    });
  },
);

Deno.test(
  "h2 review, RFC 9113 sec. 8.2.1: trailers with an upper-case or connection-specific name are malformed",
  opts,
  async () => {
    await withConn(async (c) => {
      await c.headers(1, get("/big.bin"), { endStream: false });
      await c.headers(1, [["X-Up", "1"]]);
      await expectRst(c, 1, PROTOCOL_ERROR);
      await c.headers(3, get("/big.bin"), { endStream: false });
      await c.headers(3, [["connection", "close"]]);
      await expectRst(c, 3, PROTOCOL_ERROR);
    });
  },
);

Deno.test(
  "h2 review, RFC 9113 sec. 8.1.1: a stream ended by trailers short of its content-length is malformed",
  opts,
  async () => {
    await withConn(async (c) => {
      await c.headers(1, get("/big.bin", [["content-length", "5"]]), { endStream: false });
      await c.frame(DATA, 0, 1, new Uint8Array(2));
      await c.headers(1, [["x-checksum", "1"]]);
      await expectRst(c, 1, PROTOCOL_ERROR);
    });
  },
);

Deno.test(
  "h2 review, RFC 9113 sec. 8.2.1: a field name with a colon inside is malformed",
  opts,
  async () => {
    await withConn(async (c) => {
      await c.headers(1, get("/a.txt", [["x:y", "1"]]));
      await expectRst(c, 1, PROTOCOL_ERROR);
    });
  },
);

Deno.test(
  "h2 review, RFC 9113 sec. 8.3.1: a :method that is not a token, or a :path with a space or control character, is malformed",
  opts,
  async () => {
    await withConn(async (c) => {
      await c.headers(1, [[":method", "GET /x"], ...get("/a.txt").slice(1)]);
      await expectRst(c, 1, PROTOCOL_ERROR);
      await c.headers(3, get("/a.txt x"));
      await expectRst(c, 3, PROTOCOL_ERROR);
      await c.headers(5, get("/a.txt\x01"));
      await expectRst(c, 5, PROTOCOL_ERROR);
    });
  },
);

Deno.test(
  "h2 review, RFC 9113 sec. 8.3.1: :authority with userinfo or not a host, a bad Host, or a Host unlike :authority is malformed (as HTTP/1.1's 400)",
  opts,
  async () => {
    await withConn(async (c) => {
      const at = (authority: string, extra: [string, string][] = []) =>
        get("/a.txt", extra).map((
          [n, v],
        ): [string, string] => [n, n === ":authority" ? authority : v]);
      await c.headers(1, at("user@localhost"));
      await expectRst(c, 1, PROTOCOL_ERROR);
      await c.headers(3, at("local host"));
      await expectRst(c, 3, PROTOCOL_ERROR);
      await c.headers(5, at("localhost", [["host", "a/b"]]));
      await expectRst(c, 5, PROTOCOL_ERROR);
      await c.headers(7, at("localhost", [["host", "other.example"]]));
      await expectRst(c, 7, PROTOCOL_ERROR);
      await c.headers(9, get("/caf\xe9"));
      await expectRst(c, 9, PROTOCOL_ERROR);
      // The same Host as :authority, and a Host without :authority, are fine.
      await c.headers(11, at("localhost", [["host", "localhost"]]));
      assert.equal((await c.response(11))?.get(":status"), "200");
      await c.headers(13, [[":method", "GET"], [":scheme", "https"], [":path", "/a.txt"], [
        "host",
        "localhost:8443",
      ]]);
      assert.equal((await c.response(13))?.get(":status"), "200");
    });
  },
);

Deno.test(
  "h2 review, RFC 9113 sec. 6.9.2: a smaller INITIAL_WINDOW_SIZE makes an open stream's window negative; it sends again only once above 0",
  opts,
  async () => {
    const c = await RawH2.open(server.port, ca, {
      settings: [[SETTINGS_INITIAL_WINDOW_SIZE, 100]],
    });
    try {
      /** DATA octets on stream 1 until a pause of `quietMs`, and whether it ended. */
      const read = async (quietMs: number): Promise<[number, boolean]> => {
        let got = 0;
        while (true) {
          const d = await c.until((x) => x.type === DATA && x.stream === 1, quietMs);
          if (d === null) return [got, false];
          got += d.payload.length;
          if (d.flags & END_STREAM) return [got, true];
        }
      };
      await c.headers(1, get("/k.bin"));
      assert.deepEqual(await read(500), [100, false]);
      // 100 sent: the window 0 becomes -100.
      await c.frame(SETTINGS, 0, 0, settingsPayload([[SETTINGS_INITIAL_WINDOW_SIZE, 0]]));
      await c.frame(WINDOW_UPDATE, 0, 1, u32Payload(60));
      assert.deepEqual(await read(500), [0, false], "-40: nothing sent");
      await c.frame(WINDOW_UPDATE, 0, 1, u32Payload(90));
      assert.deepEqual(await read(500), [50, false], "+50: exactly 50 sent");
      await c.frame(WINDOW_UPDATE, 0, 1, u32Payload(10_000));
      assert.deepEqual(await read(3000), [850, true]);
    } finally {
      c.close();
    }
  },
);

Deno.test(
  "h2 review: a flood of DATA frames without content (empty, or padding only) is GOAWAY ENHANCE_YOUR_CALM",
  opts,
  async () => {
    for (const payload of [new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(3, 0, 0, 0)]) {
      const c = await RawH2.open(server.port, ca);
      try {
        // An open stream: its reply waits for a window (big.bin), its request body never ends.
        await c.headers(1, get("/big.bin"), { endStream: false });
        const flags = payload.length > 0 ? PADDED : 0;
        const one = RawH2.frameBytes(DATA, flags, 1, payload);
        const all = new Uint8Array(one.length * (EMPTY_LIMIT + 10));
        for (let i = 0; i < EMPTY_LIMIT + 10; i++) all.set(one, i * one.length);
        await c.send(all);
        assert.equal(await c.goaway(), ENHANCE_YOUR_CALM, `payload ${payload}`);
      } finally {
        c.close();
      }
    }
  },
);

Deno.test(
  "h2 review: a flood of malformed requests, each costing a RST_STREAM (reset flood, CVE-2019-9514), is GOAWAY ENHANCE_YOUR_CALM",
  opts,
  async () => {
    const c = await RawH2.open(server.port, ca);
    try {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < RESET_LIMIT + 10; i++) {
        frames.push(
          RawH2.frameBytes(
            HEADERS,
            END_STREAM | END_HEADERS,
            2 * i + 1,
            c.block(get("/a.txt", [["X-Up", "1"]])),
          ),
        );
      }
      const all = new Uint8Array(frames.reduce((n, x) => n + x.length, 0));
      frames.reduce((at, x) => (all.set(x, at), at + x.length), 0);
      await c.send(all);
      assert.equal(await c.goaway(), ENHANCE_YOUR_CALM);
    } finally {
      c.close();
    }
  },
);

Deno.test(
  "h2 review, RFC 9113 sec. 5.4.2: frames after a stream error in the same read are still processed (no lost request, no HPACK desync)",
  opts,
  async () => {
    await withConn(async (c) => {
      // One write: a malformed request, then a good one whose block uses the dynamic table.
      const bad = RawH2.frameBytes(
        HEADERS,
        END_STREAM | END_HEADERS,
        1,
        c.block(get("/a.txt", [["X-Up", "1"], ["x-same", "v"]])),
      );
      const good = RawH2.frameBytes(
        HEADERS,
        END_STREAM | END_HEADERS,
        3,
        c.block(get("/a.txt", [["x-same", "v"]])),
      );
      const both = new Uint8Array(bad.length + good.length);
      both.set(bad);
      both.set(good, bad.length);
      await c.send(both);
      assert.equal(await c.rst(1), PROTOCOL_ERROR);
      assert.equal((await c.response(3))?.get(":status"), "200");
    });
  },
);

Deno.test(
  "h2 review: streams opened past the advertised limit, again and again (each a REFUSED_STREAM), are GOAWAY ENHANCE_YOUR_CALM",
  opts,
  async () => {
    // A zero window: the 100 streams the server allows stay open, waiting to send.
    const c = await RawH2.open(server.port, ca, { settings: [[SETTINGS_INITIAL_WINDOW_SIZE, 0]] });
    try {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 100 + RESET_LIMIT + 10; i++) {
        frames.push(
          RawH2.frameBytes(HEADERS, END_STREAM | END_HEADERS, 2 * i + 1, c.block(get("/big.bin"))),
        );
      }
      const all = new Uint8Array(frames.reduce((n, x) => n + x.length, 0));
      frames.reduce((at, x) => (all.set(x, at), at + x.length), 0);
      await c.send(all);
      assert.equal(await c.goaway(), ENHANCE_YOUR_CALM);
    } finally {
      c.close();
    }
  },
);
