# Scenarios of bench/vhost-user.sh (which puts BENCH_REPEAT, BENCH_SECS, BENCH_FILES and BENCH_TIMEOUT in front of
# this file): the same kernel, guest initramfs (with /tests/vhost-user-bench.sh, fsmeta and randio), 512 MiB and
# 2 vCPUs under our VMM and under QEMU microvm, alternating, BENCH_REPEAT times, each against freshly started
# virtiofsd and qemu-storage-daemon (bench/vhost-user-host.sh, copied to /lab). Names: <ours|qemu>-r<repeat>.
# shellcheck shell=sh disable=SC2154

vub_cmdline="console=ttyS0 reboot=k panic=1 lab.action=test lab.test=vhost-user-bench vub.secs=$BENCH_SECS vub.files=$BENCH_FILES"

on_ours=1 on_qemu=1
[ -n "$VMM" ] || { lab_note "bench: no VMM binary in this lab: QEMU only"; on_ours=0; }
[ -n "$QEMU" ] || { lab_note "bench: no QEMU in this lab: ours only"; on_qemu=0; }
rep=1
while [ "$rep" -le "$BENCH_REPEAT" ]; do
    for kind in ours qemu; do
        eval "on=\$on_$kind"
        [ "$on" -eq 1 ] || continue
        scenario "$kind-r$rep" "$BENCH_TIMEOUT" sh /lab/vhost-user-host.sh "$kind" "$kind-r$rep" "$vub_cmdline"
        if [ "$LAB_LAST_RC" -eq 124 ]; then
            lab_note "bench: $kind was killed after ${BENCH_TIMEOUT}s ($kind-r$rep): not run again"
            eval "on_$kind=0"
        fi
    done
    rep=$((rep + 1))
done
