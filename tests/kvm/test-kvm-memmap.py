#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Our QEMU under KVM on an emulated arm64 host: Debian trixie's arm64
kernel, booted by our x86 TCG build with virtualization=on, has
/dev/kvm; our cross-built qemu-system-aarch64 (harness/cross-build.sh)
runs in it with -accel kvm -cpu host -M virt,gic-version=3
(harness/kvmlib.py, harness/kvm-assets.sh).  All scenarios run in one
boot of the outer guest; each inner QEMU runs with -S and QMP on its
stdin and stdout (/lib/kvm.sh's q), and its replies, stderr and exit
status come back as console lines that the checks below turn into TAP.

  kvm-is-real           /dev/kvm is there, the kernel log says KVM is
                        initialized, the inner QEMU says KVM is present
                        and enabled (query-kvm, info kvm)
  same-map-kvm-vs-tcg   for three maps (holes only; explicit ram entries,
                        one above 4 GiB; two NUMA nodes with a hole
                        splitting one), query-memmap under KVM equals
                        query-memmap under TCG, same binary and options,
                        and shows the map asked for; so do the guest-RAM
                        lines of info mtree -f and the dumped DTB's
                        memory nodes
  no-map-vs-ref         without a map (plain, two NUMA nodes, memory
                        hot-plug slots), info mtree and the device tree
                        (seeds aside) under KVM equal those of the
                        pristine base, cross-built the same way
                        (harness/cross-build.sh ... ref)
  ipa-limit             RAM at 2^N, N the host's IPA size limit, is
                        refused at start with status 1 and our message
                        naming the entry and the limit (not KVM's, not a
                        crash); RAM ending between 2^40 and 2^44 starts
                        under KVM and query-memmap shows it

  guest-under-kvm       Debian's arm64 kernel booted directly under KVM
                        with two NUMA nodes and a hole splitting one:
                        /proc/iomem, the DT memory nodes and the
                        kernel's node ranges equal the map
  firmware-under-kvm    Debian's AAVMF boots the same kernel under KVM
                        with acpi=force (the firmware layer's
                        initramfs): from pflash with a hole above the
                        lowest piece and two nodes, the kernel's SRAT
                        lines and /proc/iomem equal the map, and the
                        SRAT it got is byte for byte the one QEMU builds
                        for the same options under TCG (read over
                        fw_cfg from the x86 build); from -bios without a
                        map, the SRAT equals the pristine base's
  migration             a running Linux guest (its tmpfs pattern checked
                        in a loop) migrated between two inner QEMUs under
                        KVM with the same map goes on on the destination;
                        a destination with another map refuses the
                        stream, and the source runs on

Then four more boots of the outer guest, with QEMU's "edu" device
(dma_mask all ones) bound to vfio-pci in it, behind the outer board's
SMMUv3 (iommu=smmuv3) and behind a virtio-iommu-pci with aw-bits=44,
each with both VFIO backends of the inner QEMU: the legacy container
(type1) on Debian's kernel, and iommufd (-object iommufd, the device
opened through its cdev) on our kernel built from the same source with
IOMMUFD and VFIO_DEVICE_CDEV (harness/kernel-build.sh), since Debian's
leaves them out.  Every scenario below runs on both:

  vfio-dma              a compatible map (a hole above the lowest piece;
                        behind the virtio-iommu a piece at 8 TiB) with
                        the device cold-plugged: the check traced as
                        fitting, and the inner Linux guest drives edu's
                        DMA engine from RAM above what mem= gave it (in
                        the piece after the hole, or at 8 TiB) into the
                        device and back
  vfio-hotplug          (SMMUv3) hot-plugged into a running VM: taken,
                        guest RAM pinned
  vfio-top              (virtio-iommu) a ram entry at 2^44, beyond the
                        IOMMU's input range and within KVM's: hot-plug
                        refused with our message, the VM running, QMP
                        answering, nothing pinned, and a second inner
                        QEMU takes the device; cold-plugged, exit 1
  vfio-planner          (virtio-iommu) memmap-plan report lists the
                        group's reserved region; plan, with --max-addr
                        2^44, gives a map the inner QEMU takes the
                        device with

For each boot, the first test says whether the outer guest booted and
the scenario script ran to its end; every later one fails when its
behaviour is missing.  Each scenario's time (the outer guest's clock)
and each outer boot's are printed as diagnostics."""

import argparse
import base64
import gzip
import importlib.util
import json
import shlex
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "harness"))
from kvmlib import KvmError, build_assets, run_scenario  # noqa: E402
import guestlib  # noqa: E402


