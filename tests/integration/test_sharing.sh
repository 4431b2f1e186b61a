#!/usr/bin/env bash
# One container per node (issue 13): the ranks of a step on a node join the mount namespace the
# first of them built; everything per rank stays per rank; a killed first rank, another step's or
# another user's processes, and namespaces a user made never get a rank into the wrong container;
# nothing is left behind. As the test user, through the installed setuid binary, under Slurm.
. "$(dirname "$0")/lib.sh"
work=$(mktemp -d /tmp/socker-share.XXXXXX); chmod 0777 "$work"
holder=""
cleanup() {
  [[ -n $holder ]] && kill "$holder" 2>/dev/null
  pkill -u "$U" -f "busybox sleep 3[0-9]" 2>/dev/null
  pkill -u "$U" -f "fcntl.flock" 2>/dev/null
  admin_conf_restore
  rm -rf /tmp/socker-forge.*
  [[ -n ${KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT
STATE=/run/socker-mpi
RUNTIME=$(awk -F= '/^runtime_dir/ {gsub(/ /, "", $2); print $2}' "$ADMIN_CONF"); RUNTIME=${RUNTIME:-/var/lib/socker-mpi/mnt}
snapshot() { mount_snapshot; echo "--- state"; ls -A "$STATE" 2>/dev/null; echo "--- runtime"; ls -A "$RUNTIME"; \
  echo "--- tmp"; find /tmp -mindepth 1 -maxdepth 1 ! -path "$work" ! -name 'systemd*' ! -name 'socker-forge.*' | sort; }
before=$(snapshot)
host_ns=$(readlink /proc/$$/ns/mnt)
ns_of() { readlink "/proc/$1/ns/mnt" 2>/dev/null; }
# Each rank prints "ns=... rank=... uid=... cpus=..." and stays until every rank has printed, so
# that separate namespaces could not reuse one inode number one after another.
cat > "$work/report.sh" <<'EOF'
echo "ns=$(readlink /proc/self/ns/mnt) rank=$SLURM_PROCID uid=$(id -u) pmix=$PMIX_RANK cpus=$(grep Cpus_allowed_list /proc/self/status | cut -f2) data=$(test -e /data/marker && echo yes || echo no)"
sleep 2
EOF
chmod 0755 "$work/report.sh"
report=(/bin/sh "$work/report.sh")
distinct_ns() { grep -o '^ns=[^ ]*' <<<"$1" | sort -u | wc -l; }

# 1. 64 ranks on one node: one mount namespace, not the host's; each rank its own rank and
#    PMIx rank, the user's uid.
out=$(as_user timeout 120 srun -O -n 64 "$BIN" "$IMG" "${report[@]}" 2>&1)
assert_eq "1 all 64 ranks ran" 64 "$(grep -c '^ns=' <<<"$out")"
assert_eq "1 ... in one mount namespace" 1 "$(distinct_ns "$out")"
assert_not_contains "1 ... not the host's" "$(grep -o '^ns=[^ ]*' <<<"$out" | sort -u)" "$host_ns"
assert_eq "1 ... each its own rank" 64 "$(grep -o ' rank=[0-9]*' <<<"$out" | sort -u | wc -l)"
assert_eq "1 ... and PMIx rank" 64 "$(grep -o ' pmix=[0-9]*' <<<"$out" | sort -u | wc -l)"
assert_eq "1 ... all as the user" "uid=$UID_U" "$(grep -o ' uid=[0-9]*' <<<"$out" | sort -u | tr -d ' ')"

# 2. Per rank: CPU binding as Slurm gave it, exit status, in one shared namespace.
out=$(as_user srun -n 2 --cpu-bind=cores "$BIN" "$IMG" "${report[@]}" 2>&1)
assert_eq "2 two ranks bound, one namespace" 1 "$(distinct_ns "$out")"
assert_eq "2 ... rank 0 on its own CPU" "cpus=0" "$(grep ' rank=0 ' <<<"$out" | grep -o 'cpus=[0-9,-]*')"
assert_eq "2 ... rank 1 on its own CPU" "cpus=1" "$(grep ' rank=1 ' <<<"$out" | grep -o 'cpus=[0-9,-]*')"
as_user srun -O -n 4 "$BIN" "$IMG" /bin/sh -c 'sleep 1; exit $((SLURM_PROCID == 2 ? 7 : 0))' >"$work/rc.out" 2>&1; rc=$?
assert_eq "2 a joining rank's exit status is its own (srun reports 7)" 7 "$rc"
assert_contains "2 ... for rank 2 alone" "$(cat "$work/rc.out")" "task 2: Exited with exit code 7"
# The rank that built ran its set-up at nice -10: every rank's program runs at the caller's nice.
out=$(as_user srun -O -n 4 "$BIN" "$IMG" /bin/sh -c 'read -r s </proc/self/stat; set -- $s; echo "nice=${19}"; sleep 1' 2>&1)
assert_eq "2 every rank's program runs at the caller's nice value (0), the builder's too" "4" "$(grep -cx 'nice=0' <<<"$out")"

# 3. Different specs, different containers: even ranks bind a directory, odd ranks do not; an
#    MPMD step runs two images.
mkdir -p "$work/data"; touch "$work/data/marker"; chown -R "$U" "$work/data"
cat > "$work/mixed.sh" <<EOF
#!/bin/sh
if [ \$((SLURM_PROCID % 2)) -eq 0 ]; then exec $BIN -v $work/data:/data $IMG ${report[*]}; fi
exec $BIN $IMG ${report[*]}
EOF
chmod 0755 "$work/mixed.sh"
out=$(as_user srun -O -n 6 "$work/mixed.sh" 2>&1)
assert_eq "3 six ranks of two specs ran" 6 "$(grep -c '^ns=' <<<"$out")"
assert_eq "3 ... in two containers" 2 "$(distinct_ns "$out")"
even=$(grep -E ' rank=[024] ' <<<"$out"); odd=$(grep -E ' rank=[135] ' <<<"$out")
assert_eq "3 ... the ranks with the bind share one" 1 "$(distinct_ns "$even")"
assert_eq "3 ... and see it" "data=yes" "$(grep -o 'data=[a-z]*' <<<"$even" | sort -u)"
assert_eq "3 ... the others share another, without it" "1 data=no" \
  "$(distinct_ns "$odd") $(grep -o 'data=[a-z]*' <<<"$odd" | sort -u)"
# The second image is the MPICH one scripts/check imports (any image other than $IMG would do).
IMG2=${SOCKER_TEST_IMAGE2:-mpi-mpich}
"$BIN" image ls 2>/dev/null | grep -q "^$IMG2\b" || fail "3 MPMD needs a second image '$IMG2' in the store (scripts/check imports it)"
printf '0-1 %s %s %s\n2-3 %s %s %s\n' "$BIN" "$IMG" "${report[*]}" "$BIN" "$IMG2" "${report[*]}" >"$work/mpmd.conf"
out=$(as_user srun -O -n 4 --multi-prog "$work/mpmd.conf" 2>&1)
assert_eq "3 MPMD: two images, two containers" "4 2" "$(grep -c '^ns=' <<<"$out") $(distinct_ns "$out")"

# 4. A first rank killed in the middle of its set-up: the other ranks go on, one of them builds,
#    the rest join it. The image store's lock, held here, stops the first rank inside its new
#    namespace (it holds the step's set-up lock; the others wait for that).
cat > "$work/hold.py" <<'EOF'
import fcntl, glob, os, sys, time
fds = [os.open(p, os.O_RDONLY) for p in glob.glob("/run/socker-mpi/store-*.lock")]
for fd in fds: fcntl.flock(fd, fcntl.LOCK_EX)
print(" ".join(str(os.fstat(fd).st_ino) for fd in fds), flush=True)
sys.stdin.readline()
EOF
coproc HOLD { python3 "$work/hold.py"; }
holder=$HOLD_PID
read -r -u "${HOLD[0]}" lock_inodes
# The rank waiting for the store lock (shared) is the one building: /proc/locks names it.
builder() { for ino in $lock_inodes; do awk -v i=":$ino" '$2 == "->" && $3 == "FLOCK" && $5 == "READ" && substr($7, length($7) - length(i) + 1) == i {print $6}' /proc/locks; done | head -1; }
as_user timeout 60 srun -O -n 4 "$BIN" "$IMG" "${report[@]}" >"$work/kill.out" 2>&1 & step=$!
first=""; for _ in $(seq 200); do first=$(builder); [[ -n $first ]] && break; sleep 0.05; done
if [[ -n $first ]]; then
  first_ns=$(ns_of "$first")
  kill -9 "$first"
  second=""; for _ in $(seq 200); do second=$(builder); [[ -n $second && $second != "$first" ]] && break; second=""; sleep 0.05; done
  [[ -n $second ]] && pass "4 another rank took over the set-up" || fail "4 no rank took over after the first was killed"
fi
echo go >&"${HOLD[1]}"; wait "$holder" 2>/dev/null; holder=""
wait $step; rc=$?
out=$(cat "$work/kill.out")
[[ -n $first ]] && pass "4 the first rank was stopped mid-set-up (pid $first, in its own namespace: $([[ $first_ns != "$host_ns" ]] && echo yes || echo no))" || fail "4 no rank waited on the store lock"
assert_eq "4 the three other ranks ran (no hang: srun ended, rc=$rc)" 3 "$(grep -c '^ns=' <<<"$out")"
assert_eq "4 ... in one container" 1 "$(distinct_ns "$out")"

# 5. A namespace the user made to look like this step's container -- the overlay's very source
#    string, read-only root, same user, same step -- is never joined: it is owned by a user
#    namespace, and socker-mpi's are owned by the initial one. Its process even gets the pid of
#    a finished rank's container (a reused pid).
cat > "$work/forge.sh" <<'EOF'
#!/bin/sh
set -e
PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH
d=$(mktemp -d /tmp/socker-forge.XXXXXX)
mkdir -p $d/l/bin $d/u $d/w $d/m
cp /usr/bin/busybox $d/l/bin/busybox
exec unshare -Urm sh -c '
  set -e
  mount -t overlay "$1" -o lowerdir=$2/l,upperdir=$2/u,workdir=$2/w $2/m
  mkdir -p $2/m/old
  mount -o remount,ro,nosuid,nodev $2/m
  cd $2/m
  pivot_root . old
  /bin/busybox umount -l /old
  exec /bin/busybox sleep 35
' sh "$1" "$d"
EOF
cat > "$work/source.awk" <<'EOF'
$5 == "/" { for (i = 7; i <= NF; i++) if ($i == "-") src = $(i + 2) }
END { print src }
EOF
mkfifo -m 0666 "$work/go.fifo"
cat > "$work/forge-step.sh" <<EOF
#!/bin/sh
cd $work
$BIN $IMG /bin/sh -c 'echo \$\$ > $work/rank.pid; exec awk -f $work/source.awk /proc/self/mountinfo' > $work/source
read go < $work/go.fifo
sh $work/forge.sh "\$(cat $work/source)" & echo \$! > $work/forge.pid
sleep 1
fp=\$(cat $work/forge.pid)
grep -E '^[0-9]+ [0-9]+ [0-9:]+ / / ' /proc/\$fp/mountinfo | tail -1 > $work/forge.root
readlink /proc/\$fp/ns/mnt > $work/forge.ns
$BIN $IMG readlink /proc/self/ns/mnt > $work/forge-launch.out 2>&1
kill \$fp
EOF
chmod 0755 "$work/forge.sh" "$work/forge-step.sh"
as_user srun -n 1 "$work/forge-step.sh" >"$work/forge-step.log" 2>&1 & fstep=$!
for _ in $(seq 200); do [[ -s $work/rank.pid && -s $work/source ]] && break; sleep 0.05; done
rank_pid=$(cat "$work/rank.pid" 2>/dev/null)
[[ -n $rank_pid ]] && echo $((rank_pid - 1)) > /proc/sys/kernel/ns_last_pid
echo go > "$work/go.fifo"
wait $fstep
forge_pid=$(cat "$work/forge.pid" 2>/dev/null)
forged_root=$(cat "$work/forge.root"); forged_ns=$(cat "$work/forge.ns")
assert_contains "5 the lookalike has this step's container source as its root" "$forged_root" "overlay $(cat "$work/source") "
assert_contains "5 ... read-only" "$forged_root" " / / ro,"
[[ $forge_pid == "$rank_pid" ]] && pass "5 ... and the pid of the finished rank's container ($rank_pid)" \
  || echo "note - $T: 5 the lookalike got pid $forge_pid, not the finished rank's $rank_pid (another process took it)"
launched=$(cat "$work/forge-launch.out")
assert_contains "5 the next launch ran" "$launched" "mnt:["
[[ -n $forged_ns && $launched =~ ^mnt:\[[0-9]+\]$ && $launched != "$forged_ns" ]] && pass "5 ... in its own container, not the lookalike ($forged_ns)" \
  || fail "5 the launch joined the user-made namespace ($launched, lookalike '$forged_ns')"

# 6. Another user's step: the attacker locks the victim's step cgroup directory (anyone can open
#    it); the victim's ranks do not wait for that lock, and run.
victim=smpi-victim; id $victim >/dev/null 2>&1 || useradd -m -s /bin/bash $victim; chmod 0700 /home/$victim
UID_V=$(id -u $victim)
(cd /tmp && runuser -u $victim -- srun -n 2 -J sharevictim /bin/sh -c "sleep 2; $BIN $IMG ${report[*]}" >"$work/victim.out" 2>&1) & vstep=$!
vdir=""; for _ in $(seq 100); do vdir=$(ls -d /sys/fs/cgroup/freezer/slurm*/uid_"$UID_V"/job_*/step_0 2>/dev/null | head -1); [[ -n $vdir ]] && break; sleep 0.05; done
as_user python3 -c 'import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY); fcntl.flock(fd, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(25)' "$vdir" >"$work/attacker.out" 2>&1 & attacker=$!
t0=$(date +%s)
wait $vstep
elapsed=$(( $(date +%s) - t0 ))
pkill -u "$U" -f "fcntl.flock" 2>/dev/null; wait $attacker 2>/dev/null
assert_contains "6 the attacker held the victim's step directory lock" "$(cat "$work/attacker.out")" "locked"
assert_eq "6 the victim's ranks ran" 2 "$(grep -c '^ns=' "$work/victim.out")"
(( elapsed < 9 )) && pass "6 ... without waiting for the attacker's lock (${elapsed}s; a wait is 10s)" || fail "6 the victim's launch waited ${elapsed}s"

# 7. A container of another step, put into this step's cgroup (root does it here: a user cannot
#    write a step's cgroup.procs), is not joined: its key names its own step.
as_user srun -n 1 -J shareA "$BIN" "$IMG" /bin/sleep 30 >/dev/null 2>&1 & astep=$!
apid=""; for _ in $(seq 100); do apid=$(pgrep -u "$U" -x sleep -n); [[ -n $apid && $(ns_of "$apid") != "$host_ns" ]] && break; apid=""; sleep 0.05; done
cat > "$work/moved.sh" <<EOF
#!/bin/sh
echo ready > $work/b.ready
while [ ! -e $work/b.go ]; do sleep 0.05; done
$BIN $IMG readlink /proc/self/ns/mnt
EOF
chmod 0755 "$work/moved.sh"
as_user srun -n 1 -J shareB "$work/moved.sh" >"$work/b.out" 2>&1 & bstep=$!
for _ in $(seq 100); do [[ -e $work/b.ready ]] && break; sleep 0.05; done
bpid=$(pgrep -u "$U" -f "$work/moved.sh" -n)
bcg=$(awk -F: '$2 == "freezer" {print $3}' "/proc/$bpid/cgroup")
echo "$apid" > "/sys/fs/cgroup/freezer$bcg/cgroup.procs"
assert_eq "7 the other step's container now sits in this step's freezer cgroup" "$bcg" "$(awk -F: '$2 == "freezer" {print $3}' "/proc/$apid/cgroup")"
touch "$work/b.go"; wait $bstep
b_ns=$(cat "$work/b.out")
assert_contains "7 the launch ran" "$b_ns" "mnt:["
[[ $b_ns =~ ^mnt:\[[0-9]+\]$ && $b_ns != "$(ns_of "$apid")" ]] && pass "7 ... in a container of its own" || fail "7 joined another step's container"
kill "$apid" 2>/dev/null; wait $astep 2>/dev/null

# 8. The admin may turn sharing off: every rank builds its own.
admin_conf_set share_containers no
out=$(as_user srun -O -n 3 "$BIN" "$IMG" "${report[@]}" 2>&1)
assert_eq "8 share_containers = no: three ranks, three containers" "3 3" "$(grep -c '^ns=' <<<"$out") $(distinct_ns "$out")"
admin_conf_restore

# 9. Nothing left behind: no mounts on the host, no files in the state or runtime directories,
#    no temporary directories, no processes.
sleep 0.5
assert_eq "9 no process of the user left (zombies aside)" "" "$(ps -u "$U" -o stat=,pid=,comm= | awk '$1 !~ /^Z/')"
rm -rf /tmp/socker-forge.*
after=$(snapshot)
[[ $before == "$after" ]] && pass "9 host mounts, state, runtime and /tmp as before" \
  || { fail "9 left behind:"; diff <(echo "$before") <(echo "$after") | sed 's/^/    | /'; }
finish
