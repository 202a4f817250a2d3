#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Set up what the arm64 cross build of our QEMU (harness/cross-build.sh)
# needs, run as root:
#
#   - on the host, Debian's aarch64 cross compiler and its C library
#     (amd64 and "all" packages; harness/setup-host.sh installs them too,
#     for bundle-firmware.sh);
#   - a sysroot of its own, BUILD_DIR/cross/sysroot, holding the arm64
#     -dev packages of glib, pixman, zlib and libfdt and the libraries
#     they link to, unpacked with dpkg-deb -x from .debs that apt-get
#     download fetched (kept in BUILD_DIR/cross/dl, so reruns need no
#     network).
#
# Why a sysroot and not multiarch packages: libfdt-dev:arm64 is not
# co-installable with libfdt-dev:amd64 on Debian 12 (installing it removes
# the amd64 one and the native build fails, "libfdt.a ... missing"), and
# installing even the co-installable libglib2.0-dev:arm64 makes apt
# upgrade amd64 packages to the versions of their arm64 twins
# (Multi-Arch: same), linux-libc-dev among them (measured: 15 amd64
# upgrades), which changes the headers every native build here
# (build/obj, build/san, build/ref) compiles against and makes them
# recompile from scratch.  Unpacked into a folder of its own, nothing of
# the host changes.
#
# Idempotent: the host part re-runs only when this script changed, the
# sysroot is unpacked again only when it is missing or older than this
# script.
# Usage: setup-cross.sh BUILD_DIR
set -euo pipefail

build=$(realpath -m "$1")
cross=$build/cross
sysroot=$cross/sysroot
dl=$cross/dl

# The arm64 packages of the sysroot: the -dev packages QEMU's configure
# looks for with pkg-config or the compiler, what their .pc files name
# (Requires and Requires.private), and the shared libraries they need at
# link time.  glibc comes from the cross compiler's own
# (/usr/aarch64-linux-gnu, libc6-dev-arm64-cross).
packages="libglib2.0-dev libglib2.0-0 libpixman-1-dev libpixman-1-0
    zlib1g-dev zlib1g libfdt-dev libfdt1
    libffi-dev libffi8 libpcre2-dev libpcre2-8-0 libpcre2-16-0
    libpcre2-32-0 libpcre2-posix3 libmount-dev libmount1 libblkid-dev
    libblkid1 libselinux1-dev libselinux1 libsepol-dev libsepol2
    uuid-dev libuuid1"

stamp=/var/lib/memmap-setup-cross.$(sha256sum "$0" | cut -c1-16)
if [ ! -e "$stamp" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup-cross.sh: must run as root (it calls apt-get)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # the arm64 package lists for apt-get download (setup-host.sh adds
    # the architecture too; the lists may predate it)
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
    fi
    apt-get -o DPkg::Lock::Timeout=900 update -q
    apt-get -o DPkg::Lock::Timeout=900 install -y -q \
        --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
        binutils-aarch64-linux-gnu pkg-config cpio xz-utils zstd
    rm -f /var/lib/memmap-setup-cross.*
    touch "$stamp"
fi

if [ -f "$sysroot/.stamp" ] && [ "$sysroot/.stamp" -nt "$0" ]; then
    exit 0
fi

. "$(dirname "${BASH_SOURCE[0]}")/debs.sh"
mkdir -p "$dl"
rm -rf "$sysroot.tmp"
mkdir -p "$sysroot.tmp"
for p in $packages; do
    dpkg-deb -x "$(fetch_deb "$dl" arm64 "$p")" "$sysroot.tmp"
done
# The linker follows the -dev packages' .so symlinks: an absolute one
# (libz.so -> /lib/aarch64-linux-gnu/libz.so.1.2.13) would lead out of
# the sysroot into the host's files, so point it, relatively, at the
# same path inside the sysroot.  dpkg-deb keeps the files' times, so
# unpacking again makes ninja rebuild nothing.
find "$sysroot.tmp" -type l -lname '/*' -printf '%P\n' | while read -r l; do
    ln -sfnr "$sysroot.tmp$(readlink "$sysroot.tmp/$l")" "$sysroot.tmp/$l"
done
rm -rf "$sysroot"
mv "$sysroot.tmp" "$sysroot"
touch "$sysroot/.stamp"