def layer_module(name, path):
    """Another layer's test program as a module (its main() not run)."""
    spec = importlib.util.spec_from_file_location(name, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the ABI layer's fw_cfg reader and the firmware layer's report checks
abi = layer_module("abi", "tests/abi/test-default-abi.py")
uefi = layer_module("uefi", "tests/firmware/test-uefi-memmap.py")

GiB = 1 << 30
MiB = 1 << 20

# The inner machines.  -S: the board is built (the map placed, KVM's VM
# created with its IPA size, memory slots registered) and QMP answers,
# but no guest runs.  The two accelerators get the same options but the
# CPU: "host" is KVM's only.
COMMON = "-nodefaults -display none -S -smp 2,sockets=2"
KVM = "-accel kvm -cpu host"
TCG = "-accel tcg -cpu max"
NUMA = ("-object memory-backend-ram,id=m0,size=1G "
        "-object memory-backend-ram,id=m1,size=1G "
        "-numa node,nodeid=0,memdev=m0,cpus=0 "
        "-numa node,nodeid=1,memdev=m1,cpus=1")
MAPS = {
    # 2 GiB flowing from 1 GiB, split by a 256 MiB hole at 1.5 GiB
    "holes": "-m 2G -M virt,gic-version=3,memmap.0.type=hole,"
             "memmap.0.base=0x60000000,memmap.0.size=256M",
    # 1 GiB at 1 GiB and 1 GiB at 5 GiB
    "ram-above-4g": "-m 2G -M virt,gic-version=3,memmap.0.type=ram,"
                    "memmap.0.base=0x40000000,memmap.0.size=1G,"
                    "memmap.1.type=ram,memmap.1.base=0x140000000,"
                    "memmap.1.size=1G",
    # node 0 (1 GiB at 1 GiB) split by the hole at 1.5 GiB, node 1 after
    "numa-hole": f"-m 2G {NUMA} -M virt,gic-version=3,memmap.0.type=hole,"
                 "memmap.0.base=0x60000000,memmap.0.size=256M",
    # 1 GiB at 1 GiB and 1 GiB at 8 TiB (2^43): RAM ends between 2^40
    # and 2^44
    "tib": "-m 2G -M virt,gic-version=3,memmap.0.type=ram,"
           "memmap.0.base=0x40000000,memmap.0.size=1G,memmap.1.type=ram,"
           "memmap.1.base=0x80000000000,memmap.1.size=1G",
}
# The RAM each map must show in query-memmap: (base, size, node).
EXPECTED_RAM = {
    "holes": [(0x40000000, 512 * MiB, None), (0x70000000, 1536 * MiB, None)],
    "ram-above-4g": [(0x40000000, GiB, None), (0x140000000, GiB, None)],
    "numa-hole": [(0x40000000, 512 * MiB, 0), (0x70000000, 512 * MiB, 0),
                  (0x90000000, GiB, 1)],
    "tib": [(0x40000000, GiB, None), (1 << 43, GiB, None)],
}
EXPECTED_HOLES = {
    "holes": [(0x60000000, 256 * MiB)],
    "ram-above-4g": [],
    "numa-hole": [(0x60000000, 256 * MiB)],
    "tib": [],
}
SAME_MAP = ("holes", "ram-above-4g", "numa-hole")
# The migration scenario's maps: 256 MiB split by a 64 MiB hole at
# 0x48000000 (a), or at 0x44000000 (b)
MAPS["mig-a"] = ("-m 256M -M virt,gic-version=3,memmap.0.type=hole,"
                 "memmap.0.base=0x48000000,memmap.0.size=64M")
MAPS["mig-b"] = ("-m 256M -M virt,gic-version=3,memmap.0.type=hole,"
                 "memmap.0.base=0x44000000,memmap.0.size=64M")
# Without a map, our QEMU and the pristine base's under KVM
NOMAP = {
    "plain": "-m 2G -M virt,gic-version=3",
    "numa": f"-m 2G {NUMA} -M virt,gic-version=3",
    "memory-devices": "-m 1G,slots=2,maxmem=4G -M virt,gic-version=3",
}
# Inner machines that run (no -S), and the inner guests' command line
RUN = "-nodefaults -display none -smp 2,sockets=2"
APPEND = "console=ttyAMA0 panic=-1 quiet"
# AAVMF under KVM, as the firmware layer boots it under TCG: 1 GiB in
# two nodes of 512 MiB, with a hole of 256 MiB above the lowest piece
# (node 0 in two pieces) and without a map
FW_NUMA = ("-smp 2 -object memory-backend-ram,id=m0,size=512M "
           "-object memory-backend-ram,id=m1,size=512M "
           "-numa node,nodeid=0,cpus=0,memdev=m0 "
           "-numa node,nodeid=1,cpus=1,memdev=m1")
FW_MAPS = {
    "map": f"-m 1G {FW_NUMA} -M virt,gic-version=3,memmap.0.type=hole,"
           "memmap.0.base=0x50000000,memmap.0.size=256M",
    "nomap": f"-m 1G {FW_NUMA} -M virt,gic-version=3",
}
FW_PIECES = {
    "map": [(0x40000000, 256 * MiB, 0), (0x60000000, 256 * MiB, 0),
            (0x70000000, 512 * MiB, 1)],
    "nomap": [(0x40000000, 512 * MiB, 0), (0x60000000, 512 * MiB, 1)],
}
FW_APPEND = APPEND + " acpi=force loglevel=7"
# The destination's refusal of a stream from another map: its first line
MIG_REFUSAL = ("the guest memory map of the migration source differs from "
               "this QEMU's")

# Our refusal of RAM beyond the guest physical address space
# (hw/core/memmap.c, check_entry()), for the entry at 2^N with the host's
# IPA limit N as the address width KVM's VM type was sized for
# (virt_kvm_type()).
IPA_REFUSAL = ("memmap.1 (type=ram, base={base:#x}, size=0x40000000): the "
               "range ends at {end:#x}, beyond the {bits}-bit guest physical "
               "address space (last address {last:#x})")
# What upstream's virt_kvm_type() says when the map outgrows the IPA
# limit: must not be what the user gets
KVM_IPA_MESSAGE = "require an IPA range"

SCENARIO = r"""
. /lib/kvm.sh
IPA=$(dmesg | sed -n 's/.*IPA Size Limit: \([0-9]*\) bits.*/\1/p')
MEMDUMP='{"execute": "query-memmap", "id": "memmap"}'
KVMQ='{"execute": "query-kvm", "id": "kvm"}'
INFOKVM='{"execute": "human-monitor-command", "id": "info-kvm",'
INFOKVM="$INFOKVM"' "arguments": {"command-line": "info kvm"}}'
STATUS='{"execute": "query-status", "id": "status"}'
MTREE='{"execute": "human-monitor-command", "id": "mtree",'
MTREE="$MTREE"' "arguments": {"command-line": "info mtree -f"}}'

scenario kvm-is-real
QMP="$KVMQ
$INFOKVM"
q kvm 60 $COMMON $KVM -m 256M -M virt,gic-version=3

scenario same-map-kvm-vs-tcg
for m in holes ram-above-4g numa-hole; do
    eval "map=\$MAP_$(echo "$m" | tr - _)"
    for a in kvm tcg; do
        eval "accel=\$$(echo $a | tr a-z A-Z)"
        QMP="$MEMDUMP
$KVMQ
$MTREE
{\"execute\": \"dumpdtb\", \"id\": \"dtb\", \"arguments\": {\"filename\": \"/tmp/$m.$a.dtb\"}}"
        q "$m.$a" 60 $COMMON $accel $map
        echo "D $m.$a $(gzip -c "/tmp/$m.$a.dtb" | base64 | tr -d '\n')"
    done
done

scenario ipa-limit
if [ -n "$IPA" ]; then
    top=$(printf '0x%x' $((1 << IPA)))
    QMP=$KVMQ
    M=virt,gic-version=3,memmap.0.type=ram,memmap.0.base=0x40000000
    M=$M,memmap.0.size=1G,memmap.1.type=ram,memmap.1.base=$top
    q ipa-beyond 60 $COMMON $KVM -m 2G -M "$M,memmap.1.size=1G"
else
    echo "E no IPA size limit in the kernel log"
fi
QMP="$MEMDUMP
$KVMQ
$STATUS"
q tib.kvm 60 $COMMON $KVM $MAP_tib

scenario guest-under-kvm
g guest 180 $RUN $KVM $MAP_numa_hole -kernel /kvm/vmlinuz \
    -initrd /kvm/initramfs.cpio.gz -append "$APPEND"

scenario no-map-vs-ref
for c in plain numa memory-devices; do
    eval "args=\$NOMAP_$(echo "$c" | tr - _)"
    for v in ours ref; do
        QEMU=/usr/bin/qemu-system-aarch64
        [ $v = ours ] || QEMU=/usr/bin/qemu-system-aarch64-ref
        QMP="$KVMQ
{\"execute\": \"human-monitor-command\", \"id\": \"mtree\", \"arguments\": {\"command-line\": \"info mtree\"}}
{\"execute\": \"dumpdtb\", \"id\": \"dtb\", \"arguments\": {\"filename\": \"/tmp/$c.$v.dtb\"}}"
        q "nomap-$c.$v" 60 $COMMON $KVM $args
        echo "D nomap-$c.$v $(gzip -c "/tmp/$c.$v.dtb" | base64 | tr -d '\n')"
    done
done
QEMU=/usr/bin/qemu-system-aarch64

scenario firmware-under-kvm
# AAVMF from a 64 MiB flash image, as libvirt boots it; then -bios
size=$(wc -c </kvm/QEMU_EFI.fd)
{ cat /kvm/QEMU_EFI.fd; head -c $((64 * 1024 * 1024 - size)) /dev/zero; } \
    >/tmp/code.fd
FWGUEST="-kernel /kvm/vmlinuz -initrd /kvm/initramfs-uefi.cpio.gz"
g uefi-map 300 -nodefaults -display none $KVM $FW_map \
    -drive if=pflash,format=raw,readonly=on,file=/tmp/code.fd \
    $FWGUEST -append "$FW_APPEND"
rm -f /tmp/code.fd
g uefi-nomap.ours 300 -nodefaults -display none $KVM $FW_nomap \
    -bios /kvm/QEMU_EFI.fd $FWGUEST -append "$FW_APPEND"
QEMU=/usr/bin/qemu-system-aarch64-ref
g uefi-nomap.ref 300 -nodefaults -display none $KVM $FW_nomap \
    -bios /kvm/QEMU_EFI.fd $FWGUEST -append "$FW_APPEND"
QEMU=/usr/bin/qemu-system-aarch64

scenario migration
. /lib/qmp.sh
GUEST="-kernel /kvm/vmlinuz -initrd /kvm/initramfs.cpio.gz"
PAT="$APPEND memmap.test=pattern memmap.pattern_mib=16"
r mig.src-start q_start 3 $RUN $KVM $MAP_mig_a $GUEST -append "$PAT" \
    -serial file:/tmp/src.serial
r mig.src-ready until_ok 180 last_match /tmp/src.serial \
    'MEMMAP-PATTERN (ready|FAIL)'
r mig.dst-start q_start 4 $RUN $KVM $MAP_mig_a $GUEST -append "$PAT" \
    -serial file:/tmp/dst.serial -incoming defer
r mig.incoming q_cmd 4 migrate-incoming '{"uri": "unix:/tmp/mig.sock"}'
r mig.migrate q_cmd 3 migrate '{"uri": "unix:/tmp/mig.sock"}'
# migrated: query-migrate on the source once it has ended (or QEMU did)
migration_ended() {
    q_cmd 3 query-migrate >/tmp/mig.out
    grep -qE '"(completed|failed|cancelled)"|^EXIT' /tmp/mig.out &&
        cat /tmp/mig.out
}
migrated() {
    until_ok 300 migration_ended
}
# checks FILE FROM N: FILE's pattern check lines after its first FROM
# lines, "; " between them, when there are N or more; else status 1
checks() {
    tail -n +$(($2 + 1)) "$1" | grep 'MEMMAP-PATTERN check' | tr -d '\r' |
        sed ':a;N;$!ba;s/\n/; /g' >/tmp/checks.out
    [ "$(tr ';' '\n' </tmp/checks.out | grep -c check)" -ge "$3" ] &&
        cat /tmp/checks.out
}
r mig.done migrated
r mig.dst-status q_cmd 4 query-status
# two checks on the destination: the second began and ended there
r mig.dst-checks until_ok 180 checks /tmp/dst.serial 0 2
q_stop 4
q_stop 3
r mig2.src-start q_start 3 $RUN $KVM $MAP_mig_a $GUEST -append "$PAT" \
    -serial file:/tmp/src2.serial
r mig2.src-ready until_ok 180 last_match /tmp/src2.serial \
    'MEMMAP-PATTERN (ready|FAIL)'
r mig2.dst-start q_start 4 $RUN $KVM $MAP_mig_b $GUEST -append "$PAT" \
    -serial file:/tmp/dst2.serial -incoming defer
r mig2.incoming q_cmd 4 migrate-incoming '{"uri": "unix:/tmp/mig2.sock"}'
lines=$(wc -l </tmp/src2.serial)
r mig2.migrate q_cmd 3 migrate '{"uri": "unix:/tmp/mig2.sock"}'
r mig2.done migrated
r mig2.dst-exit q_wait 4 60
r mig2.dst-stderr q_err 4
r mig2.src-status q_cmd 3 query-status
r mig2.src-checks until_ok 180 checks /tmp/src2.serial "$lines" 2
q_stop 4
q_stop 3
scenario end
exit $errors
"""


class Fail(Exception):
    pass


class Run:
    """One inner QEMU's results from the "Q NAME ..." lines."""

    def __init__(self):
        self.out, self.err, self.rc, self.time = [], [], None, None

    def reply(self, ident):
        """The QMP reply with id ident: its "return" value; Fail when
        there is none or it is an error."""
        for line in self.out:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("id") == ident:
                if "return" not in msg:
                    raise Fail(f"{ident}: {msg.get('error')}")
                return msg["return"]
        raise Fail(f"no reply to {ident} (exit status {self.rc}, "
                   f"stderr: {' | '.join(self.err) or '(empty)'})")

    def describe(self):
        return (f"exit status {self.rc}, stderr: "
                f"{' | '.join(self.err) or '(empty)'}")


class Boot:
    """One outer boot's results, sorted from the scenario's console
    lines: info ("I KEY VALUE", from /init), marks ("S SCENARIO
    UPTIME"), runs (an inner QEMU's "Q NAME out|err|rc|time ..." lines,
    from q and g), results ("R KEY OUTPUT", from r), errors ("E ...")
    and other lines, printed as diagnostics."""

    def __init__(self, lines):
        self.info, self.marks, self.runs = {}, [], {}
        self.results, self.errors, self.other = {}, [], []
        self.dtbs = {}
        for line in lines:
            self._add(line)

    def _add(self, line):
        kind, _, rest = line.partition(" ")
        if kind == "I":
            key, _, value = rest.partition(" ")
            self.info.setdefault(key, []).append(value)
        elif kind == "S":
            name, _, t = rest.partition(" ")
            try:
                self.marks.append((name, float(t)))
            except ValueError:
                self.other.append(line)
        elif kind == "Q" and len(rest.split(" ", 2)) >= 2:
            name, what, value = (rest.split(" ", 2) + [""])[:3]
            run = self.runs.setdefault(name, Run())
            if what == "out":
                run.out.append(value)
            elif what == "err":
                run.err.append(value)
            elif what == "rc":
                run.rc = int(value) if value.isdigit() else None
            elif what == "time":
                run.time = float(value)
        elif kind == "R":
            key, _, value = rest.partition(" ")
            self.results[key] = value
        elif kind == "E":
            self.errors.append(rest)
        elif kind == "D":
            key, _, value = rest.partition(" ")
            self.dtbs[key] = value
        else:
            self.other.append(line)

    def dtb(self, key):
        """The device tree dumped under key (gzip, base64: "D KEY ...")."""
        if key not in self.dtbs:
            raise Fail(f"{key}: no device tree dumped")
        return gzip.decompress(base64.b64decode(self.dtbs[key]))

    def times(self):
        return {name: end - t for (name, t), (_, end)
                in zip(self.marks, self.marks[1:])}

    def result(self, key):
        if key not in self.results:
            raise Fail(f"{key}: no result")
        return self.results[key]

    def reply(self, key):
        """The QMP reply printed under key (by q_cmd through r)."""
        value = self.result(key)
        try:
            return json.loads(value)
        except ValueError:
            raise Fail(f"{key}: no QMP reply: {value!r}") from None

    def returned(self, key):
        answer = self.reply(key)
        if "return" not in answer:
            raise Fail(f"{key}: {answer}")
        return answer["return"]


def get_run(runs, name):
    if name not in runs:
        raise Fail(f"inner QEMU {name} did not run")
    return runs[name]


def started(run, name):
    if run.rc != 0:
        raise Fail(f"{name}: {run.describe()}")


def check_map(memmap, name):
    """The map asked for: its RAM pieces and holes, in query-memmap."""
    ram = [(r["base"], r["size"], r.get("node")) for r in memmap
           if r["type"] == "ram"]
    holes = [(r["base"], r["size"]) for r in memmap if r["type"] == "hole"]
    if ram != EXPECTED_RAM[name]:
        raise Fail(f"{name}: RAM pieces {fmt(ram)}, expected "
                   f"{fmt(EXPECTED_RAM[name])}")
    if holes != EXPECTED_HOLES[name]:
        raise Fail(f"{name}: holes {fmt(holes)}, expected "
                   f"{fmt(EXPECTED_HOLES[name])}")


def fmt(pieces):
    return ", ".join(f"{p[0]:#x}+{p[1]:#x}" +
                     (f" node {p[2]}" if p[2:] and p[2] is not None else "")
                     for p in pieces) or "none"


def check_kvm_enabled(run, name):
    kvm = run.reply("kvm")
    if kvm != {"enabled": True, "present": True}:
        raise Fail(f"{name}: query-kvm says {kvm}")


def check_kvm_is_real(info, runs):
    if info.get("dev-kvm") != ["yes"]:
        raise Fail(f"/dev/kvm in the outer guest: {info.get('dev-kvm')}")
    if not any("initialized successfully" in m
               for m in info.get("kvm-mode", [])):
        raise Fail("no \"kvm: ... mode initialized successfully\" in the "
                   "outer kernel's log")
    run = get_run(runs, "kvm")
    started(run, "kvm")
    check_kvm_enabled(run, "kvm")
    text = run.reply("info-kvm")
    if "kvm support: enabled" not in text:
        raise Fail(f"info kvm says {text!r}")


def check_same_map(name, runs):
    k, t = get_run(runs, f"{name}.kvm"), get_run(runs, f"{name}.tcg")
    started(k, f"{name} under KVM")
    started(t, f"{name} under TCG")
    check_kvm_enabled(k, f"{name} under KVM")
    mk, mt = k.reply("memmap"), t.reply("memmap")
    if mk != mt:
        diff = [f"KVM {a} / TCG {b}" for a, b in zip(mk, mt) if a != b]
        if len(mk) != len(mt):
            diff.append(f"{len(mk)} regions under KVM, {len(mt)} under TCG")
        raise Fail(f"{name}: query-memmap differs: " + "; ".join(diff[:6]))
    check_map(mk, name)


def guest_ram_lines(mtree):
    """The guest-RAM lines of `info mtree -f`'s flat view of the
    "memory" address space ("START-END (prio N, ram): NAME [@OFFSET]"),
    without the accelerator's name after them and without KVM's stolen
    time region (pvtime), which TCG does not have."""
    lines, inside = [], False
    for line in mtree.splitlines():
        if line.startswith("FlatView"):
            inside = False
        elif line.strip() == 'AS "memory", root: system':
            inside = True
        elif inside and ", ram): " in line and "pvtime" not in line:
            lines.append(line.strip().removesuffix(" KVM"))
    return lines


def fdt_memory_nodes(blob):
    """The /memory@... nodes of a flattened device tree: [(name, reg
    as (base, size) pairs, numa-node-id or None)]."""
    magic, _, off_struct, off_strings = struct.unpack_from(">IIII", blob)
    if magic != 0xd00dfeed:
        raise Fail(f"not a device tree blob (magic {magic:#x})")
    nodes, path, pos = [], [], off_struct
    while True:
        (token,) = struct.unpack_from(">I", blob, pos)
        pos += 4
        if token == 1:                          # FDT_BEGIN_NODE
            end = blob.index(b"\0", pos)
            path.append(blob[pos:end].decode())
            pos = (end + 4) & ~3
            if len(path) == 2 and path[1].startswith("memory@"):
                nodes.append([path[1], [], None])
        elif token == 2:                        # FDT_END_NODE
            path.pop()
        elif token == 3:                        # FDT_PROP
            length, nameoff = struct.unpack_from(">II", blob, pos)
            value = blob[pos + 8:pos + 8 + length]
            pos = (pos + 8 + length + 3) & ~3
            name = blob[off_strings + nameoff:
                        blob.index(b"\0", off_strings + nameoff)].decode()
            if len(path) == 2 and path[1].startswith("memory@"):
                if name == "reg":
                    cells = struct.unpack(f">{length // 8}Q", value)
                    nodes[-1][1] = list(zip(cells[0::2], cells[1::2]))
                elif name == "numa-node-id":
                    nodes[-1][2] = struct.unpack(">I", value)[0]
        elif token == 4:                        # FDT_NOP
            continue
        elif token == 9:                        # FDT_END
            return sorted(tuple(n) for n in nodes)
        else:
            raise Fail(f"bad device tree token {token} at {pos - 4}")


def check_same_views(name, b):
    """The guest-RAM lines of the memory tree and the DTB's memory nodes
    under KVM equal TCG's, and the DTB shows the map's pieces."""
    k, t = get_run(b.runs, f"{name}.kvm"), get_run(b.runs, f"{name}.tcg")
    mk, mt = guest_ram_lines(k.reply("mtree")), guest_ram_lines(t.reply("mtree"))
    if not mk or mk != mt:
        raise Fail(f"{name}: info mtree -f guest RAM under KVM {mk}, under "
                   f"TCG {mt}")
    dk = fdt_memory_nodes(b.dtb(f"{name}.kvm"))
    dt = fdt_memory_nodes(b.dtb(f"{name}.tcg"))
    if dk != dt:
        raise Fail(f"{name}: DTB memory nodes under KVM {dk}, under TCG {dt}")
    want = sorted((f"memory@{base:x}", [(base, size)], node)
                  for base, size, node in EXPECTED_RAM[name])
    if dk != want:
        raise Fail(f"{name}: DTB memory nodes {dk}, expected {want}")


def ipa_bits(info):
    values = info.get("ipa", [])
    if len(values) != 1 or not values[0].isdigit():
        raise Fail(f"no \"IPA Size Limit: N bits\" in the outer kernel's "
                   f"log ({values})")
    return int(values[0])


def check_ipa_beyond(info, runs):
    bits = ipa_bits(info)
    run = get_run(runs, "ipa-beyond")
    base = 1 << bits
    want = IPA_REFUSAL.format(base=base, end=base + GiB - 1, bits=bits,
                              last=base - 1)
    stderr = "\n".join(run.err)
    if run.rc != 1:
        raise Fail(f"RAM at 2^{bits}: {run.describe()}; expected exit "
                   f"status 1")
    if want not in stderr:
        raise Fail(f"RAM at 2^{bits}: stderr {stderr!r} lacks {want!r}")
    if KVM_IPA_MESSAGE in stderr:
        raise Fail(f"RAM at 2^{bits}: KVM's own message: {stderr!r}")
    if any(line.startswith("{") for line in run.out[1:]):
        raise Fail(f"RAM at 2^{bits}: QMP answered: {run.out}")


def check_tib(info, runs):
    bits = ipa_bits(info)
    if bits < 44:
        raise Fail(f"the host's IPA limit is {bits} bits, below the 44 "
                   f"this case needs")
    run = get_run(runs, "tib.kvm")
    started(run, "RAM at 2^43 under KVM")
    check_kvm_enabled(run, "RAM at 2^43")
    check_map(run.reply("memmap"), "tib")
    status = run.reply("status")
    if status.get("status") != "prelaunch":
        raise Fail(f"RAM at 2^43: query-status says {status}")


def guest_report(b, name, what):
    """The lines an inner guest (run NAME, WHAT in messages) printed
    between the guest layer's markers; it must have exited with 0."""
    run = get_run(b.runs, name)
    if run.rc != 0:
        raise Fail(f"{what}: {run.describe()}")
    lines = [line.strip() for line in run.out]
    if guestlib.BEGIN not in lines or guestlib.END not in lines:
        raise Fail(f"{what}: no memory report on its console "
                   f"(last lines: {' | '.join(lines[-8:])})")
    begin = lines.index(guestlib.BEGIN)
    return lines[begin + 1:lines.index(guestlib.END)]


def check_guest(b):
    """The inner Linux guest under KVM reports the numa-hole map."""
    report = guestlib.parse(guest_report(b, "guest", "guest under KVM"))
    errors = guestlib.check(report, EXPECTED_RAM["numa-hole"])
    if errors:
        raise Fail("guest under KVM: " + "; ".join(errors))


def check_nomap_ref(name, b):
    """Without a map, our QEMU's memory tree and device tree (its random
    seeds aside) under KVM equal the pristine base's."""
    ours = get_run(b.runs, f"nomap-{name}.ours")
    ref = get_run(b.runs, f"nomap-{name}.ref")
    for run, who in ((ours, "ours"), (ref, "the base's")):
        started(run, f"{name}, {who}")
        check_kvm_enabled(run, f"{name}, {who}")
    mo, mr = (abi.memory_address_space(run.reply("mtree"))
              for run in (ours, ref))
    if "ram" not in mo or mo != mr:
        raise Fail(f"{name}: info mtree under KVM differs from the base's: "
                   + abi.first_difference(mo, mr))
    do, dr = (dts(b.dtb(f"nomap-{name}.{v}")) for v in ("ours", "ref"))
    if "memory@" not in do or do != dr:
        raise Fail(f"{name}: the device tree under KVM differs from the "
                   "base's: " + abi.first_difference(do, dr))


def dts(blob):
    """A dumped device tree decompiled, its random seeds left out, as
    the ABI layer compares them."""
    with tempfile.NamedTemporaryFile(suffix=".dtb") as f:
        f.write(blob)
        f.flush()
        return abi.decompiled_dtb(f.name)


def uefi_report(b, name):
    """The firmware layer's report of the inner guest NAME (AAVMF under
    KVM), parsed as that layer does."""
    report = uefi.parse_uefi(guest_report(b, name, name))
    if not report["efi"]:
        raise Fail(f"{name}: the kernel did not come up through EFI")
    return report


def check_uefi_map(b):
    """AAVMF under KVM with a hole above the lowest piece: the kernel's
    SRAT lines and /proc/iomem equal the map."""
    report = uefi_report(b, "uefi-map")
    errors = (uefi.check_srat(report, FW_PIECES["map"])
              + uefi.check_iomem(report["iomem"], FW_PIECES["map"]))
    if errors:
        raise Fail("; ".join(errors))


def byte_difference(a, b):
    """Where A and B (bytes) first differ."""
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y),
              min(len(a), len(b)))
    return (f"{len(a)} and {len(b)} bytes, first difference at byte "
            f"{at:#x}: {a[at:at + 8].hex(' ')} | {b[at:at + 8].hex(' ')}")


