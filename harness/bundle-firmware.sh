#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Give a QEMU build directory the firmware an installed QEMU would find.
# Run from the build tree, QEMU looks for it under qemu-bundle/; the +ds
# source has no blobs: Debian's iPXE option ROMs, qemu-system-data and
# SeaBIOS stand in, and vbootrom is built from source (below).
# bios-tables-test boots pc-bios/edk2-aarch64-code.fd with the variable
# store template pc-bios/edk2-arm-vars.fd, which
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

# The ast2700 machines load ast27x0_bootrom.bin when they start (and
# abort without it: qom-test and test-hmp start every machine).  The +ds
# source strips the binary and keeps its source, roms/vbootrom; build it
# as roms/Makefile's ast27x0_bootrom target does, with Debian's aarch64
# cross compiler, in the build directory.
src=$(/usr/bin/python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["directories"]["source"])' \
      "$obj/meson-info/meson-info.json")
rom=$obj/qemu-bundle/usr/share/qemu/ast27x0_bootrom.bin
if [ -d "$src/roms/vbootrom/ast27x0" ] &&
   { [ ! -f "$rom" ] ||
     [ -n "$(find "$src/roms/vbootrom" -newer "$rom" -type f)" ]; }; then
    rm -rf "$obj/vbootrom"
    cp -r "$src/roms/vbootrom" "$obj/vbootrom"
    make -s -C "$obj/vbootrom/ast27x0" CROSS_COMPILE=aarch64-linux-gnu- \
        ast27x0_bootrom.bin > "$obj/vbootrom/build.log" 2>&1 || {
        cat "$obj/vbootrom/build.log" >&2
        echo "bundle-firmware.sh: ast27x0_bootrom.bin did not build" >&2
        exit 1
    }
    rm -f "$rom"
    cp "$obj/vbootrom/ast27x0/ast27x0_bootrom.bin" "$rom"
fi
