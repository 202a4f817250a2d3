#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Command-level tests of memmap-plan.

Builds sysfs trees of several hosts (different windows, every region
type, overlapping regions, devices sharing a group), runs the report,
plan and check commands on them, checks their output and exit status,
and boots the planned maps in qemu-system-aarch64.  Prints TAP.

Usage: test-planner.py --planner PATH --qemu PATH
"""

import argparse
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import traceback

GiB = 1 << 30
MiB = 1 << 20
KiB = 1 << 10
TYPES = ["direct", "direct-relaxable", "reserved", "msi", "sw-msi"]

# host: {group: ([(start, end, type)], [device])}
HOSTS = {
    # x86-like: the MSI window, and a group of two devices with an RMRR
    "h-x86": {
        1: ([(0xfee00000, 0xfeefffff, "msi")], ["0000:00:02.0"]),
        2: ([(0x7a000000, 0x7a7fffff, "direct-relaxable"),
             (0xfee00000, 0xfeefffff, "msi")],
            ["0000:00:1f.0", "0000:00:1f.3"]),
    },
    # arm-like: SMMU MSI window below RAM, a direct region, a PCI window
    "h-arm": {
        0: ([(0x08000000, 0x080fffff, "msi")], ["0000:01:00.0"]),
        5: ([(0x50000000, 0x500fffff, "direct"),
             (0x80000000, 0x8fffffff, "reserved")], ["0000:02:00.0"]),
    },
    # overlapping regions of different groups, an unaligned region
    "h-odd": {
        9: ([(0xc0000000, 0xcfffffff, "reserved")], ["0000:03:00.0"]),
        10: ([(0x60001000, 0x60002fff, "direct"),
              (0xc8000000, 0xd7ffffff, "sw-msi")], ["0000:04:00.0"]),
    },
}

# The holes plan makes for all three hosts: windows widened to 64 KiB,
# overlapping ones merged, the one below RAM and the relaxable one left out
HOLES_4G = [(0x50000000, 0x100000), (0x60000000, 0x10000),
            (0x80000000, 0x10000000), (0xc0000000, 0x18000000),
            (0xfee00000, 0x100000)]


def fragment(holes):
    return ",".join("memmap.%d.type=hole,memmap.%d.base=0x%x,"
                    "memmap.%d.size=0x%x" % (i, i, b, i, s)
                    for i, (b, s) in enumerate(holes))


class Env:
    def __init__(self, planner, qemu, tmp):
        self.planner = planner
        self.qemu = qemu
        self.tmp = tmp
        self.count = 0

    def path(self, name):
        self.count += 1
        return os.path.join(self.tmp, "%d-%s" % (self.count, name))

    def run(self, *args, stdin=None, env=None):
        p = subprocess.run([self.planner] + list(args), input=stdin,
                           capture_output=True, text=True, timeout=60,
                           env=env)
        return p.returncode, p.stdout, p.stderr

    def sysfs(self, groups, files=None):
        """Write a sysfs tree; files maps group to raw reserved_regions."""
        root = self.path("sys")
        for group, (regions, devices) in groups.items():
            gdir = os.path.join(root, "kernel", "iommu_groups", str(group))
            os.makedirs(os.path.join(gdir, "devices"))
            text = (files or {}).get(group)
            if text is None:
                text = "".join("0x%016x 0x%016x %s\n" % r for r in regions)
            with open(os.path.join(gdir, "reserved_regions"), "w") as f:
                f.write(text)
            for dev in devices:
                os.symlink("../../../../devices/pci0000:00/" + dev,
                           os.path.join(gdir, "devices", dev))
        return root

    def report(self, host, groups):
        """A host report file made by memmap-plan report."""
        rc, out, err = self.run("report", "--sysfs-root",
                                self.sysfs(groups), "--host", host)
        assert rc == 0, err
        path = self.path(host + ".json")
        with open(path, "w") as f:
            f.write(out)
        return path

    def json_report(self, text):
        path = self.path("report.json")
        with open(path, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())
        return path

    def all_reports(self):
        return [self.report(h, g) for h, g in HOSTS.items()]

    def boot(self, frag, ram, mem_opts=""):
        """Start QEMU with the map; return [(base, last, type)] of its
        info memmap."""
        machine = "virt," + frag
        p = subprocess.run([self.qemu, "-nodefaults", "-display", "none",
                            "-S", "-M", machine,
                            "-m", "%dM%s" % (ram // MiB, mem_opts),
                            "-monitor", "stdio"],
                           input="info memmap\nquit\n", capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, "QEMU exited with %d: %s" % (
            p.returncode, p.stderr)
        regions = []
        for line in p.stdout.splitlines():
            m = re.search(r"0x([0-9a-f]{16}) 0x([0-9a-f]{16}) .*? "
                          r"(ram|hole|device) .* (\S+)$", line)
            if m:
                regions.append((int(m.group(1), 16), int(m.group(2), 16),
                                "device-memory" if m.group(4) ==
                                "device-memory" else m.group(3)))
        assert regions, "no info memmap output: " + p.stdout
        return regions


def unusable(hosts):
    """The (start, end, type) of the regions that RAM must avoid."""
    for groups in hosts.values():
        for regions, _ in groups.values():
            for start, end, t in regions:
                if t != "direct-relaxable":
                    yield start, end, t


def assert_ram_avoids(env, frag, ram, windows, mem_opts=""):
    """Boot the map and check that its RAM adds up and that RAM and
    device memory avoid the windows."""
    windows = list(windows)
    regions = env.boot(frag, ram, mem_opts)
    pieces = [(b, l) for b, l, t in regions if t == "ram"]
    assert sum(l - b + 1 for b, l in pieces) == ram, pieces
    for b, l in pieces + [(b, l) for b, l, t in regions
                          if t == "device-memory"]:
        for start, end, t in windows:
            assert l < start or b > end, \
                "RAM 0x%x-0x%x overlaps %s 0x%x-0x%x" % (b, l, t, start, end)
    return regions


def parse_fragment(frag):
    """The (base, size) of the holes of a plan's -machine fragment."""
    holes = re.findall(r"memmap\.(\d+)\.type=hole,"
                       r"memmap\.\1\.base=0x([0-9a-f]+),"
                       r"memmap\.\1\.size=0x([0-9a-f]+)", frag)
    assert fragment([(int(b, 16), int(s, 16)) for _, b, s in holes]) == frag
    return [(int(b, 16), int(s, 16)) for _, b, s in holes]


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def report_lists_devices_groups_and_regions(env):
    rc, out, err = env.run("report", "--sysfs-root",
                           env.sysfs(HOSTS["h-x86"]), "--host", "h1")
    assert rc == 0 and not err, err
    msi = {"start": 0xfee00000, "end": 0xfeefffff, "type": "msi"}
    rmrr = {"start": 0x7a000000, "end": 0x7a7fffff,
            "type": "direct-relaxable"}
    assert json.loads(out) == {"host": "h1", "devices": [
        {"bdf": "0000:00:02.0", "group": 1, "reserved-regions": [msi]},
        {"bdf": "0000:00:1f.0", "group": 2, "reserved-regions": [rmrr, msi]},
        {"bdf": "0000:00:1f.3", "group": 2, "reserved-regions": [rmrr, msi]},
    ]}, out


