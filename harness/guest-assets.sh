#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the arm64 guest for the memmap boot tests from Debian packages:
# BUILD_DIR/guest/vmlinuz-arm64 (Debian's kernel) and
# BUILD_DIR/guest/initramfs-arm64.cpio.gz (static busybox plus an /init
# that prints the guest's view of memory between marker lines and powers
# off).  With memmap.test=pattern on the kernel command line, /init runs
# the pattern mode instead (/pattern below, for the migration tests):
# it fills a tmpfs with memmap.pattern_mib (default 64) blocks of 1 MiB,
# block N being the 32-byte line "memmap test pattern block NNNNN"
# repeated, and then checks them forever, one console line per pass.
# With memmap.test=edu-dma, /init runs /edu-dma instead (for the VFIO
# scenarios of the KVM layer): it drives the DMA engine of QEMU's "edu"
# device (1234:11e8, an assigned one) through /dev/mem, copying 8 bytes
# from guest RAM at memmap.edu_buf (above what mem= gives the kernel,
# so that /dev/mem may touch it) into the device and back to
# memmap.edu_buf + 4 KiB, and prints "MEMMAP-EDU ..." lines.
# The .debs are kept in BUILD_DIR/guest/dl, so reruns need no network;
# an output is rebuilt only when it is missing (the initramfs also when
# this script is newer than it).
# Usage: guest-assets.sh BUILD_DIR
set -euo pipefail

guest=$(realpath -m "$1")/guest
dl=$guest/dl
kernel=$guest/vmlinuz-arm64
initrd=$guest/initramfs-arm64.cpio.gz
mkdir -p "$dl"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. "$(dirname "${BASH_SOURCE[0]}")/debs.sh"

# Extract the files matching glob $2 from .deb $1 into directory $3.
extract() {
    mkdir -p "$3"
    dpkg-deb --fsys-tarfile "$1" | tar -x -C "$3" --wildcards "$2"
}

if [ ! -f "$kernel" ]; then
    deb=$(kernel_deb "$dl" arm64)
    extract "$deb" './boot/vmlinuz-*' "$tmp/kernel"
    cp "$tmp"/kernel/boot/vmlinuz-* "$kernel.tmp"
    mv "$kernel.tmp" "$kernel"
fi

if [ ! -f "$initrd" ] || [ "${BASH_SOURCE[0]}" -nt "$initrd" ]; then
    root=$tmp/root
    extract "$(fetch_deb "$dl" arm64 busybox-static)" ./bin/busybox "$root"
    mkdir -p "$root"/{dev,proc,sys,sbin,usr/bin,usr/sbin,lib}
    # The device tree's memory nodes, one "dt: memory@... reg=<hex>
    # [node=<hex>]" line each; also for the initramfs of
    # harness/firmware-assets.sh, which is laid over this one
    cat > "$root/lib/memmap-dt.sh" <<'EOF'
print_dt_memory() {
    for d in /proc/device-tree/memory@*; do
        [ -d "$d" ] || continue
        line="dt: ${d##*/} reg=$(hexdump -v -e '/1 "%02x"' "$d/reg")"
        if [ -e "$d/numa-node-id" ]; then
            line="$line node=$(hexdump -v -e '/1 "%02x"' "$d/numa-node-id")"
        fi
        echo "$line"
    done
}
EOF
    cat > "$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
