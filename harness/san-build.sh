#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The sanitizer build: a second QEMU build directory, build/san, from the
# same overlaid tree as build/obj, compiled with Debian's clang-14 with
# AddressSanitizer and UndefinedBehaviorSanitizer (--enable-asan,
# --enable-ubsan) and libFuzzer's coverage instrumentation
# (-fsanitize=fuzzer-no-link, as QEMU's --enable-fuzzing adds it, but on
# every file: that option's allowlist instruments hw/ only, and the
# planner and keyval live elsewhere).  Only the ninja targets the
# sanitizer layer needs are built, then the libFuzzer targets of
# tests/fuzz/, linked with -fsanitize=fuzzer against the objects that
# build compiled (hw/core/memmap.c, the planner's report.c,
# libqemuutil.a).
#
# Usage: san-build.sh REPO_DIR BUILD_DIR
# With qemu-system-aarch64, qemu-img and memmap-test (about 1,300 more
# compile steps); MEMMAP_SAN_SYSTEM=0 leaves them out.
# Prints the seconds it took on its last line.
set -euo pipefail

repo=$(realpath "$1")
build=$(realpath -m "$2")
san=$build/san
start=$SECONDS

# build.sh has overlaid the tree (make builds first); one san build at a
# time
mkdir -p "$san"
exec 8> "$build/.san-lock"
flock 8

. "$repo/harness/configure.sh"
use_ccache "$build"
export CC="ccache clang-14"
export CXX="ccache clang++-14"
# The virt board's devices only, as the reference build (see
# harness/ref-devices.mak): the sanitized QEMU runs memmap-test and the
# planner's plans, on virt.  The file goes into the tree's
# configs/devices, where configure looks for it, untracked.
device_set "$repo/harness/ref-devices.mak" "$build/qemu" memmap-ref
configure_qemu san-build.sh "$build/qemu" "$san" "$build/san-configure.log" \
    --disable-docs --enable-asan --enable-ubsan \
    --without-default-devices --with-devices-aarch64=memmap-ref \
    --extra-cflags=-fsanitize=fuzzer-no-link \
    --extra-ldflags=-fsanitize=fuzzer-no-link

targets="libqemuutil.a tests/unit/test-memmap contrib/memmap-plan/memmap-plan"
if [ "${MEMMAP_SAN_SYSTEM:-1}" != 0 ]; then
    targets="$targets qemu-system-aarch64 qemu-img tests/qtest/memmap-test"
fi
# shellcheck disable=SC2086
nice -n 10 ninja -C "$san" $targets

# Firmware for the build-tree binary, as build.sh gives build/obj.
"$repo/harness/bundle-firmware.sh" "$san"

# The fuzz targets: compiled with the flags meson gave the planner's
# report.c (QEMU's include paths, glib, the sanitizers), linked
# with the objects of the build above.
"$repo/tests/fuzz/build-fuzzers.py" "$repo" "$san"
echo "san-build: $((SECONDS - start)) s"
