#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Give the tests a hugetlbfs mount with free 2 MiB pages (as root): the
# memmap alignment rule follows the page size of guest RAM's backend.
# Prints the mount point.  Usage: hugepages.sh BUILD_DIR [PAGES]
set -euo pipefail

dir=$(realpath -m "$1")/hugepages
want=${2:-256}
nr=/proc/sys/vm/nr_hugepages

if [ "$(cat "$nr")" -lt "$want" ]; then
    echo "$want" > "$nr"
fi
free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
if [ "$free" -lt "$want" ]; then
    echo "hugepages.sh: only $free free 2 MiB pages, $want wanted" >&2
    exit 1
fi
mkdir -p "$dir"
if ! mountpoint -q "$dir"; then
    mount -t hugetlbfs -o pagesize=2M none "$dir"
fi
echo "$dir"
