#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt drives a memmap VM: Debian's libvirtd, started here with a
private configuration, runtime and state (a session daemon of an
unprivileged user, all under --workdir; no system libvirt is touched),
defines the domain of docs/system/memmap.rst on our qemu-system-aarch64
with the map passed through <qemu:commandline>, starts it, and the map
is checked through `virsh qemu-monitor-command` (query-memmap) and in
the guest's /proc/iomem (serial log).  At the QMP level through libvirt:
memory hot-plug into the hole refused and at a free address accepted,
the map refused once the machine exists, the domain running on.  Then
destroy, undefine, and the daemon stops.  Prints TAP.
"""

import argparse
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "harness"))
from guestlib import BEGIN, END, merge, parse  # noqa: E402

LIBVIRTD = "/usr/sbin/libvirtd"
VIRSH = "/usr/bin/virsh"
RAM_BASE = 0x40000000
MiB = 1 << 20
GiB = 1 << 30

# The paths of the documented domain that this test replaces with its own
DOC_PATHS = ("emulator", "kernel", "initrd", "serial")
DOC_VALUES = {
    "emulator": "<emulator>/usr/bin/qemu-system-aarch64</emulator>",
    "kernel": "<kernel>/var/lib/libvirt/boot/vmlinuz-arm64</kernel>",
    "initrd": "<initrd>/var/lib/libvirt/boot/initramfs-arm64.cpio.gz"
              "</initrd>",
    "serial": "<source path='/var/log/libvirt/qemu/memmap-guest-serial.log'/>",
}
XML_BLOCK = re.compile(r"^\.\. code-block:: xml\n\n((?:  .*\n|\n)+)",
                       re.MULTILINE)


class Failure(Exception):
    pass


def doc_domain(rst):
    """The one domain XML of the docs, as its text."""
    blocks = XML_BLOCK.findall(Path(rst).read_text())
    if len(blocks) != 1:
        raise Failure(f"{rst}: {len(blocks)} xml code blocks, expected 1")
    return "".join(l[2:] + "\n" for l in blocks[0].rstrip("\n").split("\n"))


def memmap_of(xml):
    """The holes of the -machine argument of <qemu:commandline>, and the
    RAM size of <memory>."""
    args = re.findall(r"<qemu:arg value='([^']*)'/>", xml)
    if len(args) != 2 or args[0] != "-machine":
        raise Failure(f"expected -machine and a map in qemu:commandline: "
                      f"{args}")
    entries = {}
    for item in args[1].split(","):
        m = re.fullmatch(r"memmap\.(\d+)\.(type|base|size)=(\S+)", item)
        if not m:
            raise Failure(f"unexpected -machine item {item!r}")
        entries.setdefault(int(m[1]), {})[m[2]] = m[3]
    holes = []
    for e in entries.values():
        if e["type"] != "hole":
            raise Failure(f"expected holes only: {e}")
        size = e["size"]
        mult = {"M": MiB, "G": GiB}.get(size[-1], 1)
        holes.append((int(e["base"], 0),
                      int(size[:-1] if mult > 1 else size, 0) * mult))
    m = re.search(r"<memory unit='GiB'>(\d+)</memory>", xml)
    if not m:
        raise Failure("no <memory unit='GiB'> in the domain")
    return sorted(holes), int(m[1]) * GiB


def ram_pieces(ram, holes):
    """RAM placed upward from the RAM base around the holes, as the
    machine does with holes only: [(base, size)]."""
    pieces, addr = [], RAM_BASE
    for base, size in holes:
        if ram and base > addr:
            n = min(ram, base - addr)
            pieces.append((addr, n))
            ram -= n
        addr = max(addr, base + size)
    if ram:
        pieces.append((addr, ram))
    return pieces


class Libvirt:
    """A libvirtd of our own: session mode of an unprivileged user, with
    every directory under workdir."""

    def __init__(self, workdir, user):
        self.work = Path(workdir)
        self.pw = pwd.getpwnam(user)
        d = self.work
        self.env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(d / "home"),
            "XDG_CONFIG_HOME": str(d / "config"),
            "XDG_CACHE_HOME": str(d / "cache"),
            "XDG_RUNTIME_DIR": str(d / "run"),
            "LC_ALL": "C",
        }
        self.sock = d / "run" / "sock" / "libvirt-sock"
        self.uri = f"qemu+unix:///session?socket={self.sock}"
        self.log = d / "libvirtd.log"
        self.proc = None

    def leftovers(self):
        """Kill the daemon and QEMU of an earlier run that died, found
        by their pid files under workdir."""
        run = self.work / "run" / "libvirt"
        for pidfile in [run / "libvirtd.pid",
                        *run.glob("qemu/run/*.pid")]:
            try:
                pid = int(pidfile.read_text())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            if str(self.work).encode() in cmdline:
                os.kill(pid, signal.SIGKILL)

    def setup(self):
        if self.work.exists():
            self.leftovers()
            shutil.rmtree(self.work)
        for sub in ("home", "config/libvirt", "cache", "run/sock", "guest"):
            (self.work / sub).mkdir(parents=True)
        (self.work / "libvirtd.conf").write_text(
            f'unix_sock_dir = "{self.sock.parent}"\n'
            f'log_outputs = "3:file:{self.log}"\n')
        # QEMU's stdout and stderr go to a file, not to virtlogd; no
        # security driver: the emulator and guest files are ours
        (self.work / "config/libvirt/qemu.conf").write_text(
            'stdio_handler = "file"\n'
            'security_driver = "none"\n')
        for root, dirs, files in os.walk(self.work):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(name, self.pw.pw_uid, self.pw.pw_gid)

    def _user(self):
        return {"user": self.pw.pw_uid, "group": self.pw.pw_gid,
                "extra_groups": [], "env": self.env}

    def start(self, timeout=60):
        daemon_log = open(self.work / "libvirtd.out", "wb")
        self.proc = subprocess.Popen(
            [LIBVIRTD, "--config", str(self.work / "libvirtd.conf")],
            stdin=subprocess.DEVNULL, stdout=daemon_log,
            stderr=subprocess.STDOUT, cwd=self.work, **self._user())
        deadline = time.monotonic() + timeout
        while not self.sock.exists():
            if self.proc.poll() is not None:
                raise Failure(f"libvirtd exited with {self.proc.returncode}: "
                              + self.tail())
            if time.monotonic() > deadline:
                raise Failure("no libvirtd socket after %d s" % timeout)
            time.sleep(0.2)

    def tail(self):
        text = ""
        for f in (self.work / "libvirtd.out", self.log):
            if f.exists():
                text += "\n".join(f.read_text(errors="replace")
                                  .splitlines()[-20:]) + "\n"
        return text

    def virsh(self, *args, check=True, timeout=120):
        p = subprocess.run([VIRSH, "-c", self.uri, *args],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout, **self._user())
        if check and p.returncode != 0:
            raise Failure(f"virsh {' '.join(args)}: exit {p.returncode}: "
                          f"{p.stderr.strip()}")
        return p

    def qmp(self, domain, command, **arguments):
        """One QMP command through virsh; returns the reply object."""
        cmd = {"execute": command}
        if arguments:
            cmd["arguments"] = arguments
        p = self.virsh("qemu-monitor-command", domain, json.dumps(cmd))
        return json.loads(p.stdout)

    def state(self, domain):
        return self.virsh("domstate", domain).stdout.strip()

    def stop(self, timeout=30):
        """SIGTERM; returns the daemon's exit status."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("libvirtd did not stop on SIGTERM") from None


