#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Our QEMU under KVM on an emulated arm64 host: Debian trixie's arm64
kernel, booted by our x86 TCG build with virtualization=on, has
/dev/kvm; our cross-built qemu-system-aarch64 (harness/cross-build.sh)
runs in it with -accel kvm -cpu host -M virt,gic-version=3
(harness/kvmlib.py, harness/kvm-assets.sh).  All scenarios run in one
boot of the outer guest; each inner QEMU runs with -S and QMP on its
stdin and stdout (/lib/kvm.sh's q), and its replies, stderr and exit
status come back as console lines that the checks below turn into TAP.

  kvm-is-real           /dev/kvm is there, the kernel log says KVM is
                        initialized, the inner QEMU says KVM is present
                        and enabled (query-kvm, info kvm)
  same-map-kvm-vs-tcg   for three maps (holes only; explicit ram entries,
                        one above 4 GiB; two NUMA nodes with a hole
                        splitting one), query-memmap under KVM equals
                        query-memmap under TCG, same binary and options,
                        and shows the map asked for
  ipa-limit             RAM at 2^N, N the host's IPA size limit, is
                        refused at start with status 1 and our message
                        naming the entry and the limit (not KVM's, not a
                        crash); RAM ending between 2^40 and 2^44 starts
                        under KVM and query-memmap shows it

The first test says whether the outer guest booted and the scenario
script ran to its end; every later one fails when its behaviour is
missing.  Each scenario's time (the outer guest's clock) and the outer
boot's are printed as diagnostics."""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "harness"))
from kvmlib import KvmError, build_assets, run_scenario  # noqa: E402

GiB = 1 << 30
MiB = 1 << 20

# The inner machines.  -S: the board is built (the map placed, KVM's VM
# created with its IPA size, memory slots registered) and QMP answers,
# but no guest runs.  The two accelerators get the same options but the
# CPU: "host" is KVM's only.
COMMON = "-nodefaults -display none -S -smp 2,sockets=2"
KVM = "-accel kvm -cpu host"
TCG = "-accel tcg -cpu max"
NUMA = ("-object memory-backend-ram,id=m0,size=1G "
        "-object memory-backend-ram,id=m1,size=1G "
        "-numa node,nodeid=0,memdev=m0,cpus=0 "
        "-numa node,nodeid=1,memdev=m1,cpus=1")
MAPS = {
    # 2 GiB flowing from 1 GiB, split by a 256 MiB hole at 1.5 GiB
    "holes": "-m 2G -M virt,gic-version=3,memmap.0.type=hole,"
             "memmap.0.base=0x60000000,memmap.0.size=256M",
    # 1 GiB at 1 GiB and 1 GiB at 5 GiB
    "ram-above-4g": "-m 2G -M virt,gic-version=3,memmap.0.type=ram,"
                    "memmap.0.base=0x40000000,memmap.0.size=1G,"
                    "memmap.1.type=ram,memmap.1.base=0x140000000,"
                    "memmap.1.size=1G",
    # node 0 (1 GiB at 1 GiB) split by the hole at 1.5 GiB, node 1 after
    "numa-hole": f"-m 2G {NUMA} -M virt,gic-version=3,memmap.0.type=hole,"
                 "memmap.0.base=0x60000000,memmap.0.size=256M",
    # 1 GiB at 1 GiB and 1 GiB at 8 TiB (2^43): RAM ends between 2^40
    # and 2^44
    "tib": "-m 2G -M virt,gic-version=3,memmap.0.type=ram,"
           "memmap.0.base=0x40000000,memmap.0.size=1G,memmap.1.type=ram,"
           "memmap.1.base=0x80000000000,memmap.1.size=1G",
}
# The RAM each map must show in query-memmap: (base, size, node).
EXPECTED_RAM = {
    "holes": [(0x40000000, 512 * MiB, None), (0x70000000, 1536 * MiB, None)],
    "ram-above-4g": [(0x40000000, GiB, None), (0x140000000, GiB, None)],
    "numa-hole": [(0x40000000, 512 * MiB, 0), (0x70000000, 512 * MiB, 0),
                  (0x90000000, GiB, 1)],
    "tib": [(0x40000000, GiB, None), (1 << 43, GiB, None)],
}
EXPECTED_HOLES = {
    "holes": [(0x60000000, 256 * MiB)],
    "ram-above-4g": [],
    "numa-hole": [(0x60000000, 256 * MiB)],
    "tib": [],
}
SAME_MAP = ("holes", "ram-above-4g", "numa-hole")

