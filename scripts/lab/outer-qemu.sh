#!/usr/bin/env bash
# The outer VM's emulator: Debian's QEMU from bookworm-backports (10.0 on 2026-12-06), fetched once into
# .cache/lab/outer-qemu and extracted there, not installed: the host keeps bookworm's QEMU 7.2, which the lab
# still runs inside the outer VM as the peer VMM. The download uses an apt state of its own under the cache (its
# own sources list, package lists and cache), so the host's apt sources and lists are left as they are.
# Why: under the host's QEMU 7.2 the TCG emulation of AMD SVM that the lab depends on now and then killed a
# nested guest (a triple fault) or the outer kernel itself (a stack overflow in a KVM vCPU thread), with either
# VMM; see README "Tests".
#
#   scripts/lab/outer-qemu.sh     prints the path of a launcher that runs that QEMU with its own firmware and
#                                 module folders (progress on stderr)
set -euo pipefail
# shellcheck source=scripts/lab/host.sh
source "$(dirname "$0")/host.sh"

dest="$lab_cache/outer-qemu"
launcher="$dest/qemu-system-x86_64"
if [[ -x "$launcher" ]]; then
    echo "$launcher"
    exit 0
fi

suite=bookworm-backports
packages=(qemu-system-x86 qemu-system-common qemu-system-data seabios)
apt_dir="$lab_cache/outer-qemu.apt"
rm -rf "$apt_dir" "$dest.tmp"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" "$dest.tmp"
echo "deb http://deb.debian.org/debian $suite main" >"$apt_dir/sources.list"
apt_opts=(-q -o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=- \
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
lab_say "fetching the outer VM's QEMU from $suite (${packages[*]})"
apt-get "${apt_opts[@]}" update >&2 || lab_die "apt-get update of $suite failed"
# As root apt-get warns that _apt cannot reach the folder and downloads unsandboxed: expected, so that line goes.
(cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download "${packages[@]/%//$suite}" 2>&1 \
    | { grep -v "unsandboxed as root" >&2 || true; }) || lab_die "apt-get download from $suite failed"
for p in "${packages[@]}"; do
    deb="$(find "$apt_dir/debs" -maxdepth 1 -name "${p}_*.deb" | head -1)"
    [[ -n "$deb" ]] || lab_die "apt-get download left no $p package in $apt_dir/debs"
    dpkg -x "$deb" "$dest.tmp" || lab_die "dpkg -x $deb failed"
done

binary="$dest.tmp/usr/bin/qemu-system-x86_64"
[[ -x "$binary" ]] || lab_die "the $suite packages hold no usr/bin/qemu-system-x86_64"
# Its libraries come from the host (bookworm's QEMU 7.2 needs the same ones, scripts/deps.sh installs it).
missing="$(ldd "$binary" | grep 'not found' || true)"
[[ -z "$missing" ]] || lab_die "the $suite QEMU needs libraries missing here: $(tr -s ' \t\n' ' ' <<<"$missing")"

cat >"$dest.tmp/qemu-system-x86_64" <<'EOF'
#!/bin/sh
# Runs the extracted QEMU with its own firmware (-L) and modules, not the host QEMU's.
d=$(dirname "$(readlink -f "$0")")
QEMU_MODULE_DIR="$d/usr/lib/x86_64-linux-gnu/qemu" exec "$d/usr/bin/qemu-system-x86_64" \
    -L "$d/usr/share/qemu" -L "$d/usr/share/seabios" "$@"
EOF
chmod +x "$dest.tmp/qemu-system-x86_64"
rm -rf "$dest" "$apt_dir"
mv "$dest.tmp" "$dest"
lab_say "outer QEMU ready: $("$launcher" --version | head -1)"
echo "$launcher"
