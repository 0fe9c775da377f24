# Host faults under virtio-blk (the host side is scripts/lab/blk-fault-host.sh). The disk with serial "full" is a
# 16 MiB sparse file on a 4 MiB tmpfs: writing 12 MiB fills the host's file system. The disk "flaky" is a
# device-mapper device whose table the host switches to "error" and back. Each step prints a line the host waits
# for; the guest then retries until the host has cleared the fault, and checks that its data reads back.
disk() { for d in /sys/block/vd*; do [ "$(cat "$d/serial" 2>/dev/null)" = "$1" ] && echo "/dev/${d##*/}"; done; }
full=$(disk full) flaky=$(disk flaky)
echo "GUEST-FAULT-DISKS full=$full flaky=$flaky"
dd if=/dev/urandom of=/tmp/pattern bs=1M count=12 2>/dev/null
want=$(sha256sum </tmp/pattern | cut -d' ' -f1)
want4=$(head -c 4194304 /tmp/pattern | sha256sum | cut -d' ' -f1)
# Retries a command every half second, up to a minute; true when it succeeded.
retry() {
    n=0
    until "$@" 2>/dev/null; do
        n=$((n + 1))
        [ $n -lt 120 ] || return 1
        sleep 0.5
    done
}

if dd if=/tmp/pattern of="$full" bs=1M oflag=direct 2>/tmp/dd.err; then
    echo "GUEST-FAULT-ENOSPC write succeeded"
else
    echo "GUEST-FAULT-ENOSPC write failed: $(grep -v records /tmp/dd.err | tail -n 1)"
fi
echo "GUEST-FAULT-ENOSPC-WAIT"
retry dd if=/tmp/pattern of="$full" bs=1M oflag=direct && echo "GUEST-FAULT-ENOSPC-RETRY succeeded"
got=$(dd if="$full" bs=1M count=12 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] && echo "GUEST-FAULT-ENOSPC-DATA intact" || echo "GUEST-FAULT-ENOSPC-DATA differs"

dd if=/tmp/pattern of="$flaky" bs=1M count=4 oflag=direct 2>/dev/null && echo "GUEST-FAULT-EIO-WRITTEN"
echo "GUEST-FAULT-EIO-ARM"
n=0
while dd if="$flaky" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null && [ $n -lt 120 ]; do
    sleep 0.5
    n=$((n + 1))
done
[ $n -lt 120 ] && echo "GUEST-FAULT-EIO-READ failed" || echo "GUEST-FAULT-EIO-READ never failed"
if dd if=/dev/zero of="$flaky" bs=4k count=1 oflag=direct 2>/dev/null; then
    echo "GUEST-FAULT-EIO-WRITE succeeded"
else
    echo "GUEST-FAULT-EIO-WRITE failed"
fi
echo "GUEST-FAULT-EIO-WAIT"
retry dd if="$flaky" of=/dev/null bs=4k count=1 iflag=direct && echo "GUEST-FAULT-EIO-RETRY succeeded"
got=$(dd if="$flaky" bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$want4" ] && echo "GUEST-FAULT-EIO-DATA intact" || echo "GUEST-FAULT-EIO-DATA differs"
