#!/usr/bin/env bash
# slurm-up.sh -- bring up a real single-host Slurm 22.05 cluster for integration tests
# (adapted for socker-mpi: config at the default path /etc/slurm so plain `srun` works for anyone)
# (munged + slurmctld + slurmd(s)), no systemd needed. Idempotent.
#
# Everything Slurm writes lives under $DEVCLUSTER_DIR (default /tmp/devcluster):
#   etc/ (slurm.conf, cgroup.conf, env.sh)  state/  spool/<node>/  tmp/<node>/  log/  run/  munge/
# Exceptions (system-wide by nature): munge socket /run/munge/munge.socket.2, cgroup dirs
# /sys/fs/cgroup/<ctrl>/slurm_<node>/, test user account ($SLURM_TEST_USER, default alice).
#
# Clients need:  export SLURM_CONF=$DEVCLUSTER_DIR/etc/slurm.conf   (or: source $DEVCLUSTER_DIR/etc/env.sh)
#
# Knobs (environment):
#   SLURM_NODES=1        1 => one node named `hostname -s`; N>1 => N emulated nodes n1..nN
#                        (multiple slurmd on one host, distinct ports; see slurm-up-multinode.sh)
#   SLURM_VCPUS=64       CPUs advertised per node via SlurmdParameters=config_overrides
#                        (64 => Sockets=1 CoresPerSocket=64 ThreadsPerCore=1, default binding none).
#                        0 => real hardware topology (exact cpusets/binding; use srun -O for >ncpu tasks).
#   SLURM_VTOPO=""       override topology string used with SLURM_VCPUS>0
#   SLURM_CONSTRAIN_CORES  cgroup.conf ConstrainCores (default yes for 1 node, no for multi-node)
#   SLURM_TASK_PLUGIN    default task/cgroup,task/affinity (1 node) or task/cgroup (multi-node)
#   SLURM_CTLD_PORT=6817 SLURMD_BASE_PORT=6818
#   SLURM_TEST_USER=alice  (created with useradd -m if missing; "" to skip)
#   SLURM_UP_TIMEOUT=60  seconds to wait for nodes to become idle
#   SLURM_NODE_UTS=1     multi-node: run each slurmd in its own UTS namespace (hostname = node name)
#   SLURM_CGROUP_PLUGIN=cgroup/v1  (autodetect works too on this host; cgroup/v2 does not)
#   SLURM_UP_SMOKE=1     run `srun -n1 true` (root and test user) at the end
set -Eeuo pipefail

DEVCLUSTER_DIR=${DEVCLUSTER_DIR:-/var/lib/socker-mpi-devcluster}
NODES=${SLURM_NODES:-1}
VCPUS=${SLURM_VCPUS:-0}
CTLD_PORT=${SLURM_CTLD_PORT:-6817}
SLURMD_BASE_PORT=${SLURMD_BASE_PORT:-6818}
TEST_USER=${SLURM_TEST_USER-}
UP_TIMEOUT=${SLURM_UP_TIMEOUT:-60}
SMOKE=${SLURM_UP_SMOKE:-1}
NODE_UTS=${SLURM_NODE_UTS:-1}
CGROUP_PLUGIN=${SLURM_CGROUP_PLUGIN:-cgroup/v1}   # autodetect also picks v1 here; cgroup/v2 fails (hybrid host)
MUNGE_SOCKET=/run/munge/munge.socket.2
SBIN=/usr/sbin

ETC=${SLURM_ETC:-/etc/slurm}; LOG=$DEVCLUSTER_DIR/log; RUN=$DEVCLUSTER_DIR/run; STATE=$DEVCLUSTER_DIR/state
SPOOL=$DEVCLUSTER_DIR/spool; TMPFS=$DEVCLUSTER_DIR/tmp; MUNGE_DIR=$DEVCLUSTER_DIR/munge
export SLURM_CONF=$ETC/slurm.conf

