# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=dash
# For the outer guests of the VFIO layers (busybox sh, sourced by /init).

# bind_edu: bind every QEMU "edu" device (1234:11e8) to vfio-pci (a PCI
# device joins an IOMMU group when a driver binds: driver_override,
# then drivers_probe) and export HOST, GROUP for the first and HOST2,
# GROUP2 for the second, if there is one.  Prints "I hostN ADDR group
# G", the group's reserved_regions as "I reserved_regionsN ..." lines
# and, where the kernel has VFIO device cdevs, "I cdevN vfioM"; status 1
# when a device does not bind or there is none.
bind_edu() {
    local d h g n=0 s c
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1234:0x11e8 ] ||
            continue
        h=${d##*/}
        echo vfio-pci >"$d/driver_override"
        echo "$h" >/sys/bus/pci/drivers_probe
        if [ "$(basename "$(readlink "$d/driver")")" != vfio-pci ]; then
            echo "I $h not bound to vfio-pci"
            return 1
        fi
        g=$(basename "$(readlink "$d/iommu_group")")
        n=$((n + 1))
        s=${n#1}
        echo "I host$s $h group $g"
        sed "s/^/I reserved_regions$s /" \
            "/sys/kernel/iommu_groups/$g/reserved_regions"
        # the device's VFIO cdev, where the kernel has them (iommufd)
        for c in "$d"/vfio-dev/vfio*; do
            [ -e "$c" ] && echo "I cdev$s ${c##*/}"
        done
        eval "HOST$s=$h GROUP$s=$g"
    done
    [ "$n" -gt 0 ] || { echo "I no edu device (1234:11e8)"; return 1; }
    export HOST GROUP HOST2 GROUP2
}
