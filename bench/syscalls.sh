#!/usr/bin/env bash
# System calls of our VMM under seccomp, against upstream StratoVirt and Firecracker.
#
#   bench/syscalls.sh [--vmm <stratovirt binary>] [--log <file>]
#   bench/syscalls.sh --report <log>      only prints the table of an earlier run's log (or of the test run's,
#                                         .cache/lab/test-run.log, which has the same scenario)
#
# Runs scripts/lab/scenarios/seccomp-strace.sh in the nested lab: a Debian guest with virtio-blk (one disk on an
# iothread, one on the main loop), virtio-net on a tap, virtio-console and virtio-rng, under seccomp; strace
# attaches to every thread once the guest is up, while the guest drives each device and QMP stops, resumes and
# queries the VM. Prints per kind of thread how many distinct calls its seccomp list allows (from the VMM's log)
# and how many strace saw, then the process-wide count against upstream StratoVirt's microvm list (67 distinct
# calls on x86_64 glibc, one list for every thread) and Firecracker's per-thread lists (vmm 50, api 31, vcpu 27),
# with the ratios ours/theirs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() { echo "usage: $0 [--vmm <binary>] [--log <file>] | --report <log>" >&2; exit 2; }
vmm="${STRATOVIRT_BINARY:-$root/out/stratovirt}"
log="$root/.cache/lab/bench/syscalls.log"
report_only=''
while (($#)); do
    case "$1" in
        --vmm) (($# >= 2)) || usage; vmm=$2; shift 2 ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --report) (($# >= 2)) || usage; report_only=$2; shift 2 ;;
        *) usage ;;
    esac
done

report() {  # report <log>
    echo
    echo "System calls under seccomp (log: $1, $(date -u -r "$1" +%Y-%m-%dT%H:%MZ))"
    tr -d '\r' <"$1" | awk '
        /^@@BEGIN seccomp-strace/ { inside = 1; next }
        /^@@END seccomp-strace/ { inside = 0; ended = $0 }
        !inside { next }
        /allowed system calls:/ {
            line = $0; sub(/.*allowed system calls: /, "", line)
            n = split(line, parts, ", ")
            for (i = 1; i <= n; i++) {
                split(parts[i], kv, " ")
                if (kv[2] == "distinct") process = kv[1]; else allowed[kv[1]] = kv[2]
            }
        }
        /^SECCOMP-SEEN / {
            rest = substr($0, 14); bar = 0
            for (i = length(rest); i > 0; i--) if (substr(rest, i, 1) == "|") { bar = i; break }
            thread = substr(rest, 1, bar - 1); split(substr(rest, bar + 1), cc, " ")
            kind = thread == "stratovirt" ? "Main" : thread == "finalizer" ? "Runtime" : \
                   thread ~ /^CPU / ? "Vcpu" : thread ~ /^iothread / ? "IoThread" : "other:" thread
            if (!((kind, cc[1]) in seen)) { seen[kind, cc[1]] = 1; count[kind]++ }
            if (!(cc[1] in any)) { any[cc[1]] = 1; total++ }
            calls[kind] = calls[kind] " " cc[1]
        }
        END {
            if (process == "") { print "no seccomp-strace result in this log" > "/dev/stderr"; exit 1 }
            printf "%-10s %8s %6s\n", "thread", "allowed", "seen"
            split("Main Vcpu IoThread Runtime", kinds, " ")
            for (k = 1; k <= 4; k++) printf "%-10s %8d %6d\n", kinds[k], allowed[kinds[k]], count[kinds[k]]
            printf "%-10s %8d %6d\n", "process", process, total
            for (k in count) if (k ~ /^other:/) printf "unexpected thread %s\n", substr(k, 7)
            printf "\nprocess-wide allowed: ours %d vs StratoVirt microvm 67 (%.2fx)\n", process, process / 67
            printf "per thread, against Firecracker: main loop (QMP included) %d vs vmm 50 (%.2fx) and api 31, vCPU %d vs vcpu 27 (%.2fx); iothread %d (Firecracker has none)\n",
                allowed["Main"], allowed["Main"] / 50, allowed["Vcpu"], allowed["Vcpu"] / 27, allowed["IoThread"]
            print ended
        }'
}

if [[ -n "$report_only" ]]; then
    [[ -f "$report_only" ]] || { echo "syscalls: no log $report_only" >&2; exit 2; }
    report "$report_only"
    exit 0
fi
[[ -x "$vmm" ]] || { echo "syscalls: no VMM binary at $vmm (build it with scripts/build.sh)" >&2; exit 2; }

work="$root/.cache/lab/bench/syscalls"
mkdir -p "$work" "$(dirname "$log")"
"$root/scripts/lab/make-guest-initramfs.sh" "$work/guest.cpio.gz" --ext4 "$work/rootfs.ext4" 160
status=0
"$root/scripts/lab/run.sh" --scenarios "$root/scripts/lab/scenarios/seccomp-strace.sh" --log "$log" --timeout 900 \
    --vmm "$vmm" --guest-initrd "$work/guest.cpio.gz" --add "$work/rootfs.ext4" --with-strace || status=$?
report "$log"
exit "$status"
