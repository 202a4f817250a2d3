#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the kernel of the outer guests that run QEMU's iommufd backend:
# Debian's kernel source (linux-source-SERIES from trixie), configured
# as allnoconfig plus harness/kernel/ARCH.config, everything built in:
#
#   arm64    the KVM layer's host (virt with an SMMUv3 or a
#            virtio-iommu: PCI, PL011, GICv3 ITS, KVM), cross-compiled
#   x86_64   the nested VFIO layer's host (q35 with an Intel IOMMU:
#            ACPI, PCI, 8250, interrupt remapping)
#
# both with VFIO's legacy container and with iommufd and the device
# cdev.  Debian's own kernels leave CONFIG_IOMMUFD unset, so this is the
# one way to run QEMU's iommufd backend here.
#
#   BUILD_DIR/kernel/linux-source-SERIES_VERSION_all.deb  the source
#   BUILD_DIR/kernel/src         the unpacked tree (VERSION in
#                                src/.version)
#   BUILD_DIR/kernel/obj-ARCH    the build tree (O=)
#   IMAGE                        the kernel image (Image for arm64,
#                                bzImage for x86_64), uname -r
#                                SERIES.x-memmap
#
# VERSION is the source package's version (the KVM layer passes that of
# the Debian kernel its other boots use); without it, the newest source
# package already downloaded, else trixie's current linux-source.
# Compiled through ccache (the cache harness/build.sh uses) with a fixed
# build user, host and time, so that a rebuild from scratch hits it.
# Rebuilt only when IMAGE is missing or older than this script or the
# configuration fragment.
# Usage: kernel-build.sh REPO_DIR BUILD_DIR ARCH IMAGE [VERSION]
#        (for example arm64 BUILD_DIR/kvm/Image-memmap-arm64 6.12.117-1)
set -euo pipefail

repo=$(realpath "$1")
build=$(realpath -m "$2")
arch=$3
image=$(realpath -m "$4")
version=${5:-}
dir=$build/kernel
fragment=$repo/harness/kernel/$arch.config
case $arch in
    arm64) boot=arch/arm64/boot/Image cross=aarch64-linux-gnu- ;;
    x86_64) boot=arch/x86/boot/bzImage cross= ;;
    *) echo "kernel-build.sh: no configuration for $arch" >&2; exit 1 ;;
esac

if [ -f "$image" ] && [ "$image" -nt "$0" ] && [ "$image" -nt "$fragment" ]
then
    exit 0
fi
mkdir -p "$dir" "$(dirname "$image")"
. "$repo/harness/debs.sh"
TRIXIE_APT=$build/kvm/apt

if [ -z "$version" ]; then
    deb=$(ls "$dir"/linux-source-*_all.deb 2>/dev/null | sort -V |
          tail -n 1 || true)
    if [ -n "$deb" ]; then
        version=$(dpkg-deb -f "$deb" Version)
    else
        trixie apt-get update >&2
        # the linux-source metapackage names the current series
        pkg=$(trixie apt-cache depends linux-source |
              sed -n 's/^ *Depends: \(linux-source-[0-9.]*\)$/\1/p' |
              head -n 1)
        version=$(trixie apt-cache show "$pkg" |
                  sed -n 's/^Version: //p' | sort -V | tail -n 1)
    fi
fi
series=$(echo "$version" | cut -d. -f1,2)
pkg=linux-source-$series
deb=$dir/${pkg}_${version}_all.deb
if [ ! -f "$deb" ]; then
    trixie apt-get update >&2
    (cd "$dir" && trixie apt-get download "$pkg=$version") >&2
fi
if [ "$(cat "$dir/src/.version" 2>/dev/null)" != "$version" ]; then
    rm -rf "$dir/src" "$dir"/obj-* "$dir/unpack"
    dpkg-deb --fsys-tarfile "$deb" |
        tar -x -C "$dir" --one-top-level=unpack \
            "./usr/src/$pkg.tar.xz"
    mkdir -p "$dir/src"
    tar -xJf "$dir/unpack/usr/src/$pkg.tar.xz" -C "$dir/src" \
        --strip-components=1
    rm -rf "$dir/unpack"
    echo "$version" > "$dir/src/.version"
fi

obj=$dir/obj-$arch
export CCACHE_DIR=${CCACHE_DIR:-/var/cache/memmap-ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CCACHE_BASEDIR=$dir CCACHE_NOHASHDIR=1
export KBUILD_BUILD_USER=memmap KBUILD_BUILD_HOST=memmap
export KBUILD_BUILD_TIMESTAMP="Thu Jan  1 00:00:00 UTC 1970"
k() {
    make -C "$dir/src" O="$obj" ARCH="$arch" CROSS_COMPILE="$cross" \
        CC="ccache ${cross}gcc" "$@"
}
mkdir -p "$obj"
k -s allnoconfig
"$dir/src/scripts/kconfig/merge_config.sh" -m -O "$obj" \
    "$obj/.config" "$fragment" >/dev/null
k -s olddefconfig
# every option of the fragment must have survived olddefconfig
missing=
while IFS= read -r line; do
    case $line in CONFIG_*) ;; *) continue ;; esac
    grep -qxF "$line" "$obj/.config" || missing="$missing ${line%%=*}"
done < "$fragment"
if [ -n "$missing" ]; then
    echo "kernel-build.sh: not in the $arch configuration:$missing" >&2
    exit 1
fi
k -j"$(nproc)" "$(basename "$boot")" >&2
cp "$obj/$boot" "$image.tmp"
mv "$image.tmp" "$image"
