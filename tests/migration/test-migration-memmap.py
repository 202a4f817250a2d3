#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Live migration of a running arm64 Linux guest between two QEMUs on
this machine (unix socket, destination started with -incoming defer),
with and without a memmap.  The guest (harness/guest-assets.sh, pattern
mode) fills a tmpfs with a known pattern and checks it in a loop, one
console line per pass.  Same map on both sides: the guest goes on on the
destination and its checks still pass.  Different maps (map -> none,
map A -> map B, same -m): the destination refuses, before any RAM, with
a message naming both maps, and the source VM resumes (a map on the
destination only is what QEMU cannot see: docs/system/memmap.rst).
Without a map the stream starts as that of the same QEMU built without
our change (the pristine base), and a guest migrates between that QEMU
and ours both ways.  A stream whose map declares more RAM pieces than a map can have,
or an empty piece, is refused before anything is allocated for it.  TAP
output."""

import argparse
import functools
import hashlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "harness"))
from guestlib import APPEND  # noqa: E402
from qmplib import QMP, QMPError  # noqa: E402

MIB = 1 << 20
MEM = "1G"
CPU = "max"                             # as in the other layers
MAP_A = ("memmap.0.type=hole,memmap.0.base=0x50000000,"
         "memmap.0.size=256M")          # RAM 1G-1.25G, 1.5G-2.25G
HOLE_A = 0x50000000
MAP_B = ("memmap.0.type=hole,memmap.0.base=0x70000000,"
         "memmap.0.size=128M")          # RAM 1G-1.75G, 1.875G-2.125G
HOLE_B = 0x70000000
# With MAP_A the RAM below the hole is 256 MiB: a bigger pattern must
# have pages above it.  Without a map the size does not matter.
PATTERN_MIB_MAP = 288
PATTERN_MIB_NOMAP = 48

LINE_RE = re.compile(r"MEMMAP-PATTERN (.*?) t=[0-9.]+\s*$")
CHECK_RE = re.compile(r"check (\d+) (ok|FAIL) digest=([0-9a-f]{32})")
READY_RE = re.compile(r"ready blocks=(\d+) digest=([0-9a-f]{32})$")

# Seconds.  A check pass reads the whole pattern; how long it takes under
# TCG depends on the machine's load, so the time to wait for checks is
# scaled by how long the source took to write and sum its pattern.
BOOT_TIMEOUT = 300
MIGRATE_TIMEOUT = 90
CHECK_TIMEOUT = 60


class Failure(Exception):
    """A test's assertion failed; the message says how."""


def expected_digest(blocks):
    """The digest the guest prints: md5 of "md5sum *" over the blocks,
    block N being the 32-byte line "memmap test pattern block NNNNN"
    repeated over 1 MiB (see harness/guest-assets.sh)."""
    listing = ""
    for i in range(blocks):
        line = f"memmap test pattern block {i:05d}\n".encode()
        assert len(line) == 32
        listing += f"{hashlib.md5(line * (MIB // 32)).hexdigest()}  {i:05d}\n"
    return hashlib.md5(listing.encode()).hexdigest()


def hole_re(addr):
    """A hex address as QEMU may print it: 0x50000000, 0x0000000050000000."""
    return re.compile(rf"0x0*{addr:x}\b", re.IGNORECASE)


