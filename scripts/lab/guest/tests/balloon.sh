# virtio-balloon: fills and frees memory so that there are pages to give back, then waits for the host's target
# (set at start up by the scenario) to be reached.
echo "GUEST-BALLOON-DRIVER $(basename "$(readlink /sys/bus/virtio/devices/*/driver | grep balloon | head -n 1)")"
n=0
while [ $n -lt 60 ]; do
    free_kb=$(awk '/^MemFree:/ { print $2 }' /proc/meminfo)
    echo "GUEST-BALLOON-MEMFREE-KB $free_kb"
    sleep 1
    n=$((n + 1))
    [ -e /tmp/done ] && break
done
