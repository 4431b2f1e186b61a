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
for n in sec-suid sec-symlink sec-dotdot sec-abs sec-owned sec-inuse sec-bomb sec-many sec-symown; do $BIN image rm $n >/dev/null 2>&1; done
# (tmp/ is scratch; locks/ holds the store's empty, persistent flock files, one per digest bucket.)
store_snapshot() { find "$STORE" \( -path "$STORE/tmp" -o -path "$STORE/locks" \) -prune -o -printf '%p %s\n' 2>/dev/null | sort | sha256sum; }
store_before=$(store_snapshot)
work=$(mktemp -d /tmp/socker-sec.XXXXXX); chmod 755 "$work"
cleanup() {
  [[ -n ${listener2:-} ]] && kill "$listener2" 2>/dev/null
  [[ ${proc_remounted:-0} -eq 1 ]] && mount -o remount,hidepid=off /proc
  [[ -n ${devcg:-} ]] && mountpoint -q "$devcg" && grep -q " $devcg .* socker-hide " /proc/self/mountinfo && umount "$devcg"
  [[ -n ${vrun:-} ]] && pkill -u smpi-victim -x sleep 2>/dev/null
  [[ -n ${swapper:-} ]] && kill "$swapper" 2>/dev/null
  [[ -n ${scratch_made:-} ]] && { rm -rf "/scratch/$U"; [[ $scratch_made -eq 1 ]] && rmdir /scratch; }
  rm -f /dev/socker-sec0 /tmp/socker-inuse-go
  admin_conf_restore
  chmod go-w $CONF "$STORE" 2>/dev/null
  rm -rf "$work" /tmp/socker-evil-marker
  [[ -n ${other_job:-} ]] && scancel "$other_job" 2>/dev/null
}
trap cleanup EXIT

# Audit records: the node's syslog daemon (scripts/devcluster starts rsyslog on /dev/log,
# authpriv -> /var/log/auth.log) gets one per launch and refusal; read what this run added.
AUTH_LOG=${SOCKER_AUTH_LOG:-/var/log/auth.log}
auth_log_start=$(stat -c %s "$AUTH_LOG" 2>/dev/null || echo 0)

expect() {  # expect NAME CODE NEEDLE -- CMD...: exit code and message of a refused request
  local name=$1 code=$2 needle=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  assert_eq "$name: exit code" "$code" "$rc"
  assert_contains "$name: message" "$out" "$needle"
  [[ $(grep -c 'socker-mpi\[' <<<"$out") -le 1 ]] || fail "$name: more than one launcher line"
}

# 1. argc == 0
expect "1 argc==0" 77 "refusing to run with an empty argument vector" -- as_user $H/argc0 "$BIN"
# 2. fds 0-2 closed on entry: reopened on /dev/null, never reused for something else
# (device numbers, not paths: the fds were opened before pivot_root. glibc itself reopens the
# standard fds of a setuid program first: stdin on /dev/full write-only (1:7), others /dev/null.)
out=$(as_user srun -n 1 sh -c "exec $BIN $IMG /bin/sh -c 'stat -L -c %t:%T /proc/self/fd/0 /proc/self/fd/2 >&1' 0<&- 2>&-" 2>&1)
assert_eq "2 closed fds reopened on /dev/full and /dev/null" "$(printf '1:7\n1:3')" "$out"
# Inherited fds other than 0-2 are closed.
out=$(as_user srun -n 1 sh -c "exec 7</etc/hostname; exec $BIN $IMG /bin/sh -c 'ls /proc/self/fd'" 2>&1)
assert_not_contains "2 inherited fd 7 closed" " $(tr '\n' ' ' <<<"$out")" " 7 "
# 3. LD_PRELOAD / LD_LIBRARY_PATH / PATH / IFS / GCONV_PATH never reach the privileged phase
rm -f /tmp/socker-evil-marker
mkdir -p "$work/evil/bin" "$work/gconv"; cp $H/evil_preload.so "$work/evil/"
printf 'module INTERNAL EVIL// evil_preload 1\n' > "$work/gconv/gconv-modules"; cp $H/evil_preload.so "$work/gconv/"
printf '#!/bin/sh\necho pwned > /tmp/socker-evil-marker\n' > "$work/evil/bin/mount"; chmod 755 "$work/evil/bin/mount"
cp "$work/evil/bin/mount" "$work/evil/bin/unshare"
out=$(as_user srun -n 1 env LD_PRELOAD="$work"/evil/evil_preload.so LD_LIBRARY_PATH="$work"/evil PATH="$work"/evil/bin:/usr/bin:/bin \
  IFS=/ GCONV_PATH="$work"/gconv LANG=C.EVIL "$BIN" "$IMG" /bin/sh -c 'echo "LD_PRELOAD=${LD_PRELOAD:-unset} LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-unset} PATH=$PATH"' 2>&1)
