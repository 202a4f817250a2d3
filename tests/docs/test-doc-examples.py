#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Run the worked examples of our reStructuredText docs against the
built QEMU and check that it prints what the docs show.

An example is a ``console`` code block whose first line starts with
``$ qemu-system-aarch64``; lines ending in a backslash continue it.  Then
``(qemu) CMD`` lines are monitor commands, ``qemu-system-aarch64: ...``
lines are an expected start-up error (exit status 1), and other lines are
expected output, where ``...`` stands for any number of lines.  Prints
TAP.
"""

import argparse
import pathlib
import re
import shlex
import subprocess
import sys

BLOCK = re.compile(r"^\.\. code-block:: console\n\n((?:  .*\n|\n)+)",
                   re.MULTILINE)


def examples(path):
    """Yield (line number, argv, monitor commands, expected lines)."""
    text = path.read_text()
    for m in BLOCK.finditer(text):
        lines = [l[2:] for l in m.group(1).rstrip("\n").split("\n")]
        if not lines[0].startswith("$ qemu-system-aarch64"):
            continue
        cmd = ""
        while True:
            line = lines.pop(0)
            cmd += line.rstrip("\\").strip() + " "
            if not line.endswith("\\"):
                break
        commands = [l[len("(qemu) "):] for l in lines
                    if l.startswith("(qemu) ")]
        expected = [l.rstrip() for l in lines if not l.startswith("(qemu) ")]
        lineno = text.count("\n", 0, m.start()) + 1
        yield lineno, shlex.split(cmd[2:]), commands, expected


def contains(output, expected):
    """Whether the segments of expected (split at '...') appear in order,
    each as consecutive lines of output."""
    segments, seg = [], []
    for line in expected:
        if line == "...":
            segments.append(seg)
            seg = []
        else:
            seg.append(line)
    segments.append(seg)
    pos = 0
    for seg in filter(None, segments):
        while pos + len(seg) <= len(output):
            if output[pos:pos + len(seg)] == seg:
                break
            pos += 1
        else:
            return False, seg
        pos += len(seg)
    return True, None


def run(qemu, argv, commands, expected):
    """Run one example; return a list of problems."""
    argv = [qemu] + argv[1:]
    stdin = "".join(c + "\n" for c in commands) + "quit\n"
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                          timeout=60)
    errors = [l for l in expected if l.startswith("qemu-system-aarch64: ")]
    problems = []
    if errors:
        if proc.returncode != 1:
            problems.append(f"exit status {proc.returncode}, expected 1")
        stderr = [l.replace(qemu, "qemu-system-aarch64", 1)
                  for l in proc.stderr.splitlines()]
        for e in errors:
            if e not in stderr:
                problems.append(f"stderr lacks: {e}")
        if problems:
            problems.append("stderr was: " + proc.stderr.strip())
        return problems
    if proc.returncode != 0:
        return [f"exit status {proc.returncode}: {proc.stderr.strip()}"]
    output = [re.sub(r"^(\(qemu\) )+", "", l).rstrip()
              for l in proc.stdout.splitlines()]
    ok, seg = contains(output, expected)
    if not ok:
        problems.append("output lacks, in order:\n" + "\n".join(seg))
        problems.append("output was:\n" + "\n".join(output))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("docs", nargs="+", type=pathlib.Path)
    args = ap.parse_args()

    tests = [(doc, *ex) for doc in args.docs for ex in examples(doc)]
    print(f"1..{len(tests)}")
    failed = 0
    for n, (doc, lineno, argv, commands, expected) in enumerate(tests, 1):
        problems = run(args.qemu, argv, commands, expected)
        status = "not ok" if problems else "ok"
        print(f"{status} {n} - {doc}:{lineno}")
        for p in problems:
            print("\n".join("# " + l for l in p.splitlines()))
        failed += bool(problems)
    return 1 if failed or not tests else 0


if __name__ == "__main__":
    sys.exit(main())