# Our refusal of RAM beyond the guest physical address space
# (hw/core/memmap.c, check_entry()), for the entry at 2^N with the host's
# IPA limit N as the address width KVM's VM type was sized for
# (virt_kvm_type()).
IPA_REFUSAL = ("memmap.1 (type=ram, base={base:#x}, size=0x40000000): the "
               "range ends at {end:#x}, beyond the {bits}-bit guest physical "
               "address space (last address {last:#x})")
# What upstream's virt_kvm_type() says when the map outgrows the IPA
# limit: must not be what the user gets
KVM_IPA_MESSAGE = "require an IPA range"

SCENARIO = r"""
. /lib/kvm.sh
IPA=$(dmesg | sed -n 's/.*IPA Size Limit: \([0-9]*\) bits.*/\1/p')
MEMDUMP='{"execute": "query-memmap", "id": "memmap"}'
KVMQ='{"execute": "query-kvm", "id": "kvm"}'
INFOKVM='{"execute": "human-monitor-command", "id": "info-kvm",'
INFOKVM="$INFOKVM"' "arguments": {"command-line": "info kvm"}}'
STATUS='{"execute": "query-status", "id": "status"}'

scenario kvm-is-real
QMP="$KVMQ
$INFOKVM"
q kvm 60 $COMMON $KVM -m 256M -M virt,gic-version=3

scenario same-map-kvm-vs-tcg
QMP="$MEMDUMP
$KVMQ"
for m in holes ram-above-4g numa-hole; do
    eval "map=\$MAP_$(echo "$m" | tr - _)"
    q "$m.kvm" 60 $COMMON $KVM $map
    q "$m.tcg" 60 $COMMON $TCG $map
done

scenario ipa-limit
if [ -n "$IPA" ]; then
    top=$(printf '0x%x' $((1 << IPA)))
    QMP=$KVMQ
    M=virt,gic-version=3,memmap.0.type=ram,memmap.0.base=0x40000000
    M=$M,memmap.0.size=1G,memmap.1.type=ram,memmap.1.base=$top
    q ipa-beyond 60 $COMMON $KVM -m 2G -M "$M,memmap.1.size=1G"
else
    echo "E no IPA size limit in the kernel log"
fi
QMP="$MEMDUMP
$KVMQ
$STATUS"
q tib.kvm 60 $COMMON $KVM $MAP_tib
scenario end
"""


class Fail(Exception):
    pass


class Run:
    """One inner QEMU's results from the "Q NAME ..." lines."""

    def __init__(self):
        self.out, self.err, self.rc, self.time = [], [], None, None

    def reply(self, ident):
        """The QMP reply with id ident: its "return" value; Fail when
        there is none or it is an error."""
        for line in self.out:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("id") == ident:
                if "return" not in msg:
                    raise Fail(f"{ident}: {msg.get('error')}")
                return msg["return"]
        raise Fail(f"no reply to {ident} (exit status {self.rc}, "
                   f"stderr: {' | '.join(self.err) or '(empty)'})")

    def describe(self):
        return (f"exit status {self.rc}, stderr: "
                f"{' | '.join(self.err) or '(empty)'}")


def parse(lines):
    """Sort the scenario's console lines: "I KEY VALUE" (from /init),
    "S SCENARIO UPTIME" marks, "Q NAME out|err|rc|time ..." (from q) and
    anything else, printed as a diagnostic."""
    info, marks, runs, other = {}, [], {}, []
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "I":
            key, _, value = rest.partition(" ")
            info.setdefault(key, []).append(value)
        elif kind == "S":
            name, _, t = rest.partition(" ")
            try:
                marks.append((name, float(t)))
            except ValueError:
                other.append(line)
        elif kind == "Q" and len(rest.split(" ", 2)) >= 2:
            name, what, value = (rest.split(" ", 2) + [""])[:3]
            run = runs.setdefault(name, Run())
            if what == "out":
                run.out.append(value)
            elif what == "err":
                run.err.append(value)
            elif what == "rc":
                run.rc = int(value) if value.isdigit() else None
            elif what == "time":
                run.time = float(value)
        else:
            other.append(line)
    return info, marks, runs, other


