#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the x86_64 guest for the nested VFIO test (tests/vfio/): an
# x86_64 guest under TCG with an emulated IOMMU binds QEMU's "edu" PCI
# device to vfio-pci and runs our qemu-system-aarch64 inside.
#
#   BUILD_DIR/nested/vmlinuz-amd64            Debian's kernel
#   BUILD_DIR/nested/initramfs-base.cpio.gz   busybox, vfio modules, /init,
#                                             /lib/qmp.sh
#   BUILD_DIR/nested/qemu.cpio                QEMU_BINARY (default
#                                             BUILD_DIR/qemu-system-aarch64),
#                                             the memmap-plan next to it,
#                                             and their shared libraries,
#                                             /usr/lib/nested/no-iova-caps.so
#                                             (tests/vfio/no-iova-caps.c)
#
# /init runs /scenario.sh, which harness/nestedlib.py adds as a third
# cpio (the kernel takes concatenated archives).  The .debs are kept in
# BUILD_DIR/nested/dl, so reruns need no network.  Outputs are rebuilt
# only when missing or stale (the base when this script is newer, the
# QEMU cpio when the binary changed).
# Usage: nested-assets.sh BUILD_DIR [QEMU_BINARY]
set -euo pipefail

build=$(realpath -m "$1")
nested=$build/nested
dl=$nested/dl
qemu=$(realpath "${2:-$build/qemu-system-aarch64}")
planner=$(realpath "$(dirname "${2:-$build/qemu-system-aarch64}")/memmap-plan")
kernel=$nested/vmlinuz-amd64
base=$nested/initramfs-base.cpio.gz
qcpio=$nested/qemu.cpio
modules="irqbypass vfio vfio_iommu_type1 vfio_virqfd vfio-pci-core vfio-pci"
mkdir -p "$dl"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "${BASH_SOURCE[0]}")/debs.sh"

# The kernel package: linux-image-amd64 is a metapackage.
kdeb=$(ls "$dl"/linux-image-*-amd64_*_amd64.deb 2>/dev/null | tail -n 1 ||
       true)
if [ -z "$kdeb" ]; then
    kdeb=$(kernel_deb "$dl" amd64)
fi

if [ ! -f "$kernel" ] || [ ! -f "$base" ] ||
   [ "${BASH_SOURCE[0]}" -nt "$base" ]; then
    dpkg-deb -x "$kdeb" "$tmp/k"
    cp "$tmp"/k/boot/vmlinuz-* "$kernel.tmp"
    mv "$kernel.tmp" "$kernel"

    root=$tmp/root
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,sbin,usr/bin,usr/sbin,lib/nested}
    dpkg-deb --fsys-tarfile "$(fetch_deb "$dl" amd64 busybox-static)" |
        tar -x -C "$root" ./bin/busybox

    # The modules and their dependencies (from each module's .modinfo,
    # so no kmod is needed), dependencies first, in /lib/nested/order.
    declare -A done_mod=()
    add_module() {
        local name=${1//-/_} f dep
        [ -z "${done_mod[$name]:-}" ] || return 0
        done_mod[$name]=1
        f=$(find "$tmp"/k/lib/modules -regextype posix-extended \
                 -regex ".*/${name//_/[-_]}\.ko(\.xz|\.zst)?" | head -n 1)
        if [ -z "$f" ]; then
            echo "nested-assets.sh: module $1 not in $kdeb" >&2
            exit 1
        fi
        case $f in
            *.xz) xz -dc "$f" > "$root/lib/nested/$name.ko" ;;
            *.zst) zstd -qdc "$f" > "$root/lib/nested/$name.ko" ;;
            *) cp "$f" "$root/lib/nested/$name.ko" ;;
        esac
        for dep in $(tr '\0' '\n' < "$root/lib/nested/$name.ko" |
                     sed -n 's/^depends=//p' | tr ',' ' '); do
            add_module "$dep"
        done
        echo "$name" >> "$root/lib/nested/order"
    }
    for m in $modules; do
        add_module "$m"
    done

    cat > "$root/lib/qmp.sh" <<'EOF'
