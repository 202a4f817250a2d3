#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Real VFIO without hardware: an x86_64 guest under TCG with an emulated
Intel IOMMU binds two of QEMU's "edu" PCI devices to vfio-pci, and our
qemu-system-aarch64 runs inside it and takes them, with guest RAM clear
of or over the IOMMU's MSI window (0xfee00000-0xfeefffff, read from the
guest's reserved_regions).  All scenarios run in one boot of the outer
guest (harness/nestedlib.py); each inner QEMU step prints an "R key
reply" line, and the checks below turn them into TAP.  The first two
tests say whether the outer guest and the scenario script themselves
ran to their end: a timeout, crash or non-zero exit of the outer QEMU, a
missing end marker, or an inner step that got no answer (QEMU gone, a
QMP or qtest timeout) fails them.

The outer guest boots twice, once per VFIO backend of the inner QEMU:
the legacy container (type1) on Debian's kernel, and iommufd
(-object iommufd, the device opened through its cdev) on our kernel
built from Debian's source with IOMMUFD and VFIO_DEVICE_CDEV
(harness/kernel-build.sh), since Debian's leaves them out.  Every
scenario runs on both, except the kernel without IOVA ranges (type1
before Linux 5.4; iommufd's IOMMU_IOAS_IOVA_RANGES came with iommufd).
Where the kernels differ on attach (type1 refuses a group whose reserved
regions hold existing mappings with EINVAL, iommufd with EADDRINUSE),
nothing here reaches the kernel's check: our check refuses first, and
that is what every refusal below asserts, on both backends.

The emulated Intel IOMMU reports the same reserved regions (the MSI
window) for every group, so two devices here always have the same
window: what differs per group (a second group whose window the first
one lacks) cannot be shown under this nesting; the range bookkeeping
for that case is for a unit test."""

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "harness"))
from nestedlib import NestedError, run_scenario  # noqa: E402

# What QEMU says when it refuses the device with RAM over the window:
# every substring ({host} is the device's PCI address, {host2} the
# second device's) must be in the device_add error, and in QEMU's stderr
# for the cold-plug (which also gets the hints: the unusable windows, a
# -machine example).
MISFIT = ("0xf0000000-0xffffffff overlaps 0xfee00000-0xfeefffff, which "
          "the host IOMMU cannot map for this device")
RELAXED_HINT = ("Guest memory in these windows is not DMA-mapped for the "
                "device (x-iova-check=relaxed)")
REFUSAL = {
    "hot-plug": ["vfio {host}: ", "guest memory " + MISFIT],
    "hot-plug2": ["vfio {host2}: ", "guest memory " + MISFIT],
    "cold-plug": ["vfio {host}: ", "guest memory " + MISFIT,
                  "Unusable IOVA windows of the device: "
                  "0xfee00000-0xfeefffff",
                  "A memmap hole keeps guest RAM out of the window, for "
                  "example: -machine memmap.0.type=hole,"
                  "memmap.0.base=0xfee00000,memmap.0.size=0x100000"],
    # iova-check=relaxed: the same text as a warning, and what it means
    "relaxed": ["warning: vfio {host}: ", "guest memory " + MISFIT,
                RELAXED_HINT],
    "relaxed2": ["warning: vfio {host2}: ", "guest memory " + MISFIT,
                 RELAXED_HINT],
    # memory devices in the windows a strict container reserved
    "memory": ["memory device at 0xfe000000-0xfeffffff overlaps "
               "0xfee00000-0xfeefffff, reserved by vfio {host}: the host "
               "IOMMU cannot map it for DMA"],
    # RAM above the host IOMMU's address width
    "top": ["vfio {host}: ",
            "guest memory 0x1000000000000-0x1000003ffffff "
            "overlaps 0x1000000000000-0xffffffffffffffff, which the host "
            "IOMMU cannot map for this device; guest memory must end below "
            "it"],
    "memory-either": ["memory device at 0xfe000000-0xfeffffff overlaps "
                      "0xfee00000-0xfeefffff, reserved by vfio "],
    # RAM that appears at run time in the window of a relaxed device
    "runtime": ["warning: vfio {host}: dimmw at 0xfe000000-0xfeffffff "
                "overlaps 0xfee00000-0xfeefffff, which the host IOMMU "
                "cannot map; it is left unmapped there, and the device "
                "cannot DMA to it"],
}
# The trace event of what the listener leaves unmapped (-trace
# vfio_memmap_unmapped): the machine's RAM at attach, the pc-dimm at run
# time.
UNMAPPED_TRACE = "vfio_memmap_unmapped "
UNMAPPED = {
    "relaxed": "mach-virt.ram 0xf0000000-0xffffffff overlaps unusable "
               "0xfee00000-0xfeefffff: left unmapped there",
    "runtime": "dimmw 0xfe000000-0xfeffffff overlaps unusable "
               "0xfee00000-0xfeefffff: left unmapped there",
}
# What the listener says when the kernel refuses a DMA map: never, now.
DMA_MAP_FAILED = "vfio_container_dma_map("
RUNTIME_WARNING = "it is left unmapped there"

# The inner machines: 256 MiB of RAM, since type1 pins all of it.
MAPS = {
    # RAM at 1 GiB, the default layout: far from the window.
    "compatible": "-M virt -m 256M",
    # One RAM piece 0xf0000000-0xffffffff, over the window.
    "over": "-M virt,memmap.0.type=ram,memmap.0.base=0xf0000000,"
            "memmap.0.size=256M -m 256M",
    # The same, with the PCIe ECAM at 0x3f000000 (low), for qtest.
    "over_low_ecam": "-M virt,highmem-ecam=off,memmap.0.type=ram,"
                     "memmap.0.base=0xf0000000,memmap.0.size=256M -m 256M",
    # The same RAM with a hole over the window: RAM ends right below it
    # and starts again right above it.
    "hole": "-M virt,memmap.0.type=ram,memmap.0.base=0xf0000000,"
            "memmap.0.size=0xee00000,memmap.1.type=hole,"
            "memmap.1.base=0xfee00000,memmap.1.size=1M,memmap.2.type=ram,"
            "memmap.2.base=0xfef00000,memmap.2.size=0x1200000 -m 256M",
    # RAM at 1 GiB and room for memory devices up to 5 GiB: the area
    # 0x80000000-0x13fffffff includes the window.
    "memory": "-M virt -m 256M,slots=4,maxmem=4G",
    # A small compatible VM.
    "small": "-M virt -m 64M",
    # RAM at 1 GiB, the PCIe ECAM at 0x3f000000 (low), for qtest, and
    # the high PCI MMIO window at 512 TiB (0x2000000000000-0x3ffffffffffff),
    # above what the host IOMMU addresses (48 bits).
    "compatible_low_ecam": "-M virt,highmem-ecam=off,highmem-mmio-size=512T "
                           "-m 256M",
    # 192 MiB at 1 GiB and 64 MiB at 2^48, where the host IOMMU's
    # address width (the emulated Intel IOMMU's aw-bits=48) ends.
    "top": "-M virt,memmap.0.type=ram,memmap.0.base=0x40000000,"
           "memmap.0.size=192M,memmap.1.type=ram,"
           "memmap.1.base=0x1000000000000,memmap.1.size=64M -m 256M",
}

# The scenarios, run in order in one guest.  HOST and HOST2 are the
# devices' PCI addresses, set by the guest's /init; r KEY CMD (from
# /lib/qmp.sh) prints "R KEY output" (CMD runs in this shell: q_start
# must not run in a subshell) and counts CMD as failed when it got no
# answer (status 2: QEMU gone, a timeout); the script's exit status
# says whether any did.
SCENARIO = r"""
. /lib/qmp.sh
# the VFIO backend: the legacy container, or iommufd (the device's cdev)
if [ "$BACKEND" = iommufd ]; then
    IOMMUFD="-object iommufd,id=iommufd0"
    VOPT=,iommufd=iommufd0
    JOPT=', "iommufd": "iommufd0"'
else
    IOMMUFD= VOPT= JOPT=
fi
BASE="-cpu max -accel tcg -nodefaults -display none -S $IOMMUFD"
RP="-device pcie-root-port,id=rp0,chassis=1"
RP1="-device pcie-root-port,id=rp1,chassis=2"
RP2="-device pcie-root-port,id=rp2,chassis=3"
RP3="-device pcie-root-port,id=rp3,chassis=4"
COLD="-device vfio-pci,host=$HOST,id=hostdev0,bus=rp0$VOPT"
DEV="{\"driver\": \"vfio-pci\", \"host\": \"$HOST\", \"id\": \"hostdev0\","
DEV="$DEV \"bus\": \"rp0\"$JOPT}"
DEV2="{\"driver\": \"vfio-pci\", \"host\": \"$HOST2\", \"id\": \"hostdev1\","
DEV2="$DEV2 \"bus\": \"rp1\"$JOPT}"
RELAXED=', "x-iova-check": "relaxed"}'
DEVR="${DEV%\}}$RELAXED"
DEV2R="${DEV2%\}}$RELAXED"
PERIPH='{"path": "/machine/peripheral"}'
# A firmware image that never runs (-S): with it, virt has the ACPI GED
# device that pc-dimm hot-plug needs.
head -c 65536 /dev/zero >/tmp/fw.bin
FW="-bios /tmp/fw.bin"
stop() {
    q_stop "$1" || errors=$((errors + 1))
}
t() { echo "I time $1 $(cut -d' ' -f1 /proc/uptime)"; }
# backend N ID SIZE; dimm N ID MEMDEV [ADDR]; vmem N ID BUS MEMDEV [ADDR]
# (virtio-mem, nothing plugged)
backend() {
    q_cmd "$1" object-add \
        "{\"qom-type\": \"memory-backend-ram\", \"id\": \"$2\", \"size\": $3}"
}
dimm() {
    a="{\"driver\": \"pc-dimm\", \"id\": \"$2\", \"memdev\": \"$3\""
    q_cmd "$1" device_add "$a${4:+, \"addr\": $4}}"
}
vmem() {
    a="{\"driver\": \"virtio-mem-pci\", \"requested-size\": 0"
    a="$a, \"id\": \"$2\", \"bus\": \"$3\", \"memdev\": \"$4\""
    q_cmd "$1" device_add "$a${5:+, \"memaddr\": $5}}"
}

# 1. compatible map: hot-plug, then cold-plug.
t compatible
r compatible.start q_start 3 $BASE $MAP_compatible $RP \
    -trace iommufd_cdev_attach_ioas_hwpt
r compatible.memmap q_cmd 3 query-memmap
r compatible.add q_cmd 3 device_add "$DEV"
r compatible.peripheral q_cmd 3 qom-list "$PERIPH"
r compatible.locked q_locked 3
r compatible.stderr q_err 3
stop 3
r compatible-cold.start q_start 3 $BASE $MAP_compatible $RP $COLD
r compatible-cold.status q_cmd 3 query-status
r compatible-cold.peripheral q_cmd 3 qom-list "$PERIPH"
stop 3

# 1b. guest RAM with a file descriptor (memory-backend-memfd): iommufd
# maps such RAM with IOMMU_IOAS_MAP_FILE, which Linux 6.12 lacks, so
# QEMU maps it by address there; the legacy container always does.
t memfd
MEMFD="-object memory-backend-memfd,id=ram0,size=256M"
r memfd.start q_start 3 $BASE $MEMFD -M virt,memory-backend=ram0 -m 256M $RP
r memfd.add q_cmd 3 device_add "$DEV"
r memfd.peripheral q_cmd 3 qom-list "$PERIPH"
r memfd.locked q_locked 3
r memfd.stderr q_err 3
stop 3

# 2. RAM over the window: hot-plug refused, the VM lives on, and a
# second QEMU takes the device while the first still runs.
t over
r over.start q_start 3 $BASE $MAP_over $RP
r over.memmap q_cmd 3 query-memmap
r over.add q_cmd 3 device_add "$DEV"
r over.status q_cmd 3 query-status
r over.peripheral q_cmd 3 qom-list "$PERIPH"
r over.locked q_locked 3
r over.second-start q_start 4 $BASE $MAP_compatible $RP
r over.second-add q_cmd 4 device_add "$DEV"
r over.second-peripheral q_cmd 4 qom-list "$PERIPH"
stop 4
stop 3

# 3. RAM over the window, cold-plug: QEMU exits.
t over-cold
q_start 3 $BASE $MAP_over $RP $COLD >/dev/null
r over-cold.exit q_wait 3
r over-cold.stderr q_err 3
stop 3

# 4. a hole over the window, RAM right below and above it.
t hole
r hole.start q_start 3 $BASE $MAP_hole $RP
r hole.memmap q_cmd 3 query-memmap
r hole.add q_cmd 3 device_add "$DEV"
r hole.peripheral q_cmd 3 qom-list "$PERIPH"
r hole.locked q_locked 3
stop 3
r hole-cold.start q_start 3 $BASE $MAP_hole $RP $COLD
r hole-cold.status q_cmd 3 query-status
stop 3

# 5. the relaxed policy, hot-plugged over the window: attached with a
# warning, the RAM outside the window pinned, the window not.  Then the
# second device: strict, it cannot join the container (RAM in the
# window) nor take one of its own, and is refused; relaxed, it joins the
# container, which pins nothing more.
t relaxed
TRACE="-trace vfio_memmap_unmapped"
r relaxed.start q_start 3 $BASE $MAP_over $RP $RP1 $TRACE
r relaxed.add q_cmd 3 device_add "$DEVR"
r relaxed.status q_cmd 3 query-status
r relaxed.peripheral q_cmd 3 qom-list "$PERIPH"
r relaxed.locked q_locked 3
r relaxed.stderr q_err 3
r mixed.strict q_cmd 3 device_add "$DEV2"
r mixed.peripheral q_cmd 3 qom-list "$PERIPH"
r mixed.locked q_locked 3
r mixed.relaxed q_cmd 3 device_add "$DEV2R"
r mixed.peripheral2 q_cmd 3 qom-list "$PERIPH"
r mixed.locked2 q_locked 3
r mixed.status q_cmd 3 query-status
r mixed.stderr q_err 3
stop 3

# 6. the relaxed policy at start-up, and the device still works: the
# VM runs (qtest accelerator, driven over "-qtest"), its PCI config
# space is written through the ECAM at 0x3f000000 (bus 0, device 2):
# BAR0 at 0x10000000, memory and bus master on.  edu's DMA engine
# (registers 0x80 source, 0x88 destination, 0x90 count, 0x98 command;
# its buffer at 0x40000) copies 8 bytes from guest RAM below the window
# into the device, then from the device to guest RAM above the window.
t relaxed-dma
ROOTDEV="vfio-pci,host=$HOST,id=hostdev0,bus=pcie.0,addr=2$VOPT"
r dma.start q_start 3 -cpu max -nodefaults -display none $IOMMUFD \
    -qtest pipe:/tmp/q3/qt -qtest-log none $MAP_over_low_ecam \
    -device "$ROOTDEV,x-iova-check=relaxed"
r dma.status q_cmd 3 query-status
r dma.peripheral q_cmd 3 qom-list "$PERIPH"
r dma.locked q_locked 3
# edu_dma SRC DST CMD: run one 8-byte transfer, wait until it is done
edu_dma() {
    if ! { qt writeq 0x10000080 "$1" && qt writeq 0x10000088 "$2" &&
           qt writeq 0x10000090 8 && qt writeq 0x10000098 "$3"; } >/dev/null
    then
        echo "edu: no answer"
        return 2
    fi
    i=0
    while [ "$i" -lt 100 ]; do
        v=$(qt readq 0x10000098)
        case $v in
            "OK 0x"*[02468ace]) echo "done $v"; return 0 ;;
            "OK "*) ;;
            *) echo "edu: $v"; return 2 ;;
        esac
        sleep 0.1
        i=$((i + 1))
    done
    echo "edu: transfer still running: $v"
    return 2
}
qt_open 3
r dma.bar qt writel 0x3f010010 0x10000000
r dma.command qt writew 0x3f010004 0x0006
r dma.ident qt readl 0x10000000
r dma.pattern qt writeq 0xf0100000 0x1122334455667788
r dma.clear qt writeq 0xfff00000 0
r dma.to-device edu_dma 0xf0100000 0x40000 1
r dma.from-device edu_dma 0x40000 0xfff00000 3
r dma.result qt readq 0xfff00000
qt_close
r dma.status2 q_cmd 3 query-status
r dma.stderr q_err 3
stop 3