@test
def report_reads_every_type(env):
    groups = {i: ([(0x50000000 + i * MiB, 0x500fffff + i * MiB, t)],
                  ["0000:0%d:00.0" % i]) for i, t in enumerate(TYPES)}
    rc, out, err = env.run("report", "--sysfs-root", env.sysfs(groups))
    assert rc == 0, err
    report = json.loads(out)
    assert report["host"] == socket.gethostname(), report["host"]
    got = [(d["group"], d["reserved-regions"][0]["type"])
           for d in report["devices"]]
    assert got == list(enumerate(TYPES)), got


@test
def report_device_filter(env):
    root = env.sysfs(HOSTS["h-arm"])
    rc, out, err = env.run("report", "--sysfs-root", root, "--host", "h",
                           "--device", "0000:02:00.0")
    assert rc == 0, err
    devices = json.loads(out)["devices"]
    assert [d["bdf"] for d in devices] == ["0000:02:00.0"], devices
    assert len(devices[0]["reserved-regions"]) == 2, devices
    rc, out, err = env.run("report", "--sysfs-root", root, "--device",
                           "0000:02:00.0", "--device", "0000:09:00.0")
    assert rc == 2 and not out, (rc, out)
    assert "device 0000:09:00.0 is in no IOMMU group" in err, err
    # the regions of groups without reported devices are not read
    root = env.sysfs({1: ([], ["0000:00:02.0"]), 2: ([], ["0000:00:03.0"])},
                     {2: "garbage\n"})
    rc, out, err = env.run("report", "--sysfs-root", root,
                           "--device", "0000:00:02.0")
    assert rc == 0 and len(json.loads(out)["devices"]) == 1, (rc, err)


@test
def report_without_iommu(env):
    root = env.path("sys")
    os.makedirs(os.path.join(root, "kernel", "iommu_groups"))
    rc, out, err = env.run("report", "--sysfs-root", root, "--host", "h")
    assert rc == 0 and json.loads(out) == {"host": "h", "devices": []}, out
    assert err == ("memmap-plan: warning: no device is in an IOMMU group: "
                   "is the IOMMU on?\n"), err


@test
def report_bad_sysfs_lines(env):
    cases = [
        ("0xfee00000 0xfeefffff\n", "expected '0xSTART 0xEND TYPE'"),
        ("fee00000 0xfeefffff msi\n", "expected '0xSTART 0xEND TYPE'"),
        ("0xfee00000  0xfeefffff msi\n", "expected '0xSTART 0xEND TYPE'"),
        ("0x1fee00000000000000 0x1 msi\n", "expected '0xSTART 0xEND TYPE'"),
        ("0xfee00000 0xfeefffff doorbell\n",
         "unknown reserved region type 'doorbell'"),
        ("0xfeefffff 0xfee00000 msi\n",
         "end 0xfee00000 is below start 0xfeefffff"),
        ("0xfee00000 0xfeefffff msi\n0xfee80000 0xfeffffff msi\n",
         "3: msi region 0xfee80000-0xfeffffff overlaps the one on line 2"),
    ]
    for text, message in cases:
        text = "0x0000000008000000 0x00000000080fffff reserved\n" + text
        root = env.sysfs({7: ([], ["0000:00:02.0"])}, {7: text})
        rc, out, err = env.run("report", "--sysfs-root", root)
        path = os.path.join(root, "kernel/iommu_groups/7/reserved_regions")
        if not message[0].isdigit():
            message = "2: " + message
        assert rc == 2 and not out, (text, rc, out)
        assert err.startswith("memmap-plan: %s:%s" % (path, message)), \
            (text, err)


