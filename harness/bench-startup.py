#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""make bench: what a memmap costs QEMU's start-up, and the memory slots
it takes.  Not a test: it prints figures, each beside its goal.

Start-up is QEMU from exec to its monitor answering "quit" (-S, so no
guest runs), for the virt machine with 4 GiB of RAM and: no map; one
64 KiB hole; the largest map QEMU accepts (MEMMAP_MAX_ENTRIES holes of
64 KiB, one more RAM piece than holes); the same number of holes of
2 MiB at 2 MiB boundaries, which shows what the alignment of the piece
edges costs QEMU's address-space dispatch.  Instructions are counted with
valgrind's callgrind (deterministic to about 0.1 %), wall time is
measured in pairs (map, no map) and the median of the pair ratios is
printed with its spread.

Guest boot: Debian's arm64 kernel and the test initramfs (harness/
guest-assets.sh), to the guest's poweroff, -m 1G, with no map and with
15 holes (16 RAM pieces): the guest's own instructions, counted by its
clock under -icount shift=0 (deterministic), and TCG's wall and CPU time
(user + system, from wait4) in alternating pairs, beside pairs of two
boots without a map for the noise.

The VFIO check: its cost for a device with 4,096 usable IOVA ranges and
the largest map (tests/unit/test-memmap.c, -m perf: building the range
list as QEMU does from the kernel's reply, then checking the RAM
pieces), against one device_add/device_del round trip of a trivial
device (usb-kbd on qemu-xhci, QMP, until DEVICE_DELETED) in a running
QEMU; and how the check grows from 1,024 to 16,384 ranges.

