#!/usr/bin/env bash
# The load test, in the nested lab: a Linux guest with 8 vCPUs, a virtio-blk disk and a virtio-net tap keeps every
# CPU busy for --minutes (default 30) with verified disk I/O, checksummed TCP transfers and a ping of the host, and
# timer/IPI activity (scripts/lab/guest/tests/soak.sh), while a host client polls QMP 100 times a second and the
# VMM's memory and fds are sampled every 10 s (scripts/lab/soak-host.sh). Prints the figures and PASS or FAIL.
#
#   bench/soak.sh [--minutes <n>] [--vcpus <n>] [--qemu] [--lab] [--log <file>] [<stratovirt binary>]
#   bench/soak.sh --report <log>      only prints the figures of an earlier run's log
#
# --qemu runs the same load under the lab's QEMU microvm instead of ours: the control for faults of the lab's
# emulated CPU (a nested guest that triple-faults under either VMM is the emulator's).
# --lab is the only mode (and the default): a stock Linux guest needs a KVM that runs one, and these machines'
# PVM-backed /dev/kvm does not. The binary defaults to $STRATOVIRT_BINARY, then out/stratovirt. Progress (the
# samples, the guest's progress lines) is shown while it runs; the log goes to .cache/lab/bench/soak.log.
#
# PASS needs: the guest ran its load to the end and powered off (VMM exit 0); every QMP request answered, none an
# error, at >= 95 requests/s; 0 disk verification mismatches or I/O errors; 0 bad or failed network transfers;
# no request in flight at the end and no kernel message about timeouts, hung tasks, stalls or virtio/I/O errors
# (a lost interrupt shows as one of those); interrupts on both devices; no ERROR in the VMM's log; fds the same
# after warm-up and at the end; the Rss outside guest RAM grown by at most 2048 kB after warm-up.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
    echo "usage: $0 [--minutes <n>] [--vcpus <n>] [--qemu] [--lab] [--log <file>] [<stratovirt binary>] | --report <log>" >&2
    exit 2
}
minutes=30 vcpus=8 log="$root/.cache/lab/bench/soak.log" report_only='' vmm='' kind=ours with_qemu=()
while (($#)); do
    case "$1" in
        --minutes) (($# >= 2)) || usage; minutes=$2; shift 2 ;;
        --vcpus) (($# >= 2)) || usage; vcpus=$2; shift 2 ;;
        --qemu) kind=qemu with_qemu=(--with-qemu); shift ;;
        --lab) shift ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --report) (($# >= 2)) || usage; report_only=$2; shift 2 ;;
        -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
        -*) usage ;;
        *) [[ -z "$vmm" ]] || usage; vmm=$1; shift ;;
    esac
done
[[ "$minutes" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --minutes wants a positive number, not '$minutes'" >&2; exit 2; }
[[ "$vcpus" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --vcpus wants a positive number, not '$vcpus'" >&2; exit 2; }
vmm=${vmm:-${STRATOVIRT_BINARY:-$root/out/stratovirt}}

# The figures of a log and the verdict; exit status 0 for PASS.
report() {  # report <log>
    echo
    echo "Load test in the nested lab (log: $1, $(date -u -r "$1" +%Y-%m-%dT%H:%MZ))"
    tr -d '\r' <"$1" | sed -n '/^@@BEGIN soak/,/^@@END soak/p' | awk -v limit_kb=2048 -v min_rate=95 '
        function field(line, name,   i, n, parts) {
            n = split(line, parts, " ")
            for (i = 1; i <= n; i++) if (index(parts[i], name "=") == 1) return substr(parts[i], length(name) + 2)
            return ""
        }
        function fail(why) { fails = fails "  " why "\n" }
        /^SOAK-LOAD-START / { cpus = field($0, "cpus"); secs = field($0, "secs") }
        /^SOAK-LOAD-END / { load_end = field($0, "t") }
        /^QMP-POLL / { qmp = $0 }
        /^SOAK-DISK-END / { disks++; dw += field($0, "writes"); dr += field($0, "reads"); dm += field($0, "mismatches")
            de += field($0, "errors"); if (field($0, "max-ms") + 0 > dmax) dmax = field($0, "max-ms") + 0 }
        /^SOAK-NET-TCP / { tcp = $0 }
        /^SOAK-NET-PING / { ping = $0 }
        /^SOAK-TIMERS / { timers = field($0, "loops") }
        /^SOAK-IRQ / { irq[field($0, "name")] = field($0, "delta"); dev[field($0, "name")] = field($0, "device") }
        /^SOAK-BLK / { blk = $0 }
        /^SOAK-NETDEV / { netdev = $0 }
        /^SOAK-DMESG / { dmesg = dmesg "    " substr($0, 12) "\n" }
        /^SOAK-DMESG-PROBLEMS / { problems = field($0, "n") }
        /^SOAK-MEM / { mem[$2] = $0 }
        /^SOAK-GROWTH / { growth = $0 }
        /^SOAK-VMM-LOG / { vlog = $0 }
        /^SOAK-VMM-EXIT / { vexit = field($0, "rc") }
        /^@@END soak/ { lab_rc = field($0, "rc"); wall = field($0, "wall_ms") }
        END {
            printf "guest: %s vCPUs, load %s s planned, %s s run; lab scenario %.0f s wall, rc=%s; VMM exit %s\n",
                cpus, secs, load_end, wall / 1000, lab_rc, vexit
            if (vexit != "0") fail("the VMM did not end with exit 0 (the guest did not finish and power off)")
            sent = field(qmp, "sent"); answered = field(qmp, "answered"); errors = field(qmp, "errors")
            printf "QMP: %s sent, %s answered, %s errors, %s slots skipped behind schedule, slowest reply %s ms, %s requests/s over %s s (ended by %s)\n",
                sent, answered, errors, field(qmp, "late-slots"), field(qmp, "max-ms"), field(qmp, "rate"), field(qmp, "secs"), field(qmp, "ended")
            if (qmp == "" || sent != answered || errors != 0 || field(qmp, "ended") != "signal") fail("QMP: not every request answered without error")
            if (field(qmp, "rate") + 0 < min_rate) fail("QMP: below " min_rate " requests/s")
            printf "disk: %d workers, %d writes, %d reads verified, %d mismatches, %d I/O errors, slowest request %d ms\n", disks, dw, dr, dm, de, dmax
            if (disks != 2 || dm != 0 || de != 0 || dw == 0) fail("disk: a worker did not finish, or data or I/O errors")
            printf "net: TCP %s rounds of 4 MiB, %s bad checksums, %s failed; ping %s sent, %s received\n",
                field(tcp, "rounds"), field(tcp, "bad"), field(tcp, "failed"), field(ping, "sent"), field(ping, "received")
            if (tcp == "" || field(tcp, "rounds") == 0 || field(tcp, "bad") != 0 || field(tcp, "failed") != 0) fail("net: TCP transfers bad or failed")
            if (ping == "" || field(ping, "received") == 0) fail("net: no ping answered")
            printf "timer loops: %s\n", timers
            line = "interrupts during the load:"
            for (n in irq) line = line sprintf(" %s%s=%s", n, dev[n] == "-" ? "" : "(" dev[n] ")", irq[n])
            print line
            printf "completions the guest saw: blk reads=%s writes=%s, in flight at the end %s; net rx=%s tx=%s packets, %s errors\n",
                field(blk, "reads"), field(blk, "writes"), field(blk, "inflight"), field(netdev, "rx-packets"), field(netdev, "tx-packets"), field(netdev, "errors")
            for (n in irq) if (dev[n] == "vda") blk_irq = irq[n]; else if (dev[n] == "eth0") net_irq = irq[n]
            if (blk_irq + 0 == 0 || net_irq + 0 == 0) fail("no interrupts counted for the disk or the NIC")
            if (blk == "" || field(blk, "inflight") != 0) fail("disk requests still in flight at the end (a lost interrupt)")
            if (field(netdev, "errors") + 0 != 0) fail("NIC errors")
            printf "kernel messages about timeouts, hung tasks, stalls, virtio or I/O errors: %s\n%s", problems, dmesg
            if (problems != "0") fail("kernel messages about timeouts, hung tasks, stalls or I/O errors")
            for (k = 1; k <= 3; k++) { split("start warm end", ks, " "); print "  " mem[ks[k]] }
            print "  " growth
            if (growth == "" || field(growth, "fds") != 0) fail("fds grew after warm-up")
            if (field(growth, "overhead_kb") + 0 > limit_kb) fail("Rss outside guest RAM grew by more than " limit_kb " kB after warm-up")
            printf "VMM log: %s\n", vlog
            if (field(vlog, "errors") != "0") fail("ERROR lines in the VMM log")
            if (fails == "") print "RESULT: PASS"; else printf "RESULT: FAIL\n%s", fails
            exit fails == "" ? 0 : 1
        }'
}

if [[ -n "$report_only" ]]; then
    [[ -f "$report_only" ]] || { echo "bench: no log $report_only" >&2; exit 2; }
    report "$report_only"
    exit $?
fi
[[ -x "$vmm" ]] || { echo "bench: no VMM binary at $vmm (build it with scripts/build.sh)" >&2; exit 2; }

mkdir -p "$root/.cache/lab/bench" "$(dirname "$log")"
secs=$((minutes * 60))
scenarios="$root/.cache/lab/bench/soak-scenarios.sh"
# A boot with many vCPUs under the lab's TCG takes minutes; the end (summary, power-off) a minute more.
echo "scenario soak $((secs + 900)) unshare -n soak-host $secs $vcpus 512 $kind" >"$scenarios"
echo "bench: load test ($kind) of $minutes min with $vcpus vCPUs in the nested lab; progress every 10 s (log: $log)" >&2
status=0
"$root/scripts/lab/run.sh" --scenarios "$scenarios" --log "$log" --timeout $((secs + 1500)) --vmm "$vmm" "${with_qemu[@]}" \
    | grep --line-buffered -E '^(SOAK-SAMPLE|SOAK-PROGRESS|SOAK-LOAD-|@@)' || status=$?
report "$log" || status=1
exit "$status"
