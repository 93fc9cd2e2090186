#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian/Ubuntu machine that has only the
# Rust toolchain, gcc and git: cmake and libclang (enet-sys builds ENet with cmake and generates
# its bindings with libclang), protoc for the Agones SDK, python3 for the benchmark report's tests, the headless Godot
# 3.2 engine for the interop tests, and Chromium for the browser test (tests/browser.rs).
# Idempotent: installs nothing that is already there. Set ENET_MP_SKIP_GODOT=1 to skip Godot,
# ENET_MP_SKIP_BROWSER=1 to skip Chromium.
set -euo pipefail

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

need=()
# libclang-dev, not any libclang*: the base image's libclang-cpp does not serve bindgen.
installed cmake || command -v cmake >/dev/null 2>&1 || need+=(cmake)
installed libclang-dev || need+=(libclang-dev)
# protoc and the protobuf headers: the Agones SDK (feature agones) and dummy-agones, the
# local SDK server its test installs, compile .proto files when they build.
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
installed libprotobuf-dev || need+=(libprotobuf-dev)
# python3: the benchmark report generator's tests (CI) and scripts/bench.sh.
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ "${ENET_MP_SKIP_GODOT:-0}" != 1 ] && ! command -v godot3-server >/dev/null 2>&1; then
    need+=(godot3-server)
fi
if [ "${ENET_MP_SKIP_BROWSER:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then
    need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
