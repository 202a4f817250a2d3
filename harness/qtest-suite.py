#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# QEMU's own meson test suites, run the way `meson test` runs them, one
# program per call, so that check.sh counts every TAP line.  Everything
# comes from meson's introspection data in the build directory
# (meson-info/intro-tests.json, intro-targets.json): the test list, each
# program's command line, environment, working directory and timeout.
#
#   qtest-suite.py targets OBJ SUITE    ninja targets the suite needs
#   qtest-suite.py list OBJ SUITE       its tests, short names, meson order
#   qtest-suite.py run OBJ SUITE NAME [ARG...]
#                                       run one of them, TAP on stdout;
#                                       extra ARGs go after meson's own
"""Run the tests of one of QEMU's meson suites as meson does."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

# QEMU's meson.build: add_test_setup('quick', ..., is_default: true,
# env: ['RUST_BACKTRACE=1']); make check runs the default setup with
# --timeout-multiplier $(TIMEOUT_MULTIPLIER), 1 unless set.
SETUP_ENV = {"RUST_BACKTRACE": "1"}


def ssdt_firmware_bytes(table):
    """Offsets of the SSDT that the firmware fills in: the dword after
    AML Name MEMA (NameOp, "MEMA", DWordPrefix), the NVDIMM DSM buffer
    that the firmware allocates."""
    at = table.rfind(b"MEMA\x0c")
    return set(range(at + 5, at + 9)) if at >= 0 else set()


def hest_firmware_bytes(table):
    """Offsets of the HEST that the firmware fills in: the addresses of
    every GHESv2 error source's Error Status Address and Read Ack
    Register (Generic Address Structures pointing into
    etc/hardware_errors, which the firmware allocates; ACPI 6.5,
    18.3.2.8)."""
    found = set()
    count = int.from_bytes(table[36:40], "little")
    off = 40
    for _ in range(count):
        kind = int.from_bytes(table[off:off + 2], "little")
        if kind != 10:      # only GHESv2 has a known length here
            return set()
        found |= set(range(off + 24, off + 32))     # error status address
        found |= set(range(off + 68, off + 76))     # read ack register
        off += 92
    return found


# Tables with addresses that the firmware fills in through the table
# loader: they depend on where the firmware allocates its blobs
FIRMWARE_BYTES = {"SSDT": ssdt_firmware_bytes, "HEST": hest_firmware_bytes}


def check_firmware_pointer(test, env, cwd, path, timeout):
    """Run bios-tables-test's PATH alone.  Where the firmware fills in
    addresses in a table (FIRMWARE_BYTES), every table must equal
    upstream's expected one but for those addresses and the table's
    checksum.  Returns (ok, what was found)."""
    tmp = tempfile.mkdtemp(prefix="qtest-fw-")
    try:
        proc = subprocess.Popen(test["cmd"] + ["-p", path], cwd=cwd,
                                env=dict(env, TMPDIR=tmp),
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            out = proc.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            return False, "timed out after %g s" % timeout
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        out = out.decode(errors="replace")
        if re.search(r"^ok \d+ %s$" % re.escape(path), out, re.M):
            return True, "passed as is"  # run() counts it as passed
        if "assertion failed: (all_tables_match)" not in out:
            lines = [ln for ln in out.splitlines() if ln.strip()]
            return False, "failed: %s" % (lines[-1] if lines else "no output")
        found = []
        for sig, actual, expected in re.findall(
                r"Warning! (\w{4}) binary file mismatch\. "
                r"Actual \[aml:(\S+)\], Expected \[aml:(\S+)\]", out):
            with open(actual, "rb") as f:
                a = f.read()
            with open(os.path.join(cwd, expected), "rb") as f:
                e = f.read()
            where = FIRMWARE_BYTES.get(sig, lambda t: set())
            fields = where(e)
            if not fields or len(a) != len(e) or where(a) != fields:
                return False, "%s differs from %s" % (sig, expected)
            skip = fields | {9}     # and the checksum byte
            off = [i for i in range(len(a)) if a[i] != e[i] and i not in skip]
            if off:
                return False, "%s differs from %s at offset %d" % (
                    sig, expected, off[0])
            found.append("%s: %d firmware-filled address bytes differ" % (
                expected, sum(a[i] != e[i] for i in fields)))
        if not found:
            return False, "tables differ, none reported"
        return True, ("checked: every other byte of every table equals "
                      "upstream's (%s)" % "; ".join(found))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Test cases that cannot pass on this base, whatever QEMU does: skipped
# with glib's -s, and their TAP line says why; a checker, when given,
# runs the case alone first and turns the skip into a failure if it
# finds more than the known difference.  A key ending in "*" covers
# every test path that starts with it (from the program's -l listing).
FIRMWARE_REASON = (
    "firmware-specific: upstream's expected tables hold addresses that "
    "QEMU's own edk2 build (stripped from the +ds source) fills in through "
    "the table loader (the GHES error blocks in the HEST, the NVDIMM DSM "
    "buffer MEMA in SSDT.memhp); Debian's AAVMF places them elsewhere")
SKIPS = {
    ("qtest-aarch64", "bios-tables-test"): {
        "/aarch64/acpi/virt*": (FIRMWARE_REASON, check_firmware_pointer),
    },
}


def list_paths(test, env, cwd):
    """The test paths of a GTest program, from its -l listing."""
    out = subprocess.run(test["cmd"] + ["-l"], cwd=cwd, env=env,
                         stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=60).stdout
    return [ln for ln in out.splitlines() if ln.startswith("/")]


def load(obj, what):
    with open(os.path.join(obj, "meson-info", "intro-%s.json" % what)) as f:
        return json.load(f)


def suite_tests(obj, suite):
    """The tests of SUITE in the order meson starts them."""
    name = "qemu:" + suite
    tests = [t for t in load(obj, "tests") if name in t["suite"]]
    # meson test starts the highest priority first, stable otherwise
    return sorted(tests, key=lambda t: -t["priority"])


def short(test, suite):
    prefix = suite + "/"
    n = test["name"]
    return n[len(prefix):] if n.startswith(prefix) else n


def targets(obj, suite):
    by_id = {t["id"]: t for t in load(obj, "targets")}
    out = []
    for test in suite_tests(obj, suite):
        files = [test["cmd"][0]]
        for dep in test["depends"]:
            if dep in by_id:
                files += by_id[dep]["filename"]
        for f in files:
            rel = os.path.relpath(f, obj)
            if not rel.startswith("..") and rel not in out:
                out.append(rel)
    return out


def copy_output(pipe, skips):
    """Copy the test's output; SKIPS maps a skipped case to its TAP line."""
    for raw in iter(pipe.readline, b""):
        line = raw.decode(errors="replace")
        m = re.match(r"ok (\d+) (\S+) # SKIP by request \(-s option\)$",
                     line.rstrip("\n"))
        if m and m.group(2) in skips:
            line = skips[m.group(2)] % int(m.group(1)) + "\n"
        sys.stdout.write(line)
        sys.stdout.flush()


