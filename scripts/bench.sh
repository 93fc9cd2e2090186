#!/usr/bin/env bash
# Benchmarks: builds everything in release mode, runs the criterion benchmarks, then drives three
# servers through the same load configurations with examples/load.rs, interleaved, BENCH_REPS
# times each (default 5; 3 for the long connect and overload tests):
#   ours     the relay-server binary with its default settings (--compression none)
#   minimal  examples/minimal_relay.rs: a busy-polling relay written directly on enet-wrapper
#   godot    the real Godot 3.2 engine (godot3-server) running benches/godot/bench_server.gd
# and writes BENCHMARKS.md (medians, ratios, machine, commands) and BENCHMARKS.svg (delivered
# messages per second per configuration and server). Raw results: target/bench/results.jsonl.
#
# Usage: scripts/bench.sh
# Environment: BENCH_REPORT_ONLY=1 (run nothing: rewrite the report from the last run's raw
# results in target/bench), BENCH_REPS (5), BENCH_QUICK=1 (a tenth of the packets, one repetition; for trying
# the script out: the report says so), BENCH_BUDGET_S (1200: runs left when it is spent are
# skipped and reported), BENCH_SKIP_GODOT=1, BENCH_SKIP_CRITERION=1, GODOT_BIN (godot3-server).
# Not part of CI. Needs python3 for the report (scripts/bench_report.py); uses taskset when
# present to pin the server to CPU 0 and the load generator to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

REPS=${BENCH_REPS:-5}
QUICK=${BENCH_QUICK:-0}
BUDGET_S=${BENCH_BUDGET_S:-1200}
GODOT=${GODOT_BIN:-godot3-server}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET_DIR/release/examples
RAW=$TARGET_DIR/bench
RESULTS=$RAW/results.jsonl
SCRIPT_START=$(date +%s)
[ "$QUICK" = 1 ] && REPS=1
RUN=1
[ "${BENCH_REPORT_ONLY:-0}" = 1 ] && RUN=0

mkdir -p "$RAW"
if [ "$RUN" = 1 ]; then
    : >"$RESULTS"
    rm -f "$RAW"/server-*.log "$RAW"/run-info
    echo "bench: building (release)" >&2
    cargo build --release --features relay-server --bin relay-server --example minimal_relay --example load
elif [ ! -s "$RESULTS" ] || [ ! -f "$RAW/run-info" ]; then
    echo "bench: BENCH_REPORT_ONLY=1 but there are no results in $RAW; run scripts/bench.sh first" >&2
    exit 1
fi

if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER="taskset -c 0"
    PIN_LOAD="taskset -c 1"
else
    PIN_SERVER=""
    PIN_LOAD=""
fi

SERVERS="ours minimal godot"
if [ "${BENCH_SKIP_GODOT:-0}" = 1 ] || ! command -v "$GODOT" >/dev/null 2>&1; then
    echo "bench: Godot ($GODOT) skipped or not found; only ours and minimal run" >&2
    SERVERS="ours minimal"
fi

# ---- criterion ----------------------------------------------------------------------------
CRITERION_LOG=$RAW/criterion.log
if [ "$RUN" = 1 ] && [ "${BENCH_SKIP_CRITERION:-0}" != 1 ]; then
    : >"$CRITERION_LOG"
    echo "bench: criterion benchmarks" >&2
    rm -rf "$TARGET_DIR/criterion"
    timeout 600 cargo bench --bench protocol --bench relay --bench loopback -- \
        --warm-up-time 1 --measurement-time 2 --noplot 2>&1 | tee "$CRITERION_LOG" >&2 || true
fi

# ---- the allocation count -----------------------------------------------------------------
ALLOC_LOG=$RAW/relay_alloc.log
if [ "$RUN" = 1 ]; then
    echo "bench: allocation count (tests/relay_alloc.rs)" >&2
    timeout 600 cargo test --release --test relay_alloc -- --nocapture >"$ALLOC_LOG" 2>&1 || true
fi

