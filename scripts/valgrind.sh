#!/usr/bin/env bash
# Runs every test binary of the workspace (unit and integration tests) under valgrind memcheck
# and prints, per binary, its ERROR SUMMARY and its definitely-lost bytes. Exits non-zero if any
# binary has a memcheck error, a definite leak, or a failing test.
#
#   bash scripts/valgrind.sh                 # every test binary
#   bash scripts/valgrind.sh robust          # only binaries whose name contains a word
#
# Only definite leaks count: libtest itself leaves one 48-byte "possibly lost" block (a thread
# it does not join), which is not ours. The Godot interop tests are skipped
# (ENET_MP_SKIP_GODOT=1), tests run one at a time (--test-threads=1), and ENET_MP_VALGRIND=1
# tells the robustness tests to use small counts, long time limits and no RSS assertions
# (valgrind replaces the allocator). Logs go to target/valgrind/<binary>.log. Not part of CI:
# a full run takes tens of minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    sudo=()
    [ "$(id -u)" != 0 ] && sudo=(sudo)
    echo "valgrind.sh: installing valgrind" >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends valgrind
fi
ENET_MP_SKIP_GODOT=1 bash scripts/install-deps.sh

target_dir="${CARGO_TARGET_DIR:-target}"
logs="$target_dir/valgrind"
mkdir -p "$logs"

# Build the test binaries (release: the suite is long under valgrind; symbols are kept) and
# read their paths from cargo's JSON messages: one "executable" per test artifact.
json="$logs/build.json"
# tests/relay_server.rs runs the example binaries: build them fresh too.
cargo build --workspace --release --examples
cargo test --workspace --tests --release --no-run --message-format=json >"$json"
mapfile -t exes < <(grep '"profile":{[^}]*"test":true' "$json" |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | sort -u)
if [ ${#exes[@]} -eq 0 ]; then
    echo "valgrind.sh: no test binaries found in $json" >&2
    exit 1
fi

filter="${1:-}"
failed=0
printf '%-32s %-10s %-44s %s\n' "binary" "exit" "ERROR SUMMARY" "definitely lost"
for exe in "${exes[@]}"; do
    name="$(basename "$exe")"
    name="${name%-*}" # drop cargo's hash
    if [ -n "$filter" ] && [[ "$name" != *"$filter"* ]]; then
        continue
    fi
    log="$logs/$name.log"
    out="$logs/$name.out"
    set +e
    ENET_MP_SKIP_GODOT=1 ENET_MP_VALGRIND=1 RUST_BACKTRACE=0 \
        valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9 \
        --log-file="$log" "$exe" --test-threads=1 >"$out" 2>&1
    rc=$?
    set -e
    summary="$(grep -o 'ERROR SUMMARY: [0-9,]* errors from [0-9,]* contexts' "$log" | tail -1)"
    definite="$(grep -o 'definitely lost: [0-9,]* bytes in [0-9,]* blocks' "$log" | tail -1)"
    [ -z "$definite" ] && definite="definitely lost: 0 bytes in 0 blocks"
    tests="$(grep -E '^test result:' "$out" | tail -1)"
    printf '%-32s %-10s %-44s %s\n' "$name" "$rc" "${summary:-no summary}" "$definite"
    [ -n "$tests" ] && printf '%-32s %s\n' "" "$tests"
    if [ "$rc" != 0 ]; then
        failed=1
        case "$rc" in
        9) echo "    memcheck errors or definite leaks: see $log" ;;
        *) echo "    the tests failed under valgrind (exit $rc): see $out" ;;
        esac
    fi
done
exit "$failed"
