#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The sanitizer reports left in REPORT_DIR by the processes of the
# sanitizer layer (ASan, LSan and UBSan write to <tool>.<pid> there).
# TAP, one test: ok when there is none; else each report's summary, and
# the first report in full.
# Usage: reports.sh REPORT_DIR
set -uo pipefail

# ASan prints one warning per process that uses swapcontext(), as
# QEMU's coroutines do (coroutine-ucontext.c tells ASan of every stack
# switch); a file holding that warning (and the one below) and nothing
# else is no report.
benign="^==[0-9]+==WARNING: ASan doesn't fully support makecontext/swapcontext\
 functions and may produce false positives in some cases!\$"
# On QEMU 10.2, savevm and loadvm run in a coroutine, and a process that
# ends from there (memmap-test's snapshot test) also gets ASan's notice
# that it ignores __asan_handle_no_return on a stack it does not know:
# the same swapcontext limitation (sanitizers issue 189), three lines.
no_return="^==[0-9]+==WARNING: ASan is ignoring requested\
 __asan_handle_no_return: stack type: default top: 0x[0-9a-f]+; bottom\
 0x[0-9a-f]+; size: 0x[0-9a-f]+ \([0-9]+\)\$"
no_return_more="^(False positive error reports may follow|For details see\
 https://github.com/google/sanitizers/issues/189)\$"

dir=$1
echo "1..1"
mapfile -t files < <(find "$dir" -type f | sort | while read -r f; do
    if grep -qvE -e "$benign" -e "$no_return" -e "$no_return_more" -e '^$' \
        "$f"; then
        echo "$f"
    fi
done)
if [ "${#files[@]}" = 0 ]; then
    echo "ok 1 - no sanitizer report from any process of the layer"
    exit 0
fi
echo "not ok 1 - ${#files[@]} sanitizer reports"
for f in "${files[@]}"; do
    echo "# ${f##*/}: $(grep -m1 -E 'SUMMARY|runtime error' "$f")"
done
sed 's/^/# /' "${files[0]}" | head -n 80