# The x86 build of our QEMU (the outer QEMU): it reads the SRAT that
# TCG's machine gets over fw_cfg
HOST_QEMU = None


def srat_checksummed(table):
    """TABLE with its checksum byte set as the firmware's loader sets it
    (etc/acpi/tables leaves it for the loader)."""
    t = bytearray(table)
    t[9] = 0
    t[9] = -sum(t) & 0xff
    return bytes(t)


def check_uefi_srat_tcg(b):
    """The SRAT that AAVMF handed to Linux under KVM is the table QEMU
    builds for the same options under TCG."""
    got = uefi_report(b, "uefi-map")["srat_table"]
    if got is None:
        raise Fail("uefi-map: no SRAT in /sys/firmware/acpi/tables")
    blobs = abi.acpi_blobs(str(HOST_QEMU), FW_MAPS["map"])
    want = srat_checksummed(
        abi.tables_by_signature(blobs["etc/acpi/tables"])["SRAT"])
    if got != want:
        raise Fail("the SRAT under KVM differs from TCG's: "
                   + byte_difference(got, want))


def check_uefi_nomap_ref(b):
    """Without a map, the SRAT under KVM and AAVMF is the pristine
    base's, and the kernel's SRAT lines show one range per node."""
    ours = uefi_report(b, "uefi-nomap.ours")
    ref = uefi_report(b, "uefi-nomap.ref")
    errors = uefi.check_srat(ours, FW_PIECES["nomap"])
    if errors:
        raise Fail("; ".join(errors))
    if ours["srat_table"] is None or ours["srat_table"] != ref["srat_table"]:
        raise Fail("the SRAT under KVM differs from the base's: "
                   + byte_difference(ours["srat_table"] or b"",
                                     ref["srat_table"] or b""))


