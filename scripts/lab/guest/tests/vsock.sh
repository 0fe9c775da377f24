# vsock: the guest echoes one host-initiated connection on port 5000, and sends 4 MiB to the host's echo server on
# port 6000 (the VMM's Unix socket <uds-path>_6000), checksumming what comes back.
vsock-echo listen 5000 1 &
listener=$!
dd if=/dev/urandom of=/tmp/v bs=64k count=64 2>/dev/null
echo "GUEST-VSOCK-SENT $(sha256sum </tmp/v | cut -d' ' -f1)"
echo "GUEST-VSOCK-ECHOED $(vsock-echo connect 2 6000 </tmp/v | sha256sum | cut -d' ' -f1)"
wait $listener
echo "GUEST-VSOCK-SERVED rc=$?"
