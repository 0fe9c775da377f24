# Host-side helpers shared by the lab scripts (sourced, not run).
# shellcheck shell=bash

lab_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck disable=SC2034 # used by the scripts that source this file
lab_cache="$lab_root/.cache/lab"

lab_say() { echo "lab: $*" >&2; }
lab_die() { echo "lab: error: $*" >&2; exit 1; }

# Sets LAB_KVER, LAB_VMLINUZ, LAB_MODULES (see fetch.sh), running fetch.sh unless a caller already did; with
# --generic also LAB_GENERIC_KVER, LAB_GENERIC_VMLINUZ, LAB_GENERIC_MODULES (Debian's generic kernel).
lab_kernel_env() {  # lab_kernel_env [--generic]
    if [[ -f "${LAB_VMLINUZ:-}" && -d "${LAB_MODULES:-}" ]]; then
        [[ "${1:-}" != --generic ]] && return 0
        [[ -f "${LAB_GENERIC_VMLINUZ:-}" && -d "${LAB_GENERIC_MODULES:-}" ]] && return 0
    fi
    eval "$("$lab_root/scripts/lab/fetch.sh" "$@")"
}

# Runs a command as root: directly when we are root, through sudo otherwise.
lab_as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        lab_die "need root (or sudo) to run: $*"
    fi
}

# Installs the Debian packages that are not installed yet; silent when all are present.
lab_need_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    lab_say "installing ${missing[*]} (apt-get)"
    lab_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
        || lab_die "apt-get update failed"
    lab_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
        || lab_die "apt-get install ${missing[*]} failed"
}

# Copies the shared libraries an ELF executable needs (per ldd) into <rootfs>, at the same absolute paths.
lab_copy_ldd_libs() {  # lab_copy_ldd_libs <executable> <rootfs>
    local exe=$1 rootfs=$2 lib out
    out="$(ldd "$exe" 2>&1)" || {
        # "not a dynamic executable": nothing to copy.
        grep -q "not a dynamic executable" <<<"$out" && return 0
        lab_die "ldd $exe failed: $out"
    }
    if grep -q "not found" <<<"$out"; then
        lab_die "$exe needs libraries that are missing here: $(grep "not found" <<<"$out" | tr -s ' \t\n' ' ')"
    fi
    local libs=()
    while read -r lib; do
        [[ -e "$rootfs$lib" ]] || libs+=("$lib")
    done < <(grep -o '/[^ ]*' <<<"$out" | sort -u)
    # One cp for all (a process per library is slow on small VMs); --parents recreates the absolute paths.
    ((${#libs[@]} == 0)) || cp -L --parents -t "$rootfs" "${libs[@]}" || lab_die "copying the libraries of $exe failed"
}

# Puts static busybox at <rootfs>/bin/busybox with a symlink per applet at its usual place (bin/sh, sbin/insmod,
# ...). perl (essential on Debian) makes them in one process; a fork per link is slow on small VMs.
# The links come from the host's busybox; [busybox] is the binary to install (another architecture's build of the
# same Debian busybox-static, for the Arm lab), by default the host's.
lab_install_busybox() {  # lab_install_busybox <rootfs> [busybox]
    local rootfs=$1 binary=${2:-/bin/busybox} applet
    [[ -x /bin/busybox ]] || lab_die "/bin/busybox missing (package busybox-static)"
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin}
    cp "$binary" "$rootfs/bin/busybox"
    if command -v perl >/dev/null 2>&1; then
        /bin/busybox --list-full | perl -ne 'BEGIN { $root = shift } chomp; my $l = "$root/$_";
            -e $l or -l $l or symlink("/bin/busybox", $l) or die "symlink $l: $!\n"' "$rootfs" \
            || lab_die "making busybox links failed"
    else
        while read -r applet; do
            [[ -e "$rootfs/$applet" || -L "$rootfs/$applet" ]] || ln -s /bin/busybox "$rootfs/$applet"
        done < <(/bin/busybox --list-full)
    fi
}

# Runs an outer VM (<command...>, its stdin /dev/null) under `timeout <limit-s>`, showing its console and copying
# it to <log>; a VM that prints nothing for <silence-s> is wedged and is killed (pkill -f <pattern>: something only
# this run's command line holds, such as its initramfs path). Sets LAB_VM_RC (the command's status; 124 or 137
# after the timeout) and LAB_VM_WEDGED (yes when killed for its silence).
lab_run_watched() {  # lab_run_watched <log> <limit-s> <silence-s> <pattern> <command...>
    local log=$1 limit=$2 silence=$3 pattern=$4 pipeline last_size=-1 quiet_since=$SECONDS size rc_file
    shift 4
    rc_file="$(mktemp)"
    LAB_VM_WEDGED=''
    : >"$log"
    (
        timeout -k 10 "$limit" "$@" </dev/null 2>&1 | tee "$log"
        echo "${PIPESTATUS[0]}" >"$rc_file"
    ) &
    pipeline=$!
    while kill -0 "$pipeline" 2>/dev/null; do
        sleep 2
        size=$(stat -c %s "$log" 2>/dev/null || echo 0)
        if [[ "$size" != "$last_size" ]]; then
            last_size=$size quiet_since=$SECONDS
        elif ((SECONDS - quiet_since >= silence)); then
            LAB_VM_WEDGED=yes
            pkill -KILL -f "$pattern"
            break
        fi
    done
    wait "$pipeline"
    LAB_VM_RC=$(cat "$rc_file" 2>/dev/null || echo 1)
    [[ -n "$LAB_VM_RC" ]] || LAB_VM_RC=1
    rm -f "$rc_file"
}
