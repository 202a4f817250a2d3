#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Without memmap the guest ABI is that of QEMU 10.0: for each machine
configuration below, our qemu-system-aarch64 and Debian's own 10.0 build
must give the same device tree (seeds that change on every run left
out) and the same memory tree of system memory.  Prints TAP."""

import argparse
import re
import subprocess
import sys
import tempfile

NUMA = ("-smp 2 -object memory-backend-ram,id=m0,size=1G "
        "-object memory-backend-ram,id=m1,size=1G "
        "-numa node,nodeid=0,cpus=0,memdev=m0 "
        "-numa node,nodeid=1,cpus=1,memdev=m1")
CONFIGS = {
    "default": "-M virt -m 512M",
    "numa": "-M virt -m 2G " + NUMA,
    "memory-devices": "-M virt -m 1G,slots=2,maxmem=4G",
    "highmem-off": "-M virt,highmem=off -m 1G",
    "large": "-M virt -m 6G -cpu cortex-a57",
    "secure": "-M virt,secure=on -m 1G -cpu cortex-a57",
}
COMMON = ["-nodefaults", "-display", "none", "-accel", "tcg"]
SEEDS = re.compile(r"^\s*(rng-seed|kaslr-seed) = .*\n", re.MULTILINE)


def dtb(qemu, args):
    """The decompiled device tree, without its random seeds."""
    with tempfile.NamedTemporaryFile(suffix=".dtb") as f:
        subprocess.run([qemu, *COMMON, *args.split(), "-M",
                        f"dumpdtb={f.name}"], check=True,
                       capture_output=True)
        dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", f.name],
                             check=True, capture_output=True, text=True)
    return SEEDS.sub("", dts.stdout)


def mtree(qemu, args):
    """'info mtree' of the system memory address space."""
    out = subprocess.run([qemu, *COMMON, *args.split(), "-S", "-monitor",
                          "stdio"], input="info mtree\nquit\n",
                         capture_output=True, text=True, check=True).stdout
    lines = out.replace("\r", "").split("\n")
    start = lines.index("address-space: memory")
    end = lines.index("", start)
    return "\n".join(lines[start:end])


def first_difference(a, b):
    for n, (x, y) in enumerate(zip(a.split("\n"), b.split("\n")), 1):
        if x != y:
            return f"line {n}: ours {x!r}, QEMU 10.0 {y!r}"
    return "lengths differ"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--reference", required=True)
    args = ap.parse_args()

    tests = [(name, what, fn) for name in CONFIGS
             for what, fn in (("device tree", dtb), ("memory tree", mtree))]
    print(f"1..{len(tests)}")
    failed = 0
    for n, (name, what, fn) in enumerate(tests, 1):
        try:
            ours = fn(args.qemu, CONFIGS[name])
            ref = fn(args.reference, CONFIGS[name])
            problem = None if ours == ref else first_difference(ours, ref)
        except (subprocess.CalledProcessError, ValueError) as e:
            problem = f"{e}: {getattr(e, 'stderr', '')}"
        print(f"{'not ok' if problem else 'ok'} {n} - {name}: {what} "
              f"as in QEMU 10.0 ({CONFIGS[name]})")
        if problem:
            failed += 1
            print(f"# {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
