#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Boot an arm64 Linux guest on the virt board with various memmap
layouts and check the RAM the guest sees in /proc/iomem, in the device
tree memory nodes and in the kernel's NUMA node ranges.  TAP output."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "harness"))
from guestlib import GuestError, boot, check  # noqa: E402

# (name, QEMU arguments, expected RAM pieces as (base, size, NUMA node or
# None when the guest has no NUMA topology)).  The memmap keys must be in
# the same -M option as the machine type.
SCENARIOS = [
    ("default", "-M virt -m 512M",
     [(0x40000000, 0x20000000, None)]),
    ("holes-only",
     "-m 1G -M virt,memmap.0.type=hole,memmap.0.base=0x50000000,"
     "memmap.0.size=256M",
     [(0x40000000, 0x10000000, None), (0x60000000, 0x30000000, None)]),
    ("explicit-above-4g",
     "-m 2G -M virt,memmap.0.type=ram,memmap.0.base=1G,memmap.0.size=512M,"
     "memmap.1.type=ram,memmap.1.base=0x100000000,memmap.1.size=1G,"
     "memmap.2.type=ram,memmap.2.base=0x180000000,memmap.2.size=512M",
     [(0x40000000, 0x20000000, None), (0x100000000, 0x40000000, None),
      (0x180000000, 0x20000000, None)]),
    ("numa-hole",
     "-m 2G -smp 2 -object memory-backend-ram,id=m0,size=1G "
     "-object memory-backend-ram,id=m1,size=1G "
     "-numa node,nodeid=0,cpus=0,memdev=m0 "
     "-numa node,nodeid=1,cpus=1,memdev=m1 "
     "-M virt,memmap.0.type=hole,memmap.0.base=0x60000000,memmap.0.size=512M",
     [(0x40000000, 0x20000000, 0), (0x80000000, 0x20000000, 0),
      (0xa0000000, 0x40000000, 1)]),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for opt in ("--qemu", "--kernel", "--initrd"):
        parser.add_argument(opt, required=True)
    args = parser.parse_args()

    print(f"1..{len(SCENARIOS)}", flush=True)
    failed = 0
    for i, (name, qemu_args, pieces) in enumerate(SCENARIOS, 1):
        try:
            report = boot(args.qemu, args.kernel, args.initrd,
                          qemu_args.split())
            errors = check(report, pieces)
            if errors:
                errors.insert(0, f"QEMU arguments: {qemu_args}")
        except GuestError as e:
            errors = str(e).splitlines()
        print(f"{'not ok' if errors else 'ok'} {i} - {name}")
        for line in errors:
            print(f"# {line}")
        sys.stdout.flush()
        failed += bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
