#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that sees untrusted bytes (tests/StratoVirt.Fuzz): builds the targets,
# instruments the product assemblies with SharpFuzz, seeds AFL++ from tests/fuzz/corpus/<target>/ and runs
# afl-fuzz on each target in turn, then prints one line per target: executions, exec/s, corpus size, crashes, hangs.
#
#   bench/fuzz.sh [--smoke] [--execs N] [target...]     (default: every target, 1,000,000 executions each)
#
#   --smoke     a short run per target (2,000 executions, at most 60 s)
#   --execs N   N executions per target
# Findings stay in .cache/fuzz/out/<target>/default/{crashes,hangs}/; reproduce one with
#   dotnet tests/StratoVirt.Fuzz/bin/Release/net10.0/StratoVirt.Fuzz.dll <target> <file>   (not instrumented)
# Once fixed, copy it to tests/fuzz/crashes/<target>/ (the unit tests run it) and add a unit test for the defect.
# Runs under nice -n 19 and holds /tmp/fuzz.lock while afl-fuzz runs, so fuzzers on one machine take turns.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

execs=1000000 cap=()
targets=()
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) execs=2000; cap=(-V 60); shift ;;
        --execs) execs=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

bash scripts/deps.sh fuzz

cache=$root/.cache/fuzz
bin=$cache/bin
tools=$root/.cache/tools
if [ ! -x "$tools/sharpfuzz" ]; then
    dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tools" >/dev/null
fi

# A fresh copy of the build each run: SharpFuzz rewrites the product assemblies in place.
nice -n 19 dotnet build tests/StratoVirt.Fuzz -c Release --nologo -v quiet >/dev/null
rm -rf "$bin"
mkdir -p "$cache"
cp -r tests/StratoVirt.Fuzz/bin/Release/net10.0 "$bin"
for dll in StratoVirt.Memory StratoVirt.Boot StratoVirt.Devices StratoVirt.Virtio StratoVirt.Machine StratoVirt.Qmp stratovirt; do
    "$tools/sharpfuzz" "$bin/$dll.dll" >/dev/null
done

mapfile -t known < <(dotnet tests/StratoVirt.Fuzz/bin/Release/net10.0/StratoVirt.Fuzz.dll --list)
[ ${#targets[@]} -gt 0 ] || targets=("${known[@]}")
for t in "${targets[@]}"; do
    [[ " ${known[*]} " == *" $t "* ]] || { echo "fuzz: unknown target '$t' (targets: ${known[*]})" >&2; exit 2; }
    [ -d "tests/fuzz/corpus/$t" ] || { echo "fuzz: no seed corpus tests/fuzz/corpus/$t" >&2; exit 2; }
done

field() { sed -nE "s/^$1 *: *([0-9.]+).*/\1/p" "$2"; }
found=0
rows=()
for t in "${targets[@]}"; do
    out=$cache/out/$t
    rm -rf "$out" "$cache/tmp/$t"
    mkdir -p "$cache/tmp/$t" "$cache/out"
    echo "fuzz: $t ($execs executions)" >&2
    # The harness keeps its temporary files (an image, sockets, a kernel file) under TMPDIR; a heap limit turns an
    # unbounded allocation into an OutOfMemoryException, which is a crash.
    start=$(date +%s)
    flock /tmp/fuzz.lock nice -n 19 env AFL_NO_UI=1 AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 \
        AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_QUIET=1 TMPDIR="$cache/tmp/$t" DOTNET_GCHeapHardLimit=0x20000000 \
        afl-fuzz -i "tests/fuzz/corpus/$t" -o "$out" -t 5000 -m none -E "$execs" "${cap[@]}" \
        -- dotnet "$bin/StratoVirt.Fuzz.dll" "$t" >"$cache/$t.log" 2>&1 \
        || { echo "fuzz: afl-fuzz failed on $t; see $cache/$t.log" >&2; tail -5 "$cache/$t.log" >&2; exit 1; }
    rm -rf "$cache/tmp/$t"
    s=$out/default/fuzzer_stats
    n=$(field execs_done "$s") crashes=$(field saved_crashes "$s") hangs=$(field saved_hangs "$s")
    secs=$(( $(date +%s) - start ))
    rows+=("$(printf '| %s | %s | %s | %s | %s | %s | %s |' "$t" "$n" "$(field execs_per_sec "$s")" \
        "$(field corpus_count "$s")" "$crashes" "$hangs" "$secs")")
    (( crashes + hangs == 0 )) || found=1
done

echo "| target | executions | exec/s | corpus | crashes | hangs | wall s |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if (( found )); then
    echo "fuzz: findings in $cache/out/<target>/default/{crashes,hangs}/" >&2
    exit 1
fi
