#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Unpack Debian's own qemu-system-aarch64 10.0 (bookworm-backports, not
# installed: its libraries are those of qemu-system-x86, which is) into
# BUILD_DIR/ref, as the reference for the unchanged default guest ABI.
# Prints the binary's path.  Usage: ref-qemu.sh BUILD_DIR
set -euo pipefail

ref=$(realpath -m "$1")/ref
bin=$ref/root/usr/bin/qemu-system-aarch64

if [ ! -x "$bin" ]; then
    mkdir -p "$ref/dl"
    version=$(apt-cache policy qemu-system-arm |
              sed -n 's/^ *\(1:10\.0\.[^ ]*\) .*/\1/p' | head -n 1)
    if [ -z "$version" ]; then
        echo "ref-qemu.sh: the archive serves no qemu-system-arm 10.0" >&2
        exit 1
    fi
    deb=$(ls "$ref"/dl/qemu-system-arm_*.deb 2>/dev/null || true)
    if [ -z "$deb" ]; then
        (cd "$ref/dl" && apt-get download -q -o APT::Sandbox::User=root \
            "qemu-system-arm=$version") >&2
        deb=$(ls "$ref"/dl/qemu-system-arm_*.deb)
    fi
    dpkg-deb -x "$deb" "$ref/root"
fi
echo "$bin"
