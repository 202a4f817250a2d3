#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Write the seed corpora of tests/fuzz/corpus/ from the existing tests.

memmap-fuzz: every memmap option string of tests/unit/test-memmap.c and
tests/qtest/memmap-test.c (adjacent C string literals joined), each
behind a few machine headers (see memmap-fuzz.c: fuzz_config()).
plan-json-fuzz, plan-sysfs-fuzz: the hosts of tests/planner/
test-planner.py as JSON reports and as reserved_regions files, and that
test's bad reserved_regions lines.

Seeds are named seed-<sha1 prefix>; findings that make fuzz copies in
are named crash-*, leak-*, timeout-*, oom-* as libFuzzer names them; the
files named by a bare sha1 are inputs of a long make fuzz run that added
coverage, kept by libFuzzer's -merge=1 for make check to replay.
Usage: make-seeds.py REPO_DIR
"""

import ast
import hashlib
import json
import os
import re
import struct
import sys

LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def c_strings(path):
    """The file's string literals, adjacent ones joined."""
    text = open(path).read()
    out, cur, end = [], None, -1
    for m in LITERAL.finditer(text):
        s = m.group(1).encode().decode('unicode_escape')
        if cur is not None and text[end:m.start()].strip() == '':
            cur += s
        else:
            if cur is not None:
                out.append(cur)
            cur = s
        end = m.end()
    if cur is not None:
        out.append(cur)
    return out


def maps(repo):
    found = []
    for f in ('tests/unit/test-memmap.c', 'tests/qtest/memmap-test.c'):
        for s in c_strings(os.path.join(repo, f)):
            i = s.find('memmap.')
            if i < 0:
                continue
            m = s[i:].split(' ')[0].split("'")[0]
            if m not in found:
                found.append(m)
    return found


def header(ram_units, shift=0, bits=40, align_n=0, page_n=0, boot_n=0,
           nodes=0, base=0, fixed=0x3f, cut=(0x44, 0x44)):
    """The 12 header bytes of memmap-fuzz.c for these choices."""
    h = struct.pack('<H', ram_units - 1)
    h += bytes([shift, 0 if not bits else bits - 24,
                align_n | page_n << 3 | boot_n << 6, nodes])
    h += struct.pack('<HH', base, fixed) + bytes(cut)
    return h


HEADERS = [
    header(0x4000),                          # 1 GiB, virt-like, 40 bits
    header(0x4000, shift=2, nodes=2),        # 4 GiB on two nodes
    header(0x2000, bits=0, page_n=4, fixed=0x7ff, nodes=3,
           cut=(0x28, 0x10)),                # 512 MiB, 2 MiB pages
]


def write(dirname, data):
    if isinstance(data, str):
        data = data.encode()
    os.makedirs(dirname, exist_ok=True)
    name = 'seed-' + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(dirname, name), 'wb') as f:
        f.write(data)


def planner_hosts(repo):
    """HOSTS and the bad lines of tests/planner/test-planner.py."""
    src = open(os.path.join(repo, 'tests/planner/test-planner.py')).read()
    tree = ast.parse(src)
    hosts, bad = None, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and \
                getattr(node.targets[0], 'id', '') == 'HOSTS':
            hosts = ast.literal_eval(node.value)
        if isinstance(node, ast.FunctionDef) and \
                node.name == 'report_bad_sysfs_lines':
            for n in ast.walk(node):
                if isinstance(n, ast.Assign) and \
                        getattr(n.targets[0], 'id', '') == 'cases':
                    bad = [t for t, _ in ast.literal_eval(n.value)]
    return hosts, bad


def main():
    repo = sys.argv[1]
    corpus = os.path.join(repo, 'tests', 'fuzz', 'corpus')
    for m in maps(repo):
        for h in HEADERS:
            write(os.path.join(corpus, 'memmap-fuzz'), h + m.encode())

    hosts, bad = planner_hosts(repo)
    for host, groups in hosts.items():
        devices = []
        for group, (regions, bdfs) in sorted(groups.items()):
            rr = [{'start': s, 'end': e, 'type': t} for s, e, t in regions]
            for bdf in bdfs:
                devices.append({'bdf': bdf, 'group': group,
                                'reserved-regions': rr})
            text = ''.join('0x%016x 0x%016x %s\n' % r for r in regions)
            write(os.path.join(corpus, 'plan-sysfs-fuzz'), text)
        report = {'host': host, 'devices': devices}
        write(os.path.join(corpus, 'plan-json-fuzz'),
              json.dumps(report, indent=2) + '\n')
    for text in bad:
        write(os.path.join(corpus, 'plan-sysfs-fuzz'),
              '0x0000000008000000 0x00000000080fffff reserved\n' + text)


if __name__ == '__main__':
    main()
