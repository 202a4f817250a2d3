#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the reference for the unchanged default guest ABI: the pristine
# base (build/qemu's tag "base": the same QEMU source, Debian's patches
# applied, without our files and hook patches) in BUILD_DIR/ref, as a
# qemu-system-aarch64 configured as build/obj is but with the virt
# board's devices only (harness/ref-devices.mak).  The source is a git
# worktree at BUILD_DIR/ref/qemu (ref_tree of harness/configure.sh) and
# the build directory BUILD_DIR/ref/obj, laid out as build/qemu and build/obj so that
# ccache shares the objects of the files our change leaves alone.
# Prints the binary's path.
# Usage: ref-qemu.sh REPO_DIR BUILD_DIR
set -euo pipefail

repo=$(realpath "$1")
build=$(realpath -m "$2")
ref=$build/ref
src=$ref/qemu
obj=$ref/obj

# One build at a time in the reference folder: a second caller waits.
mkdir -p "$ref"
exec 9> "$ref/.build-lock"
flock 9

. "$repo/harness/configure.sh"
ref_tree "$repo" "$build"
use_ccache "$build"
export CC="ccache cc"
# Only the virt board and what it selects (harness/ref-devices.mak):
# the layers that use this build run nothing else.  configure takes a
# device set by name from the tree's configs/devices, so the file goes
# there, untracked; the tree's sources stay the base's.
device_set "$repo/harness/ref-devices.mak" "$src" memmap-ref
configure_qemu ref-qemu.sh "$src" "$obj" "$ref/configure.log" \
    --disable-docs --disable-tools --without-default-devices \
    --with-devices-aarch64=memmap-ref >&2
nice -n 10 ninja -C "$obj" qemu-system-aarch64 >&2
echo "$obj/qemu-system-aarch64"
