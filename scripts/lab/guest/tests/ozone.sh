# ozone: the VMM runs in the sandbox; its disk, kernel and initramfs were passed with -source. The root is the
# ext4 image on vda; a file written here must reach the host's image through the sandbox's bind mount.
echo "GUEST-OZONE-ROOT $(awk '$2 == "/" { print $1, $3 }' /proc/mounts | tail -n 1)"
echo "written-inside-ozone" >/ozone.txt
sync
echo "GUEST-OZONE-WROTE $(cat /ozone.txt)"
