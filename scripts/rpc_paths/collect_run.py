"""One run of scripts/bench_rpc_paths.sh: reads the server's (or proxy's) last stats line and
the clients' logs, prints one JSON result line."""
import json, sys
config, rep, count, proxy, failed, slog, plog, cprefix, clients = sys.argv[1:]
def last_json(path):
    try:
        lines = [l for l in open(path) if l.startswith("{")]
    except OSError:
        return {}
    return json.loads(lines[-1]) if lines else {}
r = {"config": config, "rep": int(rep), "count": int(count), "proxy": proxy == "1",
     "failed_clients": int(failed)}
if config != "godot":
    s = last_json(slog)
    r["server_packets"], r["server_bytes"] = s.get("packets_in_total"), s.get("bytes_in_total")
    r["server_peers_at_end"] = s.get("peers")
else:
    got = [l.split()[1] for l in open(slog) if l.startswith("SERVER_GOT")]
    r["server_hits"] = int(got[-1]) if got else None
if proxy == "1":
    p = last_json(plog)
    r["proxy_packets"], r["proxy_bytes"] = p.get("packets_in_total"), p.get("bytes_in_total")
    r["proxy_unparsed"] = p.get("unparsed_datagrams")
for key in ("SENT", "GOT", "GOT_MIN"):
    r[key.lower()] = []
r["done"] = 0
for i in range(1, int(clients) + 1):
    for line in open(f"{cprefix}{i}.log"):
        w = line.split()
        if w and w[0] in ("SENT", "GOT", "GOT_MIN"):
            r[w[0].lower()].append(int(w[1]))
        elif w and w[0] == "DONE":
            r["done"] += 1
print(json.dumps(r))