@test
def report_unreadable_sysfs(env):
    root = env.sysfs({3: ([], ["0000:00:02.0"])})
    group = os.path.join(root, "kernel/iommu_groups/3")
    os.rename(os.path.join(group, "reserved_regions"),
              os.path.join(group, "gone"))
    rc, out, err = env.run("report", "--sysfs-root", root)
    assert rc == 2 and "3/reserved_regions" in err, (rc, err)
    os.mkdir(os.path.join(group, "reserved_regions"))
    rc, out, err = env.run("report", "--sysfs-root", root)
    assert rc == 2 and "3/reserved_regions" in err, (rc, err)
    rc, out, err = env.run("report", "--sysfs-root", env.path("none"))
    assert rc == 2 and "iommu_groups" in err, (rc, err)
    root = env.sysfs({3: ([], ["0000:00:02.0"])})
    os.mkdir(os.path.join(root, "kernel/iommu_groups/x"))
    rc, out, err = env.run("report", "--sysfs-root", root)
    assert rc == 2 and "iommu_groups/x: not an IOMMU group" in err, (rc, err)


@test
def plan_cmdline(env):
    rc, out, err = env.run("plan", "--ram", "4G", *env.all_reports())
    assert rc == 0 and not err, err
    assert out == fragment(HOLES_4G) + "\n", out


@test
def plan_json_is_a_memmap_range_list(env):
    rc, out, err = env.run("plan", "--ram", "4G", "--format", "json",
                           *env.all_reports())
    assert rc == 0, err
    assert json.loads(out) == [{"type": "hole", "base": b, "size": s}
                               for b, s in HOLES_4G], out


@test
def plan_accepted_by_qemu(env):
    rc, out, err = env.run("plan", "--ram", "4G", *env.all_reports())
    assert rc == 0, err
    regions = assert_ram_avoids(env, out.strip(), 4 * GiB, unusable(HOSTS))
    holes = [(b, l - b + 1) for b, l, t in regions if t == "hole"]
    assert holes == HOLES_4G, holes


@test
def plan_only_holes_that_matter(env):
    """512 MiB of RAM ends before the third hole; the MSI window of
    h-arm is below RAM."""
    rc, out, err = env.run("plan", "--ram", "512M", *env.all_reports())
    assert rc == 0, err
    assert out == fragment(HOLES_4G[:2]) + "\n", out
    assert_ram_avoids(env, out.strip(), 512 * MiB, unusable(HOSTS))


@test
def plan_stdin(env):
    with open(env.report("h-x86", HOSTS["h-x86"])) as f:
        text = f.read()
    rc, out, err = env.run("plan", "--ram", "4G", "-", stdin=text)
    assert rc == 0, err
    assert out == fragment([(0xfee00000, 0x100000)]) + "\n", out


@test
def plan_no_hole_needed(env):
    rc, out, err = env.run("plan", "--ram", "256M",
                           env.report("h-x86", HOSTS["h-x86"]))
    assert rc == 0 and out == "\n", (rc, out)
    assert_ram_avoids(env, "", 256 * MiB, unusable({"h": HOSTS["h-x86"]}))


@test
def plan_alignment(env):
    rc, out, err = env.run("plan", "--ram", "4G", "--align", "2M",
                           *env.all_reports())
    assert rc == 0, err
    holes = parse_fragment(out.strip())
    assert holes == [(0x50000000, 0x200000), (0x60000000, 0x200000),
                     (0x80000000, 0x10000000), (0xc0000000, 0x18000000),
                     (0xfee00000, 0x200000)], holes
    assert_ram_avoids(env, out.strip(), 4 * GiB, unusable(HOSTS))


@test
def plan_base(env):
    """1 GiB of RAM from 0x70000000 ends right where the second hole
    starts, so that hole is not needed."""
    rc, out, err = env.run("plan", "--ram", "1G", "--base", "0x70000000",
                           *env.all_reports())
    assert rc == 0, err
    assert out == fragment(HOLES_4G[2:3]) + "\n", out
    rc, out, err = env.run("plan", "--ram", "0x40010000", "--base",
                           "0x70000000", *env.all_reports())
    assert rc == 0, err
    assert out == fragment(HOLES_4G[2:4]) + "\n", out


@test
def plan_explicit(env):
    """--explicit lists the RAM pieces too, so the map holds from any
    base: QEMU places the RAM exactly there."""
    rc, out, err = env.run("plan", "--ram", "1G", "--base", "0xc0000000",
                           "--explicit", "--format", "json",
                           env.report("h-x86", HOSTS["h-x86"]))
    assert rc == 0, err
    assert json.loads(out) == [
        {"type": "ram", "base": 0xc0000000, "size": 0x3ee00000},
        {"type": "hole", "base": 0xfee00000, "size": 0x100000},
        {"type": "ram", "base": 0xfef00000, "size": 0x1200000},
    ], out
    rc, out, err = env.run("plan", "--ram", "1G", "--base", "0xc0000000",
                           "--explicit", env.report("h-x86", HOSTS["h-x86"]))
    assert rc == 0, err
    regions = assert_ram_avoids(env, out.strip(), GiB,
                                unusable({"h": HOSTS["h-x86"]}))
    assert [(b, t) for b, _, t in regions if t != "device"] == [
        (0xc0000000, "ram"), (0xfee00000, "hole"), (0xfef00000, "ram")]


@test
def plan_types_follow_vfio_type1(env):
    """Every type but direct-relaxable keeps RAM out (the kernel's
    vfio_iommu_resv_exclude() skips only IOMMU_RESV_DIRECT_RELAXABLE)."""
    for t in TYPES:
        report = env.report("h", {1: ([(0x50000000, 0x5000ffff, t)],
                                      ["0000:00:02.0"])})
        rc, out, err = env.run("plan", "--ram", "1G", report)
        assert rc == 0, err
        if t == "direct-relaxable":
            assert out == "\n", (t, out)
        else:
            assert out == fragment([(0x50000000, 0x10000)]) + "\n", (t, out)
        rc, out, err = env.run("check", "--ram", "1G", "--memmap", "", report)
        if t == "direct-relaxable":
            assert rc == 0, (t, out)
        else:
            assert rc == 1 and out == (
                "h: 0000:00:02.0 (IOMMU group 1): guest RAM "
                "0x40000000-0x7fffffff overlaps %s region "
                "0x50000000-0x5000ffff\n" % t), (t, rc, out)


