# seccomp: the host attaches strace to the running VMM once it sees GUEST-SYSCALLS-READY, then this guest drives
# every device of the scenario: the ext4 root on vda (iothread), vdb (main loop), the net tap, hvc0 and hwrng.
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
echo "GUEST-SYSCALLS-READY"
sleep 5
dd if=/dev/urandom of=/data.bin bs=1M count=8 2>/dev/null
sync
echo 3 >/proc/sys/vm/drop_caches
echo "GUEST-SYSCALLS-BLK $(sha256sum /data.bin | cut -d' ' -f1 | head -c 16)"
fstrim / 2>/dev/null
rm -f /data.bin
echo "GUEST-SYSCALLS-VDB $(dd if=/dev/vdb bs=512 count=1 2>/dev/null | head -c 18)"
echo "GUEST-SYSCALLS-RNG $(dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c)"
echo "hello-from-hvc0" >/dev/hvc0
if ping -c 3 -W 2 10.0.2.2 >/dev/null 2>&1; then echo "GUEST-SYSCALLS-PING ok"; else echo "GUEST-SYSCALLS-PING failed"; fi
echo "GUEST-SYSCALLS-DONE"