# 7. memory plugged into the window while a strict device is attached
# is refused (virtio-mem, pc-dimm), the VM lives on; elsewhere it is
# taken.  A pc-dimm without an address, when the first free address is
# in the window (a virtio-mem device with nothing plugged, so nothing
# pinned, fills the area below it): placed above the window.
t memory
r memory.start q_start 3 $BASE $FW $MAP_memory $RP $RP1 $RP2
r memory.add q_cmd 3 device_add "$DEV"
r memory.locked0 q_locked 3
r memory.backend backend 3 vmem 16777216
r memory.in-window vmem 3 vm0 rp1 vmem $((0xfe000000))
r memory.status q_cmd 3 query-status
r memory.elsewhere vmem 3 vm1 rp1 vmem $((0x80000000))
r memory.dimm-backend backend 3 dimm0 16777216
r memory.dimm-in-window dimm 3 dimm0 dimm0 $((0xfe000000))
r memory.dimm-status q_cmd 3 query-status
r memory.filler-backend backend 3 fill $((0xfe000000 - 0x81000000))
r memory.filler vmem 3 vm2 rp2 fill $((0x81000000))
r memory.auto-backend backend 3 dimm1 16777216
r memory.dimm-auto dimm 3 dimm1 dimm1
r memory.devices q_cmd 3 query-memory-devices
r memory.locked q_locked 3
r memory.stderr q_err 3
stop 3

