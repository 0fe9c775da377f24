# Net hotplug (host side: HotplugScenarios.cs): the VM boots with -qmp and no tap, so eth0 is an empty net slot
# with its link down. The host plugs a tap into it; the guest sees the carrier come up, pings the host through
# it, and sees the carrier go when the host unplugs it.
carrier() { cat /sys/class/net/eth0/carrier 2>/dev/null || echo none; }
wait_carrier() {  # wait_carrier 0|1: up to 180 s
    n=0
    until [ "$(carrier)" = "$1" ] || [ $n -ge 900 ]; do sleep 0.2; n=$((n + 1)); done
    [ "$(carrier)" = "$1" ]
}
ip link set lo up
ip link set eth0 up
echo "GUEST-HPNET-READY $(carrier)"
wait_carrier 1 || { echo "GUEST-HPNET-ERROR the link did not come up"; exit 1; }
echo "GUEST-HPNET-CARRIER $(carrier)"
ip addr add 10.0.2.15/24 dev eth0
ping -c 3 -W 5 10.0.2.2 >/dev/null 2>&1
echo "GUEST-HPNET-PING rc=$?"
echo "GUEST-HPNET-PINGED"
wait_carrier 0 || { echo "GUEST-HPNET-ERROR the link did not go down"; exit 1; }
echo "GUEST-HPNET-UNPLUGGED $(carrier)"