@test
def plan_at_most_32_entries(env):
    """40 windows: the 8 pairs 64 KiB apart are merged."""
    regions = []
    for i in range(32):
        start = 0x50000000 + i * 64 * MiB
        regions.append((start, start + MiB - 1, "msi"))
        if i % 4 == 0:
            regions.append((start + MiB + 64 * KiB,
                            start + 2 * MiB + 64 * KiB - 1, "reserved"))
    assert len(regions) == 40
    report = env.report("h", {1: (regions, ["0000:00:02.0"])})
    rc, out, err = env.run("plan", "--ram", "4G", report)
    assert rc == 0, err
    assert err == ("memmap-plan: warning: more holes than the 32 entries a "
                   "memmap may have: merged those closest together, "
                   "leaving 512 KiB between them without RAM\n"), err
    holes = parse_fragment(out.strip())
    assert holes == [(0x50000000 + i * 64 * MiB,
                      (2 * MiB + 64 * KiB) if i % 4 == 0 else MiB)
                     for i in range(32)], holes
    assert_ram_avoids(env, out.strip(), 4 * GiB,
                      unusable({"h": {1: (regions, [])}}))


@test
def plan_explicit_at_most_32_entries(env):
    """--explicit lists a RAM piece beside every hole: 20 windows are
    merged down to 15 holes, 31 entries, which QEMU takes."""
    regions = [(0x50000000 + i * 64 * MiB, 0x50000000 + i * 64 * MiB
                + MiB - 1, "msi") for i in range(20)]
    report = env.report("h", {1: (regions, ["0000:00:02.0"])})
    rc, out, err = env.run("plan", "--ram", "4G", report)
    assert rc == 0 and len(parse_fragment(out.strip())) == 20, (rc, err)
    rc, out, err = env.run("plan", "--ram", "4G", "--explicit", "--format",
                           "json", report)
    assert rc == 0, err
    entries = json.loads(out)
    assert len(entries) == 31, entries
    assert len([e for e in entries if e["type"] == "hole"]) == 15, entries
    assert err.startswith("memmap-plan: warning: more holes than the 15 "
                          "entries a memmap may have beside the RAM pieces "
                          "(--explicit): merged those closest together"), err
    rc, out, err = env.run("plan", "--ram", "4G", "--explicit", report)
    assert rc == 0, err
    assert_ram_avoids(env, out.strip(), 4 * GiB,
                      unusable({"h": {1: (regions, [])}}))


# a window just above 1 GiB of RAM and the x86 MSI window
DM_HOST = {1: ([(0x90000000, 0x9000ffff, "msi"),
                (0xfee00000, 0xfeefffff, "msi")], ["0000:00:02.0"])}


@test
def plan_device_memory(env):
    """--maxmem and --slots: the device memory area for memory hot-plug,
    which the machine puts above RAM and holes at a 1 GiB boundary,
    avoids the windows too."""
    report = env.report("h", DM_HOST)
    rc, out, err = env.run("plan", "--ram", "1G", report)
    assert rc == 0 and out == "\n", (rc, out, err)
    # without planning for it, the area covers a window
    rc, out, err = env.run("check", "--ram", "1G", "--maxmem", "2G",
                           "--memmap", "", report)
    assert rc == 1 and out == (
        "h: 0000:00:02.0 (IOMMU group 1): guest device memory "
        "0x80000000-0xbfffffff overlaps msi region 0x90000000-0x9000ffff\n"), \
        (rc, out, err)
    regions = env.boot("", GiB, ",maxmem=2G")
    assert (0x80000000, 0xbfffffff, "device-memory") in regions, regions
    for opts, mopts, size in ((["--maxmem", "2G"], ",maxmem=2G", GiB),
                              (["--maxmem", "2G", "--slots", "2"],
                               ",maxmem=2G,slots=2", 3 * GiB)):
        rc, out, err = env.run("plan", "--ram", "1G", *opts, report)
        assert rc == 0, (opts, err)
        # one hole from the first window to the last moves the area
        assert out == fragment([(0x90000000, 0x6ef00000)]) + "\n", (opts, out)
        regions = assert_ram_avoids(env, out.strip(), GiB,
                                    unusable({"h": DM_HOST}), mopts)
        dm = [(b, l) for b, l, t in regions if t == "device-memory"]
        assert dm == [(0x100000000, 0x100000000 + size - 1)], (opts, regions)
        rc, out, err = env.run("check", "--ram", "1G", *opts, "--memmap",
                               out.strip(), report)
        assert rc == 0, (opts, rc, out, err)
    rc, out, err = env.run("plan", "--ram", "1G", "--maxmem", "2G",
                           "--max-addr", "0x120000000", report)
    assert rc == 1 and err == (
        "memmap-plan: 1 GiB of RAM placed upward from 0x40000000 around 1 "
        "holes (the hosts' unusable ranges widened to the 64 KiB alignment) "
        "would end at 0x13fffffff with the device memory area, beyond "
        "--max-addr 0x120000000\n"), (rc, err)


@test
def plan_max_addr(env):
    reports = env.all_reports()
    rc, out, err = env.run("plan", "--ram", "4G", "--max-addr", "6G",
                           *reports)
    assert rc == 0 and out == fragment(HOLES_4G) + "\n", (rc, err)
    rc, out, err = env.run("plan", "--ram", "4G", "--max-addr", "5G",
                           *reports)
    assert rc == 1 and not out, (rc, out)
    assert err == ("memmap-plan: 4 GiB of RAM placed upward from 0x40000000 "
                   "around 5 holes (the hosts' unusable ranges widened to "
                   "the 64 KiB alignment) would end at 0x16820ffff, beyond "
                   "--max-addr 0x140000000\n"), err


