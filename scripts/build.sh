#!/usr/bin/env bash
# Builds the NativeAOT binaries: out/stratovirt and out/ozone (the sandbox launcher).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
echo "build: publishing NativeAOT stratovirt (net10.0, linux-x64)..."
dotnet publish src/StratoVirt/StratoVirt.csproj -c Release -f net10.0 -r linux-x64 -o out --nologo -v quiet \
    -p:TreatWarningsAsErrors=true
echo "build: publishing NativeAOT ozone (net10.0, linux-x64)..."
dotnet publish src/Ozone/Ozone.csproj -c Release -f net10.0 -r linux-x64 -o out --nologo -v quiet \
    -p:TreatWarningsAsErrors=true
rm -f out/*.dbg
ls -l out/stratovirt out/ozone | awk '{printf "build: %s (%d bytes)\n", $9, $5}'
