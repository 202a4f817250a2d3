#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Real VFIO without hardware: an x86_64 guest under TCG with an emulated
Intel IOMMU binds QEMU's "edu" PCI device to vfio-pci, and our
qemu-system-aarch64 runs inside it and takes the device, with guest RAM
clear of or over the IOMMU's MSI window (0xfee00000-0xfeefffff, read
from the guest's reserved_regions).  All scenarios run in one boot of
the outer guest (harness/nestedlib.py); each inner QEMU step prints an
"R key reply" line, and the checks below turn them into TAP."""

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "harness"))
from nestedlib import NestedError, run_scenario  # noqa: E402

# What QEMU says when it refuses the device with RAM over the window:
# every substring ({host} is the device's PCI address) must be in the
# device_add error, and in QEMU's stderr for the cold-plug (which also
# gets the hints: the unusable windows, a -machine example).  Without
# the memmap VFIO check QEMU fails the DMA map instead:
# "vfio_container_dma_map(...) = -22 (Invalid argument)", which is what
# the relaxed policy leads to.
MISFIT = ("0xf0000000-0xffffffff overlaps 0xfee00000-0xfeefffff, which "
          "the host IOMMU cannot map for this device; a memmap hole at "
          "0xfee00000 of size 0x100000 keeps guest RAM out of it")
REFUSAL = {
    "hot-plug": ["vfio {host}: ", "guest memory " + MISFIT],
    "cold-plug": ["vfio {host}: ", "guest memory " + MISFIT,
                  "Unusable IOVA windows of the device: "
                  "0xfee00000-0xfeefffff",
                  "memmap.0.type=hole,memmap.0.base=0xfee00000,"
                  "memmap.0.size=0x100000"],
    "relaxed": ["vfio {host}: ", "vfio_container_dma_map(",
                "-22 (Invalid argument)"],
    "relaxed-warning": ["warning: vfio {host}: ", "guest memory " + MISFIT],
    "memory": ["{host}: new memory 0xfe000000-0xfeffffff overlaps "
               "0xfee00000-0xfeefffff, which the host IOMMU cannot map for "
               "this device"],
}

# The inner machines: 256 MiB of RAM, since type1 pins all of it.
MAPS = {
    # RAM at 1 GiB, the default layout: far from the window.
    "compatible": "-M virt -m 256M",
    # One RAM piece 0xf0000000-0xffffffff, over the window.
    "over": "-M virt,memmap.0.type=ram,memmap.0.base=0xf0000000,"
            "memmap.0.size=256M -m 256M",
    # The same RAM with a hole over the window: RAM ends right below it
    # and starts again right above it.
    "hole": "-M virt,memmap.0.type=ram,memmap.0.base=0xf0000000,"
            "memmap.0.size=0xee00000,memmap.1.type=hole,"
            "memmap.1.base=0xfee00000,memmap.1.size=1M,memmap.2.type=ram,"
            "memmap.2.base=0xfef00000,memmap.2.size=0x1200000 -m 256M",
    # RAM at 1 GiB and room for memory devices up to 5 GiB: the area
    # 0x80000000-0x13fffffff includes the window.
    "memory": "-M virt -m 256M,maxmem=4G",
}

# The scenarios, run in order in one guest.  HOST is the device's PCI
# address, set by the guest's /init; r KEY CMD prints "R KEY output"
# (CMD runs in this shell: q_start must not run in a subshell).
SCENARIO = r"""
. /lib/qmp.sh
BASE="-cpu max -accel tcg -nodefaults -display none -S"
RP="-device pcie-root-port,id=rp0,chassis=1"
COLD="-device vfio-pci,host=$HOST,id=hostdev0,bus=rp0"
DEV="{\"driver\": \"vfio-pci\", \"host\": \"$HOST\", \"id\": \"hostdev0\","
DEV="$DEV \"bus\": \"rp0\"}"
PERIPH='{"path": "/machine/peripheral"}'
r() { k=$1; shift; "$@" >/tmp/r.out; echo "R $k $(cat /tmp/r.out)"; }
t() { echo "I time $1 $(cut -d' ' -f1 /proc/uptime)"; }

# 1. compatible map: hot-plug, then cold-plug.
t compatible
r compatible.start q_start 3 $BASE $MAP_compatible $RP
r compatible.memmap q_cmd 3 query-memmap
r compatible.add q_cmd 3 device_add "$DEV"
r compatible.peripheral q_cmd 3 qom-list "$PERIPH"
r compatible.locked q_locked 3
q_stop 3
r compatible-cold.start q_start 3 $BASE $MAP_compatible $RP $COLD
r compatible-cold.status q_cmd 3 query-status
r compatible-cold.peripheral q_cmd 3 qom-list "$PERIPH"
q_stop 3

