#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The production boot path: Debian's AAVMF (UEFI) firmware boots
Debian's arm64 kernel through its EFI stub with acpi=force, on the virt
board with and without a memmap.  The guest's own view must match the
map: the ACPI SRAT memory affinity lines the kernel logs (one per RAM
piece, with its node) and /proc/iomem, where System RAM plus the ranges
the firmware reserved inside RAM make up exactly the map's RAM pieces.
Maps the firmware cannot boot from (lowest RAM piece moved away from
0x40000000, or too small) are refused by QEMU with exit status 1 within
seconds, with -bios and with pflash alike.  TAP output.

--measure-lowest LO HI STEP instead finds the smallest lowest RAM piece
(at 0x40000000, a hole right above it, the rest of RAM above the hole)
with which the firmware still boots the kernel to the initramfs; with
--firmware-only, with which the firmware alone (no -kernel) still reaches
its UEFI shell.  Both need a QEMU without the firmware rule."""

import argparse
import base64
import re
import select
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "harness"))
from guestlib import (APPEND, DT_RE, MACHINE_ARGS,  # noqa: E402
                      GuestError, boot, merge)

MiB = 1 << 20
GiB = 1 << 30
RAM_BASE = 0x40000000
# virt's two flash banks (0-0x3ffffff code, 0x4000000-0x7ffffff
# variables).  UEFI reports the variable bank as runtime memory, so the
# kernel lists it as "reserved" in /proc/iomem although it is no RAM.
FLASH = (0, 0x08000000 - 1)
UEFI_APPEND = APPEND + " acpi=force loglevel=7"
UEFI_DT_APPEND = APPEND + " loglevel=7"
BOOT_TIMEOUT = 300
# A refused map must make QEMU exit at once; this only bounds a hang.
REFUSAL_TIMEOUT = 30
REFUSAL_MAX_SECONDS = 10

NUMA = ("-smp 2 -object memory-backend-ram,id=m0,size=512M "
        "-object memory-backend-ram,id=m1,size=512M "
        "-numa node,nodeid=0,cpus=0,memdev=m0 "
        "-numa node,nodeid=1,cpus=1,memdev=m1").split()
HOLE = "memmap.0.type=hole,memmap.0.base=0x50000000,memmap.0.size=256M"

# Boots: name, firmware ("bios" or "pflash"), QEMU arguments, RAM
# pieces as (base, size, NUMA node or None without NUMA), optionally the
# hot-pluggable memory area as (base, size, node), and whether the guest
# uses ACPI (acpi=force) or the device tree (acpi=off on the machine, so
# that the firmware hands Linux QEMU's device tree instead of ACPI).
HOLE_NUMA_PIECES = [(RAM_BASE, 256 * MiB, 0), (0x60000000, 256 * MiB, 0),
                    (0x70000000, 512 * MiB, 1)]
BOOTS = [
    dict(name="no map, two nodes", fw="bios",
         args=["-M", "virt", "-m", "1G", *NUMA],
         pieces=[(RAM_BASE, 512 * MiB, 0), (0x60000000, 512 * MiB, 1)]),
    dict(name="hole above the lowest piece, two nodes", fw="bios",
         args=["-M", f"virt,{HOLE}", "-m", "1G", *NUMA],
         pieces=HOLE_NUMA_PIECES),
    # the memory device area starts at the first GiB boundary above the
    # RAM and the holes (0xc0000000), maxmem - ram + 1 GiB per slot long,
    # on the last node, as QEMU lists it
    dict(name="hole above the lowest piece, two nodes, slots=2,maxmem=3G",
         fw="bios",
         args=["-M", f"virt,{HOLE}", "-m", "1G,slots=2,maxmem=3G", *NUMA],
         pieces=HOLE_NUMA_PIECES, hotplug=(0xc0000000, 4 * GiB, 1)),
    # AAVMF needs 128 MiB at 0x40000000 (measured: 128 MiB - 64 KiB
    # dies in the firmware); exactly that much boots
    dict(name="lowest piece of exactly 128 MiB", fw="bios",
         args=["-M", "virt,memmap.0.type=hole,memmap.0.base=0x48000000,"
               "memmap.0.size=256M", "-m", "1G"],
         pieces=[(RAM_BASE, 128 * MiB, None), (0x58000000, 896 * MiB, None)]),
    dict(name="hole above the lowest piece", fw="pflash",
         args=["-M", f"virt,{HOLE}", "-m", "1G"],
         pieces=[(RAM_BASE, 256 * MiB, None), (0x60000000, 768 * MiB, None)]),
    dict(name="explicit RAM entries, one above 4 GiB, one per node",
         fw="bios",
         args=["-M", "virt,memmap.0.type=ram,memmap.0.base=1G,"
               "memmap.0.size=512M,memmap.0.node=0,memmap.1.type=ram,"
               "memmap.1.base=0x100000000,memmap.1.size=512M,"
               "memmap.1.node=1", "-m", "1G", *NUMA],
         pieces=[(RAM_BASE, 512 * MiB, 0), (0x100000000, 512 * MiB, 1)]),
    dict(name="hole above the lowest piece, two nodes, device tree",
         fw="bios", acpi=False,
         args=["-M", f"virt,acpi=off,{HOLE}", "-m", "1G", *NUMA],
         pieces=HOLE_NUMA_PIECES),
]

# (name, firmware, QEMU arguments) that QEMU must refuse
REFUSALS = [
    ("lowest piece moved above a hole at 0x40000000", "bios",
     ["-M", "virt,memmap.0.type=hole,memmap.0.base=0x40000000,"
      "memmap.0.size=1G", "-m", "1G"]),
    ("lowest piece moved above a hole at 0x40000000", "pflash",
     ["-M", "virt,memmap.0.type=hole,memmap.0.base=0x40000000,"
      "memmap.0.size=1G", "-m", "1G"]),
    ("explicit RAM entries starting at 2 GiB", "bios",
     ["-M", "virt,memmap.0.type=ram,memmap.0.base=2G,memmap.0.size=1G",
      "-m", "1G"]),
    ("lowest piece of 128 MiB - 64 KiB at 0x40000000", "bios",
     ["-M", "virt,memmap.0.type=hole,memmap.0.base=0x47ff0000,"
      "memmap.0.size=256M", "-m", "1G"]),
    ("lowest piece of 16 MiB at 0x40000000", "pflash",
     ["-M", "virt,memmap.0.type=hole,memmap.0.base=0x41000000,"
      "memmap.0.size=256M", "-m", "1G"]),
]

IOMEM_RE = re.compile(r"( *)([0-9a-f]+)-([0-9a-f]+) : (.*)$")
SRAT_RE = re.compile(r"ACPI: SRAT: Node (\d+) PXM (\d+) "
                     r"\[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]( hotplug)?"
                     r"( non-volatile)?$")


def parse_uefi(lines):
    """Parse the report of the firmware layer's /init
    (harness/firmware-assets.sh) into a dict: efi (bool), acpi (table
    names), iomem [(depth, start, end_incl, name)], srat [(node, pxm,
    start, end_incl, hotplug)], dt [(memory node name, [(base, size)],
    numa-node-id or None)], srat_table (the table's bytes, or None)."""
    report = {"efi": None, "acpi": [], "iomem": [], "srat": [], "dt": [],
              "srat_table": None}
    for line in lines:
        kind, _, rest = line.partition(": ")
        if kind == "efi" and rest in ("yes", "no"):
            report["efi"] = rest == "yes"
        elif kind == "acpi:" or (kind == "acpi" and rest):
            report["acpi"] = rest.split()
        elif kind == "iomem" and (m := IOMEM_RE.match(rest)):
            report["iomem"].append((len(m[1]) // 2, int(m[2], 16),
                                    int(m[3], 16), m[4]))
        elif kind == "dt" and (m := DT_RE.match(rest)):
            cells = [int(m[2][i:i + 16], 16) for i in range(0, len(m[2]), 16)]
            report["dt"].append((m[1], list(zip(cells[0::2], cells[1::2])),
                                 int(m[3], 16) if m[3] else None))
        elif kind == "log" and (m := SRAT_RE.match(rest)):
            report["srat"].append((int(m[1]), int(m[2]), int(m[3], 16),
                                   int(m[4], 16), bool(m[5])))
        elif kind == "srat-table":
            try:
                report["srat_table"] = base64.b64decode(rest, validate=True)
            except ValueError:
                raise GuestError(f"bad SRAT line: {line!r}") from None
        else:
            raise GuestError(f"unexpected guest report line: {line!r}")
    if report["efi"] is None:
        raise GuestError("the guest report has no efi line")
    return report


def fmt(ranges):
    return " ".join(f"{a:#x}-{b:#x}" for a, b in ranges) or "(none)"


def inside(r, ranges):
    return any(a <= r[0] and r[1] <= b for a, b in ranges)


def overlaps(r, ranges):
    return any(r[0] <= b and a <= r[1] for a, b in ranges)


def check_iomem(iomem, pieces):
    """Top-level /proc/iomem entries against the RAM pieces: System RAM
    only inside pieces; the firmware's "reserved" ranges either inside a
    piece or in the flash; nothing else overlapping a piece; System RAM
    and the reserved ranges inside pieces together cover every piece
    exactly."""
    errors = []
    want = merge((b, b + s - 1) for b, s, _ in pieces)
    top = [(s, e, name) for depth, s, e, name in iomem if depth == 0]
    ram = [(s, e) for s, e, name in top if name == "System RAM"]
    reserved = [(s, e) for s, e, name in top if name == "reserved"]
    other = [(s, e, name) for s, e, name in top
             if name not in ("System RAM", "reserved")]
    for r in ram:
        if not inside(r, want):
            errors.append(f"System RAM {fmt([r])} outside the RAM pieces "
                          f"{fmt(want)}")
    in_ram = [r for r in reserved if inside(r, want)]
    for r in reserved:
        if r not in in_ram and (overlaps(r, want) or not inside(r, [FLASH])):
            errors.append(f"reserved {fmt([r])} neither inside a RAM piece "
                          f"nor inside the flash {fmt([FLASH])}")
    for s, e, name in other:
        if overlaps((s, e), want):
            errors.append(f"{name} {fmt([(s, e)])} overlaps the RAM pieces")
    got = merge(ram + in_ram)
    if got != want:
        errors.append(f"System RAM plus reserved-in-RAM: expected "
                      f"{fmt(want)}, got {fmt(got)} (System RAM "
                      f"{fmt(ram)}; reserved {fmt(reserved)})")
    return errors


def check_srat(report, pieces, hotplug=None):
    """The kernel's SRAT lines: one per piece, node = PXM = the piece's
    node, not hot-pluggable, plus the hot-pluggable area if any; none at
    all without NUMA."""
    numa = pieces[0][2] is not None
    want = sorted((n, n, b, b + s - 1, False) for b, s, n in pieces) \
        if numa else []
    if hotplug:
        b, s, n = hotplug
        want = sorted(want + [(n, n, b, b + s - 1, True)])
    got = sorted(report["srat"])
    errors = []
    if got != want:
        def show(entries):
            return "; ".join(f"node {n} pxm {p} {a:#x}-{b:#x}"
                             + (" hotplug" if h else "")
                             for n, p, a, b, h in entries) or "(none)"
        errors.append(f"SRAT lines: expected {show(want)}, got {show(got)}")
    if numa != ("SRAT" in report["acpi"]):
        errors.append(f"SRAT {'missing from' if numa else 'present in'} the "
                      f"guest's ACPI tables {report['acpi']}")
    return errors


def check_dt(report, pieces):
    """The device tree memory nodes the kernel got from the firmware:
    one per piece, with its node."""
    want = sorted((f"memory@{b:x}", [(b, s)], n) for b, s, n in pieces)
    got = sorted(report["dt"])
    if got == want:
        return []

    def show(nodes):
        return "; ".join(f"{name} {fmt((b, b + s - 1) for b, s in reg)}"
                         + ("" if n is None else f" node {n}")
                         for name, reg, n in nodes) or "(none)"
    return [f"device tree memory nodes: expected {show(want)}, "
            f"got {show(got)}"]


def firmware_args(kind, fw):
    if kind == "bios":
        return ["-bios", str(fw / "QEMU_EFI.fd")]
    return ["-drive", "if=pflash,format=raw,readonly=on,"
            f"file={fw / 'AAVMF_CODE.fd'}"]


def uefi_boot(args, kind, qemu_args, acpi=True):
    start = time.monotonic()
    report = boot(args.qemu, args.kernel, args.initrd,
                  [*firmware_args(kind, args.firmware), *qemu_args],
                  timeout=BOOT_TIMEOUT,
                  append=UEFI_APPEND if acpi else UEFI_DT_APPEND,
                  parser=parse_uefi)
    return report, time.monotonic() - start


def refusal(args, kind, qemu_args):
    """Run QEMU with a map the firmware cannot take: it must exit 1 at
    once with a message that names the firmware rule.  Returns the
    problems and what happened.  No -kernel, so
    that no rule about loading a kernel can be the one that refuses."""
    cmd = [args.qemu, *MACHINE_ARGS, *firmware_args(kind, args.firmware),
           *qemu_args]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True,
                              timeout=REFUSAL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return [f"no exit within {REFUSAL_TIMEOUT} s (hangs): "
                f"{' '.join(cmd)}"], None
    took = time.monotonic() - start
    errors = []
    if proc.returncode != 1:
        errors.append(f"exit status {proc.returncode}, expected 1")
    if took > REFUSAL_MAX_SECONDS:
        errors.append(f"took {took:.1f} s to exit")
    if "firmware" not in proc.stderr.lower():
        errors.append("the message does not mention the firmware")
    if "memmap" not in proc.stderr:
        errors.append("the message does not mention memmap")
    return ([f"{e}; stderr: {proc.stderr.strip()!r}" for e in errors],
            f"exit status {proc.returncode} after {took:.1f} s: "
            f"{proc.stderr.strip()}")


# What the firmware prints when it gives up (it then hangs)
FIRMWARE_DEATH = (b"Synchronous Exception", b"ASSERT ", b"ASSERT_EFI_ERROR")


def reaches(cmd, marker, timeout):
    """Run QEMU until its console prints marker (then kill it), the
    firmware dies, or timeout; return (seconds taken or None, the
    console output)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""
    try:
        while time.monotonic() - start < timeout:
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                chunk = proc.stdout.read1(65536)
                if not chunk:
                    break
                out += chunk
                if marker in out:
                    return time.monotonic() - start, out
                if any(death in out for death in FIRMWARE_DEATH):
                    time.sleep(1)  # the rest of the message
                    out += proc.stdout.read1(65536) if select.select(
                        [proc.stdout], [], [], 0)[0] else b""
                    return None, out
        return None, out
    finally:
        proc.kill()
        proc.wait()


def measure_lowest(args, lo, hi, step):
    """Smallest lowest-piece size in [lo, hi] (multiples of step) with
    which the firmware boots the kernel to the initramfs (or, with
    --firmware-only, reaches the UEFI shell), by bisection; the hole sits
    right above the piece, the rest of -m 1G above it."""
    def boots(size):
        qemu_args = ["-M", f"virt,memmap.0.type=hole,"
                     f"memmap.0.base={RAM_BASE + size:#x},"
                     f"memmap.0.size=256M", "-m", "1G"]
        cmd = [args.qemu, *MACHINE_ARGS,
               *firmware_args("bios", args.firmware), *qemu_args]
        if args.firmware_only:
            goal, marker = "the UEFI shell", b"UEFI Interactive Shell"
        else:
            goal, marker = "the initramfs", b"=== MEMMAP-GUEST-END ==="
            cmd += ["-kernel", args.kernel, "-initrd", args.initrd,
                    "-append", UEFI_APPEND]
        took, out = reaches(cmd, marker, 180)
        print(f"# {size // MiB} MiB: " +
              (f"reaches {goal} in {took:.1f} s" if took else
               f"does not reach {goal}"), flush=True)
        if not took:
            for line in out.decode(errors="replace").splitlines()[-8:]:
                print(f"#   {line}", flush=True)
        return took is not None

    if not boots(hi):
        print(f"# does not boot with {hi // MiB} MiB")
        return 1
    while hi - lo > step:
        mid = lo + (hi - lo) // 2 // step * step
        if boots(mid):
            hi = mid
        else:
            lo = mid
    print(f"smallest lowest RAM piece that boots: {hi} bytes "
          f"({hi // MiB} MiB; {lo // MiB} MiB does not)")
    return 0


def size_arg(text):
    m = re.fullmatch(r"(\d+)([MG]?)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text}")
    return int(m[1]) * {"": 1, "M": MiB, "G": GiB}[m[2]]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True,
                    help="initramfs-uefi.cpio.gz of firmware-assets.sh")
    ap.add_argument("--firmware", required=True, type=Path,
                    help="the folder with QEMU_EFI.fd and AAVMF_CODE.fd")
    ap.add_argument("--measure-lowest", nargs=3, type=size_arg,
                    metavar=("LO", "HI", "STEP"))
    ap.add_argument("--firmware-only", action="store_true")
    args = ap.parse_args()
    if args.measure_lowest:
        return measure_lowest(args, *args.measure_lowest)

    print(f"1..{len(BOOTS) + len(REFUSALS)}", flush=True)
    n = failed = 0
    times = []
    for b in BOOTS:
        n += 1
        acpi = b.get("acpi", True)
        try:
            report, took = uefi_boot(args, b["fw"], b["args"], acpi)
            times.append(took)
            errors = [] if report["efi"] else \
                ["the kernel did not come up through EFI"]
            if acpi:
                errors += check_srat(report, b["pieces"], b.get("hotplug"))
            else:
                if report["acpi"]:
                    errors.append(f"ACPI tables {report['acpi']} with "
                                  "acpi=off")
                errors += check_dt(report, b["pieces"])
            errors += check_iomem(report["iomem"], b["pieces"])
        except GuestError as e:
            errors, took = [str(e)], None
        view = "SRAT" if acpi else "device tree"
        print(f"{'not ok' if errors else 'ok'} {n} - UEFI ({b['fw']}) boot, "
              f"{b['name']}: {view} and /proc/iomem match the map "
              f"({' '.join(b['args'])})")
        if took is not None:
            print(f"# booted to the initramfs in {took:.1f} s")
        for e in errors:
            print("\n".join(f"# {line}" for line in e.splitlines()))
        failed += 1 if errors else 0
        sys.stdout.flush()
    for name, kind, qemu_args in REFUSALS:
        n += 1
        errors, outcome = refusal(args, kind, qemu_args)
        print(f"{'not ok' if errors else 'ok'} {n} - {kind}: {name} "
              f"refused with exit status 1 at once ({' '.join(qemu_args)})")
        for e in errors:
            print(f"# {e}")
        if outcome and not errors:
            print(f"# {outcome}")
        failed += 1 if errors else 0
        sys.stdout.flush()
    if times:
        print(f"# UEFI boot times: {', '.join(f'{t:.1f}' for t in times)} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
