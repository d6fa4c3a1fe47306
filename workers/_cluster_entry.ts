/**
 * Test entry: `serve()` with the JSON options in `Deno.args[0]`, the
 * listening line on stdout, SIGINT/SIGTERM -> graceful shutdown then exit 0
 * (a second signal exits at once), and stdin commands for the test hooks:
 * `crash <i>` (worker i throws), `crash-acceptor` and `stats` (one JSON
 * line on stdout).
 *
 * @module
 */
import { type Cluster, serve } from "../serve.ts";
import type { Supervisor } from "./supervisor.ts";

// Signal listeners first: Deno 2.9.6 panics if registering one hits EMFILE,
// which can happen once connections pour in. `cluster` is assigned once, but
// after the listeners that read it exist.
// deno-lint-ignore prefer-const
let cluster: Cluster | undefined;
let stopping = false;
const onSignal = () => {
  if (stopping || !cluster) Deno.exit(1);
  stopping = true;
  cluster.shutdown().then(() => Deno.exit(0));
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

cluster = await serve(JSON.parse(Deno.args[0]));
console.log(
  `Listening on http://${cluster.addr.hostname}:${cluster.addr.port}/ (${cluster.workers} workers, ${cluster.mode} mode)`,
);

const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let buffered = "";
for await (const chunk of lines) {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const [cmd, arg] = buffered.slice(0, nl).trim().split(" ");
    buffered = buffered.slice(nl + 1);
    if (cmd === "crash") (cluster as Supervisor).crashWorker(Number(arg));
    if (cmd === "crash-acceptor") (cluster as Supervisor).crashAcceptor();
    if (cmd === "stats") console.log(JSON.stringify(cluster!.stats()));
  }
}
