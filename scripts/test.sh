#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs every test of the workspace
# (unit, integration over loopback UDP, interop against the real Godot 3.2 engine, the browser
# client in headless Chromium, doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ "${ENET_MP_SKIP_GODOT:-0}" = 1 ]; then
    echo "test.sh: ENET_MP_SKIP_GODOT=1 -- the Godot interop tests are SKIPPED in this run" >&2
fi
if [ "${ENET_MP_SKIP_BROWSER:-0}" = 1 ]; then
    echo "test.sh: ENET_MP_SKIP_BROWSER=1 -- the browser test (headless Chromium) is SKIPPED in this run" >&2
fi
# The join-storm tests open hundreds of client sockets in one process: raise the soft limit of
# open files towards 8192 where it is lower (the hard limit caps it).
soft=$(ulimit -Sn)
if [ "$soft" != unlimited ] && [ "$soft" -lt 8192 ]; then
    hard=$(ulimit -Hn)
    if [ "$hard" = unlimited ] || [ "$hard" -ge 8192 ]; then ulimit -n 8192; else ulimit -n "$hard"; fi
fi
# The relay-server binary and its process tests need the feature of the same name; its Agones
# tests the agones feature (which includes it).
cargo test --workspace --all-targets --release --features agones "$@"
cargo test --workspace --doc --release --features agones
