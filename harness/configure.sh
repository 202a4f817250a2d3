# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Sourced by the scripts that build QEMU (build.sh, ref-qemu.sh,
# cross-build.sh, san-build.sh, series-check.sh, docs-check.sh):
# configure a QEMU build directory as every build of the harness does.
#
# configure_qemu NAME SRC OBJ LOG [ARGS...]
#   Configures the QEMU tree SRC into OBJ for aarch64-softmmu (or the
#   targets listed in $QEMU_TARGETS) with the options all our builds
#   share, plus ARGS, at nice 10 -- only when OBJ
#   was not configured so before: the fetched base ($build/qemu's
#   .memmap-base), $CC and the options are OBJ's stamp.  Configure's
#   output goes to LOG; when it fails, its tail and a line naming NAME go
#   to stderr and the status is 1.

configure_qemu() {
    local name=$1 src=$2 obj=$3 log=$4 args stamp
    shift 4
    args="--python=/usr/bin/python3"
    args="$args --target-list=${QEMU_TARGETS:-aarch64-softmmu}"
    args="$args --enable-fdt=system --disable-download"
    args="$args --disable-install-blobs"
    args="$args --firmwarepath=/usr/lib/ipxe/qemu:/usr/share/qemu $*"
    stamp="$(cat "$build/qemu/.memmap-base") ${CC:-cc} $args"
    if [ -f "$obj/build.ninja" ] &&
       [ "$(cat "$obj/.memmap-config" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    rm -rf "$obj"
    mkdir -p "$obj"
    # shellcheck disable=SC2086 # word splitting of args is wanted
    if ! (cd "$obj" && nice -n 10 "$src/configure" $args) > "$log" 2>&1
    then
        tail -n 40 "$log" >&2
        echo "$name: configure failed, see $log" >&2
        return 1
    fi
    echo "$stamp" > "$obj/.memmap-config"
}

# use_ccache BASEDIR: compile through the ccache that every clone on this
# machine shares (/var/cache/memmap-ccache), paths under BASEDIR hashed
# relative to it, so that a fresh clone hits the cache
use_ccache() {
    export CCACHE_DIR=${CCACHE_DIR:-/var/cache/memmap-ccache}
    export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
    export CCACHE_BASEDIR=$1
    export CCACHE_NOHASHDIR=1
}


# ref_tree REPO_DIR BUILD_DIR: the pristine base (build/qemu's tag
# "base": the same QEMU source, Debian's patches applied, without our
# files and hook patches) as a git worktree at BUILD_DIR/ref/qemu, for
# the reference builds (harness/ref-qemu.sh, harness/cross-build.sh
# ref); fetches the base first.  One caller at a time.
ref_tree() {
    local repo=$1 build=$2 base src=$2/ref/qemu
    mkdir -p "$build/ref"
    (
        flock 9
        "$repo/harness/fetch-qemu.sh" "$build" >&2
        base=$(git -C "$build/qemu" rev-parse base)
        if [ "$(git -C "$src" rev-parse HEAD 2>/dev/null)" != "$base" ]; then
            git -C "$build/qemu" worktree remove --force "$src" 2>/dev/null ||
                rm -rf "$src"
            git -C "$build/qemu" worktree prune
            git -C "$build/qemu" worktree add -q --detach "$src" base
        fi
    ) 9> "$build/ref/.tree-lock"
}

# device_set FILE SRC NAME: FILE as the device set NAME of the QEMU tree
# SRC (configs/devices/aarch64-softmmu/NAME.mak, untracked: configure
# takes a device set by name from there), written only when it changed,
# so that meson does not regenerate a build for a newer mtime alone
device_set() {
    local dst=$2/configs/devices/aarch64-softmmu/$3.mak
    cmp -s "$1" "$dst" || cp "$1" "$dst"
}