# 7b. a virtio-mem device over the window with nothing plugged: VFIO's
# listener maps only the blocks of such memory that the guest plugged,
# none here, and the check follows the listener: the strict device is
# attached, and only the boot RAM is pinned.
t vmem-unplugged
VMW="-object memory-backend-ram,id=vmw,size=32M"
VMW="$VMW -device virtio-mem-pci,id=vmw0,bus=rp1,memdev=vmw"
VMW="$VMW,requested-size=0,memaddr=$((0xfe000000))"
r vmemfirst.start q_start 3 $BASE $FW $MAP_memory $RP $RP1 $VMW
r vmemfirst.add q_cmd 3 device_add "$DEV"
r vmemfirst.peripheral q_cmd 3 qom-list "$PERIPH"
r vmemfirst.locked q_locked 3
stop 3

# 7c. RAM that the guest maps into a window at run time, a RAM BAR
# (ivshmem-plain's BAR 2, 1 MiB at 0x2000000000000 in the high PCI MMIO
# window, above the host IOMMU's 48 bits, programmed over qtest through
# the ECAM as in 6): a strict device's container maps it as QEMU
# without the check does, and the host IOMMU refuses the map: QEMU stops
# with its usual DMA mapping error.  A relaxed device's container leaves
# it unmapped with a warning, and the VM goes on.
t bar
SHM="-object memory-backend-ram,id=shm,size=1M,share=on"
SHM="$SHM -device ivshmem-plain,memdev=shm,bus=pcie.0,addr=3"
# bar_into_window: BAR 2 (64-bit) at 0x2000000000000, memory decoding on
bar_into_window() {
    qt writel 0x3f018018 0 >/dev/null &&
    qt writel 0x3f01801c 0x20000 >/dev/null &&
    qt writew 0x3f018004 0x0002
}
for policy in strict relaxed; do
    q_start 3 -cpu max -nodefaults -display none $IOMMUFD \
        -qtest pipe:/tmp/q3/qt -qtest-log none $MAP_compatible_low_ecam \
        -device "$ROOTDEV,x-iova-check=$policy" $SHM \
        -trace vfio_memmap_unmapped >/tmp/r.out
    echo "R bar-$policy.start $(cat /tmp/r.out)"
    r bar-$policy.locked0 q_locked 3
    qt_open 3
    # strict: QEMU stops here, so no answer is expected (not counted)
    bar_into_window >/tmp/r.out 2>&1
    echo "R bar-$policy.bar $? $(cat /tmp/r.out)"
    qt_close
    if [ "$policy" = relaxed ]; then
        r bar-$policy.status q_cmd 3 query-status
    fi
    r bar-$policy.stderr q_err 3
    q_stop 3 >/dev/null 2>&1
done

# 8. RAM appearing at run time in the window of a relaxed device (a
# pc-dimm at 0xfe000000): taken, the part in the window left unmapped
# with a warning, the VM lives on.
t runtime
r runtime.start q_start 3 $BASE $FW $MAP_memory $RP $TRACE
r runtime.add q_cmd 3 device_add "$DEVR"
r runtime.locked0 q_locked 3
r runtime.backend backend 3 dimmw 16777216
r runtime.dimm dimm 3 dimmw dimmw $((0xfe000000))
r runtime.status q_cmd 3 query-status
r runtime.devices q_cmd 3 query-memory-devices
r runtime.locked q_locked 3
r runtime.stderr q_err 3
stop 3