# 2. RAM over the window: hot-plug refused, the VM lives on, and a
# second QEMU takes the device while the first still runs.
t over
r over.start q_start 3 $BASE $MAP_over $RP
r over.memmap q_cmd 3 query-memmap
r over.add q_cmd 3 device_add "$DEV"
r over.status q_cmd 3 query-status
r over.peripheral q_cmd 3 qom-list "$PERIPH"
r over.locked q_locked 3
r over.second-start q_start 4 $BASE $MAP_compatible $RP
r over.second-add q_cmd 4 device_add "$DEV"
r over.second-peripheral q_cmd 4 qom-list "$PERIPH"
q_stop 4
q_stop 3

# 3. RAM over the window, cold-plug: QEMU exits.
t over-cold
q_start 3 $BASE $MAP_over $RP $COLD >/dev/null
r over-cold.exit q_wait 3
r over-cold.stderr q_err 3
q_stop 3

# 4. a hole over the window, RAM right below and above it.
t hole
r hole.start q_start 3 $BASE $MAP_hole $RP
r hole.memmap q_cmd 3 query-memmap
r hole.add q_cmd 3 device_add "$DEV"
r hole.peripheral q_cmd 3 qom-list "$PERIPH"
r hole.locked q_locked 3
q_stop 3
r hole-cold.start q_start 3 $BASE $MAP_hole $RP $COLD
r hole-cold.status q_cmd 3 query-status
q_stop 3

# 5. the relaxed policy: a warning, then the kernel refuses the map.
t relaxed
r relaxed.start q_start 3 $BASE $MAP_over $RP
r relaxed.add q_cmd 3 device_add "${DEV%\}}, \"iova-check\": \"relaxed\"}"
r relaxed.status q_cmd 3 query-status
r relaxed.peripheral q_cmd 3 qom-list "$PERIPH"
r relaxed.stderr q_err 3
q_stop 3

# 6. memory plugged into the window while the device is attached is
# refused, the VM lives on; elsewhere it is taken.
t memory
RP1="-device pcie-root-port,id=rp1,chassis=2"
VMEM='"driver": "virtio-mem-pci", "bus": "rp1", "requested-size": 0'
r memory.start q_start 3 $BASE $MAP_memory $RP $RP1
r memory.add q_cmd 3 device_add "$DEV"
r memory.backend q_cmd 3 object-add \
    '{"qom-type": "memory-backend-ram", "id": "vmem", "size": 16777216}'
r memory.in-window q_cmd 3 device_add \
    "{$VMEM, \"id\": \"vm0\", \"memdev\": \"vmem\", \"memaddr\": 4261412864}"
r memory.status q_cmd 3 query-status
r memory.elsewhere q_cmd 3 device_add \
    "{$VMEM, \"id\": \"vm1\", \"memdev\": \"vmem\", \"memaddr\": 2147483648}"
q_stop 3

# 7. memmap-plan on this host: the report lists the window, the map that
# put RAM over it does not fit, the planned one does.
t planner
memmap-plan report --host nested --device $HOST > /tmp/report.json
echo "R planner.report $(tr -d '\n ' < /tmp/report.json)"
memmap-plan check --ram 256M --base 0xf0000000 --memmap '' /tmp/report.json \
    > /tmp/check.out
echo "R planner.check $? $(cat /tmp/check.out)"
PLAN=$(memmap-plan plan --ram 256M --base 0xf0000000 --explicit \
       /tmp/report.json)
