#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Benchmark of memmap-plan plan (not a test: it prints what it measures).
# Generates 10,000 host reports with 1,000,000 reserved regions in all,
# and 1,000 reports with 100,000; times plan on both and wc -l on the
# large set, each the best of 5 runs with a warm page cache, and prints
#   plan / jq -c . on the same input (goal: at most 0.5; jq reads and
#                                     prints every report, a yardstick
#                                     for reading JSON: plan reads them
#                                     with QEMU's JSON parser)
#   plan on 10x the input / plan     (goal: at most 11)
#   plan / wc -l on the same input   (no goal: what reading costs)
# plan reads the reports in one thread per CPU (at most 8), as users run
# it; plan --jobs 1 is printed beside it, and plan / wc -l of the large
# set concatenated into one file, which leaves out the cost of opening
# the files.
# Usage: bench-planner.sh REPO_DIR BUILD_DIR
set -euo pipefail

build=$(realpath "$2")
planner=$build/memmap-plan
[ -x "$planner" ] || { echo "bench-planner.sh: no $planner" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-planner.XXXXXX")
trap 'rm -rf "$work"' EXIT

# gen DIR HOSTS: HOSTS reports of 25 devices with 4 regions each: the
# x86 MSI window, and 3 random windows of 4 KiB to 1 MiB between 4 GiB and
# 772 GiB, each in its own 256 GiB slot so that none overlap in a device
gen() {
    python3 - "$1" "$2" <<'EOF'
import json, os, random, sys
out, hosts = sys.argv[1], int(sys.argv[2])
rng = random.Random(hosts)
types = ["direct", "direct-relaxable", "reserved", "msi", "sw-msi"]
os.makedirs(out)
for h in range(hosts):
    devices = []
    for d in range(25):
        regions = [{"start": 0xfee00000, "end": 0xfeefffff, "type": "msi"}]
        for i in range(3):
            start = ((4 + 256 * i) << 30) + (rng.randrange(255 << 30) & ~0xfff)
            regions.append({"start": start,
                            "end": start + (rng.randrange(1, 257) << 12) - 1,
                            "type": rng.choice(types)})
        devices.append({"bdf": "0000:%02x:00.0" % d, "group": d,
                        "reserved-regions": regions})
    with open(os.path.join(out, "host%05d.json" % h), "w") as f:
        json.dump({"host": "host%05d" % h, "devices": devices}, f, indent=4)
EOF
}

# best_us COMMAND...: the best wall-clock time of 5 runs, in microseconds
best_us() {
    local best=0 t0 t1
    "$@" > /dev/null 2>&1
    for _ in 1 2 3 4 5; do
        t0=$(date +%s%N)
        "$@" > /dev/null 2>&1
        t1=$(date +%s%N)
        if [ "$best" = 0 ] || [ $(((t1 - t0) / 1000)) -lt "$best" ]; then
            best=$(((t1 - t0) / 1000))
        fi
    done
    echo "$best"
}

echo "generating reports in $work"
gen "$work/large" 10000
gen "$work/small" 1000
for set in small large; do
    n=$(find "$work/$set" -name '*.json' | wc -l)
    regions=$(cat "$work/$set"/*.json | grep -c '"start"')
    echo "$set: $n host reports, $regions regions," \
         "$(du -sh "$work/$set" | cut -f1)"
done
if ! err=$("$planner" plan --ram 4G "$work"/large/*.json 2>&1 >/dev/null)
then
    echo "bench-planner.sh: plan failed: $err" >&2
    exit 1
fi

wc_large=$(best_us wc -l "$work"/large/*.json)
cat "$work"/large/*.json > "$work/large.cat"
wc_cat=$(best_us wc -l "$work/large.cat")
plan_large=$(best_us "$planner" plan --ram 4G "$work"/large/*.json)
plan_small=$(best_us "$planner" plan --ram 4G "$work"/small/*.json)
plan_one=$(best_us "$planner" plan --jobs 1 --ram 4G "$work"/large/*.json)
jobs=$(nproc)
# a yardstick for the JSON reading: jq parsing and printing every report
jq_large=$(best_us jq -c . "$work"/large/*.json)

awk -v wc="$wc_large" -v wcc="$wc_cat" -v pl="$plan_large" \
    -v ps="$plan_small" -v jq="$jq_large" -v p1="$plan_one" \
    -v jobs="$(( jobs > 8 ? 8 : jobs ))" 'BEGIN {
    printf "wc -l, 10,000 reports:        %8.1f ms\n", wc / 1000
    printf "wc -l, the same in one file:  %8.1f ms\n", wcc / 1000
    printf "jq -c ., 10,000 reports:      %8.1f ms\n", jq / 1000
    printf "plan, 10,000 reports:         %8.1f ms (%d threads, " \
           "the default here)\n", pl / 1000, jobs
    printf "plan --jobs 1, 10,000 reports:%8.1f ms\n", p1 / 1000
    printf "plan, 1,000 reports:          %8.1f ms\n", ps / 1000
    printf "plan / jq -c .:               %8.2f (goal: at most 0.5) %s\n",
           pl / jq, pl / jq <= 0.5 ? "met" : "MISSED"
    printf "plan --jobs 1 / jq -c .:      %8.2f (for reference: one " \
           "thread, as jq)\n", p1 / jq
    printf "plan / wc -l:                 %8.2f\n", pl / wc
    printf "plan --jobs 1 / wc -l:        %8.2f\n", p1 / wc
    printf "plan 10x input / plan:        %8.2f (goal: at most 11) %s\n",
           pl / ps, pl / ps <= 11 ? "met" : "MISSED"
    printf "plan / wc -l of one file:     %8.2f (for reference: without " \
           "the cost of opening 10,000 files)\n", pl / wcc
}'
