#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Replay every file of tests/fuzz/corpus/<target>/ (seeds and every
# finding of make fuzz) through its libFuzzer target, once each.  TAP,
# one test per target: ok when libFuzzer ran every file and nothing
# crashed, leaked or tripped a sanitizer or a property.
# Usage: replay.sh REPO_DIR FUZZ_BIN_DIR
set -uo pipefail

repo=$1
bin=$2
targets="memmap-fuzz plan-json-fuzz plan-sysfs-fuzz"

# the planner targets' files, removed even when a target dies
TMPDIR=$(mktemp -d)
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT

echo "1..3"
i=0
for t in $targets; do
    i=$((i + 1))
    files=("$repo/tests/fuzz/corpus/$t"/*)
    log=$TMPDIR/$t.log
    "$bin/$t" -timeout=10 -rss_limit_mb=2048 "${files[@]}" > "$log" 2>&1
    status=$?
    ran=$(grep -c '^Executed ' "$log")
    if [ "$status" = 0 ] && [ "$ran" = "${#files[@]}" ]; then
        echo "ok $i - $t: ${#files[@]} corpus files replayed"
    else
        # libFuzzer stops at the first failing file: try each on its own
        bad=()
        for f in "${files[@]}"; do
            "$bin/$t" -timeout=10 -rss_limit_mb=2048 "$f" > /dev/null 2>&1 ||
                bad+=("${f##*/}")
        done
        echo "not ok $i - $t: ${#bad[@]} of ${#files[@]} files fail:" \
             "${bad[*]}"
        grep -v -e '^Running: ' -e '^Executed ' -e '^INFO: ' "$log" |
            tail -n 40 | sed 's/^/# /'
    fi
done
