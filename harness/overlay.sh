#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Overlay our files onto the fetched QEMU tree and apply patches/series.
# Incremental: a file is copied only when its content changed, and the
# tree is reset to the pristine base only when the series changed.
# Usage: overlay.sh REPO_DIR BUILD_DIR
set -euo pipefail

repo=$(realpath "$1")
src=$(realpath "$2")/qemu
. "$repo/harness/overlay-paths.sh"

cd "$repo"
stamp=$(cat patches/series $(grep -v -e '^#' -e '^$' patches/series | sed 's|^|patches/|') \
        | sha256sum | cut -d' ' -f1)
list=$(for d in $OVERLAY_PATHS; do
           if [ -e "$d" ]; then
               find "$d" -type f ! -name '*~' ! -name '.*'
           fi
       done | sort)

cd "$src"
if [ "$(cat .memmap-patches 2>/dev/null)" != "$stamp" ]; then
    git checkout -q base -- .
    git clean -fdq
    rm -f .memmap-files
    while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        git apply --whitespace=nowarn "$repo/patches/$p" ||
            { echo "overlay.sh: patches/$p does not apply" >&2; exit 1; }
    done < "$repo/patches/series"
    echo "$stamp" > .memmap-patches
fi

# Files overlaid before but gone from the repository go back to the base.
if [ -f .memmap-files ]; then
    comm -23 .memmap-files <(echo "$list") | while read -r f; do
        if git cat-file -e "base:$f" 2>/dev/null; then
            git checkout -q base -- "$f"
        else
            rm -f "$f"
        fi
    done
fi
for f in $list; do
    cmp -s "$repo/$f" "$f" || install -D -m 644 "$repo/$f" "$f"
done
echo "$list" > .memmap-files
