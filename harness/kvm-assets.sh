#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the arm64 host for the KVM layer (tests/kvm/): an arm64 Linux
# guest under our TCG build with virtualization=on, so that it has KVM,
# running our cross-built QEMU (harness/cross-build.sh) under KVM.
#
#   BUILD_DIR/kvm/vmlinuz-arm64           Debian trixie's arm64 kernel
#                                         (6.12: KVM, 52-bit IPA with
#                                         LPA2, virtio-iommu; bookworm's
#                                         6.1 has 48 bits and no
#                                         virtio-iommu)
#   BUILD_DIR/kvm/Image-memmap-arm64      ours, from the same version's
#                                         source, with IOMMUFD and the
#                                         VFIO device cdev, which
#                                         Debian's kernels leave out
#                                         (harness/kernel-build.sh)
#   BUILD_DIR/kvm/initramfs-base.cpio.gz  busybox, the kernel's vfio and
#                                         virtio-iommu modules (loaded
#                                         under Debian's kernel), /init,
#                                         /lib/kvm.sh, /lib/qmp.sh and
#                                         /lib/edu.sh (harness/initramfs/)
#   BUILD_DIR/kvm/qemu.cpio               the cross-built
#                                         qemu-system-aarch64, qemu-img
#                                         and memmap-plan in /usr/bin,
#                                         their shared libraries and the
#                                         dynamic loader
#   BUILD_DIR/kvm/ref.cpio                the pristine base's
#                                         qemu-system-aarch64, as
#                                         /usr/bin/qemu-system-aarch64-ref
#                                         (cross-build.sh ... ref; the
#                                         same libraries)
#   BUILD_DIR/kvm/inner.cpio              what inner guests boot:
#                                         /kvm/vmlinuz (the same kernel),
#                                         /kvm/initramfs.cpio.gz (the
#                                         guest layer's, from
#                                         harness/guest-assets.sh), and
#                                         the firmware layer's AAVMF and
#                                         initramfs (/kvm/QEMU_EFI.fd,
#                                         /kvm/initramfs-uefi.cpio.gz,
#                                         harness/firmware-assets.sh)
#
# The outer /init mounts proc, sys, dev and a tmpfs on /tmp, loads the
# modules, prints "I ..." lines about the host (the IPA size limit, KVM's
# mode, modules that did not load), runs /scenario.sh between the lines
# "=== KVM-BEGIN ===" and "=== KVM-END STATUS ===" on the serial
# console, and powers off.  harness/kvmlib.py adds /scenario.sh as one
# more cpio (the kernel takes concatenated archives), so a scenario
# needs no disk, 9p or network, and its results come back as console
# lines.  The uncompressed cpios unpack faster under TCG than gzip.
#
# The kernel comes from trixie through an apt configuration of its own
# (BUILD_DIR/kvm/apt, arm64 only): the host's apt sources stay bookworm's,
# so that no other layer's "apt-get download" picks a trixie package.
# The .debs are kept in BUILD_DIR/kvm/dl, so reruns need no network;
# outputs are rebuilt only when missing or stale (the base when this
# script is newer, the QEMU cpio when a binary changed).
# Usage: kvm-assets.sh REPO_DIR BUILD_DIR
set -euo pipefail

repo=$(realpath "$1")
build=$(realpath -m "$2")
kvm=$build/kvm
dl=$kvm/dl
cross=$build/cross
obj=$cross/obj
sysroot=$cross/sysroot
kernel=$kvm/vmlinuz-arm64
base=$kvm/initramfs-base.cpio.gz
qcpio=$kvm/qemu.cpio
icpio=$kvm/inner.cpio
rcpio=$kvm/ref.cpio
# virtio-iommu for the virtio-iommu-pci boots; the SMMUv3 driver and
# irqbypass are built into trixie's kernel, KVM too (CONFIG_KVM=y).
modules="virtio-iommu vfio vfio_iommu_type1 vfio-pci-core vfio-pci"
mkdir -p "$dl"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$repo/harness/debs.sh"
# the shell libraries of the guest's /lib (harness/initramfs/)
lib=$repo/harness/initramfs

