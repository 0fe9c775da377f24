#!/usr/bin/env bash
# Run a scenario inside the nested lab: a QEMU TCG virtual machine with an
# emulated AMD SVM (-cpu max), where Debian's kernel loads kvm_amd and gives a
# real /dev/kvm. For machines whose own /dev/kvm is missing or cannot run the
# payloads. Everything in the lab runs 10-50x slower than native: compare
# VMMs only side by side within one lab run, as ratios.
#
#   bench/lab/run.sh <dir> <scenario.sh> [timeout-seconds]
#
# <dir> is copied to /lab in the lab VM (plus the shared libraries its ELF
# executables need); /lab/<scenario.sh> runs there with sh (busybox) in /lab.
# The console goes to stdout; the exit status is the scenario's. Env LAB_APPEND
# adds kernel parameters (e.g. nokaslr when debugging).
# Work files live in .cache/lab/ of the repository; while it runs, the QEMU
# monitor of the lab VM listens on .cache/lab/run.*/monitor.sock (for debugging
# a stalled lab: `info registers -a`).
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 <dir> <scenario.sh> [timeout-seconds]" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
src=$(cd "$1" && pwd)
scenario=$2
limit=${3:-900}
[ -f "$src/$scenario" ] || { echo "lab: $src/$scenario not found" >&2; exit 2; }

cache=$root/.cache/lab
mkdir -p "$cache"

need_pkg() {  # need_pkg <command-or-file> <package>
    if ! command -v "$1" >/dev/null 2>&1 && [ ! -e "$1" ]; then
        echo "lab: installing $2" >&2
        apt-get install -y -qq "$2" >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq "$2" >/dev/null; }
    fi
}
need_pkg qemu-system-x86_64 qemu-system-x86
need_pkg /bin/busybox busybox-static
need_pkg cpio cpio

# The Debian cloud kernel: a bzImage plus the KVM modules.
kdir=$cache/kernel
if ! ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1; then
    echo "lab: fetching Debian's cloud kernel package" >&2
    apt-get update -qq >/dev/null
    pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
    [ -n "$pkg" ] || { echo "lab: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
    dl=$(mktemp -d "$cache/dl.XXXXXX")
    (cd "$dl" && apt-get download "$pkg" >/dev/null 2>&1)
    rm -rf "$kdir"
    dpkg -x "$dl"/*.deb "$kdir"
    rm -rf "$dl"
fi
vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -1)
kver=${vmlinuz##*/vmlinuz-}
mods=$kdir/lib/modules/$kver/kernel

work=$(mktemp -d "$cache/run.XXXXXX")
qemu_pid=
cleanup() {
    trap '' INT TERM   # a second signal must not cut the cleanup short
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then kill "$qemu_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rootfs=$work/root
mkdir -p "$rootfs"/{bin,dev,proc,sys,tmp,lib/modules,lab}
cp /bin/busybox "$rootfs/bin/busybox"
for m in virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko; do
    cp "$mods/$m" "$rootfs/lib/modules/"
done
cp -a "$src"/. "$rootfs/lab/"
# Shared libraries of every dynamically linked executable in the scenario dir.
find "$src" -type f -perm -u+x | while read -r f; do
    if [ "$(head -c 4 "$f" | tail -c 3 | tr -d '\0')" = ELF ]; then
        ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true
    fi
done | sort -u | while read -r lib; do
    [ -e "$lib" ] || continue
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
done

cat > "$rootfs/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for m in irqbypass kvm kvm-amd; do insmod /lib/modules/\$m.ko || echo "lab: insmod \$m failed"; done
[ -e /dev/kvm ] || echo "lab: no /dev/kvm in the lab VM"
echo "LAB-BEGIN"
cd /lab && sh ./$scenario
echo "LAB-EXIT \$?"
poweroff -f
INIT
chmod +x "$rootfs/init"
(cd "$rootfs" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

log=$work/console.log
qemu-system-x86_64 -M q35 -accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
    -kernel "$vmlinuz" -initrd "$work/initrd.gz" -append "console=ttyS0 quiet panic=-1 ${LAB_APPEND:-}" \
    -nographic -no-reboot -monitor "unix:$work/monitor.sock,server=on,wait=off" -serial stdio \
    </dev/null >"$log" 2>&1 &
qemu_pid=$!
tail -n +1 -f "$log" --pid "$qemu_pid" &
tail_pid=$!
deadline=$((SECONDS + limit))
while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
        echo "lab: timed out after ${limit}s" >&2
        kill "$qemu_pid" 2>/dev/null || true
        break
    fi
    sleep 1
done
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
wait "$tail_pid" 2>/dev/null || true
rc=$(tr -d '\r' < "$log" | sed -n 's/^LAB-EXIT \([0-9]*\)$/\1/p' | tail -1)
if [ -z "$rc" ]; then
    echo "lab: the scenario did not finish" >&2
    exit 1
fi
exit "$rc"
