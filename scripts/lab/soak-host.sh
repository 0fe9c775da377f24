#!/bin/sh
# The host side of the load test (outer lab VM, busybox ash, in a network namespace of its own; installed there as
# soak-host; bench/soak.sh runs it for 30 minutes, the lab scenario soak-short for one):
#
#   soak-host <load-seconds> <vcpus> <memory-MiB> [ours|qemu]
#
# qemu runs the same guest, disk, NIC and QMP load under the lab's QEMU microvm instead (bench/soak.sh --qemu): the
# control that tells a fault of the lab's emulated CPU (a nested guest's triple fault) from one of ours.
#
# Runs $VMM with <vcpus> vCPUs, a fresh 160 MiB raw disk (direct=off, /tmp is a tmpfs), a virtio-net tap (tap0,
# host end 10.0.2.2 serving a 4 MiB /blob and its sha256 with httpd) and QMP, the guest running
# scripts/lab/guest/tests/soak.sh for <load-seconds>. Once QMP is up, qmp-send --poll asks query-status,
# query-cpus, query-block, query-blockstats, query-version and query-hotpluggable-cpus in turn, 100 times a second,
# until the guest prints SOAK-LOAD-END. Every 10 s it samples the VMM and prints
#   SOAK-SAMPLE t=<s since the VMM started> phase=<boot|load|end> vmrss_kb=<VmRSS> overhead_kb=<Rss of mappings
#               < 128 MiB: guest RAM excluded, the rule of bench/memory.sh> fds=<open fds> threads=<n> qmp=<answered>
#               guest=<the guest's last SOAK-PROGRESS line, commas for spaces>
# (the last one, phase=end, when the guest says SOAK-LOAD-END). Then
#   SOAK-MEM <start|warm|end> t=.. vmrss_kb=.. overhead_kb=.. fds=..    start: first sample; warm: the first sample
#                                     at least <warm-up> s into the load (a quarter of it, at most 120 s); end: last
#   SOAK-GROWTH overhead_kb=<end - warm> vmrss_kb=<end - warm> fds=<end - warm> warmup-s=<warm-up>
#   the QMP-POLL line, the guest's console, the VMM's log (-D, level info) and
#   SOAK-VMM-LOG warnings=<WARN lines> errors=<ERROR lines>   SOAK-VMM-EXIT rc=<exit status>
set -u
secs=$1 vcpus=$2 mem=$3 kind=${4:-ours}
dir=/tmp/soak
rm -rf "$dir"
mkdir -p "$dir/www"
out=$dir/console.out log=$dir/vmm.log qmp=$dir/qmp.sock samples=$dir/samples
ip link set lo up
dd if=/dev/urandom of="$dir/www/blob" bs=1M count=4 2>/dev/null
sha256sum "$dir/www/blob" | cut -d' ' -f1 >"$dir/www/blob.sha256"
truncate -s 160M "$dir/disk.img"

cmdline="console=ttyS0 reboot=k panic=1 lab.action=test lab.test=soak soak.secs=$secs"
queries='{"execute":"query-status"} {"execute":"query-cpus"} {"execute":"query-block"} {"execute":"query-blockstats"}'
queries="$queries"' {"execute":"query-version"} {"execute":"query-hotpluggable-cpus"}'
case "$kind" in
    ours)
        STRATOVIRT_LOG_LEVEL=info "$VMM" -machine microvm -kernel "$KERNEL" -initrd "$INITRD" -append "$cmdline" \
            -m "$mem" -smp "$vcpus" -serial stdio -name soak -D "$log" -qmp "unix:$qmp,server,nowait" \
            -drive id=soak,file="$dir/disk.img",direct=off -device virtio-blk-device,drive=soak,id=vda \
            -netdev tap,id=net0,ifname=tap0 -device virtio-net-device,netdev=net0,id=eth0,mac=52:54:00:12:34:56 \
            </dev/null >"$out" 2>&1 &
        ;;
    qemu)
        # As bench/virtio-io-host.sh: acpi=on describes the virtio-mmio devices, force-legacy=false gives virtio 1.x;
        # cache=writeback is our direct=off. QEMU 7.2 has no query-cpus (query-cpus-fast instead) and its microvm
        # no CPU hotplug. -d guest_errors,cpu_reset logs a triple fault's reset to the log.
        queries='{"execute":"query-status"} {"execute":"query-cpus-fast"} {"execute":"query-block"}'
        queries="$queries"' {"execute":"query-blockstats"} {"execute":"query-version"}'
        "$QEMU" -L "$QEMU_FW" -M microvm,acpi=on -enable-kvm -cpu host -m "$mem" -smp "$vcpus" -kernel "$KERNEL" \
            -initrd "$INITRD" -append "$cmdline" -nographic -no-reboot -nodefaults -serial stdio \
            -D "$log" -d guest_errors,cpu_reset -qmp "unix:$qmp,server,nowait" -global virtio-mmio.force-legacy=false \
            -drive id=soak,file="$dir/disk.img",format=raw,if=none,cache=writeback -device virtio-blk-device,drive=soak \
            -netdev tap,id=net0,ifname=tap0,script=no,downscript=no \
            -device virtio-net-device,netdev=net0,mac=52:54:00:12:34:56 </dev/null >"$out" 2>&1 &
        ;;
    *) echo "soak-host: unknown VMM kind '$kind' (ours or qemu)"; exit 2 ;;
