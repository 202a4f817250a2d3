#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The whole test suite: every layer runs and reports TAP; the counts are
# summed into the closing line "N passed, N failed, N skipped".  A layer
# that cannot run, or a test program that dies before finishing its plan,
# counts as failed: nothing is silently skipped.
# Usage: check.sh REPO_DIR BUILD_DIR
set -uo pipefail

repo=$(realpath "$1")
build=$(realpath "$2")
obj=$build/obj
logs=$build/logs
rm -rf "$logs"
mkdir -p "$logs"

passed=0
failed=0
skipped=0

# run_tap NAME COMMAND...: run one TAP producer and add up its results
run_tap() {
    local name=$1 log=$logs/$1.tap counts p f s
    shift
    echo "== $name"
    "$@" > "$log" 2>&1
    local status=$?
    counts=$(awk '
        /^1\.\.[0-9]+/ { plan = substr($1, 4) + 0 }
        /^ok / { if ($0 ~ /# [Ss][Kk][Ii][Pp]/) s++; else p++ }
        /^not ok / { f++ }
        END { printf "%d %d %d %d\n", p, f, s, plan }' "$log")
    read -r p f s plan <<< "$counts"
    if [ $((p + f + s)) -lt "$plan" ]; then
        echo "   $name: only $((p + f + s)) of $plan tests reported"
        f=$((f + plan - p - f - s))
    fi
    if [ "$status" != 0 ] && [ "$f" = 0 ]; then
        echo "   $name: exited with status $status"
        f=1
    fi
    grep -E '^not ok|^Bail out' "$log" | sed 's/^/   /'
    if [ "$f" != 0 ]; then
        tail -n 30 "$log" | sed 's/^/   | /'
    fi
    echo "   $p passed, $f failed, $s skipped (log: ${log#"$repo"/})"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
}

export QTEST_QEMU_BINARY=$obj/qemu-system-aarch64
export QTEST_QEMU_IMG=$obj/qemu-img

# unit layer
run_tap unit-memmap "$obj/tests/unit/test-memmap" --tap

# qtest layer: ours, and QEMU's generic ones that read every property
# and run every info command on every aarch64 machine (about 10 minutes
# on 2 cores).  MEMMAP_QUICK=1 runs those two on virt, on the 'none'
# machine and on two arm64 boards that refuse memmap only.
run_tap qtest-memmap "$obj/tests/qtest/memmap-test" --tap
generic=()
if [ -n "${MEMMAP_QUICK:-}" ]; then
    for m in virt-10.0 none sbsa-ref xlnx-zcu102; do
        generic+=(-p "/aarch64/qom/$m" -p "/aarch64/hmp/$m")
    done
fi
run_tap qtest-qom "$obj/tests/qtest/qom-test" --tap "${generic[@]}"
run_tap qtest-hmp "$obj/tests/qtest/test-hmp" --tap "${generic[@]}"

# ABI layer: without memmap, the device tree, memory tree and ACPI
# tables are those of Debian's own QEMU 10.0 build
if ref=$("$repo/harness/ref-qemu.sh" "$build" 2> "$logs/ref-qemu.log"); then
    run_tap abi-default /usr/bin/python3 "$repo/tests/abi/test-default-abi.py" \
        --qemu "$obj/qemu-system-aarch64" --reference "$ref"
else
    echo "== abi-default: the reference QEMU could not be unpacked"
    tail -n 20 "$logs/ref-qemu.log" | sed 's/^/   | /'
    failed=$((failed + 1))
fi

# docs layer: the worked examples of our docs, run for real
run_tap docs-examples /usr/bin/python3 "$repo/tests/docs/test-doc-examples.py" \
    --qemu "$obj/qemu-system-aarch64" "$repo"/docs/system/memmap.rst

# planner layer: memmap-plan on sysfs trees the test builds, its plans
# fed to the real QEMU
run_tap planner /usr/bin/python3 "$repo/tests/planner/test-planner.py" \
    --planner "$build/memmap-plan" --qemu "$obj/qemu-system-aarch64"

# guest layer: Debian's arm64 kernel booted under TCG
if "$repo/harness/guest-assets.sh" "$build" > "$logs/guest-assets.log" 2>&1
then
    run_tap guest-memmap /usr/bin/python3 \
        "$repo/tests/guest/test-guest-memmap.py" \
        --qemu "$obj/qemu-system-aarch64" \
        --kernel "$build/guest/vmlinuz-arm64" \
        --initrd "$build/guest/initramfs-arm64.cpio.gz"
else
    echo "== guest-memmap: guest assets could not be prepared"
    tail -n 20 "$logs/guest-assets.log" | sed 's/^/   | /'
    failed=$((failed + 1))
fi

# firmware layer: Debian's AAVMF (UEFI) boots the arm64 kernel with
# ACPI; maps the firmware cannot take are refused
if "$repo/harness/firmware-assets.sh" "$build" \
    > "$logs/firmware-assets.log" 2>&1
then
    run_tap uefi-memmap /usr/bin/python3 \
        "$repo/tests/firmware/test-uefi-memmap.py" \
        --qemu "$obj/qemu-system-aarch64" \
        --kernel "$build/guest/vmlinuz-arm64" \
        --initrd "$build/firmware/initramfs-uefi.cpio.gz" \
        --firmware "$build/firmware"
else
    echo "== uefi-memmap: firmware assets could not be prepared"
    tail -n 20 "$logs/firmware-assets.log" | sed 's/^/   | /'
    failed=$((failed + 1))
fi

# migration layer: a running guest migrated between two QEMUs on this
# machine; same map: the guest goes on; different maps: refused, the
# source resumes; without a map, to and from Debian's own QEMU 10.0
if "$repo/harness/guest-assets.sh" "$build" > "$logs/migration-assets.log" 2>&1 &&
    ref=$("$repo/harness/ref-qemu.sh" "$build" 2>> "$logs/migration-assets.log")
then
    run_tap migration-memmap /usr/bin/python3 \
        "$repo/tests/migration/test-migration-memmap.py" \
        --qemu "$obj/qemu-system-aarch64" --reference "$ref" \
        --kernel "$build/guest/vmlinuz-arm64" \
        --initrd "$build/guest/initramfs-arm64.cpio.gz"
else
    echo "== migration-memmap: guest or reference QEMU could not be prepared"
    tail -n 20 "$logs/migration-assets.log" | sed 's/^/   | /'
    failed=$((failed + 1))
fi

# VFIO layer: real VFIO under nested emulation (an x86_64 guest with an
# emulated IOMMU assigns an emulated PCI device to our QEMU)
run_tap vfio-nested /usr/bin/python3 "$repo/tests/vfio/test-vfio-nested.py" \
    --qemu-aarch64 "$build/qemu-system-aarch64" --build "$build"

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
