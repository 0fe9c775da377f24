#!/usr/bin/env bash
# Builds kata-qmp (Kata Containers' QMP usage through Debian's govmm) as a static binary for the lab's outer VM.
#   tests/kata/build.sh <output binary>
# GOPATH mode with Debian's Go sources (golang-github-kata-containers-govmm-dev, from scripts/deps.sh): there
# is no Go module proxy here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
(($# == 1)) || { echo "usage: $0 <output binary>" >&2; exit 2; }
govmm=/usr/share/gocode/src/github.com/kata-containers/govmm/qemu
command -v go >/dev/null && [[ -d "$govmm" ]] \
    || { echo "kata-qmp: needs golang-go and golang-github-kata-containers-govmm-dev (run scripts/deps.sh)" >&2; exit 1; }
cache="$here/../../.cache/go"
mkdir -p "$cache/path"
GO111MODULE=off GOPATH="$cache/path:/usr/share/gocode" GOCACHE="$cache/build" GOFLAGS= CGO_ENABLED=0 \
    go build -trimpath -ldflags='-s -w' -o "$1" "$here/kata-qmp.go"
