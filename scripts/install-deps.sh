#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian/Ubuntu machine that has only the
# Rust toolchain, gcc and git: cmake and libclang (enet-sys builds ENet with cmake and generates
# its bindings with libclang) and the headless Godot 3.2 engine for the interop tests.
# Idempotent: installs nothing that is already there. Set ENET_MP_SKIP_GODOT=1 to skip Godot.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
if ! compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null &&
    ! compgen -G "/usr/lib/*/libclang*.so*" >/dev/null; then
    need+=(libclang-dev)
fi
if [ "${ENET_MP_SKIP_GODOT:-0}" != 1 ] && ! command -v godot3-server >/dev/null 2>&1; then
    need+=(godot3-server)
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