assert_contains "3 dangerous variables not inside" "$out" "LD_PRELOAD=unset LD_LIBRARY_PATH=unset PATH=/usr/local/sbin:"
grep -q 'euid=0' /tmp/socker-evil-marker 2>/dev/null && fail "3 evil library ran with euid 0" || pass "3 evil library never ran as root"
[[ -e /tmp/socker-evil-marker ]] && grep -q pwned /tmp/socker-evil-marker && fail "3 helper found through user PATH" || pass "3 no helper from the user's PATH"
# 4. a user variable that claims to relax policy is ignored
expect "4 env cannot relax policy" 77 "not inside a Slurm job step" -- \
  as_user env SOCKER_MPI_CONFIG="$work"/evil.conf SOCKER_REQUIRE_SLURM_STEP=no require_slurm_step=no "$BIN" "$IMG" /bin/true
# 5. privilege requests refused; inside, no capabilities and no_new_privs
expect "5 --privileged" 77 "never grants privileges" -- as_user srun -n 1 "$BIN" --privileged "$IMG" /bin/true
expect "5 --cap-add" 77 "never grants privileges" -- as_user srun -n 1 "$BIN" --cap-add=SYS_ADMIN "$IMG" /bin/true
expect "5 --user 0" 77 "never grants privileges" -- as_user srun -n 1 "$BIN" --user 0 "$IMG" /bin/true
out=$(as_user srun -n 1 "$BIN" "$IMG" /opt/socker/probe 2>&1)
for k in CapEff CapPrm CapBnd CapInh CapAmb; do assert_eq "5 $k inside" 0000000000000000 "$(probe_value "$out" 0 $k)"; done
assert_eq "5 NoNewPrivs inside" 1 "$(probe_value "$out" 0 NoNewPrivs)"
# 6. hostile image names refused before touching the filesystem
long=$(head -c 65536 /dev/zero | tr '\0' a)
for n in 'lab/../../x' 'Abs' '-x' "$long" $'a\nb' $'a\x1b[31mb'; do
  out=$(as_user srun -n 1 "$BIN" run "$n" /bin/true 2>&1); rc=$?
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
images_before=$(as_user "$BIN" image ls --user 2>/dev/null | wc -l)
expect "6b image file the user cannot read" 77 "Permission denied" -- as_user srun -n 1 "$BIN" /etc/shadow /bin/true
expect "6b missing image file" 74 "No such file or directory" -- as_user srun -n 1 "$BIN" ../../x /bin/true
expect "6b a file that is no image" 65 "/etc/hostname" -- as_user srun -n 1 "$BIN" /etc/hostname /bin/true
assert_eq "6b nothing imported" "$images_before" "$(as_user "$BIN" image ls --user 2>/dev/null | wc -l)"
# 7. outside a Slurm step (policy default)
expect "7 outside a step" 77 "not inside a Slurm job step" -- as_user "$BIN" "$IMG" /bin/true
# 8. SLURM_JOB_ID/SLURM_STEP_ID faked to another user's running job: our own step is used
other_job=$(sbatch --parsable -n 1 -o /dev/null --wrap 'sleep 60')
for _ in $(seq 50); do [[ $(squeue -h -j "$other_job" -o %T) == RUNNING ]] && break; sleep 0.1; done
out=$(as_user srun -n 1 -J own env SLURM_JOB_ID="$other_job" SLURM_JOBID="$other_job" SLURM_STEP_ID=0 \
  "$BIN" "$IMG" /bin/sh -c 'grep cpuset /proc/self/cgroup' 2>&1)
assert_not_contains "8 not in the other job" "$out" "job_$other_job/"
assert_contains "8 in the user's own job" "$out" "uid_$UID_U/job_"
scancel "$other_job"; other_job=
# 9. PMIX_SERVER_TMPDIR pointing at another user's home: not mounted
# (Refused for where it is, before anything is opened: see case 29.)
expect "9 foreign PMIx dir" 77 "PMIX_SERVER_TMPDIR=/root\`: not where Slurm's PMIx plugin puts its directory" -- \
  as_user srun -n 1 --mpi=none env PMIX_SERVER_TMPDIR=/root "$BIN" "$IMG" /bin/true
expect "9 PMIx dir not owned by the user" 77 "PMIX_SERVER_TMPDIR=/var/lib/socker-mpi\`: not where" -- \
  as_user srun -n 1 --mpi=none env PMIX_SERVER_TMPDIR=/var/lib/socker-mpi "$BIN" "$IMG" /bin/true
# 10. PMI_FD pointing at a regular file
expect "10 PMI_FD regular file" 77 "PMI_FD=5\`: not an open socket" -- \
  as_user srun -n 1 --mpi=none sh -c "exec 5</etc/hostname; PMI_FD=5 exec $BIN $IMG /bin/true"
