"""The report of scripts/bench_rpc_paths.sh: medians per configuration as a markdown table,
optionally written into BENCHMARKS.md between the rpc-paths markers."""
import json, os, platform, statistics, sys
results, count, clients, reps, cmd, elapsed, markdown, godot_version = sys.argv[1:]
count, clients, reps = int(count), int(clients), int(reps)
runs = [json.loads(l) for l in open(results)]
expected_got = (clients - 1) * count

def counters(r):
    # The server's own counter for the relay; the proxy's for Godot's server.
    if r["config"] == "godot":
        return r.get("proxy_packets"), r.get("proxy_bytes")
    return r.get("server_packets"), r.get("server_bytes")

rows, notes, problems = {}, [], []
for config in ("confirm", "no-confirm", "godot"):
    per_pkt, per_byte, base_pkt, base_byte, got_ok, got_all = [], [], [], [], 0, []
    for rep in range(1, reps + 1):
        ctrl = [r for r in runs if r["config"] == config and r["rep"] == rep and r["count"] == 0]
        meas = [r for r in runs if r["config"] == config and r["rep"] == rep and r["count"] == count
                and (config == "godot" or not r["proxy"])]
        if not ctrl or not meas:
            continue
        c, m = ctrl[0], meas[0]
        (cp, cb), (mp, mb) = counters(c), counters(m)
        if None in (cp, cb, mp, mb):
            problems.append(f"{config} rep {rep}: no counter read")
            continue
        rpcs = clients * count
        per_pkt.append((mp - cp) / rpcs)
        per_byte.append((mb - cb) / rpcs)
        base_pkt.append(cp)
        base_byte.append(cb)
        got_all.extend(m["got"])
        if m["done"] != clients or m["failed_clients"] or len(m["got"]) != clients:
            problems.append(f"{config} rep {rep}: {m['done']}/{clients} clients finished")
        if any(g != expected_got for g in m["got"]):
            problems.append(f"{config} rep {rep}: GOT {m['got']} (expected {expected_got} each)")
        if any(s != count for s in m["sent"]):
            problems.append(f"{config} rep {rep}: SENT {m['sent']}")
    if per_pkt:
        rows[config] = dict(pkt=statistics.median(per_pkt), byte=statistics.median(per_byte),
                            pkts=per_pkt, bytes=per_byte, base_pkt=statistics.median(base_pkt),
                            base_byte=statistics.median(base_byte), n=len(per_pkt),
                            got_min=min(got_all) if got_all else None,
                            got_max=max(got_all) if got_all else None)

# What the path-cache rule (MULTIPLAYER_API.md) predicts per client: SIMPLIFY_PATH to every other
# client and the server, CONFIRM_PATH to every other client, the first RPC one copy per target
# (the server and the other clients); then one packet per RPC if the server confirms, else one
# copy per target.
n_targets = clients
setup = (clients - 1) + 1 + (clients - 1)
predicted = {"confirm": setup + n_targets + (count - 1), "no-confirm": setup + n_targets * count}
predicted["godot"] = predicted["confirm"]
rule = []
for config, x in rows.items():
    per_client = x["pkt"] * count
    rule.append((config, per_client, predicted[config]))
checks = []
for r in runs:
    if r["proxy"] and r["config"] != "godot":
        checks.append(f"{r['config']}: relay counter {r['server_packets']} packets / "
                      f"{r['server_bytes']} bytes, proxy {r['proxy_packets']} / {r['proxy_bytes']}")
godot_hits = [r.get("server_hits") for r in runs if r["config"] == "godot" and r["count"] == count]

label = {"confirm": "relay_server (answers SIMPLIFY_PATH)",
         "no-confirm": "relay_server --no-confirm-paths (old behaviour)",
         "godot": "Godot 3.2's own server (rpc_relay_server.gd, via the counting proxy)"}