# SPDX-License-Identifier: GPL-2.0-or-later
# Drive inner QEMUs over QMP from busybox sh.  Instance N (a digit 3-9,
# also the shell's fd that writes its QMP input) keeps its files in
# /tmp/qN: in (FIFO, QMP on stdio), out, err, pid, rc (exit status),
# and qt.in, qt.out (FIFOs for "-qtest pipe:/tmp/qN/qt", see qt_open).
QEMU=${QEMU:-/usr/bin/qemu-system-aarch64}
QMP_TIMEOUT=${QMP_TIMEOUT:-120}
trap '' PIPE

# q_start N ARGS...: start QEMU and negotiate QMP; prints and returns
# as q_cmd.  Not in a subshell ($(...)): it opens fd N in this shell.
q_start() {
    local n=$1 d=/tmp/q$1
    shift
    rm -rf "$d" && mkdir -p "$d" && mkfifo "$d/in" "$d/qt.in" "$d/qt.out"
    ( "$QEMU" "$@" -qmp stdio <"$d/in" >"$d/out" 2>"$d/err" &
      echo $! >"$d/pid"; wait $!; echo $? >"$d/rc" ) &
    eval "exec $n>$d/in"
    echo 0 >"$d/id"
    q_cmd "$n" qmp_capabilities
}

# q_cmd N COMMAND [ARGUMENTS_JSON]: send a command and print the reply
# line, or "EXIT status stderr" when QEMU exited first, or "TIMEOUT".
# Status 0 for a "return" reply, 1 for an "error" reply, 2 otherwise.
q_cmd() {
    local n=$1 d=/tmp/q$1 id t=0 line
    id=$(( $(cat "$d/id") + 1 ))
    echo "$id" >"$d/id"
    echo "{\"execute\": \"$2\"${3:+, \"arguments\": $3}, \"id\": $id}" \
        2>/dev/null >&"$n"
    while [ "$t" -lt $((QMP_TIMEOUT * 10)) ]; do
        line=$(grep -E "\"id\": $id[,}]" "$d/out")
        if [ -n "$line" ]; then
            echo "$line"
            case $line in *'"return"'*) return 0 ;; esac
            return 1
        fi
        if [ -f "$d/rc" ]; then
            echo "EXIT $(cat "$d/rc") $(q_err "$n")"
            return 2
        fi
        sleep 0.1
        t=$((t + 1))
    done
    echo TIMEOUT
    return 2
}

# q_wait N [SECONDS]: wait for QEMU to exit and print its exit status;
# or print TIMEOUT, status 2.
q_wait() {
    local d=/tmp/q$1 t=0
    while [ ! -f "$d/rc" ]; do
        if [ "$t" -ge $((${2:-$QMP_TIMEOUT} * 10)) ]; then
            echo TIMEOUT
            return 2
        fi
        sleep 0.1
        t=$((t + 1))
    done
    cat "$d/rc"
}

# q_stop N: quit QEMU (kill it if it does not quit) and close its fd.
# Status 1 when QEMU had to be killed.
q_stop() {
    local d=/tmp/q$1 rc=0
    [ -f "$d/rc" ] || q_cmd "$1" quit >/dev/null
    if [ "$(q_wait "$1" 10)" = TIMEOUT ]; then
        echo "QEMU $1 did not quit: killed" >&2
        kill -9 "$(cat "$d/pid")"
        q_wait "$1" 10 >/dev/null
        rc=1
    fi
    eval "exec $1>&-"
    return $rc
}

# q_rss N, q_fds N: QEMU's resident anonymous memory (RssAnon, kB: its
# heap, not the file pages of its binary and libraries, which reclaim
# can take back) and its number of open file descriptors.
q_rss() {
    awk '/^RssAnon:/ { print $2 }' "/proc/$(cat "/tmp/q$1/pid")/status"
}
q_fds() {
    ls "/proc/$(cat "/tmp/q$1/pid")/fd" | wc -l
}