# ---- load configurations ------------------------------------------------------------------
# id | description | server relay on or off | server max clients (32 is the default of our relay
# server and of Godot's create_server) | repetitions (all = BENCH_REPS, or at most this many) |
# load arguments (counts are divided by 10 with BENCH_QUICK=1)
CONFIGS=$RAW/configs.txt
cat >"$CONFIGS" <<'EOF'
bcast8_rel|8 clients, 1 sender, 32 B reliable broadcast|relay|32|all|--test throughput --clients 8 --senders 1 --count 1000000 --size 32 --mode reliable --target broadcast
bcast8_unrel|8 clients, 1 sender, 32 B unreliable broadcast|relay|32|all|--test throughput --clients 8 --senders 1 --count 1000000 --size 32 --mode unreliable --target broadcast
bcast32_rel|32 clients, 4 senders, 32 B reliable broadcast|relay|32|all|--test throughput --clients 32 --senders 4 --count 60000 --size 32 --mode reliable --target broadcast
excl32_rel|32 clients, 4 senders, 32 B reliable, exclusion target (-next id)|relay|32|all|--test throughput --clients 32 --senders 4 --count 60000 --size 32 --mode reliable --target exclude
peer32_rel|32 clients, 16 senders, 32 B reliable, one peer each (next id)|relay|32|all|--test throughput --clients 32 --senders 16 --count 200000 --size 32 --mode reliable --target peer
ping|2 clients, 32 B reliable ping-pong through the server (20000 round trips)|relay|32|all|--test ping --clients 2 --senders 1 --count 20000 --size 32 --mode reliable
connect1000|1000 clients connect at once (and receive every ADD_PEER)|relay|1024|3|--test connect --clients 1000 --connect-timeout 30
connect1000_norelay|1000 clients connect at once, server relay off (no ADD_PEER)|norelay|1024|3|--test connect --clients 1000 --connect-timeout 30 --no-mesh-wait
overload_unrel|overload: 8 clients, 4 senders, unpaced 32 B unreliable broadcast|relay|32|3|--test overload --clients 8 --senders 4 --count 50000 --burst 64 --size 32 --mode unreliable --target broadcast --drain 3
overload_rel|overload: 8 clients, 1 sender, unpaced 32 B reliable broadcast|relay|32|3|--test overload --clients 8 --senders 1 --count 100000 --burst 64 --size 32 --mode reliable --target broadcast --drain 3
EOF

scale_args() {
    # Divides every --count by 10 in quick mode.
    if [ "$QUICK" = 1 ]; then
        echo "$1" | awk '{for (i = 1; i <= NF; i++) { if ($(i-1) == "--count") $i = int($i / 10); } print}'
    else
        echo "$1"
    fi
}

server_cmd() { # kind port relay|norelay max_clients -> the command line (report and running)
    local off="" godot_relay=1 max=${4:-32}
    if [ "${3:-relay}" = norelay ]; then off=" --no-relay"; godot_relay=0; fi
    case $1 in
        ours) echo "$PIN_SERVER $TARGET_DIR/release/relay-server --port $2 --bind 127.0.0.1 --compression none --max-clients $max --stats-interval 0$off" ;;
        minimal) echo "$PIN_SERVER $BIN/minimal_relay --port $2 --bind 127.0.0.1 --compression none --max-clients $max$off" ;;
        godot) echo "env BENCH_PORT=$2 BENCH_MAX_CLIENTS=$max BENCH_SLEEP_USEC=0 BENCH_TIMEOUT=900 BENCH_RELAY=$godot_relay $PIN_SERVER $GODOT --path $ROOT/benches/godot -s res://bench_server.gd" ;;
    esac
}

# shellcheck source=scripts/bench_lib.sh
. "$ROOT/scripts/bench_lib.sh"
PORT=$((21000 + ($$ % 400) * 20))
trap stop_server EXIT

start_server() { # kind relay|norelay max_clients -> sets SERVER_PID and PORT; 1 if not ready
    local kind=$1 variant=$2 max=$3 tries log
    for tries in 1 2 3; do
        PORT=$((PORT + 1))
        ports_free "$PORT" || continue
        log=$RAW/server-$kind-$PORT.log
        # shellcheck disable=SC2046
        launch_server "$log" $(server_cmd "$kind" "$PORT" "$variant" "$max") && return 0
        echo "bench: $kind did not start on port $PORT (see $log)" >&2
    done
    return 1
}

SKIPPED=0
mapfile -t CONFIG_LINES <"$CONFIGS"
[ "$RUN" = 1 ] || CONFIG_LINES=()
for config_line in "${CONFIG_LINES[@]}"; do
    IFS='|' read -r cfg desc variant max reps args <<<"$config_line"
    args=$(scale_args "$args")
    [ "$reps" = all ] && reps=$REPS
    [ "$reps" -gt "$REPS" ] && reps=$REPS
    for rep in $(seq 1 "$reps"); do
        # The servers take turns going first, so that none always runs right after another.
        # shellcheck disable=SC2086
        for server in $(rotate $((rep - 1)) $SERVERS); do
            if ! budget_left; then
                SKIPPED=$((SKIPPED + 1))
                continue
            fi
            line=""
            if start_server "$server" "$variant" "$max"; then
                # shellcheck disable=SC2086
                line=$(timeout 180 $PIN_LOAD "$BIN/load" --server "127.0.0.1:$PORT" \
                    --server-pid "$SERVER_PID" --label "$cfg" --time-limit 20 $args \
                    </dev/null 2>>"$RAW/load.log" | tail -n 1) || true
                stop_server
            fi
            [ -n "$line" ] || line=null
            printf '{"bench_server":"%s","config":"%s","rep":%d,"result":%s}\n' \
                "$server" "$cfg" "$rep" "$line" >>"$RESULTS"
            echo "bench: $cfg rep $rep $server: $line" >&2
        done
    done
done