esac
vmm=$!
n=0
until ip link show tap0 >/dev/null 2>&1 || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
ip addr add 10.0.2.2/24 dev tap0
ip link set tap0 up
httpd -f -p 10.0.2.2:80 -h "$dir/www" &
httpd=$!
n=0
until [ -S "$qmp" ] || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
# shellcheck disable=SC2086 # one word per query
qmp-send "$qmp" --poll 100 $queries >"$dir/qmp.out" 2>&1 &
poller=$!
# The client at a higher priority than the VMM: the lab's two emulated CPUs, which the guest's vCPUs keep busy,
# would otherwise leave the client itself too little time to send 100 requests a second.
renice -n -10 -p $poller >/dev/null

# sample <phase>: one SOAK-SAMPLE line, also kept in $samples.
t0=$(cut -d. -f1 /proc/uptime)
sample() {
    [ -d "/proc/$vmm" ] || return 0
    line="t=$(($(cut -d. -f1 /proc/uptime) - t0)) phase=$1"
    line="$line vmrss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$vmm/status")"
    line="$line overhead_kb=$(awk '/^Size:/ { size = $2 } /^Rss:/ && size < 131072 { s += $2 } END { print s + 0 }' "/proc/$vmm/smaps")"
    line="$line fds=$(ls "/proc/$vmm/fd" | wc -l) threads=$(ls "/proc/$vmm/task" | wc -l)"
    line="$line qmp=$(sed -n 's/.* answered=\([0-9]*\).*/\1/p' "$dir/qmp.out" | tail -n 1)"
    line="$line guest=$(grep -E '^SOAK-(PROGRESS|LOAD)' "$out" | tail -n 1 | tr -d '\r' | tr ' ' ,)"
    echo "SOAK-SAMPLE $line" | tee -a "$samples"
}
phase=boot next=0
while kill -0 $vmm 2>/dev/null; do
    if grep -q SOAK-LOAD-END "$out"; then
        sample end
        break
    fi
    if [ "$phase" = boot ] && grep -q SOAK-LOAD-START "$out"; then
        phase=load load_t=$(($(cut -d. -f1 /proc/uptime) - t0))
    fi
    if [ $(($(cut -d. -f1 /proc/uptime) - t0)) -ge $next ]; then
        sample $phase
        next=$((next + 10))
    fi
    sleep 1
done
kill -TERM $poller 2>/dev/null
wait $poller
: >"$dir/www/poller-stopped" # the guest waits for this before it powers off
wait $vmm
rc=$?
kill $httpd 2>/dev/null

warmup=$((secs / 4))
[ $warmup -le 120 ] || warmup=120
awk -v load="${load_t:-0}" -v warmup=$warmup '
    function field(name,   i) { for (i = 2; i <= NF; i++) if (index($i, name "=") == 1) return substr($i, length(name) + 2); return "" }
    function keep(k) { t[k] = field("t"); rss[k] = field("vmrss_kb"); over[k] = field("overhead_kb"); fds[k] = field("fds") }
    NR == 1 { keep("start") }
    !("warm" in t) && field("phase") != "boot" && field("t") >= load + warmup { keep("warm") }
    { keep("end") }
    END {
        if (!("warm" in t)) keep("warm")
        split("start warm end", ks, " ")
        for (i = 1; i <= 3; i++)
            printf "SOAK-MEM %s t=%s vmrss_kb=%s overhead_kb=%s fds=%s\n", ks[i], t[ks[i]], rss[ks[i]], over[ks[i]], fds[ks[i]]
        printf "SOAK-GROWTH overhead_kb=%d vmrss_kb=%d fds=%d warmup-s=%d\n", over["end"] - over["warm"],
            rss["end"] - rss["warm"], fds["end"] - fds["warm"], warmup
    }' "$samples"
grep -v '^QMP-POLL-PROGRESS' "$dir/qmp.out"
tr -d '\r' <"$out"
cat "$log" 2>/dev/null
echo "SOAK-VMM-LOG warnings=$(grep -c ' WARN ' "$log" 2>/dev/null) errors=$(grep -c ' ERROR ' "$log" 2>/dev/null)"
echo "SOAK-VMM-EXIT rc=$rc"
rm -rf "$dir"
exit $rc