def run(obj, suite, name, extra):
    tests = [t for t in suite_tests(obj, suite) if short(t, suite) == name]
    if len(tests) != 1:
        print("Bail out! no test %s in suite %s" % (name, suite))
        return 1
    test = tests[0]
    # as mtest.py builds it: the caller's environment, the setup's, the
    # test's own; MALLOC_PERTURB_ random unless given; sanitizer defaults
    env = dict(os.environ)
    env.update(SETUP_ENV)
    env.update(test["env"])
    env.setdefault("MALLOC_PERTURB_", str(random.randint(1, 255)))
    env.setdefault("ASAN_OPTIONS",
                   "halt_on_error=1:abort_on_error=1:print_summary=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:abort_on_error=1:"
                   "print_summary=1:print_stacktrace=1")
    env.setdefault("MSAN_OPTIONS",
                   "halt_on_error=1:abort_on_error=1:print_summary=1:"
                   "print_stacktrace=1")
    env["MESON_TEST_ITERATION"] = "1"
    mult = float(os.environ.get("TIMEOUT_MULTIPLIER", "1"))
    timeout = test["timeout"] * mult if test["timeout"] else None
    cwd = test["workdir"] or obj
    skips = {}
    cases = []
    for key, how in SKIPS.get((suite, name), {}).items():
        if key.endswith("*"):
            cases += [(p, how) for p in list_paths(test, env, cwd)
                      if p.startswith(key[:-1])]
        else:
            cases.append((key, how))
    for path, (reason, checker) in cases:
        extra = extra + ["-s", path]
        ok, found = checker(test, env, cwd, path, timeout) if checker \
            else (True, "")
        found = found.replace("%", "%%")
        if ok and found == "passed as is":
            # it ran alone, as upstream's test, and passed: a pass
            skips[path] = "ok %%d %s" % path
        elif ok:
            skips[path] = "ok %%d %s # SKIP %s%s" % (
                path, reason, "; " + found if found else "")
        else:
            skips[path] = "not ok %%d %s - %s; %s" % (path, reason, found)
    print("# %s: %s (cwd %s, timeout %s s)" %
          (test["name"], " ".join(test["cmd"] + extra), cwd,
           "none" if timeout is None else "%g" % timeout), flush=True)
    proc = subprocess.Popen(test["cmd"] + extra, cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    copier = threading.Thread(target=copy_output,
                              args=(proc.stdout, skips), daemon=True)
    copier.start()
    timed_out = False
    try:
        status = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # as meson does: SIGTERM to the process group, then SIGKILL
        timed_out = True
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        status = 124
    # whatever the test left running in its group (QEMU children)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    copier.join(timeout=10)
    if timed_out:
        print("Bail out! %s timed out after %g s" % (test["name"], timeout),
              flush=True)
    return status


def main(argv):
    if len(argv) < 4 or argv[1] not in ("targets", "list", "run"):
        sys.stderr.write("usage: qtest-suite.py targets|list OBJ SUITE\n"
                         "       qtest-suite.py run OBJ SUITE NAME [ARG...]\n")
        return 2
    cmd, obj, suite = argv[1], os.path.realpath(argv[2]), argv[3]
    if cmd == "run":
        return run(obj, suite, argv[4], argv[5:])
    names = (targets(obj, suite) if cmd == "targets" else
             [short(t, suite) for t in suite_tests(obj, suite)])
    if not names:
        sys.stderr.write("qtest-suite.py: suite %s has no tests\n" % suite)
        return 1
    print("\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
