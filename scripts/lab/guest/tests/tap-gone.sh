# A tap deleted under the running VM (the host side is scripts/lab/tap-gone-host.sh): ping the host end, tell the
# host to delete the tap, try to ping for 5 s more (it must fail, not hang the guest), then report that the guest
# still runs and its counters.
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
n=0
until ping -c 1 -W 1 10.0.2.2 >/dev/null 2>&1 || [ $n -ge 60 ]; do n=$((n + 1)); sleep 0.5; done
if ping -c 2 -W 2 10.0.2.2 >/dev/null 2>&1; then echo "GUEST-TAPGONE-PING-BEFORE ok"; else echo "GUEST-TAPGONE-PING-BEFORE failed"; fi
echo "GUEST-TAPGONE-DELETE-NOW"
sleep 3 # the host deletes the tap as soon as it sees the line above
if ping -c 5 -W 1 10.0.2.2 >/dev/null 2>&1; then echo "GUEST-TAPGONE-PING-AFTER ok"; else echo "GUEST-TAPGONE-PING-AFTER failed"; fi
echo "GUEST-TAPGONE-ALIVE $(cut -d' ' -f1 /proc/uptime)"
echo "GUEST-TAPGONE-TX-PACKETS $(cat /sys/class/net/eth0/statistics/tx_packets)"
