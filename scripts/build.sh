#!/usr/bin/env bash
# Builds the NativeAOT stratovirt binary at out/stratovirt.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
echo "build: publishing NativeAOT stratovirt (net9.0, linux-x64)..."
dotnet publish src/StratoVirt/StratoVirt.csproj -c Release -f net9.0 -r linux-x64 -o out --nologo -v quiet \
    -p:TreatWarningsAsErrors=true
rm -f out/*.dbg
ls -l out/stratovirt | awk '{printf "build: out/stratovirt (%d bytes)\n", $5}'