def pattern_checks(b, key, least):
    """At least `least` pattern checks under key, every one ok."""
    value = b.result(key)
    found = [c for c in value.split("; ") if "MEMMAP-PATTERN check" in c]
    if len(found) < least or any(" ok " not in c for c in found):
        raise Fail(f"{key}: {value!r}")


def check_migrated(b):
    for key in ("mig.src-start", "mig.dst-start", "mig.incoming",
                "mig.migrate"):
        b.returned(key)
    if "ready" not in b.result("mig.src-ready"):
        raise Fail(f"source guest: {b.result('mig.src-ready')!r}")
    done = b.returned("mig.done")
    if done.get("status") != "completed":
        raise Fail(f"query-migrate on the source: {done}")
    status = b.returned("mig.dst-status")
    if status.get("status") != "running":
        raise Fail(f"destination after migration: {status}")
    pattern_checks(b, "mig.dst-checks", 2)


def check_mig_refused(b):
    for key in ("mig2.src-start", "mig2.dst-start", "mig2.incoming",
                "mig2.migrate"):
        b.returned(key)
    done = b.returned("mig2.done")
    if done.get("status") != "failed":
        raise Fail(f"query-migrate on the source: {done}")
    if b.result("mig2.dst-exit") != "1":
        raise Fail(f"destination exit status {b.result('mig2.dst-exit')}")
    stderr = b.result("mig2.dst-stderr")
    if MIG_REFUSAL not in stderr:
        raise Fail(f"destination stderr {stderr!r} lacks {MIG_REFUSAL!r}")
    status = b.returned("mig2.src-status")
    if status.get("status") != "running":
        raise Fail(f"source after the refusal: {status}")
    pattern_checks(b, "mig2.src-checks", 2)


