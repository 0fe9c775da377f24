#!/usr/bin/env bash
# Issue 17's aarch64 benchmark, in ONE Arm nested-lab run (scripts/lab/arm/run.sh --with-qemu; wrap it in
# `flock /tmp/lab.lock`): Debian's arm64 Image and the Arm lab's guest initramfs, 256 MiB, 1 and 2 vCPUs, booted to the
# guest's init under our out/aarch64/stratovirt (-machine microvm) and under Debian's arm64 QEMU (-M virt,gic-version=3
# -enable-kvm -cpu host -nodefaults, direct kernel boot), alternating; then the idle overhead of one VM of each.
#
#   bench/arm-boot.sh [--vmm <arm64 stratovirt>] [--repeat <n>] [--log <file>] [--timeout <s>]
#   bench/arm-boot.sh --report <log>      only prints the table of an earlier run's log
#
# Prints per VMM and vCPU count the wall time from starting the VMM to the guest's GUEST-INIT line, the ratios
# ours/QEMU with PASS/FAIL against <= 0.6x, the idle overheads (Rss of mappings < 128 MiB) and their ratio. It is
# bench/lab-boot.sh --arch arm64 (the same scenarios and report); the log defaults to .cache/lab-arm/bench/arm-boot.log.
set -euo pipefail
for a in "$@"; do
    case "$a" in
        --arch | --machine) echo "bench: $0 takes no $a (it is bench/lab-boot.sh --arch arm64)" >&2; exit 2 ;;
    esac
done
exec "$(dirname "$0")/lab-boot.sh" --arch arm64 "$@"
