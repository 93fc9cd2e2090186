# Shell functions shared by scripts/bench.sh and scripts/bench_ws.sh (sourced, not run).
# The caller sets RAW (its output folder), SCRIPT_START and BUDGET_S, and uses SERVER_PID for the
# one server it runs at a time.

# ports_free port... -> 0 if every one is free for TCP and UDP on 127.0.0.1
ports_free() {
    python3 - "$@" <<'PY'
import socket, sys
for p in sys.argv[1:]:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", int(p)))
        except OSError:
            sys.exit(1)
        finally:
            s.close()
PY
}

SERVER_PID=""

# stop_server: TERM the server started last, KILL it after 5 s, reap it.
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

# launch_server log command... -> runs the command in the background as SERVER_PID and waits up
# to 15 s for its ready line in log; 1 (server stopped) if it never came.
launch_server() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 150); do
        if grep -qE "READY|relay server on" "$log" 2>/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    stop_server
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