die()  { echo "slurm-up: ERROR: $*" >&2; exit 1; }
info() { echo "slurm-up: $*"; }
# shellcheck disable=SC2154  # rc is assigned inside the trap
trap 'rc=$?; echo "slurm-up: FAILED (line $LINENO, rc=$rc). Logs: $LOG/" >&2; exit $rc' ERR

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
pid_of() { [[ -s $1 ]] && cat "$1" || true; }   # pid from pidfile (may be stale)
# is pid $1 really running binary $2 (guards against pid reuse)?
pid_is() { alive "$1" && [[ "$(readlink /proc/"$1"/exe 2>/dev/null)" == *"$2"* ]]; }

# ------------------------------------------------------------------ preflight
[[ $EUID -eq 0 ]] || die "must run as root"
for b in $SBIN/munged /usr/bin/munge /usr/bin/unmunge $SBIN/slurmctld $SBIN/slurmd /usr/bin/sinfo /usr/bin/srun /usr/bin/scontrol; do
  [[ -x $b ]] || die "missing $b (apt-get install munge slurmctld slurmd slurm-client)"
done
[[ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so ]] || die "Slurm mpi_pmix plugin missing"
for c in cpuset memory freezer; do
  [[ -d /sys/fs/cgroup/$c ]] || die "cgroup v1 controller '$c' not mounted at /sys/fs/cgroup/$c (this script configures cgroup/v1)"
done
[[ $NODES =~ ^[0-9]+$ && $NODES -ge 1 ]] || die "SLURM_NODES must be >= 1"
HOST=$(hostname -s)

if [[ $NODES -eq 1 ]]; then NODENAMES=("$HOST"); else NODENAMES=(); for i in $(seq 1 "$NODES"); do NODENAMES+=("n$i"); done; fi

# ------------------------------------------------------------------ topology
read -r HW_CPUS HW_MEM < <(slurmd -C | awk '/^NodeName/{for(i=1;i<=NF;i++){split($i,a,"=");if(a[1]=="CPUs")c=a[2];if(a[1]=="RealMemory")m=a[2]}}END{print c,m}')
[[ -n ${HW_CPUS:-} && -n ${HW_MEM:-} ]] || die "slurmd -C failed"
# per-node memory: 75% of RAM divided among emulated nodes
NODE_MEM=$(( HW_MEM * 3 / 4 / NODES ))
if [[ $VCPUS -gt 0 ]]; then
  # (SLURM_VTOPO overrides, e.g. "Sockets=2 CoresPerSocket=16 ThreadsPerCore=2")
  # Default 1 socket x VCPUS cores x 1 thread: with ThreadsPerCore=1, explicit --cpu-bind=cores|threads
  # for <= (real cores) tasks maps correctly (abstract core k -> real CPU k mod ncpu); with
  # ThreadsPerCore=2, --cpu-bind=threads put both tasks on CPU 0 (measured).
  if [[ -n ${SLURM_VTOPO:-} ]]; then TOPO=$SLURM_VTOPO
  else TOPO="Sockets=1 CoresPerSocket=$VCPUS ThreadsPerCore=1"; fi
  TOPO="CPUs=$VCPUS $TOPO"; NCPU=$VCPUS
  OVERRIDES="SlurmdParameters=config_overrides"
  # Default binding must be 'none': task/affinity cannot lay out tasks on CPU ids that do not exist
  # ("Unable to layout tasks on given cpus"). Users may still ask --cpu-bind=cores for <= real cores.
  CPUBIND="TaskPluginParam=none"