echo "R planner.plan $PLAN"
r planner.start q_start 3 $BASE -M "virt,$PLAN" -m 256M $RP
r planner.add q_cmd 3 device_add "$DEV"
r planner.peripheral q_cmd 3 qom-list "$PERIPH"
q_stop 3
t end
exit 0
"""


class Fail(Exception):
    pass


def reply(results, key):
    """The JSON reply recorded under key; Fail on EXIT/TIMEOUT/none."""
    value = results.get(key)
    if value is None:
        raise Fail(f"{key}: no result")
    if not value.startswith("{"):
        raise Fail(f"{key}: {value}")
    return json.loads(value)


def returned(results, key):
    """The "return" value of the reply under key; Fail on an error."""
    answer = reply(results, key)
    if "return" not in answer:
        raise Fail(f"{key}: {answer}")
    return answer["return"]


def returns(key, *substrings):
    def check(results, window):
        returned(results, key)
        missing = [s for s in substrings if s not in results[key]]
        if missing:
            raise Fail(f"{key}: {missing} not in {results[key]}")
    return check


def expect(key, text, kind, results):
    """Fail unless text has every REFUSAL[kind] substring."""
    missing = [s for s in (e.format(host=results["host"])
                           for e in REFUSAL[kind]) if s not in text]
    if missing:
        raise Fail(f"{key}: {missing} not in {text!r}")


def refused(key, kind="hot-plug"):
    def check(results, window):
        answer = reply(results, key)
        if "error" not in answer:
            raise Fail(f"{key}: not refused: {answer}")
        expect(key, answer["error"]["desc"], kind, results)
    return check


def warned(key, kind):
    def check(results, window):
        expect(key, results.get(key, ""), kind, results)
    return check


def planner_report(key):
    """The host report lists the device with the window as msi."""
    def check(results, window):
        report = json.loads(results.get(key) or "{}")
        regions = [(r["start"], r["end"], r["type"])
                   for d in report.get("devices", [])
                   if d["bdf"] == results["host"]
                   for r in d["reserved-regions"]]
        if (window[0], window[1], "msi") not in regions:
            raise Fail(f"{key}: {results['host']} window not in {report}")
    return check


def planner_check(key):
    """check names the host, the device and the window, exit 1."""
    def check(results, window):
        want = (f"1 nested: {results['host']} (IOMMU group ",
                f"overlaps msi region {hex(window[0])}-{hex(window[1])}")
        value = results.get(key, "")
        if not value.startswith(want[0]) or want[1] not in value:
            raise Fail(f"{key}: {value!r} lacks {want}")
    return check


def planner_plan(key):
    """The plan is explicit RAM around a hole over the window."""
    def check(results, window):
        want = (f"memmap.1.type=hole,memmap.1.base={hex(window[0])},"
                f"memmap.1.size={hex(window[1] + 1 - window[0])}")
        if want not in results.get(key, ""):
            raise Fail(f"{key}: {results.get(key)!r} lacks {want}")
    return check


def peripheral(key, present):
    def check(results, window):
        names = [p["name"] for p in returned(results, key)]
        if ("hostdev0" in names) != present:
            raise Fail(f"{key}: /machine/peripheral has {names}")
    return check


def exits(key, status, stderr_key):
    def check(results, window):
        if results.get(key) != str(status):
            raise Fail(f"{key}: exit status {results.get(key)}")
        expect(stderr_key, results[stderr_key], "cold-plug", results)
    return check


def locked(key, least, most):
    """QEMU's VmLck (what type1 pinned), in kB, is in [least, most]."""
    def check(results, window):
        value = results.get(key, "")
        if not value.isdigit() or not least <= int(value) <= most:
            raise Fail(f"{key}: VmLck {value!r} kB, not {least}-{most}")
    return check


def ram(key, layout):
    """RAM per query-memmap is clear of the window ("clear"), overlaps it
    ("over"), or is clear and adjacent on both sides ("around")."""
    def check(results, window):
        lo, hi = window
        pieces = [(p["base"], p["base"] + p["size"] - 1)
                  for p in returned(results, key)
                  if p["type"] == "ram"]
        over = any(a <= hi and b >= lo for a, b in pieces)
        around = (not over and any(b == lo - 1 for a, b in pieces)
                  and any(a == hi + 1 for a, b in pieces))
        if over != (layout == "over") or (layout == "around" and
                                          not around):
            raise Fail(f"{key}: RAM {[(hex(a), hex(b)) for a, b in pieces]}"
                       f" is not {layout} {hex(lo)}-{hex(hi)}")
    return check


