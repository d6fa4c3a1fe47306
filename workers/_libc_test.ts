import assert from "node:assert/strict";
import {
  accept,
  close,
  E,
  encodeSockaddr,
  listenTcp,
  noDelay,
  openFileLimit,
  parseIp,
  pollIn,
} from "./_libc.ts";

Deno.test("parseIp reads IPv4, IPv6 and localhost literals and rejects names", () => {
  assert.deepEqual(parseIp("127.0.0.1"), { family: 4, bytes: new Uint8Array([127, 0, 0, 1]) });
  assert.deepEqual(parseIp("localhost"), { family: 4, bytes: new Uint8Array([127, 0, 0, 1]) });
  assert.deepEqual(parseIp("::"), { family: 6, bytes: new Uint8Array(16) });
  const loop = new Uint8Array(16);
  loop[15] = 1;
  assert.deepEqual(parseIp("[::1]"), { family: 6, bytes: loop });
  assert.deepEqual(
    parseIp("::ffff:10.0.0.1")?.bytes.slice(10),
    new Uint8Array([255, 255, 10, 0, 0, 1]),
  );
  assert.deepEqual(parseIp("fe80:0:0:0:0:0:0:2")?.bytes[0], 0xfe);
  for (const bad of ["example.com", "1.2.3", "256.1.1.1", "1::2::3", "1:2:3:4:5:6:7:8:9", ""]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

Deno.test("encodeSockaddr lays out sockaddr_in and sockaddr_in6 with the port in network order", () => {
  const v4 = encodeSockaddr(parseIp("10.1.2.3")!, 8000);
  assert.deepEqual([...v4.slice(0, 8)], [2, 0, 0x1f, 0x40, 10, 1, 2, 3]);
  assert.equal(v4.length, 16);
  const v6 = encodeSockaddr(parseIp("::1")!, 443);
  assert.equal(v6.length, 28);
  assert.deepEqual([...v6.slice(0, 4)], [10, 0, 0x01, 0xbb]);
  assert.equal(v6[23], 1);
});

Deno.test("listenTcp on port 0 reports the real port; accepted fds inherit TCP_NODELAY", async () => {
  const { fd, port } = listenTcp("127.0.0.1", 0);
  try {
    assert.ok(port > 0);
    assert.equal(accept(fd), -E.AGAIN);
    const client = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      assert.ok(pollIn(fd, 5000));
      const conn = accept(fd);
      assert.ok(conn >= 0, `accept4 failed: ${-conn}`);
      assert.equal(noDelay(conn), true);
      close(conn);
    } finally {
      client.close();
    }
  } finally {
    close(fd);
  }
});

Deno.test("listenTcp says which port is in use", () => {
  const first = listenTcp("127.0.0.1", 0);
  try {
    assert.throws(
      () => listenTcp("127.0.0.1", first.port),
      new RegExp(`^LibcError: port ${first.port} is in use \\(127\\.0\\.0\\.1:${first.port}\\)$`),
    );
  } finally {
    close(first.fd);
  }
});

Deno.test("listenTcp rejects a host name with the value", () => {
  assert.throws(
    () => listenTcp("example.com", 0),
    new TypeError('host must be an IPv4 or IPv6 address or "localhost", got "example.com"'),
  );
});

Deno.test("openFileLimit reads RLIMIT_NOFILE", () => {
  const limit = openFileLimit();
  assert.ok(limit !== undefined && limit > 0);
});
