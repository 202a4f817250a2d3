#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build QEMU's manual (HTML and man pages) for a commit of the exported
# series, as upstream does: Sphinx with QEMU's extensions (qapi-doc,
# hxtool, kerneldoc) and -W, every warning an error.  Then check that
# our pages and the QAPI and HMP reference for memmap are in it.
# The tree and build folder (BUILD_DIR/docs) are used by nothing else.
# Usage: docs-check.sh REPO_DIR BUILD_DIR [COMMIT]
# COMMIT defaults to the tip of the last export (make series).
set -euo pipefail

repo=$(realpath "$1")
build=$(realpath "$2")
commit=${3:-$(git -C "$build/series-tree" rev-parse HEAD)}
dir=$build/docs
src=$dir/qemu
obj=$dir/obj
log=$dir/docs.log

mkdir -p "$dir"
exec 9> "$dir/.lock"
flock 9
start=$SECONDS

if ! git -C "$src" rev-parse --git-dir > /dev/null 2>&1; then
    rm -rf "$src"
    git -C "$build/qemu" worktree prune
    git -C "$build/qemu" worktree add -q --detach "$src" base
fi
git -C "$src" checkout -q -f --detach "$commit"
git -C "$src" clean -fdq

# As harness/build.sh, with the manual; nothing is compiled here.
. "$repo/harness/configure.sh"
configure_qemu docs-check.sh "$src" "$obj" "$dir/configure.log" \
    --enable-docs --enable-tools
if ! grep -q -- "-W -Dkerneldoc_werror=1" "$obj/build.ninja"; then
    echo "docs-check.sh: Sphinx does not run with -W" >&2
    exit 1
fi
nice -n 10 ninja -C "$obj" html man > "$log" 2>&1 || {
    grep -v '^\[' "$log" | tail -n 40 >&2
    echo "docs-check.sh: the manual does not build, see $log" >&2
    exit 1
}

# FILE PATTERN WHAT: the built FILE must contain PATTERN
status=0
want() {
    if [ ! -f "$obj/docs/$1" ]; then
        echo "docs-check.sh: no docs/$1 ($3)" >&2
        status=1
    elif ! grep -q -- "$2" "$obj/docs/$1"; then
        echo "docs-check.sh: docs/$1 lacks $3" >&2
        status=1
    fi
}
m=manual
want $m/system/memmap.html 'User-supplied guest memory map' "the memmap page"
want $m/system/memmap.html 'iova-check' "the VFIO check"
want $m/system/index.html 'href="memmap.html"' "a link to the memmap page"
want $m/tools/memmap-plan.html 'memmap-plan' "the planner page"
want $m/tools/index.html 'href="memmap-plan.html"' "a link to the planner page"
want $m/system/arm/virt.html 'memmap' "memmap in the virt machine page"
qmp=$m/interop/qemu-qmp-ref.html
want $qmp 'id="[^"]*query-memmap"' "the query-memmap command"
want $qmp 'id="[^"]*MemMapRange"' "the MemMapRange type"
want $qmp 'id="[^"]*MemMapType"' "the MemMapType enum"
want $qmp 'id="[^"]*IovaCheckPolicy"' "the IovaCheckPolicy enum"
want $m/system/monitor.html 'info</span> <span class="pre">memmap' \
    "HMP info memmap"
want $m/system/invocation.html 'memmap.0.type=ram|hole' "-machine memmap"
want qemu.1 'memmap.0.type=ram|hole' "-machine memmap in the man page"
[ "$status" = 0 ] || exit 1
echo "docs-check: the manual builds with -W, memmap pages and QAPI" \
     "reference present ($((SECONDS - start)) s)"
