# Host side of one bench/vhost-user.sh run, in the lab's outer VM (busybox sh), copied there as
# /lab/vhost-user-host.sh:
#
#   sh /lab/vhost-user-host.sh <ours|qemu> <scenario-name> <guest-cmdline>
#
# Starts the two vhost-user backends afresh, the same way for either VMM: virtiofsd (-o sandbox=chroot, as the
# lab tests use it) sharing an empty folder on /tmp/vub-fs.sock, and qemu-storage-daemon exporting a fresh sparse
# 256 MiB raw image over vhost-user-blk on /tmp/vub-blk.sock. Then the VMM with 512 MiB of shared guest RAM (a
# memfd), 2 vCPUs, a vhost-user-fs-device (tag benchfs) and a vhost-user-blk disk; default queue sizes and counts
# (128, one queue) for both. After the VMM: the backends' last log lines, prefixed HOST-VUB-VIRTIOFSD /
# HOST-VUB-QSD. Exit status: the VMM's.
# shellcheck shell=sh

kind=$1 name=$2 cmdline=$3
share=/tmp/vub-share img=/tmp/vub-disk.img fs_sock=/tmp/vub-fs.sock blk_sock=/tmp/vub-blk.sock
mem=512

rm -rf "$share" "$img" "$fs_sock" "$blk_sock"
mkdir -p "$share"
truncate -s 256M "$img" || { echo "HOST-VUB-ERROR cannot create $img"; exit 1; }
/usr/lib/qemu/virtiofsd --socket-path="$fs_sock" -o source="$share" -o sandbox=chroot >/tmp/vub-virtiofsd.log 2>&1 &
vfsd=$!
qemu-storage-daemon --blockdev driver=file,node-name=disk0,filename="$img" \
    --export type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path="$blk_sock",writable=on \
    >/tmp/vub-qsd.log 2>&1 &
qsd=$!
n=0
until { [ -S "$fs_sock" ] && [ -S "$blk_sock" ]; } || [ $n -ge 100 ]; do sleep 0.1; n=$((n + 1)); done

case "$kind" in
    ours)
        STRATOVIRT_LOG_LEVEL=info "$VMM" -machine microvm,mem-share=on -kernel "$KERNEL" -initrd "$INITRD" \
            -append "$cmdline" -m $mem -smp 2 -serial stdio -name "$name" -D \
            -chardev socket,id=vfs,path="$fs_sock",server,nowait -device vhost-user-fs-device,chardev=vfs,tag=benchfs,id=fs0 \
            -chardev socket,id=vub,path="$blk_sock",server,nowait -device vhost-user-blk-device,chardev=vub,id=vub0
        ;;
    qemu)
        # acpi=on: the DSDT describes the virtio-mmio devices. force-legacy=false: virtio 1.x over virtio-mmio
        # version 2 (virtiofsd refuses legacy devices). QEMU 7.2 calls the virtio-mmio vhost-user disk
        # vhost-user-blk; its num-queues default (65535) means "what the backend offers", one here.
        "$QEMU" -L "$QEMU_FW" -M microvm,acpi=on,memory-backend=mem -enable-kvm -cpu host -m $mem -smp 2 \
            -object memory-backend-memfd,id=mem,size=${mem}M,share=on -kernel "$KERNEL" -initrd "$INITRD" \
            -append "$cmdline" -nographic -no-reboot -nodefaults -serial stdio -global virtio-mmio.force-legacy=false \
            -chardev socket,id=vfs,path="$fs_sock" -device vhost-user-fs-device,chardev=vfs,tag=benchfs \
            -chardev socket,id=vub,path="$blk_sock" -device vhost-user-blk,chardev=vub
        ;;
    *)
        echo "HOST-VUB-ERROR unknown VMM kind '$kind'"
        exit 2
        ;;
esac
rc=$?
kill "$vfsd" "$qsd" 2>/dev/null
wait "$vfsd" "$qsd" 2>/dev/null
tail -n 3 /tmp/vub-virtiofsd.log | sed 's/^/HOST-VUB-VIRTIOFSD /'
tail -n 3 /tmp/vub-qsd.log | sed 's/^/HOST-VUB-QSD /'
rm -rf "$share" "$img" "$fs_sock" "$blk_sock" /tmp/vub-virtiofsd.log /tmp/vub-qsd.log
exit "$rc"
