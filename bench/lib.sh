# Shared helpers of the bench scripts (sourced, bash). Expects $root (the
# repository) in normal mode; in --inner mode (inside the nested lab) the
# binaries sit in the current directory.

# The directory of built benchmark inputs: floor, launch, payloads.
bench_dir() { echo "$root/.cache/bench"; }

# Install a Debian package when a command is missing. Best effort for optional tools.
ensure_tool() {  # ensure_tool <command> <package> [optional]
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "bench: installing $2 (for $1)" >&2
    if apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$2" >/dev/null 2>&1; }; then
        return 0
    fi
    if [ "${3:-}" = optional ]; then
        echo "bench: could not install $2; going on without $1" >&2
        return 1
    fi
    echo "bench: could not install $2, which is needed for $1" >&2
    exit 1
}

# Build the floor, the launcher and the payloads into .cache/bench.
build_inputs() {
    ensure_tool gcc gcc
    ensure_tool objcopy binutils
    local d
    d=$(bench_dir)
    mkdir -p "$d"
    gcc -O2 -Wall -Wextra -o "$d/kvm-floor" "$root/bench/floor/kvm-floor.c" -lpthread
    gcc -O2 -Wall -Wextra -o "$d/launch" "$root/bench/floor/launch.c"
    "$root/scripts/build-payloads.sh" "$d/payloads" >/dev/null
    cp "$d"/payloads/*.bin "$d"/payloads/*.bzImage "$d/"
}

# True when this machine's /dev/kvm can run a payload (checked with the floor).
native_kvm_works() {
    [ -c /dev/kvm ] || return 1
    timeout 20 "$(bench_dir)/kvm-floor" "$(bench_dir)/hello.bin" >/dev/null 2>&1
}

# Explain why this machine has no usable KVM.
why_no_kvm() {
    if [ ! -e /dev/kvm ]; then
        if [ -d /sys/module/kvm_pvm ] && dmesg 2>/dev/null | grep -q 'itself a kvm-pvm guest'; then
            echo "no /dev/kvm: this machine is itself a PVM guest (kvm_pvm does not bind)"
        else
            echo "no /dev/kvm on this machine"
        fi
    else
        echo "/dev/kvm exists but the C floor cannot run the hello payload on it"
    fi
}

# Copy what a bench script needs into a fresh stage directory for the lab and
# run it there: stage_and_run_in_lab <script-name> <vmm-or-empty> [extra files...]
# $LAB_ENV (e.g. "N=20 WARMUP=3") is set for the script inside the lab.
stage_and_run_in_lab() {
    local script=$1 vmm=$2
    shift 2
    local d stage
    d=$(bench_dir)
    stage=$d/lab-stage
    rm -rf "$stage"
    mkdir -p "$stage"
    cp "$root/bench/$script" "$root/bench/lib.sh" "$stage/"
    cp "$d/kvm-floor" "$d/launch" "$d"/*.bin "$d"/*.bzImage "$stage/"
    cp "$(command -v bash)" "$stage/bash"
    local arg=
    if [ -n "$vmm" ] && [ -x "$vmm" ]; then
        cp "$vmm" "$stage/stratovirt"
        arg=./stratovirt
    fi
    local f
    for f in "$@"; do cp -r "$f" "$stage/"; done
    printf '#!/bin/sh\nexec env %s ./bash ./%s --inner %s\n' "${LAB_ENV:-}" "$script" "$arg" > "$stage/scenario.sh"
    local rc=0
    "$root/bench/lab/run.sh" "$stage" scenario.sh "${LAB_TIMEOUT:-900}" | tr -d '\r' | sed -u -n '/LAB-BEGIN/,/^LAB-EXIT /p' | grep --line-buffered -v 'LAB-' || rc=$?
    rm -rf "$stage"
    return $rc
}

# min and median of the numbers on stdin (one a line), as "min median".
min_median() {
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- -"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.3f %.3f\n", v[1], m }'
}