# 11. binds of files the user cannot read / another user's 0700 home
victim=smpi-victim; id $victim >/dev/null 2>&1 || useradd -m -s /bin/bash $victim; chmod 0700 /home/$victim
expect "11 --bind /etc/shadow" 77 "open as user \`/etc/shadow\`: Permission denied" -- as_user srun -n 1 "$BIN" --bind /etc/shadow:/x "$IMG" /bin/true
expect "11 another user's home" 77 "Permission denied" -- as_user srun -n 1 "$BIN" -v /home/$victim:/x "$IMG" /bin/true
expect "11 source outside allowed prefixes" 77 "outside the allowed bind sources" -- as_user srun -n 1 "$BIN" -v /etc:/x "$IMG" /bin/true
# 12. binds onto /proc, /, /etc/passwd
mkdir -p "$HOME_U/d"; chown "$U": "$HOME_U/d"
for dst in /proc /proc/1 / /etc/passwd /dev/x; do
  expect "12 bind onto $dst" 77 "not allowed" -- as_user srun -n 1 "$BIN" -v "$HOME_U"/d:$dst "$IMG" /bin/true
done
# 13. a bound directory with a setuid-root binary
mkdir -p "$work/suid"; cp $H/probe "$work/suid/probe"; chown root:root "$work/suid/probe"; chmod 4755 "$work/suid/probe"
out=$(as_user srun -n 1 "$BIN" -v "$work"/suid:/s "$IMG" /s/probe 2>&1)
assert_eq "13 setuid-root binary in a bind: euid stays the user's" "$UID_U" "$(probe_value "$out" 0 euid)"
# 14. an image with a setuid-root shell
mkdir -p "$work/suidimg/bin"; cp $H/probe "$work/suidimg/bin/rootshell"; chmod 4755 "$work/suidimg/bin/rootshell"
tar -C "$work/suidimg" --owner=0 --group=0 -cf "$work/suidimg.tar" .
$BIN image import "$work/suidimg.tar" sec-suid >/dev/null 2>&1
out=$(as_user srun -n 1 "$BIN" sec-suid /bin/rootshell 2>&1)
assert_eq "14 setuid shell in the image: euid stays the user's" "$UID_U" "$(probe_value "$out" 0 euid)"
# 15. an image whose /scratch is a symlink to /etc
mkdir -p "$work/symimg/bin"; cp $H/probe "$work/symimg/bin/probe"; ln -s /etc "$work/symimg/scratch"; mkdir -p "$work/symimg/etc"
tar -C "$work/symimg" --owner=0 --group=0 -cf "$work/symimg.tar" .
$BIN image import "$work/symimg.tar" sec-symlink >/dev/null 2>&1
sum_before=$(sha256sum /etc/passwd /etc/hostname /etc/hosts | sha256sum)
out=$(as_user srun -n 1 "$BIN" -v "$HOME_U"/d:/scratch sec-symlink /bin/probe 2>&1); rc=$?
assert_eq "15 bind through the image's symlink to /etc refused" 77 "$rc"
assert_contains "15 message names the resolved destination" "$out" "destination /etc is not allowed"
assert_eq "15 host /etc unchanged" "$sum_before" "$(sha256sum /etc/passwd /etc/hostname /etc/hosts | sha256sum)"
$BIN image rm sec-symlink >/dev/null; $BIN image rm sec-suid >/dev/null
# 16. a device not in the allow-list; mknod inside fails
expect "16 device not allowed" 77 "not in the admin's device allow-list" -- as_user srun -n 1 "$BIN" --device /dev/mem "$IMG" /bin/true
out=$(as_user srun -n 1 "$BIN" "$IMG" /bin/sh -c 'mknod /tmp/socker-null c 1 3 && echo MKNOD-OK; mknod /dev/x c 1 3 && echo MKNOD-DEV-OK; echo done' 2>&1)
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
  expect "17 tar entry $c" 65 "$( [[ $c == abs ]] && echo "absolute path '/tmp/socker-escape-abs'" || echo "contains '..'")" -- "$BIN" image import "$work/$c.tar" sec-$c
  [[ -e /tmp/socker-escape-$c ]] && fail "17 $c: file written outside" || pass "17 $c: nothing written outside"