# ---- where the server's time goes (perf) --------------------------------------------------
PROFILE_ARGS="--test throughput --clients 32 --senders 4 --count 60000 --size 32 --mode reliable --target broadcast"
CONNECT_PROFILE_ARGS="--test connect --clients 1000 --connect-timeout 30"
if [ "$QUICK" = 1 ]; then
    PROFILE_ARGS=$(scale_args "$PROFILE_ARGS")
fi
[ "$RUN" = 1 ] && rm -f "$RAW"/perf-*.txt "$RAW"/perf-*.data

profile() { # name server max_clients load-args...: perf record of the server during one load run
    local name=$1 server=$2 max=$3
    shift 3
    echo "bench: perf profile $name of $server" >&2
    start_server "$server" relay "$max" || return 0
    perf record -F 2999 -p "$SERVER_PID" -o "$RAW/perf-$name.data" >/dev/null 2>&1 &
    PERF_PID=$!
    sleep 0.5
    timeout 120 $PIN_LOAD "$BIN/load" --server "127.0.0.1:$PORT" --label "profile-$name" \
        --time-limit 20 "$@" </dev/null >"$RAW/perf-$name.load.json" 2>>"$RAW/load.log" || true
    kill -INT "$PERF_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$PERF_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    stop_server
    timeout 120 perf report -i "$RAW/perf-$name.data" --no-children --sort dso,symbol \
        --stdio -g none >"$RAW/perf-$name.txt" 2>/dev/null || true
}

if [ "$RUN" = 1 ] && command -v perf >/dev/null 2>&1 && budget_left; then
    # shellcheck disable=SC2086
    profile ours ours 32 $PROFILE_ARGS
    # shellcheck disable=SC2086
    profile minimal minimal 32 $PROFILE_ARGS
    if [ "$QUICK" != 1 ] && budget_left; then
        # shellcheck disable=SC2086
        profile connect-ours ours 1024 $CONNECT_PROFILE_ARGS
    fi
fi
export BENCH_PROFILE_ARGS="$PROFILE_ARGS" BENCH_CONNECT_PROFILE_ARGS="$CONNECT_PROFILE_ARGS"

# ---- the report ---------------------------------------------------------------------------
echo "bench: writing BENCHMARKS.md and BENCHMARKS.svg" >&2
if [ "$RUN" = 1 ]; then
    # What the report needs to know about this run, kept for BENCH_REPORT_ONLY=1.
    GIT_REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    # The code under test: uncommitted changes there make the commit id meaningless.
    if [ -n "$(git status --porcelain -- src enet-wrapper 2>/dev/null)" ]; then
        GIT_REV="$GIT_REV (with uncommitted changes in src/, enet-wrapper/ or the relay server)"
    fi
    {
        echo "REPS=$REPS"
        echo "QUICK=$QUICK"
        echo "SKIPPED=$SKIPPED"
        echo "SERVERS=\"$SERVERS\""
        echo "ELAPSED=$(($(date +%s) - SCRIPT_START))"
        echo "GIT_REV=\"$GIT_REV\""
        echo "RUN_DATE=\"$(date -u '+%Y-%m-%d %H:%M UTC')\""
    } >"$RAW/run-info"
fi
# shellcheck disable=SC1091
. "$RAW/run-info"
export BENCH_REPS_USED=$REPS BENCH_QUICK_USED=$QUICK BENCH_SKIPPED=$SKIPPED BENCH_RUN_DATE="$RUN_DATE"
export BENCH_SERVERS="$SERVERS" BENCH_ELAPSED=$ELAPSED
export BENCH_CMD_OURS BENCH_CMD_MINIMAL BENCH_CMD_GODOT BENCH_PIN_LOAD="$PIN_LOAD"
BENCH_CMD_OURS=$(server_cmd ours PORT relay MAX_CLIENTS | sed "s#$ROOT/##g")
BENCH_CMD_MINIMAL=$(server_cmd minimal PORT relay MAX_CLIENTS | sed "s#$ROOT/##g")
BENCH_CMD_GODOT=$(server_cmd godot PORT relay MAX_CLIENTS | sed "s#$ROOT/##g")
export BENCH_CPU_MODEL BENCH_NPROC BENCH_KERNEL BENCH_RUSTC BENCH_GODOT_VERSION BENCH_GIT
BENCH_CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
BENCH_NPROC=$(nproc)
BENCH_KERNEL=$(uname -sr)
BENCH_RUSTC=$(rustc --version)
BENCH_GODOT_VERSION=$( (timeout 20 "$GODOT" --version 2>/dev/null || true) | head -n 1)
[ -n "$BENCH_GODOT_VERSION" ] || BENCH_GODOT_VERSION=unknown
BENCH_GIT=$GIT_REV

# The report generator (tested by scripts/test_bench_report.py); it reads the BENCH_* variables
# above and writes BENCHMARKS.md and BENCHMARKS.svg here, at the root.
python3 "$ROOT/scripts/bench_report.py" "$RESULTS" "$CONFIGS" "$TARGET_DIR/criterion" "$ALLOC_LOG"
