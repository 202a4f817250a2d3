#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make bench: the benchmarks (not tests).  Each prints ratios measured
# side by side in one run.  Usage: bench.sh REPO_DIR BUILD_DIR
set -euo pipefail
"$(dirname "$0")/bench-planner.sh" "$1" "$2"
