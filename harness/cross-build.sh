#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Cross build of our patched QEMU for arm64, for the KVM layer
# (tests/kvm/): qemu-system-aarch64 (KVM and TCG, so that one inner
# binary compares the two), qemu-img and memmap-plan, compiled by
# Debian's aarch64-linux-gnu-gcc against the arm64 libraries of the
# sysroot that harness/setup-cross.sh unpacks.  Its own build directory,
# BUILD_DIR/cross/obj, configured from the tree BUILD_DIR/qemu that
# harness/build.sh fetched and overlaid, as every build of the harness
# is (harness/configure.sh), compiled through the shared ccache at
# nice 10.
#
#   BUILD_DIR/cross/sysroot     arm64 -dev packages (setup-cross.sh)
#   BUILD_DIR/cross/pkg-config  pkg-config limited to the sysroot
#   BUILD_DIR/cross/obj         the build directory
#
# Only the devices the inner QEMUs use (harness/kvm-devices.mak: the
# virt board, pcie-root-port, vfio-pci, the iommufd backend),
# --without-default-devices:
# 1,484 build steps instead of the default configuration's 2,135.
#
# With "ref", the same for the pristine base (the reference of
# harness/ref-qemu.sh, its worktree BUILD_DIR/ref/qemu), so that the KVM
# layer compares our QEMU without a map to upstream's under KVM:
# qemu-system-aarch64 only, in BUILD_DIR/ref/cross/obj.  The paths from
# that build directory to its source and to the sysroot (a symbolic
# link) are those of ours, so ccache shares the objects of every file our
# change leaves alone.
# Usage: cross-build.sh REPO_DIR BUILD_DIR [ref]
set -euo pipefail

repo=$(realpath "$1")
build=$(realpath -m "$2")
which=${3:-ours}
start=$SECONDS

"$repo/harness/setup-cross.sh" "$build"
. "$repo/harness/configure.sh"

case $which in
ours)
    cross=$build/cross
    src=$build/qemu
    targets="qemu-system-aarch64 qemu-img contrib/memmap-plan/memmap-plan"
    # The source tree is build.sh's, already overlaid (make builds
    # first): overlaying here could reset it under a native build that
    # is running (overlay.sh resets the tree to the base when
    # patches/series changed).
    if [ ! -f "$src/.memmap-patches" ]; then
        echo "cross-build.sh: $src is not an overlaid QEMU tree;" \
             "run harness/build.sh $repo $build (make build) first" >&2
        exit 1
    fi
    ;;
ref)
    cross=$build/ref/cross
    src=$build/ref/qemu
    targets=qemu-system-aarch64
    ref_tree "$repo" "$build"
    mkdir -p "$cross"
    ln -sfn ../../cross/sysroot "$cross/sysroot"
    ;;
*)
    echo "cross-build.sh: unknown build $which (ours or ref)" >&2
    exit 1
    ;;
esac
obj=$cross/obj
sysroot=$cross/sysroot
mkdir -p "$cross"

# One cross build at a time.
exec 8> "$cross/.build-lock"
flock 8

# pkg-config sees the sysroot's arm64 .pc files only, and prefixes the
# paths they give with the sysroot.  configure takes it from
# $PKG_CONFIG and writes it into meson's cross file.
cat > "$cross/pkg-config.tmp" <<EOF
#!/bin/sh
# written by harness/cross-build.sh
PKG_CONFIG_LIBDIR=$sysroot/usr/lib/aarch64-linux-gnu/pkgconfig
export PKG_CONFIG_LIBDIR=\$PKG_CONFIG_LIBDIR:$sysroot/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$sysroot
unset PKG_CONFIG_PATH
exec pkg-config "\$@"
EOF
chmod 755 "$cross/pkg-config.tmp"
mv "$cross/pkg-config.tmp" "$cross/pkg-config"
export PKG_CONFIG=$cross/pkg-config
if ! "$PKG_CONFIG" --exists --print-errors glib-2.0 gmodule-2.0 pixman-1 zlib
then
    echo "cross-build.sh: the sysroot $sysroot lacks a library" >&2
    exit 1
fi

use_ccache "$build"
export CC="ccache aarch64-linux-gnu-gcc"
# libfdt has no .pc file: meson finds it with the compiler, hence the
# -I and -L; -rpath-link lets the linker follow the NEEDED entries of the
# sysroot's libraries (glib's libpcre2, libffi, ...).  --disable-werror:
# the native build is the -Werror gate; a warning that only this
# compiler gives must not stop the KVM layer.
lib=$sysroot/usr/lib/aarch64-linux-gnu
# configure takes a device set by name from the tree's configs/devices:
# the file goes there, untracked (overlay.sh cleans it with the tree)
device_set "$repo/harness/kvm-devices.mak" "$src" memmap-kvm
tools=--enable-tools
[ "$which" = ours ] || tools=--disable-tools
configure_qemu cross-build.sh "$src" "$obj" "$cross/configure.log" \
    --cross-prefix=aarch64-linux-gnu- --enable-kvm "$tools" \
    --disable-docs --disable-werror --without-default-devices \
    --with-devices-aarch64=memmap-kvm \
    "--extra-cflags=-I$sysroot/usr/include" \
    "--extra-ldflags=-L$lib" "--extra-ldflags=-Wl,-rpath-link,$lib"

# shellcheck disable=SC2086 # word splitting of targets is wanted
nice -n 10 ninja -C "$obj" $targets

for f in $targets; do
    if ! file -L "$obj/$f" | grep -q 'ELF 64-bit.*ARM aarch64'; then
        echo "cross-build.sh: $obj/$f is not an arm64 program" >&2
        exit 1
    fi
done
echo "cross-build.sh: $which done in $((SECONDS - start)) s"
