# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=dash
# For the /init of the outer guests of the KVM and nested VFIO layers
# (busybox sh, after busybox --install): what both do before their
# scenarios.

# outer_begin: mount /proc, /sys, /dev and /tmp, keep the kernel's
# messages off the console
outer_begin() {
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev
    mount -t tmpfs tmpfs /tmp
    dmesg -n 1
}

# outer_modules DIR: on Debian's kernel (the release DIR/release
# names), insmod the modules DIR/order lists, in order; ours has them
# built in.  Prints "I kernel RELEASE", "I modules built in" or "I
# insmod-failed MODULE", and "I dev-iommu yes|no" (iommufd's device);
# status 1 when a module did not load.
outer_modules() {
    local m rc=0
    echo "I kernel $(uname -r)"
    if [ "$(uname -r)" = "$(cat "$1/release")" ]; then
        while read -r m; do
            insmod "$1/$m.ko" || { echo "I insmod-failed $m"; rc=1; }
        done < "$1/order"
    else
        echo "I modules built in"
    fi
    [ -c /dev/iommu ] && echo "I dev-iommu yes" || echo "I dev-iommu no"
    return $rc
}

# outer_end STATUS...: the end marker (=== STATUS... ===), then power
# off once the console has sent it: stty sets its (unchanged) mode only
# after the output drained (TCSETSW), so the kernel's last message
# cannot land in the marker's line
outer_end() {
    echo "=== $* ==="
    stty onlcr 2>/dev/null
    poweroff -f
}
