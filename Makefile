# SPDX-License-Identifier: GPL-2.0-or-later
#
# memmap: a user-supplied guest memory map for QEMU's arm virt machine.
# See README.md.  Every target does its own set-up (as root on Debian 12).

BUILD ?= build
export BUILD

.PHONY: all build run check series series-check docs-check bench fuzz clean distclean

all: build

build:
	harness/build.sh . $(BUILD)

run: build
	harness/run-example.sh . $(BUILD)

check: build
	harness/check.sh . $(BUILD)

series: build
	harness/export-series.sh . $(BUILD)

# Every commit of the series built and tested on its own, then the manual.
series-check: build
	harness/series-check.sh . $(BUILD)

# The manual of the exported series, Sphinx with -W.
docs-check: series
	harness/docs-check.sh . $(BUILD)

bench: build
	harness/bench.sh . $(BUILD)

# libFuzzer targets (ASan + UBSan, build/san): FUZZ_SECONDS (default 60)
# or FUZZ_RUNS per target; findings go into tests/fuzz/corpus/.
fuzz: build
	harness/fuzz.sh . $(BUILD)

# Keeps the fetched base and ccache; removes build output.
clean:
	rm -rf $(BUILD)/obj $(BUILD)/series $(BUILD)/guest/run \
	    $(BUILD)/series-check/obj $(BUILD)/docs/obj $(BUILD)/san $(BUILD)/fuzz

distclean:
	rm -rf $(BUILD)
