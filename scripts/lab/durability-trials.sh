#!/bin/sh
# Crash-durability trials, run in the outer lab VM (busybox ash; installed there as durability-trials):
#
#   durability-trials <trials> <direct-on|direct-off|iothread>
#
# Each trial gives a fresh, zeroed 64 MiB raw disk (a loop device over a file, so that O_DIRECT reaches a real block
# device) to a VM whose guest writes numbered, checksummed records with O_DIRECT and fdatasync and prints each
# acknowledged record (guest test durability.sh, tests/guest/durability-records.c). Once the first acknowledgement is
# out, the VMM is SIGKILLed after a random 0-2 s; then every record acknowledged on the console must be in the disk,
# intact. Configurations: the drive with direct=on, with direct=off, and direct=on served by an iothread.
# Prints per trial
#   DUR-TRIAL config=<c> trial=<i> acked=<records> lost=<records> killed-after-ms=<ms>
# A boot in which the guest never acknowledged a record (the lab's emulated SVM now and then stalls or kills a
# guest early; nothing was written, so nothing can be lost) prints DUR-TRIAL-FAILED with the VMM's exit status and
# console and is tried again, up to twice per trial. At the end:
#   DUR-SUMMARY config=<c> trials=<completed> failed=<boots without an acknowledgement> acked=<records> lost=<records>
# Exit status 0 when every trial completed and lost nothing.
trials=$1 config=$2
case "$config" in
    direct-on) drive=direct=on device='' object='' ;;
    direct-off) drive=direct=off device='' object='' ;;
    iothread) drive=direct=on device=,iothread=dur-io object='-object iothread,id=dur-io' ;;
    *) echo "usage: durability-trials <trials> <direct-on|direct-off|iothread>" >&2; exit 2 ;;
esac
case "$trials" in '' | *[!0-9]*) echo "durability-trials: <trials> must be a number, not '$trials'" >&2; exit 2 ;; esac

backing=/tmp/dur-backing.img out=/tmp/dur-console.out
completed=0 failed=0 acked_total=0 lost_total=0 i=1 attempt=1
while [ "$i" -le "$trials" ]; do
    rm -f "$backing"
    truncate -s 64M "$backing"
    disk=$(losetup -f) && losetup "$disk" "$backing" || { echo "durability-trials: losetup failed" >&2; exit 2; }
    nonce=$((RANDOM * 32768 + RANDOM + 1))
    # shellcheck disable=SC2086 # $object is two words or none
    "$VMM" -machine microvm -kernel "$KERNEL" -initrd "$INITRD" -m 256 -smp 1 -serial stdio -name "dur-$config" \
        -append "console=ttyS0 reboot=k panic=1 quiet lab.action=test lab.test=durability lab.nonce=$nonce" \
        $object -drive "id=dur,file=$disk,$drive" -device "virtio-blk-device,drive=dur,id=dur-blk$device" \
        </dev/null >"$out" 2>&1 &
    vmm=$!
    n=0
    until grep -q 'DUR-ACK 0 0' "$out" || [ $n -ge 900 ] || ! kill -0 $vmm 2>/dev/null; do
        sleep 0.2
        n=$((n + 1))
    done
    delay=$((RANDOM % 2000))
    if grep -q 'DUR-ACK 0 0' "$out"; then
        sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
    fi
    kill -KILL $vmm 2>/dev/null
    wait $vmm 2>/dev/null
    status=$?
    # Only whole acknowledgements count: the number twice, as the guest printed it.
    acked=$(tr -d '\r' <"$out" | grep -o 'DUR-ACK [0-9]* [0-9]*' | awk '$2 == $3 { a = $2 } END { print a }')
    if [ -z "$acked" ]; then
        failed=$((failed + 1))
        echo "DUR-TRIAL-FAILED config=$config trial=$i attempt=$attempt no record was acknowledged" \
            "(VMM exit status $status, $(wc -c <"$out") bytes of console); its last lines:"
        tail -n 5 "$out" | sed 's/^/DUR-CONSOLE /'
        if [ "$attempt" -lt 3 ]; then
            attempt=$((attempt + 1))
            losetup -d "$disk"
            continue
        fi
    else
        result=$(durability-records check "$disk" "$acked" "$nonce")
        lost=$(echo "$result" | sed -n 's/.* lost=\([0-9]*\).*/\1/p')
        [ -n "$lost" ] || { echo "durability-trials: the check failed: $result" >&2; lost=$((acked + 1)); }
        completed=$((completed + 1))
        acked_total=$((acked_total + acked + 1))
        lost_total=$((lost_total + lost))
        echo "DUR-TRIAL config=$config trial=$i acked=$((acked + 1)) lost=$lost killed-after-ms=$delay"
        [ "$lost" -eq 0 ] || echo "DUR-LOST config=$config trial=$i $result"
    fi
    losetup -d "$disk"
    i=$((i + 1)) attempt=1
done
rm -f "$backing" "$out"
echo "DUR-SUMMARY config=$config trials=$completed failed=$failed acked=$acked_total lost=$lost_total"
[ "$completed" -eq "$trials" ] && [ "$lost_total" -eq 0 ]
