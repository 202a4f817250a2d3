# SPDX-License-Identifier: GPL-2.0-or-later
"""Run a shell scenario inside the nested VFIO guest: an x86_64 Linux
guest under TCG with an emulated Intel IOMMU, two of QEMU's "edu" PCI
devices bound to vfio-pci, and our qemu-system-aarch64
(harness/nested-assets.sh builds the pieces).  The guest's /init loads
the vfio modules, binds the devices, exports HOST (the first one's PCI
address) and GROUP (its IOMMU group), HOST2 and GROUP2 for the second,
prints "I ..." lines about them, runs the scenario as /scenario.sh
(which can source /lib/qmp.sh) and powers off.  Its exit status is in
the end marker."""

import signal
import subprocess
import tempfile
import time
from pathlib import Path

from scenariolib import ScenarioError, scenario_lines, write_initrd

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "harness" / "nested-assets.sh"
BEGIN = "=== NESTED-BEGIN ==="
END = "=== NESTED-END "
# The IOMMU addresses 48 bits (QEMU's default, stated: tests/vfio
# places RAM at 2^48).  Two edu devices, each in its own IOMMU group; their DMA engines take
# 64-bit addresses (edu's default mask is 28 bits).
EDU = "edu,dma_mask=0xffffffffffffffff"
OUTER_ARGS = ("-M", "q35,kernel-irqchip=split", "-accel", "tcg",
              "-cpu", "max", "-m", "2G", "-smp", "2",
              "-device", "intel-iommu,intremap=on,aw-bits=48", "-device", EDU,
              "-device", EDU, "-nic", "none", "-nographic", "-no-reboot")
APPEND = "intel_iommu=on console=ttyS0 panic=-1"


class NestedError(ScenarioError):
    """The nested guest did not boot, did not finish its scenario, or
    its QEMU failed (see ScenarioError)."""


class Result:
    """lines: the scenario's output lines (with /init's "I" lines);
    status: its exit status; seconds: wall time of the outer boot."""

    def __init__(self, lines, status, seconds):
        self.lines, self.status, self.seconds = lines, status, seconds


def build_assets(build, qemu, kernel):
    """Run nested-assets.sh (idempotent); return (kernel, base, qemu
    cpio) paths, kernel the file name of the outer kernel (Debian's
    vmlinuz-amd64 or our bzImage-memmap-amd64)."""
    subprocess.run(["bash", str(ASSETS), str(build), str(qemu)], check=True,
                   stdout=subprocess.DEVNULL)
    nested = Path(build) / "nested"
    return (nested / kernel, nested / "initramfs-base.cpio.gz",
            nested / "qemu.cpio")


def run_scenario(script_text, timeout=300, build=REPO / "build",
                 qemu=None, outer_qemu="qemu-system-x86_64",
                 kernel="vmlinuz-amd64"):
    """Boot the outer guest (kernel: see build_assets) with script_text
    as /scenario.sh; return a Result, or raise NestedError with the
    console tail."""
    qemu = qemu or Path(build) / "qemu-system-aarch64"
    kernel, base, qcpio = build_assets(build, qemu, kernel)
    with tempfile.TemporaryDirectory() as tmp:
        initrd = Path(tmp) / "initrd"
        write_initrd(initrd, (base, qcpio), script_text)
        cmd = [outer_qemu, *OUTER_ARGS, "-kernel", str(kernel),
               "-initrd", str(initrd), "-append", APPEND]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=timeout)
            output, failure = proc.stdout, None
            if proc.returncode != 0:
                rc = proc.returncode
                failure = (f"QEMU killed by {signal.Signals(-rc).name}"
                           if rc < 0 else f"QEMU exited with status {rc}")
        except subprocess.TimeoutExpired as e:
            output, failure = e.output, f"timed out after {timeout} s"
        seconds = time.monotonic() - start
    try:
        body, status = scenario_lines(output, BEGIN, END, failure, cmd,
                                      "guest set-up failed")
    except ScenarioError as e:
        raise NestedError(str(e), e.lines, e.status) from None
    return Result(body, status, seconds)
