#!/usr/bin/env bash
# WebSocket benchmarks: builds the release examples, then drives three servers through the same
# load configurations with examples/ws_load.rs, in rounds (BENCH_WS_REPS, default 3): in each
# round every server runs every configuration back to back, the servers taking turns going first.
#   ws      examples/ws_relay.rs: WebSocketMultiplayerPeer::server alone (ours)
#   mixed   relay-server --ws-port: ENet and WebSocket in one room (ours)
#   godot   the real Godot 3.2 engine (godot3-server) running benches/godot/bench_server.gd with BENCH_TRANSPORT=ws:
#           WebSocketServer.listen(port, PoolStringArray(), true) as the tree's network_peer
# Each run gets a fresh server. The server is pinned to CPU 0 and the load generator to CPU 1
# (taskset). Prints a markdown table of medians and of per-round ratios ours / Godot, and puts it
# in BENCHMARKS.md as the "WebSocket" section (between the bench_ws markers; appended when
# absent). Raw results: target/bench_ws/results.jsonl.
#
# Usage: scripts/bench_ws.sh
# Environment: BENCH_WS_REPS (3), BENCH_WS_DURATION (1.5: seconds of sending per run),
# BENCH_WS_BUDGET_S (420: runs left when it is spent are skipped and reported),
# BENCH_WS_REPORT_ONLY=1 (run nothing: print the table again from the last raw results and
# put it back in BENCHMARKS.md; scripts/bench.sh carries the section over when it rewrites the file),
# BENCH_WS_NO_WRITE=1 (do not touch BENCHMARKS.md), BENCH_SKIP_GODOT=1, GODOT_BIN (godot3-server).
# Not part of CI. Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

REPS=${BENCH_WS_REPS:-3}
DURATION=${BENCH_WS_DURATION:-1.5}
BUDGET_S=${BENCH_WS_BUDGET_S:-420}
GODOT=${GODOT_BIN:-godot3-server}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/examples
RAW=$TARGET_DIR/bench_ws
RESULTS=$RAW/results.jsonl
CONFIGS=$RAW/configs.txt
SCRIPT_START=$(date +%s)
RUN=1
[ "${BENCH_WS_REPORT_ONLY:-0}" = 1 ] && RUN=0

mkdir -p "$RAW"
if [ "$RUN" = 1 ]; then
    : >"$RESULTS"
    rm -f "$RAW"/server-*.log "$RAW"/load.log "$RAW"/run-info
    echo "bench_ws: building (release)" >&2
    cargo build --release --features relay-server --bin relay-server --example ws_load --example ws_relay >&2
elif [ ! -s "$RESULTS" ] || [ ! -f "$RAW/run-info" ]; then
    echo "bench_ws: BENCH_WS_REPORT_ONLY=1 but no results in $RAW; run scripts/bench_ws.sh first" >&2
    exit 1
fi

if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER="taskset -c 0"
    PIN_LOAD="taskset -c 1"
else
    PIN_SERVER=""
    PIN_LOAD=""
fi

SERVERS="ws mixed godot"
if [ "${BENCH_SKIP_GODOT:-0}" = 1 ] || ! command -v "$GODOT" >/dev/null 2>&1; then
    echo "bench_ws: Godot ($GODOT) skipped or not found; only ours runs" >&2
    SERVERS="ws mixed"
fi

# ---- configurations -----------------------------------------------------------------------
# id | description | servers (all, or mixed: ENet clients take part) | reference (mixed-only
# rows: the all-WebSocket configuration of the same shape whose Godot figure they are compared
# with) | ws_load arguments (--duration, --url, --enet-server and --server-pid are added)
if [ "$RUN" = 1 ]; then
    cat >"$CONFIGS" <<'EOF'
