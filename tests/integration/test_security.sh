#!/usr/bin/env bash
# The setuid boundary: an attack suite run as an unprivileged user against the installed setuid
# binary. Each case asserts the refusal message, the exit code, and that nothing changed (host
# mount table, processes, store contents).
. "$(dirname "$0")/lib.sh"
H=/usr/local/libexec/socker-mpi-test
CONF=/etc/socker-mpi/socker-mpi.conf
STORE=$(sed -n 's/^image_store *= *//p' $CONF); STORE=${STORE:-/var/lib/socker-mpi/images}
mounts_before=$(mount_snapshot)
# Images an interrupted earlier run may have left: gone before the store is snapshotted.
for n in sec-suid sec-symlink sec-dotdot sec-abs; do $BIN image rm $n >/dev/null 2>&1; done
# (tmp/ is scratch; locks/ holds the store's empty, persistent flock files, one per digest bucket.)
store_snapshot() { find "$STORE" \( -path "$STORE/tmp" -o -path "$STORE/locks" \) -prune -o -printf '%p %s\n' 2>/dev/null | sort | sha256sum; }
store_before=$(store_snapshot)
work=$(mktemp -d /tmp/socker-sec.XXXXXX); chmod 755 "$work"
cleanup() {
  [[ -n ${listener:-} ]] && kill "$listener" 2>/dev/null
  chmod go-w $CONF "$STORE" 2>/dev/null
  rm -rf "$work" /tmp/socker-evil-marker
  [[ -n ${other_job:-} ]] && scancel "$other_job" 2>/dev/null
}
trap cleanup EXIT

# Audit records: capture syslog on /dev/log when no daemon owns it (a socket left by a killed
# listener, that nobody answers on, is replaced).
audit_log=$work/audit.log; touch "$audit_log"
if [[ -S /dev/log ]] && ! python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).connect("/dev/log")' 2>/dev/null; then
  rm -f /dev/log
fi
if [[ ! -S /dev/log ]]; then
  "$(dirname "$0")/syslog_listener.py" /dev/log "$audit_log" & listener=$!
  for _ in $(seq 50); do [[ -S /dev/log ]] && break; sleep 0.05; done
fi

expect() {  # expect NAME CODE NEEDLE -- CMD...: exit code and message of a refused request
  local name=$1 code=$2 needle=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  assert_eq "$name: exit code" "$code" "$rc"
  assert_contains "$name: message" "$out" "$needle"
  [[ $(grep -c 'socker-mpi\[' <<<"$out") -le 1 ]] || fail "$name: more than one launcher line"
}

# 1. argc == 0
expect "1 argc==0" 77 "refusing to run with an empty argument vector" -- as_user $H/argc0 $BIN
# 2. fds 0-2 closed on entry: reopened on /dev/null, never reused for something else
# (device numbers, not paths: the fds were opened before pivot_root. glibc itself reopens the
# standard fds of a setuid program first: stdin on /dev/full write-only (1:7), others /dev/null.)
out=$(as_user srun -n 1 sh -c "exec $BIN $IMG /bin/sh -c 'stat -L -c %t:%T /proc/self/fd/0 /proc/self/fd/2 >&1' 0<&- 2>&-" 2>&1)
assert_eq "2 closed fds reopened on /dev/full and /dev/null" "$(printf '1:7\n1:3')" "$out"
# Inherited fds other than 0-2 are closed.
out=$(as_user srun -n 1 sh -c "exec 7</etc/hostname; exec $BIN $IMG /bin/sh -c 'ls /proc/self/fd'" 2>&1)
assert_not_contains "2 inherited fd 7 closed" "$(echo $out)" " 7 "
# 3. LD_PRELOAD / LD_LIBRARY_PATH / PATH / IFS / GCONV_PATH never reach the privileged phase
rm -f /tmp/socker-evil-marker
mkdir -p "$work/evil/bin" "$work/gconv"; cp $H/evil_preload.so "$work/evil/"
printf 'module INTERNAL EVIL// evil_preload 1\n' > "$work/gconv/gconv-modules"; cp $H/evil_preload.so "$work/gconv/"
printf '#!/bin/sh\necho pwned > /tmp/socker-evil-marker\n' > "$work/evil/bin/mount"; chmod 755 "$work/evil/bin/mount"
cp "$work/evil/bin/mount" "$work/evil/bin/unshare"
out=$(as_user srun -n 1 env LD_PRELOAD=$work/evil/evil_preload.so LD_LIBRARY_PATH=$work/evil PATH=$work/evil/bin:/usr/bin:/bin \
  IFS=/ GCONV_PATH=$work/gconv LANG=C.EVIL $BIN $IMG /bin/sh -c 'echo "LD_PRELOAD=${LD_PRELOAD:-unset} LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-unset} PATH=$PATH"' 2>&1)