# 9. two devices in different groups, strict: the second joins the
# first one's container (RAM pinned once); memory plugged after both
# are attached: refused in the window; without an address, with the
# area below the window filled as in 7, a virtio-mem device goes above
# the window and a pc-dimm after it.
t two
r two.start q_start 3 $BASE $FW $MAP_memory $RP $RP1 $RP2 $RP3
r two.add q_cmd 3 device_add "$DEV"
r two.locked0 q_locked 3
r two.add2 q_cmd 3 device_add "$DEV2"
r two.peripheral q_cmd 3 qom-list "$PERIPH"
r two.locked1 q_locked 3
r two.backend backend 3 m2 16777216
r two.in-window dimm 3 dimm2 m2 $((0xfe000000))
r two.filler-backend backend 3 fill $((0xfe000000 - 0x80000000))
r two.filler vmem 3 vm2 rp2 fill $((0x80000000))
r two.vmem-backend backend 3 vm3mem 16777216
r two.vmem vmem 3 vm3 rp3 vm3mem
r two.dimm dimm 3 dimm2 m2
r two.devices q_cmd 3 query-memory-devices
r two.locked2 q_locked 3
r two.status q_cmd 3 query-status
stop 3

# 10. a virtual IOMMU (virtio-iommu-pci) in front of the device, RAM
# over the window.  In bypass mode (boot-bypass=on, no guest driver)
# the device's DMA address space shows system memory one to one: the
# device is refused as without the vIOMMU.  Translating
# (boot-bypass=off), the guest chooses the IOVAs: the check does not
# apply, the device is attached and nothing is mapped yet.
t viommu
VIOMMU="-device virtio-iommu-pci,boot-bypass"
r bypass.start q_start 3 $BASE $MAP_over $RP $VIOMMU=on
r bypass.add q_cmd 3 device_add "$DEV"
r bypass.status q_cmd 3 query-status
r bypass.peripheral q_cmd 3 qom-list "$PERIPH"
r bypass.locked q_locked 3
stop 3
r translate.start q_start 3 $BASE $MAP_over $RP $VIOMMU=off
r translate.add q_cmd 3 device_add "$DEV"
r translate.peripheral q_cmd 3 qom-list "$PERIPH"
r translate.locked q_locked 3
stop 3

# 11. refusal soak: the same incompatible hot-plug 100 times.  QEMU's
# anonymous RSS and open fds after the first, the 50th and the last;
# every reply the same refusal; then nothing is pinned, the VM answers,
# and a compatible QEMU takes the device.
t soak
r soak.start q_start 3 $BASE $MAP_over $RP
r soak.first q_cmd 3 device_add "$DEV"
sed 's/"id": [0-9]*/"id": N/' /tmp/r.out >/tmp/soak.all
r soak.rss-first q_rss 3
r soak.fds-first q_fds 3
n=1
while [ "$n" -lt 100 ]; do
    q_cmd 3 device_add "$DEV" >/tmp/soak.out
    [ $? -lt 2 ] || break
    n=$((n + 1))
    sed 's/"id": [0-9]*/"id": N/' /tmp/soak.out >>/tmp/soak.all
    [ "$n" != 50 ] || r soak.rss-50 q_rss 3
done
echo "R soak.count $n"
echo "R soak.distinct $(sort -u /tmp/soak.all | wc -l)"
echo "R soak.replies $(sort /tmp/soak.all | uniq -c | tr '\n' '|')"
r soak.last cat /tmp/soak.out
r soak.rss-last q_rss 3
r soak.fds-last q_fds 3
r soak.status q_cmd 3 query-status
r soak.peripheral q_cmd 3 qom-list "$PERIPH"
r soak.locked q_locked 3
t soak-second
r soak.second-start q_start 4 $BASE $MAP_small $RP
r soak.second-add q_cmd 4 device_add "$DEV"
r soak.second-peripheral q_cmd 4 qom-list "$PERIPH"
stop 4
stop 3

# 12. memmap-plan on this host: the report lists the window, the map
# that put RAM over it does not fit, the planned one does.
t planner
memmap-plan report --host nested --device $HOST > /tmp/report.json
echo "R planner.report $(tr -d '\n ' < /tmp/report.json)"
memmap-plan check --ram 256M --base 0xf0000000 --memmap '' /tmp/report.json \
    > /tmp/check.out
echo "R planner.check $? $(cat /tmp/check.out)"
PLAN=$(memmap-plan plan --ram 256M --base 0xf0000000 --explicit \
       /tmp/report.json)
echo "R planner.plan $PLAN"
r planner.start q_start 3 $BASE -M "virt,$PLAN" -m 256M $RP
r planner.add q_cmd 3 device_add "$DEV"
r planner.peripheral q_cmd 3 qom-list "$PERIPH"
stop 3

# 13. RAM at 2^48, above what the host IOMMU can address: the device's
# last unusable window runs to the top of the address space, no hole
# can fix that, and the refusal says where guest memory must end.
t top
r top.start q_start 3 $BASE $MAP_top $RP
r top.memmap q_cmd 3 query-memmap
r top.add q_cmd 3 device_add "$DEV"
r top.status q_cmd 3 query-status
r top.peripheral q_cmd 3 qom-list "$PERIPH"
r top.locked q_locked 3
stop 3

# 14. (legacy container) a kernel before 5.4, whose
# VFIO_IOMMU_GET_INFO has no IOVA ranges (tests/vfio/no-iova-caps.c,
# preloaded into QEMU alone): the check is skipped and says so in a
# trace event; the device is attached.  iommufd has no such kernel:
# IOMMU_IOAS_IOVA_RANGES came with it.
if [ "$BACKEND" = legacy ]; then
    t old-kernel
    export LD_PRELOAD=/usr/lib/nested/no-iova-caps.so
    r old.start q_start 3 $BASE $MAP_compatible $RP \
        -trace vfio_memmap_check_skipped -trace vfio_memmap_check
    unset LD_PRELOAD
    r old.add q_cmd 3 device_add "$DEV"
    r old.peripheral q_cmd 3 qom-list "$PERIPH"
    r old.locked q_locked 3
    r old.stderr q_err 3
    stop 3
fi
t end
echo "I steps without an answer: $errors"
[ "$errors" = 0 ]
"""


class Fail(Exception):
    pass


def reply(results, key):
    """The JSON reply recorded under key; Fail on EXIT/TIMEOUT/none."""
    value = results.get(key)
    if value is None:
        raise Fail(f"{key}: no result")
    if not value.startswith("{"):
        raise Fail(f"{key}: {value}")
    return json.loads(value)


def returned(results, key):
    """The "return" value of the reply under key; Fail on an error."""
    answer = reply(results, key)
    if "return" not in answer:
        raise Fail(f"{key}: {answer}")
    return answer["return"]


def returns(*keys_and_substrings):
    """Every key (the leading arguments without a space or quote)
    returned; the last one's reply has every substring."""
    keys = [k for k in keys_and_substrings if re.fullmatch(r"[\w.-]+", k)]
    substrings = keys_and_substrings[len(keys):]

    def check(results, window):
        for key in keys:
            returned(results, key)
        missing = [s for s in substrings if s not in results[keys[-1]]]
        if missing:
            raise Fail(f"{keys[-1]}: {missing} not in {results[keys[-1]]}")
    return check


def number(results, key):
    value = results.get(key, "")
    if not value.isdigit():
        raise Fail(f"{key}: {value!r} is not a number")
    return int(value)


def expect(key, text, kind, results):
    """Fail unless text has every REFUSAL[kind] substring."""
    missing = [s for s in (e.format(host=results.get("host"),
                                    host2=results.get("host2"))
                           for e in REFUSAL[kind]) if s not in text]
    if missing:
        raise Fail(f"{key}: {missing} not in {text!r}")


