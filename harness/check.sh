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

. "$repo/harness/tap.sh"

export QTEST_QEMU_BINARY=$obj/qemu-system-aarch64
export QTEST_QEMU_IMG=$obj/qemu-img
# hugetlbfs for the backend page-size tests of memmap-test
if MEMMAP_HUGETLBFS=$("$repo/harness/hugepages.sh" "$build" 2> "$logs/hugepages.log")
then
    export MEMMAP_HUGETLBFS
    # unmounted at the end, so that the build folder can be removed
    trap 'umount "$MEMMAP_HUGETLBFS" 2> /dev/null || true' EXIT
else
    # memmap-test skips its hugepage cases without one: that is a failure
    echo "== hugepages: no hugetlbfs for memmap-test's backend page-size" \
         "test: 1 failed"
    sed 's/^/   | /' "$logs/hugepages.log"
    failed=$((failed + 1))
fi

# unit layer
run_tap unit-memmap "$obj/tests/unit/test-memmap" --tap
# util/range's list helpers (the fixes series), in QEMU's own unit test
run_tap unit-resv-mem "$obj/tests/unit/test-resv-mem" --tap

# qtest layer: QEMU's whole qtest-aarch64 meson suite on our binary
# (memmap-test is one of its programs), each program as `meson test` runs
# it (harness/qtest-suite.py: meson's test list, command, environment,
# working directory and timeout), two at a time as make check -j2 would
# (MEMMAP_QTEST_JOBS), and every program's TAP lines counted.  qom-test
# and test-hmp visit all 88 aarch64 machines (about 10 minutes on 2
# cores); MEMMAP_QUICK=1 runs those two on virt, on the 'none' machine and
# on two arm64 boards that refuse memmap only (MEMMAP_QUICK_MACHINES
# names others); a name that matches no machine is a failure.
suite=qtest-aarch64
suite_start=$SECONDS
if qtests=$(/usr/bin/python3 "$repo/harness/qtest-suite.py" list "$obj" \
                "$suite" 2> "$logs/$suite-list.log"); then
    # meson lists bios-tables-test only where bzip2 was found at
    # configure time; memmap-test is ours
    for t in bios-tables-test memmap-test; do
        if ! grep -qx "$t" <<< "$qtests"; then
            echo "== $suite: $t is not in meson's list"
            failed=$((failed + 1))
        fi
    done
    jobs_max=${MEMMAP_QTEST_JOBS:-$(nproc)}
    running=0
    echo "== $suite: $(echo "$qtests" | wc -l) programs," \
         "$jobs_max at a time"
    quick_machines=${MEMMAP_QUICK_MACHINES:-virt-10.2 none sbsa-ref xlnx-zcu102}
    for t in $qtests; do
        quick=()
        if [ -n "${MEMMAP_QUICK:-}" ]; then
            case $t in
            qom-test) path=qom ;;
            test-hmp) path=hmp ;;
            *) path= ;;
            esac
            for m in ${path:+$quick_machines}; do
                quick+=(-p "/aarch64/$path/$m")
                paths[$suite/$t]+=" /aarch64/$path/$m"
            done
        fi
        if [ "$running" -ge "$jobs_max" ]; then
            wait -n
            running=$((running - 1))
        fi
        running=$((running + 1))
        run_logged "$suite/$t" /usr/bin/python3 "$repo/harness/qtest-suite.py" \
            run "$obj" "$suite" "$t" "${quick[@]}" &
    done
    wait
    for t in $qtests; do
        echo "== $suite/$t"
        count_tap "$suite/$t"
    done
    echo "== $suite: done in $((SECONDS - suite_start)) s"
else
    echo "== $suite: meson's test list could not be read"
    sed 's/^/   | /' "$logs/$suite-list.log"
    failed=$((failed + 1))
fi

