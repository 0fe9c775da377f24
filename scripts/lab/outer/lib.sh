# Helpers for lab scenario files (busybox ash, sourced by the outer VM's /init before /lab/scenarios.sh).
#
#   scenario <name> <timeout-s> <command...>
#   scenario_input <name> <timeout-s> <input-text> <command...>
#
# A command given as ONE argument is a shell command string (eval'd); several arguments are an argv. Either
# may use the scenario file's functions. It runs in a background subshell, its stdout+stderr copied to the
# console (trailing CRs dropped) and to /tmp/lab/<name>/out, and the lab prints:
#   @@BEGIN <name>
#   ...its output...
#   @@INIT <name> ms=<wall ms from start to the first line holding GUEST-INIT>   (only when one appeared)
#   @@END <name> rc=<exit status; 124 when the timeout killed it> wall_ms=<wall ms>
# Times come from the outer VM's /proc/uptime (10 ms resolution). When the timeout kills a command the lab first
# prints "@@HUNG ..." per thread of it (state, syscall, wchan), and with LAB_TIMEOUT_RETRIES=n set it runs the
# scenario again, up to n more times, after "@@RETRY <name> attempt=<n>" (also when the guest triple-faulted).
#
# scenario_input types <input-text> into the command's stdin. It waits for an output line holding
# $LAB_INPUT_AFTER (default GUEST-SHELL; empty: no wait), for at most $LAB_INPUT_WAIT_MAX seconds if that is
# set, then $LAB_INPUT_SETTLE seconds (default 2), then writes the text a line at a time ("\n" escapes or real
# newlines separate lines), $LAB_INPUT_GAP seconds apart (default 2). stdin stays open until the command ends.
# Without input a command's stdin is /dev/null.
#
# After a scenario, LAB_LAST_RC holds its rc and /tmp/lab/<name>/out its output; lab_reached_init <name> tells
# whether it printed GUEST-INIT. lab_note <text> prints "@@NOTE <text>"; lab_now_ms sets LAB_NOW_MS.
# shellcheck shell=sh

LAB_TMP=${LAB_TMP:-/tmp/lab}

lab_now_ms() {
    read -r _lab_up _ </proc/uptime
    _lab_cs=${_lab_up#*.}
    # "12.05" -> 12050; the 1 prefix keeps "05" from reading as octal.
    LAB_NOW_MS=$((${_lab_up%.*} * 1000 + 1${_lab_cs} * 10 - 1000))
}

lab_note() {
    echo "@@NOTE $*"
}

# LAB_ONLY (an extended regex, set by the scenario file) runs only the scenarios whose names match: for working
# on a few scenarios without booting through all of them. LAB_SKIP (space-separated names) leaves out scenarios
# that an earlier outer boot already finished, when that boot died before the end.
_lab_selected() {
    case " ${LAB_SKIP:-} " in *" $1 "*) return 1 ;; esac
    [ -z "${LAB_ONLY:-}" ] || echo "$1" | grep -Eq "$LAB_ONLY"
}