@test
def plan_blocked_by_alignment(env):
    """1 GiB alignment widens the holes to cover 1 GiB to 4 GiB."""
    reports = env.all_reports()
    rc, out, err = env.run("plan", "--ram", "4G", "--align", "1G",
                           *reports)
    assert rc == 0, err
    assert out == fragment([(0x40000000, 0xc0000000)]) + "\n", out
    rc, out, err = env.run("plan", "--ram", "4G", "--align", "1G",
                           "--max-addr", "6G", *reports)
    assert rc == 1 and not out, (rc, out)
    assert "widened to the 1 GiB alignment) would end at 0x1ffffffff, " \
           "beyond --max-addr 0x180000000" in err, err
    rc, out, err = env.run("plan", "--ram", "1000000", *reports)
    assert rc == 1 and "multiples of the alignment, 64 KiB" in err, err


@test
def plan_past_64_bits(env):
    report = env.json_report(json.dumps({"host": "h", "devices": [
        {"bdf": "b", "group": 1, "reserved-regions": [
            {"start": 0x50000000, "end": (1 << 64) - 1, "type": "msi"}]}]}))
    rc, out, err = env.run("plan", "--ram", "1G", report)
    assert rc == 1 and "past the end of the 64-bit address space" in err, \
        (rc, err)


@test
def check_fits(env):
    reports = env.all_reports()
    rc, out, err = env.run("plan", "--ram", "4G", *reports)
    rc, out, err = env.run("check", "--ram", "4G", "--memmap", out.strip(),
                           *reports)
    assert rc == 0, (rc, out, err)
    assert out == "7 devices in 3 host reports: all fit the map\n", out


@test
def check_conflicts(env):
    rc, out, err = env.run("check", "--ram", "4G", "--memmap",
                           fragment(HOLES_4G[2:4]), *env.all_reports())
    assert rc == 1 and not err, (rc, err)
    low = "guest RAM 0x40000000-0x7fffffff overlaps direct region"
    msi = ("guest RAM 0xd8000000-0x167ffffff overlaps msi region "
           "0xfee00000-0xfeefffff")
    assert out.splitlines() == [
        "h-x86: 0000:00:02.0 (IOMMU group 1): " + msi,
        "h-x86: 0000:00:1f.0 (IOMMU group 2): " + msi,
        "h-x86: 0000:00:1f.3 (IOMMU group 2): " + msi,
        "h-arm: 0000:02:00.0 (IOMMU group 5): %s 0x50000000-0x500fffff" % low,
        "h-odd: 0000:04:00.0 (IOMMU group 10): %s 0x60001000-0x60002fff"
        % low], out


@test
def check_bad_map(env):
    rc, out, err = env.run("check", "--ram", "4G", "--memmap",
                           "memmap.0.type=hole,memmap.0.base=0x50001000,"
                           "memmap.0.size=64K", env.all_reports()[0])
    assert rc == 2 and "must be multiples of 64 KiB" in err, (rc, err)
    rc, out, err = env.run("check", "--ram", "4G", "--memmap", "memmap.0.x=1",
                           env.all_reports()[0])
    assert rc == 2 and err.startswith("memmap-plan: "), (rc, err)


DEVICE = '{"host": "h", "devices": [{"bdf": "b", "group": %s}]}'
REGION = DEVICE % '1, "reserved-regions": [%s]'

