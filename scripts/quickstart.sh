#!/usr/bin/env bash
# From a fresh checkout to a Linux guest's shell: installs what is missing, builds out/stratovirt, fetches
# Debian's cloud kernel, builds a busybox initramfs, and boots it with an interactive shell on the console.
# Where this host's KVM cannot boot stock kernels (PVM-backed, or no /dev/kvm) the boot runs inside the nested
# lab instead (scripts/lab/run.sh), typing `uname -a` and `poweroff -f` into the guest's shell.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lab/host.sh
source scripts/lab/host.sh

say() { echo "quickstart: $*" >&2; }
die() { echo "quickstart: error: $*" >&2; exit 1; }

say "checking packages (qemu-system-x86, busybox-static, cpio, e2fsprogs, and clang and lld for NativeAOT)"
lab_need_packages qemu-system-x86 busybox-static cpio e2fsprogs clang lld
command -v dotnet >/dev/null 2>&1 || die "the .NET SDK (dotnet) is not installed"

say "building out/stratovirt"
[[ -f scripts/build.sh ]] || die "scripts/build.sh is missing"
bash scripts/build.sh || die "scripts/build.sh failed"
vmm="$root/out/stratovirt"
[[ -x "$vmm" ]] || die "scripts/build.sh made no $vmm"

say "fetching the guest kernel"
eval "$(scripts/lab/fetch.sh)"
initrd="$lab_cache/guest.cpio.gz"
say "building the guest initramfs"
scripts/lab/make-guest-initramfs.sh "$initrd"

cmdline="console=ttyS0 reboot=k panic=1 lab.action=shell"

if [[ -d /sys/module/kvm_pvm || ! -e /dev/kvm ]]; then
    if [[ -d /sys/module/kvm_pvm ]]; then
        why="this host's KVM is PVM-backed and cannot boot stock kernels"
    else
        why="this host has no /dev/kvm"
    fi
    say "$why; booting inside the nested lab (QEMU TCG + nested SVM) instead"
    log="$lab_cache/quickstart.log"
    status=0
    scripts/lab/run.sh --vmm "$vmm" --scenarios scripts/lab/scenarios/quickstart.sh --log "$log" \
        --guest-initrd "$initrd" --timeout 900 || status=$?
    end="$(tr -d '\r' <"$log" | grep '^@@END quickstart ' || true)"
    answer="$(tr -d '\r' <"$log" | sed -n '/^@@BEGIN quickstart/,/^@@END quickstart/p' | grep -m1 '^Linux ' || true)"
    [[ -n "$answer" ]] && say "the guest answered uname -a: $answer"
    [[ "$status" -eq 0 && -n "$end" ]] || die "the lab did not finish (log: $log)"
    [[ "$end" == *" rc=0 "* && -n "$answer" ]] || die "the guest run failed: ${end#@@END } (log: $log)"
    say "done: ${end#@@END } (log: $log)"
    exit 0
fi

say "booting the guest: out/stratovirt -machine microvm ... -serial stdio (leave the shell with poweroff -f)"
cmd=("$vmm" -machine microvm -kernel "$LAB_VMLINUZ" -append "$cmdline" -initrd "$initrd" -m 256 -smp 2
    -serial stdio)
if [[ -t 0 ]]; then
    exec "${cmd[@]}"
fi

# stdin is not a terminal: type the two commands once the guest's shell is up, as in the lab.
out="$(mktemp)"
trap 'rm -f "$out" "$out.done"' EXIT
running() { [[ ! -e "$out.done" ]] && kill -0 "$$" 2>/dev/null; }
type_commands() {
    local waited=0
    until grep -q GUEST-SHELL "$out" 2>/dev/null; do
        if ! running || ((waited >= 600)); then return 0; fi
        sleep 0.2
        waited=$((waited + 1))
    done
    sleep 1
    printf 'uname -a\n'
    sleep 1
    printf 'poweroff -f\n'
    # Keep the VMM's stdin open until it has finished.
    while running; do sleep 0.2; done
}
status=0
"${cmd[@]}" < <(type_commands) | tee "$out" || status=$?
touch "$out.done"
exit "$status"
