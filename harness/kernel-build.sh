#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the arm64 kernel of the KVM layer's iommufd boots: Debian's
# kernel source (linux-source-SERIES from trixie, the version of the
# Debian kernel the other boots use), configured as allnoconfig plus
# harness/kernel/arm64.config (everything built in: PCI, PL011, GICv3
# ITS, SMMUv3, virtio-iommu, KVM, VFIO with the legacy container and
# with iommufd and the device cdev).  Debian's own kernels leave
# CONFIG_IOMMUFD unset, so this is the one way to run QEMU's iommufd
# backend here.
#
#   BUILD_DIR/kernel/linux-source-SERIES_VERSION_all.deb  the source
#   BUILD_DIR/kernel/src     the unpacked tree (VERSION in src/.version)
#   BUILD_DIR/kernel/obj     the build tree (O=)
#   BUILD_DIR/kvm/Image-memmap-arm64   the kernel image, uname -r
#                                      SERIES.x-memmap
#
# Compiled through ccache (the cache harness/build.sh uses) with a fixed
# build user, host and time, so that a rebuild from scratch hits it.
# Rebuilt only when the image is missing or older than this script or
# the configuration fragment.
# Usage: kernel-build.sh REPO_DIR BUILD_DIR SERIES VERSION
#        (for example 6.12 6.12.117-1)
set -euo pipefail

repo=$(realpath "$1")
build=$(realpath -m "$2")
series=$3
version=$4
dir=$build/kernel
image=$build/kvm/Image-memmap-arm64
fragment=$repo/harness/kernel/arm64.config

if [ -f "$image" ] && [ "$image" -nt "$0" ] && [ "$image" -nt "$fragment" ]
then
    exit 0
fi
mkdir -p "$dir" "$build/kvm"
. "$repo/harness/debs.sh"
TRIXIE_APT=$build/kvm/apt

pkg=linux-source-$series
deb=$dir/${pkg}_${version}_all.deb
if [ ! -f "$deb" ]; then
    trixie apt-get update >&2
    (cd "$dir" && trixie apt-get download "$pkg=$version") >&2
fi
if [ "$(cat "$dir/src/.version" 2>/dev/null)" != "$version" ]; then
    rm -rf "$dir/src" "$dir/obj" "$dir/unpack"
    dpkg-deb --fsys-tarfile "$deb" |
        tar -x -C "$dir" --one-top-level=unpack \
            "./usr/src/$pkg.tar.xz"
    mkdir -p "$dir/src"
    tar -xJf "$dir/unpack/usr/src/$pkg.tar.xz" -C "$dir/src" \
        --strip-components=1
    rm -rf "$dir/unpack"
    echo "$version" > "$dir/src/.version"
fi

export ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-
export CCACHE_DIR=${CCACHE_DIR:-/var/cache/memmap-ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CCACHE_BASEDIR=$dir CCACHE_NOHASHDIR=1
export KBUILD_BUILD_USER=memmap KBUILD_BUILD_HOST=memmap
export KBUILD_BUILD_TIMESTAMP="Thu Jan  1 00:00:00 UTC 1970"
k() {
    make -C "$dir/src" O="$dir/obj" CC="ccache ${CROSS_COMPILE}gcc" "$@"
}
mkdir -p "$dir/obj"
k -s allnoconfig
"$dir/src/scripts/kconfig/merge_config.sh" -m -O "$dir/obj" \
    "$dir/obj/.config" "$fragment" >/dev/null
k -s olddefconfig
# every option of the fragment must have survived olddefconfig
missing=
while IFS= read -r line; do
    case $line in CONFIG_*) ;; *) continue ;; esac
    grep -qxF "$line" "$dir/obj/.config" || missing="$missing ${line%%=*}"
done < "$fragment"
if [ -n "$missing" ]; then
    echo "kernel-build.sh: not in the configuration:$missing" >&2
    exit 1
fi
k -j"$(nproc)" Image >&2
cp "$dir/obj/arch/arm64/boot/Image" "$image.tmp"
mv "$image.tmp" "$image"
