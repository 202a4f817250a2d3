# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2154 # sourced by harness/check.sh: $repo, $build, $logs, run_tap
#
# The sanitizer layer of make check, sourced by harness/check.sh (it uses
# run_tap, $repo, $build, $logs).  harness/san-build.sh builds build/san
# (clang-14, ASan + UBSan); against it run the unit tests, memmap-test
# (its QEMUs too), the planner tests (the planner and the QEMUs it feeds)
# and the replay of every fuzz corpus file of tests/fuzz/corpus/.  Leak
# detection is on; tests/fuzz/lsan.supp lists what is suppressed and
# why.  Any sanitizer report, from any of those processes, is a failure:
# reports go to build/logs/san/ and the last test lists them.
# MEMMAP_SAN=0 skips the layer (counted as one skip, said so).
# memmap-test runs on the sanitized qemu-system-aarch64 (its QEMUs and
# qemu-img), and the planner tests feed it their plans.
# MEMMAP_SAN_SYSTEM=0 leaves that QEMU out (about 1,300 fewer compile
# steps): memmap-test then counts as one skip, said so, and the planner
# tests feed build/obj's QEMU.

san_layer() {
    local san=$build/san reports=$logs/san start=$SECONDS bstart

    echo "== sanitizer layer (ASan + UBSan, build/san)"
    if [ "${MEMMAP_SAN:-1}" = 0 ]; then
        echo "   skipped: MEMMAP_SAN=0"
        skipped=$((skipped + 1))
        return
    fi
    bstart=$SECONDS
    if ! "$repo/harness/san-build.sh" "$repo" "$build" \
        > "$logs/san-build.log" 2>&1; then
        echo "   the sanitizer build failed:"
        tail -n 30 "$logs/san-build.log" | sed 's/^/   | /'
        failed=$((failed + 1))
        return
    fi
    echo "   build: $((SECONDS - bstart)) s"
    rm -rf "$reports"
    mkdir -p "$reports"
    (
        . "$repo/tests/fuzz/sanitizer-env.sh" "$repo" "$reports"
        local qemu=$san/qemu-system-aarch64

        run_tap san-unit-memmap "$san/tests/unit/test-memmap" --tap
        if [ "${MEMMAP_SAN_SYSTEM:-1}" != 0 ]; then
            export QTEST_QEMU_BINARY=$qemu QTEST_QEMU_IMG=$san/qemu-img
            run_tap san-qtest-memmap "$san/tests/qtest/memmap-test" --tap
        else
            echo "== san-qtest-memmap"
            echo "   skipped: no sanitized QEMU (MEMMAP_SAN_SYSTEM=0)"
            skipped=$((skipped + 1))
            qemu=$build/obj/qemu-system-aarch64
        fi
        run_tap san-planner /usr/bin/python3 \
            "$repo/tests/planner/test-planner.py" \
            --planner "$san/contrib/memmap-plan/memmap-plan" --qemu "$qemu"
        run_tap san-fuzz-replay "$repo/tests/fuzz/replay.sh" "$repo" \
            "$san/fuzz"
        run_tap san-reports "$repo/tests/fuzz/reports.sh" "$reports"
        echo "$passed $failed $skipped" > "$logs/san-counts"
    )
    read -r passed failed skipped < "$logs/san-counts"
    echo "== sanitizer layer: done in $((SECONDS - start)) s"
}
san_layer
