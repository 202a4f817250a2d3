#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Build the libFuzzer targets of tests/fuzz/ in a sanitizer build dir.

Each target is compiled with the command meson gave a file of the same
component (hw/core/memmap.c's unit test for memmap-fuzz, the planner's
report.c for the planner targets: QEMU's include paths and definitions,
glib, -fsanitize=address,undefined,fuzzer-no-link), and linked
with the link command of the program that component builds, its main
replaced by the target and -fsanitize=fuzzer added.  So the code under
test is the object file QEMU's build compiled, not a copy.

Usage: build-fuzzers.py REPO_DIR SAN_BUILD_DIR
Leaves SAN_BUILD_DIR/fuzz/<target>.
"""

import json
import os
import shlex
import subprocess
import sys

# target: (sources under tests/fuzz, the file whose compile flags it
# takes, the program whose link it takes, that program's own object)
TARGETS = {
    'memmap-fuzz': (['memmap-fuzz.c'], 'tests/unit/test-memmap.c',
                    'tests/unit/test-memmap',
                    'tests/unit/test-memmap.p/test-memmap.c.o'),
    'plan-json-fuzz': (['plan-json-fuzz.c', 'plan-fuzz.c'],
                       'contrib/memmap-plan/report.c',
                       'contrib/memmap-plan/memmap-plan',
                       'contrib/memmap-plan/memmap-plan.p/main.c.o'),
    'plan-sysfs-fuzz': (['plan-sysfs-fuzz.c', 'plan-fuzz.c'],
                        'contrib/memmap-plan/report.c',
                        'contrib/memmap-plan/memmap-plan',
                        'contrib/memmap-plan/memmap-plan.p/main.c.o'),
}


def compile_command(db, src_suffix):
    for entry in db:
        if entry['file'].endswith(src_suffix):
            return entry['directory'], shlex.split(entry['command'])
    sys.exit('build-fuzzers: no compile command for ' + src_suffix)


def link_command(san, program):
    out = subprocess.run(['ninja', '-C', san, '-t', 'commands', program],
                         check=True, capture_output=True, text=True).stdout
    # the last command builds the program
    line = out.strip().splitlines()[-1]
    return shlex.split(line)


def strip_output_args(cmd):
    """Drop -o X, -c X, -MD, -MQ X, -MF X and the source."""
    out, skip = [], False
    for i, a in enumerate(cmd):
        if skip:
            skip = False
            continue
        if a in ('-o', '-c', '-MQ', '-MF'):
            skip = True
            continue
        if a == '-MD':
            continue
        out.append(a)
    return out


def needs_build(out, inputs):
    if not os.path.exists(out):
        return True
    t = os.path.getmtime(out)
    return any(os.path.getmtime(i) > t for i in inputs)


def main():
    repo, san = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    fuzzdir = os.path.join(repo, 'tests', 'fuzz')
    outdir = os.path.join(san, 'fuzz')
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(san, 'compile_commands.json')) as f:
        db = json.load(f)

    for name, (sources, flags_of, program, main_obj) in TARGETS.items():
        cdir, ccmd = compile_command(db, flags_of)
        base = strip_output_args(ccmd)
        # the compiler, then its flags; our headers next to the sources
        # and the planner's header beside report.c
        base = base[:-1] if base[-1].endswith('.c') else base
        base += ['-I', fuzzdir,
                 '-I', os.path.join(san, '..', 'qemu', 'contrib',
                                    'memmap-plan')]
        objs = []
        for s in sources:
            src = os.path.join(fuzzdir, s)
            obj = os.path.join(outdir, name + '.' + s + '.o')
            hdrs = [os.path.join(fuzzdir, h)
                    for h in os.listdir(fuzzdir) if h.endswith('.h')]
            if needs_build(obj, [src] + hdrs):
                cmd = base + ['-o', obj, '-c', src]
                subprocess.run(cmd, cwd=cdir, check=True)
            objs.append(obj)

        lcmd = link_command(san, program)
        exe = os.path.join(outdir, name)
        link = []
        skip = False
        for a in lcmd:
            if skip:
                skip = False
                continue
            if a == '-o':
                skip = True
                continue
            if a == main_obj:
                link += objs
                continue
            link.append(a)
        link += ['-o', exe, '-fsanitize=fuzzer']
        inputs = objs + [os.path.join(san, a) for a in lcmd
                         if a.endswith(('.o', '.a'))
                         and os.path.exists(os.path.join(san, a))]
        if needs_build(exe, inputs):
            subprocess.run(link, cwd=san, check=True)
        print('build-fuzzers: ' + os.path.relpath(exe, repo
                                                  if exe.startswith(repo)
                                                  else san))


if __name__ == '__main__':
    main()