class Vm:
    """One QEMU with its serial console in a file, stderr in a file and
    QMP on a unix socket."""

    def __init__(self, qemu, args, workdir, name, machine, pattern_mib,
                 incoming=False, qtest=False):
        self.name = name
        self.ours = qemu == args.qemu
        self.want = expected_digest(pattern_mib)
        self.pace = CHECK_TIMEOUT    # set by start_source
        self.dir = Path(workdir)
        self.serial = self.dir / f"{name}.serial"
        self.stderr = self.dir / f"{name}.stderr"
        self.qmp_path = self.dir / f"{name}.qmp"
        append = (f"{APPEND} memmap.test=pattern "
                  f"memmap.pattern_mib={pattern_mib}")
        self.cmd = [qemu, "-M", machine, "-m", MEM, "-cpu", CPU,
                    "-accel", "tcg", "-smp", "1", "-display", "none",
                    "-no-reboot", "-nic", "none", "-monitor", "none",
                    "-serial", f"file:{self.serial}",
                    "-chardev", f"socket,id=qmp,path={self.qmp_path},"
                    "server=on,wait=off",
                    "-mon", "chardev=qmp,mode=control",
                    "-kernel", args.kernel, "-initrd", args.initrd,
                    "-append", append]
        if incoming:
            self.cmd += ["-incoming", "defer"]
        # QEMU's qtest protocol beside TCG (as QEMU's own migration-test
        # runs it), for the host to write guest memory
        self.qtest_path = self.dir / f"{name}.qtest" if qtest else None
        if qtest:
            self.cmd += ["-qtest", f"unix:{self.qtest_path},server=on,"
                         "wait=off"]
        try:
            with open(self.stderr, "wb") as err:
                self.proc = subprocess.Popen(self.cmd,
                                             stdin=subprocess.DEVNULL,
                                             stdout=err, stderr=err)
        except OSError as e:
            raise Failure(f"cannot run {qemu}: {e}") from None
        try:
            self.qmp = QMP(str(self.qmp_path), timeout=30,
                           alive=lambda: self.proc.poll() is None)
        except QMPError as e:
            self.kill()
            raise Failure(f"{name}: {e}\n{self.describe()}") from None

    def lines(self):
        """The guest's MEMMAP-PATTERN lines so far (complete lines only)."""
        try:
            text = self.serial.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return []
        text = text[:text.rfind("\n") + 1]
        return [m[1] for l in text.splitlines() if (m := LINE_RE.search(l))]

    def checks(self, start=0):
        """(number, ok, digest) of the check lines from index start on."""
        out = []
        for l in self.lines()[start:]:
            if (m := CHECK_RE.fullmatch(l)):
                out.append((int(m[1]), m[2] == "ok", m[3]))
            elif l.startswith("FAIL") or "FAIL" in l.split():
                out.append((None, False, l))
        return out

    def wait_checks(self, start, count):
        """Wait for count check lines after line index start; fail on a
        FAIL line, a digest other than the one computed here, a QEMU that
        died or a timeout (count passes as long as the writing and the
        first sum of the pattern took, at least CHECK_TIMEOUT)."""
        timeout = max(CHECK_TIMEOUT, count * self.pace)
        deadline = time.monotonic() + timeout
        while True:
            got = self.checks(start)
            bad = [c for c in got if not c[1] or c[2] != self.want]
            if bad:
                raise Failure(f"{self.name}: guest check {bad[0]}, expected "
                              f"ok with digest {self.want}")
            if len(got) >= count:
                return got
            if self.proc.poll() is not None:
                raise Failure(f"{self.name}: QEMU exited with status "
                              f"{self.proc.returncode} while waiting for "
                              f"guest checks\n{self.describe()}")
            if time.monotonic() >= deadline:
                raise Failure(f"{self.name}: {len(got)} of {count} new "
                              f"guest checks after {timeout:.0f} s\n"
                              f"{self.describe()}")
            time.sleep(0.5)

    def status(self):
        return self.qmp.cmd("query-status")["status"]

    def wait_status(self, want, timeout=10):
        """Wait until the run state is want (the migration status of the
        source changes a moment before its run state); return the last
        state seen."""
        deadline = time.monotonic() + timeout
        while (st := self.status()) != want and time.monotonic() < deadline:
            time.sleep(0.2)
        return st

    def describe(self):
        """The command line and the tails of stderr and the console."""
        def tail(path, n):
            try:
                text = path.read_bytes().decode(errors="replace")
            except FileNotFoundError:
                return ["(none)"]
            return text.splitlines()[-n:] or ["(empty)"]
        return "\n".join([f"command: {shlex.join(self.cmd)}",
                          f"{self.name} stderr:", *tail(self.stderr, 15),
                          f"{self.name} console:", *tail(self.serial, 10)])

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            try:
                self.qmp.cmd("quit")
            except (QMPError, AttributeError):
                pass
            if self.wait_exit(10) is None:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
        if hasattr(self, "qmp"):
            self.qmp.close()