def get_run(runs, name):
    if name not in runs:
        raise Fail(f"inner QEMU {name} did not run")
    return runs[name]


def started(run, name):
    if run.rc != 0:
        raise Fail(f"{name}: {run.describe()}")


def check_map(memmap, name):
    """The map asked for: its RAM pieces and holes, in query-memmap."""
    ram = [(r["base"], r["size"], r.get("node")) for r in memmap
           if r["type"] == "ram"]
    holes = [(r["base"], r["size"]) for r in memmap if r["type"] == "hole"]
    if ram != EXPECTED_RAM[name]:
        raise Fail(f"{name}: RAM pieces {fmt(ram)}, expected "
                   f"{fmt(EXPECTED_RAM[name])}")
    if holes != EXPECTED_HOLES[name]:
        raise Fail(f"{name}: holes {fmt(holes)}, expected "
                   f"{fmt(EXPECTED_HOLES[name])}")


def fmt(pieces):
    return ", ".join(f"{p[0]:#x}+{p[1]:#x}" +
                     (f" node {p[2]}" if p[2:] and p[2] is not None else "")
                     for p in pieces) or "none"


def check_kvm_enabled(run, name):
    kvm = run.reply("kvm")
    if kvm != {"enabled": True, "present": True}:
        raise Fail(f"{name}: query-kvm says {kvm}")


def check_kvm_is_real(info, runs):
    if info.get("dev-kvm") != ["yes"]:
        raise Fail(f"/dev/kvm in the outer guest: {info.get('dev-kvm')}")
    if not any("initialized successfully" in m
               for m in info.get("kvm-mode", [])):
        raise Fail("no \"kvm: ... mode initialized successfully\" in the "
                   "outer kernel's log")
    run = get_run(runs, "kvm")
    started(run, "kvm")
    check_kvm_enabled(run, "kvm")
    text = run.reply("info-kvm")
    if "kvm support: enabled" not in text:
        raise Fail(f"info kvm says {text!r}")


def check_same_map(name, runs):
    k, t = get_run(runs, f"{name}.kvm"), get_run(runs, f"{name}.tcg")
    started(k, f"{name} under KVM")
    started(t, f"{name} under TCG")
    check_kvm_enabled(k, f"{name} under KVM")
    mk, mt = k.reply("memmap"), t.reply("memmap")
    if mk != mt:
        diff = [f"KVM {a} / TCG {b}" for a, b in zip(mk, mt) if a != b]
        if len(mk) != len(mt):
            diff.append(f"{len(mk)} regions under KVM, {len(mt)} under TCG")
        raise Fail(f"{name}: query-memmap differs: " + "; ".join(diff[:6]))
    check_map(mk, name)


def ipa_bits(info):
    values = info.get("ipa", [])
    if len(values) != 1 or not values[0].isdigit():
        raise Fail(f"no \"IPA Size Limit: N bits\" in the outer kernel's "
                   f"log ({values})")
    return int(values[0])


def check_ipa_beyond(info, runs):
    bits = ipa_bits(info)
    run = get_run(runs, "ipa-beyond")
    base = 1 << bits
    want = IPA_REFUSAL.format(base=base, end=base + GiB - 1, bits=bits,
                              last=base - 1)
    stderr = "\n".join(run.err)
    if run.rc != 1:
        raise Fail(f"RAM at 2^{bits}: {run.describe()}; expected exit "
                   f"status 1")
    if want not in stderr:
        raise Fail(f"RAM at 2^{bits}: stderr {stderr!r} lacks {want!r}")
    if KVM_IPA_MESSAGE in stderr:
        raise Fail(f"RAM at 2^{bits}: KVM's own message: {stderr!r}")
    if any(line.startswith("{") for line in run.out[1:]):
        raise Fail(f"RAM at 2^{bits}: QMP answered: {run.out}")