# ABI layer: without memmap, the device tree, memory tree and ACPI
# tables are those of the same QEMU built without our change
if ref=$("$repo/harness/ref-qemu.sh" "$repo" "$build" 2> "$logs/ref-qemu.log"); then
    run_tap abi-default /usr/bin/python3 "$repo/tests/abi/test-default-abi.py" \
        --qemu "$obj/qemu-system-aarch64" --reference "$ref"
else
    echo "== abi-default: the reference QEMU could not be built"
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

# sanitizer layer: the unit tests, memmap-test, the planner tests and the
# fuzz corpora against the ASan + UBSan build (harness/san-layer.sh)
. "$repo/harness/san-layer.sh"

# guest layer: Debian's arm64 kernel booted under TCG
run_tap_after guest-memmap "guest assets" \
    "$repo/harness/guest-assets.sh" "$build" -- \
    /usr/bin/python3 "$repo/tests/guest/test-guest-memmap.py" \
    --qemu "$obj/qemu-system-aarch64" \
    --kernel "$build/guest/vmlinuz-arm64" \
    --initrd "$build/guest/initramfs-arm64.cpio.gz"

# libvirt layer: Debian's libvirtd, a private session daemon under
# build/libvirt, defines and starts the domain of docs/system/memmap.rst
# on our QEMU; the map through virsh qemu-monitor-command and in the guest
run_tap_after libvirt-memmap "guest assets" \
    "$repo/harness/guest-assets.sh" "$build" -- \
    /usr/bin/python3 "$repo/tests/libvirt/test-libvirt-memmap.py" \
    --qemu "$obj/qemu-system-aarch64" \
    --kernel "$build/guest/vmlinuz-arm64" \
    --initrd "$build/guest/initramfs-arm64.cpio.gz" \
    --doc "$repo/docs/system/memmap.rst" --workdir "$build/libvirt"

# firmware layer: Debian's AAVMF (UEFI) boots the arm64 kernel with
# ACPI; maps the firmware cannot take are refused
run_tap_after uefi-memmap "firmware assets" \
    "$repo/harness/firmware-assets.sh" "$build" -- \
    /usr/bin/python3 "$repo/tests/firmware/test-uefi-memmap.py" \
    --qemu "$obj/qemu-system-aarch64" \
    --kernel "$build/guest/vmlinuz-arm64" \
    --initrd "$build/firmware/initramfs-uefi.cpio.gz" \
    --firmware "$build/firmware"

# migration layer: a running guest migrated between two QEMUs on this
# machine; same map: the guest goes on; different maps: refused, the
# source resumes; without a map the stream starts as the pristine base's
if "$repo/harness/guest-assets.sh" "$build" > "$logs/migration-assets.log" 2>&1 &&
    ref=$("$repo/harness/ref-qemu.sh" "$repo" "$build" 2>> "$logs/migration-assets.log")
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

# KVM layer: our QEMU cross-built for arm64 (build/cross) runs under KVM
# in an arm64 guest of our x86 TCG build (virtualization=on, Debian
# trixie's kernel): the same map under KVM and TCG, without a map the
# same as the pristine base's (build/ref/cross), the IPA limit, a guest,
# AAVMF, migration; VFIO behind an SMMUv3 and a virtio-iommu
run_tap_after kvm-memmap "arm64 cross build or KVM assets" \
    sh -c '"$1/harness/cross-build.sh" "$1" "$2" &&
           "$1/harness/cross-build.sh" "$1" "$2" ref &&
           "$1/harness/kvm-assets.sh" "$1" "$2"' sh "$repo" "$build" -- \
    /usr/bin/python3 "$repo/tests/kvm/test-kvm-memmap.py" --build "$build"

# VFIO layer: real VFIO under nested emulation (an x86_64 guest with an
# emulated IOMMU assigns an emulated PCI device to our QEMU)
run_tap vfio-nested /usr/bin/python3 "$repo/tests/vfio/test-vfio-nested.py" \
    --qemu-aarch64 "$build/qemu-system-aarch64" --build "$build"

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