def start_source(args, workdir, name, qemu, machine, pattern_mib):
    """Boot a source guest and wait until its pattern is written and
    summed (the "ready" line), with the digest computed here."""
    started = time.monotonic()
    src = Vm(qemu, args, workdir, name, machine, pattern_mib)
    want = src.want
    deadline = time.monotonic() + BOOT_TIMEOUT
    while not any(READY_RE.match(l) for l in src.lines()):
        if src.proc.poll() is not None or time.monotonic() >= deadline:
            src.kill()
            raise Failure(f"{name}: the guest did not write its pattern "
                          f"within {BOOT_TIMEOUT} s\n{src.describe()}")
        time.sleep(0.5)
    src.pace = time.monotonic() - started
    ready = next(READY_RE.match(l) for l in src.lines() if READY_RE.match(l))
    if int(ready[1]) != pattern_mib or ready[2] != want:
        src.kill()
        raise Failure(f"{name}: guest pattern {ready[0]!r}, expected "
                      f"blocks={pattern_mib} digest={want}")
    return src


def migrate(src, dst, workdir):
    """Migrate src to dst (already listening) over a unix socket with
    the return path on, so that the source learns the destination's
    verdict before it counts the migration as done.  Returns the
    source's final query-migrate."""
    sock = Path(workdir) / f"{dst.name}.mig"
    for vm in (src, dst):
        vm.qmp.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "return-path", "state": True}])
    dst.qmp.cmd("migrate-incoming", uri=f"unix:{sock}")
    src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 4 << 30})
    src.qmp.cmd("migrate", uri=f"unix:{sock}")
    deadline = time.monotonic() + MIGRATE_TIMEOUT
    while True:
        info = src.qmp.cmd("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            return info
        if time.monotonic() >= deadline:
            src.qmp.cmd("migrate_cancel")
            raise Failure(f"migration {src.name} -> {dst.name} not "
                          f"finished after {MIGRATE_TIMEOUT} s: {info}\n"
                          f"{dst.describe()}")
        time.sleep(0.2)


def same_map(args, workdir, src, dst_name, qemu, machine, pattern_mib,
             qtest=False):
    """Migrate src to a destination with machine; it must complete, the
    guest must go on there (check numbers continue, digests right, no
    failure) and both QEMUs, when both are ours, must show the same
    memory map.  Returns notes and the destination, now running the
    guest."""
    dst = Vm(qemu, args, workdir, dst_name, machine, pattern_mib,
             incoming=True, qtest=qtest)
    dst.pace = src.pace
    try:
        info = migrate(src, dst, workdir)
        if info["status"] != "completed":
            raise Failure(f"migration {info['status']}: "
                          f"{info.get('error-desc', '')}\n{dst.describe()}")
        # The source's guest is stopped: its console file is complete,
        # but a line cut by the switch-over ends on the destination
        done = src.checks()
        last = done[-1][0] if done else 0
        if (st := src.wait_status("postmigrate")) != "postmigrate":
            raise Failure(f"source status {st!r} after the migration, "
                          "expected 'postmigrate'")
        if (st := dst.wait_status("running")) != "running":
            raise Failure(f"destination status {st!r}, expected 'running'")
        if src.ours and dst.ours and (a := src.qmp.cmd("query-memmap")) != \
                (b := dst.qmp.cmd("query-memmap")):
            raise Failure(f"query-memmap differs: source {a}, "
                          f"destination {b}")
        checks = dst.wait_checks(0, 2)
        numbers = [n for n, _, _ in checks]
        if numbers[0] != last + 1 and numbers[0] != last + 2:
            raise Failure(f"the destination's first check is number "
                          f"{numbers[0]}, the source's last {last}: not "
                          "the same guest going on")
        return [f"source's last check {last}, destination's checks "
                f"{numbers} ok"], dst
    except BaseException:
        dst.kill()
        raise


def mismatch(args, workdir, src, dst_name, qemu, machine, pattern_mib,
             holes):
    """Migrate src to a destination with a different machine memmap: the
    incoming migration must fail with a message that names memmap, the
    source's and the destination's map and every hole address of both,
    the source must report the migration failed and go on running, its
    guest still checking.
    Returns notes and None (the guest stays on the source)."""
    dst = Vm(qemu, args, workdir, dst_name, machine, pattern_mib,
             incoming=True)
    try:
        info = migrate(src, dst, workdir)
        errors = []
        if info["status"] != "failed":
            errors.append(f"source: migration {info['status']}, expected "
                          "failed")
        rc = dst.wait_exit(15 if info["status"] == "failed" else 1)
        if rc is None:
            try:
                dinfo = dst.qmp.cmd("query-migrate")
                if dinfo.get("status") != "failed":
                    errors.append(f"destination still running, incoming "
                                  f"migration {dinfo.get('status')}")
            except QMPError as e:
                errors.append(f"destination: {e}")
        elif rc == 0:
            errors.append("destination exited with status 0")
        text = dst.stderr.read_bytes().decode(errors="replace")
        for word in ("memmap", "source", "destination"):
            if not re.search(word, text, re.IGNORECASE):
                errors.append(f"destination error output does not say "
                              f"{word!r}")
        for addr in holes:
            if not hole_re(addr).search(text):
                errors.append(f"destination error output does not show "
                              f"the hole at {addr:#x}")
        mark = len(src.lines())
        st = src.wait_status("running")
        if st != "running":
            errors.append(f"source status {st!r} after the refused "
                          "migration, expected 'running'")
            if st == "postmigrate":
                src.qmp.cmd("cont")    # let the next cases go on
        if errors:
            errors.append("destination error output:")
            errors += text.splitlines()[-15:] or ["(empty)"]
            raise Failure("\n".join(errors))
        src.wait_checks(mark, 1)
        msg = [l for l in text.splitlines() if l.strip()]
        return ["destination said: " + (msg[0] if msg else "")], None
    finally:
        dst.kill()


def save_stream(qemu, workdir, name, machine):
    """The migration stream of a stopped QEMU (no guest, -S) with
    machine and -m MEM, saved to a file; returns the file's path."""
    path = Path(workdir) / f"{name}.stream"
    qmp_path = Path(workdir) / f"{name}.qmp"
    cmd = [qemu, "-M", machine, "-m", MEM, "-cpu", CPU, "-accel", "tcg",
           "-S", "-display", "none", "-nic", "none", "-monitor", "none",
           "-chardev", f"socket,id=qmp,path={qmp_path},server=on,wait=off",
           "-mon", "chardev=qmp,mode=control"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        qmp = QMP(str(qmp_path), timeout=30,
                  alive=lambda: proc.poll() is None)
        qmp.cmd("migrate", uri=f"file:{path}")
        deadline = time.monotonic() + MIGRATE_TIMEOUT
        while (st := qmp.cmd("query-migrate").get("status")) not in \
                ("completed", "failed", "cancelled"):
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        qmp.cmd("quit")
        qmp.close()
        proc.wait(10)
    except (QMPError, subprocess.TimeoutExpired) as e:
        proc.kill()
        raise Failure(f"{shlex.join(cmd)}: {e}: "
                      f"{proc.communicate()[1].decode(errors='replace')}")
    if st != "completed":
        raise Failure(f"{shlex.join(cmd)}: migration to a file {st}")
    return path


def header(qemu, workdir, name, machine):
    """The start of the migration stream of a stopped QEMU (no guest,
    -S) with machine and -m MEM: everything before the RAM section, i.e.
    the file header and the configuration section."""
    data = save_stream(qemu, workdir, name, machine).read_bytes()
    # QEMU_VM_SECTION_START, section id (4 bytes), idstr "ram" (length 3)
    ram = data.find(b"\x03ram")
    if ram < 5 or data[ram - 5] != 1:
        raise Failure(f"-M {machine}: no RAM section in the stream")
    return data[:ram - 5]


# The map's section: QEMU_VM_SECTION_FULL, its section id (4 bytes), the
# length of its name and its name, then its instance and version ids (4
# bytes each); then the number of RAM pieces (4 bytes, big endian)
MAP_SECTION = b"\x06memmap"
MAP_SECTION_IDS = 8


def map_section(data):
    """Where the name of the map's section is in a stream, or -1 when
    there is no such section (a full section's header: its type 5 bytes
    before the name)."""
    at = data.find(MAP_SECTION)
    return at if at >= 5 and data[at - 5] == 4 else -1

# Streams that declare more than a map can have, or a piece that is no
# range: (what, offset from the number of pieces, bytes written there,
# what the destination must say)
HOSTILE = [
    ("2^31 - 1 RAM pieces", 0, (0x7fffffff).to_bytes(4, "big"),
     "memmap pieces within the limit"),
    ("a RAM piece of size 0", 12, bytes(8),
     "the migration stream has a RAM piece of 0x0 bytes at 0x40000000, "
     "which is no range"),
]


def hostile_streams(ours, workdir, map_a):
    """The stream of a QEMU with map A, changed as HOSTILE says, loaded
    by a QEMU with map A (-incoming file:): it exits with status 1 and
    says what is wrong, before it allocates anything for the pieces (2^31
    pieces of 28 bytes would be 56 GiB: g_malloc() would abort)."""
    data = save_stream(ours, workdir, "hostile-src", map_a).read_bytes()
    at = map_section(data)
    if at < 0:
        raise Failure(f"no {MAP_SECTION!r} section in the stream of "
                      f"-M {map_a}")
    count = at + len(MAP_SECTION) + MAP_SECTION_IDS
    notes = []
    for what, offset, value, message in HOSTILE:
        path = Path(workdir) / "hostile.stream"
        where = count + offset
        path.write_bytes(data[:where] + value + data[where + len(value):])
        cmd = [ours, "-M", map_a, "-m", MEM, "-cpu", CPU, "-accel", "tcg",
               "-S", "-display", "none", "-nic", "none", "-monitor", "none",
               "-incoming", f"file:{path}"]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            raise Failure(f"{what}: the destination still runs after 60 s: "
                          f"{shlex.join(cmd)}")
        err = proc.stderr.decode(errors="replace")
        if proc.returncode != 1 or message not in err:
            raise Failure(f"{what}: exit status {proc.returncode} "
                          f"(expected 1), stderr {err!r}, expected "
                          f"{message!r}: {shlex.join(cmd)}")
        notes.append(f"{what}: {err.strip().splitlines()[0]}")
    return notes


def stream_header(ours, ref, workdir, map_a):
    """Without a map our stream starts exactly as the pristine base's
    (header, configuration section: the map adds nothing); with a map
    the stream has a "memmap" section in the setup phase, before the
    first page of RAM (the RAM section's first part)."""
    theirs = header(ref, workdir, "hdr-ref", "virt")
    plain = header(ours, workdir, "hdr-nomap", "virt")
    if plain != theirs:
        raise Failure(f"without a map, the stream starts {plain.hex()}, "
                      f"the pristine base's {theirs.hex()}")
    data = save_stream(ours, workdir, "hdr-map", map_a).read_bytes()
    ram = data.find(b"\x03ram")
    at = map_section(data)
    if ram < 5 or at < 0:
        raise Failure(f"-M {map_a}: no RAM section or no memmap section "
                      f"(RAM at {ram}, memmap at {at})")
    # QEMU_VM_SECTION_PART and the RAM section's id
    first_part = data.find(b"\x02" + data[ram - 4:ram], ram)
    if not ram < at < first_part:
        raise Failure(f"-M {map_a}: the memmap section at {at} is not "
                      f"between the RAM section's start ({ram}) and its "
                      f"first part ({first_part})")
    return [f"header and configuration section: {len(plain)} bytes "
            "without a map (as the pristine base's); with map A the "
            f"memmap section at byte {at}, after RAM's setup at {ram} and "
            f"before its first page at {first_part}"]


def qtest_writes(path, writes):
    """Write bytes into guest physical memory through the qtest protocol:
    writes is a list of (address, byte value)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        reader = sock.makefile("rb")
        for addr, val in writes:
            sock.sendall(f"writeb {addr:#x} {val:#x}\n".encode())
            reply = reader.readline().strip()
            if reply != b"OK":
                raise Failure(f"qtest writeb {addr:#x}: {reply!r}")


def corrupt(args, workdir, vm, dst_name, qemu, machine, pattern_mib, holes):
    """The control that the pattern checks can fail, and that the pattern
    lives above the hole: find the pages of one pattern block in guest
    RAM above HOLE_A (pmemsave), change a byte in each of them from the
    host (qtest), and the guest must report exactly that block changed.
    (Copies of a block in freed pages are changed too; they do not
    matter.)  Returns notes and None."""
    if vm.qtest_path is None:
        raise Failure("the guest runs in a QEMU without qtest (the "
                      "migration before failed)")
    lo, hi = HOLE_A + 0x10000000, 0x90000000     # RAM above MAP_A's hole
    dump = Path(workdir) / f"{vm.name}.ram"
    vm.qmp.cmd("pmemsave", val=lo, size=hi - lo, filename=str(dump))
    pages = {}
    with open(dump, "rb") as f:
        while (page := f.read(4096)):
            if page.startswith(b"memmap test pattern block ") and \
                    page == page[:32] * 128:
                pages.setdefault(page[26:31].decode(), []).append(
                    lo + f.tell() - 4096)
    dump.unlink()
    if not pages:
        raise Failure(f"no page of the pattern in guest RAM "
                      f"{lo:#x}-{hi - 1:#x}")
    block, addrs = max(pages.items(), key=lambda kv: len(kv[1]))
    mark = len(vm.lines())
    qtest_writes(vm.qtest_path, [(a + 7, ord("X")) for a in addrs])
    # The pass under way may have read those pages already: wait for two
    deadline = time.monotonic() + max(CHECK_TIMEOUT, 2 * vm.pace)
    while True:
        got = vm.checks(mark)
        if len(got) >= 2 or (got and not got[-1][1]):
            break
        if time.monotonic() >= deadline or vm.proc.poll() is not None:
            raise Failure(f"{vm.name}: {len(got)} guest checks after the "
                          f"corruption\n{vm.describe()}")
        time.sleep(0.5)
    fails = [l for l in vm.lines()[mark:] if " FAIL " in f" {l} "]
    if not fails or not fails[0].endswith(f" blocks={block}"):
        raise Failure(f"after changing block {block} in {len(addrs)} "
                      f"pages at {addrs[0]:#x}...: guest lines "
                      f"{vm.lines()[mark:]}")
    return [f"{sum(map(len, pages.values()))} pattern pages found in "
            f"{lo:#x}-{hi - 1:#x}; {len(addrs)} pages of block {block} "
            f"changed (first at {addrs[0]:#x}), the guest said: "
            f"{fails[0]}"], None


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for opt in ("--qemu", "--kernel", "--initrd"):
        parser.add_argument(opt, required=True)
    parser.add_argument("--reference", required=True,
                        help="the same QEMU built without our files and "
                        "patches (harness/ref-qemu.sh)")
    args = parser.parse_args()

    ours, ref = args.qemu, args.reference
    map_a = f"virt,{MAP_A}"
    map_b = f"virt,{MAP_B}"
    # Chains of migrations of one guest: (name, source QEMU binary and
    # machine, pattern size, steps).  A step migrates the guest from where it runs to a new
    # destination (title, kind, QEMU binary, machine, hole addresses the
    # refusal must show); after a successful one the guest goes on from
    # the destination.
    chains = [
        ("map A", ours, map_a, PATTERN_MIB_MAP, [
            ("map A -> no map: refused, source resumes", mismatch,
             ours, "virt", [HOLE_A]),
            ("map A -> map B: refused, source resumes", mismatch,
             ours, map_b, [HOLE_A, HOLE_B]),
            ("map A -> map A: migrated, guest pattern checks go on",
             functools.partial(same_map, qtest=True), ours, map_a, None),
            ("control: pattern pages above the hole changed by the host, "
             "the guest's check fails", corrupt, None, None, []),
        ]),
        ("no map", ours, "virt", PATTERN_MIB_NOMAP, [
            ("no map -> no map: migrated, guest pattern checks go on",
             same_map, ours, "virt", None),
        ]),
        # a VM without a map migrates to and from QEMU without memmap
        ("pristine base, no map", ref, "virt", PATTERN_MIB_NOMAP, [
            ("pristine base -> ours, no map: migrated, guest pattern "
             "checks go on", same_map, ours, "virt", None),
            ("ours -> pristine base, no map: migrated, guest pattern "
             "checks go on", same_map, ref, "virt", None),
        ]),
    ]
    total = sum(1 + len(steps) for _, _, _, _, steps in chains) + 2
    print(f"1..{total}", flush=True)
    workdir = tempfile.mkdtemp(prefix="memmap-mig-")
    n = 0
    failed = 0

    def report(name, errors, notes=()):
        nonlocal n, failed
        n += 1
        print(f"{'not ok' if errors else 'ok'} {n} - {name}")
        for line in [*notes, *errors]:
            print(f"# {line}")
        sys.stdout.flush()
        failed += bool(errors)

    title = ("stream header without a map is the pristine base's, with a "
             "map a memmap section comes before any RAM")
    try:
        report(title, [], stream_header(ours, ref, workdir, map_a))
    except (Failure, QMPError) as e:
        report(title, str(e).splitlines())

    title = ("hostile streams (2^31 - 1 RAM pieces, an empty piece) "
             "refused: exit status 1, the reason, no allocation")
    try:
        report(title, [], hostile_streams(ours, workdir, map_a))
    except (Failure, QMPError) as e:
        report(title, str(e).splitlines())

    for cname, sqemu, machine, mib, steps in chains:
        t0 = time.monotonic()
        title = f"source guest, {cname}: pattern written and summed"
        vm = None
        try:
            vm = start_source(args, workdir, f"src{n + 1}", sqemu, machine,
                              mib)
            notes = [f"-M {machine} -m {MEM}: {mib} MiB pattern written "
                     f"and summed in {time.monotonic() - t0:.0f} s"]
            if machine != "virt":
                lowest = min((r for r in vm.qmp.cmd("query-memmap")
                              if r["type"] == "ram"),
                             key=lambda r: r["base"])
                if mib * MIB <= lowest["size"]:
                    raise Failure(f"pattern of {mib} MiB fits in the lowest "
                                  f"RAM piece {lowest}: none of it need be "
                                  "above the hole")
            report(title, [], notes)
        except (Failure, QMPError) as e:
            report(title, str(e).splitlines())
        try:
            for title, func, qemu, dmachine, holes in steps:
                t1 = time.monotonic()
                dname = f"dst{n + 1}"
                try:
                    if vm is None or vm.proc.poll() is not None:
                        raise Failure("no running source guest")
                    extra = (holes,) if holes is not None else ()
                    notes, dst = func(args, workdir, vm, dname, qemu,
                                      dmachine, mib, *extra)
                    if dst is not None:
                        vm.kill()
                        vm = dst
                    report(title, [],
                           [*notes, f"{time.monotonic() - t1:.0f} s"])
                except (Failure, QMPError) as e:
                    report(title, str(e).splitlines())
        finally:
            if vm is not None:
                vm.kill()
    if not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"# files kept in {workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
