#!/usr/bin/env bash
# Broadcast RPCs from real Godot 3.2 clients: what the relay's answer to SIMPLIFY_PATH saves.
#
# A Godot 3 client sends `rpc("f", ...)` to everyone as ONE packet (target 0) only once every
# target, the server included, has confirmed the node path with CONFIRM_PATH; until then it sends
# one copy per peer (MULTIPLAYER_API.md, "Path cache"). This script starts a server, then
# RPC_BENCH_CLIENTS (8) headless Godot clients (benches/godot/rpc_broadcast.gd) that mesh, each
# send RPC_BENCH_COUNT (200) broadcast RPCs rpc("hit", i, "some text") and count the hits they
# receive, and reads how many ENet packets (and payload bytes) the server received from clients.
# Configurations, interleaved, RPC_BENCH_REPS (3) times each:
#   confirm     the relay-server binary as it is (answers SIMPLIFY_PATH with CONFIRM_PATH)
#   no-confirm  the same with --no-confirm-paths (the old behaviour: never answers)
#   godot       Godot 3.2's own server (benches/godot/rpc_relay_server.gd: MultiplayerAPI, relay
#               on), counted by a small UDP proxy in front of it that parses the ENet commands
#               (Godot's server has no counter); skipped with RPC_BENCH_SKIP_GODOT=1
# Each measured run is preceded by a control run with COUNT=0 (connect, mesh, settle, leave) whose
# totals are subtracted. On the first repetition, confirm and no-confirm also run once behind the
# proxy, to check that the proxy counts what the relay's own counter counts.
#
# Usage: scripts/bench_rpc_paths.sh [--markdown FILE]
#   --markdown FILE  also write the report section between the markers
#                    <!-- rpc-paths:begin --> and <!-- rpc-paths:end --> into FILE (replacing an
#                    existing marked section, else appending it); scripts/bench.sh keeps it.
# Environment: RPC_BENCH_COUNT (200), RPC_BENCH_CLIENTS (8), RPC_BENCH_REPS (3),
#   RPC_BENCH_PORT (17950: first port; each run takes the next), RPC_BENCH_SKIP_GODOT=1,
#   GODOT_BIN (godot3-server). Needs python3 and a built relay server
#   (cargo build --release --features relay-server --bin relay-server). Raw results: target/bench/rpc_paths/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

COUNT=${RPC_BENCH_COUNT:-200}
CLIENTS=${RPC_BENCH_CLIENTS:-8}
REPS=${RPC_BENCH_REPS:-3}
PORT=${RPC_BENCH_PORT:-17950}
GODOT=${GODOT_BIN:-godot3-server}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RELAY=$TARGET_DIR/release/relay-server
OUT=$TARGET_DIR/bench/rpc_paths
RESULTS=$OUT/results.jsonl
MARKDOWN=""
if [ "${1:-}" = "--markdown" ]; then
    MARKDOWN=${2:?--markdown needs a file}
elif [ -n "${1:-}" ]; then
    echo "usage: $0 [--markdown FILE]" >&2
    exit 2
fi
CLIENT_TIMEOUT_S=30

[ -x "$RELAY" ] || { echo "bench_rpc_paths: $RELAY missing: cargo build --release --features relay-server --bin relay-server" >&2; exit 1; }
command -v "$GODOT" >/dev/null 2>&1 || { echo "bench_rpc_paths: $GODOT not found" >&2; exit 1; }
CONFIGS="confirm no-confirm godot"
[ "${RPC_BENCH_SKIP_GODOT:-0}" = 1 ] && CONFIGS="confirm no-confirm"

mkdir -p "$OUT"
REPORT_ONLY=${RPC_BENCH_REPORT_ONLY:-0}
if [ "$REPORT_ONLY" = 1 ]; then
    [ -s "$RESULTS" ] || { echo "bench_rpc_paths: RPC_BENCH_REPORT_ONLY=1 but $RESULTS is empty" >&2; exit 1; }