def refused(key, kind="hot-plug"):
    def check(results, window):
        answer = reply(results, key)
        if "error" not in answer:
            raise Fail(f"{key}: not refused: {answer}")
        expect(key, answer["error"]["desc"], kind, results)
    return check


def refused_by_either(key, kind):
    """Refused with REFUSAL[kind], naming one of the two devices."""
    def check(results, window):
        refused(key, kind)(results, window)
        desc = reply(results, key)["error"]["desc"]
        names = [f"vfio {results.get(h)}" for h in ("host", "host2")]
        if not any(n in desc for n in names):
            raise Fail(f"{key}: none of {names} in {desc!r}")
    return check


def warned(key, kind, times=None):
    """QEMU's stderr has REFUSAL[kind]; its first line exactly `times`
    times when given."""
    def check(results, window):
        text = results.get(key, "")
        expect(key, text, kind, results)
        if times is not None:
            first = REFUSAL[kind][0].format(host=results.get("host"),
                                            host2=results.get("host2"))
            if text.count(first) != times:
                raise Fail(f"{key}: {first!r} {text.count(first)} times, "
                           f"not {times}: {text!r}")
    return check


def traced(key, kind):
    """QEMU's stderr has exactly one vfio_memmap_unmapped trace line,
    for UNMAPPED[kind]."""
    def check(results, window):
        lines = [line for line in results.get(key, "").split("|")
                 if UNMAPPED_TRACE in line]
        if len(lines) != 1 or UNMAPPED[kind] not in lines[0]:
            raise Fail(f"{key}: trace lines {lines}, want one with "
                       f"{UNMAPPED[kind]!r}")
    return check


def expect_trace(results, key, event, name):
    """QEMU's stderr (lines joined by "|") has one trace line of event,
    naming the device name."""
    lines = [line for line in results.get(key, "").split("|")
             if event in line]
    if len(lines) != 1 or f"({name})" not in lines[0]:
        raise Fail(f"{key}: {event!r} lines {lines}, want one for {name}")


# The assigned device's BAR 0 as the guest programs it in scenario 6,
# and what QEMU's iommufd backend says about it: it cannot map MMIO
# (VM_PFNMAP) memory into an IOAS, so the listener's map of the BAR, for
# peer-to-peer DMA, fails with EFAULT and a warning.  The legacy
# container maps it.
BAR0 = (0x10000000, 0x100000)
NO_P2P = "PCI peer-to-peer transactions on BARs are not supported"
FAILED_MAP_RE = re.compile(r"vfio_container_dma_map\(0x[0-9a-f]+, "
                           r"(0x[0-9a-f]+), (0x[0-9a-f]+),")


def no_failed_ram_map(key):
    """No DMA map failed, but for iommufd's of the device's own BAR."""
    def check(results, window):
        if key not in results:
            raise Fail(f"{key}: no result")
        text = results[key]
        failed = [(int(a, 16), int(b, 16))
                  for a, b in FAILED_MAP_RE.findall(text)]
        if results["backend"] == "iommufd" and NO_P2P in text:
            failed = [m for m in failed if m != BAR0]
        if failed or (DMA_MAP_FAILED in text and
                      not FAILED_MAP_RE.search(text)):
            raise Fail(f"{key}: failed DMA maps "
                       f"{[(hex(a), hex(b)) for a, b in failed]}: {text!r}")
    return check


def absent(key, *substrings):
    def check(results, window):
        if key not in results:
            raise Fail(f"{key}: no result")
        found = [s for s in substrings if s in results[key]]
        if found:
            raise Fail(f"{key}: {found} in {results[key]!r}")
    return check


def present(key, *substrings):
    def check(results, window):
        missing = [s for s in substrings if s not in results.get(key, "")]
        if missing:
            raise Fail(f"{key}: {missing} not in {results.get(key)!r}")
    return check


def is_text(key, want):
    def check(results, window):
        if results.get(key) != want:
            raise Fail(f"{key}: {results.get(key)!r}, not {want!r}")
    return check


def starts(key, want):
    def check(results, window):
        if not results.get(key, "").startswith(want):
            raise Fail(f"{key}: {results.get(key)!r} does not start with "
                       f"{want!r}")
    return check


def planner_report(key):
    """The host report lists the device with the window as msi."""
    def check(results, window):
        report = json.loads(results.get(key) or "{}")
        regions = [(r["start"], r["end"], r["type"])
                   for d in report.get("devices", [])
                   if d["bdf"] == results["host"]
                   for r in d["reserved-regions"]]
        if (window[0], window[1], "msi") not in regions:
            raise Fail(f"{key}: {results['host']} window not in {report}")
    return check


def planner_check(key):
    """check names the host, the device and the window, exit 1."""
    def check(results, window):
        want = (f"1 nested: {results['host']} (IOMMU group ",
                f"overlaps msi region {hex(window[0])}-{hex(window[1])}")
        value = results.get(key, "")
        if not value.startswith(want[0]) or want[1] not in value:
            raise Fail(f"{key}: {value!r} lacks {want}")
    return check


def planner_plan(key):
    """The plan is explicit RAM around a hole over the window."""
    def check(results, window):
        want = (f"memmap.1.type=hole,memmap.1.base={hex(window[0])},"
                f"memmap.1.size={hex(window[1] + 1 - window[0])}")
        if want not in results.get(key, ""):
            raise Fail(f"{key}: {results.get(key)!r} lacks {want}")
    return check


def peripheral(key, present=True, **devices):
    """hostdev0 is (not) in /machine/peripheral; or, with keywords, each
    named device is or is not."""
    devices = devices or {"hostdev0": present}

    def check(results, window):
        names = [p["name"] for p in returned(results, key)]
        wrong = [d for d, want in devices.items() if (d in names) != want]
        if wrong:
            raise Fail(f"{key}: /machine/peripheral has {names}")
    return check


def exits(key, status, stderr_key):
    def check(results, window):
        if results.get(key) != str(status):
            raise Fail(f"{key}: exit status {results.get(key)}")
        expect(stderr_key, results[stderr_key], "cold-plug", results)
    return check


def locked(key, least, most):
    """QEMU's VmLck (what type1 pinned), in kB, is in [least, most]."""
    def check(results, window):
        value = number(results, key)
        if not least <= value <= most:
            raise Fail(f"{key}: VmLck {value} kB, not {least}-{most}")
    return check


def locked_delta(key, base, kib):
    """VmLck under key is VmLck under base plus kib."""
    def check(results, window):
        value, before = number(results, key), number(results, base)
        if value - before != kib:
            raise Fail(f"{key}: VmLck {value} kB, {base} {before} kB: "
                       f"difference {value - before}, not {kib}")
    return check


def ram(key, layout):
    """RAM per query-memmap is clear of the window ("clear"), overlaps it
    ("over"), or is clear and adjacent on both sides ("around")."""
    def check(results, window):
        lo, hi = window
        pieces = [(p["base"], p["base"] + p["size"] - 1)
                  for p in returned(results, key)
                  if p["type"] == "ram"]
        over = any(a <= hi and b >= lo for a, b in pieces)
        around = (not over and any(b == lo - 1 for a, b in pieces)
                  and any(a == hi + 1 for a, b in pieces))
        if over != (layout == "over") or (layout == "around" and
                                          not around):
            raise Fail(f"{key}: RAM {[(hex(a), hex(b)) for a, b in pieces]}"
                       f" is not {layout} {hex(lo)}-{hex(hi)}")
    return check


