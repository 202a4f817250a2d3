# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# Shared by the guest asset scripts (sourced): Debian packages of a
# foreign or native architecture, cached in a download folder.

# fetch_deb DL ARCH PKG: print the cached .deb of PKG for ARCH in DL,
# downloading it first if needed
fetch_deb() {
    local deb
    deb=$(ls "$1/$3"_*_"$2".deb 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$deb" ]; then
        (cd "$1" && apt-get download -q -o APT::Sandbox::User=root \
            "$3:$2") >&2
        deb=$(ls "$1/$3"_*_"$2".deb | sort -V | tail -n 1)
    fi
    echo "$deb"
}

# kernel_deb DL ARCH: print the .deb of Debian's kernel for ARCH
# (linux-image-ARCH is a metapackage: fetch the versioned image it names)
kernel_deb() {
    local pkg
    pkg=$(apt-cache depends "linux-image-$2:$2" |
          sed -n "s/^ *Depends: \(linux-image-[0-9][^:]*-$2\).*/\1/p" |
          head -n 1)
    if [ -z "$pkg" ]; then
        echo "cannot resolve linux-image-$2:$2 (is the $2 architecture" \
             "configured? run harness/setup-host.sh)" >&2
        return 1
    fi
    fetch_deb "$1" "$2" "$pkg"
}

# mkcpio DIR: write a newc cpio of DIR to stdout
mkcpio() {
    (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet)
}

# add_modules KDIR DEST NAME...: copy the kernel modules NAME... from the
# unpacked kernel package KDIR into DEST, with every module they depend
# on (each module's .modinfo "depends=", so no kmod is needed),
# decompressed (busybox's insmod reads no .ko.xz), and list them in
# DEST/order, dependencies first
add_modules() {
    local kdir=$1 dest=$2
    shift 2
    declare -A _done_mod=()
    _add_module() {
        local name=${1//-/_} f dep
        [ -z "${_done_mod[$name]:-}" ] || return 0
        _done_mod[$name]=1
        # under /usr/lib/modules with a merged /usr (trixie)
        f=$(find "$kdir" -regextype posix-extended \
                 -regex ".*/lib/modules/.*/${name//_/[-_]}\.ko(\.xz|\.zst)?" |
            head -n 1)
        if [ -z "$f" ]; then
            echo "module $1 not in the kernel package" >&2
            return 1
        fi
        case $f in
            *.xz) xz -dc "$f" > "$dest/$name.ko" ;;
            *.zst) zstd -qdc "$f" > "$dest/$name.ko" ;;
            *) cp "$f" "$dest/$name.ko" ;;
        esac
        for dep in $(tr '\0' '\n' < "$dest/$name.ko" |
                     sed -n 's/^depends=//p' | tr ',' ' '); do
            _add_module "$dep" || return 1
        done
        echo "$name" >> "$dest/order"
    }
    mkdir -p "$dest"
    : > "$dest/order"
    for m in "$@"; do
        _add_module "$m" || return 1
    done
}

# trixie TOOL ARGS...: apt-get or apt-cache on Debian trixie's arm64
# packages only, with its state under $TRIXIE_APT: the host's sources,
# status file and pins are not used, so that no other "apt-get download"
# picks a trixie package
trixie() {
    local a=$TRIXIE_APT tool=$1
    shift
    mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
    [ -f "$a/status" ] || : > "$a/status"
    echo "deb [arch=arm64" \
         "signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
         "http://deb.debian.org/debian trixie main" > "$a/sources.list"
    "$tool" -q -o Dir::Etc::SourceList="$a/sources.list" \
        -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::Etc::Preferences=/dev/null \
        -o Dir::Etc::PreferencesParts=/dev/null \
        -o Dir::State::Lists="$a/lists" -o Dir::State::status="$a/status" \
        -o Dir::Cache="$a/cache" -o APT::Architecture=arm64 \
        -o APT::Architectures::=arm64 -o Acquire::Languages=none \
        -o APT::Sandbox::User=root "$@"
}

# outer_root ROOT DL ARCH KDEB KERNEL LIBDIR MODULE...: the common part
# of an outer guest's assets (harness/kvm-assets.sh,
# harness/nested-assets.sh): the kernel of the package KDEB copied to
# KERNEL, and the initramfs tree ROOT: its directories, busybox-static
# of ARCH (its .deb kept in DL), KDEB's modules MODULE... with their
# dependencies in ROOT/lib/LIBDIR (add_modules) and the kernel's release
# in ROOT/lib/LIBDIR/release, and the shell libraries of
# harness/initramfs that every outer /init sources.  KDEB is unpacked
# into ROOT.k.
outer_root() {
    local root=$1 dl=$2 arch=$3 kdeb=$4 kernel=$5 libdir=$6
    shift 6
    dpkg-deb -x "$kdeb" "$root.k"
    cp "$root".k/boot/vmlinuz-* "$kernel.tmp"
    mv "$kernel.tmp" "$kernel"
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,sbin,usr/bin,usr/sbin} \
        "$root/lib/$libdir"
    dpkg-deb --fsys-tarfile "$(fetch_deb "$dl" "$arch" busybox-static)" |
        tar -x -C "$root" ./bin/busybox
    add_modules "$root.k" "$root/lib/$libdir" "$@"
    basename "$(find "$root.k" -path '*/lib/modules/*' -prune -type d |
                head -n 1)" > "$root/lib/$libdir/release"
    cp "$(dirname "${BASH_SOURCE[0]}")"/initramfs/{outer,qmp,edu}.sh \
        "$root/lib/"
}