b8_64|8 WS clients, all sending 64 B broadcasts, paced|all|-|--clients 8 --size 64
b8_1024|8 WS clients, all sending 1024 B broadcasts, paced|all|-|--clients 8 --size 1024
b32_64|32 WS clients, all sending 64 B broadcasts, paced|all|-|--clients 32 --size 64
b32_1024|32 WS clients, all sending 1024 B broadcasts, paced|all|-|--clients 32 --size 1024
u8_64|8 WS clients, all sending 64 B broadcasts, unpaced|all|-|--clients 8 --size 64 --unpaced --max-drain 2
u32_1024|32 WS clients, all sending 1024 B broadcasts, unpaced|all|-|--clients 32 --size 1024 --unpaced --max-drain 2
b1x8_64|1 WS sender, 8 WS receivers, 64 B broadcasts, paced|all|-|--clients 9 --senders 1 --size 64 --inflight 4096
e2w_64|1 ENet sender, 8 WS receivers, 64 B broadcasts, paced|mixed|b1x8_64|--clients 8 --enet-clients 1 --send-from enet --size 64 --inflight 4096
w2e_64|1 WS sender, 8 ENet receivers, 64 B broadcasts, paced|mixed|b1x8_64|--clients 1 --enet-clients 8 --send-from ws --size 64 --inflight 4096
ping|WS to WS round trip through the server, 64 B|all|-|--test ping --clients 2 --size 64
ping_we|WS to ENet round trip through the mixed server, 64 B|mixed|ping|--test ping --clients 1 --enet-clients 1 --size 64
EOF
fi

server_cmd() { # kind port -> the command line (report and running)
    case $1 in
        ws) echo "$PIN_SERVER $BIN/ws_relay --port $2 --bind 127.0.0.1 --max-clients 64" ;;
        mixed) echo "$PIN_SERVER $TARGET_DIR/release/relay-server --port $2 --ws-port $(($2 + 1)) --bind 127.0.0.1 --compression none --max-clients 64 --stats-interval 0" ;;
        godot) echo "env BENCH_TRANSPORT=ws BENCH_PORT=$2 BENCH_SLEEP_USEC=0 BENCH_TIMEOUT=300 $PIN_SERVER $GODOT --path $ROOT/benches/godot -s res://bench_server.gd" ;;
    esac
}

# shellcheck source=scripts/bench_lib.sh
. "$ROOT/scripts/bench_lib.sh"
PORT=$((24000 + ($$ % 300) * 20))
trap stop_server EXIT

start_server() { # kind -> sets SERVER_PID and PORT; 1 if it did not start
    local kind=$1 tries log
    for tries in 1 2 3; do
        PORT=$((PORT + 2))
        ports_free "$PORT" "$((PORT + 1))" || continue
        log=$RAW/server-$kind-$PORT.log
        # shellcheck disable=SC2046
        launch_server "$log" $(server_cmd "$kind" "$PORT") && return 0
        echo "bench_ws: $kind did not start on port $PORT (see $log)" >&2
    done
    return 1
}

SKIPPED=0
CONFIG_LINES=()
[ "$RUN" = 1 ] && mapfile -t CONFIG_LINES <"$CONFIGS"
for rep in $(seq 1 "$REPS"); do
    [ "$RUN" = 1 ] || break
    for config_line in "${CONFIG_LINES[@]}"; do
        IFS='|' read -r cfg desc where _ref args <<<"$config_line"
        # shellcheck disable=SC2086
        for server in $(rotate $((rep - 1)) $SERVERS); do
            [ "$where" = mixed ] && [ "$server" != mixed ] && continue
            if ! budget_left; then
                SKIPPED=$((SKIPPED + 1))
                continue
            fi
            line=""
            if start_server "$server"; then
                ws_port=$PORT
                extra=""
                if [ "$server" = mixed ]; then
                    ws_port=$((PORT + 1))
                    extra="--enet-server 127.0.0.1:$PORT"
                fi
                # shellcheck disable=SC2086
                line=$(timeout 60 $PIN_LOAD "$BIN/ws_load" --url "ws://127.0.0.1:$ws_port/" $extra \
                    --server-pid "$SERVER_PID" --label "$cfg" --duration "$DURATION" $args \
                    </dev/null 2>>"$RAW/load.log" | tail -n 1) || true
                stop_server
            fi
            [ -n "$line" ] || line=null
            printf '{"bench_server":"%s","config":"%s","rep":%d,"result":%s}\n' \
                "$server" "$cfg" "$rep" "$line" >>"$RESULTS"
            echo "bench_ws: round $rep $cfg $server: $(echo "$line" | cut -c1-160)..." >&2
        done
    done