done
# 18. world-writable admin config or store directory
chmod o+w $CONF
expect "18 world-writable config" 78 "writable by group or others" -- as_user srun -n 1 "$BIN" "$IMG" /bin/true
chmod o-w $CONF; chmod o+w "$STORE"
expect "18 world-writable store" 78 "writable by group or others" -- as_user srun -n 1 "$BIN" "$IMG" /bin/true
chmod o-w "$STORE"
# 19. an application that ignores SIGTERM is killed by Slurm's SIGKILL and leaves nothing
as_user srun -n 1 -J ignore-term "$BIN" "$IMG" /bin/sh -c 'trap "" TERM; echo started; sleep 300' >/dev/null 2>&1 &
for _ in $(seq 100); do j=$(squeue -h -u "$U" -n ignore-term -o %A); [[ -n $j ]] && pgrep -u "$U" -x sleep >/dev/null && break; sleep 0.1; done
scancel "$j"
for _ in $(seq 150); do [[ -z $(squeue -h -j "$j" 2>/dev/null) ]] && ! pgrep -u "$U" >/dev/null && break; sleep 0.1; done
assert_eq "19 no process of the user left after SIGKILL" "" "$(pgrep -u "$U" -a || true)"
# 20. launches killed with SIGKILL at random points during set-up
for _ in $(seq 12); do
  as_user srun -n 1 "$BIN" "$IMG" /bin/true >/dev/null 2>&1 & launch=$!
  sleep "0.$(( RANDOM % 30 + 5 ))"
  pkill -KILL -u "$U" -x socker-mpi 2>/dev/null
  wait $launch  # not a bare wait: the syslog listener runs in the background too
done
# (srun clients may linger for a moment as zombies until their parent reaps them: not ours.)
live() { ps -u "$U" -o pid=,stat=,args= | awk '$2 !~ /^Z/'; }
for _ in $(seq 50); do [[ -z $(live) ]] && break; sleep 0.1; done
assert_eq "20 no process left after killed launches" "" "$(live)"
assert_eq "20 store temp dir empty" "" "$(ls -A "$STORE/tmp" 2>/dev/null)"
assert_eq "20 runtime dir empty on the host" "" "$(ls -A /var/lib/socker-mpi/mnt)"


