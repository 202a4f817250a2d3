#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the arm64 guest for the memmap boot tests from Debian packages:
# BUILD_DIR/guest/vmlinuz-arm64 (Debian's kernel) and
# BUILD_DIR/guest/initramfs-arm64.cpio.gz (static busybox plus an /init
# that prints the guest's view of memory between marker lines and powers
# off).  The .debs are kept in BUILD_DIR/guest/dl, so reruns need no
# network; an output is rebuilt only when it is missing (the initramfs
# also when this script is newer than it).
# Usage: guest-assets.sh BUILD_DIR
set -euo pipefail

guest=$(realpath -m "$1")/guest
dl=$guest/dl
kernel=$guest/vmlinuz-arm64
initrd=$guest/initramfs-arm64.cpio.gz
mkdir -p "$dl"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "${BASH_SOURCE[0]}")/debs.sh"

# Extract the files matching glob $2 from .deb $1 into directory $3.
extract() {
    mkdir -p "$3"
    dpkg-deb --fsys-tarfile "$1" | tar -x -C "$3" --wildcards "$2"
}

if [ ! -f "$kernel" ]; then
    deb=$(kernel_deb "$dl" arm64)
    extract "$deb" './boot/vmlinuz-*' "$tmp/kernel"
    cp "$tmp"/kernel/boot/vmlinuz-* "$kernel.tmp"
    mv "$kernel.tmp" "$kernel"
fi

if [ ! -f "$initrd" ] || [ "${BASH_SOURCE[0]}" -nt "$initrd" ]; then
    root=$tmp/root
    extract "$(fetch_deb "$dl" arm64 busybox-static)" ./bin/busybox "$root"
    mkdir -p "$root"/{dev,proc,sys,sbin,usr/bin,usr/sbin}
    cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
dmesg -n 1
echo "=== MEMMAP-GUEST-BEGIN ==="
grep '^[^ ].* : System RAM$' /proc/iomem | sed 's/^/iomem: /'
for d in /proc/device-tree/memory@*; do
    [ -d "$d" ] || continue
    line="dt: ${d##*/} reg=$(hexdump -v -e '/1 "%02x"' "$d/reg")"
    if [ -e "$d/numa-node-id" ]; then
        line="$line node=$(hexdump -v -e '/1 "%02x"' "$d/numa-node-id")"
    fi
    echo "$line"
done
dmesg | awk '/Early memory node ranges/ { f = 1; next }
             f && /node +[0-9]+: \[mem / {
                 print "numa: " substr($0, index($0, "node")); next }
             f { exit }'
echo "=== MEMMAP-GUEST-END ==="
poweroff -f
EOF
    chmod 755 "$root/init"
    mkcpio "$root" | gzip -9 > "$initrd.tmp"
    mv "$initrd.tmp" "$initrd"
fi