class Test:
    def __init__(self, args):
        self.args = args
        self.lv = Libvirt(args.workdir, args.user)
        self.xml_doc = doc_domain(args.doc)
        self.holes, self.ram = memmap_of(self.xml_doc)
        self.pieces = ram_pieces(self.ram, self.holes)
        self.name = re.search(r"<name>(.*)</name>", self.xml_doc)[1]
        self.serial = self.lv.work / "guest" / "serial.log"

    def domain_xml(self):
        """The documented domain with our paths in place of its own."""
        ours = {
            "emulator": f"<emulator>{self.args.qemu}</emulator>",
            "kernel": f"<kernel>{self.args.kernel}</kernel>",
            "initrd": f"<initrd>{self.args.initrd}</initrd>",
            "serial": f"<source path='{self.serial}'/>",
        }
        xml = self.xml_doc
        for key in DOC_PATHS:
            if xml.count(DOC_VALUES[key]) != 1:
                raise Failure(f"the documented domain lacks {DOC_VALUES[key]}")
            xml = xml.replace(DOC_VALUES[key], ours[key])
        return xml

    def t_daemon_starts(self):
        """our own libvirtd answers on its socket under workdir"""
        self.lv.setup()
        self.lv.start()
        uri = self.lv.virsh("uri").stdout.strip()
        assert uri == self.lv.uri, uri
        ver = self.lv.virsh("version").stdout
        assert "libvirt" in ver and "QEMU" in ver, ver

    def t_define_documented_domain(self):
        """the domain XML of docs/system/memmap.rst defines"""
        path = self.lv.work / "domain.xml"
        path.write_text(self.domain_xml())
        self.lv.virsh("define", str(path))
        dumped = self.lv.virsh("dumpxml", self.name).stdout
        assert "memmap.0.type=hole" in dumped, dumped
        assert self.state() == "shut off", self.state()

    def state(self):
        return self.lv.state(self.name)

    def query_memmap(self):
        reply = self.lv.qmp(self.name, "query-memmap")
        assert "return" in reply, reply
        return reply["return"]

    def t_query_memmap(self):
        """started by libvirt, query-memmap shows the map"""
        self.lv.virsh("start", "--paused", self.name)
        assert self.state() == "paused", self.state()
        # libvirt's -machine, and ours after it
        pidfile = self.lv.work / "run/libvirt/qemu/run" / (self.name + ".pid")
        argv = Path("/proc/%d/cmdline" % int(pidfile.read_text())) \
            .read_bytes().decode().split("\0")
        machine = [argv[i + 1] for i, a in enumerate(argv)
                   if a == "-machine"]
        assert len(machine) == 2 and machine[0].startswith("virt") and \
            machine[1].startswith("memmap.0."), machine
        entries = self.query_memmap()
        ram = [(e["base"], e["size"]) for e in entries if e["type"] == "ram"]
        holes = [(e["base"], e["size"]) for e in entries
                 if e["type"] == "hole"]
        assert ram == self.pieces, (ram, self.pieces)
        assert holes == self.holes, (holes, self.holes)
        # the same through HMP
        hmp = self.lv.virsh("qemu-monitor-command", "--hmp", self.name,
                            "info memmap").stdout
        for base, size in self.pieces:
            assert re.search(r"0x%016x 0x%016x .* ram " % (
                base, base + size - 1), hmp), hmp

    def t_guest_sees_the_map(self):
        """the guest's /proc/iomem System RAM is the map's RAM"""
        self.lv.virsh("resume", self.name)
        deadline = time.monotonic() + self.args.timeout
        while self.state() != "shut off":
            if time.monotonic() > deadline:
                raise Failure("the guest did not power off in %d s"
                              % self.args.timeout)
            time.sleep(1)
        lines = [l.strip() for l in
                 self.serial.read_text(errors="replace").splitlines()]
        try:
            begin = lines.index(BEGIN)
            end = lines.index(END, begin)
        except ValueError:
            raise Failure("no guest report in the serial log: "
                          + "\n".join(lines[-30:])) from None
        got = merge(parse(lines[begin + 1:end])["iomem"])
        want = merge((b, b + s - 1) for b, s in self.pieces)
        assert got == want, ([hex(a) for r in got for a in r],
                             [hex(a) for r in want for a in r])

    def t_memmap_fixed_at_run_time(self):
        """qom-set of memmap refused with our message, domain running"""
        self.lv.virsh("start", "--paused", self.name)
        current = self.lv.qmp(self.name, "qom-get", path="/machine",
                              property="memmap")
        assert current.get("return") == [
            {"type": "hole", "base": b, "size": s} for b, s in self.holes
        ], current
        reply = self.lv.qmp(self.name, "qom-set", path="/machine",
                            property="memmap",
                            value=[{"type": "hole", "base": 0xfee00000,
                                    "size": MiB}])
        assert reply.get("error", {}).get("desc") == (
            "memmap can only be set on the command line, before the "
            "machine is created"), reply
        assert self.query_memmap() and self.lv.qmp(
            self.name, "qom-get", path="/machine",
            property="memmap")["return"] == current["return"]
        assert self.state() == "paused", self.state()

    def t_memory_hotplug(self):
        """virtio-mem into the hole refused, above RAM and holes
        accepted; the domain runs on"""
        dev_mem = [e for e in self.query_memmap()
                   if e["name"] == "device-memory"]
        assert len(dev_mem) == 1, dev_mem
        dev_base = dev_mem[0]["base"]
        hole_end = max(b + s for b, s in self.holes)
        ram_end = max(b + s for b, s in self.pieces)
        assert dev_base >= max(hole_end, ram_end), hex(dev_base)
        reply = self.lv.qmp(self.name, "object-add",
                            **{"qom-type": "memory-backend-ram",
                               "id": "vmem0-mem", "size": 256 * MiB})
        assert "return" in reply, reply
        hole = self.holes[0][0]
        plug = {"driver": "virtio-mem-pci", "id": "vmem0",
                "memdev": "vmem0-mem", "bus": "pci.1",
                "requested-size": 128 * MiB}
        reply = self.lv.qmp(self.name, "device_add", memaddr=hole, **plug)
        desc = reply.get("error", {}).get("desc", "")
        assert desc == ("can't add memory device [0x%x:0x%x], usable range "
                        "for memory devices [0x%x:0x%x]" % (
                            hole, 256 * MiB, dev_base, dev_mem[0]["size"])), \
            reply
        assert self.state() == "paused", self.state()
        reply = self.lv.qmp(self.name, "device_add", memaddr=dev_base,
                            **plug)
        assert "return" in reply, reply
        devices = self.lv.qmp(self.name, "query-memory-devices")["return"]
        got = [(d["type"], d["data"]["id"], d["data"]["memaddr"],
                d["data"]["max-size"]) for d in devices]
        assert got == [("virtio-mem", "vmem0", dev_base, 256 * MiB)], \
            devices
        self.lv.virsh("resume", self.name)
        assert self.state() == "running", self.state()
        status = self.lv.qmp(self.name, "query-status")["return"]
        assert status["running"], status

    def t_destroy_undefine(self):
        """virsh destroy and undefine"""
        if self.state() != "shut off":
            self.lv.virsh("destroy", self.name)
        assert self.state() == "shut off", self.state()
        self.lv.virsh("undefine", self.name)
        listed = self.lv.virsh("list", "--all", "--name").stdout.split()
        assert self.name not in listed, listed

    def t_daemon_stops(self):
        """the daemon stops on SIGTERM"""
        rc = self.lv.stop()
        assert rc == 0, f"libvirtd exited with {rc}: " + self.lv.tail()

    TESTS = ["t_daemon_starts", "t_define_documented_domain",
             "t_query_memmap", "t_guest_sees_the_map",
             "t_memmap_fixed_at_run_time", "t_memory_hotplug",
             "t_destroy_undefine", "t_daemon_stops"]


