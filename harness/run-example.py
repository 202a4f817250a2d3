#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The main job: boot the arm virt machine with an example memmap and
show QEMU's effective map beside the guest's own view of its memory."""

import argparse
import subprocess
import sys

import guestlib

EXAMPLE = ["-m", "1G", "-M",
           "virt,memmap.0.type=hole,memmap.0.base=0x50000000,"
           "memmap.0.size=256M"]


def info_memmap(qemu, args):
    """QEMU's 'info memmap' for args, without booting."""
    proc = subprocess.run(
        [qemu, "-nodefaults", "-S", "-display", "none", "-monitor", "stdio",
         *args], input="info memmap\nquit\n", capture_output=True,
        text=True, timeout=60, check=True)
    return [l.replace("(qemu) ", "") for l in proc.stdout.splitlines()
            if not l.startswith("QEMU ") and l.strip() != "(qemu)"]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    args = ap.parse_args()

    print("Example map:", " ".join(EXAMPLE))
    print("\nQEMU's view (info memmap):")
    for line in info_memmap(args.qemu, EXAMPLE):
        if " ram " in line or " hole " in line or line.startswith("base"):
            print("  " + line)
    print("  (device regions left out)")

    report = guestlib.boot(args.qemu, args.kernel, args.initrd, EXAMPLE)
    print("\nThe guest's view (Debian arm64 kernel under TCG):")
    for start, end in report["iomem"]:
        print(f"  /proc/iomem: {start:08x}-{end:08x} : System RAM")
    for node in report["dt"]:
        for base, size in node["ranges"]:
            print(f"  device tree: /{node['name']} reg = <0x{base:x} "
                  f"0x{size:x}>")
    want = [(0x40000000, 0x4fffffff), (0x60000000, 0x8fffffff)]
    ok = guestlib.merge(report["iomem"]) == want
    print("\nGuest RAM matches the map:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
