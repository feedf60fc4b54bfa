#!/usr/bin/env bash
# Stop the test cluster started by tests/slurm/start_cluster.sh and remove what it placed.
#
# Usage: tests/slurm/stop_cluster.sh [STATE_DIR]
#
# Without STATE_DIR the state directory named in our /etc/slurm/slurm.conf is used. Cancels the
# cluster's jobs, stops slurmd, slurmctld and munged by the PIDs in their pid files (only if the
# process with that PID really is that daemon), removes /etc/slurm/slurm.conf if it is ours (and
# /etc/slurm if start_cluster.sh created it) and deletes STATE_DIR. Safe to run twice and after a
# crash.
set -euo pipefail

readonly CONF=/etc/slurm/slurm.conf
readonly MARKER="lenet-cpp-test-cluster"

log() { echo "stop_cluster: $*" >&2; }

conf_is_ours() {
    [[ -f $CONF ]] && grep -qx "# $MARKER state_dir=$STATE_DIR" "$CONF"
}

cancel_jobs() {
    conf_is_ours || return 0
    timeout 10 scancel --full --quiet --user=root >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 15))
    while ((SECONDS < deadline)); do
        [[ -z $(timeout 10 squeue --noheader --states=RUNNING,COMPLETING,PENDING \
            --format=%i 2>/dev/null) ]] && return 0
        sleep 0.5
    done
    log "jobs still listed after cancelling them"
}

# stop_daemon NAME PIDFILE: SIGTERM, then SIGKILL after 15 s, the process named in PIDFILE.
stop_daemon() {
    local name=$1 pidfile=$2 pid comm
    [[ -f $pidfile ]] || return 0
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid ]] || return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    if [[ $comm != "$name" ]]; then
        [[ -z $comm ]] || log "pid $pid in $pidfile is '$comm', not $name: leaving it alone"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || return 0
    local deadline=$((SECONDS + 15))
    while [[ -d /proc/$pid ]] && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if [[ -d /proc/$pid ]]; then
        log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
}

remove_placed_files() {
    if conf_is_ours; then
        rm -f "$CONF"
        log "removed $CONF"
    fi
    if [[ -f $STATE_DIR/created_etc_slurm ]]; then
        rmdir /etc/slurm 2>/dev/null || log "/etc/slurm not empty; left in place"
    fi
    if [[ -f $STATE_DIR/.lenet-slurm-state ]]; then
        rm -rf "$STATE_DIR"
    elif [[ -d $STATE_DIR ]]; then
        log "$STATE_DIR has no .lenet-slurm-state marker; not deleting it"
    fi
}

main() {
    if [[ $# -ge 1 && -n $1 ]]; then
        STATE_DIR=$(realpath -m "$1")
    elif [[ -f $CONF ]] && grep -q "^# $MARKER state_dir=" "$CONF"; then
        STATE_DIR=$(sed -n "s/^# $MARKER state_dir=//p" "$CONF" | head -n 1)
    else
        log "no state dir given and no test cluster configuration in $CONF; nothing to do"
        exit 0
    fi
    cancel_jobs
    stop_daemon slurmd "$STATE_DIR/slurm/slurmd.pid"
    stop_daemon slurmctld "$STATE_DIR/slurm/slurmctld.pid"
    stop_daemon munged "$STATE_DIR/munge/munged.pid"
    remove_placed_files
}

main "$@"
