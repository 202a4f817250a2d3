#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Run the worked examples of our reStructuredText docs against the
built QEMU and check that it prints what the docs show.

An example is a ``console`` code block whose first line starts with
``$ qemu-system-aarch64``; lines ending in a backslash continue it.  Then
``(qemu) CMD`` lines are monitor commands, ``qemu-system-aarch64: ...``
lines are an expected start-up error (exit status 1, and exactly those
lines on stderr), and other lines are the expected output, where
``...`` stands for any number of lines.  The whole output must match,
from its first line to its last (the monitor's banner and the closing
"quit" aside), unless the example starts or ends with ``...``.  Prints
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
        lines = [l[2:].rstrip() for l in m.group(1).rstrip("\n").split("\n")]
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
        lineno = text.count("\n", 0, m.start()) + 1
        yield lineno, shlex.split(cmd[2:]), commands, lines


def matches(output, expected):
    """Whether output is expected, where a '...' line stands for any
    number of lines: anchored at both ends unless expected starts or
    ends with '...'.  Returns (True, None) or (False, the first expected
    segment that does not match where it must)."""
    segments, seg = [], []
    for line in expected:
        if line == "...":
            segments.append(seg)
            seg = []
        else:
            seg.append(line)
    segments.append(seg)
    pos = 0
    for i, seg in enumerate(segments):
        first, last = i == 0, i == len(segments) - 1
        if first and last:
            return (output == seg, None if output == seg else seg)
        if first:
            if output[:len(seg)] != seg:
                return False, seg
            pos = len(seg)
            continue
        if last:
            tail = output[len(output) - len(seg):] if seg else []
            if len(output) - len(seg) < pos or tail != seg:
                return False, seg
            return True, None
        while pos + len(seg) <= len(output):
            if output[pos:pos + len(seg)] == seg:
                break
            pos += 1
        else:
            return False, seg
        pos += len(seg)
    return True, None


def transcript(stdout, commands):
    """The monitor session as the docs write it: the banner left out,
    each prompt line shown as "(qemu) COMMAND" (the terminal echo of the
    command is noise), the closing "quit" included."""
    out, k = [], 0
    for line in stdout.replace("\r", "").split("\n"):
        if line.startswith("QEMU ") and "monitor - type 'help'" in line:
            continue
        if line.startswith("(qemu) "):
            out.append("(qemu) " + (commands[k] if k < len(commands)
                                    else "?"))
            k += 1
            continue
        out.append(line.rstrip())
    while out and out[-1] == "":
        out.pop()
    return out


def run(qemu, argv, commands, expected):
    """Run one example; return a list of problems."""
    argv = [qemu] + argv[1:]
    commands = commands + ["quit"]
    stdin = "".join(c + "\n" for c in commands)
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                          timeout=60)
    errors = [l for l in expected if l.startswith("qemu-system-aarch64: ")]
    shown = [l for l in expected if not l.startswith("qemu-system-aarch64: ")]
    problems = []
    if errors:
        if proc.returncode != 1:
            problems.append(f"exit status {proc.returncode}, expected 1")
        stderr = [l.replace(qemu, "qemu-system-aarch64", 1)
                  for l in proc.stderr.splitlines()]
        if stderr != errors:
            problems.append("stderr is not, exactly:\n" + "\n".join(errors))
            problems.append("stderr was:\n" + proc.stderr.strip())
        out = transcript(proc.stdout, commands)
        if out != shown:
            problems.append("stdout was:\n" + "\n".join(out))
        return problems
    if proc.returncode != 0:
        return [f"exit status {proc.returncode}: {proc.stderr.strip()}"]
    output = transcript(proc.stdout, commands)
    ok, seg = matches(output, shown + ["(qemu) quit"])
    if not ok:
        problems.append("output does not match, at:\n" + "\n".join(seg))
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
