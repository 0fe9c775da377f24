# Scenarios of bench/virtio-io.sh (which puts BENCH_REPEAT, BENCH_SECS, BENCH_TIMEOUT, BENCH_VHOST and BENCH_MACHINE
# in front of this file): the same kernel, guest initramfs (with /tests/virtio-io.sh, randio and tcpblast), 256 MiB
# and 2 vCPUs under our VMM and under QEMU on BENCH_MACHINE, alternating, BENCH_REPEAT times, each with one fresh 256 MiB scratch disk and one tap in a
# network namespace of its own (bench/virtio-io-host.sh, copied to /lab). Scenario names: <ours|qemu>-r<repeat>.
# BENCH_VHOST=1 adds, per repeat, net-only runs with the host kernel's vhost-net: oursvh-r<n> and qemuvh-r<n>.
# shellcheck shell=sh disable=SC2154

vio_blob_mib=64
vio_cmdline="console=ttyS0 reboot=k panic=1 lab.action=test lab.test=virtio-io vio.secs=$BENCH_SECS vio.blob=$((vio_blob_mib * 1048576))"

# The file the guests download, shared by every namespace (they share the filesystem).
mkdir -p /tmp/vio-www
dd if=/dev/zero of=/tmp/vio-www/blob bs=1M count="$vio_blob_mib" 2>/dev/null \
    || lab_note "bench: cannot write /tmp/vio-www/blob"

vio_run() {  # vio_run <ours|qemu|ours-vhost|qemu-vhost> <name> <tap> [<more guest cmdline>]
    unshare -n sh /lab/virtio-io-host.sh "$1" "$2" "$3" "$vio_cmdline$4" "$BENCH_MACHINE"
}
lab_note "bench: machine $BENCH_MACHINE"

ours_on=1
if [ -z "$VMM" ]; then
    lab_note "bench: no VMM binary in this lab: QEMU only"
    ours_on=0
fi
qemu_on=1
if [ -z "$QEMU" ]; then
    lab_note "bench: no QEMU in this lab: ours only"
    qemu_on=0
fi
rep=1
while [ "$rep" -le "$BENCH_REPEAT" ]; do
    if [ "$ours_on" -eq 1 ]; then
        scenario "ours-r$rep" "$BENCH_TIMEOUT" vio_run ours "ours-r$rep" tap0
        if [ "$LAB_LAST_RC" -eq 124 ]; then
            lab_note "bench: our VMM was killed after ${BENCH_TIMEOUT}s (ours-r$rep): QEMU only from here"
            ours_on=0
        fi
    fi
    if [ "$qemu_on" -eq 1 ]; then
        scenario "qemu-r$rep" "$BENCH_TIMEOUT" vio_run qemu "qemu-r$rep" tap1
        if [ "$LAB_LAST_RC" -eq 124 ]; then
            lab_note "bench: QEMU was killed after ${BENCH_TIMEOUT}s (qemu-r$rep): ours only from here"
            qemu_on=0
        fi
    fi
    if [ "$BENCH_VHOST" = 1 ]; then
        [ "$ours_on" -eq 1 ] && scenario "oursvh-r$rep" "$BENCH_TIMEOUT" vio_run ours-vhost "oursvh-r$rep" tap2 " vio.netonly=1"
        [ "$qemu_on" -eq 1 ] && scenario "qemuvh-r$rep" "$BENCH_TIMEOUT" vio_run qemu-vhost "qemuvh-r$rep" tap3 " vio.netonly=1"
    fi
    rep=$((rep + 1))
done
rm -rf /tmp/vio-www /tmp/vio-*.img
