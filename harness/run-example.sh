#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make run: boot the virt machine with an example memmap (see
# run-example.py).  Usage: run-example.sh REPO_DIR BUILD_DIR
set -euo pipefail
repo=$(realpath "$1")
build=$(realpath "$2")
"$repo/harness/guest-assets.sh" "$build"
exec /usr/bin/python3 "$repo/harness/run-example.py" \
    --qemu "$build/obj/qemu-system-aarch64" \
    --kernel "$build/guest/vmlinuz-arm64" \
    --initrd "$build/guest/initramfs-arm64.cpio.gz"
