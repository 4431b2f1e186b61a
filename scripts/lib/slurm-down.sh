#!/usr/bin/env bash
# slurm-down.sh -- stop what slurm-up.sh / slurm-up-multinode.sh started (by PID only).
#   - cancels jobs, kills leftover job processes found in our cgroups (/sys/fs/cgroup/freezer/slurm_<node>)
#   - stops slurmd(s) and slurmctld (pid files in $DEVCLUSTER_DIR/run)
#   - stops munged only if it was started by slurm-up.sh ($DEVCLUSTER_DIR/munge/munged.pid)
#     (SLURM_DOWN_KEEP_MUNGE=1 keeps it running)
#   - removes our (empty) cgroup dirs, state/, spool/, tmp/; keeps etc/ and log/
#   --purge also removes etc/ and log/ (scripts are kept)
set -uo pipefail
DEVCLUSTER_DIR=${DEVCLUSTER_DIR:-/var/lib/socker-mpi-devcluster}
RUN=$DEVCLUSTER_DIR/run; ETC=${SLURM_ETC:-/etc/slurm}; MUNGE_DIR=$DEVCLUSTER_DIR/munge
export SLURM_CONF=$ETC/slurm.conf
PURGE=0; [[ ${1:-} == --purge ]] && PURGE=1
info() { echo "slurm-down: $*"; }

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
pid_is() { alive "$1" && [[ "$(readlink /proc/"$1"/exe 2>/dev/null)" == *"$2"* ]]; }
stop_pid() {  # stop_pid <pid> <exe-substring> <name>
  local pid=$1 exe=$2 name=$3
  pid_is "$pid" "$exe" || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do pid_is "$pid" "$exe" || { info "stopped $name (pid $pid)"; return 0; }; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null; info "killed $name (pid $pid) with SIGKILL"
}

# node names we manage (from our slurm.conf)
NODES=()
if [[ -r $SLURM_CONF ]]; then
  while read -r n; do NODES+=("$n"); done < <(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' "$SLURM_CONF")
fi

# 1. cancel jobs while controller is still up
if pid_is "$(cat "$RUN"/slurmctld.pid 2>/dev/null)" slurmctld; then
  jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  if [[ -n ${jobs// } ]]; then
    info "cancelling jobs: $jobs"
    # shellcheck disable=SC2086  # a list of job ids, one argument each
    timeout 10 scancel $jobs 2>/dev/null
    for _ in $(seq 50); do [[ -z $(timeout 5 squeue -h -o %A 2>/dev/null) ]] && break; sleep 0.2; done
  fi
fi

# 2. kill leftover job processes (tasks + slurmstepd) living in our cgroups
kill_cg_procs() {
  local sig=$1 n c f p
  for n in "${NODES[@]}"; do
    for c in freezer memory cpuset; do
      [[ -d /sys/fs/cgroup/$c/slurm_$n ]] || continue
      # thaw frozen cgroups first so SIGKILL can be delivered
      [[ $c == freezer ]] && find /sys/fs/cgroup/freezer/slurm_"$n" -name freezer.state 2>/dev/null | while read -r f; do echo THAWED > "$f" 2>/dev/null; done
      find /sys/fs/cgroup/$c/slurm_"$n" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do
        [[ -n $p ]] && kill -"$sig" "$p" 2>/dev/null && echo "$p"
      done
    done
  done
}
left=$(kill_cg_procs TERM | sort -u | tr '\n' ' ')
if [[ -n ${left// } ]]; then
  info "SIGTERM to leftover job processes: $left"; sleep 1
  left=$(kill_cg_procs KILL | sort -u | tr '\n' ' '); [[ -n ${left// } ]] && { info "SIGKILL: $left"; sleep 0.5; }
fi

# 3. slurmd(s), then slurmctld
for f in "$RUN"/slurmd.*.pid; do
  [[ -e $f ]] || continue
  stop_pid "$(cat "$f" 2>/dev/null)" slurmd "slurmd[$(basename "$f" .pid | sed 's/^slurmd\.//')]"; rm -f "$f"
done
stop_pid "$(cat "$RUN"/slurmctld.pid 2>/dev/null)" slurmctld slurmctld; rm -f "$RUN/slurmctld.pid"

# 4. munged (only ours)
if [[ ${SLURM_DOWN_KEEP_MUNGE:-0} != 1 ]]; then
  mp=$(cat "$MUNGE_DIR/munged.pid" 2>/dev/null || true)
  if pid_is "$mp" munged; then stop_pid "$mp" munged munged; fi
  rm -f "$MUNGE_DIR/munged.pid"
fi

# 5. remove our cgroup directories (bottom-up; only empty ones can be removed anyway)
for n in "${NODES[@]}"; do
  for c in /sys/fs/cgroup/*/; do
    d=${c}slurm_$n; [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    [[ -d $d ]] && info "WARNING: could not remove $d"
  done
done

# 6. runtime dirs
rm -rf "$DEVCLUSTER_DIR/state" "$DEVCLUSTER_DIR/spool" "$DEVCLUSTER_DIR/tmp"
if [[ $PURGE -eq 1 ]]; then rm -rf "$ETC" "$DEVCLUSTER_DIR/log" "$RUN" "$MUNGE_DIR"; info "purged etc/ log/ run/ munge/"; fi

# report anything still alive
still=""
for f in "$RUN"/*.pid; do [[ -e $f ]] && alive "$(cat "$f")" && still+=" $(cat "$f")"; done
[[ -n $still ]] && { info "WARNING: still running:$still"; exit 1; }
info "done"
