#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetch the pinned QEMU 10.2 base (Debian's source package from sid's
# deb-src, with Debian's patches applied by dpkg-source) into build/qemu
# and record it as a git repository whose first commit is the pristine
# base.  Falls back to the newest 10.2.x the archive serves when the pin
# is gone.  Moving to another QEMU release: change the two lines below.
# Usage: fetch-qemu.sh BUILD_DIR
set -euo pipefail

pin=${QEMU_DEB_VERSION:-1:10.2.2+ds-1}
series=${pin#1:}
series=${series%.*}
build=$(realpath -m "$1")
src=$build/qemu
mkdir -p "$build"

have_version() {
    apt-cache showsrc qemu 2>/dev/null | sed -n 's/^Version: //p'
}

version=$pin
if ! have_version | grep -qxF "$pin"; then
    version=$(have_version | grep "^1:${series//./\\.}\\." | sort -V | tail -n 1 || true)
    if [ -z "$version" ]; then
        echo "fetch-qemu.sh: the archive serves no QEMU $series.x source" \
             "(pinned $pin); run harness/setup-host.sh first" >&2
        exit 1
    fi
    echo "fetch-qemu.sh: $pin is no longer served, using $version" >&2
fi

if [ -f "$src/.memmap-base" ] && [ "$(cat "$src/.memmap-base")" = "$version" ]
then
    exit 0
fi

rm -rf "$src" "$build/dl"
mkdir -p "$build/dl"
(cd "$build/dl" && apt-get source -q --download-only "qemu=$version")
dsc=$(ls "$build"/dl/qemu_*.dsc)
dpkg-source --no-check -x "$dsc" "$src.tmp" >/dev/null
mv "$src.tmp" "$src"

cd "$src"
git init -q -b work
git config user.name "memmap build"
git config user.email "memmap@localhost"
git config core.autocrlf false
printf '/.pc/\n/debian/\n/.memmap-*\n' >> .git/info/exclude
git add -A -f . ':!.pc' ':!debian'
git commit -q -m "QEMU $version (Debian source package, patches applied)"
git tag base
echo "$version" > .memmap-base
echo "fetched QEMU $version into $src"