def memory_device(key, device_id, where):
    """query-memory-devices has device_id (its whole region) at address
    `where` (an int), or, for "above", outside the window and at most 32
    MiB above it (the first usable address, aligned), or, for "clear",
    outside it."""
    def check(results, window):
        found = [d["data"] for d in returned(results, key)
                 if d["data"].get("id") == device_id]
        if not found:
            raise Fail(f"{key}: no {device_id}")
        # pc-dimm: addr, size; virtio-mem: memaddr, max-size
        data = found[0]
        addr = data.get("addr", data.get("memaddr"))
        size = data.get("max-size", data.get("size"))
        lo, hi = window
        clear = addr + size - 1 < lo or addr > hi
        if where == "above":
            good = clear and hi < addr <= hi + 1 + (32 << 20)
        elif where == "clear":
            good = clear
        else:
            good = addr == where
        if not good:
            raise Fail(f"{key}: {device_id} at {hex(addr)}-"
                       f"{hex(addr + size - 1)}, window {hex(lo)}-"
                       f"{hex(hi)}: not {where}")
    return check


def two_groups(results, window):
    """The two devices are in different IOMMU groups."""
    groups = (results.get("group"), results.get("group2"))
    if None in groups or groups[0] == groups[1]:
        raise Fail(f"devices {results.get('host')} and "
                   f"{results.get('host2')} in groups {groups}")


def soak_count(results, window):
    if number(results, "soak.count") != 100:
        raise Fail(f"soak.count: {results['soak.count']} hot-plugs answered")


def soak_same(results, window):
    """All 100 replies the same (ids aside), and that the refusal."""
    if number(results, "soak.distinct") != 1:
        raise Fail(f"soak.distinct: {results['soak.distinct']} different "
                   f"replies (count and reply): {results.get('soak.replies')}")
    refused("soak.last")(results, window)
    refused("soak.first")(results, window)


def flat(key, first, last, most):
    """The value under last is at most `most` above the one under first."""
    def check(results, window):
        a, b = number(results, first), number(results, last)
        if b - a > most:
            raise Fail(f"{key}: {a} first, {b} last: grew by more than "
                       f"{most}")
    return check


PRELAUNCH = '"status": "prelaunch"'
RUNNING = '"status": "running"'
IOMMUFD_TRACE = "iommufd_cdev_attach_ioas_hwpt "


def backend_is(backend):
    """The compatible hot-plug went through the backend asked for:
    iommufd traces the attach of the device's cdev to an IOAS, the
    legacy container does not."""
    def check(results, window):
        lines = [line for line in results.get("compatible.stderr",
                                              "").split("|")
                 if IOMMUFD_TRACE in line]
        if len(lines) != (backend == "iommufd"):
            raise Fail(f"compatible.stderr: iommufd attach trace lines "
                       f"{lines} with the {backend} backend")
        if backend == "iommufd" and (results.get("dev-iommu") != "yes" or
                                     "cdev" not in results):
            raise Fail(f"the outer kernel {results.get('kernel')}: "
                       f"/dev/iommu {results.get('dev-iommu')}, the "
                       f"device's cdev {results.get('cdev')}")
    return check


