#!/usr/bin/env bash
# Runs scenarios in the nested lab: an outer VM under QEMU TCG with emulated AMD SVM (-cpu max), whose Debian
# kernel loads kvm_amd and so has a working /dev/kvm; the VMM under test boots inner guests there.
#
#   scripts/lab/run.sh --scenarios <file.sh> --log <out.log> [--vmm <stratovirt binary>] [--with-qemu]
#                      [--with-strace] [--timeout <seconds>] [--guest-initrd <cpio.gz>]
#                      [--generic-guest-initrd <cpio.gz>] [--add <file>]... [--gzip]
#
# The scenario file is sourced by busybox ash in the outer VM after scripts/lab/outer/lib.sh (see there for
# scenario, scenario_input and the @@ markers) with $VMM, $KERNEL, $INITRD, with --generic-guest-initrd
# $GENERIC_KERNEL and $GENERIC_INITRD (Debian's generic kernel, see make-outer-initramfs.sh), and with --with-qemu
# $QEMU and $QEMU_FW set. The outer console is shown on stdout and copied to the log; the outer VM is killed after
# --timeout seconds (default 1200). Exit status 0 when "@@LAB DONE" was seen, 1 otherwise.
# LAB_OUTER_QEMU names another emulator for the outer VM (default qemu-system-x86_64 from PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/lab/host.sh
source "$here/host.sh"

usage() {
    echo "usage: $0 --scenarios <file.sh> --log <out.log> [--vmm <binary>] [--with-qemu] [--with-strace] [--timeout <s>]" \
        "[--guest-initrd <cpio.gz>] [--generic-guest-initrd <cpio.gz>] [--add <file>]... [--gzip]" >&2
    exit 2
}
scenarios='' log='' limit=1200
build_args=()
while (($#)); do
    case "$1" in
        --scenarios) (($# >= 2)) || usage; scenarios=$2; shift 2 ;;
        --log) (($# >= 2)) || usage; log=$2; shift 2 ;;
        --timeout) (($# >= 2)) || usage; limit=$2; shift 2 ;;
        --vmm | --guest-initrd | --generic-guest-initrd | --add) (($# >= 2)) || usage; build_args+=("$1" "$2"); shift 2 ;;
        --with-qemu | --with-strace | --gzip) build_args+=("$1"); shift ;;
        *) usage ;;
    esac
done
[[ -n "$scenarios" && -n "$log" ]] || usage
[[ "$limit" =~ ^[0-9]+$ ]] || lab_die "--timeout wants whole seconds, not '$limit'"

lab_kernel_env
mkdir -p "$lab_cache/tmp" "$(dirname "$log")"
work="$(mktemp -d "$lab_cache/tmp/run.XXXXXX")"
trap 'rm -rf "$work"' EXIT

"$here/make-outer-initramfs.sh" --out "$work/outer.cpio" --scenarios "$scenarios" "${build_args[@]}"

# A scenario prints at least every few seconds, and its watchdog reports a stuck one after its timeout; an outer VM
# that prints nothing for this long is itself wedged (seen under TCG: idle, its clock no longer ticking), so it is
# killed rather than left to the overall timeout, and the caller can boot it again.
silence=${LAB_SILENCE_LIMIT:-300}
lab_say "booting the outer VM (QEMU TCG, -cpu max, 2 vCPUs, 6 GiB; timeout ${limit}s, or ${silence}s without output)"
start=$SECONDS
set +e
# Only this run's QEMU has this run's initramfs on its command line.
lab_run_watched "$log" "$limit" "$silence" "$work/outer.cpio" \
    "${LAB_OUTER_QEMU:-qemu-system-x86_64}" -M q35 -accel tcg,thread=multi -cpu max -smp 2 -m 6144 \
    -kernel "$LAB_VMLINUZ" -initrd "$work/outer.cpio" -append "console=ttyS0 quiet panic=1" -nographic -no-reboot
qemu_rc=$LAB_VM_RC wedged=$LAB_VM_WEDGED
set -e
elapsed=$((SECONDS - start))

if [[ -n "$wedged" ]]; then
    lab_say "error: the outer VM printed nothing for ${silence}s and was killed"
elif ((qemu_rc == 124 || qemu_rc == 137)); then
    lab_say "error: the outer VM was killed after the ${limit}s timeout"
elif ((qemu_rc != 0)); then
    lab_say "error: qemu-system-x86_64 exited with status $qemu_rc"
fi
outer_init="$(tr -d '\r' <"$log" | sed -n 's/^@@LAB INIT uptime=\([0-9.]*\).*/\1/p' | head -1)"
lab_say "outer VM ran ${elapsed}s (host wall); its init started at ${outer_init:-?}s uptime; log: $log"
if tr -d '\r' <"$log" | grep -q '^@@LAB DONE'; then
    exit 0
fi
# With panic=1 and -no-reboot a panicking outer kernel ends the VM at once instead of idling until the timeout.
panic_line="$(tr -d '\r' <"$log" | sed -n '/^@@/h; /^@@/!H; ${x; p}' | grep -m1 'Kernel panic' || true)"
[[ -z "$panic_line" ]] || lab_say "error: the console ends with a kernel panic: $panic_line"
lab_say "error: no '@@LAB DONE' in the console: the scenarios did not finish"
exit 1
