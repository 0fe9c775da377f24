# The seccomp scenario (tests/StratoVirt.Tests/Lab/SeccompLabTests.cs, bench/syscalls.sh): a Debian guest with a
# block device on an iothread, a second one on the main loop, a tap, a console and an rng, under seccomp. Once the
# guest is up, strace attaches to every thread of the VMM and records what each one calls while the guest drives
# every device (scripts/lab/guest/tests/syscalls.sh) and QMP pauses, resumes and queries the VM. The host side runs
# in a network namespace of its own (unshare -n) with tap0 as 10.0.2.2. After the VM it prints the guest's result
# lines, the VMM's seccomp log line, and per thread name the distinct calls strace saw:
#   SECCOMP-SEEN <thread name>|<call> <count>
# Needs /lab/rootfs.ext4 (make-guest-initramfs.sh --ext4) and strace in the outer VM (run.sh --with-strace).
# shellcheck shell=sh
cat >/tmp/lab-seccomp-host.sh <<'SECHOST'
ip link set lo up
cp /lab/rootfs.ext4 /tmp/sc-root.img
printf 'STRATOVIRT-RO-DISK' >/tmp/sc-ro.img
truncate -s 8M /tmp/sc-ro.img
rm -f /tmp/sc-qmp.sock /tmp/sc.out /tmp/sc-st.txt /tmp/sc-hvc0.out
"$VMM" "$@" >/tmp/sc.out 2>&1 &
vmm=$!
n=0
until ip link show tap0 >/dev/null 2>&1 || [ $n -ge 600 ]; do sleep 0.1; n=$((n + 1)); done
ip addr add 10.0.2.2/24 dev tap0
ip link set tap0 up
n=0
until grep -q GUEST-SYSCALLS-READY /tmp/sc.out || [ $n -ge 1800 ]; do sleep 0.1; n=$((n + 1)); done
strace -f -Y -qq -o /tmp/sc-st.txt -p $vmm &
tracer=$!
sleep 1
qmp-send /tmp/sc-qmp.sock '{"execute":"query-status"}' '{"execute":"query-cpus"}' '{"execute":"stop"}' \
    '{"execute":"cont"}' >/dev/null
n=0
until grep -q GUEST-SYSCALLS-DONE /tmp/sc.out || [ $n -ge 1800 ]; do sleep 0.1; n=$((n + 1)); done
qmp-send /tmp/sc-qmp.sock '{"execute":"query-balloon"}' '{"execute":"quit"}' >/dev/null
wait $vmm
rc=$?
wait $tracer
grep -E 'GUEST-SYSCALLS|seccomp' /tmp/sc.out | tr -d '\r'
echo "SECCOMP-HVC0 $(grep -c hello-from-hvc0 /tmp/sc-hvc0.out 2>/dev/null)"
grep -E '^[0-9]+<[^>]*> +[a-z0-9_]+\(' /tmp/sc-st.txt |
    sed -E 's/^[0-9]+<([^>]*)> +([a-z0-9_]+)\(.*/\1|\2/' | sort | uniq -c |
    awk '{ c = $1; $1 = ""; sub(/^ /, ""); print "SECCOMP-SEEN " $0 " " c }'
rm -f /tmp/sc-root.img /tmp/sc-ro.img /tmp/sc-st.txt /tmp/sc-hvc0.out
exit $rc
SECHOST
scenario seccomp-strace 420 env STRATOVIRT_LOG_LEVEL=info unshare -n sh /tmp/lab-seccomp-host.sh \
    -machine microvm -kernel "$KERNEL" -initrd "$INITRD" \
    -append "console=ttyS0 reboot=k panic=1 lab.action=test lab.test=syscalls root=/dev/vda" \
    -m 256 -smp 2 -serial stdio -name seccomp -D \
    -object iothread,id=io0 -drive id=root,file=/tmp/sc-root.img,direct=off \
    -device virtio-blk-device,drive=root,id=vda,iothread=io0 \
    -drive id=ro,file=/tmp/sc-ro.img,readonly=on -device virtio-blk-device,drive=ro,id=vdb \
    -netdev tap,id=net0,ifname=tap0 -device virtio-net-device,netdev=net0,id=eth0 \
    -chardev file,id=con0,path=/tmp/sc-hvc0.out -device virtio-serial-device -device virtconsole,chardev=con0,id=port0 \
    -object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-device,rng=rng0,id=rng1 \
    -qmp unix:/tmp/sc-qmp.sock,server,nowait
