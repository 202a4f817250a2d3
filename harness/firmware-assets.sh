#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Assets of the UEFI guest layer (tests/firmware/), in BUILD_DIR/firmware:
#   QEMU_EFI.fd            Debian's AAVMF (package qemu-efi-aarch64 of
#                          bookworm, unpacked, not installed), for -bios
#   AAVMF_CODE.fd          the same firmware padded to the 64 MiB flash,
#                          for -drive if=pflash
#   initramfs-uefi.cpio.gz the guest initramfs of harness/guest-assets.sh
#                          with a second cpio appended whose /init
#                          replaces the first one: it prints the whole
#                          /proc/iomem (System RAM and the ranges the
#                          firmware reserved), whether the kernel came up
#                          through EFI and with which ACPI tables, the
#                          device tree memory nodes the kernel got (as
#                          harness/guest-assets.sh prints them), the
#                          kernel's SRAT lines from its log buffer and
#                          the SRAT itself (base64), between
#                          the guest layer's marker lines, and powers off.
# Runs harness/guest-assets.sh first (the kernel and busybox come from
# there).  The .deb is kept in BUILD_DIR/firmware/dl.
# Usage: firmware-assets.sh BUILD_DIR
set -euo pipefail

here=$(dirname "${BASH_SOURCE[0]}")
build=$(realpath -m "$1")
fw=$build/firmware
dl=$fw/dl
mkdir -p "$dl"

"$here/guest-assets.sh" "$build"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$here/debs.sh"

# install_file SRC DST: copy atomically (other runs may read DST)
install_file() {
    cp "$1" "$2.tmp.$$"
    mv "$2.tmp.$$" "$2"
}

if [ ! -f "$fw/QEMU_EFI.fd" ] || [ ! -f "$fw/AAVMF_CODE.fd" ]; then
    deb=$(fetch_deb "$dl" all qemu-efi-aarch64)
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" \
        ./usr/share/qemu-efi-aarch64/QEMU_EFI.fd ./usr/share/AAVMF/AAVMF_CODE.fd
    install_file "$tmp/usr/share/qemu-efi-aarch64/QEMU_EFI.fd" \
        "$fw/QEMU_EFI.fd"
    install_file "$tmp/usr/share/AAVMF/AAVMF_CODE.fd" "$fw/AAVMF_CODE.fd"
fi

base=$build/guest/initramfs-arm64.cpio.gz
out=$fw/initramfs-uefi.cpio.gz
if [ ! -f "$out" ] || [ "$base" -nt "$out" ] ||
   [ "${BASH_SOURCE[0]}" -nt "$out" ]; then
    root=$tmp/overlay
    mkdir -p "$root"
    cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
dmesg -n 1
echo "=== MEMMAP-GUEST-BEGIN ==="
if [ -d /sys/firmware/efi ]; then echo "efi: yes"; else echo "efi: no"; fi
echo "acpi:$(ls /sys/firmware/acpi/tables 2>/dev/null | tr '\n' ' ' |
             sed 's/^/ /; s/ $//')"
sed 's/^/iomem: /' /proc/iomem
. /lib/memmap-dt.sh
print_dt_memory
dmesg | sed -n 's/^.*\] \(ACPI: SRAT: .*\)$/log: \1/p'
t=/sys/firmware/acpi/tables/SRAT
[ ! -f $t ] || echo "srat-table: $(base64 $t | tr -d '\n')"
echo "=== MEMMAP-GUEST-END ==="
# the console sends what was written before the kernel's last message:
# stty sets its mode (unchanged) only once the output drained (TCSETSW)
stty onlcr 2>/dev/null
poweroff -f
EOF
    chmod 755 "$root/init"
    # Two concatenated gzip'd newc archives: the kernel unpacks both in
    # order, and the later /init replaces the earlier one.
    { cat "$base"; mkcpio "$root" | gzip -9; } > "$out.tmp.$$"
    mv "$out.tmp.$$" "$out"
fi
