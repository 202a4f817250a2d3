#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Export our change as git format-patch series against the pristine base
# into BUILD_DIR/series/NAME, one directory per series of
# patches/export.txt (each applies after the ones before it), one commit
# per block, and run the base's scripts/checkpatch.pl on them.  Errors
# fail.
# Usage: export-series.sh REPO_DIR BUILD_DIR
set -euo pipefail

repo=$(realpath "$1")
build=$(realpath "$2")
src=$build/qemu
tree=$build/series-tree
out=$build/series
. "$repo/harness/overlay-paths.sh"

git -C "$src" worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
git -C "$src" worktree prune
git -C "$src" worktree add -q --detach "$tree" base
rm -rf "$out"
mkdir -p "$out"

cd "$repo"
all=$(for d in $OVERLAY_PATHS; do
          if [ -e "$d" ]; then find "$d" -type f ! -name '*~' ! -name '.*'; fi
      done
      grep -v -e '^#' -e '^$' patches/series | sed 's|^|patches/|')
listed=$(sed -n 's/^files: //p' patches/export.txt | tr ' ' '\n' | sed '/^$/d')
missing=$(comm -23 <(echo "$all" | sort) <(echo "$listed" | sort))
if [ -n "$missing" ]; then
    echo "export-series.sh: not in any commit of patches/export.txt:" >&2
    echo "$missing" >&2
    exit 1
fi

# maintain FILE...: list new files in our MAINTAINERS section, which
# goes right after "Machine core"
maintain() {
    /usr/bin/python3 - "$tree/MAINTAINERS" "$@" <<'PY'
import sys
path, files = sys.argv[1], sys.argv[2:]
lines = open(path).read().split("\n")
head = "Guest memory map (memmap)"
if head not in lines:
    at = lines.index("", lines.index("Machine core"))
    lines[at:at] = ["", head, "M: memmap developers <memmap@localhost>",
                    "S: Maintained"]
end = lines.index("", lines.index(head))
lines[end:end] = ["F: " + f for f in files]
open(path, "w").write("\n".join(lines))
PY
}

commit() {
    local subject=$1 files=$2 body=$3 f new=()
    for f in $files; do
        case "$f" in
        patches/*) git -C "$tree" apply "$repo/$f" ;;
        # expected ACPI tables go in alone (bios-tables-test.c's rules)
        tests/data/acpi/*) install -D -m 644 "$repo/$f" "$tree/$f" ;;
        *) install -D -m 644 "$repo/$f" "$tree/$f"; new+=("$f") ;;
        esac
    done
    [ ${#new[@]} = 0 ] || maintain "${new[@]}"
    git -C "$tree" add -A
    printf '%s\n\n%s\n\nSigned-off-by: %s\n' "$subject" "$body" \
        "memmap developers <memmap@localhost>" |
        git -C "$tree" -c user.name="memmap developers" \
            -c user.email=memmap@localhost commit -q -F -
}

# One directory of format-patch output per series, each with its cover
# letter (patches/cover-letter-NAME.txt: subject line, then the blurb).
# series NAME: format the commits since the previous series' tip.
prev=base
series_names=()
series() {
    local name=$1 dir=$out/$1
    mkdir -p "$dir"
    git -C "$tree" format-patch -q --cover-letter -o "$dir" "$prev..HEAD"
    /usr/bin/python3 - "$dir"/0000-cover-letter.patch \
        "$repo/patches/cover-letter-$name.txt" <<'PY'
import sys
letter, text = sys.argv[1], open(sys.argv[2]).read().split("\n", 1)
body = open(letter).read()
body = body.replace("*** SUBJECT HERE ***", text[0])
body = body.replace("*** BLURB HERE ***", text[1].strip())
open(letter, "w").write(body)
PY
    prev=$(git -C "$tree" rev-parse HEAD)
    series_names+=("$name")
}

name= subject= files= body=
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
    '@@@ '*|'=== '*)
        if [ -n "$subject" ]; then
            commit "$subject" "$files" "$body"
            subject=
        fi
        ;;&
    '@@@ '*)
        [ -z "$name" ] || series "$name"
        name=${line#@@@ } ;;
    '=== '*) subject=${line#=== } files= body= ;;
    'files: '*) files=${line#files: } ;;
    '#'*) ;;
    *) [ -z "$subject" ] || body=${body:+$body$'\n'}$line ;;
    esac
done < patches/export.txt
[ -z "$subject" ] || commit "$subject" "$files" "$body"
series "$name"

for name in "${series_names[@]}"; do
    echo "exported $(ls "$out/$name" | grep -vc cover-letter) patches to" \
         "$out/$name"
done
cd "$tree"
status=0
for p in "$out"/*/0*.patch; do
    case "$p" in *cover-letter*) continue ;; esac
    if ! ./scripts/checkpatch.pl -q "$p"; then
        status=1
    fi
done
[ "$status" = 0 ] && echo "checkpatch: clean"
exit "$status"
