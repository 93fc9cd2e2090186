#!/usr/bin/env bash
# Benchmarks: builds everything in release mode, runs the criterion benchmarks, then drives three
# servers through the same load configurations with examples/load.rs, interleaved, BENCH_REPS
# times each (default 3; the join storms 2 or 3 times, the unpaced overload 9 times):
#   ours     the relay-server binary with its default settings (--compression none)
#   minimal  examples/minimal_relay.rs: a busy-polling relay written directly on enet-wrapper
#   godot    the real Godot 3.2 engine (godot3-server) running benches/godot/bench_server.gd
# and writes BENCHMARKS.md (medians, ratios, machine, commands) and BENCHMARKS.svg (delivered
# messages per second per configuration and server). Raw results: target/bench/results.jsonl.
#
# Parts, in the order they run: criterion, alloc (tests/relay_alloc.rs), throughput (and the
# ping), storm (join storms of 100 to 4095 clients, then everyone leaves), idle (connected idle
# clients: server CPU, then a ping), recovery (a lost reliable packet: time to the resend),
# overload (unpaced, 9 runs), perf.
#
# Usage: scripts/bench.sh
# Environment: BENCH_REPORT_ONLY=1 (run nothing: rewrite the report from the last run's raw
# results in target/bench), BENCH_ONLY=part,part... (run only these parts, or configuration ids
# such as storm1000; the other results of the last run are kept for the report), BENCH_STORM=0
# (skip the join storms;
# BENCH_STORM=1 with BENCH_ONLY unset runs everything), BENCH_REPS (3), BENCH_QUICK=1 (a tenth
# of the packets, one repetition; for trying the script out: the report says so),
# BENCH_BUDGET_S (1800: runs left when it is spent are skipped and reported), BENCH_SKIP_GODOT=1,
# BENCH_SKIP_CRITERION=1, GODOT_BIN (godot3-server).
# Not part of CI. Needs python3 for the report (scripts/bench_report.py); uses taskset when
# present to pin the server to CPU 0 and the load generator to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

REPS=${BENCH_REPS:-3}
QUICK=${BENCH_QUICK:-0}
BUDGET_S=${BENCH_BUDGET_S:-1800}
ONLY=${BENCH_ONLY:-}
ALL_PARTS="criterion alloc throughput storm idle recovery overload perf"
# part [config id] -> 0 if this run measures it (BENCH_ONLY names parts or configuration ids)
wanted() {
    if [ "$1" = storm ] && [ "${BENCH_STORM:-1}" = 0 ]; then return 1; fi
    [ -z "$ONLY" ] && return 0
    case ",$ONLY," in *",$1,"*) return 0 ;; esac
    if [ -n "${2:-}" ]; then
        case ",$ONLY," in *",$2,"*) return 0 ;; esac
    fi
    return 1
}
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
    if [ -z "$ONLY" ] || [ ! -f "$RESULTS" ]; then
        : >"$RESULTS"
    fi
    # A partial run (BENCH_ONLY) keeps the whole script's time of the last full run.
    FULL_ELAPSED=""
    if [ -n "$ONLY" ] && [ -f "$RAW/run-info" ]; then
        FULL_ELAPSED=$(sed -n 's/^FULL_ELAPSED=//p' "$RAW/run-info")
    fi
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
if [ "$RUN" = 1 ] && [ "${BENCH_SKIP_CRITERION:-0}" != 1 ] && wanted criterion; then
    : >"$CRITERION_LOG"
    echo "bench: criterion benchmarks" >&2
    rm -rf "$TARGET_DIR/criterion"
    timeout 600 cargo bench --bench protocol --bench relay --bench loopback -- \
        --warm-up-time 1 --measurement-time 2 --noplot 2>&1 | tee "$CRITERION_LOG" >&2 || true
fi

# ---- the allocation count -----------------------------------------------------------------
ALLOC_LOG=$RAW/relay_alloc.log
if [ "$RUN" = 1 ] && wanted alloc; then
    echo "bench: allocation count (tests/relay_alloc.rs)" >&2
    timeout 600 cargo test --release --test relay_alloc -- --nocapture >"$ALLOC_LOG" 2>&1 || true
fi

