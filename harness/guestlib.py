# SPDX-License-Identifier: GPL-2.0-or-later
"""Boot the memmap test guest (harness/guest-assets.sh) under QEMU and
parse the memory layout it reports on the serial console."""

import re
import shlex
import signal
import subprocess
from collections import defaultdict

BEGIN = "=== MEMMAP-GUEST-BEGIN ==="
END = "=== MEMMAP-GUEST-END ==="
# Everything but the machine type and memory layout, which the caller
# passes in extra_args (e.g. "-M virt,memmap... -m 1G").  No NIC: the
# guest needs none and the default one needs efi-virtio.rom.
MACHINE_ARGS = ("-cpu", "max", "-accel", "tcg", "-nographic", "-no-reboot",
                "-nic", "none")
APPEND = "console=ttyAMA0 panic=-1"

IOMEM_RE = re.compile(r"([0-9a-f]+)-([0-9a-f]+) : System RAM$")
DT_RE = re.compile(r"(\S+) reg=([0-9a-f]*)(?: node=([0-9a-f]+))?$")
NUMA_RE = re.compile(r"node +(\d+): \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\]$")


class GuestError(Exception):
    """The guest did not boot and report its memory layout."""


def boot(qemu, kernel, initrd, extra_args, timeout=120,
         machine_args=MACHINE_ARGS, append=APPEND, parser=None):
    """Boot the guest and return its parsed report: parser (parse() by
    default) applied to the lines between the report markers."""
    cmd = [qemu, *machine_args, "-kernel", kernel, "-initrd", initrd,
           "-append", append, *extra_args]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise GuestError(_failure(f"timed out after {timeout} s", cmd,
                                  e.output)) from None
    except OSError as e:
        raise GuestError(f"cannot run {qemu}: {e}") from None
    if proc.returncode != 0:
        rc = proc.returncode
        status = (f"QEMU killed by {signal.Signals(-rc).name}" if rc < 0
                  else f"QEMU exited with status {rc}")
        raise GuestError(_failure(status, cmd, proc.stdout))
    lines = [l.strip() for l in
             proc.stdout.decode(errors="replace").splitlines()]
    try:
        begin = lines.index(BEGIN)
        end = lines.index(END, begin)
    except ValueError:
        raise GuestError(_failure("guest report markers missing", cmd,
                                  proc.stdout)) from None
    return (parser or parse)(lines[begin + 1:end])


def parse(lines):
    """Parse the report lines between the markers into a dict:
    iomem: [(start, end_incl)], dt: [{name, ranges: [(base, size)], node}],
    numa: [(node, start, end_incl)].  Memory nodes' reg is read with the
    virt board's two address and two size cells."""
    report = {"iomem": [], "dt": [], "numa": []}
    for line in lines:
        kind, _, rest = line.partition(": ")
        if kind == "iomem" and (m := IOMEM_RE.match(rest)):
            report["iomem"].append((int(m[1], 16), int(m[2], 16)))
        elif kind == "dt" and (m := DT_RE.match(rest)):
            cells = [int(m[2][i:i + 16], 16) for i in range(0, len(m[2]), 16)]
            report["dt"].append({
                "name": m[1],
                "ranges": list(zip(cells[0::2], cells[1::2])),
                "node": int(m[3], 16) if m[3] else None,
            })
        elif kind == "numa" and (m := NUMA_RE.match(rest)):
            report["numa"].append((int(m[1]), int(m[2], 16), int(m[3], 16)))
        else:
            raise GuestError(f"unexpected guest report line: {line!r}")
    return report


def merge(ranges):
    """Merge overlapping or adjacent (start, end_incl) ranges."""
    merged = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def fmt_ranges(ranges):
    return " ".join(f"{a:#x}-{b:#x}" for a, b in ranges) or "(none)"


def fmt_nodes(nodes):
    return "; ".join(f"node {n}: {fmt_ranges(r)}"
                     for n, r in sorted(nodes.items())) or "(none)"


def fmt_dt(dt):
    return "; ".join(
        name + "".join(f" <{b:#x} {s:#x}>" for b, s in ranges)
        + ("" if node is None else f" node {node}")
        for name, ranges, node in dt) or "(none)"


def per_node(triples):
    """Merge (node, start, end_incl) ranges per node."""
    nodes = defaultdict(list)
    for node, start, end in triples:
        nodes[node].append((start, end))
    return {n: merge(r) for n, r in nodes.items()}


def check(report, pieces):
    """Return the mismatches between the guest's report (parse()) and
    the RAM pieces [(base, size, NUMA node or None)] it should show."""
    errors = []
    want = merge((b, b + s - 1) for b, s, _ in pieces)
    got = merge(report["iomem"])
    if got != want:
        errors.append(f"iomem System RAM: expected {fmt_ranges(want)}, "
                      f"got {fmt_ranges(got)}")
    want = sorted(((f"memory@{b:x}", [(b, s)], n) for b, s, n in pieces),
                  key=lambda d: d[0])
    got = sorted(((d["name"], d["ranges"], d["node"]) for d in report["dt"]),
                 key=lambda d: d[0])
    if got != want:
        errors.append(f"dt memory nodes: expected {fmt_dt(want)}, "
                      f"got {fmt_dt(got)}")
    want = per_node((n or 0, b, b + s - 1) for b, s, n in pieces)
    got = per_node(report["numa"])
    if got != want:
        errors.append(f"kernel node ranges: expected {fmt_nodes(want)}, "
                      f"got {fmt_nodes(got)}")
    return errors



def _failure(reason, cmd, output):
    tail = (output or b"").decode(errors="replace").splitlines()[-40:]
    return "\n".join([f"{reason}: {shlex.join(cmd)}",
                      "console output (last 40 lines):",
                      *(tail or ["(none)"])])
