# Template clones (the host side is SnapshotScenarios' template host script): the guest mounts its disk, ticks on
# the console in the background and waits for a name typed on the console. The host snapshots it while it waits and
# restores three clones from that one snapshot, each with its own copy of the disk; each clone is typed its own
# name, writes it with its uptime to its disk, syncs, and waits for a second line before it stops ticking and ends.
stty -echo 2>/dev/null
mkdir -p /disk
if ! mount -t ext4 /dev/vda /disk; then echo "GUEST-TMPL-MOUNT failed"; exit 1; fi
rm -f /disk/clone.txt
sync
(
    i=0
    while :; do
        read -r up _ </proc/uptime
        echo "GUEST-TMPL-TICK $i $up"
        i=$((i + 1))
        sleep 0.5
    done
) &
ticker=$!
echo "GUEST-TMPL-READY"
read -r name
read -r up _ </proc/uptime
echo "$name $up" >/disk/clone.txt
sync
echo "GUEST-TMPL-WROTE $name"
read -r _
kill $ticker
umount /disk
