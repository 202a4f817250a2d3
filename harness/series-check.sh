#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Bisectability of the exported series: export them (export-series.sh,
# checkpatch included), then apply their patches one at a time, series
# after series, with git am onto the pristine base in a work tree of our
# own, and after each one configure (once), build everything
# incrementally for every target our code reaches -- aarch64-softmmu,
# x86_64-softmmu (VFIO with memory devices, another board) and
# alpha-softmmu (VFIO without memory devices) -- and run the tests
# that exist at that commit: test-resv-mem, the unit test, the qtest, and the
# bios-tables-test case for virt with a map.  One line per commit with
# its time; stops at the first commit that does not apply, build or
# pass.  Then builds the manual of the last commit (docs-check.sh).
#
# BUILD_DIR/series-check/qemu and .../obj are used by nothing else, so
# this runs beside builds and test suites in BUILD_DIR/qemu and obj.
# Usage: series-check.sh REPO_DIR BUILD_DIR
set -euo pipefail

repo=$(realpath "$1")
build=$(realpath "$2")
dir=$build/series-check
src=$dir/qemu
obj=$dir/obj
logs=$dir/logs

"$repo/harness/export-series.sh" "$repo" "$build"

mkdir -p "$dir"
rm -rf "$logs"
mkdir -p "$logs"
exec 9> "$dir/.lock"
flock 9

if ! git -C "$src" rev-parse --git-dir > /dev/null 2>&1; then
    rm -rf "$src"
    git -C "$build/qemu" worktree prune
    git -C "$build/qemu" worktree add -q --detach "$src" base
fi
git -C "$src" am --abort > /dev/null 2>&1 || true
git -C "$src" checkout -q -f --detach base
git -C "$src" clean -fdq

# The same configuration and ccache as harness/build.sh; the cache's
# base directory is this tree's root so that qemu/ and obj/ hash alike.
. "$repo/harness/configure.sh"
use_ccache "$dir"
export CC="ccache cc"
QEMU_TARGETS=aarch64-softmmu,x86_64-softmmu,alpha-softmmu \
configure_qemu series-check.sh "$src" "$obj" "$logs/configure.log" \
    --disable-docs --enable-tools
# Firmware as harness/build.sh gives it to the build tree.
"$repo/harness/bundle-firmware.sh" "$obj"

if MEMMAP_HUGETLBFS=$("$repo/harness/hugepages.sh" "$build" 2>&1); then
    export MEMMAP_HUGETLBFS
    # unmounted at the end, so that the build folder can be removed
    trap 'umount "$MEMMAP_HUGETLBFS" 2> /dev/null || true' EXIT
else
    echo "series-check.sh: $MEMMAP_HUGETLBFS" >&2
    exit 1
fi

# has_target T: the build of the current commit has the target T
# (not through a pipe into grep -q, which pipefail would make fail)
has_target() {
    ninja -C "$obj" -t targets all > "$logs/targets"
    grep -q "^$1: " "$logs/targets"
}

# fail N STEP LOG: report commit N's failed STEP and stop
fail() {
    echo "  FAILED: $2 (log: ${3#"$repo"/})"
    tail -n 30 "$3" | sed 's/^/  | /'
    exit 1
}

n=0
total_start=$SECONDS
patches=$(ls "$build"/series/*/0*.patch | grep -v cover-letter)
count=$(echo "$patches" | wc -l)
for p in $patches; do
    n=$((n + 1))
    start=$SECONDS
    log=$logs/$(basename "$p" .patch)
    if ! git -C "$src" -c user.name="memmap developers" \
        -c user.email=memmap@localhost am -q "$p" > "$log.am" 2>&1; then
        printf '%d/%d %s\n' "$n" "$count" "$(basename "$p")"
        fail "$n" "git am" "$log.am"
    fi
    printf '%d/%d %s\n' "$n" "$count" "$(git -C "$src" log -1 --format=%s)"
    # meson re-runs here when the commit changed a meson.build
    nice -n 10 ninja -C "$obj" build.ninja > "$log.build" 2>&1 ||
        fail "$n" "meson" "$log.build"
    targets="all qemu-img tests/unit/test-resv-mem"
    tests=(test-resv-mem)
    if has_target tests/unit/test-memmap; then
        targets="$targets tests/unit/test-memmap"
        tests+=(test-memmap)
    fi
    if has_target tests/qtest/memmap-test; then
        targets="$targets tests/qtest/memmap-test"
        tests+=(qtest-aarch64/memmap-test)
    fi
    bios=
    if grep -q '"acpi/virt/memmap-numa"' "$src/tests/qtest/bios-tables-test.c"
    then
        targets="$targets tests/qtest/bios-tables-test"
        bios=yes
    fi
    # shellcheck disable=SC2086 # one word per target
    nice -n 10 ninja -C "$obj" $targets >> "$log.build" 2>&1 ||
        fail "$n" "build" "$log.build"
    built=$((SECONDS - start))
    ran=
    if [ ${#tests[@]} != 0 ]; then
        nice -n 10 meson test -C "$obj" --no-rebuild --print-errorlogs \
            "${tests[@]}" > "$log.test" 2>&1 ||
            fail "$n" "tests: ${tests[*]}" "$log.test"
        ran="${tests[*]}"
    fi
    if [ -n "$bios" ]; then
        nice -n 10 meson test -C "$obj" --no-rebuild --print-errorlogs \
            --test-args "-p /aarch64/acpi/virt/memmap-numa" \
            qtest-aarch64/bios-tables-test >> "$log.test" 2>&1 ||
            fail "$n" "bios-tables-test memmap-numa" "$log.test"
        ran="$ran bios-tables-test:memmap-numa"
    fi
    echo "  ok: built in $built s, tests (${ran:-none}) in" \
         "$((SECONDS - start - built)) s, $((SECONDS - start)) s in all"
done
echo "series-check: $count commits build and pass in" \
     "$((SECONDS - total_start)) s"

"$repo/harness/docs-check.sh" "$repo" "$build" "$(git -C "$src" rev-parse HEAD)"
