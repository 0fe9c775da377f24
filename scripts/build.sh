#!/usr/bin/env bash
# Builds the NativeAOT binaries: out/stratovirt and out/ozone (the sandbox launcher).
#   scripts/build.sh [--arch x86_64|arm64]
# --arch arm64 cross-compiles both for linux-arm64 into out/aarch64/ (`scripts/deps.sh` installs the cross tools). That
# stratovirt runs the aarch64 microVM (see README, "aarch64").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
arch=x86_64
while (($#)); do
    case "$1" in
        --arch) arch="${2:?--arch needs x86_64 or arm64}"; shift 2 ;;
        *) echo "build: unknown argument '$1' (usage: scripts/build.sh [--arch x86_64|arm64])" >&2; exit 2 ;;
    esac
done
case "$arch" in
    x86_64|amd64|x64) ;;
    arm64|aarch64)
        # ILCompiler links with clang --target=aarch64-linux-gnu, which finds Debian's aarch64 cross gcc and libc.
        echo "build: publishing NativeAOT stratovirt (net10.0, linux-arm64)..."
        dotnet publish src/StratoVirt/StratoVirt.csproj -c Release -f net10.0 -r linux-arm64 -o out/aarch64 \
            --nologo -v quiet -p:TreatWarningsAsErrors=true
        echo "build: publishing NativeAOT ozone (net10.0, linux-arm64)..."
        dotnet publish src/Ozone/Ozone.csproj -c Release -f net10.0 -r linux-arm64 -o out/aarch64 \
            --nologo -v quiet -p:TreatWarningsAsErrors=true
        rm -f out/aarch64/*.dbg
        ls -l out/aarch64/stratovirt out/aarch64/ozone | awk '{printf "build: %s (%d bytes)\n", $9, $5}'
        exit 0 ;;
    *) echo "build: unknown architecture '$arch' (x86_64 or arm64)" >&2; exit 2 ;;
esac
echo "build: publishing NativeAOT stratovirt (net10.0, linux-x64)..."
dotnet publish src/StratoVirt/StratoVirt.csproj -c Release -f net10.0 -r linux-x64 -o out --nologo -v quiet \
    -p:TreatWarningsAsErrors=true
echo "build: publishing NativeAOT ozone (net10.0, linux-x64)..."
dotnet publish src/Ozone/Ozone.csproj -c Release -f net10.0 -r linux-x64 -o out --nologo -v quiet \
    -p:TreatWarningsAsErrors=true
rm -f out/*.dbg
ls -l out/stratovirt out/ozone | awk '{printf "build: %s (%d bytes)\n", $9, $5}'