def check_tib(info, runs):
    bits = ipa_bits(info)
    if bits < 44:
        raise Fail(f"the host's IPA limit is {bits} bits, below the 44 "
                   f"this case needs")
    run = get_run(runs, "tib.kvm")
    started(run, "RAM at 2^43 under KVM")
    check_kvm_enabled(run, "RAM at 2^43")
    check_map(run.reply("memmap"), "tib")
    status = run.reply("status")
    if status.get("status") != "prelaunch":
        raise Fail(f"RAM at 2^43: query-status says {status}")


CHECKS = [
    ("kvm-is-real: /dev/kvm, and the inner QEMU runs with KVM enabled",
     "kvm-is-real", check_kvm_is_real),
    *((f"same-map-kvm-vs-tcg: {m}: query-memmap under KVM equals TCG's "
       "and shows the map", "same-map-kvm-vs-tcg",
       lambda info, runs, m=m: check_same_map(m, runs)) for m in SAME_MAP),
    ("ipa-limit: RAM at 2^IPA refused at start, status 1, our message "
     "naming the entry and the limit", "ipa-limit", check_ipa_beyond),
    ("ipa-limit: RAM ending between 2^40 and 2^44 starts under KVM, "
     "query-memmap shows it", "ipa-limit", check_tib),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--build", required=True,
                        help="the build folder (build/obj, build/cross, "
                             "build/kvm under it)")
    parser.add_argument("--qemu", help="the outer QEMU, our x86 build "
                        "(default BUILD/obj/qemu-system-aarch64)")
    parser.add_argument("--timeout", type=int, default=900,
                        help="seconds for the outer guest's whole run")
    args = parser.parse_args()
    build = Path(args.build).resolve()
    qemu = Path(args.qemu or build / "obj" / "qemu-system-aarch64")

    print(f"1..{len(CHECKS) + 1}", flush=True)
    script = "".join(f"{var}={shlex.quote(val)}\n" for var, val in
                     [("COMMON", COMMON), ("KVM", KVM), ("TCG", TCG)] +
                     [(f"MAP_{n.replace('-', '_')}", a)
                      for n, a in MAPS.items()])
    status, failure, lines = None, None, []
    start = time.monotonic()
    try:
        build_assets(build)
        print(f"# assets: {time.monotonic() - start:.1f} s", flush=True)
        result = run_scenario(script + SCENARIO, qemu, build,
                              timeout=args.timeout)
        lines, status = result.lines, result.status
        print(f"# outer guest: {result.seconds:.1f} s, of which the boot "
              f"to /init's begin marker {result.boot_seconds:.1f} s")
    except KvmError as e:
        lines, failure, status = e.lines, str(e), e.status
    info, marks, runs, other = parse(lines)
    for key, values in info.items():
        for v in values:
            print(f"# {key}: {v}")
    for line in other:
        print(f"# guest: {line}")
    times = {name: end - t for (name, t), (_, end) in zip(marks, marks[1:])}
    for name, secs in times.items():
        print(f"# scenario {name}: {secs:.1f} s")
    for name, run in runs.items():
        print(f"# inner QEMU {name}: {run.time} s, exit status {run.rc}")

    failed = 0
    if failure is None and status != 0:
        failure = f"scenario script exit status {status}"
    if failure:
        failed += 1
        print("not ok 1 - outer arm64 guest (TCG, virtualization=on) "
              "booted, ran every scenario and powered off")
        for line in failure.splitlines():
            print(f"# {line}")
    else:
        print("ok 1 - outer arm64 guest (TCG, virtualization=on) booted, "
              "ran every scenario and powered off")

    shown = set()
    for number, (title, scenario, check) in enumerate(CHECKS, 2):
        try:
            check(info, runs)
            print(f"ok {number} - {title}")
        except (Fail, KeyError, TypeError, ValueError) as e:
            failed += 1
            print(f"not ok {number} - {title}")
            for line in str(e).splitlines():
                print(f"# {line}")
        if scenario in times and scenario not in shown:
            shown.add(scenario)
            print(f"# {scenario}: {times[scenario]:.1f} s")
    for name in ("ipa-beyond", "tib.kvm"):
        if name in runs:
            print(f"# {name} stderr: {' | '.join(runs[name].err)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