done

if [ "$RUN" = 1 ]; then
    GIT_REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git status --porcelain -- src enet-wrapper examples/ws_relay.rs 2>/dev/null)" ]; then
        GIT_REV="$GIT_REV (with uncommitted changes in src/, enet-wrapper/ or the servers)"
    fi
    {
        echo "REPS=$REPS"
        echo "DURATION=$DURATION"
        echo "SKIPPED=$SKIPPED"
        echo "SERVERS=\"$SERVERS\""
        echo "ELAPSED=$(($(date +%s) - SCRIPT_START))"
        echo "GIT_REV=\"$GIT_REV\""
        echo "RUN_DATE=\"$(date -u '+%Y-%m-%d %H:%M UTC')\""
        echo "CPU_MODEL=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\""
        echo "NPROC=$(nproc)"
        echo "GODOT_VERSION=\"$( (timeout 20 "$GODOT" --version 2>/dev/null || true) | head -n 1)\""
        echo "PINNED=\"${PIN_SERVER:+yes}\""
    } >"$RAW/run-info"
fi
# shellcheck disable=SC1091
. "$RAW/run-info"
export BWS_REPS=$REPS BWS_DURATION=$DURATION BWS_SKIPPED=$SKIPPED BWS_SERVERS="$SERVERS"
export BWS_ELAPSED=$ELAPSED BWS_GIT="$GIT_REV" BWS_DATE="$RUN_DATE" BWS_CPU="$CPU_MODEL"
export BWS_NPROC=$NPROC BWS_GODOT="$GODOT_VERSION" BWS_PINNED="$PINNED"
export BWS_CMD_WS BWS_CMD_MIXED BWS_CMD_GODOT
BWS_CMD_WS=$(server_cmd ws PORT | sed "s#$ROOT/##g; s#$TARGET_DIR/#target/#g")
BWS_CMD_MIXED=$(server_cmd mixed 7000 | sed "s#$ROOT/##g; s#$TARGET_DIR/#target/#g")
BWS_CMD_GODOT=$(server_cmd godot PORT | sed "s#$ROOT/##g")
SECTION=$RAW/section.md

python3 - "$RESULTS" "$CONFIGS" "$SECTION" <<'PY'
import json, os, statistics, sys

results_path, configs_path, section_path = sys.argv[1:4]
env = os.environ
configs = []
for line in open(configs_path):
    line = line.rstrip("\n")
    if not line:
        continue
    cid, desc, where, ref, args = line.split("|", 4)
    configs.append(dict(id=cid, desc=desc, where=where, ref=None if ref == "-" else ref, args=args))
by_id = {c["id"]: c for c in configs}

# runs[(config, server)][rep] = result
runs = {}
for line in open(results_path):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line)
    res = r["result"]
    if not isinstance(res, dict) or not res.get("ok"):
        res = None
    runs.setdefault((r["config"], r["bench_server"]), {})[r["rep"]] = res

servers = env.get("BWS_SERVERS", "ws mixed godot").split()
has_godot = "godot" in servers
NAMES = {"ws": "ours, WebSocket only", "mixed": "ours, mixed ENet + WebSocket", "godot": "Godot 3.2"}


def values(cfg, server, field):
    out = {}
    for rep, res in runs.get((cfg, server), {}).items():
        if res is not None and isinstance(res.get(field), (int, float)):
            out[rep] = float(res[field])
    return out


def median(xs):
    xs = list(xs)
    return statistics.median(xs) if xs else None


