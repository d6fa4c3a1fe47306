/**
 * Prototype (#12, not wired into the server): answer plain HTTP sent to the
 * HTTPS port with a readable 400, by peeking at the first byte of each
 * connection before any TLS is involved.
 *
 * `deno run -A bench/tls_peek_proto.ts MODE PORT CERT KEY` with MODE:
 * - `deno`: `Deno.listenTls` and a minimal HTTP/1.1 keep-alive responder
 *   (today's path, no 400 possible: rustls drops a non-TLS first byte).
 * - `node`: `node:net` server; the first chunk is read: a TLS record
 *   (0x16) -> `unshift` it back and hand the socket to a `node:tls` server
 *   ("connection" event), else a 400. Does NOT work on Deno 2.9.6: the
 *   handshake hangs (Deno's TLSSocket reads the kernel socket itself, the
 *   unshifted bytes are lost).
 * - `peek`: raw `accept4` (FFI), wait until readable, `recv(MSG_PEEK)` one
 *   byte (nothing consumed): 0x16 -> `new net.Socket({ fd })` wrapped in a
 *   server `tls.TLSSocket`; anything else -> the 400 written with `send`,
 *   then close.
 *
 * Both answer every request with the same 1 KiB body, so the comparison is
 * the TLS path alone.
 *
 * Findings (2026-12-03, Deno 2.9.6, 2 cores, load average 14-15, so only
 * the ratios mean anything):
 * - `peek` works: `curl http://` gets the 400 text, `curl -k https://` the body.
 * - Cost: server CPU per keep-alive request (utime+stime / requests, `wrk
 *   -t1 -c10 -d6s`, two runs each): `deno` 62 and 33 us, `peek` (node:tls)
 *   114 and 95 us: node:tls costs 2-3x the CPU of Deno.listenTls per
 *   request, so it cannot carry HTTPS HTTP/1.1 at today's throughput.
 * - Inside `Deno.listenTls` there is no cheap way: Deno drives the handshake
 *   as soon as it accepts (before JS sees the TlsConn), and on a plain-HTTP
 *   first byte rustls has already written a 7-byte fatal alert
 *   (`15 03 03 00 02 02 32`, decode_error) when `handshake()` rejects with
 *   "received corrupt message of type InvalidContentType"; the TCP socket
 *   then stays open (Deno does not close it), so a 400 written to the fd
 *   would reach the client after the alert bytes: curl reports a protocol
 *   error, not a readable page. Finding the fd faster would not help.
 * - Deno has no server-side `startTls` over an accepted `Deno.Conn`, so a
 *   raw accept + peek cannot hand the socket to Deno's own (fast) TLS.
 *
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import { accept, listenTcp, pollIn, writeFd } from "../workers/_libc.ts";

const [mode, portText, certFile, keyFile] = Deno.args;
const cert = Deno.readTextFileSync(certFile);
const key = Deno.readTextFileSync(keyFile);
const port = Number(portText);
const body = "x".repeat(1024);
const reply = new TextEncoder().encode(
  `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nContent-Type: text/plain\r\n\r\n${body}`,
);
const PLAIN_400 = "400 The plain HTTP request was sent to HTTPS port\n";
const bad = new TextEncoder().encode(
  `HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: ${PLAIN_400.length}\r\n` +
    `Connection: close\r\n\r\n${PLAIN_400}`,
);

/** Counts complete request heads in `text` (pipelining-safe enough for wrk). */
function heads(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\r\n\r\n"); i >= 0; i = text.indexOf("\r\n\r\n", i + 4)) n++;
  return n;
}

if (mode === "deno") {
  const l = Deno.listenTls({ hostname: "127.0.0.1", port, cert, key });
  console.log("ready");
  for await (const c of l) {
    (async () => {
      const buf = new Uint8Array(16384);
      try {
        while (true) {
          const n = await c.read(buf);
          if (n === null) break;
          const k = heads(new TextDecoder().decode(buf.subarray(0, n)));
          for (let i = 0; i < k; i++) await c.write(reply);
        }
      } catch { /* peer gone */ }
      try {
        c.close();
      } catch { /* closed */ }
    })();
  }
} else if (mode === "peek") {
  const libc = Deno.dlopen("libc.so.6", {
    recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
  }).symbols;
  const MSG_PEEK = 2;
  const context = tls.createSecureContext({ cert, key });
  const { fd: lfd } = listenTcp("127.0.0.1", port, 1024);
  console.log("ready");
  const one = new Uint8Array(1);
  const waiting: number[] = [];
  const serveTls = (fd: number) => {
    const s = new tls.TLSSocket(new net.Socket({ fd, readable: true, writable: true }), {
      isServer: true,
      secureContext: context,
    });
    s.on("data", (chunk: Uint8Array) => {
      const k = heads(new TextDecoder().decode(chunk));
      for (let i = 0; i < k; i++) s.write(reply);
    });
    s.on("error", () => {});
  };
  const sort = () => {
    // Sockets whose first byte has arrived: peek it, never consume it.
    for (let i = waiting.length - 1; i >= 0; i--) {
      const fd = waiting[i];
      const n = Number(libc.recv(fd, one, 1n, MSG_PEEK));
      if (n < 0) continue; // EAGAIN: nothing yet
      waiting.splice(i, 1);
      if (n === 0) libc.close(fd);
      else if (one[0] === 0x16) serveTls(fd);
      else {
        writeFd(fd, bad);
        libc.close(fd);
      }
    }
  };
  const loop = () => {
    if (pollIn(lfd, 0)) {
      for (let fd = accept(lfd); fd >= 0; fd = accept(lfd)) waiting.push(fd);
    }
    if (waiting.length > 0) sort();
    setTimeout(loop, waiting.length > 0 ? 0 : 1);
  };
  loop();
} else {
  const context = tls.createSecureContext({ cert, key });
  const secure = tls.createServer({ cert, key }, (s) => {
    s.on("data", (chunk: Uint8Array) => {
      const k = heads(new TextDecoder().decode(chunk));
      for (let i = 0; i < k; i++) s.write(reply);
    });
    s.on("error", () => {});
  });
  const plain = net.createServer((sock) => {
    sock.once("data", (first: Uint8Array) => {
      sock.pause();
      if (first[0] === 0x16) {
        // A TLS handshake record: give the bytes back and let TLS take the socket.
        sock.unshift(first);
        if (mode === "node-wrap") {
          const s = new tls.TLSSocket(sock, { isServer: true, secureContext: context });
          s.on("data", (chunk: Uint8Array) => {
            const k = heads(new TextDecoder().decode(chunk));
            for (let i = 0; i < k; i++) s.write(reply);
          });
          s.on("error", (e) => console.error("tls error", e.message));
        } else secure.emit("connection", sock);
        sock.resume();
      } else {
        sock.end(bad);
      }
    });
    sock.on("error", () => {});
  });
  plain.listen(port, "127.0.0.1", () => console.log("ready"));
}
