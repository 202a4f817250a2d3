#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make bench: the benchmarks (not tests).  Each prints ratios measured
# side by side in one run.  Usage: bench.sh REPO_DIR BUILD_DIR
set -euo pipefail
build=$(realpath "$2")
"$(dirname "$0")/bench-planner.sh" "$1" "$2"
"$(dirname "$0")/guest-assets.sh" "$build" > /dev/null
/usr/bin/python3 "$(dirname "$0")/bench-startup.py" \
    --qemu "$build/obj/qemu-system-aarch64" \
    --unit "$build/obj/tests/unit/test-memmap" \
    --kernel "$build/guest/vmlinuz-arm64" \
    --initrd "$build/guest/initramfs-arm64.cpio.gz"
