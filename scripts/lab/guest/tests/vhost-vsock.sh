# vhost-vsock: vsock.sh against the host kernel's vsock (the host's peers are AF_VSOCK sockets, not the userspace
# backend's Unix sockets), then the driver unbound and bound again (a device reset: the VMM takes the rings back
# from the kernel and hands them over anew) and one more host connection, to port 5001.
sh /tests/vsock.sh
drv=/sys/bus/virtio/drivers/vmw_vsock_virtio_transport
dev=$(basename "$(ls -d $drv/virtio* | head -n 1)")
echo "$dev" >$drv/unbind && echo "$dev" >$drv/bind && echo "GUEST-VSOCK-REBOUND $dev"
vsock-echo listen 5001 1
echo "GUEST-VSOCK-SERVED-AFTER-REBIND rc=$?"
