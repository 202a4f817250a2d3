# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=dash
# For the scenarios of the KVM layer (busybox sh).
QEMU=${QEMU:-/usr/bin/qemu-system-aarch64}

# now: the guest's uptime in seconds
now() {
    cut -d' ' -f1 /proc/uptime
}

# q NAME SECONDS ARGS...: run the inner QEMU with ARGS and QMP on its
# stdin and stdout, send qmp_capabilities, the commands in $QMP (one
# JSON object a line, each with an "id") and quit, and print
#   Q NAME out LINE    each line QEMU wrote to stdout (QMP)
#   Q NAME err LINE    each line of its stderr
#   Q NAME rc N        its exit status (137: killed after SECONDS)
#   Q NAME time S      how long it ran
# QEMU never waits on the console: its stdin is the pipe, and a QEMU
# that does not quit is killed.
q() {
    local name="$1" secs="$2" t0 rc
    shift 2
    t0=$(now)
    { echo '{"execute": "qmp_capabilities"}'
      [ -z "$QMP" ] || printf '%s\n' "$QMP"
      echo '{"execute": "quit"}'; } |
        timeout -s KILL "$secs" "$QEMU" "$@" -qmp stdio \
            >/tmp/q.out 2>/tmp/q.err
    rc=$?
    sed "s/^/Q $name out /" /tmp/q.out
    sed "s/^/Q $name err /" /tmp/q.err
    echo "Q $name rc $rc"
    echo "Q $name time $(awk "BEGIN { print $(now) - $t0 }")"
}

# scenario NAME: mark the start of a scenario (its time is taken from
# one mark to the next); "scenario end" closes the last one.
scenario() {
    echo "S $1 $(now)"
}

# g NAME SECONDS ARGS...: run the inner QEMU with ARGS and its serial
# console on stdout (no monitor) until the guest powers off, and print
# its output as q does (Q NAME out|err|rc|time); killed after SECONDS
# (status 137)
g() {
    local name="$1" secs="$2" t0 rc
    shift 2
    t0=$(now)
    timeout -s KILL "$secs" "$QEMU" "$@" -serial stdio -no-reboot \
        </dev/null >/tmp/q.out 2>/tmp/q.err
    rc=$?
    sed "s/^/Q $name out /" /tmp/q.out | tr -d '\r'
    sed "s/^/Q $name err /" /tmp/q.err
    echo "Q $name rc $rc"
    echo "Q $name time $(awk "BEGIN { print $(now) - $t0 }")"
}

# wfi_bios FILE: a firmware image whose only code is "wfi; b ." (the
# vCPU waits for interrupts forever): with -bios FILE the VM runs but
# does nothing
wfi_bios() {
    printf '\177\040\003\325\377\377\377\027' >"$1"
}

# until_ok SECONDS CMD...: run CMD every 0.1 s until it succeeds and
# print its output; or print TIMEOUT, status 2, after SECONDS
until_ok() {
    local t=0 n=$(($1 * 10))
    shift
    while [ "$t" -lt "$n" ]; do
        if "$@" >/tmp/until.out 2>/dev/null; then
            cat /tmp/until.out
            return 0
        fi
        sleep 0.1
        t=$((t + 1))
    done
    echo TIMEOUT
    return 2
}

# last_match FILE PATTERN: print the last line of FILE that matches the
# extended regular expression PATTERN; status 1 when none does
last_match() {
    grep -E "$2" "$1" | tail -n 1 | grep .
}
