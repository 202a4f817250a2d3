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

stale=
for f in "${BASH_SOURCE[0]}" "$lib"/*.sh "$repo/harness/debs.sh"; do
    [ "$f" -nt "$base" ] && stale=1
done
if [ ! -f "$kernel" ] || [ ! -f "$base" ] || [ -n "$stale" ]; then
    root=$tmp/root
    # shellcheck disable=SC2086
    outer_root "$root" "$dl" amd64 "$kdeb" "$kernel" nested $modules

    cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s
. /lib/outer.sh
outer_begin
echo "=== NESTED-BEGIN ==="
setup() {
    outer_modules /lib/nested || return 1
    sysctl -w vm.overcommit_memory=1 >/dev/null
    . /lib/edu.sh
    bind_edu
}
if setup; then
    sh /scenario.sh 2>&1
    outer_end NESTED-END $?
else
    outer_end NESTED-END setup
fi
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
