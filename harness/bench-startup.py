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

Memory slots: every RAM piece is a KVM memory slot and a vhost memory
region; the RAM sections of system memory's flat view ('info mtree -f')
must be exactly the pieces the map asks for."""

import argparse
import re
import statistics
import subprocess
import tempfile
import time

COMMON = ["-nodefaults", "-display", "none", "-S", "-monitor", "stdio",
          "-m", "4G"]
MAX_ENTRIES = 32  # MEMMAP_MAX_ENTRIES in include/hw/core/memmap.h


def holes(n, size="64K", base=0x80000000, step=0x400000):
    """n holes of size, 4 MiB apart, from base."""
    return "".join(f",memmap.{i}.type=hole,memmap.{i}.base={base + i * step},"
                   f"memmap.{i}.size={size}" for i in range(n))


CONFIGS = [("no map", "virt"), ("1 hole", "virt" + holes(1)),
           (f"{MAX_ENTRIES} holes", "virt" + holes(MAX_ENTRIES)),
           (f"{MAX_ENTRIES} x 2M", "virt" + holes(MAX_ENTRIES, "2M"))]


def run(qemu, machine, monitor="quit\n", prefix=()):
    p = subprocess.run([*prefix, qemu, *COMMON, "-M", machine],
                       input=monitor, capture_output=True, text=True,
                       check=True)
    return p


def instructions(qemu, machine):
    with tempfile.NamedTemporaryFile() as out:
        p = run(qemu, machine, prefix=("valgrind", "--tool=callgrind",
                                       f"--callgrind-out-file={out.name}"))
    m = re.search(r"Collected : (\d+)", p.stderr)
    if not m:
        raise RuntimeError("callgrind printed no total:\n" + p.stderr)
    return int(m.group(1))


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


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--pairs", type=int, default=15)
    args = ap.parse_args()

    print("== start-up to 'quit', -M virt -m 4G -S")
    base_ins = instructions(args.qemu, CONFIGS[0][1])
    print(f"   {CONFIGS[0][0]:>10}: {base_ins:,} instructions")
    for name, machine in CONFIGS[1:]:
        ins = instructions(args.qemu, machine)
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

    print("== memory slots: RAM sections of system memory vs RAM pieces")
    for name, machine in CONFIGS:
        pieces, sections = memory_slots(args.qemu, machine)
        print(f"   {name:>10}: {pieces} pieces, {sections} RAM sections "
              f"(goal: equal: {'met' if pieces == sections else 'not met'})")


if __name__ == "__main__":
    main()