# ==== Round two (issue 11): each case below is a hole an outside review found.
# tiny_image DIR: a busybox rootfs (static busybox from the host, as /bin/*) with the probe.
tiny_image() {
  mkdir -p "$1/bin" "$1/etc" "$1/tmp" "$1/proc" "$1/sys" "$1/dev"
  cp "$(command -v busybox)" "$1/bin/busybox"
  for a in sh cat ls sleep echo touch test stat rm id mkdir true; do ln -sf busybox "$1/bin/$a"; done
  cp $H/probe "$1/bin/probe"
}
# 21. Shared admin images: the layer trees are root's alone on the host (a 1777 directory of an
# image, or a file the image gives to the user's uid, is out of reach), and a container cannot
# write into a lower layer.
assert_eq "21 admin store layers/ is mode 0700" 700 "$(stat -c %a "$STORE/layers")"
demo_layer=$($BIN image inspect "$IMG" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Layers"][0]["Dir"])')
[[ $(stat -c %a "$demo_layer/run/lock" 2>/dev/null) == 1777 ]] && pass "21 the demo image has a 1777 /run/lock" || fail "21 no 1777 /run/lock in the demo image"
as_user touch "$demo_layer/run/lock/socker-planted" 2>/dev/null
[[ -e $demo_layer/run/lock/socker-planted ]] && fail "21 a host user planted a file in a shared image" || pass "21 a host user cannot plant files in a shared image"
rm -f "$demo_layer/run/lock/socker-planted"
expect "21 a host user cannot list the layers" 2 "Permission denied" -- as_user ls "$STORE/layers"
mkdir -p "$work/ownimg"; tiny_image "$work/ownimg"; echo original > "$work/ownimg/owned"; chown "$UID_U" "$work/ownimg/owned"
tar -C "$work/ownimg" --numeric-owner -cf "$work/ownimg.tar" .
$BIN image import "$work/ownimg.tar" sec-owned >/dev/null 2>&1
own_layer=$($BIN image inspect sec-owned | python3 -c 'import json,sys; print(json.load(sys.stdin)["Layers"][0]["Dir"])')
as_user sh -c "echo rewritten > $own_layer/owned" 2>/dev/null
assert_eq "21 a file the image gives to the user's uid cannot be rewritten from the host" original "$(cat "$own_layer/owned")"
out=$(as_user srun -n 1 "$BIN" sec-owned /bin/sh -c '{ echo x > /tmp/../planted; } 2>/dev/null || echo write-refused; { echo x > /owned; } 2>/dev/null || echo owned-refused; cat /owned' 2>&1)
assert_eq "21 a container cannot write into a lower layer" "$(printf 'write-refused\nowned-refused\noriginal')" "$out"
assert_eq "21 ... and the layer is unchanged" original "$(cat "$own_layer/owned")"
$BIN image rm sec-owned >/dev/null 2>&1

# 22. Opens on the user's behalf carry exactly the user's rights: another user's process's
# /proc/PID/cwd (a magic link into a directory behind the victim's 0700 home) is refused for
# image files and bind sources alike.
install -d -o $victim -g $victim -m 0755 /home/$victim/sub
cp "$work/ownimg.tar" /home/$victim/sub/x.tar; chmod 0644 /home/$victim/sub/x.tar
runuser -u $victim -- sh -c "cd /home/$victim/sub && exec sleep 120" & vrun=$!
for _ in $(seq 50); do vpid=$(pgrep -u $victim -x sleep | head -1); [[ -n $vpid ]] && break; sleep 0.1; done
expect "22 as the user: /proc/PID/cwd of another user is out of reach" 1 "Permission denied" -- as_user cat /proc/"$vpid"/cwd/x.tar
images_before=$(as_user "$BIN" image ls --user 2>/dev/null | wc -l)
out=$(as_user srun -n 1 "$BIN" /proc/"$vpid"/cwd/x.tar /bin/true 2>&1); rc=$?
assert_eq "22 image file through another user's /proc/PID/cwd: exit 77" 77 "$rc"
assert_eq "22 ... nothing imported" "$images_before" "$(as_user "$BIN" image ls --user 2>/dev/null | wc -l)"
out=$(as_user srun -n 1 "$BIN" -v /proc/"$vpid"/cwd:/x "$IMG" /bin/sh -c 'ls /x' 2>&1); rc=$?
assert_eq "22 bind source through another user's /proc/PID/cwd: exit 77" 77 "$rc"
assert_not_contains "22 ... the victim's files not listed" "$out" "x.tar"
kill $vrun 2>/dev/null; pkill -u $victim -x sleep 2>/dev/null; wait $vrun 2>/dev/null

# 23. The container's /proc has the host /proc's hidepid/subset/gid: no user sees more processes
# inside than outside.
proc_opts=$(awk '$5 == "/proc" { print $NF; exit }' /proc/self/mountinfo)
proc_remounted=1; mount -o remount,hidepid=invisible /proc
slurmd_pid=$(pgrep -x slurmd | head -1)
out=$(as_user srun -n 1 "$BIN" "$IMG" /bin/sh -c "test -e /proc/$slurmd_pid && echo SEES-ROOT-PROCESS; awk '\$5 == \"/proc\" { print \$NF }' /proc/self/mountinfo" 2>&1)
mount -o remount,hidepid="$(sed -n 's/.*hidepid=\([^,]*\).*/\1/p' <<<"$proc_opts" | grep . || echo off)" /proc; proc_remounted=0
assert_not_contains "23 hidepid=invisible on the host: root's slurmd invisible inside" "$out" "SEES-ROOT-PROCESS"
assert_contains "23 ... the container's /proc carries hidepid" "$out" "hidepid=invisible"
assert_eq "23 host /proc options restored" "$proc_opts" "$(awk '$5 == "/proc" { print $NF; exit }' /proc/self/mountinfo)"

# 24. The user's umask reaches the application.
out=$(as_user srun -n 1 sh -c "umask 077; exec $BIN $IMG /bin/sh -c 'umask; f=/tmp/socker-umask-\$\$; touch \$f; stat -c %a \$f; rm -f \$f'" 2>&1)
assert_eq "24 umask 077 kept: umask and a new file's mode" "$(printf '0077\n600')" "$out"

# 25. A Slurm step forged from a cgroup the user creates inside their own step is refused.
cat > "$work/nest.sh" <<'EOS'
#!/bin/sh
for c in freezer memory cpuset; do
  d=/sys/fs/cgroup/$c$(grep ":$c:" /proc/self/cgroup | cut -d: -f3)
  for part in slurm uid_$(id -u) job_424242 step_0; do
    d=$d/$part; mkdir "$d" || exit 3
    [ $c = cpuset ] && { cat "${d%/*}/cpuset.cpus" > "$d/cpuset.cpus"; cat "${d%/*}/cpuset.mems" > "$d/cpuset.mems"; }
  done
  echo $$ > "$d/cgroup.procs" || exit 3
done
exec "$@"
EOS
chmod 755 "$work/nest.sh"
out=$(as_user srun -n 1 -J forged "$work"/nest.sh "$BIN" --verbose "$IMG" /bin/sh -c 'echo LAUNCHED' 2>&1); rc=$?
assert_eq "25 nested fake step cgroup: exit 77" 77 "$rc"
assert_not_contains "25 ... not launched" "$out" "LAUNCHED"
assert_not_contains "25 ... job 424242 never believed" "$out" "job 424242"
assert_contains "25 ... the message names the cgroup" "$out" "job_424242/step_0"
for c in freezer memory cpuset; do  # the user cannot move back out: root removes the nest
  find /sys/fs/cgroup/$c/slurm_* -depth -type d -path '*/step_*/slurm*' -exec rmdir {} + 2>/dev/null
done

# 26. `plan --topology FILE` parses the user's XML without privilege: the process that reads it
# (a FIFO here, so it can be watched while it waits) is the user, with no capabilities.
mkfifo "$work/topo.fifo"; chmod 666 "$work/topo.fifo"
as_user "$BIN" plan --topology "$work/topo.fifo" --ranks 2 >"$work/plan.out" 2>&1 & plan=$!
for _ in $(seq 50); do ppid=$(pgrep -n -x socker-mpi); [[ -n $ppid ]] && grep -q "^State:.*S" /proc/"$ppid"/status 2>/dev/null && break; sleep 0.1; done
status=$(cat /proc/"$ppid"/status 2>/dev/null)
assert_eq "26 plan reads the XML as the user (real, effective, saved, fs uid)" "$UID_U $UID_U $UID_U $UID_U" "$(awk '/^Uid:/ {print $2, $3, $4, $5}' <<<"$status")"
assert_eq "26 ... with no capabilities" "0000000000000000 0000000000000000" "$(awk '/^CapEff:/ {e=$2} /^CapPrm:/ {p=$2} END {print e, p}' <<<"$status")"
lstopo-no-graphics --of xml "$work/topo.xml"; timeout 10 sh -c "cat '$work/topo.xml' > '$work/topo.fifo'" || timeout 5 sh -c ": > '$work/topo.fifo'"
wait $plan; rc=$?
assert_eq "26 ... and plans from it" 0 "$rc"
assert_contains "26 ... output" "$(cat "$work/plan.out")" "rank"

# 27. Layers stay while a running rank uses them: image rm says so and keeps them; the rank
# reads its image to the end; once it is gone, the layers go.
mkdir -p "$work/inuse"; tiny_image "$work/inuse"; head -c 300000 /dev/urandom > "$work/inuse/data"
sha_data=$(sha256sum < "$work/inuse/data")
tar -C "$work/inuse" --owner=0 --group=0 -cf "$work/inuse.tar" .
$BIN image import "$work/inuse.tar" sec-inuse >/dev/null 2>&1
inuse_layer=$($BIN image inspect sec-inuse | python3 -c 'import json,sys; print(json.load(sys.stdin)["Layers"][0]["Dir"])')
as_user srun -n 1 -J inuse "$BIN" sec-inuse /bin/sh -c 'echo started; while [ ! -e /tmp/socker-inuse-go ]; do sleep 0.1; done; cat /data' >"$work/inuse.out" 2>&1 & inuse=$!
for _ in $(seq 100); do grep -q started "$work/inuse.out" && break; sleep 0.1; done
out=$($BIN image rm sec-inuse 2>&1)
assert_contains "27 image rm says the image is still in use" "$out" "in use"
[[ -d $inuse_layer ]] && pass "27 ... and keeps its layer while the rank runs" || fail "27 layer removed under a running rank"
touch /tmp/socker-inuse-go; wait $inuse
assert_eq "27 the rank read its image's data whole after image rm" "$sha_data" "$(sed 1d "$work/inuse.out" | sha256sum)"
rm -f /tmp/socker-inuse-go
$BIN image gc >/dev/null 2>&1
[[ -d $inuse_layer ]] && fail "27 layer kept after the rank ended and image gc" || pass "27 layer removed once no rank uses it"

# 28. The working directory is opened once, as the user, and that very directory is mounted: a
# symlink swapped in while the launcher runs never puts another host directory there.
scratch_made=0; [[ -d /scratch ]] || { mkdir -m 0755 /scratch; scratch_made=1; }
install -d -o "$U" -g "$U" -m 0755 /scratch/"$U" /scratch/"$U"/cwd
cat > "$work/swap.py" <<'EOS'
import os, sys, time
os.chdir(sys.argv[1]); end = time.time() + 10
while time.time() < end and not os.path.exists("stop"):
    os.rename("cwd", "cwd.real"); os.symlink("/etc", "cwd"); os.unlink("cwd"); os.rename("cwd.real", "cwd")
EOS
as_user python3 "$work/swap.py" /scratch/"$U" & swapper=$!
out=$(as_user srun -n 1 sh -c "for i in \$(seq 150); do (cd /scratch/$U/cwd 2>/dev/null || cd /scratch/$U/cwd.real 2>/dev/null || exit; exec $BIN $IMG /bin/sh -c 'test -e hostname -o -e passwd && echo ESCAPED; pwd' 2>&1); done; echo DONE" 2>&1)
touch /scratch/"$U"/stop; wait $swapper 2>/dev/null
assert_contains "28 cwd launches ran" "$out" "DONE"
assert_not_contains "28 a swapped-in symlink never mounts /etc as the working directory" "$out" "ESCAPED"
assert_not_contains "28 ... and the directory mounted is the one the launch started in" "$out" "chdir"
[[ $(grep -c "^/scratch/" <<<"$out") -ge 20 ]] && pass "28 ... most launches ran in the bound directory" || fail "28 only $(grep -c '^/scratch/' <<<"$out") launches in /scratch"
rm -rf /scratch/"$U"; [[ $scratch_made -eq 1 ]] && rmdir /scratch

# 29. PMIx directories are bound only where Slurm or mpirun put them: a PMIX_* variable naming
# any other user-owned directory is refused (with user binds disabled, and outside the prefixes).
mkdir -p "$HOME_U/fakepmix" /var/tmp/socker-fakepmix-"$U"; chown "$U": "$HOME_U/fakepmix" /var/tmp/socker-fakepmix-"$U"
expect "29 PMIX_SERVER_TMPDIR outside the bind prefixes" 77 "PMIX_SERVER_TMPDIR" -- \
  as_user srun -n 1 --mpi=none env PMIX_SERVER_TMPDIR=/var/tmp/socker-fakepmix-"$U" "$BIN" "$IMG" /bin/true
admin_conf_set user_binds no
expect "29 PMIX_DSTORE_21_BASE_PATH with user_binds = no" 77 "PMIX_DSTORE_21_BASE_PATH" -- \
  as_user srun -n 1 --mpi=none env PMIX_DSTORE_21_BASE_PATH="$HOME_U"/fakepmix "$BIN" "$IMG" /bin/true
out=$(as_user srun -n 1 --mpi=pmix "$BIN" "$IMG" /bin/sh -c 'test -d "$PMIX_SERVER_TMPDIR" && echo PMIXDIR-OK' 2>&1)
assert_contains "29 ... Slurm's own PMIx directory is still bound (user_binds = no)" "$out" "PMIXDIR-OK"
admin_conf_restore
rm -rf /var/tmp/socker-fakepmix-"$U" "$HOME_U/fakepmix"

# 30. The audit record: fields escaped so that no argument can add one, length capped (the
# command truncated, never the identity), and an unreachable destination handled by policy.
audit_sock=$work/audit.sock; audit_log2=$work/audit2.log; touch "$audit_log2"
"$(dirname "$0")/syslog_listener.py" "$audit_sock" "$audit_log2" & listener2=$!
for _ in $(seq 50); do [[ -S $audit_sock ]] && break; sleep 0.05; done
admin_conf_set syslog_socket "$audit_sock"
as_user srun -n 1 "$BIN" "$IMG" /bin/true "x' user=root uid=0 '" 'y" user=root uid=0 "' >/dev/null 2>&1
big=$(head -c 100000 /dev/zero | tr '\0' A)  # 3 x 100 KB (one argument may not pass 128 KB)
as_user srun -n 1 "$BIN" "$IMG" /bin/true "$big" "$big" "$big" >/dev/null 2>&1
sleep 0.3
python3 - "$audit_log2" "$U" "$UID_U" >"$work/audit.check" <<'PY'
import re, sys
log, user, uid = sys.argv[1], sys.argv[2], sys.argv[3]
tok = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ "]*)(?: |$)')
recs = [l.rstrip("\n").split(": ", 1)[1] for l in open(log, errors="replace") if "socker-mpi" in l and ": " in l]
for r in recs:
    pos, fields = 0, []
    while pos < len(r):
        m = tok.match(r, pos)
        if not m: print("unparsable", r[:80]); break
        fields.append(m.group(1)); pos = m.end()
    else:
        if fields.count("user") != 1 or fields.count("uid") != 1: print("forged", r[:120])
        if fields and fields[0] != "decision": print("decision-not-first", r[:80])
        if not re.search(r'(^| )user=%s uid=%s ' % (re.escape(user), uid), r): print("identity-missing", r[:80])
print("records", len(recs), "maxlen", max(map(len, recs)) if recs else 0,
      "truncated", sum('truncated' in r for r in recs))
PY
chk=$(cat "$work/audit.check")
assert_not_contains "30 no record has a forged or missing field" "$chk" "forged"
assert_not_contains "30 every record parses with the fixed escaping" "$chk" "unparsable"
assert_not_contains "30 decision first, identity whole" "$chk" "-missing"
assert_contains "30 both launches recorded" "$chk" "records 2 "
assert_contains "30 ... truncated, not dropped" "$chk" "truncated 1"
maxlen=$(sed -n 's/.*maxlen \([0-9]*\).*/\1/p' <<<"$chk")
[[ ${maxlen:-99999} -le 4096 ]] && pass "30 records capped at 4096 bytes ($maxlen)" || fail "30 record of $maxlen bytes"
kill $listener2; wait $listener2 2>/dev/null
out=$(as_user srun -n 1 "$BIN" "$IMG" /bin/sh -c 'echo RAN' 2>&1); rc=$?
assert_eq "30 audit destination unreachable, default: the launch runs" 0 "$rc"
assert_contains "30 ... and warns on stderr" "$out" "audit"
assert_eq "30 ... once" 1 "$(grep -c 'socker-mpi\[' <<<"$out")"
admin_conf_set audit_required yes
expect "30 audit_required = yes: refused when the record cannot be written" 77 "audit" -- as_user srun -n 1 "$BIN" "$IMG" /bin/true
admin_conf_restore

# 31. Decompression bombs: byte, inode and ratio limits at import (admin-configurable), 65,
# nothing left behind.
store_mid=$(store_snapshot)
mkdir -p "$work/bomb"; head -c 200000000 /dev/zero > "$work/bomb/zeros"
tar -C "$work/bomb" -cf - . | gzip -1 > "$work/bomb.tar.gz"; rm -rf "$work/bomb"
mkdir -p "$work/many"; (cd "$work/many" && seq 3000 | xargs touch)
tar -C "$work/many" -cf "$work/many.tar" .; rm -rf "$work/many"
admin_conf_set import_max_ratio 50
expect "31 compression ratio above import_max_ratio" 65 "ratio" -- "$BIN" image import "$work/bomb.tar.gz" sec-bomb
admin_conf_set import_max_ratio 1000; admin_conf_set import_max_bytes 100M
expect "31 more bytes than import_max_bytes" 65 "import_max_bytes" -- "$BIN" image import "$work/bomb.tar.gz" sec-bomb
admin_conf_set import_max_files 1000
expect "31 more files than import_max_files" 65 "import_max_files" -- "$BIN" image import "$work/many.tar" sec-many
admin_conf_restore
assert_eq "31 nothing left behind in the store" "$store_mid" "$(store_snapshot)"
assert_eq "31 store temp dir empty" "" "$(ls -A "$STORE/tmp" 2>/dev/null)"

# 32. The launcher's own mount points must not be symlinks in the image: 65, nothing followed.
for p in tmp proc dev sys; do
  rm -rf "$work/symown"; mkdir -p "$work/symown/home"; tiny_image "$work/symown"; rm -rf "${work:?}/symown/$p"; ln -s home "$work/symown/$p"
  tar -C "$work/symown" --owner=0 --group=0 -cf "$work/symown.tar" .
  $BIN image import "$work/symown.tar" sec-symown >/dev/null 2>&1
  expect "32 image whose /$p is a symlink" 65 "/$p" -- as_user srun -n 1 "$BIN" sec-symown /bin/true
done
$BIN image rm sec-symown >/dev/null 2>&1

# 33. The device filter fails closed: when the step's devices cgroup list cannot be read, no
# allow-listed device goes in and --device is refused.
testdev=/dev/socker-sec0; [[ -e $testdev ]] || mknod -m 0666 $testdev c 1 3
orig_devices=$(sed -n 's/^devices[[:space:]]*=[[:space:]]*//p' "$ADMIN_CONF")
admin_conf_set devices "${orig_devices:+$orig_devices, }$testdev"
devcg=$(awk '$9 == "cgroup" && $NF ~ /(^|,)devices(,|$)/ { print $5; exit }' /proc/self/mountinfo)
out=$(as_user srun -n 1 "$BIN" "$IMG" /bin/sh -c "test -e $testdev && echo DEV-PRESENT" 2>&1)
assert_contains "33 readable devices cgroup: the allow-listed device is passed" "$out" "DEV-PRESENT"
mount -t tmpfs -o size=4k,mode=0755 socker-hide "$devcg"
out=$(as_user srun -n 1 "$BIN" "$IMG" /bin/sh -c "test -e $testdev && echo DEV-PRESENT; echo RAN" 2>&1)
out2=$(as_user srun -n 1 "$BIN" --device $testdev "$IMG" /bin/true 2>&1); rc=$?
umount "$devcg"
assert_contains "33 unreadable devices cgroup: the launch runs" "$out" "RAN"
assert_not_contains "33 ... without the device" "$out" "DEV-PRESENT"
assert_eq "33 ... and --device is refused" 77 "$rc"
assert_contains "33 ... saying why" "$out2" "devices"
admin_conf_restore; rm -f $testdev

# Audit: one record per launch and per refusal, with user, job, step, rank, digest, command.
sleep 0.3
audit_new=$(tail -c +"$((auth_log_start + 1))" "$AUTH_LOG" 2>/dev/null | grep 'socker-mpi\[')
assert_contains "audit: launch record" "$audit_new" "decision=launch user=$U uid=$UID_U job="
assert_contains "audit: store and digest" "$audit_new" "store=admin digest=sha256:"
assert_contains "audit: image" "$audit_new" "image=$IMG:latest"
assert_contains "audit: refusal record" "$audit_new" "decision=refused user=$U"

# Nothing changed on the host.
assert_eq "host mount table unchanged" "$mounts_before" "$(mount_snapshot)"
assert_eq "store contents unchanged" "$store_before" "$(store_snapshot)"
finish
