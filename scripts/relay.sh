#!/usr/bin/env bash
# Runs the dedicated relay server (default port 7777); extra arguments go to the server,
# for example: scripts/relay.sh --port 9000 --max-clients 64. Installs what the build needs.
set -euo pipefail
cd "$(dirname "$0")/.."
ENET_MP_SKIP_GODOT=1 ENET_MP_SKIP_BROWSER=1 bash scripts/install-deps.sh
exec cargo run --release --features relay-server --bin relay-server -- "$@"