assert_contains "3 dangerous variables not inside" "$out" "LD_PRELOAD=unset LD_LIBRARY_PATH=unset PATH=/usr/local/sbin:"
grep -q 'euid=0' /tmp/socker-evil-marker 2>/dev/null && fail "3 evil library ran with euid 0" || pass "3 evil library never ran as root"
[[ -e /tmp/socker-evil-marker ]] && grep -q pwned /tmp/socker-evil-marker && fail "3 helper found through user PATH" || pass "3 no helper from the user's PATH"
# 4. a user variable that claims to relax policy is ignored
expect "4 env cannot relax policy" 77 "not inside a Slurm job step" -- \
  as_user env SOCKER_MPI_CONFIG=$work/evil.conf SOCKER_REQUIRE_SLURM_STEP=no require_slurm_step=no $BIN $IMG /bin/true
# 5. privilege requests refused; inside, no capabilities and no_new_privs
expect "5 --privileged" 77 "never grants privileges" -- as_user srun -n 1 $BIN --privileged $IMG /bin/true
expect "5 --cap-add" 77 "never grants privileges" -- as_user srun -n 1 $BIN --cap-add=SYS_ADMIN $IMG /bin/true
expect "5 --user 0" 77 "never grants privileges" -- as_user srun -n 1 $BIN --user 0 $IMG /bin/true
out=$(as_user srun -n 1 $BIN $IMG /opt/socker/probe 2>&1)
for k in CapEff CapPrm CapBnd CapInh CapAmb; do assert_eq "5 $k inside" 0000000000000000 "$(probe_value "$out" 0 $k)"; done
assert_eq "5 NoNewPrivs inside" 1 "$(probe_value "$out" 0 NoNewPrivs)"
# 6. hostile image names refused before touching the filesystem
long=$(head -c 65536 /dev/zero | tr '\0' a)
for n in 'lab/../../x' 'Abs' '-x' "$long" $'a\nb' $'a\x1b[31mb'; do
  out=$(as_user srun -n 1 $BIN run "$n" /bin/true 2>&1); rc=$?
  label=$(printf '%q' "${n:0:12}")
  [[ $n == -x ]] && { assert_eq "6 image name $label exit code" 64 "$rc"; continue; }
  assert_eq "6 image name $label exit code" 64 "$rc"
  assert_contains "6 image name $label message" "$out" "image name"
  n_lines=$(grep -c 'socker-mpi\[' <<<"$out")
  [[ $n_lines -eq 1 ]] && pass "6 image name $label: one line" || fail "6 image name $label: $n_lines lines"
done
# 6b. an IMAGE starting with / or . is an image file, opened with the user's credentials: what
# the user cannot read is refused, a missing file is an I/O error, a file that is no image is
# refused as such, and none of them leaves an image behind
images_before=$(as_user $BIN image ls --user 2>/dev/null | wc -l)
expect "6b image file the user cannot read" 77 "Permission denied" -- as_user srun -n 1 $BIN /etc/shadow /bin/true
expect "6b missing image file" 74 "No such file or directory" -- as_user srun -n 1 $BIN ../../x /bin/true
expect "6b a file that is no image" 65 "/etc/hostname" -- as_user srun -n 1 $BIN /etc/hostname /bin/true
assert_eq "6b nothing imported" "$images_before" "$(as_user $BIN image ls --user 2>/dev/null | wc -l)"
# 7. outside a Slurm step (policy default)
expect "7 outside a step" 77 "not inside a Slurm job step" -- as_user $BIN $IMG /bin/true
# 8. SLURM_JOB_ID/SLURM_STEP_ID faked to another user's running job: our own step is used
other_job=$(sbatch --parsable -n 1 -o /dev/null --wrap 'sleep 60')
for _ in $(seq 50); do [[ $(squeue -h -j "$other_job" -o %T) == RUNNING ]] && break; sleep 0.1; done
out=$(as_user srun -n 1 -J own env SLURM_JOB_ID=$other_job SLURM_JOBID=$other_job SLURM_STEP_ID=0 \
  $BIN $IMG /bin/sh -c 'grep cpuset /proc/self/cgroup' 2>&1)
