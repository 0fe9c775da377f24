#!/usr/bin/env bash
# Installs the Debian packages the tests and the lab need (idempotent; quiet when all are present).
#   scripts/deps.sh [fuzz]    fuzz: also AFL++, for bench/fuzz.sh
set -euo pipefail
# golang-go and govmm build tests/kata/kata-qmp, Kata Containers' own QMP client (GOPATH mode, no module proxy).
# The aarch64 cross gcc and binutils assemble and build the arm64 seccomp handler's tests, which qemu-user runs.
# NativeAOT compiles with clang and links with lld (both architectures' static binaries, see StratoVirt.csproj).
packages=(qemu-system-x86 busybox-static cpio e2fsprogs acpica-tools lz4 xz-utils zstd
    golang-go golang-github-kata-containers-govmm-dev device-tree-compiler
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu qemu-user-static
    clang lld)
if [ "${1:-}" = fuzz ]; then packages+=(afl++); fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