# qt_open N: talk to QEMU N's qtest protocol (it was started with
# "-qtest pipe:/tmp/qN/qt") on fds 7 and 8; qt_close closes them.
# qt COMMAND...: send one qtest command, print the reply line; status 0
# for "OK ...", 1 for another reply, 2 for none within 30 s.
qt_open() {
    exec 7>"/tmp/q$1/qt.in" 8<"/tmp/q$1/qt.out"
}
qt_close() {
    exec 7>&- 8<&-
}
qt() {
    local line
    echo "$*" >&7
    if ! read -t 30 -r line <&8; then
        echo TIMEOUT
        return 2
    fi
    echo "$line"
    case $line in OK*) return 0 ;; esac
    return 1
}

# q_locked N: QEMU's locked memory (VmLck, where type1 counts what it
# pins), in kB.
q_locked() {
    awk '/^VmLck:/ { print $2 }' "/proc/$(cat "/tmp/q$1/pid")/status"
}

# q_err N: QEMU's stderr on one line.
q_err() {
    tr '\n' '|' <"/tmp/q$1/err"
}
EOF

    cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
dmesg -n 1
echo "=== NESTED-BEGIN ==="
setup() {
    for m in $(cat /lib/nested/order); do
        if ! insmod "/lib/nested/$m.ko"; then
            echo "I insmod $m failed"
            return 1
        fi
    done
    sysctl -w vm.overcommit_memory=1 >/dev/null
    # every edu device, bound to vfio-pci: HOST, GROUP for the first,
    # HOST2, GROUP2 for the second (if there is one)
    n=0
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1234:0x11e8 ] ||
            continue
        h=${d##*/}
        echo vfio-pci >"$d/driver_override"
        echo "$h" >/sys/bus/pci/drivers_probe
        if [ "$(basename "$(readlink "$d/driver")")" != vfio-pci ]; then
            echo "I $h not bound to vfio-pci"
            return 1
        fi
        g=$(basename "$(readlink "$d/iommu_group")")
        n=$((n + 1))
        s=${n#1}
        echo "I host$s $h group $g"
        sed "s/^/I reserved_regions$s /" \
            "/sys/kernel/iommu_groups/$g/reserved_regions"
        eval "HOST$s=$h GROUP$s=$g"
    done
    [ "$n" -gt 0 ] || { echo "I no edu device (1234:11e8)"; return 1; }
    export HOST GROUP HOST2 GROUP2
}
if setup; then
    sh /scenario.sh 2>&1
    echo "=== NESTED-END $? ==="
else
    echo "=== NESTED-END setup ==="
fi
poweroff -f
EOF
    chmod 755 "$root/init"
    mkcpio "$root" | gzip -9 > "$base.tmp"
    mv "$base.tmp" "$base"
fi

# QEMU and the memmap-plan next to it, their libraries and the dynamic
# loader at their host paths.
shim=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../tests/vfio/no-iova-caps.c")
stamp=$(stat -L -c '%n %s %Y' "$qemu" "$planner" "$shim")
if [ ! -f "$qcpio" ] || [ "$(cat "$qcpio.stamp" 2>/dev/null)" != "$stamp" ]
then
    root=$tmp/qroot
    mkdir -p "$root/usr/bin"
    strip -o "$root/usr/bin/qemu-system-aarch64" "$qemu"
    strip -o "$root/usr/bin/memmap-plan" "$planner"
    # a kernel before 5.4 for one scenario (LD_PRELOAD): no IOVA ranges
    mkdir -p "$root/usr/lib/nested"
    gcc -O2 -Wall -Werror -shared -fPIC -o "$root/usr/lib/nested/no-iova-caps.so" \
        "$shim" -ldl
    for lib in $( (ldd "$qemu"; ldd "$planner") | grep -o '/[^ ]*' | sort -u); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    mkcpio "$root" > "$qcpio.tmp"
    mv "$qcpio.tmp" "$qcpio"
    echo "$stamp" > "$qcpio.stamp"
fi
