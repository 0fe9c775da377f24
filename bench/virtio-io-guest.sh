# Guest side of bench/virtio-io.sh: /tests/virtio-io.sh of the guest initramfs (appended by that script), run by
# the guest's /init with lab.action=test lab.test=virtio-io. Expects one 256 MiB scratch virtio-blk disk and one
# virtio-net device whose host end is 10.0.2.2 serving /blob over HTTP (bench/virtio-io-host.sh).
#
# Kernel command line: vio.secs=<random-read seconds> (default 10), vio.idle=<idle seconds> (default 8),
# vio.blob=<bytes of /blob> (default 67108864).
# Lines (times from the guest's /proc/uptime, 10 ms resolution):
#   GUEST-VIO-DISK <dev> <bytes>          GUEST-VIO-VIRTIO <dev> <driver> version1=<0|1>
#   GUEST-VIO-IDLE                        devices up, network pinged; idle for vio.idle s (the host reads smaps)
#   GUEST-VIO-BLK-WRITE bytes=<n> ms=<n>  dd bs=1M of zeros onto the disk, conv=fsync
#   GUEST-VIO-BLK-READ bytes=<n> ms=<n>   dd bs=1M from the disk after drop_caches
#   GUEST-VIO-BLK-RAND mode=<read|write> depth=<1|32> ops=.. ms=.. iops=..   randio (O_DIRECT 4 KiB at random
#                                         offsets; queue depth 1, and 32 through native AIO), vio.secs each
#   GUEST-VIO-NET-RX bytes=<n> ms=<n>     wget -O /dev/null of http://10.0.2.2/blob
#   GUEST-VIO-NET-TX bytes=<n> ms=<n>     tcpblast of vio.blob bytes to 10.0.2.2:5001 (guest -> host)
#   GUEST-VIO-IRQS <step> <dev>=<n>...    before each step and at the end: the interrupts of each virtio device
#                                         so far (all CPUs), so that a step's count is the difference
#   GUEST-VIO-ERROR <what>                a step failed (its figure is missing)
#   GUEST-VIO-DONE                        idle 3 s more before poweroff (the host reads smaps again)

secs=10 idle=8 blob=67108864
read -r cmdline </proc/cmdline
for arg in $cmdline; do
    case "$arg" in
        vio.secs=*) secs=${arg#vio.secs=} ;;
        vio.idle=*) idle=${arg#vio.idle=} ;;
        vio.blob=*) blob=${arg#vio.blob=} ;;
    esac
done

irqs() {
    echo "GUEST-VIO-IRQS $1 $(awk '/virtio/ { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; printf "%s=%d ", $NF, s }' /proc/interrupts)"
}

now_ms() {
    read -r up _ </proc/uptime
    cs=${up#*.}
    # "12.05" -> 12050; the 1 prefix keeps "05" from reading as octal.
    NOW_MS=$((${up%.*} * 1000 + 1$cs * 10 - 1000))
}

# The scratch disk: the virtio disk of 256 MiB (524288 sectors).
disk=
n=0
while [ -z "$disk" ] && [ $n -lt 100 ]; do
    for b in /sys/block/vd*; do
        [ -e "$b/size" ] && [ "$(cat "$b/size")" = 524288 ] && disk=/dev/${b##*/}
    done
    [ -n "$disk" ] || { sleep 0.1; n=$((n + 1)); }
done
if [ -n "$disk" ]; then
    echo "GUEST-VIO-DISK $disk $(($(cat "/sys/block/${disk#/dev/}/size") * 512))"
else
    echo "GUEST-VIO-ERROR no 256 MiB virtio disk: $(ls /sys/block 2>/dev/null | tr '\n' ' ')"
fi
# The transport: bit 32 (VIRTIO_F_VERSION_1) of the negotiated features, a string of 0/1 from bit 0.
for d in /sys/bus/virtio/devices/*; do
    [ -e "$d/features" ] || continue
    drv=$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null)
    echo "GUEST-VIO-VIRTIO ${d##*/} ${drv:-none} version1=$(cut -c33 "$d/features")"
done

ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
n=0
until ping -c 1 -W 1 10.0.2.2 >/dev/null 2>&1 || [ $n -ge 120 ]; do n=$((n + 1)); sleep 0.5; done
ping -c 1 -W 2 10.0.2.2 >/dev/null 2>&1 || echo "GUEST-VIO-ERROR ping 10.0.2.2 failed"

echo "GUEST-VIO-IDLE"
sleep "$idle"

if [ -n "$disk" ]; then
    irqs blk-write
    now_ms; t0=$NOW_MS
    if dd if=/dev/zero of="$disk" bs=1M count=256 conv=fsync 2>/dev/null; then
        now_ms; echo "GUEST-VIO-BLK-WRITE bytes=268435456 ms=$((NOW_MS - t0))"
    else
        echo "GUEST-VIO-ERROR dd write"
    fi
    sync
    echo 3 >/proc/sys/vm/drop_caches
    irqs blk-read
    now_ms; t0=$NOW_MS
    if dd if="$disk" of=/dev/null bs=1M count=256 2>/dev/null; then
        now_ms; echo "GUEST-VIO-BLK-READ bytes=268435456 ms=$((NOW_MS - t0))"
    else
        echo "GUEST-VIO-ERROR dd read"
    fi
    for rand in "read 1" "read 32" "write 1" "write 32"; do
        irqs "blk-rand-${rand% *}-${rand#* }"
        # shellcheck disable=SC2086
        if out=$(randio "$disk" "$secs" 4096 $rand); then
            echo "GUEST-VIO-BLK-RAND ${out#RANDIO }"
        else
            echo "GUEST-VIO-ERROR randio $rand"
        fi
    done
fi

irqs net-rx
now_ms; t0=$NOW_MS
if wget -q -O /dev/null http://10.0.2.2/blob; then
    now_ms; echo "GUEST-VIO-NET-RX bytes=$blob ms=$((NOW_MS - t0))"
else
    echo "GUEST-VIO-ERROR wget http://10.0.2.2/blob"
fi

irqs net-tx
if out=$(tcpblast send 10.0.2.2 5001 "$blob"); then
    echo "GUEST-VIO-NET-TX ${out#TCPBLAST }"
else
    echo "GUEST-VIO-ERROR tcpblast send 10.0.2.2 5001"
fi

irqs end
echo "GUEST-VIO-DONE"
sleep 3