def reachable_inputs(args):
    """The daemon and QEMU run as args.user: when it cannot reach the
    work directory or the files (a clone in a home directory of mode
    0700), work in a directory under /tmp with copies of the files."""
    pw = pwd.getpwnam(args.user)
    args.tmp = None
    parent = os.path.dirname(args.workdir)
    tests = [("-x", parent), ("-r", args.qemu), ("-x", args.qemu),
             ("-r", args.kernel), ("-r", args.initrd)]
    if all(subprocess.run(["test", op, path], user=pw.pw_uid,
                          group=pw.pw_gid, extra_groups=[]).returncode == 0
           for op, path in tests):
        return
    tmp = Path(tempfile.mkdtemp(prefix="memmap-libvirt-"))
    tmp.chmod(0o755)
    for a in ("qemu", "kernel", "initrd"):
        copy = tmp / os.path.basename(getattr(args, a))
        shutil.copy(getattr(args, a), copy)
        copy.chmod(0o755)
        setattr(args, a, str(copy))
    args.workdir = str(tmp / "libvirt")
    args.tmp = tmp
    print("# %s cannot reach the build directory: working in %s"
          % (args.user, tmp))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--user", default="nobody")
    ap.add_argument("--timeout", type=int, default=240)
    args = ap.parse_args()
    for a in ("qemu", "kernel", "initrd", "workdir"):
        setattr(args, a, os.path.abspath(getattr(args, a)))
    reachable_inputs(args)

    print("1..%d" % len(Test.TESTS))
    sys.stdout.flush()
    failed = 0
    test = None
    try:
        test = Test(args)
    except Exception:  # pylint: disable=broad-except
        setup_error = traceback.format_exc()
    for i, name in enumerate(Test.TESTS, 1):
        title = name[2:]
        try:
            if test is None:
                raise Failure(setup_error)
            if failed and name != "t_daemon_stops":
                raise Failure("an earlier step failed")
            getattr(test, name)()
            print("ok %d - %s" % (i, title))
        except Exception:  # pylint: disable=broad-except
            failed += 1
            print("not ok %d - %s" % (i, title))
            for line in traceback.format_exc().splitlines():
                print("# " + line)
            if test is not None and failed == 1:
                for line in test.lv.tail().splitlines():
                    print("# libvirtd: " + line)
        sys.stdout.flush()
    if test is not None and test.lv.proc:
        try:
            if test.lv.proc.poll() is None:
                test.lv.virsh("destroy", test.name, check=False)
                test.lv.virsh("undefine", test.name, check=False)
                test.lv.stop()
        except Exception:  # pylint: disable=broad-except
            test.lv.proc.kill()
            test.lv.proc.wait()
        test.lv.leftovers()
    if args.tmp:
        shutil.rmtree(args.tmp)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