else
  TOPO=$(slurmd -C | head -1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
  NCPU=$HW_CPUS; OVERRIDES="#SlurmdParameters=config_overrides"; CPUBIND="#TaskPluginParam=none"
fi
# ConstrainCores: every emulated node maps its abstract core k to real CPU (k mod ncpu), so with
# several slurmd's a 1-task-per-node job puts all ranks on CPU 0 (measured: 4 ms ping-pong latency
# = one scheduler tick). Hence default: yes for a single node, no for emulated multi-node.
if [[ -n ${SLURM_CONSTRAIN_CORES:-} ]]; then CONSTRAIN_CORES=$SLURM_CONSTRAIN_CORES
elif [[ $NODES -eq 1 ]]; then CONSTRAIN_CORES=yes; else CONSTRAIN_CORES=no; fi
# task/affinity binds a partial-node step to its allocated CPUs even with --cpu-bind=none
# (lllp_distribution: "Step does NOT have access to whole node, bind to full mask"), which for
# emulated nodes is again real CPU 0 on every node. So multi-node default: task/cgroup only.
if [[ -n ${SLURM_TASK_PLUGIN:-} ]]; then TASK_PLUGIN=$SLURM_TASK_PLUGIN
elif [[ $NODES -eq 1 ]]; then TASK_PLUGIN=task/cgroup,task/affinity; else TASK_PLUGIN=task/cgroup; fi
DEFMEM=$(( NODE_MEM / NCPU )); (( DEFMEM > 0 )) || DEFMEM=1

# ------------------------------------------------------------------ write config (to temp, compare)
mkdir -p "$ETC" "$LOG" "$RUN" "$MUNGE_DIR"
chmod 0755 "$DEVCLUSTER_DIR" "$ETC" "$RUN"
NEWCONF=$(mktemp "$ETC/.slurm.conf.XXXX"); NEWCG=$(mktemp "$ETC/.cgroup.conf.XXXX")
{
cat <<EOF
# generated by slurm-up.sh -- do not edit
ClusterName=devcluster
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL/%n
TmpFS=$TMPFS/%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/cgroup
TaskPlugin=$TASK_PLUGIN
$CPUBIND
$OVERRIDES
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
EnforcePartLimits=ALL
DefMemPerCPU=$DEFMEM
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
InactiveLimit=0
KillWait=5
MinJobAge=30
MessageTimeout=20
SlurmctldTimeout=30
SlurmdTimeout=60
Waittime=0
EOF
i=0
for n in "${NODENAMES[@]}"; do
  echo "NodeName=$n NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((SLURMD_BASE_PORT + i)) $TOPO RealMemory=$NODE_MEM State=UNKNOWN"
  i=$((i+1))
done
echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
} > "$NEWCONF"
cat > "$NEWCG" <<EOF
# generated by slurm-up.sh
CgroupPlugin=$CGROUP_PLUGIN
CgroupMountpoint=/sys/fs/cgroup
CgroupAutomount=no
ConstrainCores=$CONSTRAIN_CORES
ConstrainRAMSpace=yes
ConstrainSwapSpace=no
ConstrainDevices=no
EOF

CONF_CHANGED=0
cmp -s "$NEWCONF" "$ETC/slurm.conf" || CONF_CHANGED=1
cmp -s "$NEWCG" "$ETC/cgroup.conf" || CONF_CHANGED=1

# ------------------------------------------------------------------ already running?
running_ok() {
  pid_is "$(pid_of "$RUN"/slurmctld.pid)" slurmctld || return 1
  for n in "${NODENAMES[@]}"; do pid_is "$(pid_of "$RUN"/slurmd."$n".pid)" slurmd || return 1; done
  return 0
}
ANY_RUNNING=0
pid_is "$(pid_of "$RUN"/slurmctld.pid)" slurmctld && ANY_RUNNING=1
for f in "$RUN"/slurmd.*.pid; do [[ -e $f ]] && pid_is "$(pid_of "$f")" slurmd && ANY_RUNNING=1; done

if [[ $CONF_CHANGED -eq 0 ]] && running_ok; then
  info "daemons already running with identical config; only re-checking health"
  rm -f "$NEWCONF" "$NEWCG"
  RESTART=0
else
  if [[ $ANY_RUNNING -eq 1 ]]; then
    info "config changed or partial cluster: stopping previous Slurm daemons first"
    SLURM_DOWN_KEEP_MUNGE=1 "$(dirname "$(readlink -f "$0")")/slurm-down.sh" || die "slurm-down.sh failed"
  fi
  mv -f "$NEWCONF" "$ETC/slurm.conf"; mv -f "$NEWCG" "$ETC/cgroup.conf"
  chmod 0644 "$ETC/slurm.conf" "$ETC/cgroup.conf"
  RESTART=1
fi
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
if [[ $RESTART -eq 1 ]]; then
  for p in "$CTLD_PORT" $(seq "$SLURMD_BASE_PORT" $((SLURMD_BASE_PORT + NODES - 1))); do
    port_busy "$p" && die "TCP port $p already in use (not by our daemons): $(ss -Hltnp "sport = :$p" | head -1). Set SLURM_CTLD_PORT/SLURMD_BASE_PORT."
  done
fi
# SPANK: socker-mpi's plugin (srun/sbatch --container-image), where the package installed it.
# `required`: a node that cannot load it must fail the step, never run a containerized task
# natively. srun and slurmstepd read this file at every step: no restart needed.
SPANK_PLUGIN=${SOCKER_SPANK_PLUGIN:-/usr/lib/x86_64-linux-gnu/slurm-wlm/spank_socker.so}
NEWPS=$(mktemp "$ETC/.plugstack.conf.XXXX")
{ echo "# generated by slurm-up.sh (socker-mpi's dev cluster)"
  if [[ -f $SPANK_PLUGIN ]]; then echo "required $SPANK_PLUGIN"; else echo "# (no $SPANK_PLUGIN: run scripts/setup)"; fi
} > "$NEWPS"
chmod 0644 "$NEWPS"; mv -f "$NEWPS" "$ETC/plugstack.conf"
cat > "$ETC/env.sh" <<EOF
export SLURM_CONF=$ETC/slurm.conf
EOF
chmod 0644 "$ETC/env.sh"

# ------------------------------------------------------------------ test user
if [[ -n $TEST_USER ]] && ! id "$TEST_USER" >/dev/null 2>&1; then
  info "creating test user $TEST_USER"; useradd -m -s /bin/bash "$TEST_USER"
fi

# ------------------------------------------------------------------ munge
munge_ok() { munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }
if munge_ok; then
  info "munged already answering on $MUNGE_SOCKET"
else
  if [[ ! -s /etc/munge/munge.key ]]; then
    info "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none; fi
  fi
  chown munge:munge /etc/munge /etc/munge/munge.key; chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge; chown munge:munge /run/munge; chmod 0755 /run/munge
  chown munge:munge "$MUNGE_DIR"; chmod 0700 "$MUNGE_DIR"
  # stale socket/lock from a dead munged would make munged refuse to start
  if ! pid_is "$(pid_of "$MUNGE_DIR"/munged.pid)" munged; then rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"; fi
  runuser -u munge -- $SBIN/munged --socket="$MUNGE_SOCKET" --log-file="$MUNGE_DIR/munged.log" \
      --pid-file="$MUNGE_DIR/munged.pid" --seed-file="$MUNGE_DIR/munged.seed" \
    || die "munged failed to start: $(tail -n 5 "$MUNGE_DIR"/munged.log 2>/dev/null)"
  for _ in $(seq 50); do munge_ok && break; sleep 0.1; done
  munge_ok || die "munged not answering on $MUNGE_SOCKET"
  info "munged started (pid $(cat "$MUNGE_DIR"/munged.pid))"
fi

# ------------------------------------------------------------------ slurm dirs
# (created only now: slurm-down.sh, possibly called above, removes state/ spool/ tmp/)
mkdir -p "$STATE" "$SPOOL" "$TMPFS"; chmod 0755 "$SPOOL" "$TMPFS"
chown slurm:slurm "$STATE"; chmod 0700 "$STATE"
# log dir owned by SlurmUser: slurmctld chdir()s there and wants W_OK (core files)
chown slurm:slurm "$LOG"; chmod 0755 "$LOG"; touch "$LOG/slurmctld.log"; chown slurm:slurm "$LOG/slurmctld.log"
for n in "${NODENAMES[@]}"; do
  mkdir -p "$SPOOL/$n" "$TMPFS/$n"; chmod 0755 "$SPOOL/$n"; chmod 1777 "$TMPFS/$n"
done

# ------------------------------------------------------------------ start daemons
if [[ $RESTART -eq 1 ]]; then
  rm -f "$RUN"/slurmctld.pid "$RUN"/slurmd.*.pid
  # -c: start with empty job/node state (test cluster; job ids restart at 1)
  $SBIN/slurmctld -c -f "$SLURM_CONF" || die "slurmctld failed: $(tail -n 20 "$LOG"/slurmctld.log)"
  for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.1; done
  scontrol ping | grep -q 'is UP' || die "slurmctld not responding: $(tail -n 20 "$LOG"/slurmctld.log)"
  info "slurmctld up (pid $(cat "$RUN"/slurmctld.pid))"
  for n in "${NODENAMES[@]}"; do
    if [[ $NODES -eq 1 ]]; then $SBIN/slurmd -f "$SLURM_CONF" || die "slurmd failed: $(tail -n 20 "$LOG"/slurmd."$n".log)"
    elif [[ $NODE_UTS -eq 1 ]]; then
      # own UTS namespace => tasks see hostname $n. Without it, all emulated nodes report the same
      # hostname and Open MPI's /dev/shm/vader_segment.<hostname>.<uid>.<job>.<localrank> files of
      # different nodes collide ("A system call failed during shared memory initialization").
      unshare --uts -- sh -c "hostname '$n' && exec $SBIN/slurmd -f '$SLURM_CONF' -N '$n'" \
        || die "slurmd -N $n (own UTS ns) failed: $(tail -n 20 "$LOG"/slurmd."$n".log)"
    else $SBIN/slurmd -f "$SLURM_CONF" -N "$n" || die "slurmd -N $n failed: $(tail -n 20 "$LOG"/slurmd."$n".log)"; fi
  done
fi

# ------------------------------------------------------------------ wait for idle
NODELIST=$(IFS=,; echo "${NODENAMES[*]}")
deadline=$(( $(date +%s) + UP_TIMEOUT )); resumed=0
while :; do
  states=$(sinfo -h -N -n "$NODELIST" -o '%N %T' 2>/dev/null | sort -u || true)
  nidle=$(grep -c ' idle$' <<<"$states" || true)
  [[ $nidle -eq $NODES ]] && break
  if grep -qE 'down|drain' <<<"$states" && [[ $resumed -eq 0 ]] && running_ok; then
    scontrol update nodename="$NODELIST" state=resume 2>/dev/null || true; resumed=1
  fi
  if (( $(date +%s) > deadline )); then
    echo "--- sinfo:"; sinfo -N -l 2>&1 || true
    for n in "${NODENAMES[@]}"; do echo "--- slurmd.$n.log:"; tail -n 15 "$LOG/slurmd.$n.log" 2>/dev/null || true; done
    echo "--- slurmctld.log:"; tail -n 15 "$LOG/slurmctld.log" || true
    die "nodes not idle after ${UP_TIMEOUT}s (states: ${states//$'\n'/ })"
  fi
  sleep 0.5
done
info "all $NODES node(s) idle: $NODELIST"
sinfo

# ------------------------------------------------------------------ smoke test
if [[ $SMOKE -eq 1 ]]; then
  timeout 60 srun -N "$NODES" -n "$NODES" true || die "smoke test 'srun -n $NODES true' (root) failed"
  if [[ -n $TEST_USER ]]; then
    (cd / && timeout 60 runuser -u "$TEST_USER" -- env SLURM_CONF="$SLURM_CONF" srun -N "$NODES" -n "$NODES" true) \
      || die "smoke test as $TEST_USER failed"
  fi
  info "smoke test OK"
fi
info "ready. Use: export SLURM_CONF=$SLURM_CONF"