# ---- load configurations ------------------------------------------------------------------
# id | description | server relay on or off | server max clients (32 is the default of our relay
# server and of Godot's create_server) | repetitions (all = BENCH_REPS, or this many) | servers
# (all, or the kinds that run it: ours, ours_busy = ours always busy-polling, minimal, godot) |
# load arguments (counts are divided by 10 with BENCH_QUICK=1). The id's prefix names its part.
CONFIGS=$RAW/configs.txt
cat >"$CONFIGS" <<'EOF'
bcast8_rel|8 clients, 1 sender, 32 B reliable broadcast|relay|32|all|all|--test throughput --clients 8 --senders 1 --count 1000000 --size 32 --mode reliable --target broadcast
bcast8_unrel|8 clients, 1 sender, 32 B unreliable broadcast|relay|32|all|all|--test throughput --clients 8 --senders 1 --count 1000000 --size 32 --mode unreliable --target broadcast
bcast32_rel|32 clients, 4 senders, 32 B reliable broadcast|relay|32|all|all|--test throughput --clients 32 --senders 4 --count 60000 --size 32 --mode reliable --target broadcast
excl32_rel|32 clients, 4 senders, 32 B reliable, exclusion target (-next id)|relay|32|all|all|--test throughput --clients 32 --senders 4 --count 60000 --size 32 --mode reliable --target exclude
peer32_rel|32 clients, 16 senders, 32 B reliable, one peer each (next id)|relay|32|all|all|--test throughput --clients 32 --senders 16 --count 200000 --size 32 --mode reliable --target peer
ping|2 clients, 32 B reliable ping-pong through the server (20000 round trips)|relay|32|all|all|--test ping --clients 2 --senders 1 --count 20000 --size 32 --mode reliable
storm100|100 clients connect at once, then all leave|relay|128|2|all|--test connect --clients 100 --connect-timeout 30 --leave --after-leave 3 --leave-timeout 10
storm500|500 clients connect at once, then all leave|relay|512|2|all|--test connect --clients 500 --connect-timeout 30 --leave --after-leave 3 --leave-timeout 10
storm1000|1000 clients connect at once, then all leave|relay|1024|3|all|--test connect --clients 1000 --connect-timeout 30 --leave --after-leave 3 --leave-timeout 30
storm2000|2000 clients connect at once, then all leave|relay|2048|1|all|--test connect --clients 2000 --connect-timeout 30 --leave --after-leave 3 --leave-timeout 10
storm4095|4095 clients connect at once, then all leave|relay|4095|2|all|--test connect --clients 4095 --connect-timeout 60 --leave --after-leave 3 --leave-timeout 10
idle100|100 connected idle clients: server CPU over 10 s, then a 2-client ping (5000 round trips)|relay|128|2|ours|--test idle --clients 100 --senders 1 --count 5000 --size 32 --idle-secs 10 --connect-timeout 30
idle1000|1000 connected idle clients: server CPU over 10 s, then a 2-client ping (5000 round trips)|relay|1024|2|ours|--test idle --clients 1000 --senders 1 --count 5000 --size 32 --idle-secs 10 --connect-timeout 30
idle4095|4095 connected idle clients (joined in waves of 512): server CPU over 10 s, then a 2-client ping (5000 round trips)|relay|4095|1|ours|--test idle --clients 4095 --senders 1 --count 5000 --size 32 --idle-secs 10 --connect-timeout 60 --connect-batch 512
recovery|2 clients; a reliable packet relayed to a quiet client, its first datagram dropped there: time to the resend (20 per run)|relay|32|3|ours ours_busy minimal godot|--test recovery --clients 2 --count 20 --warmup 200 --size 32
overload_unrel|overload: 8 clients, 4 senders, unpaced 32 B unreliable broadcast|relay|32|9|all|--test overload --clients 8 --senders 4 --count 50000 --burst 64 --size 32 --mode unreliable --target broadcast --drain 3
overload_rel|overload: 8 clients, 1 sender, unpaced 32 B reliable broadcast|relay|32|9|all|--test overload --clients 8 --senders 1 --count 100000 --burst 64 --size 32 --mode reliable --target broadcast --drain 3
EOF

part_of() { # config id -> its part
    case $1 in
        storm*) echo storm ;;
        idle*) echo idle ;;
        recovery*) echo recovery ;;
        overload*) echo overload ;;
        *) echo throughput ;;
    esac
}

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
        ours_busy) echo "$PIN_SERVER $TARGET_DIR/release/relay-server --port $2 --bind 127.0.0.1 --compression none --max-clients $max --stats-interval 0 --busy-poll-us 3600000000$off" ;;
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

# Each client host of the load generator is a socket: the 4095-client storm needs more than the
# usual 1024 open files.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 8192 ]; then
    ulimit -n 8192 2>/dev/null || echo "bench: cannot raise the open-file limit to 8192 (it is $(ulimit -n)); the large storms will fail" >&2
fi

