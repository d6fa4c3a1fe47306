/**
 * Test helper of `exhaustion_test.ts`, run as its own process: `n` attacking
 * connections to 127.0.0.1:PORT (with `reconnect`: reconnecting whenever
 * the server closes them), until stdin closes; then prints `reconnects N`.
 *
 * ```sh
 * deno run --allow-net tests/_exhaust_attacker.ts PORT N idle|trickle|silent reconnect|once|until-closed
 * ```
 *
 * @module
 */
const encoder = new TextEncoder();

/** Reads until EOF (or a reset). */
async function drain(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(16384);
  try {
    while ((await conn.read(buf)) !== null) { /* discard */ }
  } catch {
    // A reset ends it too.
  }
}

type Attack = "idle" | "trickle" | "silent";

/**
 * `n` attacking connections that reconnect whenever the server closes them:
 * "idle" sends one kept-alive request, reads the answer and sits; "trickle"
 * sends part of a head, then one more byte a second, never finishing;
 * "silent" sends nothing (on an HTTPS port: never starts its handshake) and
 * records in `closedAfter` how long the server took to close it.
 */
export function attack(
  port: number,
  n: number,
  kind: Attack,
  stop: Promise<void>,
  reconnect = true,
  closedAfter: number[] = [],
): Promise<number> {
  let stopped = false;
  let reconnects = 0;
  const open = new Set<Deno.Conn>();
  stop.then(() => {
    stopped = true;
    for (const c of open) {
      try {
        c.close();
      } catch {
        // closed
      }
    }
  });
  const one = async () => {
    while (!stopped) {
      let conn: Deno.Conn;
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
      } catch {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (stopped) {
        conn.close();
        break;
      }
      open.add(conn);
      try {
        if (kind === "idle") {
          await conn.write(encoder.encode("GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
          await drain(conn); // the answer, then nothing until the server closes it
        } else if (kind === "silent") {
          const t0 = performance.now();
          await drain(conn);
          if (!stopped) closedAfter.push(performance.now() - t0);
        } else {
          await conn.write(encoder.encode("GET /small.txt HTTP/1.1\r\nHost: x\r\nX-Slow: "));
          const closed = drain(conn).then(() => true);
          while (!stopped) {
            const gone = await Promise.race([
              closed,
              new Promise<false>((r) => setTimeout(() => r(false), 1000)),
            ]);
            if (gone) break;
            await conn.write(encoder.encode("a")).catch(() => {});
          }
        }
      } catch {
        // reset: reconnect
      }
      open.delete(conn);
      try {
        conn.close();
      } catch {
        // closed
      }
      if (!reconnect) break;
      if (!stopped) reconnects++;
    }
  };
  // Connect in waves of 200, as a flood from a few machines would.
  const all: Promise<void>[] = [];
  return (async () => {
    for (let i = 0; i < n; i += 200) {
      const wave = Array.from({ length: Math.min(200, n - i) }, one);
      all.push(...wave);
      await new Promise((r) => setTimeout(r, 0));
    }
    await Promise.all(all);
    return reconnects;
  })();
}

if (import.meta.main) {
  const [port, n, kind, again] = Deno.args;
  const { promise: stop, resolve } = Promise.withResolvers<void>();
  const closedAfter: number[] = [];
  const done = attack(
    Number(port),
    Number(n),
    kind as Attack,
    stop,
    again === "reconnect",
    closedAfter,
  );
  if (again === "until-closed") {
    // Done when the server has closed every one of them.
    await done;
    console.log(`closed ${JSON.stringify(closedAfter)}`);
    Deno.exit(0);
  }
  // stdin closing (the test is done, or died) stops the attack.
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* wait */ }
    resolve();
  })();
  console.log(`reconnects ${await done}`);
  Deno.exit(0);
}