CHECKS = [
    ("compatible map: RAM clear of the window",
     ram("compatible.memmap", "clear")),
    ("compatible map: hot-plug device_add succeeds",
     returns("compatible.add")),
    ("compatible map: hostdev0 in /machine/peripheral",
     peripheral("compatible.peripheral", True)),
    ("compatible map: all 256 MiB of RAM pinned",
     locked("compatible.locked", 256 << 10, 512 << 10)),
    ("compatible map: cold-plug starts",
     returns("compatible-cold.start")),
    ("compatible map: cold-plugged VM answers query-status",
     returns("compatible-cold.status", PRELAUNCH)),
    ("compatible map: cold-plugged hostdev0 in /machine/peripheral",
     peripheral("compatible-cold.peripheral", True)),
    ("guest RAM from memory-backend-memfd (a file descriptor): hot-plug "
     "device_add succeeds",
     returns("memfd.add")),
    ("memfd RAM: hostdev0 in /machine/peripheral, all 256 MiB pinned, no "
     "failed DMA map",
     lambda results, window: (
         peripheral("memfd.peripheral", True)(results, window),
         locked("memfd.locked", 256 << 10, 512 << 10)(results, window),
         absent("memfd.stderr", DMA_MAP_FAILED)(results, window))),
    ("RAM over the window: query-memmap shows it",
     ram("over.memmap", "over")),
    ("RAM over the window: hot-plug refused with the expected error",
     refused("over.add")),
    ("RAM over the window: VM still answers query-status",
     returns("over.status", PRELAUNCH)),
    ("RAM over the window: no ghost hostdev0",
     peripheral("over.peripheral", False)),
    ("RAM over the window: nothing left pinned",
     locked("over.locked", 0, 0)),
    ("RAM over the window: a second QEMU takes the device",
     returns("over.second-add")),
    ("RAM over the window: hostdev0 in the second QEMU",
     peripheral("over.second-peripheral", True)),
    ("RAM over the window: cold-plug exits 1 with the expected error",
     exits("over-cold.exit", 1, "over-cold.stderr")),
    ("hole over the window: RAM right below and above it",
     ram("hole.memmap", "around")),
    ("hole over the window: hot-plug device_add succeeds",
     returns("hole.add")),
    ("hole over the window: hostdev0 in /machine/peripheral",
     peripheral("hole.peripheral", True)),
    ("hole over the window: both RAM pieces pinned",
     locked("hole.locked", 256 << 10, 512 << 10)),
    ("hole over the window: cold-plugged VM answers query-status",
     returns("hole-cold.status", PRELAUNCH)),
    ("relaxed policy: hot-plug over the window succeeds",
     returns("relaxed.add")),
    ("relaxed policy: one warning names the misfit and what relaxed means",
     warned("relaxed.stderr", "relaxed", times=1)),
    ("relaxed policy: no failed DMA map, no run-time warning at attach",
     absent("relaxed.stderr", DMA_MAP_FAILED, RUNTIME_WARNING)),
    ("relaxed policy: the listener leaves the window unmapped (trace)",
     traced("relaxed.stderr", "relaxed")),
    ("relaxed policy: VM still answers query-status",
     returns("relaxed.status", PRELAUNCH)),
    ("relaxed policy: hostdev0 in /machine/peripheral",
     peripheral("relaxed.peripheral", True)),
    ("relaxed policy: RAM outside the window pinned, the 1 MiB window not",
     locked_delta("relaxed.locked", "compatible.locked", -1024)),
    ("two policies: a strict second device refused, RAM over its window",
     refused("mixed.strict", "hot-plug2")),
    ("two policies: hostdev0 still there, no ghost hostdev1",
     peripheral("mixed.peripheral", hostdev0=True, hostdev1=False)),
    ("two policies: nothing more pinned after the refusal",
     locked_delta("mixed.locked", "relaxed.locked", 0)),
    ("two policies: a relaxed second device attached",
     returns("mixed.relaxed")),
    ("two policies: hostdev0 and hostdev1 in /machine/peripheral",
     peripheral("mixed.peripheral2", hostdev0=True, hostdev1=True)),
    ("two policies: it joined the container, nothing pinned twice",
     locked_delta("mixed.locked2", "relaxed.locked", 0)),
    ("two policies: one warning for the second device",
     warned("mixed.stderr", "relaxed2", times=1)),
    ("two policies: VM still answers query-status",
     returns("mixed.status", PRELAUNCH)),
    ("relaxed at start-up: the VM runs (qtest accelerator)",
     returns("dma.start", "dma.status", RUNNING)),
    ("relaxed at start-up: hostdev0 in /machine/peripheral",
     peripheral("dma.peripheral", True)),
    ("relaxed at start-up: the warning",
     warned("dma.stderr", "relaxed", times=1)),
    ("relaxed at start-up: the 1 MiB window not pinned, the rest is",
     locked_delta("dma.locked", "compatible.locked", -1024)),
    ("relaxed device works: BAR0 reads edu's identification",
     is_text("dma.ident", "OK 0x00000000010000ed")),
    ("relaxed device works: edu DMA from guest RAM below the window",
     starts("dma.to-device", "done OK")),
    ("relaxed device works: edu DMA to guest RAM above the window",
     starts("dma.from-device", "done OK")),
    ("relaxed device works: the 8 bytes went through the device",
     is_text("dma.result", "OK 0x1122334455667788")),
    ("relaxed device works: VM running after the transfers, no failed "
     "map of guest RAM",
     lambda results, window: (
         returns("dma.status2", RUNNING)(results, window),
         no_failed_ram_map("dma.stderr")(results, window))),
    ("memory plug: device attached",
     returns("memory.add")),
    ("memory plug: virtio-mem in the window refused",
     refused("memory.in-window", "memory")),
    ("memory plug: VM still answers query-status",
     returns("memory.status", PRELAUNCH)),
    ("memory plug: virtio-mem clear of the window taken",
     returns("memory.elsewhere")),
    ("memory plug: pc-dimm in the window refused",
     refused("memory.dimm-in-window", "memory")),
    ("memory plug: VM still answers query-status after the pc-dimm",
     returns("memory.dimm-status", PRELAUNCH)),
    ("memory plug: virtio-mem filling the area below the window taken",
     returns("memory.filler")),
    ("memory plug: pc-dimm without an address taken",
     returns("memory.dimm-auto")),
    ("memory plug: placed right above the window, not in it",
     memory_device("memory.devices", "dimm1", "above")),
    ("memory plug: the pc-dimm's 16 MiB pinned, the unplugged virtio-mem not",
     locked_delta("memory.locked", "memory.locked0", 16 << 10)),
    ("virtio-mem over the window, nothing plugged: strict device attached "
     "(the check follows what the listener maps)",
     returns("vmemfirst.add")),
    ("virtio-mem over the window: hostdev0 in /machine/peripheral",
     peripheral("vmemfirst.peripheral", True)),
    ("virtio-mem over the window: only the boot RAM pinned",
     locked("vmemfirst.locked", 256 << 10, 300 << 10)),
    ("RAM BAR moved into the window, strict: QEMU's own DMA map error, "
     "nothing left unmapped quietly",
     lambda results, window: (
         present("bar-strict.stderr", "DMA mapping failed")(results, window),
         absent("bar-strict.stderr", UNMAPPED_TRACE)(results, window))),
    ("RAM BAR moved into the window, relaxed: left unmapped with a warning, "
     "the VM goes on",
     lambda results, window: (
         present("bar-relaxed.stderr", UNMAPPED_TRACE, RUNTIME_WARNING)(
             results, window),
         absent("bar-relaxed.stderr", DMA_MAP_FAILED)(results, window),
         returns("bar-relaxed.status")(results, window))),
    ("run-time RAM: relaxed device attached (RAM clear of the window)",
     returns("runtime.add")),
    ("run-time RAM: pc-dimm in the relaxed device's window taken",
     returns("runtime.dimm")),
    ("run-time RAM: the pc-dimm at 0xfe000000",
     memory_device("runtime.devices", "dimmw", 0xfe000000)),
    ("run-time RAM: VM still answers query-status",
     returns("runtime.status", PRELAUNCH)),
    ("run-time RAM: one warning names the device, memory and window",
     warned("runtime.stderr", "runtime", times=1)),
    ("run-time RAM: the listener leaves the window unmapped (trace)",
     traced("runtime.stderr", "runtime")),
    ("run-time RAM: no failed DMA map",
     absent("runtime.stderr", DMA_MAP_FAILED)),
    ("run-time RAM: its 15 MiB outside the window pinned, the window not",
     locked_delta("runtime.locked", "runtime.locked0", 15 << 10)),
    ("two devices: in different IOMMU groups",
     two_groups),
    ("two devices: both hot-plugged",
     returns("two.add", "two.add2")),
    ("two devices: hostdev0 and hostdev1 in /machine/peripheral",
     peripheral("two.peripheral", hostdev0=True, hostdev1=True)),
    ("two devices: the second joined the container, RAM pinned once",
     locked_delta("two.locked1", "two.locked0", 0)),
    ("two devices: pc-dimm in the window refused",
     refused_by_either("two.in-window", "memory-either")),
    ("two devices: virtio-mem filling the area below the window taken",
     returns("two.filler")),
    ("two devices: virtio-mem without an address taken",
     returns("two.vmem")),
    ("two devices: the virtio-mem right above the window, not in it",
     memory_device("two.devices", "vm3", "above")),
    ("two devices: pc-dimm without an address taken",
     returns("two.dimm")),
    ("two devices: the pc-dimm clear of the window",
     memory_device("two.devices", "dimm2", "clear")),
    ("two devices: its 16 MiB pinned once",
     locked_delta("two.locked2", "two.locked1", 16 << 10)),
    ("two devices: VM still answers query-status",
     returns("two.status", PRELAUNCH)),
    ("vIOMMU in bypass mode: hot-plug refused with the expected error",
     refused("bypass.add")),
    ("vIOMMU in bypass mode: VM still answers query-status",
     returns("bypass.status", PRELAUNCH)),
    ("vIOMMU in bypass mode: no ghost hostdev0, nothing pinned",
     lambda results, window: (
         peripheral("bypass.peripheral", False)(results, window),
         locked("bypass.locked", 0, 0)(results, window))),
    ("translating vIOMMU: the check does not apply, device attached",
     returns("translate.add")),
    ("translating vIOMMU: hostdev0 in /machine/peripheral",
     peripheral("translate.peripheral", True)),
    ("translating vIOMMU: nothing mapped before the guest maps it",
     locked("translate.locked", 0, 0)),
    ("refusal soak: 100 hot-plugs answered",
     soak_count),
    ("refusal soak: every one refused the same way",
     soak_same),
    ("refusal soak: open fds the same after the first and the last",
     flat("soak.fds", "soak.fds-first", "soak.fds-last", 0)),
    ("refusal soak: anonymous RSS grew by 1 MiB at most, first to last",
     flat("soak.rss", "soak.rss-first", "soak.rss-last", 1024)),
    ("refusal soak: VM still answers query-status",
     returns("soak.status", PRELAUNCH)),
    ("refusal soak: no ghost hostdev0",
     peripheral("soak.peripheral", False)),
    ("refusal soak: nothing left pinned",
     locked("soak.locked", 0, 0)),
    ("refusal soak: then a compatible QEMU takes the device",
     returns("soak.second-add")),
    ("refusal soak: hostdev0 in that QEMU",
     peripheral("soak.second-peripheral", True)),
    ("memmap-plan report lists the device's window",
     planner_report("planner.report")),
    ("memmap-plan check refuses RAM over the window",
     planner_check("planner.check")),
    ("memmap-plan plan puts a hole over the window",
     planner_plan("planner.plan")),
    ("memmap-plan's map: QEMU takes the device",
     returns("planner.add")),
    ("memmap-plan's map: hostdev0 in /machine/peripheral",
     peripheral("planner.peripheral", True)),
    ("RAM at 2^48: query-memmap shows the piece there",
     returns("top.memmap", '"base": 281474976710656')),
    ("RAM at 2^48: hot-plug refused, guest memory must end below 2^48",
     refused("top.add", "top")),
    ("RAM at 2^48: no hole suggested (none can fix it)",
     absent("top.add", "memmap hole")),
    ("RAM at 2^48: VM still answers query-status, nothing pinned",
     lambda results, window: (
         returns("top.status", PRELAUNCH)(results, window),
         peripheral("top.peripheral", False)(results, window),
         locked("top.locked", 0, 0)(results, window))),
]