def ratio(num_cfg, num_srv, den_cfg, den_srv, field):
    """Median of the per-round ratios (same round), and how many rounds had both."""
    a = values(num_cfg, num_srv, field)
    b = values(den_cfg, den_srv, field)
    rs = [a[k] / b[k] for k in a if k in b and b[k] > 0]
    return (median(rs), len(rs))


def fmt_int(x):
    return "-" if x is None else f"{x:,.0f}"


def fmt_x(x):
    return "-" if x is None else f"{x:.2f}x"


def fmt_f(x, d=1):
    return "-" if x is None else f"{x:.{d}f}"


def failed(cfg, server):
    reps = runs.get((cfg, server), {})
    return sum(1 for r in reps.values() if r is None)


lines = []
out = lines.append
throughput = [c for c in configs if "--test ping" not in c["args"]]
pings = [c for c in configs if "--test ping" in c["args"]]
lowest = []  # (ratio, config, which) for the verdict

out("| configuration | ours WS-only msg/s | ours mixed msg/s | Godot 3.2 msg/s | WS-only / Godot | mixed / Godot | loss % (WS-only / mixed / Godot) | disconnects | server CPU % (WS-only / mixed / Godot) |")
out("|---|---|---|---|---|---|---|---|---|")
for c in throughput:
    cid = c["id"]
    ref = c["ref"] or cid
    med = {s: median(values(cid, s, "msgs_per_s").values()) for s in servers}
    if c["where"] == "mixed":
        med["ws"] = None
        med["godot"] = median(values(ref, "godot", "msgs_per_s").values()) if has_godot else None
    r_ws = ratio(cid, "ws", ref, "godot", "msgs_per_s")[0] if has_godot and c["where"] != "mixed" else None
    r_mixed = ratio(cid, "mixed", ref, "godot", "msgs_per_s")[0] if has_godot else None
    for r, which in ((r_ws, "WS-only"), (r_mixed, "mixed")):
        if r is not None:
            lowest.append((r, cid, which))
    loss = []
    disc = []
    cpu = []
    for s in ("ws", "mixed", "godot"):
        src = ref if (c["where"] == "mixed" and s != "mixed") else cid
        if s not in servers or (c["where"] == "mixed" and s == "ws"):
            loss.append("-")
            disc.append("-")
            cpu.append("-")
            continue
        loss.append(fmt_f(median(values(src, s, "loss_pct").values()), 2))
        d = values(src, s, "disconnects").values()
        disc.append(fmt_int(max(d)) if d else "-")
        cpu.append(fmt_f(median(values(src, s, "server_cpu_pct").values()), 0))
    desc = c["desc"]
    if c["where"] == "mixed":
        desc += f" (Godot, which cannot mix transports: `{ref}`, all WebSocket)"
    fails = sum(failed(cid, s) for s in servers)
    if fails:
        desc += f" ({fails} failed runs)"
    out(f"| {desc} | {fmt_int(med.get('ws'))} | {fmt_int(med.get('mixed'))} | {fmt_int(med.get('godot'))} | "
        f"{fmt_x(r_ws)} | {fmt_x(r_mixed)} | {' / '.join(loss)} | {' / '.join(disc)} | {' / '.join(cpu)} |")

notes = []
stall_parts = []
for c in throughput:
    per = []
    for s in ("ws", "mixed", "godot"):
        v = values(c["id"], s, "stalls").values()
        per.append(str(int(sum(v))) if v else "-")
    if any(p not in ("0", "-") for p in per):
        stall_parts.append(f"`{c['id']}` {' / '.join(per)}")
if stall_parts:
    notes.append("Paced windows that made no progress for 500 ms (then released), summed over the rounds, WS-only / mixed / Godot: "
                 + "; ".join(stall_parts) + ". Those messages came late, not lost (loss is in the table).")
