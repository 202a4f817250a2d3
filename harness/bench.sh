#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make bench: the benchmarks (not tests).  Each prints ratios measured
# side by side in one run.  Usage: bench.sh REPO_DIR BUILD_DIR
set -euo pipefail
"$(dirname "$0")/bench-planner.sh" "$1" "$2"
/usr/bin/python3 "$(dirname "$0")/bench-startup.py" \
    --qemu "$(realpath "$2")/obj/qemu-system-aarch64" \
    --unit "$(realpath "$2")/obj/tests/unit/test-memmap"