scenario() {
    [ $# -ge 3 ] || { echo "@@NOTE usage: scenario <name> <timeout-s> <command...>"; return 2; }
    _lab_selected "$1" || return 0
    _lab_name=$1 _lab_limit=$2
    shift 2
    _lab_attempts "$_lab_name" "$_lab_limit" "" "$@"
}

scenario_input() {
    [ $# -ge 4 ] || { echo "@@NOTE usage: scenario_input <name> <timeout-s> <input-text> <command...>"; return 2; }
    _lab_selected "$1" || return 0
    _lab_name=$1 _lab_limit=$2 _lab_input=$3
    shift 3
    _lab_attempts "$_lab_name" "$_lab_limit" "$_lab_input" "$@"
}

# Runs a scenario, and again (up to $LAB_TIMEOUT_RETRIES more times, default 0) while its timeout kills it or its
# guest triple-faults. Each
# attempt gets its own @@BEGIN/@@END; "@@RETRY <name> attempt=<n>" precedes a rerun.
_lab_attempts() {  # _lab_attempts <name> <timeout-s> <input-text or empty> <command...>
    _lab_attempt=1
    while :; do
        _lab_scenario "$@"
        [ "$_lab_attempt" -le "${LAB_TIMEOUT_RETRIES:-0}" ] || return 0
        # A timeout, or a nested guest that triple-faulted (seen only under the lab's emulated SVM, at random
        # points of otherwise passing boots), earns a rerun; any other failure stands.
        [ "$LAB_LAST_RC" = 124 ] || grep -q 'guest triple fault' "$LAB_TMP/$1/out" 2>/dev/null || return 0
        _lab_attempt=$((_lab_attempt + 1))
        echo "@@RETRY $1 attempt=$_lab_attempt"
    done
}

# Copies the command's output (from a FIFO) to the console and to <dir>/out, line by line, dropping trailing
# CRs, and writes "<ms> <marker>" to <dir>/marks for the first line holding GUEST-INIT. Reading the clock here,
# per line, costs no extra processes while the VMM boots (polling the file would).
_lab_copy_output() {  # _lab_copy_output <dir>
    awk -v dir="$1" '
        function now_ms(   line, parts) {
            getline line < "/proc/uptime"
            close("/proc/uptime")
            split(line, parts, " ")
            return int(parts[1] * 1000 + 0.5)
        }
        {
            sub(/\r+$/, "")
            if (!seen_init && index($0, "GUEST-INIT")) {
                seen_init = 1
                print now_ms() " GUEST-INIT" > (dir "/marks")
                close(dir "/marks")
            }
            print
            fflush()
            print > (dir "/out")
            fflush(dir "/out")
        }' <"$1/o"
}

# Writes the input text to stdout (the command's stdin FIFO) as described above; returns when <dir>/done exists.
_lab_feed() {  # _lab_feed <dir> <input-text>
    if [ -n "${LAB_INPUT_AFTER-GUEST-SHELL}" ]; then
        _lab_polls=0
        until grep -q -- "${LAB_INPUT_AFTER-GUEST-SHELL}" "$1/out" 2>/dev/null; do
            [ -e "$1/done" ] && return 0
            if [ "${LAB_INPUT_WAIT_MAX:-0}" -gt 0 ] && [ "$_lab_polls" -ge $((LAB_INPUT_WAIT_MAX * 5)) ]; then
                echo "@@NOTE lab: no '${LAB_INPUT_AFTER-GUEST-SHELL}' after ${LAB_INPUT_WAIT_MAX}s; typing anyway" >&2
                break
            fi
            sleep 0.2
            _lab_polls=$((_lab_polls + 1))
        done
    fi
    sleep "${LAB_INPUT_SETTLE:-2}"
    printf '%b\n' "$2" | while IFS= read -r _lab_line; do
        [ -e "$1/done" ] && break
        printf '%s\n' "$_lab_line"
        sleep "${LAB_INPUT_GAP:-2}"
    done
    until [ -e "$1/done" ]; do sleep 0.2; done
}

# Kills the command and its descendants after <limit> seconds (TERM, then KILL up to 5 s later); leaves <dir>/timedout.
_lab_watchdog() {  # _lab_watchdog <dir> <pid> <limit-s>
    _lab_waited=0
    while [ "$_lab_waited" -lt "$3" ]; do
        sleep 1
        [ -e "$1/done" ] && return 0
        _lab_waited=$((_lab_waited + 1))
    done
    : >"$1/timedout"
    # The whole tree, listed before the first signal: orphans move to init and would drop out of it.
    _lab_victims=$(_lab_descendants "$2")
    _lab_thread_states $_lab_victims
    # shellcheck disable=SC2086
    kill -TERM $_lab_victims 2>/dev/null
    for _lab_i in 1 2 3 4 5; do
        kill -0 "$2" 2>/dev/null || break
        sleep 1
    done
    # shellcheck disable=SC2086
    kill -KILL $_lab_victims 2>/dev/null
}

# Prints "@@HUNG <pid>/<tid> <comm> state=<S> syscall=<nr or running> wchan=<symbol>" for every thread of the
# given processes: where a command stood when its timeout hit.
_lab_thread_states() {  # _lab_thread_states <pid>...
    for _lab_p in "$@"; do
        for _lab_t in /proc/"$_lab_p"/task/*; do
            [ -r "$_lab_t/stat" ] || continue
            read -r _lab_comm <"$_lab_t/comm" 2>/dev/null
            _lab_state=$(sed 's/.*) //; s/ .*//' "$_lab_t/stat" 2>/dev/null)
            read -r _lab_sys _ <"$_lab_t/syscall" 2>/dev/null
            read -r _lab_wchan <"$_lab_t/wchan" 2>/dev/null
            echo "@@HUNG $_lab_p/${_lab_t##*/} $_lab_comm state=$_lab_state syscall=${_lab_sys:-?} wchan=${_lab_wchan:-?}"
        done
    done
}

# Prints <pid> and the pids of all its descendants.
_lab_descendants() {  # _lab_descendants <pid>
    ps -o pid,ppid | awk -v root="$1" '
        NR > 1 { parent[$1] = $2 }
        END {
            print root
            found[root] = 1
            for (changed = 1; changed; ) {
                changed = 0
                for (p in parent)
                    if (!(p in found) && (parent[p] in found)) { found[p] = 1; changed = 1; print p }
            }
        }'
}

# One argument: a shell command string (it sees the scenario file's functions and variables); more: an argv.
_lab_command() {
    if [ -z "$1" ]; then
        echo "lab: empty command (an unset variable? \$VMM needs run.sh --vmm, \$QEMU needs --with-qemu)"
        return 127
    elif [ $# -eq 1 ]; then
        eval "$1"
    else
        "$@"
    fi
}

_lab_scenario() {  # _lab_scenario <name> <timeout-s> <input-text or empty> <command...>
    _lab_dir=$LAB_TMP/$1
    _lab_limit=$2 _lab_input=$3 _lab_name=$1
    shift 3
    rm -rf "$_lab_dir"
    mkdir -p "$_lab_dir"
    : >"$_lab_dir/out"
    mkfifo "$_lab_dir/o"

    echo "@@BEGIN $_lab_name"
    _lab_copy_output "$_lab_dir" &
    _lab_copy_pid=$!
    lab_now_ms
    _lab_start=$LAB_NOW_MS
    # A subshell rather than setsid: the command may be a function of the scenario file.
    if [ -n "$_lab_input" ]; then
        mkfifo "$_lab_dir/i"
        _lab_command "$@" <"$_lab_dir/i" >"$_lab_dir/o" 2>&1 &
        _lab_pid=$!
        _lab_feed "$_lab_dir" "$_lab_input" >"$_lab_dir/i" &
        _lab_feed_pid=$!
    else
        _lab_command "$@" </dev/null >"$_lab_dir/o" 2>&1 &
        _lab_pid=$!
        _lab_feed_pid=
    fi
    _lab_watchdog "$_lab_dir" "$_lab_pid" "$_lab_limit" 2>/dev/null &
    _lab_watchdog_pid=$!

    wait "$_lab_pid"
    _lab_rc=$?
    lab_now_ms
    _lab_wall=$((LAB_NOW_MS - _lab_start))
    : >"$_lab_dir/done"
    [ -e "$_lab_dir/timedout" ] && _lab_rc=124

    # The copier ends when every writer of the FIFO is gone; give strays (children the command left behind)
    # a moment, then stop waiting for them.
    (sleep 5; kill "$_lab_copy_pid") >/dev/null 2>&1 &
    _lab_reaper_pid=$!
    wait "$_lab_copy_pid" 2>/dev/null
    kill "$_lab_reaper_pid" 2>/dev/null
    [ -n "$_lab_feed_pid" ] && wait "$_lab_feed_pid" 2>/dev/null
    # After a timeout the watchdog still has to send KILL; otherwise it is only sleeping.
    [ -e "$_lab_dir/timedout" ] || kill "$_lab_watchdog_pid" 2>/dev/null
    wait "$_lab_watchdog_pid" 2>/dev/null

    if [ -s "$_lab_dir/marks" ]; then
        read -r _lab_init_at _ <"$_lab_dir/marks"
        echo "@@INIT $_lab_name ms=$((_lab_init_at - _lab_start))"
    fi
    echo "@@END $_lab_name rc=$_lab_rc wall_ms=$_lab_wall"
    # shellcheck disable=SC2034 # read by scenario files
    LAB_LAST_RC=$_lab_rc
    return 0
}

# True when the named scenario's output had a GUEST-INIT line.
lab_reached_init() {  # lab_reached_init <name>
    [ -s "$LAB_TMP/$1/marks" ]
}