# (text, message after the file name): syntax errors give line and
# column (of the token where QEMU's JSON parser found the error, with
# its message), schema errors the path to the value
BAD_JSON = [
    ("", ":1:1: no JSON value"),
    (" \n", ":2:1: no JSON value"),
    ("hello", ":1:1: JSON parse error, invalid keyword 'hello'"),
    ('{"host": "h", "devices": [', ":1:27: JSON parse error, premature EOI"),
    ('{"host": "h",\n "devices": [{"bdf": "b"',
     ":2:25: JSON parse error, premature EOI"),
    ('{"host": "h", "devices": [{"bdf": "b\\x"}]}',
     ":1:35: JSON parse error, invalid escape sequence in string"),
    ('{"host": "h", "devices": [{"bdf" "b"}]}',
     ":1:34: JSON parse error, missing : in object pair"),
    ('{"host": "h", "devices": [tru]}',
     ":1:27: JSON parse error, invalid keyword 'tru'"),
    ('{"host": "h", "devices": [[1 2]]}',
     ":1:30: JSON parse error, expected separator in list"),
    # QEMU's extensions to JSON: single quotes, the escape \', and
    # %-interpolation (off when reading, as in QMP)
    ('{"host": \'h\', "devices": []}',
     ":1:10: JSON parse error, single-quoted strings are not JSON"),
    ('{"devices": [], "host": "h\\\'"}',
     ":1:27: JSON parse error, \\' is not a JSON escape"),
    ('{"host": %s, "devices": []}', ":1:10: JSON parse error, stray '%'"),
    ('{"host": 1, "devices": []}', ": host: expected a string"),
    ("[]", ": expected an object"),
    ('{"host": "h", "devices": [], "x": 1}', ": unexpected member 'x'"),
    # QEMU's parser finds a duplicate at the second member's value
    ('{"host": "h", "host": "h", "devices": []}',
     ":1:23: JSON parse error, duplicate key"),
    ('{"host": "h", "devices": [],\n "host": "h"}',
     ":2:10: JSON parse error, duplicate key"),
    # names that differ only in escapes
    ('{"host": "h", "h\\u006fst": "h", "devices": []}',
     ":1:28: JSON parse error, duplicate key"),
    ('{"host": "h"}', ": host report without 'devices'"),
    (DEVICE % "1", ": devices[0]: device without 'reserved-regions'"),
    ('{"host": "h", "devices": [],}', ":1:29: JSON parse error, expecting value"),
    ('{"host": "h", "devices": [1]}', ": devices[0]: expected an object"),
    ('{"host": "h", "devices": {}}', ": devices: expected an array"),
    ('{"host": "h", "devices": []} []',
     ":1:30: unexpected data after the host report"),
    ('{"host": "h", "devices": []}\n\n}',
     ":3:1: unexpected data after the host report"),
    ('{"host": "h",\n "devices": [{"bdf": "b", "group": -1,\n'
     ' "reserved-regions": []}]}',
     ": devices[0].group: expected a non-negative integer"),
    (DEVICE % '"1", "reserved-regions": []',
     ": devices[0].group: expected a non-negative integer"),
    (DEVICE % '1.5, "reserved-regions": []',
     ": devices[0].group: expected an integer"),
    (DEVICE % '1e3, "reserved-regions": []',
     ": devices[0].group: expected an integer"),
    (DEVICE % '01, "reserved-regions": []',
     ":1:49: JSON parse error, stray '01'"),
    (DEVICE % '18446744073709551616, "reserved-regions": []',
     ":1:49: integer 18446744073709551616 out of range"),
    (DEVICE % '99999999999999999999999, "reserved-regions": []',
     ":1:49: integer 99999999999999999999999 out of range"),
    (DEVICE % '-9223372036854775809, "reserved-regions": []',
     ":1:49: integer -9223372036854775809 out of range"),
    (REGION % '{"start": 2, "end": 1, "type": "msi"}',
     ": devices[0].reserved-regions[0]: reserved region end 0x1 is below "
     "its start 0x2"),
    (REGION % '{"start": 1, "end": 2, "type": "bogus"}',
     ": devices[0].reserved-regions[0].type: unknown reserved region type "
     "'bogus'"),
    (REGION % '{"start": 1, "end": 2, "type": "msi"},'
     ' {"start": 2, "end": 3, "type": "msi"}',
     ": devices[0]: device b: msi regions 0x1-0x2 and 0x2-0x3 overlap"),
    # nesting beyond the schema
    (REGION % '{"start": [1], "end": 2, "type": "msi"}',
     ": devices[0].reserved-regions[0].start: expected a non-negative "
     "integer"),
    ('{"host": "h", "devices": [[[[[[[]]]]]]]}',
     ": devices[0]: expected an object"),
    # beyond QEMU's parser's nesting limit (1024)
    ('{"host": "h", "devices": ' + "[" * 1100 + "]" * 1100 + "}",
     ":1:1049: JSON nesting depth limit exceeded"),
    # Unicode: what is not a character is refused by QEMU's parser
    ('{"host": "h\\ud800", "devices": []}',
     ":1:10: JSON parse error, \\ud800 is not a valid Unicode character"),
    ('{"host": "h\\uffff", "devices": []}',
     ":1:10: JSON parse error, \\uffff is not a valid Unicode character"),
    # strings: UTF-8 and control characters
    (b'{"host": "h\xff", "devices": []}', ":1:12: invalid UTF-8"),
    (b'{"host": "h\xc3", "devices": []}', ":1:12: invalid UTF-8"),
    # an overlong '/', a surrogate written as UTF-8
    (b'{"host": "h\xc0\xaf", "devices": []}', ":1:12: invalid UTF-8"),
    (b'{"host": "h\xed\xa0\x80", "devices": []}', ":1:12: invalid UTF-8"),
    (b'{"host": "h",\n "devices": []}\0', ":2:16: NUL character"),
    ('{"host": "a\\tb", "devices": []}',
     ": host: control character in 'a\\x09b'"),
    ('{"host": "a\\u0000b", "devices": []}',
     ": host: control character in 'a\\x00b'"),
    ('{"host": "a\tb", "devices": []}',
     ":1:10: JSON parse error, stray '\"a\\x09'"),
]


@test
def bad_json_reports(env):
    good = env.report("h-x86", HOSTS["h-x86"])
    for text, message in BAD_JSON:
        path = env.json_report(text)
        for cmd in (["plan", "--ram", "1G"],
                    ["check", "--ram", "1G", "--memmap", ""]):
            rc, out, err = env.run(*cmd, good, path)
            assert rc == 2 and err == "memmap-plan: %s%s\n" % (
                path, message), (text, cmd, rc, err)
    rc, out, err = env.run("plan", "--ram", "1G", env.path("missing"))
    assert rc == 2 and "missing" in err and "No such file" in err, err


@test
def corrupt_reports_never_crash(env):
    """Every truncation of a report, and many one-byte changes, give a
    clean exit: 2 and a message naming the file when broken."""
    text = json.dumps({"host": "h", "devices": [
        {"bdf": "0000:00:02.0", "group": 1, "reserved-regions": [
            {"start": 0xfee00000, "end": 0xfeefffff, "type": "msi"},
            {"start": 0x7a000000, "end": 0x7a7fffff,
             "type": "direct-relaxable"}]}]})
    rc, out, err = env.run("plan", "--ram", "4G", env.json_report(text))
    assert rc == 0 and out == fragment([(0xfee00000, 0x100000)]) + "\n"
    variants = [text[:i] for i in range(len(text))]
    variants += [text[:i] + c + text[i + 1:]
                 for i in range(0, len(text), 6) for c in '"}],-\0']
    for v in variants:
        path = env.json_report(v)
        rc, out, err = env.run("plan", "--ram", "4G", path)
        assert rc in (0, 2), (v, rc, err)
        assert rc == 0 or err.startswith("memmap-plan: %s:" % path), (v, err)


