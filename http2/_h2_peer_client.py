# Test client for interop_test.ts: Debian's python3-h2 (an HTTP/2 stack nobody
# here wrote) over TLS with ALPN h2. Usage: PORT CAFILE; prints one JSON line:
# per request its status, headers and body length + checksum, with a small
# receive window (flow control acknowledged by hand).
import hashlib, json, socket, ssl, sys
import h2.config, h2.connection, h2.events, h2.settings

port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
ctx.set_alpn_protocols(["h2"])
sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 4096})
reqs = {}
for method, path in [("GET", "/a.txt"), ("GET", "/big.bin"), ("HEAD", "/a.txt"), ("GET", "/nope"), ("GET", "/sub/")]:
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", method), (":scheme", "https"), (":authority", "localhost"), (":path", path)], end_stream=True)
    reqs[sid] = {"method": method, "path": path, "status": None, "headers": {}, "body": hashlib.sha256(), "length": 0, "ended": False}
sock.sendall(conn.data_to_send())
settings_acked = False
while not all(r["ended"] for r in reqs.values()):
    data = sock.recv(65536)
    if not data:
        break
    for ev in conn.receive_data(data):
        if isinstance(ev, h2.events.ResponseReceived):
            r = reqs[ev.stream_id]
            r["headers"] = {k.decode(): v.decode() for k, v in ev.headers}
            r["status"] = int(r["headers"][":status"])
        elif isinstance(ev, h2.events.DataReceived):
            r = reqs[ev.stream_id]
            r["body"].update(ev.data)
            r["length"] += len(ev.data)
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            reqs[ev.stream_id]["ended"] = True
        elif isinstance(ev, h2.events.SettingsAcknowledged):
            settings_acked = True
        elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
            print(json.dumps({"error": repr(ev)}))
            sys.exit(1)
    out = conn.data_to_send()
    if out:
        sock.sendall(out)
conn.close_connection()
sock.sendall(conn.data_to_send())
sock.close()
print(json.dumps({"settingsAcked": settings_acked, "responses": [
    {"method": r["method"], "path": r["path"], "status": r["status"], "headers": r["headers"],
     "length": r["length"], "sha256": r["body"].hexdigest(), "ended": r["ended"]} for r in reqs.values()]}))