TRIXIE_APT=$kvm/apt

# The kernel package: the newest trixie linux-image-*-arm64 already in
# dl/, else the one trixie's linux-image-arm64 metapackage names.
kdeb=$(ls "$dl"/linux-image-6.*-arm64_*_arm64.deb 2>/dev/null | sort -V |
       tail -n 1 || true)
if [ -z "$kdeb" ]; then
    if ! trixie apt-get update >&2; then
        echo "kvm-assets.sh: Debian trixie's arm64 package list cannot be" \
             "fetched; the KVM layer needs trixie's kernel" >&2
        exit 1
    fi
    pkg=$(trixie apt-cache depends linux-image-arm64 |
          sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*-arm64\)$/\1/p' |
          head -n 1)
    if [ -z "$pkg" ]; then
        echo "kvm-assets.sh: trixie's linux-image-arm64 names no kernel" >&2
        exit 1
    fi
    (cd "$dl" && trixie apt-get download "$pkg") >&2
    kdeb=$(ls "$dl/$pkg"_*_arm64.deb | sort -V | tail -n 1)
fi

# The kernel of the iommufd boots, ours, from the same version's source
kver=$(dpkg-deb -f "$kdeb" Version)
"$repo/harness/kernel-build.sh" "$repo" "$build" arm64 \
    "$build/kvm/Image-memmap-arm64" "$kver" >&2