@test
def overlapping_types_in_one_device_are_fine(env):
    report = env.json_report(json.dumps({"host": "h", "devices": [
        {"bdf": "b", "group": 1, "reserved-regions": [
            {"start": 0x50000000, "end": 0x5fffffff, "type": "reserved"},
            {"start": 0x58000000, "end": 0x67ffffff, "type": "msi"},
            {"start": 0x50000000, "end": 0x6fffffff,
             "type": "direct-relaxable"}]}]}))
    rc, out, err = env.run("plan", "--ram", "1G", report)
    assert rc == 0, err
    assert out == fragment([(0x50000000, 0x18000000)]) + "\n", out


def conflict_line(host, bdf, group):
    return ("%s: %s (IOMMU group %d): guest RAM 0x40000000-0x7fffffff "
            "overlaps msi region 0x50000000-0x5000ffff\n" % (host, bdf, group))


def msi_report(host, bdf, group=1):
    """A report of one device with an MSI window inside 1 GiB of RAM"""
    return {"host": host, "devices": [
        {"bdf": bdf, "group": group, "reserved-regions": [
            {"start": 0x50000000, "end": 0x5000ffff, "type": "msi"}]}]}


@test
def reports_are_rfc8259(env):
    """Escapes, \\u escapes and surrogate pairs are decoded, non-ASCII
    names kept; pretty-printed and minified documents read alike."""
    cases = [
        # what Python's json.dumps writes by default: \u escapes
        (json.dumps(msi_report("h\u00e9", "0000:00:02.0")),
         "h\u00e9", "0000:00:02.0"),
        (json.dumps(msi_report("h\u00e9", "0000:00:02.0"),
                    ensure_ascii=False), "h\u00e9", "0000:00:02.0"),
        # a surrogate pair, upper and lower case hex digits
        ('{"host": "\\uD83D\\ude00", "devices": [{"bdf": "b", "group": 1,'
         ' "reserved-regions": [{"start": 1342177280, "end": 1342242815,'
         ' "type": "msi"}]}]}', "\U0001f600", "b"),
        # every two-character escape that is no control character
        (json.dumps(msi_report('q"b\\s/', "\u0030000:00:02.0")),
         'q"b\\s/', "0000:00:02.0"),
        ('{"host": "a\\/b", "devices": [{"bdf": "\\u0062", "group": 1,'
         ' "reserved-regions": [{"start": 1342177280, "end": 1342242815,'
         ' "type": "\\u006dsi"}]}]}', "a/b", "b"),
        (json.dumps(msi_report("h", "b"), indent=4), "h", "b"),
        (json.dumps(msi_report("h", "b"), indent="\t"), "h", "b"),
        (json.dumps(msi_report("h", "b"), separators=(",", ":")), "h", "b"),
        ("\r\n\t " + json.dumps(msi_report("h", "b")).replace(" ", "\n")
         + "\n\n", "h", "b"),
    ]
    for text, host, bdf in cases:
        path = env.json_report(text)
        rc, out, err = env.run("plan", "--ram", "1G", path)
        assert rc == 0 and out == fragment([(0x50000000, 0x10000)]) + "\n", \
            (text, rc, out, err)
        rc, out, err = env.run("check", "--ram", "1G", "--memmap", "", path)
        assert rc == 1 and out == conflict_line(host, bdf, 1), (text, out, err)


@test
def many_reports_in_threads(env):
    """300 reports read by 1 to 4 threads give one plan, whatever their
    order; with two bad ones (read by different threads), the error is
    always the first one's in the order given."""
    windows = [((5 + i) << 30, ((5 + i) << 30) + 0xffff) for i in range(10)]
    paths = []
    for h in range(300):
        start, end = windows[h % 10]
        paths.append(env.json_report(json.dumps({"host": "h%d" % h,
            "devices": [{"bdf": "b", "group": 1, "reserved-regions": [
                {"start": start, "end": end, "type": "msi"}]}]})))
    want = fragment([(start, 0x10000) for start, _ in windows]) + "\n"
    for jobs in ("1", "2", "3", "4"):
        for order in (paths, paths[::-1]):
            rc, out, err = env.run("plan", "--ram", "16G", "--jobs", jobs,
                                   *order)
            assert rc == 0 and out == want and not err, (jobs, rc, out, err)
    bad = list(paths)
    bad[150] = env.json_report('{"host": "h150", "devices": [1]}')
    bad[201] = env.json_report('{"host": "h201"}')
    for jobs in ("1", "2", "4"):
        for _ in range(5):
            rc, out, err = env.run("plan", "--ram", "16G", "--jobs", jobs,
                                   *bad)
            assert rc == 2 and err == ("memmap-plan: %s: devices[0]: "
                                       "expected an object\n" % bad[150]), \
                (jobs, rc, err)


@test
def reports_hold_the_whole_uint64_range(env):
    top = (1 << 64) - 1
    report = msi_report("h", "b", top)
    report["devices"][0]["reserved-regions"].append(
        {"start": top - 0xffff, "end": top, "type": "reserved"})
    path = env.json_report(json.dumps(report))
    rc, out, err = env.run("check", "--ram", "1G", "--memmap", "", path)
    assert rc == 1 and out == conflict_line("h", "b", top), (rc, out, err)
    rc, out, err = env.run("plan", "--ram", "1G", path)
    assert rc == 0 and out == fragment([(0x50000000, 0x10000)]) + "\n", \
        (rc, out, err)
    # the region at the top blocks RAM that would reach it
    rc, out, err = env.run("plan", "--ram", "1G", "--base",
                           "0xffffffffc0000000", path)
    assert rc == 1 and "past the end of the 64-bit address space" in err, \
        (rc, out, err)