# The VFIO boots: the outer guest has an edu device, which /init binds
# to vfio-pci (HOST, GROUP; "I host ADDR group G" and its
# reserved_regions as "I reserved_regions START END TYPE").
EDU = "-device edu,dma_mask=0xffffffffffffffff"
# The outer kernels (in BUILD/kvm): Debian trixie's, and ours from the
# same source with IOMMUFD and VFIO_DEVICE_CDEV, which Debian's leaves
# out (harness/kernel-build.sh)
KERNELS = {"debian": "vmlinuz-arm64", "memmap": "Image-memmap-arm64"}
# The VFIO backends of the inner QEMUs and the outer kernel each runs on
BACKENDS = {"legacy": KERNELS["debian"], "iommufd": KERNELS["memmap"]}
IOMMUS = {
    "smmuv3": ("-M", "iommu=smmuv3", *EDU.split()),
    "viommu": ("-device", "virtio-iommu-pci,aw-bits=44", *EDU.split()),
}
# The reserved region each IOMMU gives the group (the software MSI
# window of the SMMUv3 driver, the ITS doorbell that virt declares for
# the virtio-iommu)
RESERVED = {
    "smmuv3": "0x0000000008000000 0x00000000080fffff msi",
    "viommu": "0x0000000008090000 0x000000000809ffff msi",
}
# The DMA maps: 256 MiB, of which the kernel takes the lowest piece of
# 192 MiB (mem=; the boot loader puts kernel, initrd and DTB there), the
# guest's DMA buffer in the other: after a hole (SMMUv3), at 8 TiB
# (virtio-iommu)
DMA_MAPS = {
    "smmuv3": ("-m 256M -M virt,gic-version=3,memmap.0.type=hole,"
               "memmap.0.base=0x4c000000,memmap.0.size=64M",
               "mem=192M memmap.edu_buf=0x50000000"),
    "viommu": ("-m 256M -M virt,gic-version=3,memmap.0.type=ram,"
               "memmap.0.base=0x40000000,memmap.0.size=192M,"
               "memmap.1.type=ram,memmap.1.base=0x80000000000,"
               "memmap.1.size=64M",
               "mem=192M memmap.edu_buf=0x80000000000"),
}
# RAM at 2^44, beyond the virtio-iommu's 44-bit input range
MAP_TOP = ("-m 256M -M virt,gic-version=3,memmap.0.type=ram,"
           "memmap.0.base=0x40000000,memmap.0.size=192M,memmap.1.type=ram,"
           "memmap.1.base=0x100000000000,memmap.1.size=64M")
