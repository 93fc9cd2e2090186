#!/usr/bin/env bash
# Benchmarks: builds everything in release mode, runs the criterion benchmarks, then drives three
# servers through the same load configurations with examples/load.rs, interleaved, BENCH_REPS
# times each (default 5; 3 for the long connect and overload tests):
#   ours     examples/relay_server.rs with its default settings (--compression none)
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
# Not part of CI. Needs python3 for the report; uses taskset when present to pin the server to
# CPU 0 and the load generator to CPU 1.
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
    cargo build --release --example relay_server --example minimal_relay --example load
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
        ours) echo "$PIN_SERVER $BIN/relay_server --port $2 --bind 127.0.0.1 --compression none --max-clients $max --stats-interval 0$off" ;;
        minimal) echo "$PIN_SERVER $BIN/minimal_relay --port $2 --bind 127.0.0.1 --compression none --max-clients $max$off" ;;
        godot) echo "env BENCH_PORT=$2 BENCH_MAX_CLIENTS=$max BENCH_SLEEP_USEC=0 BENCH_TIMEOUT=900 BENCH_RELAY=$godot_relay $PIN_SERVER $GODOT --path $ROOT/benches/godot -s res://bench_server.gd" ;;
    esac
}

port_free() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

SERVER_PID=""
PORT=$((21000 + ($$ % 400) * 20))

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap stop_server EXIT

start_server() { # kind relay|norelay max_clients -> sets SERVER_PID and PORT; 1 if not ready
    local kind=$1 variant=$2 max=$3 tries log
    for tries in 1 2 3; do
        PORT=$((PORT + 1))
        port_free "$PORT" || continue
        log=$RAW/server-$kind-$PORT.log
        # shellcheck disable=SC2046
        $(server_cmd "$kind" "$PORT" "$variant" "$max") >"$log" 2>&1 &
        SERVER_PID=$!
        for _ in $(seq 1 150); do
            if grep -qE "READY|relay server on" "$log" 2>/dev/null; then
                return 0
            fi
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        echo "bench: $kind did not start on port $PORT (see $log)" >&2
        stop_server
    done
    return 1
}

budget_left() { [ $(($(date +%s) - SCRIPT_START)) -lt "$BUDGET_S" ]; }

