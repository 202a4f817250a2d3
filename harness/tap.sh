# SPDX-License-Identifier: GPL-2.0-or-later
#
# Sourced by check.sh (and usable alone, to try the counting on one
# program): run TAP producers into logs under $logs and add up their
# results in $passed, $failed and $skipped.
#   . harness/tap.sh; logs=DIR; run_tap NAME COMMAND...
# shellcheck shell=bash

passed=0
failed=0
skipped=0
# programs of ours that must not skip as a whole (a QEMU without the virt
# machine is not one this suite is for), and the test paths a run was
# limited to with -p: each must give a result
declare -A must_run=([qtest-aarch64/memmap-test]=1) paths=()

# run_logged NAME COMMAND...: run one TAP producer into its log, keep its
# exit status and elapsed seconds beside it
run_logged() {
    local log=$logs/$1.tap start=$SECONDS
    shift
    mkdir -p "${log%/*}"
    "$@" > "$log" 2>&1
    echo $? > "$log.status"
    echo $((SECONDS - start)) > "$log.time"
}

# count_tap NAME: add up the results of a finished TAP producer.  Every
# "ok", "not ok" and "ok ... # SKIP" line counts; a program that reports
# fewer tests than its plan, or none at all, or exits non-zero without a
# failing test, counts as failed; "1..0 # SKIP reason" (the whole program
# skipped) counts as one skip.  Skips are listed with their reasons.
count_tap() {
    local name=$1 log=$logs/$1.tap counts p f s plan status secs path
    status=$(cat "$log.status" 2>/dev/null || echo 255)
    secs=$(cat "$log.time" 2>/dev/null || echo 0)
    counts=$(awk '
        /^1\.\.[0-9]+/ { plan = substr($1, 4) + 0
                         if (plan == 0 && $0 ~ /# [Ss][Kk][Ii][Pp]/) all = 1 }
        /^ok / { if ($0 ~ /# [Ss][Kk][Ii][Pp]/) s++; else p++ }
        /^not ok / { f++ }
        END { printf "%d %d %d %d %d\n", p, f, s, plan, all }' "$log")
    read -r p f s plan all <<< "$counts"
    if [ $((p + f + s)) -lt "$plan" ]; then
        echo "   $name: only $((p + f + s)) of $plan tests reported"
        f=$((f + plan - p - f - s))
    fi
    if [ $((p + f + s)) = 0 ]; then
        if [ -n "${must_run[$name]:-}" ]; then
            echo "   $name: ran no test ($(grep -m1 -E '^1\.\.' "$log" ||
                echo 'no plan')); it must run here"
            f=1
        elif [ "$all" = 1 ] && [ "$status" = 0 ] || [ "$status" = 77 ]; then
            s=1
        else
            echo "   $name: reported no test"
            f=1
        fi
    elif [ "$status" != 0 ] && [ "$f" = 0 ]; then
        echo "   $name: exited with status $status"
        f=1
    fi
    # each -p path a run was limited to must have given a result
    for path in ${paths[$name]:-}; do
        if ! grep -qE "^(not )?ok [0-9]+ $path(/| |$)" "$log"; then
            echo "   $name: no test ran for $path"
            f=$((f + 1))
        fi
    done
    # each failing test with the diagnostics that follow it (at most 40
    # lines a test); the log's tail when no test line says what failed
    awk '/^(ok|not ok) / { diag = 0 }
         /^not ok|^Bail out|^ok .*# [Ss][Kk][Ii][Pp]|^1\.\.0/ {
             print "   " $0 }
         diag && /^#/ && n++ < 40 { print "   | " $0 }
         /^not ok / { diag = 1; n = 0 }' "$log"
    if [ "$f" != 0 ] && ! grep -q '^not ok' "$log"; then
        tail -n 30 "$log" | sed 's/^/   | /'
    fi
    echo "   $p passed, $f failed, $s skipped in ${secs} s" \
         "(log: ${log#"$repo"/})"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
}

# run_tap NAME COMMAND...: run one TAP producer and add up its results
run_tap() {
    echo "== $1"
    run_logged "$@"
    count_tap "$1"
}


# run_tap_after NAME WHAT PREP... -- COMMAND...: prepare a layer's
# assets with PREP (its output to $logs/NAME-assets.log), then run_tap
# NAME COMMAND...; a PREP that fails counts as one failure, said with
# WHAT and the tail of its log
run_tap_after() {
    local name=$1 what=$2 prep=()
    shift 2
    while [ "$1" != -- ]; do
        prep+=("$1")
        shift
    done
    shift
    if "${prep[@]}" > "$logs/$name-assets.log" 2>&1; then
        run_tap "$name" "$@"
    else
        echo "== $name: $what could not be prepared"
        tail -n 20 "$logs/$name-assets.log" | sed 's/^/   | /'
        failed=$((failed + 1))
    fi
}
