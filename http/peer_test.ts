/**
 * `RequestHead.remote`: the client's address reaches the handler, one `Peer`
 * per connection, and a transport without one gives none.
 */
import assert from "node:assert/strict";
import { ConnectionSet, HttpConnection, serveDenoConn } from "./engine.ts";
import { type Handler, type Peer, peerOfAddr } from "./types.ts";

/** Serves `handler` on `hostname` and sends two requests on one kept-alive connection. */
async function twoRequests(hostname: string, handler: Handler): Promise<string[]> {
  const listener = Deno.listen({ hostname, port: 0 });
  const set = new ConnectionSet();
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) served.push(serveDenoConn(conn, handler, set));
  })();
  const bodies: string[] = [];
  try {
    const conn = await Deno.connect({ hostname, port: (listener.addr as Deno.NetAddr).port });
    const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    await conn.write(new TextEncoder().encode(req + req));
    let text = "";
    const buf = new Uint8Array(4096);
    while ((text.match(/HTTP\/1\.1 200/g) ?? []).length < 2 || !text.endsWith("\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    conn.close();
    for (const m of text.matchAll(/\r\n\r\n([^\n]*)\n/g)) bodies.push(m[1]);
  } finally {
    listener.close();
    await accepting;
    await set.drain();
    await Promise.all(served);
  }
  return bodies;
}

Deno.test("serveDenoConn gives each request the client's address, one Peer per connection", async () => {
  const peers: Peer[] = [];
  const handler: Handler = (req) => {
    assert.ok(req.remote !== undefined);
    peers.push(req.remote);
    const body = new TextEncoder().encode(`${req.remote.address}\n`);
    return { status: 200, headers: [], body: [body], length: body.length };
  };
  assert.deepEqual(await twoRequests("127.0.0.1", handler), ["127.0.0.1", "127.0.0.1"]);
  assert.equal(peers.length, 2);
  assert.equal(peers[0], peers[1]);
  let v6 = true;
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
  } catch {
    v6 = false; // no IPv6 loopback on this machine
  }
  if (v6) assert.deepEqual(await twoRequests("::1", handler), ["::1", "::1"]);
});

Deno.test("a transport without a peer gives requests no remote; user starts unset", async () => {
  const seen: Array<[Peer | undefined, string | undefined]> = [];
  const conn = new HttpConnection(
    { write() {}, close() {} },
    (req) => {
      seen.push([req.remote, req.user]);
      return { status: 204, headers: [], body: [], length: 0 };
    },
  );
  await conn.feed(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  conn.drain();
  assert.deepEqual(seen, [[undefined, undefined]]);
});

Deno.test("peerOfAddr: IPv4-mapped IPv6 as IPv4, zones dropped, Unix sockets without address", () => {
  const tcp = (hostname: string): Deno.Addr => ({ transport: "tcp", hostname, port: 1 });
  assert.equal(peerOfAddr(tcp("192.0.2.1")).address, "192.0.2.1");
  assert.equal(peerOfAddr(tcp("::ffff:192.0.2.1")).address, "192.0.2.1");
  assert.equal(peerOfAddr(tcp("::FFFF:10.0.0.1")).address, "10.0.0.1");
  assert.equal(peerOfAddr(tcp("2001:db8::1")).address, "2001:db8::1");
  assert.equal(peerOfAddr(tcp("fe80::1%eth0")).address, "fe80::1");
  assert.equal(peerOfAddr({ transport: "unix", path: "/run/x.sock" }).address, undefined);
});