rotate() { # n words... -> the words rotated left by n
    local n=$1
    shift
    local words=("$@")
    local count=${#words[@]} i
    for ((i = 0; i < count; i++)); do
        printf '%s ' "${words[$(((i + n) % count))]}"
    done
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
    if [ -n "$(git status --porcelain -- src enet-wrapper examples/relay_server.rs 2>/dev/null)" ]; then
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

python3 - "$RESULTS" "$CONFIGS" "$TARGET_DIR/criterion" "$ALLOC_LOG" <<'PY'
import glob, json, os, statistics, sys

results_path, configs_path, criterion_dir, alloc_log = sys.argv[1:5]
env = os.environ
servers = env["BENCH_SERVERS"].split()
names = {"ours": "ours (relay_server)", "minimal": "minimal relay", "godot": "Godot 3.2"}

configs = []
for line in open(configs_path):
    line = line.rstrip("\n")
    if line:
        cid, desc, variant, max_clients, _reps, args = line.split("|", 5)
        configs.append((cid, desc, args, variant, max_clients))
desc_of = {c[0]: c[1] for c in configs}

runs = {}  # (config, server) -> list of result dicts (None for failed runs)
for line in open(results_path):
    r = json.loads(line)
    runs.setdefault((r["config"], r["bench_server"]), []).append(r["result"])


def values(cfg, server, key):
    out = []
    for r in runs.get((cfg, server), []):
        if r and r.get("ok") and r.get(key) is not None:
            out.append(float(r[key]))
    return out


def med(cfg, server, key):
    v = values(cfg, server, key)
    return statistics.median(v) if v else None


def med_mesh(cfg, server):
    """Median mesh time over every run that connected, a mesh that never completed counting as
    infinitely slow (so failures are not silently dropped)."""
    v = []
    for r in runs.get((cfg, server), []):
        if r and r.get("ok"):
            v.append(float("inf") if r.get("mesh_s") is None else float(r["mesh_s"]))
    return statistics.median(v) if v else None


def fmt_mesh(v):
    if v is None:
        return "n/a"
    return "not within 30 s" if v == float("inf") else f"{v:.2f}"


def failed(cfg, server):
    return sum(1 for r in runs.get((cfg, server), []) if not (r and r.get("ok")))


def fmt(v, digits=0, unit=""):
    if v is None:
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def paired(cfg, a, b, key="msgs_per_s"):
    """Median over rounds of value(a) / value(b), both measured in the same round: steadier on
    a shared machine than the ratio of two medians."""
    ra = {r: x for r, x in rep_values(cfg, a, key)}
    rb = {r: x for r, x in rep_values(cfg, b, key)}
    qs = [ra[r] / rb[r] for r in ra if r in rb and rb[r]]
    return statistics.median(qs) if qs else None


def rep_values(cfg, server, key):
    return [(i, float(r[key])) for i, r in enumerate(runs.get((cfg, server), []))
            if r and r.get("ok") and r.get(key) is not None]


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fratio(r):
    return "n/a" if r is None else f"{r:.2f}x"


throughput = [c[0] for c in configs if "--test throughput" in c[2]]
overload = [c[0] for c in configs if "--test overload" in c[2]]
md = []
w = md.append
w("# Benchmarks")
w("")
w("Generated by `scripts/bench.sh` from a run on " + env["BENCH_RUN_DATE"]
  + f" (commit {env['BENCH_GIT']}); do not edit by hand.")
w("")
w("Three servers, measured in the same run so that their ratios hold on a noisy shared machine:")
w("")
w("- **ours**: `examples/relay_server.rs` with its default settings (it busy-polls for "
  "`--busy-poll-us=1000` µs after traffic, then blocks in the socket up to 100 ms), "
  "`--compression none`.")
w("- **minimal**: `examples/minimal_relay.rs`, the ceiling: a relay written directly on "
  "`enet-wrapper` that receives, checks the header's source, reads the target and hands the same "
  "packet to `send_many` for each destination, busy-polling `service(0)`.")
w("- **Godot 3.2**: the real engine (`godot3-server`) running `benches/godot/bench_server.gd`: a "
  "`NetworkedMultiplayerENet` server with relay on, `poll()` once per frame and every packet taken "
  "with `get_packet()`, `low_processor_usage_mode_sleep_usec = 0`.")
w("")
w("No compression anywhere (Godot 3.2's default). The server runs pinned to CPU 0 and the load "
  "generator (`examples/load.rs`, one thread, all its clients in one process) to CPU 1. "
  f"Each configuration ran {env['BENCH_REPS_USED']} times per server (the connect and overload "
  "tests at most 3 times) in rounds: in each round the three servers run back to back, taking "
  "turns going first. Tables show medians; ratios are medians of the per-round ratios, which "
  "hold better than ratios of medians when the shared machine slows down for a while.")
if env.get("BENCH_QUICK_USED") == "1":
    w("")
    w("**Quick mode (BENCH_QUICK=1): a tenth of the packets and one repetition. Not a real "
      "measurement.**")
if env.get("BENCH_SKIPPED", "0") != "0":
    w("")
    w(f"**{env['BENCH_SKIPPED']} runs were skipped: the time budget (BENCH_BUDGET_S) ran out.**")
w("")

# ---- machine
w("## Machine")
w("")
w(f"- CPU: {env['BENCH_CPU_MODEL']}, `nproc` = {env['BENCH_NPROC']}")
w(f"- Kernel: {env['BENCH_KERNEL']}")
w(f"- Rust: {env['BENCH_RUSTC']}")
w(f"- Godot: {env['BENCH_GODOT_VERSION']}")
w(f"- Whole script: {int(env['BENCH_ELAPSED']) // 60} min {int(env['BENCH_ELAPSED']) % 60} s")
w("")

# ---- throughput
w("## Throughput: delivered messages per second")
w("")
w("Each sender sends its packets through the server to the clients its target names; a window "
  "per sender keeps at most about 4096 deliveries in flight in all (ENet 1.3 collapses when "
  "thousands of reliable packets are queued at once, see the overload table). A message is one "
  "packet delivered to one client; MB/s counts the 8-byte Godot header plus the payload.")
w("")
head = "| configuration | " + " | ".join(f"{names[s]} msg/s" for s in servers)
head += " | ours / minimal | " + ("ours / Godot | " if "godot" in servers else "")
head += "loss % (" + " / ".join(servers) + ") | out of order |"
w(head)
w("|" + "---|" * (head.count("|") - 1))
for cfg in throughput:
    m = {s: med(cfg, s, "msgs_per_s") for s in servers}
    row = f"| {desc_of[cfg]} | " + " | ".join(fmt(m[s]) for s in servers)
    row += f" | {fratio(paired(cfg, 'ours', 'minimal'))} | "
    if "godot" in servers:
        row += f"{fratio(paired(cfg, 'ours', 'godot'))} | "
    row += " / ".join(fmt(med(cfg, s, "loss_pct"), 2) for s in servers) + " | "
    row += " / ".join(fmt(med(cfg, s, "out_of_order")) for s in servers) + " |"
    w(row)
w("")
w("MB/s (medians): " + "; ".join(
    f"{cfg}: " + ", ".join(f"{s} {fmt(med(cfg, s, 'mb_per_s'), 1)}" for s in servers)
    for cfg in throughput) + ".")
w("")

# ---- latency
w("## Round trip through the server (ping-pong)")
w("")
w("Client A sends 32 bytes to client B's id, B answers A; one round trip in flight; the load "
  "generator busy-polls. Microseconds.")
w("")
w("| server | p50 | p90 | p99 | mean | p50 vs minimal |")
w("|---|---|---|---|---|---|")
p50_min = med("ping", "minimal", "rtt_p50_us")
for s in servers:
    p50 = med("ping", s, "rtt_p50_us")
    r = ratio(p50, p50_min)
    w(f"| {names[s]} | {fmt(p50, 1)} | {fmt(med('ping', s, 'rtt_p90_us'), 1)} | "
      f"{fmt(med('ping', s, 'rtt_p99_us'), 1)} | {fmt(med('ping', s, 'rtt_mean_us'), 1)} | "
      f"{'n/a' if r is None else f'{(r - 1) * 100:+.0f}%'} |")
w("")

# ---- connect
w("## 1000 clients connecting")
w("")
w("1000 client hosts start connecting at once (medians of up to 3 runs). *connected*: until "
  "the last one is connected. *mesh*: until every client got its 999 ADD_PEER messages "
  "(999,000 reliable system messages in all; a run where that did not finish within 30 s counts "
  "as slowest, *ADD_PEER received* says how far it got). *clients lost*: most clients that lost "
  "their connection (ENet timeouts) in one run. *client datagrams sent*: UDP datagrams from all "
  "clients, nearly all acknowledgements; *server socket drops*: those the kernel dropped because "
  "the server's UDP receive buffer (256 KiB, set by ENet) was full, which sets off ENet's "
  "retransmission backoff. "
  "Memory: the server's VmRSS growth from before the first connect to one second after the end, "
  "per client; ENet allocates its peer slots (max clients) up front, so they are in *before*. "
  "With relay on, the growth is mostly the high-water mark of the queued ADD_PEER messages, "
  "which the C allocator keeps; the relay-off rows measure the connections alone.")
w("")
w("| server | relay | connected (s) | mesh (s) | ADD_PEER received | clients lost | client datagrams sent | server socket drops | RSS before (kB) | RSS after (kB) | bytes per peer |")
w("|---|---|---|---|---|---|---|---|---|---|---|")
for cfg, relay in (("connect1000", "on"), ("connect1000_norelay", "off")):
    for s in servers:
        recv = med(cfg, s, "add_peer_received")
        exp = med(cfg, s, "add_peer_expected")
        share = "n/a" if relay == "off" or recv is None or not exp else f"{recv / exp * 100:.1f}%"
        lost = max(values(cfg, s, "disconnects"), default=None)
        w(f"| {names[s]} | {relay} | {fmt(med(cfg, s, 'connect_s'), 3)} | "
          f"{fmt_mesh(med_mesh(cfg, s)) if relay == 'on' else '-'} | {share} | {fmt(lost)} | "
          f"{fmt(med(cfg, s, 'client_datagrams_sent'))} | {fmt(med(cfg, s, 'server_socket_drops'))} | "
          f"{fmt(med(cfg, s, 'rss_before_kb'))} | {fmt(med(cfg, s, 'rss_after_kb'))} | "
          f"{fmt(med(cfg, s, 'rss_per_peer_bytes'))} |")
w("")

# ---- overload
w("## Overload (unpaced senders), reported separately")
w("")
w("Senders queue packets as fast as the load generator runs, without a window. Loss here is "
  "what did not arrive within the drain time (3 s without a delivery); for reliable packets that "
  "means ENet's retransmission backoff, not packets given up. What matters: the server must not "
  "disconnect anyone.")
w("")
w("| configuration | server | msg/s | delivered | expected | loss % | server socket drops | disconnects |")
w("|---|---|---|---|---|---|---|---|")
for cfg in overload:
    for s in servers:
        w(f"| {desc_of[cfg]} | {names[s]} | {fmt(med(cfg, s, 'msgs_per_s'))} | "
          f"{fmt(med(cfg, s, 'delivered'))} | {fmt(med(cfg, s, 'expected'))} | "
          f"{fmt(med(cfg, s, 'loss_pct'), 2)} | {fmt(med(cfg, s, 'server_socket_drops'))} | "
          f"{fmt(max(values(cfg, s, 'disconnects'), default=None))} |")
w("")

# ---- targets
w("## Targets")
w("")
ratios = [(cfg, paired(cfg, "ours", "minimal")) for cfg in throughput]
known = [r for r in ratios if r[1] is not None]
worst = min(known, key=lambda r: r[1]) if known else None
if worst:
    ok = all(r[1] >= 0.9 for r in known)
    w(f"- Throughput at least 0.9x the minimal relay in every configuration: "
      f"**{'holds' if ok else 'MISSED'}** (lowest ratio {worst[1]:.2f}x in {worst[0]}; all: "
      + ", ".join(f"{c} {r:.2f}x" for c, r in known) + "; the unpaced overload runs are not "
      "throughput measurements and are left out, see their table).")
p50_ours = med("ping", "ours", "rtt_p50_us")
r = ratio(p50_ours, p50_min)
if r is not None:
    w(f"- Round-trip p50 within 10% of the minimal relay's: "
      f"**{'holds' if r <= 1.10 else 'MISSED'}** (ours {p50_ours:.1f} µs with default settings, "
      f"minimal {p50_min:.1f} µs busy-polling: {(r - 1) * 100:+.0f}%).")
c = med("connect1000", "ours", "connect_s")
connect_runs = runs.get(("connect1000", "ours"), []) + runs.get(("connect1000_norelay", "ours"), [])
all_connected = bool(connect_runs) and all(r and r.get("connect_s") is not None for r in connect_runs)
lost = max(values("connect1000", "ours", "disconnects"), default=0)
if c is not None:
    w(f"- 1000 clients connect to one server: **{'holds' if all_connected else 'MISSED'}** "
      f"({c:.3f} s until every client was connected; until every ADD_PEER arrived: "
      f"{fmt_mesh(med_mesh('connect1000', 'ours'))} (median, seconds), in "
      f"{sum(1 for r in runs.get(('connect1000', 'ours'), []) if r and r.get('mesh_s') is not None)}"
      f" of {len(runs.get(('connect1000', 'ours'), []))} runs within 30 s, at most {lost:.0f} "
      f"clients lost to ENet timeouts during that storm; RSS growth per peer "
      f"{fmt(med('connect1000', 'ours', 'rss_per_peer_bytes'))} bytes with relay on, "
      f"{fmt(med('connect1000_norelay', 'ours', 'rss_per_peer_bytes'))} bytes with relay off).")
dis = sum(values(cfg, "ours", "disconnects") and max(values(cfg, "ours", "disconnects")) or 0
          for cfg in overload)
w(f"- Overload: our server disconnected **{int(dis)}** clients.")
alloc_lines = []
if os.path.exists(alloc_log):
    for line in open(alloc_log):
        if "Rust allocations" in line or line.startswith("test result") or "panicked" in line:
            alloc_lines.append(line.rstrip())
w("- No heap allocation per relayed packet in our code (`tests/relay_alloc.rs`, a counting "
  "global allocator around the server's poll and its application's get_packet):")
w("")
w("```text")
for line in alloc_lines or ["(no output: the test did not run)"]:
    w(line)
w("```")
w("")

# ---- notes
w("## Reading these numbers")
w("")
w("- In the throughput runs both processes use their whole core (the servers busy-poll; the "
  "load generator never sleeps), so a rate is what the server and a one-thread load generator "
  "reach together. Godot's lower rates are Godot's own; between ours and the minimal relay, a "
  "difference smaller than the run-to-run spread (see *Every run*) is noise.")
w("- Both relays run on `enet-wrapper`, whose `Host` looks at every incoming datagram in Rust "
  "(the intercept that counts what ENet rejects, `enet_wrapper::inspect`); the minimal relay is "
  "therefore the ceiling of ENet *through enet-wrapper*, and that inspection shows in both "
  "profiles below. The load generator's client hosts pay it too.")
w("- ENet scans every peer slot of a host on each send pass, twice per `enet_host_service` "
  "call, so a host's idle poll costs more the more slots it has: our server has max clients + "
  "64 spare slots, the minimal relay max clients exactly.")
w("")

# ---- perf
import re
raw_dir = os.path.dirname(results_path)
line_re = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)(\s+-\s+-)?\s*$")


def profile(server):
    path = os.path.join(raw_dir, f"perf-{server}.txt")
    if not os.path.exists(path):
        return None
    cats = {"Rust (src/, enet-wrapper, std)": 0.0, "ENet (C)": 0.0, "libc (malloc, free, syscall stubs)": 0.0,
            "kernel (UDP, syscalls)": 0.0, "other": 0.0}
    rust = []
    for line in open(path):
        m = line_re.match(line)
        if not m:
            continue
        pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
        if kind == "k" or "kernel" in dso:
            cats["kernel (UDP, syscalls)"] += pct
        elif dso.startswith("libc"):
            cats["libc (malloc, free, syscall stubs)"] += pct
        elif dso in ("relay_server", "minimal_relay"):
            if "::" in sym or sym.startswith("<") or sym.startswith("_ZN"):
                cats["Rust (src/, enet-wrapper, std)"] += pct
                rust.append((pct, sym))
            else:
                cats["ENet (C)"] += pct
        else:
            cats["other"] += pct
    return cats, rust


profiles = {s: profile(s) for s in ("ours", "minimal")}
if any(profiles.values()):
    w("## Where the server's CPU time goes (perf)")
    w("")
    w("`perf record -F 2999 -p <server>` while the load generator runs `" + env["BENCH_PROFILE_ARGS"]
      + "`; share of the server process's samples.")
    w("")
    cat_names = list(next(p for p in profiles.values() if p)[0].keys())
    w("| | " + " | ".join(names[s] for s in profiles if profiles[s]) + " |")
    w("|---|" + "---|" * sum(1 for s in profiles if profiles[s]))
    for c in cat_names:
        w(f"| {c} | " + " | ".join(f"{profiles[s][0][c]:.1f}%" for s in profiles if profiles[s]) + " |")
    w("")
    if profiles.get("ours"):
        w("Our Rust symbols in the relay server's profile (above 0.05%):")
        w("")
        w("| share | symbol |")
        w("|---|---|")
        for pct, sym in sorted(profiles["ours"][1], reverse=True):
            if pct >= 0.05:
                w(f"| {pct:.2f}% | `{sym[:110]}` |")
        w("")

connect_profile = os.path.join(raw_dir, "perf-connect-ours.txt")
if os.path.exists(connect_profile):
    top = []
    for line in open(connect_profile):
        m = line_re.match(line)
        if m:
            top.append((float(m.group(1)), m.group(2), m.group(4).strip()))
    top.sort(reverse=True)
    w("The same for our relay server while 1000 clients connect at once (`"
      + env["BENCH_CONNECT_PROFILE_ARGS"] + "`), the ten hottest symbols:")
    w("")
    w("| share | where | symbol |")
    w("|---|---|---|")
    for pct, dso, sym in top[:10]:
        w(f"| {pct:.1f}% | {dso} | `{sym[:100]}` |")
    w("")

# ---- criterion
w("## Criterion micro-benchmarks")
w("")
w("`cargo bench --bench protocol --bench relay --bench loopback -- --warm-up-time 1 "
  "--measurement-time 2` (median time per iteration).")
w("")
rows = []
for path in glob.glob(os.path.join(criterion_dir, "**", "new", "benchmark.json"), recursive=True):
    try:
        b = json.load(open(path))
        e = json.load(open(os.path.join(os.path.dirname(path), "estimates.json")))
    except (OSError, ValueError):
        continue
    rows.append((b.get("full_id", path), e["median"]["point_estimate"]))


def ns(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.2f} µs"
    return f"{v:.1f} ns"


def crit_key(row):
    parts = row[0].split("/")
    return [int(p) if p.isdigit() else p for p in parts]


if rows:
    w("| benchmark | median |")
    w("|---|---|")
    for name, v in sorted(rows, key=crit_key):
        w(f"| `{name}` | {ns(v)} |")
    w("")
    w("`relay/route/<target>/<n>`: `route()` plus walking the destinations over a `BTreeMap` of n "
      "client ids, as the server does per packet. `loopback/round_trip/*`: client `send` to the "
      "server, server `poll` until it has it and `send` back, client `poll` until it has it, over "
      "127.0.0.1; default (flush once per poll) and `flush_every_send(true)`.")
else:
    w("(criterion was skipped)")
w("")

# ---- all runs
w("## Every run")
w("")
w("In the order they ran. *load CPU*: the CPU time the load generator (a busy loop that never "
  "sleeps) got, over wall time: well below 100% means the shared machine took its core away "
  "during that run.")
w("")
w("| configuration | server | " + " | ".join(f"run {i}" for i in range(1, int(env['BENCH_REPS_USED']) + 1)) + " |")
w("|---|---|" + "---|" * int(env["BENCH_REPS_USED"]))
for cid, _, _, _, _ in configs:
    key = "rtt_p50_us" if cid == "ping" else ("connect_s" if cid.startswith("connect") else "msgs_per_s")
    unit = {"rtt_p50_us": " µs p50", "connect_s": " s", "msgs_per_s": " msg/s"}[key]
    for s in servers:
        cells = []
        for r in runs.get((cid, s), []):
            if r and r.get("ok") and r.get(key) is not None:
                cell = fmt(r[key], {"connect_s": 3, "rtt_p50_us": 1}.get(key, 0), unit)
                if cid == "connect1000":
                    cell += f", mesh {fmt_mesh(r.get('mesh_s') if r.get('mesh_s') is not None else float('inf'))}"
                    cell += f", {r.get('disconnects', 0)} lost"
                elif r.get("load_cpu_pct") is not None:
                    cell += f" (load CPU {r['load_cpu_pct']:.0f}%)"
                cells.append(cell)
            else:
                cells.append("failed" + (f": {r.get('error')}" if r and r.get("error") else ""))
        w(f"| {cid} | {s} | " + " | ".join(cells) + " |")
w("")

# ---- commands
w("## Commands")
w("")
w("Build: `cargo build --release --example relay_server --example minimal_relay --example load`. "
  "Servers (PORT changes per run; each run starts a fresh server; MAX_CLIENTS is 32, the default "
  "of our relay server and of Godot's `create_server`, except 1024 for the connect tests):")
w("")
w("```sh")
w(env["BENCH_CMD_OURS"])
w(env["BENCH_CMD_MINIMAL"])
w(env["BENCH_CMD_GODOT"])
w("```")
w("")
w("Load generator, one line per configuration:")
w("")
w("```sh")
for cid, desc, args, variant, max_clients in configs:
    w(f"# {cid}: {desc}; servers: MAX_CLIENTS={max_clients}"
      + (", relay off (--no-relay / BENCH_RELAY=0)" if variant == "norelay" else ""))
    w(f"{env['BENCH_PIN_LOAD']} target/release/examples/load --server 127.0.0.1:PORT "
      f"--server-pid SERVER_PID --label {cid} --time-limit 20 {args}".strip())
w("```")
w("")
w("The load generator (`examples/load.rs`; `load --help` lists the same):")
w("")
usage, inside = [], False
for line in open("examples/load.rs"):
    if not line.startswith("//!"):
        break
    text = line[4:].rstrip("\n") if line.startswith("//! ") else line[3:].rstrip("\n")
    if text.startswith("```"):
        if inside:
            break
        inside = True
        continue
    if inside:
        usage.append(text)
w("```text")
for line in usage:
    w(line)
w("```")
w("")
w("![delivered messages per second](BENCHMARKS.svg)")
w("")


def kept_section(path, begin="<!-- rpc-paths:begin -->", end="<!-- rpc-paths:end -->"):
    # The section scripts/bench_rpc_paths.sh writes between its markers: carried over unchanged.
    try:
        text = open(path).read()
    except OSError:
        return ""
    i = text.find(begin)
    j = text.find(end, i + len(begin)) if i >= 0 else -1
    return text[i:j + len(end)] + "\n" if j >= 0 else ""


kept = kept_section("BENCHMARKS.md")
open("BENCHMARKS.md", "w").write("\n".join(md) + ("\n" + kept if kept else ""))

# ---- the chart
chart_cfgs = throughput + overload
colors = {"ours": "#d9480f", "minimal": "#1c7ed6", "godot": "#478061"}
W, H = 960, 470
left, right, top, bottom = 80, 20, 50, 130
plot_w, plot_h = W - left - right, H - top - bottom
vmax = max([med(c, s, "msgs_per_s") or 0 for c in chart_cfgs for s in servers] + [1])
step = 10 ** (len(str(int(vmax))) - 1)
for m in (1, 2, 2.5, 5, 10):
    if vmax / (step * m) <= 6:
        step = step * m
        break
ymax = step * (int(vmax / step) + 1)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
       f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="16">Delivered messages per '
       f'second (median of the runs), per configuration and server</text>']
