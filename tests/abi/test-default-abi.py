#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Without memmap the guest ABI is the base QEMU's: for each machine
configuration below, our qemu-system-aarch64 and the same QEMU source
built without our files and patches (harness/ref-qemu.sh) must give the same device tree (seeds that change on every run left
out), the same memory tree of system memory and the same ACPI tables,
byte for byte (fw_cfg files etc/acpi/tables, etc/acpi/rsdp and
etc/table-loader, read without firmware through QEMU's qtest protocol).
With a memmap and NUMA, the SRAT lists each RAM piece with its node.
Prints TAP."""

import argparse
import re
import struct
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
    "numa-memory-devices": "-M virt -m 2G,slots=2,maxmem=4G " + NUMA,
    "numa-distance": ("-M virt -m 2G " + NUMA +
                      " -numa dist,src=0,dst=1,val=21"),
    "numa-memoryless-node": (
        "-M virt -m 2G -smp 3 -object memory-backend-ram,id=m0,size=1G "
        "-object memory-backend-ram,id=m2,size=1G "
        "-numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1 "
        "-numa node,nodeid=2,cpus=2,memdev=m2"),
    "gicv3-max": "-M virt,gic-version=3 -smp 4 -cpu max -m 1G",
}
# With a map (hole 0x50000000/256M, -m 1G) and two nodes of 512 MiB:
# node 0 takes 0x40000000-0x4fffffff and 0x60000000-0x6fffffff, node 1
# 0x70000000-0x8fffffff; one SRAT memory affinity structure per piece,
# flags 1 (enabled).  With slots/maxmem, the device memory area follows
# with flags 3 (enabled, hot-pluggable) on the last node, as the base QEMU
# has it; it starts at the first GiB boundary above the highest RAM piece
# and the highest hole (0xc0000000) and its size is maxmem - ram plus
# 1 GiB per slot (the base QEMU's alignment allowance).
NUMA_1G = ("-smp 2 -object memory-backend-ram,id=m0,size=512M "
           "-object memory-backend-ram,id=m1,size=512M "
           "-numa node,nodeid=0,cpus=0,memdev=m0 "
           "-numa node,nodeid=1,cpus=1,memdev=m1")
HOLE = "memmap.0.type=hole,memmap.0.base=0x50000000,memmap.0.size=256M"
SRAT_PIECES = [(0x40000000, 0x10000000, 0, 1), (0x60000000, 0x10000000, 0, 1),
               (0x70000000, 0x20000000, 1, 1)]
SRAT_CASES = [
    ("numa-hole", f"-M virt,{HOLE} -m 1G {NUMA_1G}", SRAT_PIECES),
    ("numa-hole-memory-devices",
     f"-M virt,{HOLE} -m 1G,slots=2,maxmem=3G {NUMA_1G}",
     SRAT_PIECES + [(0xc0000000, 2 * 2**30 + 2 * 2**30, 1, 3)]),
]
# With a map, every ACPI table but the SRAT (and the XSDT, whose entries
# are offsets that move when the SRAT grows) is byte for byte QEMU
# the base's with the same options and no map; the XSDT lists the same
# tables.  (ours, reference's) options:
MAP_ELSEWHERE_UNCHANGED = [
    ("hole", f"-M virt,{HOLE} -m 1G", "-M virt -m 1G"),
    ("numa-hole", f"-M virt,{HOLE} -m 1G {NUMA_1G}",
     f"-M virt -m 1G {NUMA_1G}"),
    ("numa-hole-memory-devices",
     f"-M virt,{HOLE} -m 1G,slots=2,maxmem=3G {NUMA_1G}",
     f"-M virt -m 1G,slots=2,maxmem=3G {NUMA_1G}"),
]
COMMON = ["-nodefaults", "-display", "none", "-accel", "tcg"]
SEEDS = re.compile(r"^\s*(rng-seed|kaslr-seed) = .*\n", re.MULTILINE)


def dtb(qemu, args):
    """The decompiled device tree, without its random seeds."""
    with tempfile.NamedTemporaryFile(suffix=".dtb") as f:
        subprocess.run([qemu, *COMMON, *args.split(), "-M",
                        f"dumpdtb={f.name}"], check=True,
                       capture_output=True)
        return decompiled_dtb(f.name)


def decompiled_dtb(path):
    """The device tree blob at path as dtc prints it, without its random
    seeds (they change on every run)."""
    dts = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", path],
                         check=True, capture_output=True, text=True)
    return SEEDS.sub("", dts.stdout)


def mtree(qemu, args):
    """'info mtree' of the system memory address space."""
    out = subprocess.run([qemu, *COMMON, *args.split(), "-S", "-monitor",
                          "stdio"], input="info mtree\nquit\n",
                         capture_output=True, text=True, check=True).stdout
    return memory_address_space(out)


def memory_address_space(mtree_text):
    """The system memory address space of 'info mtree' output (the order
    in which the address spaces are printed varies from run to run)."""
    lines = mtree_text.replace("\r", "").split("\n")
    if "address-space: memory" not in lines:
        raise ValueError(f"no system memory in info mtree: {lines[:4]}")
    start = lines.index("address-space: memory")
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return "\n".join(lines[start:end])


# fw_cfg of the virt machine: MMIO, data register at +0, selector at +8
# (16 bits, big-endian), file directory at selector 0x19
FW_CFG_BASE = 0x09020000
FW_CFG_FILE_DIR = 0x19
ACPI_FILES = ("etc/acpi/rsdp", "etc/acpi/tables", "etc/table-loader")


class QtestError(Exception):
    """QEMU did not answer the qtest protocol as expected."""


class FwCfg:
    """Read fw_cfg files of a stopped QEMU through the qtest protocol
    (-qtest stdio: one command per line, answers "OK [value]")."""

    def __init__(self, qemu, args):
        self.proc = subprocess.Popen(
            [qemu, *COMMON, *args.split(), "-S", "-qtest", "stdio",
             "-qtest-log", "/dev/null"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.pending = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.communicate()

    def cmd(self, line):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        answer = self.proc.stdout.readline()
        if not answer.startswith("OK"):
            self.proc.kill()
            err = self.proc.communicate()[1]
            raise QtestError(f"qtest {line!r}: {answer.strip()!r} "
                             f"(QEMU stderr: {err.strip()!r})")
        return answer.split()[1:]

    def select(self, key):
        # qtest writes in guest (little-endian) order: swap the bytes so
        # that the big-endian register sees key
        swapped = struct.unpack("<H", struct.pack(">H", key))[0]
        self.cmd(f"writew {FW_CFG_BASE + 8:#x} {swapped:#x}")
        self.pending = b""

    def read(self, size):
        """The next size bytes of the selected item (read 8 at a time;
        what is read beyond size is kept for the next call)."""
        data = bytearray(self.pending)
        while len(data) < size:
            value = int(self.cmd(f"readq {FW_CFG_BASE:#x}")[0], 16)
            data += value.to_bytes(8, "little")
        self.pending = bytes(data[size:])
        return bytes(data[:size])

    def files(self):
        """{name: (selector, size)} of the fw_cfg file directory."""
        self.select(FW_CFG_FILE_DIR)
        count = struct.unpack(">I", self.read(4))[0]
        files = {}
        for _ in range(count):
            size, select, _, name = struct.unpack(">IHH56s", self.read(64))
            files[name.rstrip(b"\0").decode()] = (select, size)
        return files

    def file(self, name):
        files = self.files()
        if name not in files:
            raise QtestError(f"no fw_cfg file {name} "
                             f"(there are: {', '.join(sorted(files))})")
        select, size = files[name]
        self.select(select)
        return self.read(size)


def acpi_blobs(qemu, args):
    """{fw_cfg file name: contents} for the ACPI files of QEMU."""
    with FwCfg(qemu, args) as fw:
        return {name: fw.file(name) for name in ACPI_FILES}


def acpi_tables(blob):
    """[(offset, signature, length)] of the tables laid one after the
    other in etc/acpi/tables (pointers and checksums are left for the
    firmware's loader to fill in, so only the headers are read)."""
    tables, off = [], 0
    while off + 8 <= len(blob):
        sig, length = struct.unpack_from("<4sI", blob, off)
        if length < 36 or off + length > len(blob):
            break
        tables.append((off, sig.decode(errors="replace"), length))
        off += length
    return tables


def acpi(qemu, args):
    """The ACPI files as annotated hex lines (16 bytes a line, each with
    its file, offset and the table it lies in), so that equal text means
    equal bytes and a difference is located by table."""
    blobs = acpi_blobs(qemu, args)
    out = []
    for name, blob in blobs.items():
        tables = acpi_tables(blob) if name == "etc/acpi/tables" else []
        out.append(f"{name}: {len(blob)} bytes")
        for off in range(0, len(blob), 16):
            where = next((sig for start, sig, length in tables
                          if start <= off < start + length), "")
            out.append(f"{name}+{off:#06x} {where:4} "
                       f"{blob[off:off + 16].hex(' ')}")
    return "\n".join(out)


def srat_memory(blob):
    """[(base, length, proximity domain, flags)] of the SRAT memory
    affinity structures in etc/acpi/tables."""
    srat = [(off, length) for off, sig, length in acpi_tables(blob)
            if sig == "SRAT"]
    if len(srat) != 1:
        raise ValueError(f"{len(srat)} SRAT tables in etc/acpi/tables")
    off, length = srat[0]
    entries, pos = [], off + 48  # header, reserved u32, reserved u64
    while pos < off + length:
        kind, size = blob[pos], blob[pos + 1]
        if size == 0:
            raise ValueError(f"SRAT structure of length 0 at {pos:#x}")
        if kind == 1:  # memory affinity
            node, base, mem_len, flags = struct.unpack_from(
                "<I2xQQ4xI", blob, pos + 2)
            entries.append((base, mem_len, node, flags))
        pos += size
    return entries


def tables_by_signature(blob):
    """{signature: table bytes} of etc/acpi/tables, the XSDT replaced by
    the signatures of the tables it lists."""
    tables = acpi_tables(blob)
    at = {off: sig for off, sig, _ in tables}
    out = {}
    for off, sig, length in tables:
        if sig in out:
            raise ValueError(f"two {sig} tables")
        out[sig] = blob[off:off + length]
        if sig == "XSDT":
            entries = struct.unpack_from(f"<{(length - 36) // 8}Q", blob,
                                         off + 36)
            out[sig] = " ".join(at.get(e, f"?{e:#x}") for e in entries)
    return out


def other_tables_difference(ours, ref):
    """None when every table but the SRAT is the same in both."""
    a, b = tables_by_signature(ours), tables_by_signature(ref)
    a.pop("SRAT", None)
    b.pop("SRAT", None)
    if sorted(a) != sorted(b):
        return f"tables: ours {sorted(a)}, the base QEMU {sorted(b)}"
    for sig in sorted(a):
        if a[sig] != b[sig]:
            if sig == "XSDT":
                return f"XSDT lists: ours {a[sig]}, the base QEMU {b[sig]}"
            pos = next((i for i, (x, y) in enumerate(zip(a[sig], b[sig]))
                        if x != y), min(len(a[sig]), len(b[sig])))
            return (f"{sig} differs at byte {pos:#x} (lengths "
                    f"{len(a[sig])}, {len(b[sig])})")
    return None


def first_difference(a, b):
    for n, (x, y) in enumerate(zip(a.split("\n"), b.split("\n")), 1):
        if x != y:
            return f"line {n}: ours {x!r}, the base QEMU {y!r}"
    return "lengths differ"


def fmt_srat(entries):
    return ", ".join(f"{base:#x}+{size:#x} node {node} flags {flags:#x}"
                     for base, size, node, flags in entries) or "(none)"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--reference", required=True)
    args = ap.parse_args()

    tests = [(name, what, fn, ref_fn) for name in CONFIGS
             for what, fn, ref_fn in (
                 ("device tree", dtb, dtb), ("memory tree", mtree, mtree),
                 ("ACPI tables", acpi, acpi))]
    print(f"1..{len(tests) + len(SRAT_CASES) + len(MAP_ELSEWHERE_UNCHANGED)}")
    failed = 0
    for n, (name, what, fn, ref_fn) in enumerate(tests, 1):
        try:
            ours = fn(args.qemu, CONFIGS[name])
            ref = ref_fn(args.reference, CONFIGS[name])
            problem = None if ours == ref else first_difference(ours, ref)
        except (subprocess.CalledProcessError, ValueError, QtestError) as e:
            problem = f"{e}: {getattr(e, 'stderr', '')}"
        print(f"{'not ok' if problem else 'ok'} {n} - {name}: {what} "
              f"as in the base QEMU ({CONFIGS[name]})")
        if problem:
            failed += 1
            print(f"# {problem}")
    for n, (name, qemu_args, expected) in enumerate(SRAT_CASES,
                                                    len(tests) + 1):
        try:
            got = srat_memory(acpi_blobs(args.qemu, qemu_args)
                              ["etc/acpi/tables"])
            problem = None if got == expected else (
                f"SRAT memory affinity: expected {fmt_srat(expected)}; "
                f"got {fmt_srat(got)}")
        except (ValueError, QtestError) as e:
            problem = str(e)
        print(f"{'not ok' if problem else 'ok'} {n} - {name}: SRAT lists "
              f"each RAM piece with its node ({qemu_args})")
        if problem:
            failed += 1
            print(f"# {problem}")
    for n, (name, ours_args, ref_args) in enumerate(
            MAP_ELSEWHERE_UNCHANGED, len(tests) + len(SRAT_CASES) + 1):
        try:
            problem = other_tables_difference(
                acpi_blobs(args.qemu, ours_args)["etc/acpi/tables"],
                acpi_blobs(args.reference, ref_args)
                ["etc/acpi/tables"])
        except (ValueError, QtestError) as e:
            problem = str(e)
        print(f"{'not ok' if problem else 'ok'} {n} - {name}: with a map, "
              f"the ACPI tables but the SRAT are the base QEMU's ({ours_args} "
              f"against {ref_args})")
        if problem:
            failed += 1
            print(f"# {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