# The legacy container only (scenario 14)
LEGACY_CHECKS = [
    ("kernel without IOVA ranges: device attached",
     returns("old.add")),
    ("kernel without IOVA ranges: the check says it was skipped (trace)",
     lambda results, window: (
         expect_trace(results, "old.stderr",
                      "vfio_memmap_check_skipped ", results.get("host")),
         absent("old.stderr", "vfio_memmap_check ")(results, window))),
    ("kernel without IOVA ranges: hostdev0 there, its RAM pinned",
     lambda results, window: (
         peripheral("old.peripheral", True)(results, window),
         locked("old.locked", 256 << 10, 512 << 10)(results, window))),
]

# An unusable reserved region of the device: the kernel's type1 driver
# lets guests map "direct-relaxable" ones.
RESERVED_RE = re.compile(r"I reserved_regions (0x[0-9a-f]+) (0x[0-9a-f]+) "
                         r"(\S+)$")
HOST_RE = re.compile(r"I host(2?) (\S+) group (\S+)$")
# Values printed as comments after the results
SHOWN = ("compatible.locked", "relaxed.locked", "mixed.locked2",
         "dma.locked", "memory.locked0", "memory.locked", "runtime.locked0",
         "runtime.locked", "two.locked0", "two.locked1", "two.locked2",
         "soak.rss-first", "soak.rss-50", "soak.rss-last", "soak.fds-first",
         "soak.fds-last", "soak.count", "soak.distinct")
SHOWN_TEXT = (("hot-plug refusal", "over.add"),
              ("cold-plug refusal", "over-cold.stderr"),
              ("RAM BAR in a window, strict", "bar-strict.stderr"),
              ("RAM BAR in a window, relaxed", "bar-relaxed.stderr"),
              ("relaxed warning", "relaxed.stderr"),
              ("run-time warning", "runtime.stderr"),
              ("RAM at 2^48", "top.add"),
              ("kernel without IOVA ranges", "old.stderr"))
# /init's lines about the outer kernel and the first device's cdev
INFO_RE = re.compile(r"I (kernel|dev-iommu|cdev) (\S+)$")


# The VFIO backends, each in a boot of its own: the legacy container on
# Debian's kernel, iommufd (the device's cdev) on ours
# (harness/kernel-build.sh), since Debian's leaves IOMMUFD out.
BACKENDS = {"legacy": "vmlinuz-amd64", "iommufd": "bzImage-memmap-amd64"}


def checks_of(backend):
    return [(f"the device attached through the {backend} backend"
             + (" (/dev/iommu, the device's cdev)"
                if backend == "iommufd" else ""), backend_is(backend)),
            *CHECKS, *(LEGACY_CHECKS if backend == "legacy" else [])]


def run_backend(backend, args, number):
    """Boot the outer guest with the backend's kernel, run the scenarios
    with BACKEND set, print the backend's TAP lines from number on;
    return how many failed."""
    script = f"BACKEND={backend}\n" + "".join(
        f"MAP_{name}={shlex.quote(argv)}\n" for name, argv in MAPS.items())
    status = None
    try:
        result = run_scenario(script + SCENARIO, timeout=args.timeout,
                              build=args.build, qemu=args.qemu_aarch64,
                              kernel=BACKENDS[backend])
        lines, failure, status = result.lines, None, result.status
        print(f"# {backend}: outer boot and all scenarios: "
              f"{result.seconds:.1f} s, scenario exit status "
              f"{result.status}")
    except NestedError as e:
        lines, failure, status = e.lines, str(e), e.status
    results, window = {"backend": backend}, None
    for line in lines:
        if line.startswith("R "):
            _, key, value = (line + " ").split(" ", 2)
            results[key] = value.strip()
        elif line.startswith("I "):
            print(f"# {backend}: {line[2:]}")
            if m := HOST_RE.match(line):
                results["host" + m[1]], results["group" + m[1]] = m[2], m[3]
            m = RESERVED_RE.match(line)
            if m and m[3] != "direct-relaxable" and window is None:
                window = (int(m[1], 16), int(m[2], 16))
            if m := INFO_RE.match(line):
                results[m[1]] = m[2]
        else:
            print(f"# {backend}: guest: {line}")

    # The outer guest and the scenario script themselves
    failed = 0
    title = (f"{backend}: outer x86_64 guest ({BACKENDS[backend]}) ran "
             "every scenario and powered off")
    if failure:
        failed += 1
        print(f"not ok {number} - {title}")
        for line in failure.splitlines():
            print(f"# {line}")
    else:
        print(f"ok {number} - {title}")
    title = f"{backend}: scenario script: every inner step got an answer"
    if status == 0:
        print(f"ok {number + 1} - {title}")
    else:
        failed += 1
        print(f"not ok {number + 1} - {title}")
        print(f"# scenario exit status: {status}")

    for number_, (name, check) in enumerate(checks_of(backend), number + 2):
        try:
            if window is None:
                raise Fail("no unusable reserved region for the device")
            check(results, window)
            print(f"ok {number_} - {backend}: {name}")
        except (Fail, KeyError, TypeError, ValueError) as e:
            failed += 1
            print(f"not ok {number_} - {backend}: {name}")
            print(f"# {e}")
    for key in SHOWN:
        print(f"# {backend}: {key}: {results.get(key)}")
    for what, key in SHOWN_TEXT:
        if key in results:
            print(f"# {backend}: {what}: {results[key]}")
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qemu-aarch64", required=True)
    parser.add_argument("--build", required=True)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--only", choices=BACKENDS, action="append",
                        help="run this backend's boot only")
    args = parser.parse_args()

    backends = [b for b in BACKENDS if not args.only or b in args.only]
    print(f"1..{sum(len(checks_of(b)) + 2 for b in backends)}", flush=True)
    failed, number = 0, 1
    for backend in backends:
        failed += run_backend(backend, args, number)
        number += len(checks_of(backend)) + 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
