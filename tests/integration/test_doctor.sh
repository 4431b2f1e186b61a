#!/usr/bin/env bash
# socker-mpi doctor (issue 18): on this dev node everything is ok and a test launch runs as the
# user; then each problem doctor checks is made on purpose -- in a test config of its own, or a
# copy of the launcher -- and doctor must name it on a FAIL line, with exit status 1. As the test
# user through the installed setuid binary (doctor runs with the caller's rights), and as root.
# Not broken here: the kernel features and the cgroup controllers (a node property; their
# findings are unit-tested from facts in tests/unit/app/test_doctor.cpp).
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d /tmp/socker-doctor.XXXXXX)
chmod 0755 "$work"
trap 'rm -rf "$work"' EXIT

# doctor_as WHO ARGS...: its output, and its exit status in $rc.
rc=0
doctor_as() { local who=$1; shift
  if [[ $who == root ]]; then out=$(cd / && env -i PATH=/usr/bin:/bin SLURM_CONF="${SLURM_CONF:-/etc/slurm/slurm.conf}" "$BIN" doctor "$@" 2>&1); rc=$?
  else out=$(as_user "$BIN" doctor "$@" 2>&1); rc=$?; fi; }

# 1. This node, as the user: ready, and the launch ran as the user in a Slurm step.
doctor_as user --image "$IMG"
assert_eq "1 the dev node is ready (exit 0)" 0 "$rc"
assert_contains "1 ... the launcher checked" "$out" "ok    launcher  $BIN: root-owned, setuid (4755)"
assert_contains "1 ... Slurm's cgroup plugins checked" "$out" "ok    slurm     /etc/slurm/slurm.conf: ProctrackType=proctrack/cgroup"
assert_contains "1 ... the audit socket answers" "$out" "ok    audit     syslog at /dev/log answers"
assert_contains "1 ... a real launch, as the user" "$out" "ok    launch    srun -n 1 $BIN $IMG: ran as uid $UID_U"
assert_contains "1 ... kernel features probed" "$out" "ok    kernel    openat2 with RESOLVE_NO_MAGICLINKS"
assert_contains "1 ... the SPANK plugin enabled (plugstack.conf)" "$out" "ok    spank     /etc/slurm/plugstack.conf: required /usr/lib/x86_64-linux-gnu/slurm-wlm/spank_socker.so"
assert_not_contains "1 ... no FAIL line" "$out" "FAIL"
[[ $rc -eq 0 ]] || printf '    | %s\n' "$out"
# As root too (root's rights; the store's layers are root's).
doctor_as root --no-launch
assert_eq "1 as root: ready (exit 0)" 0 "$rc"
assert_contains "1 ... the admin store checked" "$out" "ok    store     /var/lib/socker-mpi/images: root-owned, layers root's alone"

# 2. The launcher without its setuid bit (a copy: root-owned, 0755).
install -o root -g root -m 0755 "$BIN" "$work/socker-mpi"
doctor_as user --launcher "$work/socker-mpi" --no-launch
assert_eq "2 a launcher that is not setuid: exit 1" 1 "$rc"
assert_contains "2 ... named, with the fix" "$out" "FAIL  launcher  $work/socker-mpi: not setuid (0755): launches cannot mount or join the step -- fix: chmod 4755 $work/socker-mpi"
chown "$U" "$work/socker-mpi"
doctor_as user --launcher "$work/socker-mpi" --no-launch
assert_contains "2 a launcher owned by a user: named" "$out" "FAIL  launcher  $work/socker-mpi: owned by uid $UID_U, not root"

# Test configs: the installed one with one key changed, root-owned in a root-owned directory.
conf() {  # conf NAME KEY VALUE: $work/NAME.conf
  awk -v k="$2" -v v="$3" 'BEGIN{d=0} !d && $0 ~ "^" k "[[:space:]]*=" {print k " = " v; d=1; next} !d && /^\[/ {print k " = " v; d=1} {print} END{if(!d) print k " = " v}' \
    /etc/socker-mpi/socker-mpi.conf > "$work/$1.conf"; chmod 0644 "$work/$1.conf"; }

# 3. The audit destination unreachable.
conf nosyslog syslog_socket "$work/no-syslog-here"
doctor_as user --config "$work/nosyslog.conf" --no-launch
assert_eq "3 audit socket unreachable: exit 1" 1 "$rc"
assert_contains "3 ... named" "$out" "FAIL  audit     syslog at $work/no-syslog-here: No such file or directory -- launch records are lost"
conf nosyslog-req syslog_socket "$work/no-syslog-here"; echo "audit_required = yes" >> "$work/nosyslog-req.conf"
doctor_as user --config "$work/nosyslog-req.conf" --no-launch
assert_contains "3 ... with audit_required = yes: every launch refused" "$out" "every launch is refused (audit_required = yes)"

