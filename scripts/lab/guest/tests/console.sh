# virtio-console: the driver makes /dev/hvc0; what is written there reaches the VMM's chardev (a file the scenario
# prints afterwards).
n=0
until [ -c /dev/hvc0 ] || [ $n -ge 50 ]; do n=$((n + 1)); sleep 0.1; done
echo "GUEST-HVC $(ls /dev/hvc0 2>/dev/null)"
echo "hello-from-hvc0 $((6 * 7))" >/dev/hvc0 && echo "GUEST-HVC-WRITE ok"
# console=hvc0: kernel messages reach hvc0 too once the driver has registered it (until devices shut down at
# power-off).
echo "<6>kmsg-via-hvc0" >/dev/kmsg
