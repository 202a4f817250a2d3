# SPDX-License-Identifier: GPL-2.0-or-later
# The parts of this repository that are laid out as in the QEMU tree and
# copied into it.  Everything else (harness/, patches/, tests/guest/, ...)
# is project tooling that never goes upstream.
OVERLAY_PATHS="contrib docs hw include qapi system monitor util stubs \
tests/qtest tests/unit tests/data"
