# Guest side of bench/vhost-user.sh: /tests/vhost-user-bench.sh of the guest initramfs (appended by that script),
# run by the guest's /init with lab.action=test lab.test=vhost-user-bench. Expects a vhost-user-fs device with the
# tag benchfs (virtiofsd sharing an empty folder) and a vhost-user-blk disk of 256 MiB (qemu-storage-daemon's
# raw export), bench/vhost-user-host.sh.
#
# Kernel command line: vub.secs=<random-read seconds> (default 10), vub.files=<metadata files> (default 5000).
# Lines:
#   GUEST-VUB-FIG <metric> <value>     one figure; metrics (times from /proc/uptime, 10 ms resolution):
#       fs-write-ms, fs-read-ms        dd bs=1M of 256 MiB onto the share (conv=fsync) / back after drop_caches
#       fs-create-ms, fs-stat-ms, fs-unlink-ms   fsmeta (bench/fsmeta.c) over vub.files files on the share
#       blk-write-ms, blk-read-ms      dd bs=1M of 256 MiB, oflag=direct / iflag=direct, onto / from the disk
#       blk-randread1-iops, blk-randread32-iops  randio 4 KiB O_DIRECT random reads at depth 1 and 32, vub.secs each
#   GUEST-VUB-IRQS <step> <n>          virtio interrupts (all devices, all CPUs) taken during the step
#   GUEST-VUB-FEATURES <dev> <driver> event_idx=<0|1> version1=<0|1>   what the driver negotiated
#   GUEST-VUB-QUEUES <dev> <names of its queues' interrupts>
#   GUEST-VUB-ERROR <what>             a step failed (its figure is missing)

secs=10 files=5000 mib=256
read -r cmdline </proc/cmdline
for arg in $cmdline; do
    case "$arg" in
        vub.secs=*) secs=${arg#vub.secs=} ;;
        vub.files=*) files=${arg#vub.files=} ;;
    esac
done

now_ms() {
    read -r up _ </proc/uptime
    cs=${up#*.}
    # "12.05" -> 12050; the 1 prefix keeps "05" from reading as octal.
    NOW_MS=$((${up%.*} * 1000 + 1$cs * 10 - 1000))
}

irq_total() {
    IRQ_TOTAL=$(awk '/virtio/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }' /proc/interrupts)
}

# step <name> <command...>: runs the command, prints its wall time as <name>-ms and the interrupts it took.
step() {
    name=$1
    shift
    irq_total; i0=$IRQ_TOTAL
    now_ms; t0=$NOW_MS
    if "$@" 2>/dev/null; then
        now_ms; irq_total
        echo "GUEST-VUB-FIG $name-ms $((NOW_MS - t0))"
        echo "GUEST-VUB-IRQS $name $((IRQ_TOTAL - i0))"
    else
        echo "GUEST-VUB-ERROR $name: $*"
    fi
}

# Bits 29 (VIRTIO_RING_F_EVENT_IDX) and 32 (VIRTIO_F_VERSION_1) of each device's negotiated features (a string of
# 0/1 from bit 0).
for d in /sys/bus/virtio/devices/*; do
    [ -e "$d/features" ] || continue
    drv=$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null)
    echo "GUEST-VUB-FEATURES ${d##*/} ${drv:-none} event_idx=$(cut -c30 "$d/features") version1=$(cut -c33 "$d/features")"
done

mkdir -p /mnt/fs
if mount -t virtiofs benchfs /mnt/fs; then
    step fs-write dd if=/dev/zero of=/mnt/fs/big bs=1M count=$mib conv=fsync
    sync
    echo 3 >/proc/sys/vm/drop_caches
    step fs-read dd if=/mnt/fs/big of=/dev/null bs=1M
    rm -f /mnt/fs/big
    mkdir -p /mnt/fs/meta
    irq_total; i0=$IRQ_TOTAL
    if out=$(fsmeta /mnt/fs/meta "$files"); then
        irq_total
        for phase in create stat unlink; do
            v=${out#*"${phase}_ms="}
            echo "GUEST-VUB-FIG fs-$phase-ms ${v%% *}"
        done
        echo "GUEST-VUB-IRQS fs-meta $((IRQ_TOTAL - i0))"
    else
        echo "GUEST-VUB-ERROR fsmeta /mnt/fs/meta $files"
    fi
    umount /mnt/fs || echo "GUEST-VUB-ERROR umount /mnt/fs"
else
    echo "GUEST-VUB-ERROR mount -t virtiofs benchfs"
fi

# The disk: the virtio disk of 256 MiB (524288 sectors).
disk=
for b in /sys/block/vd*; do
    [ -e "$b/size" ] && [ "$(cat "$b/size")" = $((mib * 2048)) ] && disk=/dev/${b##*/}
done
if [ -n "$disk" ]; then
    echo "GUEST-VUB-QUEUES ${disk#/dev/} $(ls "/sys/block/${disk#/dev/}/mq" | wc -l) nr_requests=$(cat "/sys/block/${disk#/dev/}/queue/nr_requests")"
    step blk-write dd if=/dev/zero of="$disk" bs=1M count=$mib oflag=direct
    step blk-read dd if="$disk" of=/dev/null bs=1M count=$mib iflag=direct
    for depth in 1 32; do
        if out=$(randio "$disk" "$secs" 4096 read $depth); then
            v=${out#*iops=}
            echo "GUEST-VUB-FIG blk-randread$depth-iops ${v%% *}"
        else
            echo "GUEST-VUB-ERROR randio read $depth"
        fi
    done
else
    echo "GUEST-VUB-ERROR no $mib MiB virtio disk: $(ls /sys/block 2>/dev/null | tr '\n' ' ')"
fi
echo "GUEST-VUB-DONE"