TOP_REFUSAL = ("guest memory 0x100000000000-0x100003ffffff overlaps "
               "0x100000000000-0xffffffffffffffff, which the host IOMMU "
               "cannot map for this device; guest memory must end below it")
MAP_SMALL = "-m 128M -M virt,gic-version=3"
FITS_TRACE = "vfio_memmap_check "
IOMMUFD_TRACE = "iommufd_cdev_attach_ioas_hwpt "
EDU_IDENT = "0x010000ED"
EDU_PATTERN = "0x1122334455667788"

VFIO_SCENARIO = r"""
. /lib/kvm.sh
. /lib/qmp.sh
PERIPH='{"path": "/machine/peripheral"}'
RP="-device pcie-root-port,id=rp0,chassis=1"
DEV="{\"driver\": \"vfio-pci\", \"host\": \"$HOST\", \"id\": \"hostdev0\","
# the VFIO backend: the legacy container, or iommufd (the device's cdev)
if [ "$BACKEND" = iommufd ]; then
    IOMMUFD="-object iommufd,id=iommufd0"
    RP="$IOMMUFD $RP"
    VOPT=,iommufd=iommufd0
    DEV="$DEV \"iommufd\": \"iommufd0\","
else
    IOMMUFD= VOPT=
fi
DEV="$DEV \"bus\": \"rp0\"}"
wfi_bios /tmp/wfi.bin
WFI="-bios /tmp/wfi.bin"

scenario vfio-dma
g dma 180 $RUN $KVM $DMA_MAP $IOMMUFD -device vfio-pci,host=$HOST$VOPT \
    -trace vfio_memmap_check -trace iommufd_cdev_attach_ioas_hwpt \
    -kernel /kvm/vmlinuz \
    -initrd /kvm/initramfs.cpio.gz \
    -append "$APPEND memmap.test=edu-dma $DMA_APPEND"

if [ "$IOMMU" = smmuv3 ]; then
    scenario vfio-hotplug
    r hot.start q_start 3 $RUN $KVM $DMA_MAP $RP $WFI
    r hot.add q_cmd 3 device_add "$DEV"
    r hot.status q_cmd 3 query-status
    r hot.peripheral q_cmd 3 qom-list "$PERIPH"
    r hot.locked q_locked 3
    q_stop 3
else
    scenario vfio-top
    r top.start q_start 3 $RUN $KVM $MAP_TOP $RP $WFI
    r top.add q_cmd 3 device_add "$DEV"
    r top.status q_cmd 3 query-status
    r top.peripheral q_cmd 3 qom-list "$PERIPH"
    r top.locked q_locked 3
    r top.second-start q_start 4 $RUN $KVM $MAP_SMALL $RP $WFI
    r top.second-add q_cmd 4 device_add "$DEV"
    r top.second-peripheral q_cmd 4 qom-list "$PERIPH"
    r top.second-locked q_locked 4
    q_stop 4
    r top.first-status q_cmd 3 query-status
    q_stop 3
    q_start 3 $RUN $KVM $MAP_TOP $RP $WFI \
        -device vfio-pci,host=$HOST,bus=rp0$VOPT >/dev/null
    r top-cold.exit q_wait 3 60
    r top-cold.stderr q_err 3
    q_stop 3 2>/dev/null

    scenario vfio-planner
    memmap-plan report --host kvm --device $HOST >/tmp/report.json
    echo "R planner.report $(tr -d '\n ' </tmp/report.json)"
    PLAN=$(memmap-plan plan --ram 256M --max-addr 0x100000000000 \
           --explicit /tmp/report.json)
    echo "R planner.plan $? $PLAN"
    r planner.start q_start 3 $RUN $KVM -m 256M -M "virt,gic-version=3,$PLAN" \
        $RP $WFI
    r planner.add q_cmd 3 device_add "$DEV"
    r planner.peripheral q_cmd 3 qom-list "$PERIPH"
    q_stop 3
fi
scenario end
exit $errors
"""


def host(b):
    values = b.info.get("host", [])
    if len(values) != 1:
        raise Fail(f"no edu device bound to vfio-pci in the outer guest: "
                   f"{values}, {b.info.get('no', [])}")
    return values[0].split()[0]


def check_bound(iommu, backend, b):
    """edu bound to vfio-pci, in a group with the IOMMU's reserved
    region; for iommufd, /dev/iommu and the device's cdev are there."""
    host(b)
    regions = b.info.get("reserved_regions", [])
    if RESERVED[iommu] not in regions:
        raise Fail(f"reserved_regions {regions}, expected "
                   f"{RESERVED[iommu]!r}")
    if backend == "iommufd" and (b.info.get("dev-iommu") != ["yes"] or
                                 len(b.info.get("cdev", [])) != 1):
        raise Fail(f"iommufd: /dev/iommu {b.info.get('dev-iommu')}, "
                   f"device cdevs {b.info.get('cdev')}")


def check_dma(backend, b):
    """Attached through the backend asked for (iommufd: the device's
    cdev attached to an IOAS, traced; legacy: no such trace), the check
    traced as fitting, and edu's DMA engine copied the pattern from guest
    RAM into the device and back."""
    run = get_run(b.runs, "dma")
    # the guest's console, for the failure messages
    console = "\n".join(["the inner guest's console, last lines:",
                         *run.out[-30:]])
    if run.rc != 0:
        raise Fail(f"the DMA guest: {run.describe()}\n{console}")
    dev = host(b)
    attached = [e for e in run.err if IOMMUFD_TRACE in e]
    if len(attached) != (backend == "iommufd"):
        raise Fail(f"backend {backend}: iommufd attach trace lines "
                   f"{attached}")
    traces = [e for e in run.err if FITS_TRACE in e]
    if len(traces) != 1 or not traces[0].endswith(
            f"({dev}) guest memory fits the usable IOVA ranges: 1"):
        raise Fail(f"trace lines {traces}: want one saying that the "
                   f"guest memory of {dev} fits")
    edu = {}
    for line in run.out:
        line = line.strip()
        if line.startswith("MEMMAP-EDU "):
            key, _, value = line[len("MEMMAP-EDU "):].partition(" ")
            edu[key] = value
    if edu.get("ident") != EDU_IDENT or edu.get("result") != EDU_PATTERN:
        raise Fail(f"the guest's edu run: {edu} (ident {EDU_IDENT}, "
                   f"result {EDU_PATTERN} expected)\n{console}")