# 4. An allow-list entry that names no device node (a directory: /dev/infiniband for
#    /dev/infiniband/*); entries with no match on this node are only a note (passed where present).
install -d "$work/infiniband"
conf nodev devices "$work/infiniband, /dev/nonexistent0, /dev/infiniband/*"
doctor_as user --config "$work/nodev.conf" --no-launch
assert_eq "4 an entry that is no device: exit 1" 1 "$rc"
assert_contains "4 ... named, with the fix" "$out" "FAIL  devices   $work/infiniband: matches $work/infiniband, which is not a character device (never passed) -- fix: name device nodes in devices = (e.g. $work/infiniband/* for a directory of them)"
assert_contains "4 ... entries with no match are a note" "$out" "note  devices   not on this node (passed where present): /dev/nonexistent0 /dev/infiniband/*"

# 5. slurm.conf without the cgroup plugins, with a TmpFS that does not exist, no PMIx default.
sed -e 's/^ProctrackType=.*/ProctrackType=proctrack\/linuxproc/' -e 's/^TaskPlugin=.*/TaskPlugin=task\/affinity/' \
    -e '/^TmpFS=/d' -e 's/^MpiDefault=.*/MpiDefault=none/' /etc/slurm/slurm.conf > "$work/slurm.conf"
echo "TmpFS=$work/no-tmpfs" >> "$work/slurm.conf"
conf badslurm slurm_conf "$work/slurm.conf"
doctor_as user --config "$work/badslurm.conf" --no-launch
assert_eq "5 slurm.conf without cgroup plugins: exit 1" 1 "$rc"
assert_contains "5 ... proctrack named" "$out" "FAIL  slurm     $work/slurm.conf: ProctrackType=proctrack/linuxproc: the ranks' containers would escape the step's cgroups"
assert_contains "5 ... task/cgroup named" "$out" "lacks task/cgroup: the step's CPU and memory limits are not enforced -- fix: TaskPlugin=task/cgroup,task/affinity"
assert_contains "5 ... TmpFS named" "$out" "FAIL  slurm     $work/slurm.conf: TmpFS=$work/no-tmpfs does not exist"
assert_contains "5 ... MpiDefault a note" "$out" "note  slurm     $work/slurm.conf: MpiDefault=none: users must pass srun --mpi=pmix"
conf noslurm slurm_conf "$work/missing-slurm.conf"
doctor_as user --config "$work/noslurm.conf" --no-launch
assert_contains "5 a missing slurm.conf named" "$out" "FAIL  slurm     "
assert_contains "5 ... by its path" "$out" "$work/missing-slurm.conf"

# 6. An admin store open to others, a runtime directory owned by a user.
install -d -m 0777 "$work/store"
conf badstore image_store "$work/store"
doctor_as user --config "$work/badstore.conf" --no-launch
assert_eq "6 a world-writable store: exit 1" 1 "$rc"
assert_contains "6 ... named" "$out" "FAIL  store     "
assert_contains "6 ... by its path, with the fix" "$out" "chmod 0755 $work/store"
install -d -m 0755 -o "$U" "$work/rt"
conf badrt runtime_dir "$work/rt"
doctor_as user --config "$work/badrt.conf" --no-launch
assert_contains "6 a runtime_dir owned by a user: named" "$out" "FAIL  store     runtime_dir $work/rt: must be a root-owned directory not writable by others"

# 7. The config itself: writable by others; an unknown key (named with its line).
conf open share_containers yes; chmod 0666 "$work/open.conf"
doctor_as user --config "$work/open.conf" --no-launch
assert_eq "7 a config writable by others: exit 1" 1 "$rc"
assert_contains "7 ... named, with the fix" "$out" "chmod 0644 $work/open.conf"
conf typo share_containers yes; echo "share_contaners = no" >> "$work/typo.conf"
doctor_as user --config "$work/typo.conf" --no-launch
assert_contains "7 an unknown key: named" "$out" "FAIL  config"
assert_contains "7 ... the key and its line" "$out" "share_contaners"

# 8. A test launch that fails: an image that is not there.
doctor_as user --image no-such-image-here --config /etc/socker-mpi/socker-mpi.conf
assert_eq "8 a failing launch: exit 1" 1 "$rc"
assert_contains "8 ... named, with the launcher's own message" "$out" "FAIL  launch    srun -n 1 $BIN no-such-image-here: exit 65"

# 9. Nothing changed, nothing left: doctor changes no file, leaves no process.
assert_eq "9 no doctor process left" "" "$(pgrep -u "$U" -f 'socker-doctor|socker-mpi doctor' || true)"
finish