paced = [c for c in throughput if "--unpaced" not in c["args"]]
write_stalls = sum(sum(values(c["id"], s, "write_stalls").values()) for c in paced for s in servers)
noisy = []
for c in throughput:
    for s in servers:
        for rep, gap in sorted(values(c["id"], s, "max_round_gap_ms").items()):
            if gap > 100:
                noisy.append(f"`{c['id']}` {s} round {rep} ({gap:.0f} ms)")
if noisy:
    notes.append("Runs in which the load generator itself did not run for over 100 ms (the shared machine; their round's ratios are the least reliable): "
                 + ", ".join(noisy) + ".")
notes.append(f"Paced runs: sockets of the load found full for 500 ms and written again (a missed writable edge would show here; unpaced runs fill their sockets on purpose): {int(write_stalls)}.")
kicked = []
for c in throughput:
    for s in ("ws", "mixed"):
        d = values(c["id"], s, "disconnects")
        if d and sum(d.values()) > 0:
            kicked.append(f"`{c['id']}` {s}: {int(sum(d.values()))} in {sum(1 for v in d.values() if v > 0)} of {len(d)} rounds")
if kicked:
    notes.append("Our server disconnected clients as slow consumers (over `WebSocketListen::max_queued_bytes`, 1 MiB, queued for one client) in: "
                 + "; ".join(kicked) + ". Godot keeps them connected and drops the messages instead (its loss column).")
for n in notes:
    out("")
    out(n)

out("")
out("Round trips (microseconds; ratios are ours / Godot of the p50, per round, so below 1 means ours is faster):")
out("")
out("| round trip | ours WS-only p50 / p99 | ours mixed p50 / p99 | Godot 3.2 p50 / p99 | WS-only / Godot (p50) | mixed / Godot (p50) | lost |")
out("|---|---|---|---|---|---|---|")
for c in pings:
    cid = c["id"]
    ref = c["ref"] or cid
    cell = {}
    lost = []
    for s in ("ws", "mixed", "godot"):
        src = ref if (c["where"] == "mixed" and s == "godot") else cid
        if s not in servers or (c["where"] == "mixed" and s == "ws"):
            cell[s] = "-"
            lost.append("-")
            continue
        p50 = median(values(src, s, "rtt_p50_us").values())
        p99 = median(values(src, s, "rtt_p99_us").values())
        cell[s] = f"{fmt_f(p50)} / {fmt_f(p99)}"
        l = values(src, s, "lost").values()
        lost.append(fmt_int(max(l)) if l else "-")
    r_ws = ratio(cid, "ws", ref, "godot", "rtt_p50_us")[0] if has_godot and c["where"] != "mixed" else None
    r_mixed = ratio(cid, "mixed", ref, "godot", "rtt_p50_us")[0] if has_godot else None
    for r, which in ((r_ws, "WS-only"), (r_mixed, "mixed")):
        if r is not None:
            lowest.append((1.0 / r, cid + " (p50)", which))
    desc = c["desc"]
    if c["where"] == "mixed":
        desc += f" (Godot: `{ref}`, WS to WS)"
    out(f"| {desc} | {cell['ws']} | {cell['mixed']} | {cell['godot']} | {fmt_x(r_ws)} | {fmt_x(r_mixed)} | {' / '.join(lost)} |")

table = "\n".join(lines)
print(table)

verdict = ""
if lowest:
    worst = min(lowest)
    ahead = all(r > 1.0 for r, _, _ in lowest)
    verdict = (f"Ahead of Godot's WebSocket server on every configuration: **{'yes' if ahead else 'NO'}** "
               f"(smallest margin: {worst[0]:.2f}x, {worst[2]} in `{worst[1]}`; for round trips the "
               f"margin is Godot's p50 over ours).")
    print()
    print(verdict)

