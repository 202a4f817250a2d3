#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make fuzz: build the libFuzzer targets (harness/san-build.sh) and run
# each for FUZZ_SECONDS seconds (default 60) or FUZZ_RUNS executions,
# with its dictionary (tests/fuzz/<target>.dict),
# the three at once, on the checked-in corpus (tests/fuzz/corpus/<target>)
# plus a working corpus under build/fuzz/.  Prints per target the
# executions, time, speed, coverage (libFuzzer's cov: edges, ft:
# features), corpus size and findings.  Every finding (crash, leak,
# timeout, out-of-memory input) is copied into tests/fuzz/corpus/<target>/,
# where make check replays it; exit status 1 when there was one.
# Usage: fuzz.sh REPO_DIR BUILD_DIR
set -euo pipefail

repo=$(realpath "$1")
build=$(realpath -m "$2")
san=$build/san
out=$build/fuzz
targets="memmap-fuzz plan-json-fuzz plan-sysfs-fuzz"

# FUZZ_BUILD=0: run the targets as built (while build/san is busy)
if [ "${FUZZ_BUILD:-1}" != 0 ]; then
    "$repo/harness/san-build.sh" "$repo" "$build" | tail -n 1
fi
. "$repo/tests/fuzz/sanitizer-env.sh" "$repo"

if [ -n "${FUZZ_RUNS:-}" ]; then
    limit=(-runs="$FUZZ_RUNS")
    echo "fuzz: $FUZZ_RUNS executions per target"
else
    limit=(-max_total_time="${FUZZ_SECONDS:-60}")
    echo "fuzz: ${FUZZ_SECONDS:-60} s per target"
fi
echo "fuzz: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs:" \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"

# the planner targets write their input to a file for each run: in
# memory, and removed even when a target dies on a finding
TMPDIR=$(mktemp -d /dev/shm/memmap-fuzz.XXXXXX)
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
for t in $targets; do
    rm -rf "$out/findings/$t"
    mkdir -p "$out/corpus/$t" "$out/findings/$t"
    (
        start=$SECONDS
        # shellcheck disable=SC2086
        nice -n 10 "$san/fuzz/$t" "${limit[@]}" -print_final_stats=1 \
            -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
            -artifact_prefix="$out/findings/$t/" \
            -dict="$repo/tests/fuzz/$t.dict" \
            "$out/corpus/$t" "$repo/tests/fuzz/corpus/$t" \
            > "$out/$t.log" 2>&1 || true
        echo $((SECONDS - start)) > "$out/$t.time"
    ) &
done
wait

found=0
for t in $targets; do
    log=$out/$t.log
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    findings=$(find "$out/findings/$t" -type f | sort)
    n=$(echo -n "$findings" | grep -c . || true)
    echo "$t: ${runs:-?} executions in $(cat "$out/$t.time") s" \
         "(${speed:-?}/s), coverage ${cov:-?} edges ${ft:-?} features," \
         "corpus ${corp:-?} inputs, $n findings (log: ${log#"$repo"/})"
    if [ -z "$runs" ]; then
        echo "   $t did not finish; the end of its log:"
        tail -n 30 "$log" | sed 's/^/   | /'
        found=1
    fi
    for f in $findings; do
        cp "$f" "$repo/tests/fuzz/corpus/$t/"
        echo "   finding: tests/fuzz/corpus/$t/${f##*/}"
        found=1
    done
    if [ "$n" != 0 ]; then
        grep -E -m 5 'ERROR|runtime error|fuzz: |SUMMARY' "$log" |
            sed 's/^/   | /'
    fi
done
exit $found