def peripheral(b, key, present):
    names = [p["name"] for p in b.returned(key)]
    if ("hostdev0" in names) != present:
        raise Fail(f"{key}: /machine/peripheral has {names}")


def locked_kib(b, key):
    value = b.result(key)
    if not value.isdigit():
        raise Fail(f"{key}: {value!r} is not a number")
    return int(value)


def running(b, key):
    status = b.returned(key)
    if status.get("status") != "running":
        raise Fail(f"{key}: {status}")


def check_hotplug(b):
    b.returned("hot.start")
    b.returned("hot.add")
    running(b, "hot.status")
    peripheral(b, "hot.peripheral", True)
    if locked_kib(b, "hot.locked") < 256 * 1024:
        raise Fail(f"hot.locked: {b.result('hot.locked')} kB pinned, not "
                   f"the guest's 256 MiB")


def refused_with(desc, want, what):
    for w in want:
        if w not in desc:
            raise Fail(f"{what}: {w!r} not in {desc!r}")


def check_top_refused(b):
    b.returned("top.start")
    answer = b.reply("top.add")
    if "error" not in answer:
        raise Fail(f"RAM at 2^44: hot-plug not refused: {answer}")
    refused_with(answer["error"]["desc"], (f"vfio {host(b)}: ", TOP_REFUSAL),
                 "RAM at 2^44")
    running(b, "top.status")
    peripheral(b, "top.peripheral", False)
    if locked_kib(b, "top.locked") != 0:
        raise Fail(f"RAM at 2^44: {b.result('top.locked')} kB pinned")


def check_top_second(b):
    b.returned("top.second-start")
    b.returned("top.second-add")
    peripheral(b, "top.second-peripheral", True)
    if locked_kib(b, "top.second-locked") < 128 * 1024:
        raise Fail(f"second QEMU: {b.result('top.second-locked')} kB "
                   f"pinned")
    running(b, "top.first-status")


def check_top_cold(b):
    if b.result("top-cold.exit") != "1":
        raise Fail(f"RAM at 2^44, cold-plugged: exit status "
                   f"{b.result('top-cold.exit')}")
    refused_with(b.result("top-cold.stderr"),
                 (f"vfio {host(b)}: ", TOP_REFUSAL),
                 "RAM at 2^44, cold-plugged")


# Linux 6.12's virtio-iommu sets a domain's aperture when the domain is
# first attached; iommufd reads it before that, so the IOAS of a device
# behind it has no usable IOVA but 0 (both kernel sides as they are in
# 6.12).  Nothing can be mapped for the device: our check refuses it
# before any DMA map, naming the window.
IOAS_ZERO = ("overlaps 0x1-0xffffffffffffffff, which the host IOMMU cannot "
             "map for this device; guest memory must end below it")


def check_zero_cold(b):
    """Cold-plugged: attached to an IOAS (traced), the check traced as
    not fitting, exit 1 with our message naming the window."""
    run = get_run(b.runs, "dma")
    err = " | ".join(run.err)
    if run.rc != 1:
        raise Fail(f"cold-plugged: {run.describe()}")
    if not any(IOMMUFD_TRACE in e for e in run.err):
        raise Fail(f"no iommufd attach traced: {err!r}")
    refused_with(err, (f"({host(b)}) guest memory fits the usable IOVA "
                       "ranges: 0", f"vfio {host(b)}: ", IOAS_ZERO),
                 "cold-plugged")
    refused_with(b.result("top-cold.stderr"), (IOAS_ZERO,),
                 "cold-plugged with RAM at 2^44")


def check_zero_hot(b):
    """Hot-plug refused the same way, the VM running with nothing pinned;
    the second QEMU refused too, the first still running."""
    b.returned("top.start")
    for key in ("top.add", "top.second-add", "planner.add"):
        answer = b.reply(key)
        if "error" not in answer:
            raise Fail(f"{key}: not refused: {answer}")
        refused_with(answer["error"]["desc"], (f"vfio {host(b)}: ",
                                               IOAS_ZERO), key)
    running(b, "top.status")
    peripheral(b, "top.peripheral", False)
    if locked_kib(b, "top.locked") != 0:
        raise Fail(f"{b.result('top.locked')} kB pinned")
    running(b, "top.first-status")


def check_planner(b):
    report = json.loads(b.result("planner.report") or "{}")
    dev = host(b)
    start, end, kind = RESERVED["viommu"].split()
    regions = [(r["start"], r["end"], r["type"])
               for d in report.get("devices", []) if d["bdf"] == dev
               for r in d["reserved-regions"]]
    if (int(start, 16), int(end, 16), kind) not in regions:
        raise Fail(f"memmap-plan report: {RESERVED['viommu']} not in "
                   f"{report}")
    status, _, plan = b.result("planner.plan").partition(" ")
    if status != "0" or "memmap.0.type=ram" not in plan:
        raise Fail(f"memmap-plan plan: status {status}, {plan!r}")
    b.returned("planner.start")
    b.returned("planner.add")
    peripheral(b, "planner.peripheral", True)


def wrap(check):
    return lambda b: check(b.info, b.runs)


BASE_CHECKS = [
    ("kvm-is-real: /dev/kvm, and the inner QEMU runs with KVM enabled",
     "kvm-is-real", wrap(check_kvm_is_real)),
    *((f"same-map-kvm-vs-tcg: {m}: query-memmap under KVM equals TCG's "
       "and shows the map", "same-map-kvm-vs-tcg",
       lambda b, m=m: check_same_map(m, b.runs)) for m in SAME_MAP),
    *((f"same-map-kvm-vs-tcg: {m}: guest RAM in info mtree -f and the "
       "DTB's memory nodes under KVM equal TCG's", "same-map-kvm-vs-tcg",
       lambda b, m=m: check_same_views(m, b)) for m in SAME_MAP),
    ("ipa-limit: RAM at 2^IPA refused at start, status 1, our message "
     "naming the entry and the limit", "ipa-limit", wrap(check_ipa_beyond)),
    ("ipa-limit: RAM ending between 2^40 and 2^44 starts under KVM, "
     "query-memmap shows it", "ipa-limit", wrap(check_tib)),
    ("guest-under-kvm: Linux with two NUMA nodes and a hole sees the map "
     "(/proc/iomem, DT, node ranges)", "guest-under-kvm", check_guest),
    *((f"no-map-vs-ref: {c}: without a map, info mtree and the device "
       "tree under KVM equal the pristine base's", "no-map-vs-ref",
       lambda b, c=c: check_nomap_ref(c, b)) for c in NOMAP),
    ("firmware-under-kvm: AAVMF from pflash, a hole above the lowest "
     "piece, two nodes, acpi=force: the kernel's SRAT lines and "
     "/proc/iomem equal the map", "firmware-under-kvm", check_uefi_map),
    ("firmware-under-kvm: the SRAT Linux got from AAVMF under KVM is the "
     "table QEMU builds for the same options under TCG",
     "firmware-under-kvm", check_uefi_srat_tcg),
    ("firmware-under-kvm: without a map, the SRAT under KVM (AAVMF from "
     "-bios) is the pristine base's", "firmware-under-kvm",
     check_uefi_nomap_ref),
    ("migration: same map under KVM, the guest's pattern checks go on on "
     "the destination", "migration", check_migrated),
    ("migration: another map refused by the destination, the source and "
     "its guest run on", "migration", check_mig_refused),
]


