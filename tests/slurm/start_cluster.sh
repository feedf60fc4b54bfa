#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster (munged, slurmctld, slurmd) on this machine.
#
# Usage: tests/slurm/start_cluster.sh STATE_DIR
#
# Everything except the SLURM configuration lives in STATE_DIR (munge key, socket, pid, log and
# seed files; slurmctld state; slurmd spool; daemon logs and pid files). The configuration must
# be at /etc/slurm/slurm.conf because the executor plugin's job step drops SLURM_CONF; it carries
# a marker line naming STATE_DIR so that tests/slurm/stop_cluster.sh (and a later start after a
# crash) can recognise it as ours. An /etc/slurm/slurm.conf that is not ours is never touched.
#
# Needs root and the Debian packages slurm-wlm (or slurmctld + slurmd + slurm-client) and munge.
# Exit status: 0 once `sinfo` shows the node idle; 2 when it cannot run here (reason on stderr);
# 1 when a daemon failed to start (everything started so far is stopped again).
# The cluster belongs to LENET_SLURM_OWNER_PID (default: the calling process). A configuration
# left by an owner that no longer runs is cleaned up first; one whose owner still runs makes this
# script exit 2, so two test sessions never stop each other's cluster.
# Environment: LENET_SLURM_CTLD_PORT / LENET_SLURM_SLURMD_PORT (default 6817 / 6818),
# LENET_SLURM_START_TIMEOUT (seconds to wait for an idle node, default 60).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly CONF=/etc/slurm/slurm.conf
readonly MARKER="lenet-cpp-test-cluster"
readonly REQUIRED_COMMANDS=(munged mungekey munge unmunge runuser slurmctld slurmd sinfo scontrol
    squeue sbatch srun scancel)

log() { echo "start_cluster: $*" >&2; }
cannot_run() {
    log "cannot run: $*"
    exit 2
}

check_prerequisites() {
    [[ $(id -u) -eq 0 ]] || cannot_run "must run as root (slurmd runs jobs as root)"
    local missing=() cmd
    for cmd in "${REQUIRED_COMMANDS[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    [[ ${#missing[@]} -eq 0 ]] ||
        cannot_run "missing commands: ${missing[*]} (apt-get install slurm-wlm munge)"
    id munge >/dev/null 2>&1 || cannot_run "no 'munge' user (apt-get install munge)"
}

# A configuration left behind by a crashed run of ours is cleaned up; a foreign one stops us.
handle_existing_conf() {
    [[ -e $CONF ]] || return 0
    if ! grep -q "^# $MARKER " "$CONF"; then
        cannot_run "$CONF exists and was not written by this script; not overwriting it"
    fi
    local stale owner
    stale=$(sed -n "s/^# $MARKER state_dir=//p" "$CONF" | head -n 1)
    owner=$(tr -dc '0-9' 2>/dev/null <"$stale/owner.pid" || true)
    if [[ -n $owner && -d /proc/$owner ]]; then
        cannot_run "a test cluster started for pid $owner is in use (state dir $stale);" \
            "stop it with $HERE/stop_cluster.sh $stale"
    fi
    log "found a test cluster left by a run that has ended (state dir $stale); stopping it first"
    "$HERE/stop_cluster.sh" "$stale"
    [[ ! -e $CONF ]] || cannot_run "could not remove the stale $CONF"
}

prepare_state_dir() {
    mkdir -p "$STATE_DIR"
    [[ -z $(ls -A "$STATE_DIR") ]] || cannot_run "state dir $STATE_DIR is not empty"
    # munged runs as the munge user and must be able to traverse into its directory.
    chmod 0755 "$STATE_DIR"
    touch "$STATE_DIR/.lenet-slurm-state"
    echo "$OWNER_PID" >"$STATE_DIR/owner.pid"
    mkdir -p "$STATE_DIR/munge" "$STATE_DIR/slurm/ctld" "$STATE_DIR/slurm/d"
    chown munge:munge "$STATE_DIR/munge"
    chmod 0755 "$STATE_DIR/munge"
}

start_munged() {
    local dir=$STATE_DIR/munge
    runuser -u munge -- mungekey --create --keyfile="$dir/munge.key"
    runuser -u munge -- munged --key-file="$dir/munge.key" --socket="$dir/munge.socket.2" \
        --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munged.seed"
    wait_for "munged to answer" 10 munge_works
}

munge_works() {
    local socket=$STATE_DIR/munge/munge.socket.2
    munge -n -S "$socket" 2>/dev/null | unmunge -S "$socket" >/dev/null 2>&1
}

total_memory_mb() {
    awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo
}

write_conf() {
    if [[ ! -d /etc/slurm ]]; then
        mkdir -p /etc/slurm
        touch "$STATE_DIR/created_etc_slurm"
    fi
    local node
    node=$(hostname -s)
    sed -e "s|@MARKER@|$MARKER|g" \
        -e "s|@STATE_DIR@|$STATE_DIR|g" \
        -e "s|@NODE@|$node|g" \
        -e "s|@CTLD_PORT@|${LENET_SLURM_CTLD_PORT:-6817}|g" \
        -e "s|@SLURMD_PORT@|${LENET_SLURM_SLURMD_PORT:-6818}|g" \
        -e "s|@CPUS@|2|g" \
        -e "s|@MEM_MB@|$(total_memory_mb)|g" \
        "$HERE/slurm.conf.in" >"$CONF.lenet-tmp"
    mv "$CONF.lenet-tmp" "$CONF"
}

node_idle() {
    [[ $(sinfo --noheader --Node --format=%t 2>/dev/null) == idle ]]
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND every 0.5 s until it succeeds.
wait_for() {
    local what=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${seconds}s waiting for $what"
            return 1
        fi
        sleep 0.5
    done
}

show_logs() {
    local f
    for f in "$STATE_DIR/munge/munged.log" "$STATE_DIR/slurm/slurmctld.log" \
        "$STATE_DIR/slurm/slurmd.log"; do
        [[ -f $f ]] || continue
        log "---- last lines of $f"
        tail -n 20 "$f" >&2
    done
}

on_exit() {
    local status=$?
    if [[ $status -ne 0 && $status -ne 2 && -n ${STARTED:-} ]]; then
        show_logs
        log "start failed; stopping what was started"
        "$HERE/stop_cluster.sh" "$STATE_DIR" || true
    fi
    exit "$status"
}

main() {
    [[ $# -eq 1 && -n $1 ]] || {
        echo "usage: $0 STATE_DIR" >&2
        exit 64
    }
    STATE_DIR=$(realpath -m "$1")
    OWNER_PID=${LENET_SLURM_OWNER_PID:-$PPID}
    check_prerequisites
    handle_existing_conf
    prepare_state_dir
    STARTED=1
    trap on_exit EXIT
    start_munged
    write_conf
    slurmctld -i
    wait_for "slurmctld to answer" 30 scontrol ping >/dev/null
    slurmd
    wait_for "node $(hostname -s) to become idle" "${LENET_SLURM_START_TIMEOUT:-60}" node_idle
    log "cluster up: $(sinfo --noheader --format='%P %a %D %t %N')"
}

main "$@"
