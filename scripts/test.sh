#!/usr/bin/env bash
# Runs every test level (unit, native KVM payloads, nested-lab Linux guests) and ends with "N passed, N failed".
#   scripts/test.sh [unit|native|lab|all|armlab]   (default all)
# all includes the Arm nested lab's scenarios of what differs from x86_64 (level ArmLab); armlab runs every Arm
# lab scenario (levels ArmLab and ArmLabFull). Both build the arm64 binary first.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
level="${1:-all}"

fail() { echo "test: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

bash scripts/deps.sh || fail "installing dependencies failed"
bash scripts/build.sh || fail "building out/stratovirt failed"
export STRATOVIRT_BINARY="$root/out/stratovirt"

case "$level" in
    unit) filter="Level=Unit" ;;
    native) filter="Level=Native" ;;
    lab) filter="Level=Lab" ;;
    all) filter="Level!=ArmLabFull" ;;
    armlab) filter="Level=ArmLab|Level=ArmLabFull"; export STRATOVIRT_ARM_LAB=full ;;
    *) fail "unknown level '$level' (unit, native, lab, all or armlab)" ;;
esac
if [[ "$level" == all || "$level" == armlab ]]; then
    bash scripts/build.sh --arch arm64 || fail "building out/aarch64/stratovirt failed"
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
args=(test tests/StratoVirt.Tests/StratoVirt.Tests.csproj -c Release --nologo --logger "console;verbosity=normal")
[[ -n "$filter" ]] && args+=(--filter "$filter")
dotnet "${args[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# vstest's closing block: "Total tests: N", then "Passed: N", "Failed: N", "Skipped: N" (zero counts are left out).
count() { sed -nE "s/^ *$1: +([0-9]+) *$/\1/p" "$log" | tail -1; }
total="$(count 'Total tests')"
if [[ -z "$total" ]]; then
    echo "test: no test summary (build or runner failure, exit $status)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
passed="$(count Passed)"; failed="$(count Failed)"; skipped="$(count Skipped)"
passed=${passed:-0}; failed=${failed:-0}; skipped=${skipped:-0}
if [[ "$failed" -gt 0 ]]; then
    # CI keeps only the tail of the output: repeat each failure's name and message (up to its stack trace) here.
    echo "Failed tests:"
    awk '/^  Failed [^ ]/ { show = 1; n = 0 } /^  Stack Trace:/ { show = 0 } show && n++ < 40' "$log"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[[ "$status" -eq 0 && "$failed" -eq 0 && "$passed" -gt 0 ]]
