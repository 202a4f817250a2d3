# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=dash
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

# q_lines N: the complete lines QEMU N wrote to its QMP output so far
# (without a last line that has no newline yet)
q_lines() {
    if [ "$(tail -c 1 "/tmp/q$1/out" | od -An -tx1 | tr -d ' ')" = 0a ]
    then
        cat "/tmp/q$1/out"
    else
        sed '$d' "/tmp/q$1/out"
    fi
}

# q_cmd N COMMAND [ARGUMENTS_JSON]: send a command and print the reply
# line, or "EXIT status stderr" when QEMU exited first, or "TIMEOUT".
# Status 0 for a "return" reply, 1 for an "error" reply, 2 otherwise.
q_cmd() {
    local n=$1 d=/tmp/q$1 id t=0 line
    id=$(( $(cat "$d/id") + 1 ))
    echo "$id" >"$d/id"
    # shellcheck disable=SC2261 # >&"$n" is QEMU N's QMP input, not stderr
    echo "{\"execute\": \"$2\"${3:+, \"arguments\": $3}, \"id\": $id}" \
        2>/dev/null >&"$n"
    while [ "$t" -lt $((QMP_TIMEOUT * 10)) ]; do
        # complete lines only: QEMU may be half way through writing the
        # reply, and "id" can come before "error" in it
        line=$(q_lines "$n" | grep -E "\"id\": ${id}[,}]")
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
    # shellcheck disable=SC3045 # busybox's read has -t
    if ! read -t 30 -r line <&8; then
        echo TIMEOUT
        return 2
    fi
    echo "$line"
    case $line in OK*) return 0 ;; esac
    return 1
}

# q_locked N: the memory QEMU N has pinned for DMA, in kB: VmLck, where
# VFIO's type1 container counts it, plus VmPin, where iommufd does (our
# QEMUs lock nothing else)
q_locked() {
    awk '/^Vm(Lck|Pin):/ { kb += $2 } END { print kb + 0 }' \
        "/proc/$(cat "/tmp/q$1/pid")/status"
}

# q_err N: QEMU's stderr on one line.
q_err() {
    tr '\n' '|' <"/tmp/q$1/err"
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
