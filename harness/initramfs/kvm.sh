# SPDX-License-Identifier: GPL-2.0-or-later
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
    local name=$1 secs=$2 t0 rc
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
    local name=$1 secs=$2 t0 rc
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

# r KEY CMD...: run CMD (in this shell: q_start must not run in a
# subshell) and print "R KEY output" (its output on one line); a CMD
# that got no answer (status 2: QEMU gone, a timeout) is printed as an
# "E" line and counted in $errors, the scenario's exit status
errors=0
r() {
    local k=$1 s
    shift
    "$@" >/tmp/r.out
    s=$?
    echo "R $k $(tr '\n' ' ' </tmp/r.out | sed 's/ $//')"
    if [ "$s" -ge 2 ]; then
        echo "E $k: no answer (status $s)"
        errors=$((errors + 1))
    fi
}

# wait_for FILE PATTERN SECONDS: wait until a line of FILE matches the
# extended regular expression PATTERN; print it, or TIMEOUT (status 2)
wait_for() {
    local t=0
    while [ "$t" -lt $(($3 * 10)) ]; do
        if grep -E "$2" "$1" 2>/dev/null | tail -n 1 | grep .; then
            return 0
        fi
        sleep 0.1
        t=$((t + 1))
    done
    echo TIMEOUT
    return 2
}