def vfio_checks(iommu, backend):
    """The checks of a VFIO boot: behind IOMMU, with the legacy container
    or iommufd (BACKEND); the titles name both."""
    name = "SMMUv3" if iommu == "smmuv3" else "virtio-iommu aw-bits=44"
    tag = f"{iommu}, {backend}"
    checks = [
        (f"{tag}: edu bound to vfio-pci in a group with {name}'s "
         "reserved region", "vfio-dma",
         lambda b: check_bound(iommu, backend, b)),
        (f"{tag}: cold-plugged, check traced as fitting, edu DMA from "
         "the inner guest's RAM and back under KVM", "vfio-dma",
         lambda b: check_dma(backend, b)),
    ]
    if iommu == "viommu" and backend == "iommufd":
        return [checks[0], (
            f"{tag}: Linux 6.12 leaves the IOAS only IOVA 0: the "
            "cold-plugged device refused before any DMA map, exit 1, our "
            "message naming the window 0x1-0xffffffffffffffff",
            "vfio-dma", check_zero_cold), (
            f"{tag}: hot-plug refused the same way in three VMs, the VM "
            "running, nothing pinned", "vfio-top", check_zero_hot)]
    if iommu == "smmuv3":
        checks.append((f"{tag}: hot-plugged into a running VM, guest RAM "
                       "pinned", "vfio-hotplug", check_hotplug))
    else:
        checks += [
            (f"{tag}: RAM at 2^44 (beyond the IOMMU, within KVM's IPA): "
             "hot-plug refused, VM running, nothing pinned", "vfio-top",
             check_top_refused),
            (f"{tag}: a second QEMU takes the device, the first runs on",
             "vfio-top", check_top_second),
            (f"{tag}: RAM at 2^44 with the device cold-plugged exits 1 "
             "with our message", "vfio-top", check_top_cold),
            (f"{tag}: memmap-plan report and plan: the map takes the "
             "device", "vfio-planner", check_planner),
        ]
    return checks


def env(pairs):
    return "".join(f"{var}={shlex.quote(val)}\n" for var, val in pairs)


def boots():
    """(name, outer QEMU arguments, initramfs parts, script, checks)"""
    common = [("COMMON", COMMON), ("KVM", KVM), ("TCG", TCG), ("RUN", RUN),
              ("APPEND", APPEND)]
    base = env(common + [(f"MAP_{n.replace('-', '_')}", a)
                         for n, a in MAPS.items()]
               + [(f"NOMAP_{n.replace('-', '_')}", a)
                  for n, a in NOMAP.items()]
               + [(f"FW_{n}", a) for n, a in FW_MAPS.items()]
               + [("FW_APPEND", FW_APPEND)])
    yield ("kvm", (), ("base", "qemu", "ref", "inner"), base + SCENARIO,
           BASE_CHECKS, KERNELS["debian"])
    for backend, kernel in BACKENDS.items():
        for iommu, args in IOMMUS.items():
            script = env(common + [("IOMMU", iommu), ("BACKEND", backend),
                                   ("DMA_MAP", DMA_MAPS[iommu][0]),
                                   ("DMA_APPEND", DMA_MAPS[iommu][1]),
                                   ("MAP_TOP", MAP_TOP),
                                   ("MAP_SMALL", MAP_SMALL)])
            name = iommu if backend == "legacy" else f"{iommu}-{backend}"
            yield (name, args, ("base", "qemu", "inner"),
                   script + VFIO_SCENARIO, vfio_checks(iommu, backend),
                   kernel)


def run_boot(name, args, parts, script, checks, kernel, qemu, build,
             timeout, number):
    """Boot the outer guest once, print its TAP lines from number on;
    return (the next number, failures)."""
    status, failure, lines = None, None, []
    try:
        result = run_scenario(script, qemu, build, parts=parts,
                              extra_args=args, timeout=timeout,
                              kernel=kernel)
        lines, status = result.lines, result.status
        print(f"# {name}: outer guest {result.seconds:.1f} s, of which the "
              f"boot to /init's begin marker {result.boot_seconds:.1f} s")
    except KvmError as e:
        lines, failure, status = e.lines, str(e), e.status
    b = Boot(lines)
    for key, values in b.info.items():
        for v in values:
            print(f"# {name}: {key}: {v}")
    for line in b.other:
        print(f"# {name}: guest: {line}")
    for run_name, run in b.runs.items():
        print(f"# {name}: inner QEMU {run_name}: {run.time} s, exit "
              f"status {run.rc}")
    times = b.times()
    failed = 0
    if failure is None and status != 0:
        failure = (f"scenario script exit status {status}: "
                   + "; ".join(b.errors))
    title = (f"{name}: outer arm64 guest (TCG, virtualization=on"
             f"{', ' + ' '.join(args) if args else ''}) booted, ran every "
             "scenario and powered off")
    if failure:
        failed += 1
        print(f"not ok {number} - {title}")
        for line in failure.splitlines():
            print(f"# {line}")
    else:
        print(f"ok {number} - {title}")
    number += 1
    shown = set()
    for title, scenario, check in checks:
        try:
            check(b)
            print(f"ok {number} - {title}")
        except (Fail, KeyError, TypeError, ValueError, AttributeError,
                guestlib.GuestError) as e:
            failed += 1
            print(f"not ok {number} - {title}")
            for line in str(e).splitlines():
                print(f"# {line}")
        number += 1
        if scenario in times and scenario not in shown:
            shown.add(scenario)
            print(f"# {name}: scenario {scenario}: {times[scenario]:.1f} s")
    return number, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--build", required=True,
                        help="the build folder (build/obj, build/cross, "
                             "build/kvm under it)")
    parser.add_argument("--qemu", help="the outer QEMU, our x86 build "
                        "(default BUILD/obj/qemu-system-aarch64)")
    parser.add_argument("--timeout", type=int, default=900,
                        help="seconds for each outer guest's whole run")
    parser.add_argument("--only", action="append",
                        help="run only this boot (kvm, smmuv3, viommu, "
                        "smmuv3-iommufd, viommu-iommufd); "
                        "repeatable")
    args = parser.parse_args()
    build = Path(args.build).resolve()
    qemu = Path(args.qemu or build / "obj" / "qemu-system-aarch64")
    global HOST_QEMU
    HOST_QEMU = qemu

    plan = [b for b in boots() if not args.only or b[0] in args.only]
    print(f"1..{sum(len(b[4]) + 1 for b in plan)}", flush=True)
    start = time.monotonic()
    try:
        build_assets(build)
    except KvmError as e:
        print(f"# {e}")
    print(f"# assets: {time.monotonic() - start:.1f} s", flush=True)
    number, failed = 1, 0
    for boot in plan:
        number, f = run_boot(*boot, qemu, build, args.timeout, number)
        failed += f
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
