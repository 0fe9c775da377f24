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
# The C floor (bench/floor/kvm-floor.c, built by lib.sh's build_floor as for native-boot.sh) runs in the to-kvm batch too, with the
# same kernel of zeros, up to its own open of /dev/kvm: its row shows what exec, the C runtime and the exit cost on
# this host, and each build gets its ratio to it (/floor). That is the part of issue 12's start-up ratio that comes
# before KVM, measured; the KVM work after it needs a host with /dev/kvm.
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
build_floor "$tmp"
head -c 4096 /dev/zero > "$tmp/zeros.bin"

# measure <name> [--floor] <args...>: one cpu-pairs run over every build with these arguments; with --floor the C
# floor runs in the same batch (last) on the kernel of zeros, and each build's ratio to it is printed as well.
measure() {
    local name=$1 floor=''; shift
    [ "$1" = --floor ] && { floor=1; shift; }
    local commands=()
    for vmm in "${vmms[@]}"; do commands+=(-- "$vmm" "$@"); done
    [ -n "$floor" ] && commands+=(-- "$tmp/kvm-floor" "$tmp/zeros.bin")
    "$tmp/cpu-pairs" "$N" "${commands[@]}" | awk -v name="$name" -v labels="${labels[*]}" -v builds="${#vmms[@]}" '
        BEGIN { split(labels, label, " ") }
        { i = $1 + 1; cpu[i] = $3; q1[i] = $5; q3[i] = $7; wall[i] = $9 }
        END {
            floor = cpu[builds + 1]
            for (i = 1; i <= builds + (floor != ""); i++) {
                line = sprintf("%-8s %-12s CPU median %6.2f ms (q1 %6.2f, q3 %6.2f)  wall median %6.2f ms", name,
                               i > builds ? "floor(C)" : label[i], cpu[i] / 1000, q1[i] / 1000, q3[i] / 1000, wall[i] / 1000)
                if (i <= builds) line = line sprintf("  /%s: %.3f", label[1], cpu[i] / cpu[1])
                if (i <= builds && floor != "") line = line sprintf("  /floor: %.2fx", cpu[i] / floor)
                print line
            }
        }'
}

echo "startup-cpu: $N runs of each command per build, builds in turn"
measure version -version
measure to-kvm --floor -machine microvm -kernel "$tmp/zeros.bin" -m 128 -smp 1 -serial stdio
