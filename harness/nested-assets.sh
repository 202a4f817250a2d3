#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the x86_64 guest for the nested VFIO test (tests/vfio/): an
# x86_64 guest under TCG with an emulated IOMMU binds QEMU's "edu" PCI
# device to vfio-pci and runs our qemu-system-aarch64 inside.
#
#   BUILD_DIR/nested/vmlinuz-amd64            Debian's kernel
#   BUILD_DIR/nested/bzImage-memmap-amd64     ours, with iommufd
#                                             (harness/kernel-build.sh)
#   BUILD_DIR/nested/initramfs-base.cpio.gz   busybox, vfio modules, /init,
#                                             /lib/qmp.sh
#   BUILD_DIR/nested/qemu.cpio                QEMU_BINARY (default
#                                             BUILD_DIR/qemu-system-aarch64),
#                                             the memmap-plan next to it,
#                                             and their shared libraries,
#                                             /usr/lib/nested/no-iova-caps.so
#                                             (tests/vfio/no-iova-caps.c)
#
# /init runs /scenario.sh, which harness/nestedlib.py adds as a third
# cpio (the kernel takes concatenated archives).  The .debs are kept in
# BUILD_DIR/nested/dl, so reruns need no network.  Outputs are rebuilt
# only when missing or stale (the base when this script is newer, the
# QEMU cpio when the binary changed).
# Usage: nested-assets.sh BUILD_DIR [QEMU_BINARY]
set -euo pipefail

build=$(realpath -m "$1")
nested=$build/nested
dl=$nested/dl
qemu=$(realpath "${2:-$build/qemu-system-aarch64}")
planner=$(realpath "$(dirname "${2:-$build/qemu-system-aarch64}")/memmap-plan")
kernel=$nested/vmlinuz-amd64
base=$nested/initramfs-base.cpio.gz
qcpio=$nested/qemu.cpio
modules="irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci"
mkdir -p "$dl"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

repo=$(realpath "$(dirname "${BASH_SOURCE[0]}")/..")
. "$repo/harness/debs.sh"
# the shell libraries of the guest's /lib (harness/initramfs/)
lib=$(realpath "$(dirname "${BASH_SOURCE[0]}")/initramfs")

# The kernel package: linux-image-amd64 is a metapackage.
kdeb=$(ls "$dl"/linux-image-*-amd64_*_amd64.deb 2>/dev/null | tail -n 1 ||
       true)
if [ -z "$kdeb" ]; then
    kdeb=$(kernel_deb "$dl" amd64)
fi

# The kernel of the iommufd boot: ours, from Debian's source (the
# version the KVM layer's kernel was built from, when it was)
"$repo/harness/kernel-build.sh" "$repo" "$build" x86_64 \
    "$nested/bzImage-memmap-amd64" >&2

if [ ! -f "$kernel" ] || [ ! -f "$base" ] ||
   [ "${BASH_SOURCE[0]}" -nt "$base" ] || [ "$lib/qmp.sh" -nt "$base" ] ||
   [ "$lib/edu.sh" -nt "$base" ]; then
    dpkg-deb -x "$kdeb" "$tmp/k"
    cp "$tmp"/k/boot/vmlinuz-* "$kernel.tmp"
    mv "$kernel.tmp" "$kernel"

    root=$tmp/root
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,sbin,usr/bin,usr/sbin,lib/nested}
    dpkg-deb --fsys-tarfile "$(fetch_deb "$dl" amd64 busybox-static)" |
        tar -x -C "$root" ./bin/busybox

    # shellcheck disable=SC2086
    add_modules "$tmp/k" "$root/lib/nested" $modules
    basename "$(find "$tmp/k" -path '*/lib/modules/*' -prune -type d |
                head -n 1)" > "$root/lib/nested/release"

    cp "$lib/qmp.sh" "$lib/edu.sh" "$root/lib/"

    cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
dmesg -n 1
echo "=== NESTED-BEGIN ==="
echo "I kernel $(uname -r)"
setup() {
    # Debian's kernel takes the modules; ours has everything built in
    if [ "$(uname -r)" = "$(cat /lib/nested/release)" ]; then
        for m in $(cat /lib/nested/order); do
            if ! insmod "/lib/nested/$m.ko"; then
                echo "I insmod $m failed"
                return 1
            fi
        done
    fi
    [ -c /dev/iommu ] && echo "I dev-iommu yes" || echo "I dev-iommu no"
    sysctl -w vm.overcommit_memory=1 >/dev/null
    . /lib/edu.sh
    bind_edu
}
if setup; then
    sh /scenario.sh 2>&1
    echo "=== NESTED-END $? ==="
else
    echo "=== NESTED-END setup ==="
fi
# the console sends what was written before the kernel's last message:
# stty sets its mode (unchanged) only once the output drained (TCSETSW)
stty onlcr 2>/dev/null
poweroff -f
EOF
    chmod 755 "$root/init"
    mkcpio "$root" | gzip -9 > "$base.tmp"
    mv "$base.tmp" "$base"
fi

# QEMU and the memmap-plan next to it, their libraries and the dynamic
# loader at their host paths.
shim=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../tests/vfio/no-iova-caps.c")
stamp=$(stat -L -c '%n %s %Y' "$qemu" "$planner" "$shim")
if [ ! -f "$qcpio" ] || [ "$(cat "$qcpio.stamp" 2>/dev/null)" != "$stamp" ]
then
    root=$tmp/qroot
    mkdir -p "$root/usr/bin"
    strip -o "$root/usr/bin/qemu-system-aarch64" "$qemu"
    strip -o "$root/usr/bin/memmap-plan" "$planner"
    # a kernel before 5.4 for one scenario (LD_PRELOAD): no IOVA ranges
    mkdir -p "$root/usr/lib/nested"
    gcc -O2 -Wall -Werror -shared -fPIC -o "$root/usr/lib/nested/no-iova-caps.so" \
        "$shim" -ldl
    for lib in $( (ldd "$qemu"; ldd "$planner") | grep -o '/[^ ]*' | sort -u); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    mkcpio "$root" > "$qcpio.tmp"
    mv "$qcpio.tmp" "$qcpio"
    echo "$stamp" > "$qcpio.stamp"
fi
