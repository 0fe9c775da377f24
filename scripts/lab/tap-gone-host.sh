#!/bin/sh
# The host side of the tap-gone lab scenario (outer VM, in a network namespace of its own; installed as
# tap-gone-host): runs the VMM (its arguments) with tap0 as 10.0.2.2, deletes tap0 when the guest says
# GUEST-TAPGONE-DELETE-NOW, and prints the CPU time the VMM's main thread (which serves the net device) used in
# the 5 s after that: a device spinning on a dead tap would use all of it. Then the VM's output.
ip link set lo up
out=/tmp/tap-gone.out err=/tmp/tap-gone.err
"$VMM" "$@" </dev/null >"$out" 2>"$err" &
vmm=$!
n=0
until ip link show tap0 >/dev/null 2>&1 || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
ip addr add 10.0.2.2/24 dev tap0
ip link set tap0 up
until grep -q GUEST-TAPGONE-DELETE-NOW "$out"; do
    kill -0 $vmm 2>/dev/null || break
    sleep 0.2
done
ticks() { awk '{ print $14 + $15 }' "/proc/$vmm/task/$vmm/stat" 2>/dev/null; }
if ip link del tap0; then echo "HOST-TAPGONE deleted" >/tmp/tap-gone-host.out; fi
before=$(ticks)
sleep 5
after=$(ticks)
echo "HOST-TAPGONE-MAIN-THREAD-TICKS-IN-5S $((after - before))" >>/tmp/tap-gone-host.out
wait $vmm
rc=$?
tr -d '\r' <"$out"
cat "$err"
cat /tmp/tap-gone-host.out
rm -f "$out" "$err" /tmp/tap-gone-host.out
exit $rc