assert_not_contains "8 not in the other job" "$out" "job_$other_job/"
assert_contains "8 in the user's own job" "$out" "uid_$UID_U/job_"
scancel "$other_job"; other_job=
# 9. PMIX_SERVER_TMPDIR pointing at another user's home: not mounted
expect "9 foreign PMIx dir" 77 "open as user \`/root\`: Permission denied" -- \
  as_user srun -n 1 --mpi=none env PMIX_SERVER_TMPDIR=/root $BIN $IMG /bin/true
mkdir -p "$work/rootowned"
expect "9 PMIx dir not owned by the user" 77 "not by the user" -- \
  as_user srun -n 1 --mpi=none env PMIX_SERVER_TMPDIR=/var/lib/socker-mpi $BIN $IMG /bin/true
# 10. PMI_FD pointing at a regular file
expect "10 PMI_FD regular file" 77 "PMI_FD=5\`: not an open socket" -- \
  as_user srun -n 1 --mpi=none sh -c "exec 5</etc/hostname; PMI_FD=5 exec $BIN $IMG /bin/true"
# 11. binds of files the user cannot read / another user's 0700 home
victim=smpi-victim; id $victim >/dev/null 2>&1 || useradd -m -s /bin/bash $victim; chmod 0700 /home/$victim
expect "11 --bind /etc/shadow" 77 "open as user \`/etc/shadow\`: Permission denied" -- as_user srun -n 1 $BIN --bind /etc/shadow:/x $IMG /bin/true
expect "11 another user's home" 77 "Permission denied" -- as_user srun -n 1 $BIN -v /home/$victim:/x $IMG /bin/true
expect "11 source outside allowed prefixes" 77 "outside the allowed bind sources" -- as_user srun -n 1 $BIN -v /etc:/x $IMG /bin/true
# 12. binds onto /proc, /, /etc/passwd
mkdir -p "$HOME_U/d"; chown $U: "$HOME_U/d"
for dst in /proc /proc/1 / /etc/passwd /dev/x; do
  expect "12 bind onto $dst" 77 "not allowed" -- as_user srun -n 1 $BIN -v $HOME_U/d:$dst $IMG /bin/true
done
# 13. a bound directory with a setuid-root binary
mkdir -p "$work/suid"; cp $H/probe "$work/suid/probe"; chown root:root "$work/suid/probe"; chmod 4755 "$work/suid/probe"
out=$(as_user srun -n 1 $BIN -v $work/suid:/s $IMG /s/probe 2>&1)
assert_eq "13 setuid-root binary in a bind: euid stays the user's" "$UID_U" "$(probe_value "$out" 0 euid)"
# 14. an image with a setuid-root shell
mkdir -p "$work/suidimg/bin"; cp $H/probe "$work/suidimg/bin/rootshell"; chmod 4755 "$work/suidimg/bin/rootshell"
tar -C "$work/suidimg" --owner=0 --group=0 -cf "$work/suidimg.tar" .
$BIN image import "$work/suidimg.tar" sec-suid >/dev/null 2>&1
out=$(as_user srun -n 1 $BIN sec-suid /bin/rootshell 2>&1)
assert_eq "14 setuid shell in the image: euid stays the user's" "$UID_U" "$(probe_value "$out" 0 euid)"
# 15. an image whose /scratch is a symlink to /etc
mkdir -p "$work/symimg/bin"; cp $H/probe "$work/symimg/bin/probe"; ln -s /etc "$work/symimg/scratch"; mkdir -p "$work/symimg/etc"
tar -C "$work/symimg" --owner=0 --group=0 -cf "$work/symimg.tar" .
$BIN image import "$work/symimg.tar" sec-symlink >/dev/null 2>&1
sum_before=$(sha256sum /etc/passwd /etc/hostname /etc/hosts | sha256sum)
out=$(as_user srun -n 1 $BIN -v $HOME_U/d:/scratch sec-symlink /bin/probe 2>&1); rc=$?
assert_eq "15 bind through the image's symlink to /etc refused" 77 "$rc"
assert_contains "15 message names the resolved destination" "$out" "destination /etc is not allowed"
assert_eq "15 host /etc unchanged" "$sum_before" "$(sha256sum /etc/passwd /etc/hostname /etc/hosts | sha256sum)"
$BIN image rm sec-symlink >/dev/null; $BIN image rm sec-suid >/dev/null
# 16. a device not in the allow-list; mknod inside fails
expect "16 device not allowed" 77 "not in the admin's device allow-list" -- as_user srun -n 1 $BIN --device /dev/mem $IMG /bin/true
out=$(as_user srun -n 1 $BIN $IMG /bin/sh -c 'mknod /tmp/socker-null c 1 3 && echo MKNOD-OK; mknod /dev/x c 1 3 && echo MKNOD-DEV-OK; echo done' 2>&1)
assert_not_contains "16 mknod inside fails" "$out" "MKNOD"
rm -f /tmp/socker-null
# 17. tar entries with '..' or absolute paths
python3 - "$work" <<'PY'
import io, sys, tarfile
w = sys.argv[1]
for name, member in (("dotdot", "../../../tmp/socker-escape-dotdot"), ("abs", "/tmp/socker-escape-abs")):
    with tarfile.open(f"{w}/{name}.tar", "w") as t:
        data = b"escaped\n"
        ti = tarfile.TarInfo(member); ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
