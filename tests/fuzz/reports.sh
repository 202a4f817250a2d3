#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The sanitizer reports left in REPORT_DIR by the processes of the
# sanitizer layer (ASan, LSan and UBSan write to <tool>.<pid> there).
# TAP, one test: ok when there is none; else each report's summary, and
# the first report in full.
# Usage: reports.sh REPORT_DIR
set -uo pipefail

dir=$1
echo "1..1"
mapfile -t files < <(find "$dir" -type f | sort)
if [ "${#files[@]}" = 0 ]; then
    echo "ok 1 - no sanitizer report from any process of the layer"
    exit 0
fi
echo "not ok 1 - ${#files[@]} sanitizer reports"
for f in "${files[@]}"; do
    echo "# ${f##*/}: $(grep -m1 -E 'SUMMARY|runtime error' "$f")"
done
sed 's/^/# /' "${files[0]}" | head -n 80
