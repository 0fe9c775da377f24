# virtio-rng: the guest's hw_random core picks the virtio source; reading /dev/hwrng goes through the device.
echo "GUEST-RNG-CURRENT $(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
bytes=$(dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c)
echo "GUEST-RNG-BYTES $bytes"
distinct=$(dd if=/dev/hwrng bs=256 count=1 2>/dev/null | od -An -tx1 -v | tr -s ' ' '\n' | sort -u | grep -c .)
echo "GUEST-RNG-DISTINCT $distinct"
# Unbind and bind the driver again: the device is reset and set up from scratch, and must work afterwards.
drv=/sys/bus/virtio/drivers/virtio_rng
dev=$(basename "$(ls -d $drv/virtio* | head -n 1)")
echo "$dev" >$drv/unbind && echo "$dev" >$drv/bind && echo "GUEST-RNG-REBOUND $dev"
sleep 1
echo "GUEST-RNG-BYTES-AFTER-REBIND $(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c)"
