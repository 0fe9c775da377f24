#!/usr/bin/env bash
# Start-up CPU of builds of our VMM on a host without /dev/kvm, where native-boot.sh cannot run.
#
#   bench/startup-cpu.sh label=vmm [label=vmm ...]      env: N=500 runs of each command per build
#
# Times two command lines of each build, all builds in turn (cpu-pairs.c), and prints each build's median CPU
# (user + system of the whole process, from wait4), its quartiles and its ratio to the first build's median:
#   version  `vmm -version`: exec, the loader, the runtime's start (rehydrating its data) and the exit.
#   to-kvm   the microVM command line with a 4 KiB kernel of zeros and seccomp on: the above, then option parsing,
#            the SIGSYS handler, the finalizer thread's visit with its seccomp filter and the kernel's load, up to
#            the builder opening /dev/kvm, which fails here and ends the process.
# On a host with /dev/kvm the second line would run a guest; use native-boot.sh there, which times the whole way
# to the guest's first instruction against the C floor.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/bench/lib.sh"
N=${N:-500}
[ $# -ge 1 ] || { echo "usage: bench/startup-cpu.sh label=vmm [label=vmm ...]" >&2; exit 2; }
if [ -e /dev/kvm ]; then
    echo "startup-cpu: this host has /dev/kvm; bench/native-boot.sh measures start-up on it" >&2
    exit 2
fi
parse_variants startup-cpu "$@"
labels=() vmms=()
for o in "${others[@]}"; do labels+=("${o%%=*}"); vmms+=("${o#*=}"); done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -Wall -Werror -o "$tmp/cpu-pairs" "$root/bench/cpu-pairs.c"
head -c 4096 /dev/zero > "$tmp/zeros.bin"

measure() {  # measure <name> <args...>: one cpu-pairs run over every build with these arguments
    local name=$1; shift
    local commands=()
    for vmm in "${vmms[@]}"; do commands+=(-- "$vmm" "$@"); done
    "$tmp/cpu-pairs" "$N" "${commands[@]}" | awk -v name="$name" -v labels="${labels[*]}" '
        BEGIN { split(labels, label, " ") }
        { i = $1 + 1; if (i == 1) base = $3
          printf "%-8s %-12s CPU median %6.2f ms (q1 %6.2f, q3 %6.2f)  wall median %6.2f ms  /%s: %.3f\n",
                 name, label[i], $3 / 1000, $5 / 1000, $7 / 1000, $9 / 1000, label[1], $3 / base }'
}

echo "startup-cpu: $N runs of each command per build, builds in turn"
measure version -version
measure to-kvm -machine microvm -kernel "$tmp/zeros.bin" -m 128 -smp 1 -serial stdio
