#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Give a QEMU build directory the firmware an installed QEMU would find.
# Run from the build tree, QEMU looks for it under qemu-bundle/; the +ds
# source has no blobs: Debian's iPXE option ROMs, qemu-system-data and
# SeaBIOS stand in.  bios-tables-test boots pc-bios/edk2-aarch64-code.fd
# with the variable store template pc-bios/edk2-arm-vars.fd, which
# upstream's build unpacks from blobs the +ds source strips; Debian's edk2
# build for the virt machine (AAVMF, qemu-efi-aarch64: the firmware
# qemu-system-arm recommends) stands in, the same 64 MiB pflash images.
# Usage: bundle-firmware.sh QEMU_BUILD_DIR
set -euo pipefail

obj=$1
mkdir -p "$obj/qemu-bundle/usr/lib/ipxe" "$obj/qemu-bundle/usr/share/qemu" \
         "$obj/pc-bios"
ln -sfn /usr/lib/ipxe/qemu "$obj/qemu-bundle/usr/lib/ipxe/qemu"
for f in /usr/share/qemu/* /usr/share/seabios/*; do
    [ -e "$obj/qemu-bundle/usr/share/qemu/${f##*/}" ] ||
        ln -s "$f" "$obj/qemu-bundle/usr/share/qemu/"
done
ln -sfn /usr/share/AAVMF/AAVMF_CODE.fd "$obj/pc-bios/edk2-aarch64-code.fd"
ln -sfn /usr/share/AAVMF/AAVMF_VARS.fd "$obj/pc-bios/edk2-arm-vars.fd"
