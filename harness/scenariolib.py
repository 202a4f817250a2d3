# SPDX-License-Identifier: GPL-2.0-or-later
"""What the layers that run a shell scenario inside a guest share
(harness/nestedlib.py, harness/kvmlib.py): the guest's initramfs is
its asset cpios with /scenario.sh appended as one more archive, and its
console carries the scenario's lines between a begin marker and an
end marker that holds the script's exit status."""

import shlex
import subprocess
import tempfile
from pathlib import Path


class ScenarioError(Exception):
    """The guest did not boot, did not finish its scenario, or its QEMU
    failed.  lines holds what the scenario printed before that; status
    the scenario's exit status when its end marker came, else None."""

    def __init__(self, message, lines=(), status=None):
        super().__init__(message)
        self.lines = list(lines)
        self.status = status


def write_initrd(path, parts, script_text):
    """Write the initramfs: the cpio files parts, then a newc cpio
    holding script_text as /scenario.sh.  The kernel finds an
    uncompressed cpio only at a 4-byte aligned offset (zero padding
    between archives is skipped)."""
    with tempfile.TemporaryDirectory() as root:
        script = Path(root) / "scenario.sh"
        script.write_text(script_text)
        script.chmod(0o755)
        scenario = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"],
                                  input=b"scenario.sh\n", cwd=root,
                                  stdout=subprocess.PIPE, check=True).stdout
    with open(path, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while chunk := f.read(1 << 20):
                    out.write(chunk)
            out.write(b"\0" * (-out.tell() % 4))
        out.write(scenario)


def scenario_lines(output, begin, end, failure, cmd, no_status):
    """Cut the scenario's lines out of the console output (bytes): those
    after the line begin and before the line starting with end, whose
    rest is the exit status.  Return (lines, status); raise
    ScenarioError when failure (the QEMU run's, or None) is set, the
    end marker is missing, or it holds no status (no_status says why
    then)."""
    text = (output or b"").decode(errors="replace").replace("\r", "")
    lines = text.splitlines()
    first = lines.index(begin) + 1 if begin in lines else len(lines)
    last = next((i for i in range(first, len(lines))
                 if lines[i].startswith(end)), None)
    body = lines[first:last]
    marker = None if last is None else lines[last][len(end):].rstrip(" =")
    status = int(marker) if marker and marker.isdigit() else None
    if failure is None and last is None:
        failure = "scenario end marker missing"
    if failure is None and status is None:
        failure = f"{no_status} ({marker})"
    if failure:
        raise ScenarioError("\n".join([f"{failure}: {shlex.join(cmd)}",
                                       "console output (last 40 lines):",
                                       *(lines[-40:] or ["(none)"])]),
                            body, status)
    return body, status