else
    : >"$RESULTS"
    rm -f "$OUT"/*.log
fi

# Every process this script starts, killed by pid on exit.
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.2
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the counting proxy ------------------------------------------------------------------------
# Forwards UDP between the clients and a server (one upstream socket per client) and counts the
# ENet data packets the clients send: SEND_RELIABLE / SEND_UNRELIABLE / SEND_UNSEQUENCED commands,
# plus the first fragment of fragmented ones, reliable retransmissions counted once, and their data
# length (Godot's 8-byte header + payload: what the relay's bytes_in counts). Pings, acks and the
# connect handshake are not data packets and are not counted, as in the relay's counter.
PROXY=$ROOT/scripts/rpc_paths/enet_count_proxy.py

# ---- one run -----------------------------------------------------------------------------------
wait_for() {  # file pattern pid seconds
    local i
    for i in $(seq 1 $(($4 * 20))); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

stop_pid() {
    local i
    kill -TERM "$1" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# run_once CONFIG REP COUNT PROXY(0|1): appends one JSON line to $RESULTS
run_once() {
    local config=$1 rep=$2 count=$3 proxy=$4
    local tag="$config-r$rep-n$count-p$proxy"
    local sport=$PORT cport=$PORT
    PORT=$((PORT + 2))
    local slog=$OUT/server-$tag.log serr=$OUT/server-$tag.err plog=$OUT/proxy-$tag.log
    local spid ppid=""
    if [ "$proxy" = 1 ] || [ "$config" = godot ]; then
        proxy=1
        cport=$((sport + 1))
    fi
    case $config in
        confirm|no-confirm)
            local extra=()
            [ "$config" = no-confirm ] && extra=(--no-confirm-paths)
            "$RELAY" --port "$sport" --bind 127.0.0.1 --compression none --max-clients 64 \
                --stats-interval 0.2 --stats-json "${extra[@]}" >"$slog" 2>"$serr" &
            spid=$!
            PIDS+=("$spid")
            wait_for "$slog" packets_in_total "$spid" 5 || { echo "bench_rpc_paths: server did not start ($tag)" >&2; cat "$serr" >&2; exit 1; }
            ;;
        godot)
            RPC_PORT=$sport RPC_TIMEOUT=120 "$GODOT" --no-window --path benches/godot \
                -s res://rpc_relay_server.gd >"$slog" 2>"$serr" &
            spid=$!
            PIDS+=("$spid")
            wait_for "$slog" READY "$spid" 10 || { echo "bench_rpc_paths: Godot server did not start ($tag)" >&2; cat "$slog" "$serr" >&2; exit 1; }
            ;;
    esac
    if [ "$proxy" = 1 ]; then
        python3 "$PROXY" "$cport" "$sport" >"$plog" 2>&1 &
        ppid=$!
        PIDS+=("$ppid")
        wait_for "$plog" READY "$ppid" 5 || { echo "bench_rpc_paths: proxy did not start ($tag)" >&2; cat "$plog" >&2; exit 1; }
    fi
    local cpids=() i
    for i in $(seq 1 "$CLIENTS"); do
        RPC_PORT=$cport RPC_PEERS=$((CLIENTS - 1)) RPC_COUNT=$count RPC_TIMEOUT=$CLIENT_TIMEOUT_S \
            timeout $((CLIENT_TIMEOUT_S + 10)) "$GODOT" --no-window --path benches/godot \
            -s res://rpc_broadcast.gd >"$OUT/client-$tag-$i.log" 2>&1 &
        cpids+=("$!")
        PIDS+=("$!")
    done
    local failed=0
    for i in "${cpids[@]}"; do wait "$i" || failed=$((failed + 1)); done
    # Let the last packets and the disconnects through, and a stats line or two be printed.
    sleep 0.7
    [ -n "$ppid" ] && stop_pid "$ppid"
    stop_pid "$spid"
    python3 "$ROOT/scripts/rpc_paths/collect_run.py" "$config" "$rep" "$count" "$proxy" "$failed" "$slog" "$plog" "$OUT/client-$tag-" "$CLIENTS" >>"$RESULTS"
    echo "bench_rpc_paths: $(tail -1 "$RESULTS")" >&2
}

if [ "$REPORT_ONLY" != 1 ]; then
    START=$(date +%s)
    for rep in $(seq 1 "$REPS"); do
        for config in $CONFIGS; do
            run_once "$config" "$rep" 0 0
            run_once "$config" "$rep" "$COUNT" 0
        done
        if [ "$rep" = 1 ]; then
            run_once confirm 1 "$COUNT" 1
            run_once no-confirm 1 "$COUNT" 1
        fi
    done
    echo $(($(date +%s) - START)) >"$OUT/elapsed"
fi
ELAPSED=$(cat "$OUT/elapsed" 2>/dev/null || echo "?")

# ---- report ------------------------------------------------------------------------------------
CMD="scripts/bench_rpc_paths.sh${MARKDOWN:+ --markdown $MARKDOWN}"
[ "$COUNT" != 200 ] && CMD="RPC_BENCH_COUNT=$COUNT $CMD"
[ "$CLIENTS" != 8 ] && CMD="RPC_BENCH_CLIENTS=$CLIENTS $CMD"
[ "$REPS" != 3 ] && CMD="RPC_BENCH_REPS=$REPS $CMD"
[ "${RPC_BENCH_SKIP_GODOT:-0}" = 1 ] && CMD="RPC_BENCH_SKIP_GODOT=1 $CMD"
python3 "$ROOT/scripts/rpc_paths/report.py" "$RESULTS" "$COUNT" "$CLIENTS" "$REPS" "$CMD" "$ELAPSED" "$MARKDOWN" "$("$GODOT" --version 2>/dev/null | tail -1)"