SKIPPED=0
mapfile -t CONFIG_LINES <"$CONFIGS"
for name in ${ONLY//,/ }; do
    known=0
    case " $ALL_PARTS " in *" $name "*) known=1 ;; esac
    for config_line in "${CONFIG_LINES[@]}"; do
        [ "${config_line%%|*}" = "$name" ] && known=1
    done
    if [ "$known" = 0 ]; then
        echo "bench: BENCH_ONLY names '$name', neither a part ($ALL_PARTS) nor a configuration" >&2
        exit 2
    fi
done
[ "$RUN" = 1 ] || CONFIG_LINES=()
if [ "$RUN" = 1 ] && [ -n "$ONLY" ]; then
    # The parts measured again replace their results of the last run; the others stay.
    rerun=""
    for config_line in "${CONFIG_LINES[@]}"; do
        cfg=${config_line%%|*}
        if wanted "$(part_of "$cfg")" "$cfg"; then rerun="$rerun $cfg"; fi
    done
    # shellcheck disable=SC2086
    python3 - "$RESULTS" $rerun <<'PY'
import json, sys
path, rerun = sys.argv[1], set(sys.argv[2:])
with open(path, encoding="utf-8") as f:
    kept = [line for line in f if line.strip() and json.loads(line)["config"] not in rerun]
with open(path, "w", encoding="utf-8") as f:
    f.writelines(kept)
PY
fi
for config_line in "${CONFIG_LINES[@]}"; do
    IFS='|' read -r cfg desc variant max reps kinds args <<<"$config_line"
    wanted "$(part_of "$cfg")" "$cfg" || continue
    args=$(scale_args "$args")
    [ "$reps" = all ] && reps=$REPS
    [ "$QUICK" = 1 ] && reps=1
    servers=""
    for server in $SERVERS ours_busy; do
        if [ "$server" = ours_busy ] && [[ " $SERVERS " != *" ours "* ]]; then continue; fi
        if [ "$kinds" = all ]; then
            [ "$server" = ours_busy ] || servers="$servers $server"
        elif [[ " $kinds " == *" $server "* ]]; then
            servers="$servers $server"
        fi
    done
    for rep in $(seq 1 "$reps"); do
        # The servers take turns going first, so that none always runs right after another.
        # shellcheck disable=SC2086
        for server in $(rotate $((rep - 1)) $servers); do
            if ! budget_left; then
                SKIPPED=$((SKIPPED + 1))
                continue
            fi
            line=""
            if start_server "$server" "$variant" "$max"; then
                # shellcheck disable=SC2086
                line=$(timeout 300 $PIN_LOAD "$BIN/load" --server "127.0.0.1:$PORT" \
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
if [ "$RUN" = 1 ] && wanted perf; then rm -f "$RAW"/perf-*.txt "$RAW"/perf-*.data; fi

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

if [ "$RUN" = 1 ] && wanted perf && command -v perf >/dev/null 2>&1 && budget_left; then
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
        echo "ONLY=\"$ONLY\""
        echo "QUICK=$QUICK"
        echo "SKIPPED=$SKIPPED"
        echo "SERVERS=\"$SERVERS\""
        echo "ELAPSED=$(($(date +%s) - SCRIPT_START))"
        echo "FULL_ELAPSED=${FULL_ELAPSED:-$(($(date +%s) - SCRIPT_START))}"
        echo "GIT_REV=\"$GIT_REV\""
        echo "RUN_DATE=\"$(date -u '+%Y-%m-%d %H:%M UTC')\""
    } >"$RAW/run-info"
fi
# shellcheck disable=SC1091
. "$RAW/run-info"
export BENCH_REPS_USED=$REPS BENCH_QUICK_USED=$QUICK BENCH_SKIPPED=$SKIPPED BENCH_RUN_DATE="$RUN_DATE"
export BENCH_SERVERS="$SERVERS" BENCH_ELAPSED=$ELAPSED BENCH_FULL_ELAPSED=${FULL_ELAPSED:-$ELAPSED}
export BENCH_CMD_OURS BENCH_CMD_OURS_BUSY BENCH_CMD_MINIMAL BENCH_CMD_GODOT BENCH_PIN_LOAD="$PIN_LOAD"
export BENCH_ONLY_USED="${ONLY:-}"
BENCH_CMD_OURS=$(server_cmd ours PORT relay MAX_CLIENTS | sed "s#$ROOT/##g")
BENCH_CMD_OURS_BUSY=$(server_cmd ours_busy PORT relay MAX_CLIENTS | sed "s#$ROOT/##g")
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
