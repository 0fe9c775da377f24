# Shared helpers of the bench scripts (sourced, bash). Expects $root (the
# repository) in normal mode; in --inner mode (inside the nested lab) the
# binaries sit in the current directory.

# The options every bench script takes: --native, --lab, --inner (set by the lab stage), -h.
#   parse_bench_options <script-name> <sed range of the script's help> "$@"
# Sets $mode (auto, native, lab or inner) and the array bench_args with what is left.
parse_bench_options() {
    local name=$1 help=$2
    shift 2
    mode=auto
    while [ $# -gt 0 ]; do
        case $1 in
            --native) mode=native; shift ;;
            --lab) mode=lab; shift ;;
            --inner) mode=inner; shift ;;
            -h|--help) sed -n "$help" "$0"; exit 0 ;;
            -*) echo "$name: unknown option $1" >&2; exit 2 ;;
            *) break ;;
        esac
    done
    bench_args=("$@")
}

# Other builds of our VMM to measure next to it, given as label=path arguments:
#   parse_variants <script-name> "$@"   sets the array others (label=absolute path), or exits 2.
parse_variants() {
    local name=$1 o p
    shift
    others=()
    for o in "$@"; do
        case $o in [A-Za-z0-9]*=*) ;; *) echo "$name: '$o' is not label=path" >&2; exit 2 ;; esac
        p=${o#*=}
        case $p in /*) ;; *) p=$PWD/$p ;; esac
        [ -x "$p" ] || { echo "$name: no VMM at $p (variant ${o%%=*})" >&2; exit 2; }
        others+=("${o%%=*}=$p")
    done
}

# Copies each of $others into a temporary folder as stratovirt-<label> for stage_and_run_in_lab: appends the
# copies to the array extra and sets LAB_ARGS to label=./stratovirt-<label> for the run inside the lab.
stage_variants() {
    local vdir o
    vdir=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$vdir'" EXIT
    LAB_ARGS=
    for o in "${others[@]}"; do
        cp "${o#*=}" "$vdir/stratovirt-${o%%=*}"
        extra+=("$vdir/stratovirt-${o%%=*}")
        LAB_ARGS="$LAB_ARGS ${o%%=*}=./stratovirt-${o%%=*}"
    done
}

# For the side-by-side lab comparisons (ours against QEMU in one run): with --report only, prints the table of
# an earlier log with the caller's report function and exits; otherwise sets the array run_args for
# scripts/lab/run.sh (QEMU, plus our VMM when the binary exists).
#   lab_comparison_setup <report-only log or empty> <vmm binary>
lab_comparison_setup() {
    if [[ -n "$1" ]]; then
        [[ -f "$1" ]] || { echo "bench: no log $1" >&2; exit 2; }
        report "$1"
        exit 0
    fi
    run_args=(--with-qemu)
    if [[ -x "$2" ]]; then
        run_args+=(--vmm "$2")
    else
        echo "bench: no VMM binary at $2 (build it with scripts/build.sh): measuring QEMU alone" >&2
    fi
}

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

# Build the C floor (bench/floor/kvm-floor.c) as <dir>/kvm-floor.
build_floor() {  # build_floor <dir>
    gcc -O2 -Wall -Wextra -o "$1/kvm-floor" "$root/bench/floor/kvm-floor.c" -lpthread
}

# Build the floor, the launcher and the payloads into .cache/bench.
build_inputs() {
    ensure_tool gcc gcc
    ensure_tool objcopy binutils
    local d
    d=$(bench_dir)
    mkdir -p "$d"
    build_floor "$d"
    gcc -O2 -Wall -Wextra -o "$d/launch" "$root/bench/floor/launch.c"
    "$root/scripts/build-payloads.sh" "$d/payloads" >/dev/null
    cp "$d"/payloads/*.bin "$d"/payloads/*.bzImage "$d/"
}

# True when this machine's /dev/kvm can run a payload (checked with the floor).
native_kvm_works() {
    [ -c /dev/kvm ] || return 1
    timeout 20 "$(bench_dir)/kvm-floor" "$(bench_dir)/hello.bin" >/dev/null 2>&1
}

# With mode auto: native when this machine's /dev/kvm runs a payload, otherwise lab (said on stderr).
#   choose_mode <script-name> <the rest of the message>
choose_mode() {
    [ "$mode" = auto ] || return 0
    if native_kvm_works; then mode=native; else
        echo "$1: $(why_no_kvm); $2" >&2
        mode=lab
    fi
}

# Explain why this machine has no usable KVM.
why_no_kvm() {
    if [ ! -e /dev/kvm ]; then
        if [ -d /sys/module/kvm_pvm ] && dmesg 2>/dev/null | grep 'itself a kvm-pvm guest' >/dev/null; then
            echo "no /dev/kvm: this machine is itself a PVM guest (kvm_pvm does not bind)"
        else
            echo "no /dev/kvm on this machine"
        fi
    else
        echo "/dev/kvm exists but the C floor cannot run the hello payload on it"
    fi
}

# Run a bench script inside the nested lab (scripts/lab/run.sh), with what it needs copied into /lab:
#   stage_and_run_in_lab <script-name> <vmm-or-empty> [extra files...]
# An extra file named qemu-system-x86_64 asks for the lab's QEMU (--with-qemu), linked into /lab with its
# firmware folder as ./qemu-fw. $LAB_ENV (e.g. "N=20 WARMUP=3") is set for the script inside the lab, and $LAB_ARGS
# is added to its arguments after the VMM.
stage_and_run_in_lab() {
    local script=$1 vmm=$2
    shift 2
    local d stage
    d=$(bench_dir)
    stage=$d/lab-stage
    rm -rf "$stage"
    mkdir -p "$stage"
    cp "$root/bench/$script" "$stage/"
    cp "$root/bench/lib.sh" "$stage/bench-lib.sh"
    cp "$d/kvm-floor" "$d/launch" "$d"/*.bin "$d"/*.bzImage "$stage/"
    cp "$(command -v bash)" "$stage/bash"
    local lab_args=() setup="" arg="" f
    if [ -n "$vmm" ] && [ -x "$vmm" ]; then
        lab_args+=(--vmm "$vmm")
        arg=./stratovirt
    fi
    for f in "$@"; do
        case "${f##*/}" in
            qemu-system-x86_64)
                lab_args+=(--with-qemu)
                setup="$setup ln -sf \"\$QEMU\" qemu-system-x86_64; ln -sf \"\$QEMU_FW\" qemu-fw;" ;;
            *) cp -r "$f" "$stage/" ;;
        esac
    done
    # Libraries of the staged programs beyond glibc (which the lab has) go next to them: LD_LIBRARY_PATH=/lab.
    for f in "$stage"/*; do
        ldd "$f" 2>/dev/null | awk '/=> \// { print $3 }' | grep -v -E '/(libc|libm|ld-linux[^/]*)\.so' || true
    done | sort -u | while read -r lib; do cp -L "$lib" "$stage/"; done
    for f in "$stage"/*; do lab_args+=(--add "$f"); done
    printf 'scenario bench %s sh -c '"'"'cd /lab &&%s exec env LD_LIBRARY_PATH=/lab %s ./bash ./%s --inner %s %s'"'"'\n' \
        "${LAB_TIMEOUT:-900}" "$setup" "${LAB_ENV:-}" "$script" "$arg" "${LAB_ARGS:-}" >"$d/lab-scenario.sh"
    local rc=0
    lab_log=$d/lab-stage.console
    "$root/scripts/lab/run.sh" --scenarios "$d/lab-scenario.sh" --log "$lab_log" --timeout $((${LAB_TIMEOUT:-900} + 300)) \
        "${lab_args[@]}" >/dev/null 2>&1 || rc=$?
    tr -d '\r' <"$lab_log" | sed -n '/^@@BEGIN bench/,/^@@END bench/p' | grep -v -e '^@@' -e '^\[ *[0-9.]*\]' || true
    local end
    end=$(tr -d '\r' <"$lab_log" | grep '^@@END bench ' || true)
    case "$end" in *" rc=0 "*) ;; *) rc=1 ;; esac
    if [ "$rc" -ne 0 ]; then
        echo "bench: the lab run failed (${end:-no @@END}); log: $lab_log" >&2
    fi
    rm -rf "$stage"
    return "$rc"
}

# The VMM's memory overhead, StratoVirt's and Firecracker's rule: the Rss of every mapping smaller than 128 MiB
# (guest RAM, recognised by size, is left out). The C# footprint case (FootprintTests) keeps its own copy: it
# runs in the lab's initramfs without these scripts.
#   smaps_summary <pid> <guest-MiB>: "overhead big-other guest total" in kB, where big-other is the Rss of
#   mappings >= 128 MiB that are not guest RAM (a size near -m), which the rule would miss.
smaps_summary() {
    awk -v g=$(($2 * 1024)) '
        /^Size:/ { size = $2 }
        /^Rss:/ {
            total += $2
            if (size < 131072) small += $2
            else if (size >= g && size <= g + 8192) guest += $2
            else big += $2
        }
        END { printf "%d %d %d %d\n", small, big, guest, total }' "/proc/$1/smaps"
}

# overhead_kb <pid>: the overhead alone (0 when the process is gone).
overhead_kb() {
    local s
    s=$(smaps_summary "$1" 0 2>/dev/null) || s=0
    echo "${s%% *}"
}

# min and median of the numbers on stdin (one a line), as "min median".
min_median() {
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- -"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.3f %.3f\n", v[1], m }'
}

# Inside the lab only: keep one idle VM alive for the whole benchmark. Creating
# the first VM (and destroying the last) flips static keys in the lab kernel
# (KVM's preempt notifiers, patched into __schedule with int3); under QEMU TCG
# that patching now and then livelocks both lab CPUs in exc_int3. With a VM
# always alive, the keys stay on and the measured runs patch nothing.
start_keeper() {
    "$bin/kvm-floor" -c -m 32 "$bin/idle.bin" >/dev/null 2>&1 &
    keeper_pid=$!
}

# Inside the lab only: a watchdog that reports and kills a VMM or floor process
# alive for more than $1 seconds (default 60), so that a stall shows where it
# is stuck instead of eating the whole lab time. Prints to stderr.
start_watchdog() {
    local limit=${1:-60}
    (
        set +e +o pipefail
        declare -A seen
        while sleep 5; do
            for p in $(pidof kvm-floor stratovirt 2>/dev/null); do
                [ "$p" = "${keeper_pid:-}" ] && continue
                seen[$p]=$(( ${seen[$p]:-0} + 5 ))
                if [ "${seen[$p]}" -ge "$limit" ]; then
                    {
                        echo "watchdog: pid $p ($(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)) alive for ${seen[$p]}s; killing it"
                        for t in /proc/$p/task/*; do
                            echo "  task ${t##*/}: state $(cut -d' ' -f3 "$t/stat" 2>/dev/null) wchan $(cat "$t/wchan" 2>/dev/null)"
                            sed 's/^/      /' "$t/stack" 2>/dev/null | head -6
                        done
                    } >&2
                    kill -9 "$p" 2>/dev/null
                    unset "seen[$p]"
                fi
            done
        done
    ) &
    watchdog_pid=$!
}