skipped = int(env.get("BWS_SKIPPED", "0") or 0)
elapsed = int(env.get("BWS_ELAPSED", "0") or 0)
sec = []
w = sec.append
w("<!-- bench_ws:begin -->")
w("## WebSocket")
w("")
w("<!-- Written by scripts/bench_ws.sh (scripts/bench.sh keeps it when it rewrites this file). -->")
w("")
w(f"Generated by `scripts/bench_ws.sh` from a run on {env.get('BWS_DATE', '?')} (commit {env.get('BWS_GIT', '?')}); "
  f"{env.get('BWS_REPS')} rounds, {env.get('BWS_DURATION')} s of sending per run, whole script {elapsed // 60} min {elapsed % 60} s"
  + (f", **{skipped} runs skipped** (time budget)" if skipped else "") + ".")
w("")
w("Three servers, in the same run, a fresh server for every run, taking turns going first in each round:")
w("")
w(f"- **ours, WebSocket only**: `examples/ws_relay.rs` (`WebSocketMultiplayerPeer::server`, the same loop as the relay server: busy-polls 1 ms after traffic, then blocks in the readiness wait): `{env.get('BWS_CMD_WS')}`")
w(f"- **ours, mixed**: the `relay-server` binary with a WebSocket port, ENet and WebSocket clients in one room: `{env.get('BWS_CMD_MIXED')}` (ENet port 7000, WebSocket port 7001)")
w(f"- **Godot 3.2**: the real engine ({env.get('BWS_GODOT', '?')}) running `benches/godot/bench_server.gd` with `BENCH_TRANSPORT=ws`: a `WebSocketServer` listening with `listen(port, PoolStringArray(), true)`, the tree's `network_peer` (the MultiplayerAPI polls it every frame and takes the server's copy of every broadcast), default buffers, `low_processor_usage_mode_sleep_usec = 0`: `{env.get('BWS_CMD_GODOT')}`")
w("")
w("The load is `examples/ws_load.rs` (one thread): raw tungstenite WebSocket clients on one readiness wait, `TCP_NODELAY`, and, against the mixed server, the crate's `ENetMultiplayerPeer` clients (compression none, reliable). "
  "*Paced*: a window per sender (16,384 deliveries in flight in all, per sender 16,384 / (senders x receivers), 4..=1024; 4,096 in the rows with ENet clients and in `b1x8_64`, their reference, as in scripts/bench.sh: ENet 1.3 walks its list of unacknowledged reliable packets for every acknowledgement, so thousands in flight collapse it); *unpaced*: every sender writes whenever its socket takes more, TCP back-pressure alone. "
  "A message is one payload delivered to one client; loss is what did not arrive (WebSocket is reliable: Godot drops what does not fit a peer's 64 KiB / 1024-packet output buffer, ours disconnects a client over 1 MiB queued). "
  f"Server pinned to CPU 0, load to CPU 1 ({'taskset' if env.get('BWS_PINNED') else 'not pinned: no taskset'}); CPU: {env.get('BWS_CPU', '?')}, `nproc` = {env.get('BWS_NPROC', '?')}, shared with other work, so only the ratios of the same round mean much. Figures are medians; ratios are medians of the per-round ratios. "
  "Server CPU is its CPU time over the run's wall time (one core = 100).")
w("")
w("Command: `scripts/bench_ws.sh` (environment: `BENCH_WS_REPS`, `BENCH_WS_DURATION`, `BENCH_WS_BUDGET_S`, `BENCH_WS_REPORT_ONLY=1`, `BENCH_SKIP_GODOT=1`).")
w("")
w(table)
if verdict:
    w("")
    w(verdict)
w("<!-- bench_ws:end -->")
open(section_path, "w").write("\n".join(sec) + "\n")
PY

if [ "${BENCH_WS_NO_WRITE:-0}" != 1 ]; then
    python3 - "$ROOT/BENCHMARKS.md" "$SECTION" <<'PY'
import re, sys
path, section_path = sys.argv[1:3]
section = open(section_path).read()
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmarks\n"
pattern = re.compile(r"<!-- bench_ws:begin.*?<!-- bench_ws:end -->\n?", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: section, text)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
    echo "bench_ws: the WebSocket section of BENCHMARKS.md is up to date" >&2
fi
