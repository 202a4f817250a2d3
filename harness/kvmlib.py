# SPDX-License-Identifier: GPL-2.0-or-later
"""Run a shell scenario on an emulated arm64 host with KVM: Debian
trixie's arm64 kernel booted by our x86 TCG build with
virtualization=on (so it has /dev/kvm), and in it our cross-built
qemu-system-aarch64 (harness/kvm-assets.sh builds the pieces,
harness/cross-build.sh the binaries).  The guest's /init loads the vfio
and virtio-iommu modules, prints "I ..." lines about the host (among
them "I ipa N", KVM's IPA size limit), runs the scenario as
/scenario.sh (which can source /lib/kvm.sh) and powers off.  Its exit
status is in the end marker."""

import os
import select
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from scenariolib import ScenarioError, scenario_lines, write_initrd

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "harness" / "kvm-assets.sh"
BEGIN = "=== KVM-BEGIN ==="
END = "=== KVM-END "
# EL2 for the guest kernel (virtualization=on), the GICv3 whose
# virtualization the inner KVM's vGIC needs (GICv2 emulation is not
# there), pointer authentication cheap under TCG.  No NIC: nothing
# needs one, and virt's default NIC loads efi-virtio.rom.
OUTER_ARGS = ("-M", "virt,virtualization=on,gic-version=3",
              "-cpu", "max,pauth-impdef=on", "-smp", "2", "-m", "4G",
              "-accel", "tcg", "-nic", "none", "-nographic", "-no-reboot")
APPEND = "console=ttyAMA0 panic=-1"
# The parts of the initramfs (harness/kvm-assets.sh): "base" (busybox,
# modules, /init), "qemu" (our arm64 QEMU and its libraries), "inner"
# (kernel and initramfs for guests of the inner QEMU).
PARTS = {"base": "initramfs-base.cpio.gz", "qemu": "qemu.cpio",
         "ref": "ref.cpio", "inner": "inner.cpio"}


class KvmError(ScenarioError):
    """The outer guest did not boot, did not finish its scenario, or its
    QEMU failed (see ScenarioError)."""


class Result:
    """lines: the scenario's output lines (with /init's "I" lines);
    status: its exit status; seconds: wall time of the outer QEMU;
    boot_seconds: from its start to the begin marker (the outer boot)."""

    def __init__(self, lines, status, seconds, boot_seconds):
        self.lines, self.status = lines, status
        self.seconds, self.boot_seconds = seconds, boot_seconds


def build_assets(build):
    """Run kvm-assets.sh (idempotent); raise KvmError with its output
    when it fails.  Returns the kvm asset folder."""
    proc = subprocess.run(["bash", str(ASSETS), str(REPO), str(build)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=1800)
    if proc.returncode != 0:
        tail = proc.stdout.decode(errors="replace").splitlines()[-20:]
        raise KvmError("\n".join([f"{ASSETS.name} failed "
                                  f"(status {proc.returncode}):", *tail]))
    return Path(build) / "kvm"


def run_scenario(script_text, qemu, build, parts=("base", "qemu"),
                 extra_args=(), timeout=900, kernel="vmlinuz-arm64"):
    """Boot the outer guest under qemu (our x86 build) with script_text
    as /scenario.sh and the initramfs parts named; extra_args go to the
    outer QEMU (an IOMMU, devices); kernel is the outer kernel's file in
    BUILD/kvm (Debian's, or ours: Image-memmap-arm64).  Return a Result,
    or raise KvmError with the console tail."""
    kvm = Path(build) / "kvm"
    with tempfile.TemporaryDirectory() as tmp:
        initrd = Path(tmp) / "initrd"
        write_initrd(initrd, [kvm / PARTS[p] for p in parts], script_text)
        cmd = [str(qemu), *OUTER_ARGS, *extra_args,
               "-kernel", str(kvm / kernel),
               "-initrd", str(initrd), "-append", APPEND]
        output, failure, seconds, boot = _run(cmd, timeout)
    try:
        body, status = scenario_lines(output, BEGIN, END, failure, cmd,
                                      "no scenario ran")
    except ScenarioError as e:
        raise KvmError(str(e), e.lines, e.status) from None
    return Result(body, status, seconds, boot)


def _run(cmd, timeout):
    """Run the outer QEMU, its console read as it comes (so that the
    time of the begin marker is known), stdin closed; kill it after
    timeout seconds.  Returns (output, failure or None, seconds,
    seconds to the begin marker or None)."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    except OSError as e:
        return b"", f"cannot run {cmd[0]}: {e}", 0.0, None
    output, boot, failure = b"", None, None
    fd = proc.stdout.fileno()
    marker = BEGIN.encode()
    while True:
        left = start + timeout - time.monotonic()
        if left <= 0:
            proc.kill()
            failure = f"timed out after {timeout} s"
            break
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not ready:
            continue
        data = os.read(fd, 65536)
        if not data:
            break
        output += data
        if boot is None and marker in output:
            boot = time.monotonic() - start
    proc.stdout.close()
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    if failure is None and rc != 0:
        failure = (f"QEMU killed by {signal.Signals(-rc).name}" if rc < 0
                   else f"QEMU exited with status {rc}")
    return output, failure, time.monotonic() - start, boot