CHECKS = [
    ("compatible map: RAM clear of the window",
     ram("compatible.memmap", "clear")),
    ("compatible map: hot-plug device_add succeeds",
     returns("compatible.add")),
    ("compatible map: hostdev0 in /machine/peripheral",
     peripheral("compatible.peripheral", True)),
    ("compatible map: all 256 MiB of RAM pinned",
     locked("compatible.locked", 256 << 10, 512 << 10)),
    ("compatible map: cold-plug starts",
     returns("compatible-cold.start")),
    ("compatible map: cold-plugged VM answers query-status",
     returns("compatible-cold.status", '"status": "prelaunch"')),
    ("compatible map: cold-plugged hostdev0 in /machine/peripheral",
     peripheral("compatible-cold.peripheral", True)),
    ("RAM over the window: query-memmap shows it",
     ram("over.memmap", "over")),
    ("RAM over the window: hot-plug refused with the expected error",
     refused("over.add")),
    ("RAM over the window: VM still answers query-status",
     returns("over.status", '"status": "prelaunch"')),
    ("RAM over the window: no ghost hostdev0",
     peripheral("over.peripheral", False)),
    ("RAM over the window: nothing left pinned",
     locked("over.locked", 0, 0)),
    ("RAM over the window: a second QEMU takes the device",
     returns("over.second-add")),
    ("RAM over the window: hostdev0 in the second QEMU",
     peripheral("over.second-peripheral", True)),
    ("RAM over the window: cold-plug exits 1 with the expected error",
     exits("over-cold.exit", 1, "over-cold.stderr")),
    ("hole over the window: RAM right below and above it",
     ram("hole.memmap", "around")),
    ("hole over the window: hot-plug device_add succeeds",
     returns("hole.add")),
    ("hole over the window: hostdev0 in /machine/peripheral",
     peripheral("hole.peripheral", True)),
    ("hole over the window: both RAM pieces pinned",
     locked("hole.locked", 256 << 10, 512 << 10)),
    ("hole over the window: cold-plugged VM answers query-status",
     returns("hole-cold.status", '"status": "prelaunch"')),
    ("relaxed policy: a warning names the misfit",
     warned("relaxed.stderr", "relaxed-warning")),
    ("relaxed policy: then the kernel refuses the DMA map",
     refused("relaxed.add", "relaxed")),
    ("relaxed policy: VM still answers query-status",
     returns("relaxed.status", '"status": "prelaunch"')),
    ("relaxed policy: no ghost hostdev0",
     peripheral("relaxed.peripheral", False)),
    ("memory plug: device attached",
     returns("memory.add")),
    ("memory plug: virtio-mem in the window refused",
     refused("memory.in-window", "memory")),
    ("memory plug: VM still answers query-status",
     returns("memory.status", '"status": "prelaunch"')),
    ("memory plug: virtio-mem clear of the window taken",
     returns("memory.elsewhere")),
    ("memmap-plan report lists the device's window",
     planner_report("planner.report")),
    ("memmap-plan check refuses RAM over the window",
     planner_check("planner.check")),
    ("memmap-plan plan puts a hole over the window",
     planner_plan("planner.plan")),
    ("memmap-plan's map: QEMU takes the device",
     returns("planner.add")),
    ("memmap-plan's map: hostdev0 in /machine/peripheral",
     peripheral("planner.peripheral", True)),
]

# An unusable reserved region of the device: the kernel's type1 driver
# lets guests map "direct-relaxable" ones.
RESERVED_RE = re.compile(r"I reserved_regions (0x[0-9a-f]+) (0x[0-9a-f]+) "
                         r"(\S+)$")
HOST_RE = re.compile(r"I host (\S+) ")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--qemu-aarch64", required=True)
    parser.add_argument("--build", required=True)
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()

    print(f"1..{len(CHECKS)}", flush=True)
    script = "".join(f"MAP_{name}={shlex.quote(argv)}\n"
                     for name, argv in MAPS.items())
    try:
        result = run_scenario(script + SCENARIO, timeout=args.timeout,
                              build=args.build, qemu=args.qemu_aarch64)
        lines, failure = result.lines, None
        print(f"# outer boot and all scenarios: {result.seconds:.1f} s, "
              f"scenario exit status {result.status}")
    except NestedError as e:
        lines, failure = e.lines, str(e)
    results, window = {}, None
    for line in lines:
        if line.startswith("R "):
            _, key, value = (line + " ").split(" ", 2)
            results[key] = value.strip()
        elif line.startswith("I "):
            print(f"# {line[2:]}")
            if m := HOST_RE.match(line):
                results["host"] = m[1]
            m = RESERVED_RE.match(line)
            if m and m[3] != "direct-relaxable" and window is None:
                window = (int(m[1], 16), int(m[2], 16))
        else:
            print(f"# guest: {line}")
    if failure:
        for line in failure.splitlines():
            print(f"# {line}")
    failed = 0
    for number, (name, check) in enumerate(CHECKS, 1):
        try:
            if window is None:
                raise Fail("no unusable reserved region for the device")
            check(results, window)
            print(f"ok {number} - {name}")
        except (Fail, KeyError, TypeError, ValueError) as e:
            failed += 1
            print(f"not ok {number} - {name}")
            print(f"# {e}")
    refusal = results.get("over.add", "")
    print(f"# hot-plug refusal: {refusal}")
    print(f"# cold-plug refusal: {results.get('over-cold.stderr', '')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