def fmt(x):
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"
md = ["## Broadcast RPCs from Godot clients: the relay confirms node paths", "",

    f"{clients} headless Godot {godot_version or '3.2'} clients (`benches/godot/rpc_broadcast.gd`, "
    "no compression) connect to a server on 127.0.0.1, mesh, and each call "
    f"`rpc(\"hit\", i, \"some text\")` {count} times on `/root/Room` (one call, 500 ms for the path "
    "confirmations, then one every 5 ms). Measured: ENet packets, and their bytes (Godot's 8-byte "
    "header + payload), that the server received from the clients (relayed ones included), per "
    "broadcast RPC sent, after subtracting a control run with no RPCs (connect, mesh, leave). "
    "Pings, acks and the handshake are not ENet packets and are not counted. The figures include "
    "the path set-up itself (each client's SIMPLIFY_PATH to every peer and the server, the peers' "
    "CONFIRM_PATH) and the first RPC of each client, which always goes one copy per peer. "
    f"Median of {reps} runs, interleaved; every client must receive {expected_got} hits.", "",
    "| server | packets in per broadcast RPC | bytes in per broadcast RPC | hits received per client (min–max) | control run: packets / bytes in |",
    "|---|---:|---:|---:|---:|",
]
for config in ("no-confirm", "confirm", "godot"):
    if config in rows:
        x = rows[config]
        md.append(f"| {label[config]} | {fmt(x['pkt'])} | {fmt(x['byte'])} | "
                  f"{x['got_min']}–{x['got_max']} | {x['base_pkt']:.0f} / {x['base_byte']:.0f} |")
if "confirm" in rows and "no-confirm" in rows and rows["confirm"]["pkt"] > 0:
    a, b = rows["no-confirm"], rows["confirm"]
    md += ["", f"Before/after (no-confirm ÷ confirm, medians of the same run): "
           f"**{a['pkt'] / b['pkt']:.2f}×** the packets and **{a['byte'] / b['byte']:.2f}×** the bytes "
           "into the server per broadcast RPC."]
md += [""]
if rule:
    md += ["Per client that is, in packets: " + "; ".join(
        f"{config} {got:g} (the path-cache rule predicts {want}: "
        + ("matches" if abs(got - want) < 1e-6 else "DIFFERS") + ")" for config, got, want in rule)
        + f". In steady state a broadcast RPC is {clients} packets into the server without "
        "confirmations (one per other client and one for the server, the server's copy in the "
        "full-path form) and 1 packet with them; the rest of the figure above is the path set-up "
        f"({setup} packets per client) and each client's first RPC ({n_targets} copies), spread over "
        f"{count} RPCs.", ""]
if checks:
    md += ["Cross-check, one run each behind the counting proxy (ENet commands parsed from the UDP "
           "datagrams): " + "; ".join(checks) + ".", ""]
if godot_hits:
    md += [f"Godot's server itself received {', '.join(str(h) for h in godot_hits)} `hit` calls "
           f"per run (expected {clients * count}).", ""]
if problems:
    md += ["**Problems in this run:** " + "; ".join(problems) + ".", ""]
md += [f"Command: `{cmd}` (needs `cargo build --release --features relay-server --bin relay-server` and "
       f"`godot3-server`; took {elapsed} s). Raw results: `target/bench/rpc_paths/results.jsonl`.", "",
       f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
       f"{platform.release()}. These are counts of packets, not timings: they do not depend on "
       "the machine's speed, and the before/after ratio comes from runs made in the same session, "
       "interleaved.", ""]
section = "\n".join(md)
print(section)
for config, x in rows.items():
    print(f"# {config}: packets/RPC per run {['%.3f' % v for v in x['pkts']]}, "
          f"bytes/RPC {['%.1f' % v for v in x['bytes']]}", file=sys.stderr)
if markdown:
    begin, end = "<!-- rpc-paths:begin -->", "<!-- rpc-paths:end -->"
    block = f"{begin}\n{section}{end}\n"
    try:
        text = open(markdown).read()
    except FileNotFoundError:
        text = ""
    if begin in text and end in text[text.index(begin):]:
        i = text.index(begin)
        j = text.index(end, i) + len(end)
        if text[j:j + 1] == "\n":
            j += 1
        text = text[:i] + block + text[j:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    open(markdown, "w").write(text)
    print(f"wrote the section into {markdown}", file=sys.stderr)
