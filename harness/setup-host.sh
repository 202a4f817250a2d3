#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# One-time host set-up for the memmap project on Debian 12 (bookworm),
# run as root.  Adds the apt sources the build needs: bookworm-backports
# (meson >= 1.5, libvirt, and Debian's x86 QEMU 10.0, which only plays
# the emulated host of the nested VFIO layer), deb-src of trixie and sid
# (the QEMU 10.2 source package), and the arm64 architecture (Debian's
# arm64 kernel and busybox).  Installs the build and test dependencies.
# Idempotent: a second run only checks.
set -euo pipefail

# Re-run whenever this script changes.
stamp=/var/lib/memmap-setup.$(sha256sum "$0" | cut -c1-16)
[ -e "$stamp" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "setup-host.sh: must run as root (it calls apt-get)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
kr=/usr/share/keyrings/debian-archive-keyring.gpg
cat > /etc/apt/sources.list.d/memmap.sources <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: $kr

Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie sid
Components: main
Signed-By: $kr
SRC

# wait for another apt (a second set-up, unattended upgrades) to finish
apt_get() {
    apt-get -o DPkg::Lock::Timeout=900 "$@"
}

dpkg --add-architecture arm64
apt_get update -q

apt_get install -y -q --no-install-recommends \
    build-essential dpkg-dev git ca-certificates pkg-config \
    ninja-build flex bison ccache cpio xz-utils zstd file \
    python3 python3-venv python3-setuptools \
    libglib2.0-dev libfdt-dev libpixman-1-dev zlib1g-dev jq \
    device-tree-compiler busybox-static ipxe-qemu seabios
# for QEMU's qtest-aarch64 suite: meson lists bios-tables-test only when
# bzip2 is found, and it boots Debian's AAVMF in place of the edk2 blobs
# the +ds source strips; cdrom-test makes ISO images with xorrisofs;
# tpm-tis-device-swtpm-test runs swtpm
apt_get install -y -q --no-install-recommends \
    bzip2 qemu-efi-aarch64 xorriso swtpm
# the ast2700 machines load vbootrom's ast27x0_bootrom.bin, which the +ds
# source strips as a binary but keeps as source (roms/vbootrom): Debian's
# aarch64 cross compiler builds it (harness/bundle-firmware.sh)
apt_get install -y -q --no-install-recommends \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross
# the kernels with iommufd (harness/kernel-build.sh) also need bc, and
# the x86_64 one objtool's libelf; flex and bison are above
apt_get install -y -q --no-install-recommends bc libelf-dev
# for the manual (make docs-check): QEMU's Sphinx extensions on
# Debian's Sphinx and theme
apt_get install -y -q --no-install-recommends \
    python3-sphinx python3-sphinx-rtd-theme
apt_get install -y -q --no-install-recommends -t bookworm-backports \
    meson qemu-system-x86 qemu-system-data
# the libvirt layer runs its own daemon on our QEMU
apt_get install -y -q --no-install-recommends -t bookworm-backports \
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
# the sanitizer layer and make fuzz: Debian's clang with ASan, UBSan
# and libFuzzer (libclang-rt-14-dev), llvm-symbolizer for the reports
apt_get install -y -q --no-install-recommends \
    clang-14 libclang-rt-14-dev llvm-14

rm -f /var/lib/memmap-setup.*
touch "$stamp"