stale=
for f in "$0" "$kdeb" "$lib"/*.sh "$repo/harness/debs.sh"; do
    [ "$f" -nt "$base" ] && stale=1
done
if [ ! -f "$kernel" ] || [ ! -f "$base" ] || [ -n "$stale" ]; then
    root=$tmp/root
    # shellcheck disable=SC2086
    outer_root "$root" "$dl" arm64 "$kdeb" "$kernel" kvm $modules
    cp "$lib/kvm.sh" "$root/lib/"

    cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s
. /lib/outer.sh
outer_begin
export PATH=/usr/bin:/bin:/sbin:/usr/sbin
export LD_LIBRARY_PATH=/lib/aarch64-linux-gnu
echo "=== KVM-BEGIN ==="
echo "I uptime $(cut -d' ' -f1 /proc/uptime)"
outer_modules /lib/kvm
dmesg | sed -n 's/.*IPA Size Limit: \([0-9]*\) bits.*/I ipa \1/p'
dmesg | sed -n 's/.*kvm \[[0-9]*\]: \(.*mode initialized.*\)/I kvm-mode \1/p'
[ -c /dev/kvm ] && echo "I dev-kvm yes" || echo "I dev-kvm no"
sysctl -w vm.overcommit_memory=1 >/dev/null
# the edu devices of the VFIO boots, bound to vfio-pci (HOST, GROUP)
if grep -qx 0x11e8 /sys/bus/pci/devices/*/device 2>/dev/null; then
    . /lib/edu.sh
    bind_edu
fi
if [ -f /scenario.sh ]; then
    sh /scenario.sh 2>&1
    outer_end KVM-END $?
else
    outer_end KVM-END no-scenario
fi
EOF
    chmod 755 "$root/init"
    mkcpio "$root" | gzip -9 > "$base.tmp"
    mv "$base.tmp" "$base"
fi

# The cross-built programs, stripped, with the NEEDED closure of their
# shared libraries (readelf, resolved in the sysroot and then in the
# cross compiler's glibc) in /lib/aarch64-linux-gnu and the dynamic
# loader at the path the programs name.  The pristine base's QEMU goes
# into a cpio of its own, which only the boot that runs it takes; its
# libraries are among those.
ref=$build/ref/cross/obj/qemu-system-aarch64
programs="$obj/qemu-system-aarch64 $obj/qemu-img
    $obj/contrib/memmap-plan/memmap-plan $ref"
for p in $programs; do
    if [ ! -x "$p" ]; then
        echo "kvm-assets.sh: $p missing; run harness/cross-build.sh" \
             "$repo $build, and with ref" >&2
        exit 1
    fi
done
# shellcheck disable=SC2086
stamp=$(stat -L -c '%n %s %Y' $programs "$0")
if [ ! -f "$qcpio" ] || [ ! -f "$rcpio" ] ||
   [ "$(cat "$qcpio.stamp" 2>/dev/null)" != "$stamp" ]
then
    root=$tmp/qroot
    mkdir -p "$root/usr/bin" "$root/lib/aarch64-linux-gnu" "$tmp/rroot/usr/bin"
    for p in $programs; do
        if [ "$p" = "$ref" ]; then
            aarch64-linux-gnu-strip \
                -o "$tmp/rroot/usr/bin/qemu-system-aarch64-ref" "$p"
        else
            aarch64-linux-gnu-strip -o "$root/usr/bin/${p##*/}" "$p"
        fi
    done
    libdirs="$sysroot/usr/lib/aarch64-linux-gnu $sysroot/lib/aarch64-linux-gnu
        /usr/aarch64-linux-gnu/lib"
    needed() {
        readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'
    }
    declare -A have=()
    todo=$(for p in $programs; do needed "$p"; done)
    while [ -n "$todo" ]; do
        next=
        for so in $todo; do
            [ -z "${have[$so]:-}" ] || continue
            have[$so]=1
            f=
            for d in $libdirs; do
                if [ -e "$d/$so" ]; then
                    f=$d/$so
                    break
                fi
            done
            if [ -z "$f" ]; then
                echo "kvm-assets.sh: $so not found in $libdirs" >&2
                exit 1
            fi
            cp -L "$f" "$root/lib/aarch64-linux-gnu/$so"
            next="$next $(needed "$f")"
        done
        todo=$next
    done
    interp=$(readelf -l "$obj/qemu-system-aarch64" |
             sed -n 's/.*Requesting program interpreter: \(.*\)\]$/\1/p')
    mkdir -p "$root$(dirname "$interp")"
    cp -L "/usr/aarch64-linux-gnu/lib/${interp##*/}" "$root$interp"
    mkcpio "$root" > "$qcpio.tmp"
    mkcpio "$tmp/rroot" > "$rcpio.tmp"
    mv "$qcpio.tmp" "$qcpio"
    mv "$rcpio.tmp" "$rcpio"
    echo "$stamp" > "$qcpio.stamp"
fi

# The inner guests' kernel and initramfs: the guest layer's initramfs
# (harness/guest-assets.sh: prints the guest's memory, powers off); and
# the firmware layer's AAVMF with its initramfs (prints what the kernel
# got from the firmware, SRAT among it).  firmware-assets.sh runs
# guest-assets.sh first.
"$repo/harness/firmware-assets.sh" "$build" >&2
inner_initrd=$build/guest/initramfs-arm64.cpio.gz
fw=$build/firmware
if [ ! -f "$icpio" ] || [ "$kernel" -nt "$icpio" ] ||
   [ "$inner_initrd" -nt "$icpio" ] ||
   [ "$fw/initramfs-uefi.cpio.gz" -nt "$icpio" ] ||
   [ "$fw/QEMU_EFI.fd" -nt "$icpio" ]; then
    root=$tmp/iroot
    mkdir -p "$root/kvm"
    cp "$kernel" "$root/kvm/vmlinuz"
    cp "$inner_initrd" "$root/kvm/initramfs.cpio.gz"
    cp "$fw/QEMU_EFI.fd" "$fw/initramfs-uefi.cpio.gz" "$root/kvm/"
    mkcpio "$root" > "$icpio.tmp"
    mv "$icpio.tmp" "$icpio"
fi
