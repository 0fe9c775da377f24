# virtio-fs whose backend the host kills: mounts labfs, reads the host's text, says so, then waits (touching the
# share no more) for the host to end the VM through QMP.
mkdir -p /mnt/fs
if mount -t virtiofs labfs /mnt/fs; then echo "GUEST-FS-MOUNT ok"; else echo "GUEST-FS-MOUNT failed"; fi
echo "GUEST-FS-HOLDING $(cat /mnt/fs/from-host.txt 2>/dev/null)"
while :; do sleep 60; done
