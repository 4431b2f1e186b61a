#!/usr/bin/env bash
# Engine mode and Socker's commands (issue 16, docs/docker.md), against the real dockerd that
# scripts/dockerd starts and the real Slurm, as the test user through the installed setuid
# launcher: identity, the step's cgroups for every process, the step's memory limit, exit status
# and signals, scancel, a SIGKILLed launcher, MPI over pmix/vader, `socker images/run` with an
# allow-list, arguments never seen by a shell, bad input, nothing left behind.
. "$(dirname "$0")/lib.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)
SOCK=/run/socker-mpi-docker/docker.sock
SOCKER=${SOCKER_COMPAT_BIN:-/usr/bin/socker}
D() { /usr/bin/docker -H "unix://$SOCK" "$@"; }
work=$(mktemp -d /tmp/socker-docker.XXXXXX); chmod 1777 "$work"
cleanup() {
  admin_conf_restore
  for c in $(D ps -aq --filter label=socker-mpi.uid="$UID_U" 2>/dev/null); do D rm -f "$c" >/dev/null 2>&1; done
  pkill -u "$U" -f "sleep 4[0-9]" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
"$repo/scripts/dockerd" up >/dev/null || { fail "dockerd did not start (scripts/dockerd up)"; finish; exit 1; }
"$repo/scripts/dockerd" load "$IMG" "${SOCKER_IMAGE_DIR:-/var/cache/socker-mpi/images}/demo.tar" >/dev/null \
  || { fail "demo image not loaded into dockerd"; finish; exit 1; }
ours() { D ps -aq --filter label=socker-mpi.uid="$UID_U" | wc -l; }
before_tmp=$(find /tmp -maxdepth 1 -name 'socker-mpi-engine.*' | sort)
before_mounts=$(mount_snapshot | grep -v -e socker-mpi-docker -e '/run/docker' -e 'containerd' -e 'overlay' | grep -v netns)
ED=("$BIN" --engine=docker)

# 0. Without the admin's socket engine mode is refused (77); then the test's engine is configured.
out=$(as_user srun -n 1 "${ED[@]}" "$IMG" true 2>&1); rc=$?
assert_eq "0 no docker_socket: refused (77)" "77" "$rc"
assert_contains "0 ... naming the key" "$out" "docker_socket"
admin_conf_set docker_socket "$SOCK"
# The socket stays root's: the user cannot reach the engine themselves.
assert_eq "0 the API socket is not the user's" "no" "$(as_user sh -c "test -w $SOCK && echo yes || echo no")"

# 1. Identity: uid, gid, supplementary groups as natively; no capabilities, no new privileges.
native_groups=$(as_user srun -n 1 id -G 2>&1)
out=$(as_user srun -n 1 "${ED[@]}" "$IMG" sh -c 'echo "u=$(id -u) g=$(id -g) G=$(id -G)"; grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status' 2>&1); rc=$?
assert_eq "1 ran (rc 0)" "0" "$rc"
assert_contains "1 uid and gid are the user's" "$out" "u=$UID_U g=$GID_U"
assert_contains "1 groups as natively" "$out" "G=$native_groups"
assert_contains "1 no effective capabilities" "$out" "CapEff:	0000000000000000"
assert_contains "1 empty bounding set" "$out" "CapBnd:	0000000000000000"
assert_contains "1 no_new_privs" "$out" "NoNewPrivs:	1"
# The rootfs is the image's, read-only; home and the working directory are there.
out=$(as_user srun -n 1 "${ED[@]}" "$IMG" sh -c 'test -e /opt/socker/probe && echo image; touch /x 2>/dev/null || echo ro; pwd; test -d "$HOME" && echo home' 2>&1)
assert_eq "1 the image's rootfs, read-only, cwd = \$PWD, home there" "image ro $HOME_U home" "$(tr '\n' ' ' <<<"$out" | sed 's/ $//')"

# --dry-run prints what the engine would be asked to make, and makes nothing.
out=$(as_user srun -n 1 "${ED[@]}" --dry-run "$IMG" id 2>&1)
assert_contains "1 --dry-run: the create request, in the step's cgroup" "$out" "\"CgroupParent\":\"/"
assert_contains "1 ... no capabilities" "$out" '"CapDrop":["ALL"]'
assert_contains "1 ... the command behind the reaper" "$out" '"--","id"]'
assert_eq "1 ... and no container made" "0" "$(ours)"

# 2. Every process of the container, a grandchild included, in the step's cgroups (memory,
#    cpuset, freezer) and on the rank's CPUs.
out=$(as_user srun -n 2 --cpu-bind=cores "${ED[@]}" "$IMG" sh -c 'sh -c "echo r=\$SLURM_PROCID \$(grep -E \":(memory|cpuset|freezer):\" /proc/self/cgroup | tr \"\n\" \" \") cpus=\$(grep Cpus_allowed_list /proc/self/status | cut -f2)"' 2>&1)
for r in 0 1; do
  line=$(grep "^r=$r " <<<"$out")
  for c in memory cpuset freezer; do
    [[ $line =~ :$c:/[^\ ]*/uid_${UID_U}/job_[0-9]+/step_[0-9]+/[0-9a-f]{64} ]] \
      && pass "2 rank $r grandchild in the step's $c cgroup (its container's, below the step)" \
      || fail "2 rank $r $c cgroup: $line"
  done
  assert_eq "2 rank $r on its own CPU" "cpus=$r" "$(grep -o 'cpus=[0-9,-]*' <<<"$line")"
done

# 3. The step's memory limit holds for the container: --mem=100M and 500 MB wanted: OOM-killed.
# (tail keeps a line without newline in memory: 500 MB of zeros is one allocation growing.)
as_user srun -n 1 --mem=100M "${ED[@]}" "$IMG" sh -c 'head -c 500M /dev/zero | tail > /dev/null || exit 99; echo survived' >"$work/oom.out" 2>&1; rc=$?
assert_eq "3 --mem=100M: a 500 MB allocation is killed inside the container" "99" "$rc"
as_user srun -n 1 --mem=100M "${ED[@]}" "$IMG" sh -c 'head -c 50M /dev/zero | tail > /dev/null && echo survived' >"$work/oom2.out" 2>&1
assert_contains "3 ... while 50 MB pass" "$(cat "$work/oom2.out")" "survived"

# 4. Exit status and signals: 7 -> 7; a command killed by SIGTERM -> 143 (128+15).
as_user srun -n 1 "${ED[@]}" "$IMG" sh -c 'exit 7' >/dev/null 2>&1; rc=$?
assert_eq "4 exit 7 -> 7" "7" "$rc"
as_user srun -n 1 "${ED[@]}" "$IMG" sh -c 'kill -TERM $$' >/dev/null 2>&1; rc=$?
assert_eq "4 killed by SIGTERM -> 143" "143" "$rc"
as_user srun -n 1 "${ED[@]}" "$IMG" no-such-command >"$work/nf.out" 2>&1; rc=$?
assert_eq "4 a command not in the image -> 127" "127" "$rc"
assert_contains "4 ... saying so" "$(cat "$work/nf.out")" "no-such-command: command not found in the image"

# 5. scancel reaches the application (SIGTERM forwarded through the engine to the command).
rm -f "$work/sig.flag"
as_user srun -n 1 -J dockersig "${ED[@]}" "$IMG" sh -c "trap 'echo got-TERM > $work/sig.flag; exit 3' TERM; touch $work/sig.started; while :; do sleep 0.2; done" >"$work/sc.out" 2>&1 & sp=$!
for _ in $(seq 150); do [[ -e $work/sig.started ]] && break; sleep 0.1; done
job=$(squeue -h -u "$U" -n dockersig -o %i | head -1)
scancel -s TERM "$job"
wait $sp; rc=$?
assert_eq "5 scancel -s TERM: the application got SIGTERM" "got-TERM" "$(cat "$work/sig.flag" 2>/dev/null)"
assert_eq "5 ... and its exit status (3) is the rank's" "3" "$rc"

# 6. A SIGKILLed launcher leaves no container: the reaper ends it, the engine removes it.
as_user srun -n 1 -J dockerkill "${ED[@]}" "$IMG" sleep 45 >/dev/null 2>&1 & sp=$!
running() { D ps -q --filter label=socker-mpi.uid="$UID_U" --filter status=running | wc -l; }
for _ in $(seq 150); do [[ $(running) -ge 1 ]] && break; sleep 0.1; done
assert_eq "6 the rank's container runs" "1" "$(running)"
lp=$(pgrep -u "$U" -f -- "--engine=docker $IMG sleep 45" | head -1)
[[ -n $lp ]] && kill -KILL "$lp"
for _ in $(seq 100); do [[ $(ours) -eq 0 ]] && break; sleep 0.1; done
assert_eq "6 launcher SIGKILLed: no container of ours left (docker ps -a)" "0" "$(ours)"
wait $sp 2>/dev/null
sleep 0.3
assert_eq "6 ... and no process of the container" "" "$(pgrep -u "$U" -f 'sleep 45')"

# 7. MPI: hello + ring + 4 MiB exchanges under srun --mpi=pmix, shared memory (vader) between ranks.
out=$(as_user env OMPI_MCA_btl=vader,self srun --mpi=pmix -n 2 "${ED[@]}" "$IMG" /opt/socker/mpi-hello-ring 2>&1); rc=$?
assert_eq "7 pmix ring over vader: rc 0" "0" "$rc"
assert_contains "7 ... both ranks said hello" "$out" "of 2"
assert_contains "7 ... the ring and 4 MiB exchanges passed" "$out" "RESULT ok ranks=2"
assert_not_contains "7 ... with no transport error" "$out" "errno"

# 8. Arguments are argv, never a shell's input.
out=$(as_user srun -n 1 "${ED[@]}" "$IMG" /bin/echo '; rm -rf /tmp' '$(id)' '`id`' '&& id' 2>&1)
assert_eq "8 ';', \$(...), backquotes and && reach the command verbatim" '; rm -rf /tmp $(id) `id` && id' "$out"

# 9. Bad input: an image the engine does not have (65), an image file (64), --mpi (64), a bind
#    outside the allowed prefixes (77).
as_user srun -n 1 "${ED[@]}" no-such-image:1 true >"$work/ni.out" 2>&1; rc=$?
assert_eq "9 an image not in the engine: 65" "65" "$rc"
assert_contains "9 ... named" "$(cat "$work/ni.out")" "no-such-image:1"
as_user srun -n 1 "${ED[@]}" /tmp/x.tar true >/dev/null 2>&1; rc=$?
assert_eq "9 an image file: 64" "64" "$rc"
as_user srun -n 1 "${ED[@]}" --mpi "$IMG" true >/dev/null 2>&1; rc=$?
assert_eq "9 --mpi with the engine: 64" "64" "$rc"
as_user srun -n 1 "${ED[@]}" -v /etc:/data "$IMG" true >/dev/null 2>&1; rc=$?
assert_eq "9 a bind from outside the allowed prefixes: 77" "77" "$rc"
as_user srun -n 1 "${ED[@]}" --privileged "$IMG" true >/dev/null 2>&1; rc=$?
assert_eq "9 --privileged: 77" "77" "$rc"
# A user bind that is a symlink out of the allowed prefixes: refused where it resolves.
as_user ln -sfn /etc "$HOME_U/etc-link"
as_user srun -n 1 "${ED[@]}" -v "$HOME_U/etc-link:/data" "$IMG" true >"$work/sl.out" 2>&1; rc=$?
assert_eq "9 a bind through a symlink out of the prefixes: 77" "77" "$rc"
rm -f "$HOME_U/etc-link"

# 10. The admin's default engine per node: engine = docker in [node:*] runs through the engine.
admin_conf_append $'[node:*]\nengine = docker'
out=$(as_user srun -n 1 "$BIN" "$IMG" sh -c 'grep -E ":memory:" /proc/self/cgroup' 2>&1)
[[ $out =~ /step_[0-9]+/[0-9a-f]{64}$ ]] && pass "10 engine = docker in [node:*]: through the engine" || fail "10 admin default engine: $out"
out=$(as_user srun -n 1 "$BIN" --engine=inplace "$IMG" sh -c 'grep -E ":memory:" /proc/self/cgroup' 2>&1)
[[ $out =~ /step_[0-9]+(/task_[0-9]+)?$ ]] && pass "10 ... --engine=inplace overrides it" || fail "10 inplace override: $out"
admin_conf_restore
admin_conf_set docker_socket "$SOCK"

# 11. Socker's commands: images, run, the allow-list (the config's key and Socker's file).
out=$(as_user "$SOCKER" --version 2>&1)
assert_contains "11 socker --version" "$out" "socker"
out=$(as_user "$SOCKER" -h 2>&1); rc=$?
assert_eq "11 socker -h: 0" "0" "$rc"
assert_contains "11 ... usage" "$out" "socker run IMAGE CMD"
printf '# Socker allow-list\n%s\n\nubuntu:22.04\n' "$IMG" > "$work/socker-images"; chmod 0644 "$work/socker-images"
admin_conf_set socker_images_file "$work/socker-images"
out=$(as_user "$SOCKER" images 2>&1)
assert_eq "11 socker images: the allow-list" "$IMG:latest ubuntu:22.04" "$(tr '\n' ' ' <<<"$out" | sed 's/ $//')"
mkdir -p "$HOME_U/sockerwd" && chown "$U" "$HOME_U/sockerwd"
out=$(cd "$HOME_U/sockerwd" && runuser -u "$U" -- env -i HOME="$HOME_U" USER="$U" PATH=/usr/bin:/bin \
  srun -n 1 "$SOCKER" run "$IMG" sh -c 'echo "u=$(id -u) pwd=$(pwd)"' 2>&1)
assert_eq "11 socker run: as the user, in \$PWD" "u=$UID_U pwd=$HOME_U/sockerwd" "$out"
as_user srun -n 1 "$SOCKER" run mpi-mpich true >"$work/na.out" 2>&1; rc=$?
assert_eq "11 socker run of an image not allowed: 77" "77" "$rc"
assert_contains "11 ... saying so" "$(cat "$work/na.out")" "socker images"
out=$(as_user srun -n 1 "$SOCKER" run "$IMG" /bin/echo '; rm -rf ~' '$(touch /tmp/pwned)' 2>&1)
assert_eq "11 socker run: injection attempts are plain arguments" '; rm -rf ~ $(touch /tmp/pwned)' "$out"
assert_eq "11 ... nothing ran them" "no" "$(test -e /tmp/pwned && echo yes || echo no)"
as_user "$SOCKER" ps >/dev/null 2>&1; rc=$?
assert_eq "11 an unknown socker command: 64" "64" "$rc"
chmod 0666 "$work/socker-images"
as_user "$SOCKER" images >/dev/null 2>&1; rc=$?
assert_eq "11 a writable allow-list file is refused (78)" "78" "$rc"
admin_conf_restore
admin_conf_set docker_socket "$SOCK"
admin_conf_set engine docker
out=$(as_user srun -n 1 "$SOCKER" run "$IMG" sh -c 'grep -E ":memory:" /proc/self/cgroup' 2>&1)
[[ $out =~ /step_[0-9]+/[0-9a-f]{64}$ ]] && pass "11 socker run through the engine when the admin says so" || fail "11 socker + engine: $out"
admin_conf_restore

# 12. image import docker-daemon:NAME: the engine's image, through its API, into the admin store
#     (root); a user who cannot reach the socket cannot; an image the engine lacks: 65, no entry.
admin_conf_set docker_socket "$SOCK"
out=$("$BIN" image import "docker-daemon:$IMG" engine-copy:1 2>&1); rc=$?
assert_eq "12 import docker-daemon:$IMG as root: rc 0" "0" "$rc"
assert_contains "12 ... a docker-archive" "$out" "(docker-archive)"
out=$(as_user srun -n 1 "$BIN" engine-copy:1 sh -c 'test -e /opt/socker/probe && echo same-image' 2>&1)
assert_eq "12 ... and it launches in place" "same-image" "$out"
"$BIN" image import docker-daemon:no-such-image:9 never:1 >"$work/di.out" 2>&1; rc=$?
assert_eq "12 an image the engine lacks: 65" "65" "$rc"
assert_eq "12 ... and no entry for it" "" "$("$BIN" image ls | grep '^never ')"
as_user "$BIN" image import --user "docker-daemon:$IMG" mine:1 >"$work/du.out" 2>&1; rc=$?
assert_eq "12 --user, the socket not the user's: refused (77)" "77" "$rc"
assert_contains "12 ... saying why" "$(cat "$work/du.out")" "may not use the Docker engine"
"$BIN" image rm engine-copy:1 >/dev/null 2>&1
admin_conf_restore

# 13. Nothing left: no container of ours, no scratch files, no host mounts, no processes.
sleep 0.3
assert_eq "13 no container of the user in the engine" "0" "$(ours)"
assert_eq "13 no scratch directory left in /tmp" "$before_tmp" "$(find /tmp -maxdepth 1 -name 'socker-mpi-engine.*' | sort)"
# The engine makes the step's path in the hierarchies Slurm does not use (pids, cpu, blkio, ...);
# each engine launch removes this user's empty ones: only the last launch's job/step remain.
left=$(find /sys/fs/cgroup/pids/slurm*/uid_"$UID_U" -mindepth 1 -type d 2>/dev/null | wc -l)
[[ $left -le 2 ]] && pass "13 cgroups outside Slurm's: at most the last launch's job/step left ($left)" \
  || fail "13 $left cgroup directories of the user left in the pids hierarchy"
assert_eq "13 no process of the user left (zombies aside)" "" "$(ps -u "$U" -o stat=,pid=,comm= | awk '$1 !~ /^Z/')"
after_mounts=$(mount_snapshot | grep -v -e socker-mpi-docker -e '/run/docker' -e 'containerd' -e 'overlay' | grep -v netns)
[[ $before_mounts == "$after_mounts" ]] && pass "13 host mounts as before" || { fail "13 mounts left:"; diff <(echo "$before_mounts") <(echo "$after_mounts") | head; }
finish