PY
for c in dotdot abs; do
  expect "17 tar entry $c" 65 "$( [[ $c == abs ]] && echo "absolute path '/tmp/socker-escape-abs'" || echo "contains '..'")" -- $BIN image import "$work/$c.tar" sec-$c
  [[ -e /tmp/socker-escape-$c ]] && fail "17 $c: file written outside" || pass "17 $c: nothing written outside"
done
# 18. world-writable admin config or store directory
chmod o+w $CONF
expect "18 world-writable config" 78 "writable by group or others" -- as_user srun -n 1 $BIN $IMG /bin/true
chmod o-w $CONF; chmod o+w "$STORE"
expect "18 world-writable store" 78 "writable by group or others" -- as_user srun -n 1 $BIN $IMG /bin/true
chmod o-w "$STORE"
# 19. an application that ignores SIGTERM is killed by Slurm's SIGKILL and leaves nothing
as_user srun -n 1 -J ignore-term $BIN $IMG /bin/sh -c 'trap "" TERM; echo started; sleep 300' >/dev/null 2>&1 &
for _ in $(seq 100); do j=$(squeue -h -u $U -n ignore-term -o %A); [[ -n $j ]] && pgrep -u $U -x sleep >/dev/null && break; sleep 0.1; done
scancel "$j"
for _ in $(seq 150); do [[ -z $(squeue -h -j "$j" 2>/dev/null) ]] && ! pgrep -u $U >/dev/null && break; sleep 0.1; done
assert_eq "19 no process of the user left after SIGKILL" "" "$(pgrep -u $U -a || true)"
# 20. launches killed with SIGKILL at random points during set-up
for i in $(seq 12); do
  as_user srun -n 1 $BIN $IMG /bin/true >/dev/null 2>&1 & launch=$!
  sleep "0.$(( RANDOM % 30 + 5 ))"
  pkill -KILL -u $U -x socker-mpi 2>/dev/null
  wait $launch  # not a bare wait: the syslog listener runs in the background too
done
# (srun clients may linger for a moment as zombies until their parent reaps them: not ours.)
live() { ps -u $U -o pid=,stat=,args= | awk '$2 !~ /^Z/'; }
for _ in $(seq 50); do [[ -z $(live) ]] && break; sleep 0.1; done
assert_eq "20 no process left after killed launches" "" "$(live)"
assert_eq "20 store temp dir empty" "" "$(ls -A "$STORE/tmp" 2>/dev/null)"
assert_eq "20 runtime dir empty on the host" "" "$(ls -A /var/lib/socker-mpi/mnt)"

# Audit: one record per launch and per refusal, with user, job, step, rank, digest, command.
sleep 0.3
if [[ -n ${listener:-} ]]; then
  assert_contains "audit: launch record" "$(cat "$audit_log")" "user=$U uid=$UID_U job="
  assert_contains "audit: store and digest" "$(cat "$audit_log")" "image=$IMG:latest store=admin digest=sha256:"
  assert_contains "audit: refusal record" "$(cat "$audit_log")" "decision=refused: "
fi

# Nothing changed on the host.
assert_eq "host mount table unchanged" "$mounts_before" "$(mount_snapshot)"
assert_eq "store contents unchanged" "$store_before" "$(store_snapshot)"
finish