Memory slots: every RAM piece is a KVM memory slot and a vhost memory
region; the RAM sections of system memory's flat view ('info mtree -f')
must be exactly the pieces the map asks for."""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qmplib import QMP  # noqa: E402

COMMON = ["-nodefaults", "-display", "none", "-S", "-monitor", "stdio",
          "-m", "4G"]
# The largest map QEMU accepts: MEMMAP_MAX_ENTRIES entries
MAX_ENTRIES = int(re.search(
    r"#define MEMMAP_MAX_ENTRIES (\d+)",
    (Path(__file__).resolve().parents[1] / "include" / "hw" / "core" /
     "memmap.h").read_text())[1])


def holes(n, size="64K", base=0x80000000, step=0x400000):
    """n holes of size, 4 MiB apart, from base."""
    return "".join(f",memmap.{i}.type=hole,memmap.{i}.base={base + i * step},"
                   f"memmap.{i}.size={size}" for i in range(n))


CONFIGS = [("no map", "virt"), ("1 hole", "virt" + holes(1)),
           (f"{MAX_ENTRIES} holes", "virt" + holes(MAX_ENTRIES)),
           (f"{MAX_ENTRIES} x 2M", "virt" + holes(MAX_ENTRIES, "2M"))]


def run(qemu, machine, monitor="quit\n", prefix=(), extra=()):
    p = subprocess.run([*prefix, qemu, *COMMON, "-M", machine, *extra],
                       input=monitor, capture_output=True, text=True,
                       check=True)
    return p


# Where the instructions of a start-up go: a /memory node of the device
# tree each (boot.c, libfdt), and the memory core's transactions, which
# render the flat views and address-space dispatch of every RAM region
PROFILED = ("fdt_add_memory_node", "memory_region_transaction_commit")


def instructions(qemu, machine, extra=(), profile=False):
    """Instructions of one start-up; with profile, also {function:
    inclusive instructions} for PROFILED"""
    with tempfile.NamedTemporaryFile() as out:
        p = run(qemu, machine, prefix=("valgrind", "--tool=callgrind",
                                       f"--callgrind-out-file={out.name}"),
                extra=extra)
        m = re.search(r"Collected : (\d+)", p.stderr)
        if not m:
            raise RuntimeError("callgrind printed no total:\n" + p.stderr)
        if not profile:
            return int(m.group(1))
        text = subprocess.run(["callgrind_annotate", "--inclusive=yes",
                               "--threshold=100", out.name],
                              capture_output=True, text=True,
                              check=True).stdout
    found = {}
    for f in PROFILED:
        hit = re.search(r"^\s*([\d,]+) .*:" + f + r" \[", text, re.M)
        found[f] = int(hit[1].replace(",", "")) if hit else 0
    return int(m.group(1)), found


def numa(nodes):
    """-m 4224M in nodes NUMA nodes of their own memory backend each"""
    args = ["-m", "4224M"]
    for i in range(nodes):
        args += ["-object", f"memory-backend-ram,id=m{i},size="
                 f"{4224 // nodes}M", "-numa", f"node,nodeid={i},memdev=m{i}"]
    return args


def wall(qemu, machine):
    t = time.perf_counter()
    run(qemu, machine)
    return time.perf_counter() - t


def verdict(ratio, goal):
    return "met" if ratio <= goal else "not met"


def memory_slots(qemu, machine):
    """(pieces asked for, RAM sections of system memory's flat view)"""
    out = run(qemu, machine, "info memmap\ninfo mtree -f\nquit\n").stdout
    pieces = len(re.findall(r"^0x\S+ 0x\S+ .* ram +\S+ +ram\s*$", out,
                            re.MULTILINE))
    views = out.split("FlatView #")
    sections = 0
    for v in views:
        if "AS \"memory\"" in v or "AS \"cpu-memory-0\"" in v:
            sections = len(re.findall(r"\(prio \d+, ram\): (mach-virt\.ram\S*)",
                                      v))
            break
    return pieces, sections


def boot_holes(size):
    """15 holes of size, 32 MiB apart from 0x48000000: 16 RAM pieces"""
    return "virt" + "".join(f",memmap.{i}.type=hole,memmap.{i}.base="
                            f"{0x48000000 + i * 0x2000000},memmap.{i}.size="
                            f"{size}" for i in range(15))


INIT_RE = re.compile(r"^\[ *([\d.]+)\] Run /init as init process", re.M)
DOWN_RE = re.compile(r"^\[ *([\d.]+)\] reboot: Power down", re.M)


def boot(qemu, kernel, initrd, machine, icount=False):
    """(wall s, CPU s, kernel's time at /init, at poweroff) of one boot"""
    t = time.perf_counter()
    proc = subprocess.Popen([qemu, "-cpu", "max", "-accel", "tcg",
                             *(["-icount", "shift=0,sleep=off"] if icount
                               else []),
                             "-nographic", "-no-reboot", "-nic", "none",
                             "-kernel", kernel, "-initrd", initrd, "-append",
                             "console=ttyAMA0 panic=-1", "-m", "1G", "-M",
                             machine], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    init, down = INIT_RE.search(out), DOWN_RE.search(out)
    if proc.returncode != 0 or not init or not down:
        raise RuntimeError(f"boot with {machine} failed "
                           f"({proc.returncode}):\n{out[-2000:]}")
    return (wall, usage.ru_utime + usage.ru_stime, float(init[1]),
            float(down[1]))


def boot_bench(qemu, kernel, initrd, pairs):
    """The guest's own work, deterministic: with -icount shift=0 the
    kernel's clock counts its instructions (1 ns each, idle time skipped),
    so its printk time at /init and at poweroff is what it executed.
    Then what users see, TCG as it runs: wall and CPU time in pairs,
    alternating which one runs first, beside pairs of two boots without
    a map, which show this machine's noise."""
    print("== guest boot to poweroff, -m 1G, 16 RAM pieces (15 holes) vs "
          "no map")
    _, _, init0, down0 = boot(qemu, kernel, initrd, "virt", icount=True)
    print(f"   guest instructions (-icount shift=0), no map: {init0 * 1e9:,.0f}"
          f" to /init, {down0 * 1e9:,.0f} to poweroff")
    for size in ("64K", "2M"):
        _, _, init, down = boot(qemu, kernel, initrd, boot_holes(size),
                                icount=True)
        print(f"   guest instructions, holes of {size:>3}: /init "
              f"{init / init0:.4f}x, poweroff {down / down0:.4f}x (goal <= "
              f"1.02: {verdict(down / down0, 1.02)})")
    for name, machine in (("holes of 64K", boot_holes("64K")),
                          ("no map (noise)", "virt")):
        wall, cpu = [], []
        for i in range(pairs):
            a, b = (machine, "virt") if i % 2 == 0 else ("virt", machine)
            ra = boot(qemu, kernel, initrd, a)
            rb = boot(qemu, kernel, initrd, b)
            if i % 2:
                ra, rb = rb, ra
            wall.append(ra[0] / rb[0])
            cpu.append(ra[1] / rb[1])
        print(f"   TCG time, {name:>14} vs no map, {pairs} pairs: wall "
              f"{statistics.median(wall):.3f}x ({min(wall):.2f}-"
              f"{max(wall):.2f}), CPU {statistics.median(cpu):.3f}x "
              f"({min(cpu):.2f}-{max(cpu):.2f})")


def vfio_check_us(unit):
    """{ranges: (check, list, range_list_insert list)} in microseconds"""
    p = subprocess.run([unit, "-m", "perf", "-p", "/memmap/perf/vfio-check",
                        "--tap"], capture_output=True, text=True, check=True)
    found = {}
    for m in re.finditer(r"perf: (\d+) ranges: check ([\d.]+) us, list "
                         r"([\d.]+) us, range_list_insert list ([\d.]+) us",
                         p.stdout):
        found[int(m[1])] = tuple(float(x) for x in m.group(2, 3, 4))
    if not found:
        raise RuntimeError("test-memmap -m perf printed no figure:\n" +
                           p.stdout)
    return found


def device_round_trip_us(qemu, rounds=200):
    """Median wall times of device_add + device_del of usb-kbd, to its
    DEVICE_DELETED event (when device_del is complete), and to the reply
    of device_del, in microseconds"""
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "qmp")
        proc = subprocess.Popen([qemu, "-nodefaults", "-display", "none",
                                 "-S", "-M", "virt", "-m", "4G", "-device",
                                 "qemu-xhci,id=xhci", "-qmp",
                                 f"unix:{sock},server=on,wait=off"],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            q = QMP(sock, alive=lambda: proc.poll() is None)
            times, replies = [], []
            for _ in range(rounds):
                t = time.perf_counter()
                q.cmd("device_add", driver="usb-kbd", id="kbd",
                      bus="xhci.0")
                q.cmd("device_del", id="kbd")
                replies.append(time.perf_counter() - t)
                q.wait_event("DEVICE_DELETED", device="kbd")
                times.append(time.perf_counter() - t)
                q.events.clear()
            q.cmd("quit")
            q.close()
        finally:
            proc.wait(timeout=30)
    return statistics.median(times) * 1e6, statistics.median(replies) * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--unit", required=True,
                    help="tests/unit/test-memmap of the build")
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--boot-pairs", type=int, default=10)
    args = ap.parse_args()

    print("== start-up to 'quit', -M virt -m 4G -S")
    base_ins, base_prof = instructions(args.qemu, CONFIGS[0][1],
                                       profile=True)
    print(f"   {CONFIGS[0][0]:>10}: {base_ins:,} instructions")
    for name, machine in CONFIGS[1:]:
        ins, prof = instructions(args.qemu, machine, profile=True)
        ratios = []
        for _ in range(args.pairs):
            a = wall(args.qemu, machine)
            b = wall(args.qemu, CONFIGS[0][1])
            ratios.append(a / b)
        r = ins / base_ins
        print(f"   {name:>10}: {ins:,} instructions, {r:.3f}x no map "
              f"(goal <= 1.02: {verdict(r, 1.02)}); wall time "
              f"{statistics.median(ratios):.3f}x median of {args.pairs} "
              f"pairs (min {min(ratios):.3f}, max {max(ratios):.3f})")
        more = ins - base_ins
        if more > 0:
            parts = ", ".join(f"{f} {prof[f] - base_prof[f]:+,}"
                              for f in PROFILED)
            print(f"   {'':>10}  the {more:+,} instructions: {parts} "
                  f"(inclusive, callgrind)")

    # The control: as many RAM regions and /memory nodes without a map,
    # from NUMA nodes of a memory backend each; what they cost QEMU is
    # what a map's pieces cost it, less the map's own code
    one = instructions(args.qemu, "virt", numa(1))
    many = instructions(args.qemu, "virt", numa(MAX_ENTRIES + 1))
    print(f"   control, no map: {MAX_ENTRIES + 1} NUMA nodes of a memory "
          f"backend each vs 1 (-m 4224M): {many:,} instructions, "
          f"{many / one:.3f}x (as many RAM regions and /memory nodes as "
          f"{MAX_ENTRIES} holes make)")

    boot_bench(args.qemu, args.kernel, args.initrd, args.boot_pairs)

    print("== the VFIO check, largest map, vs a device_add/device_del "
          "round trip")
    figures = vfio_check_us(args.unit)
    trip, replied = device_round_trip_us(args.qemu)
    check, lst = figures[4096][:2]
    print(f"   usb-kbd device_add + device_del, median of 200: {trip:.0f} us"
          f" to DEVICE_DELETED ({replied:.0f} us to device_del's reply)")
    print(f"   check, 4,096 usable ranges: {check:.2f} us, "
          f"{100 * check / trip:.3f} % of the round trip (goal < 1 %: "
          f"{'met' if check < trip / 100 else 'not met'}); "
          f"{100 * check / replied:.2f} % of the commands' replies")
    print(f"   with building the range list (QEMU's own, at container "
          f"set-up): {check + lst:.1f} us, {100 * (check + lst) / trip:.2f} "
          f"% of the round trip")
    for n, (c, lst, upstream) in sorted(figures.items()):
        print(f"   {n:>6,} ranges: check {c:7.2f} us; building the list "
              f"{lst:6.1f} us (with range_list_insert, as in QEMU 10.0: "
              f"{upstream:9.1f} us)")
    growth = figures[16384][0] / figures[1024][0]
    lgrowth = figures[16384][1] / figures[1024][1]
    print(f"   1,024 -> 16,384 ranges (16x): check {growth:.1f}x, list "
          f"{lgrowth:.1f}x (goal: linear, at most 20x: "
          f"{verdict(max(growth, lgrowth), 20)}); with range_list_insert "
          f"{figures[16384][2] / figures[1024][2]:.0f}x")

    print("== memory slots: RAM sections of system memory vs RAM pieces")
    for name, machine in CONFIGS:
        pieces, sections = memory_slots(args.qemu, machine)
        print(f"   {name:>10}: {pieces} pieces, {sections} RAM sections "
              f"(goal: equal: {'met' if pieces == sections else 'not met'})")


if __name__ == "__main__":
    main()
