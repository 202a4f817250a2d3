#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Set up the host if needed, fetch the base, overlay our tree, configure
# once and build incrementally.  Leaves build/qemu-system-aarch64 and
# build/memmap-plan.
# Usage: build.sh REPO_DIR BUILD_DIR
set -euo pipefail

repo=$(realpath "$1")
build=$(realpath -m "$2")
obj=$build/obj

# One build at a time in a build folder: a second caller waits.
mkdir -p "$build"
exec 9> "$build/.build-lock"
flock 9

"$repo/harness/setup-host.sh"
"$repo/harness/fetch-qemu.sh" "$build"
"$repo/harness/overlay.sh" "$repo" "$build"

# ccache shared by every clone on this machine: paths under the build
# folder are hashed relative to it, so a fresh clone hits the cache.
. "$repo/harness/configure.sh"
use_ccache "$build"
# QEMU's configure writes the compiler into meson's cross file, where
# meson does not add ccache by itself: name it in CC.
export CC="ccache cc"
configure_qemu build.sh "$build/qemu" "$obj" "$build/configure.log" \
    --disable-docs --enable-tools

# QEMU's whole qtest-aarch64 suite runs in make check: its programs and
# what meson says they depend on (qemu-img, qemu-storage-daemon), read
# from meson's introspection data, fresh once meson has re-run for a
# changed meson.build.
out=$(ninja -C "$obj" build.ninja 2>&1) || { echo "$out" >&2; exit 1; }
suite_targets=$(/usr/bin/python3 "$repo/harness/qtest-suite.py" targets \
                "$obj" qtest-aarch64)
targets="qemu-system-aarch64 qemu-img tests/unit/test-memmap
    tests/unit/test-resv-mem contrib/memmap-plan/memmap-plan $suite_targets"
for t in ${MEMMAP_EXTRA_TARGETS:-}; do
    targets="$targets $t"
done
ninja -C "$obj" $targets
"$repo/harness/bundle-firmware.sh" "$obj"
ln -sf obj/qemu-system-aarch64 "$build/qemu-system-aarch64"
ln -sf obj/contrib/memmap-plan/memmap-plan "$build/memmap-plan"