@test
def report_round_trip(env):
    """report writes what plan and check read back: non-ASCII host
    names, the top of the 64-bit range."""
    top = (1 << 64) - 1
    groups = {7: ([(0x50000000, 0x5000ffff, "msi"),
                   (top - 0xffff, top, "reserved")], ["0000:00:02.0"])}
    # options are read in the locale's character set
    utf8 = dict(os.environ, LC_ALL="C.UTF-8")
    rc, out, err = env.run("report", "--sysfs-root", env.sysfs(groups),
                           "--host", "h\u00e9-\U0001f600", env=utf8)
    assert rc == 0, err
    path = env.json_report(out)
    report = json.loads(out)
    assert report["host"] == "h\u00e9-\U0001f600", report
    assert report["devices"][0]["reserved-regions"][1]["end"] == top, report
    rc, out, err = env.run("check", "--ram", "1G", "--memmap", "", path)
    assert rc == 1 and out == conflict_line("h\u00e9-\U0001f600",
                                            "0000:00:02.0", 7), (out, err)


def doc_examples(path):
    """Yield (argv, expected output) of the memmap-plan commands in the
    literal blocks of the docs."""
    text = open(path).read()
    for block in re.findall(r"::\n\n((?:  .*\n|\n)+)", text):
        lines = [l[2:] for l in block.rstrip("\n").split("\n")]
        while lines:
            cmd = lines.pop(0)
            while cmd.endswith("\\"):
                cmd = cmd[:-1] + lines.pop(0)
            out = []
            while lines and not lines[0].startswith("$ "):
                out.append(lines.pop(0))
            if cmd.startswith("$ memmap-plan "):
                yield shlex.split(cmd[len("$ memmap-plan "):]), out


@test
def docs_examples_are_right(env):
    """The hosts of docs/tools/memmap-plan.rst: h1 has the x86 MSI window,
    h2 a PCI window."""
    h1 = {1: ([(0xfee00000, 0xfeefffff, "msi")], ["0000:00:02.0"]),
          2: ([(0x7a000000, 0x7a7fffff, "direct-relaxable"),
               (0xfee00000, 0xfeefffff, "msi")],
              ["0000:00:1f.0", "0000:00:1f.3"])}
    h2 = {5: ([(0x08000000, 0x080fffff, "msi"),
               (0x80000000, 0x8fffffff, "reserved")], ["0000:02:00.0"])}
    reports = {"h1.json": env.report("h1", h1),
               "h2.json": env.report("h2", h2)}
    doc = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "..", "..", "docs", "tools", "memmap-plan.rst")
    examples = list(doc_examples(doc))
    assert len(examples) == 3, examples
    for argv, expected in examples:
        argv = [reports.get(a, a) for a in argv]
        if argv[0] == "report":
            argv += ["--sysfs-root", env.sysfs(h1)]
        rc, out, err = env.run(*argv)
        assert out.splitlines() == expected, (argv, out, err)
        # the exit status the docs give: 1 when check prints a conflict
        want = 1 if argv[0] == "check" and expected else 0
        assert rc == want and not err, (argv, rc, want, err)


@test
def usage_errors(env):
    rc, out, err = env.run("--help")
    assert rc == 0 and "report" in out and "check REPORT" in out, out
    report = env.report("h-x86", HOSTS["h-x86"])
    for args, message in [
            ([], "no command given"),
            (["frobnicate"], "unknown command 'frobnicate'"),
            (["plan", "--ram", "1G"], "plan needs at least one host report"),
            (["plan", report], "--ram is required"),
            (["plan", "--ram", "1X", report], "--ram: invalid size '1X'"),
            (["plan", "--ram", "1G", "--align", "96K", report],
             "--align must be a power of 2"),
            (["plan", "--ram", "1G", "--format", "xml", report],
             "--format must be cmdline or json"),
            (["plan", "--ram", "1G", "--memmap", "", report],
             "--memmap is not an option of plan"),
            (["check", "--ram", "1G", report], "--memmap is required"),
            (["report", "--ram", "1G"], "--ram is not an option of report"),
            (["report", "--explicit"],
             "--explicit is not an option of report"),
            (["report", "--maxmem", "2G"],
             "--maxmem is not an option of report"),
            (["plan", "--ram", "1G", "--maxmem", "512M", report],
             "--maxmem must be at least --ram"),
            (["plan", "--ram", "1G", "--maxmem", "2G", "--slots", "x",
              report], "--slots: invalid number 'x'"),
            (["plan", "--ram", "1G", "--slots", "2", report],
             "--slots needs --maxmem, as -m slots needs maxmem"),
            (["check", "--ram", "1G", "--memmap", "", "--maxmem", "2G",
              "--slots", "99999999999999", report],
             "--slots: invalid number"),
            (["report", report], "report takes no arguments"),
            (["plan", "--bogus"], "Unknown option --bogus")]:
        rc, out, err = env.run(*args)
        assert rc == 2 and message in err and not out, (args, rc, err)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--planner", required=True)
    parser.add_argument("--qemu", required=True)
    args = parser.parse_args()
    failed = 0
    print("1..%d" % len(TESTS))
    with tempfile.TemporaryDirectory(prefix="memmap-plan-") as tmp:
        env = Env(os.path.abspath(args.planner), args.qemu, tmp)
        for i, fn in enumerate(TESTS, 1):
            try:
                fn(env)
                print("ok %d - %s" % (i, fn.__name__))
            except Exception:  # pylint: disable=broad-except
                failed += 1
                print("not ok %d - %s" % (i, fn.__name__))
                for line in traceback.format_exc().splitlines():
                    print("# " + line)
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