dmesg -n 1
case " $(cat /proc/cmdline) " in
*" memmap.test=pattern "*) exec /pattern ;;
*" memmap.test=edu-dma "*) exec /edu-dma ;;
esac
echo "=== MEMMAP-GUEST-BEGIN ==="
grep '^[^ ].* : System RAM$' /proc/iomem | sed 's/^/iomem: /'
. /lib/memmap-dt.sh
print_dt_memory
dmesg | awk '/Early memory node ranges/ { f = 1; next }
             f && /node +[0-9]+: \[mem / {
                 print "numa: " substr($0, index($0, "node")); next }
             f { exit }'
echo "=== MEMMAP-GUEST-END ==="
# the console sends what was written before the kernel's last message:
# stty sets its mode (unchanged) only once the output drained (TCSETSW)
stty onlcr 2>/dev/null
poweroff -f
EOF
    # Pattern mode.  Lines: "MEMMAP-PATTERN ready blocks=N digest=D",
    # then "MEMMAP-PATTERN check K ok digest=D" per pass, or "... check K
    # FAIL digest=D blocks=LIST" naming the blocks that changed.  D is the
    # md5 of the md5sum listing ("<md5>  NNNNN" per block, in name order),
    # so the host can compute it too.
    cat > "$root/pattern" <<'EOF'
#!/bin/busybox sh
mib=64
for arg in $(cat /proc/cmdline); do
    case $arg in memmap.pattern_mib=*) mib=${arg#*=} ;; esac
done
say() { echo "MEMMAP-PATTERN $* t=$(cut -d' ' -f1 /proc/uptime)"; }
mkdir -p /pat
mount -t tmpfs -o size=$((mib + 8))m tmpfs /pat
say "writing blocks=$mib"
# 16 KiB of 32-byte lines built in the shell, then 64 copies by one cat
# (measured under TCG: 40 ms a block; yes | head takes ten times more)
x16="/p16k /p16k /p16k /p16k /p16k /p16k /p16k /p16k"
x16="$x16 $x16"
i=0
while [ $i -lt "$mib" ]; do
    name=$((100000 + i))
    name=${name#1}
    lines="memmap test pattern block $name
"
    for k in 1 2 3 4 5 6 7 8 9; do lines=$lines$lines; done
    printf %s "$lines" > /p16k
    cat $x16 $x16 $x16 $x16 > /pat/$name || break
    i=$((i + 1))
done
rm -f /p16k
if [ $i -ne "$mib" ]; then
    say "FAIL writing block $i"
    while :; do sleep 3600; done
fi
cd /pat
md5sum * > /ref.md5
say "ready blocks=$mib digest=$(md5sum < /ref.md5 | cut -d' ' -f1)"
n=0
while :; do
    n=$((n + 1))
    md5sum * > /now.md5
    digest=$(md5sum < /now.md5 | cut -d' ' -f1)
    if cmp -s /ref.md5 /now.md5; then
        say "check $n ok digest=$digest"
    else
        bad=$(awk 'NR == FNR { ref[$2] = $1; next }
                   ref[$2] != $1 { printf "%s%s", s, $2; s = "," }' \
              /ref.md5 /now.md5)
        say "check $n FAIL digest=$digest blocks=$bad"
    fi
done
EOF
    cat > "$root/edu-dma" <<'EOF'
#!/bin/busybox sh
say() { echo "MEMMAP-EDU $*"; }
buf=
for arg in $(cat /proc/cmdline); do
    case $arg in memmap.edu_buf=*) buf=${arg#*=} ;; esac
done
# edu_dma SRC DST CMD: one 8-byte transfer (registers 0x80 source, 0x88
# destination, 0x90 count, 0x98 command: bit 0 start, bit 1 from the
# device to RAM); wait until the device clears bit 0
edu_dma() {
    local i=0
    devmem $((bar + 0x80)) 64 "$1"
    devmem $((bar + 0x88)) 64 "$2"
    devmem $((bar + 0x90)) 64 8
    devmem $((bar + 0x98)) 64 "$3"
    while [ $(($(devmem $((bar + 0x98)) 64) & 1)) = 1 ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || { say "timeout cmd=$3"; return 1; }
        sleep 0.1
    done
}
run() {
    local d e=
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1234:0x11e8 ] &&
            e=$d
    done
    d=$e
    [ -n "$d" ] || { say "no edu device"; return 1; }
    [ -n "$buf" ] || { say "no memmap.edu_buf"; return 1; }
    bar=$(($(head -n 1 "$d/resource" | cut -d' ' -f1)))
    # memory space and bus master on (command register)
    printf '\006\000' | dd of="$d/config" bs=1 seek=4 count=2 \
        conv=notrunc 2>/dev/null
    say "device ${d##*/} bar $(printf 0x%x $bar) buf $buf"
    say "ident $(devmem $bar 32)"
    devmem "$buf" 64 0x1122334455667788
    devmem $((buf + 4096)) 64 0
    edu_dma "$buf" 0x40000 1 && edu_dma 0x40000 $((buf + 4096)) 3 ||
        return 1
    say "result $(devmem $((buf + 4096)) 64)"
}
run || say "failed"
# the console sends what was written before the kernel's last message:
# stty sets its mode (unchanged) only once the output drained (TCSETSW)
stty onlcr 2>/dev/null
poweroff -f
EOF
    chmod 755 "$root/init" "$root/pattern" "$root/edu-dma"
    mkcpio "$root" | gzip -9 > "$initrd.tmp.$$"
    mv "$initrd.tmp.$$" "$initrd"
fi
