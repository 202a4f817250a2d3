# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Sourced: the sanitizer options of make fuzz and the sanitizer layer.
# Usage: . sanitizer-env.sh REPO_DIR [REPORT_DIR]
# With REPORT_DIR, every report goes to REPORT_DIR/<tool>.<pid> besides
# the process failing, so that reports of processes whose exit status a
# test does not look at (a QEMU a qtest stops) are not lost.
# Any sanitizer report makes the process exit with status 66, which no
# test expects (QEMU refuses a bad map with 1).
_san_repo=$1
_san_log=${2:+:log_path=$2/asan}
_san_ulog=${2:+:log_path=$2/ubsan}
export ASAN_OPTIONS="exitcode=66:detect_leaks=1:abort_on_error=0\
:strict_string_checks=1\
:symbolize=1$_san_log"
export LSAN_OPTIONS="exitcode=66:print_suppressions=0\
:suppressions=$_san_repo/tests/fuzz/lsan.supp"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=0:exitcode=66\
:print_stacktrace=1$_san_ulog"
export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
unset _san_repo _san_log _san_ulog