# The guest initramfs of a lab comparison: the lab's usual one, and appended to it a second gzip'd cpio (the kernel
# unpacks concatenated archives in order) with the guest script as /tests/<test>.sh and the bench tools, built
# static from bench/<tool>.c, in /bin (also left in <tmp>/extra/bin for the outer VM).
#   bench_guest_initramfs <out.cpio.gz> <tmp dir> <guest script> <test name> <tool>...
bench_guest_initramfs() {
    local out=$1 tmp=$2 script=$3 test=$4 tool
    shift 4
    command -v gcc >/dev/null || { echo "bench: gcc is needed to build the bench tools (apt-get install gcc)" >&2; exit 1; }
    echo "bench: building the guest initramfs with /tests/$test.sh and $(printf '/bin/%s ' "$@")" >&2
    "$root/scripts/lab/make-guest-initramfs.sh" "$tmp/base.cpio.gz"
    mkdir -p "$tmp/extra/tests" "$tmp/extra/bin"
    for tool in "$@"; do
        gcc -static -O2 -Wall -Wextra -o "$tmp/extra/bin/$tool" "$root/bench/$tool.c" \
            || { echo "bench: cannot build bench/$tool.c statically (needs libc6-dev's static glibc)" >&2; exit 1; }
    done
    install -m 0755 "$script" "$tmp/extra/tests/$test.sh"
    (cd "$tmp/extra" && { printf 'bin/%s\n' "$@"; echo "tests/$test.sh"; } | cpio -o -H newc -R 0:0 --quiet | gzip -9n) \
        >"$tmp/extra.cpio.gz"
    cat "$tmp/base.cpio.gz" "$tmp/extra.cpio.gz" >"$out"
}