t = 0
while t <= ymax + 1e-9:
    y = top + plot_h - t / ymax * plot_h
    svg.append(f'<line x1="{left}" y1="{y:.1f}" x2="{W - right}" y2="{y:.1f}" stroke="#ddd"/>')
    label = f"{t / 1e6:g}M" if ymax >= 1e6 else f"{t / 1e3:g}k"
    svg.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    t += step
svg.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{W - right}" y2="{top + plot_h}" stroke="#333"/>')
group_w = plot_w / max(len(chart_cfgs), 1)
bar_w = group_w * 0.8 / max(len(servers), 1)
for i, cfg in enumerate(chart_cfgs):
    gx = left + i * group_w + group_w * 0.1
    for j, s in enumerate(servers):
        v = med(cfg, s, "msgs_per_s") or 0
        h = v / ymax * plot_h
        x = gx + j * bar_w
        y = top + plot_h - h
        svg.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                   f'fill="{colors[s]}"><title>{names[s]} {cfg}: {v:,.0f} msg/s</title></rect>')
        if v > 0:
            short = f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k"
            svg.append(f'<text x="{x + (bar_w - 2) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                       f'font-size="9">{short}</text>')
    cx = left + i * group_w + group_w / 2
    svg.append(f'<text x="{cx:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{cfg}</text>')
for j, s in enumerate(servers):
    lx = left + j * 200
    ly = H - 48
    svg.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colors[s]}"/>')
    svg.append(f'<text x="{lx + 18}" y="{ly}">{names[s]}</text>')
if overload and throughput:
    sx = left + len(throughput) * group_w
    svg.append(f'<line x1="{sx:.1f}" y1="{top}" x2="{sx:.1f}" y2="{top + plot_h + 30}" '
               f'stroke="#888" stroke-dasharray="4,4"/>')
    svg.append(f'<text x="{sx + 6:.1f}" y="{top + 12}" font-size="11" fill="#555">unpaced '
               f'overload (not a throughput test)</text>')
svg.append(f'<text x="{left}" y="{H - 20}" font-size="10">bcast = broadcast (target 0), excl = '
           f'all but one (target -n), peer = one peer each; rel/unrel = reliable/unreliable; '
           f'8/32 = clients.</text>')
svg.append(f'<text x="{left}" y="{H - 7}" font-size="10">32-byte payloads, no compression, '
           f'server on CPU 0, load generator on CPU 1. Generated by scripts/bench.sh.</text>')
svg.append("</svg>")
open("BENCHMARKS.svg", "w").write("\n".join(svg) + "\n")
print("wrote BENCHMARKS.md and BENCHMARKS.svg")
PY
