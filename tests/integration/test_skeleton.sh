#!/usr/bin/env bash
# The walking skeleton: srun -n N socker-mpi IMAGE CMD runs a real container, as the user,
# inside the Slurm step, exactly as a native rank would see it.
. "$(dirname "$0")/lib.sh"
mounts_before=$(mount_snapshot)

# Native and container probes of the same 2-rank layout, in one allocation.
probe_step "$BIN $IMG"

# The demo command of the issue.
out=$(as_user srun -n 2 "$BIN" "$IMG" /bin/sh -c 'id; cat /etc/os-release; cat /proc/self/cgroup' 2>&1)
assert_contains "id inside" "$out" "uid=$UID_U($U) gid=$GID_U"
assert_contains "image os-release" "$out" 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"'
assert_contains "step cgroup" "$out" "cpuset:/slurm_$(hostname -s)/uid_$UID_U/job_"

# Exit status passes through.
as_user srun -n 1 "$BIN" "$IMG" /opt/socker/probe --exit 7 >/dev/null 2>&1
assert_eq "exit status 7 -> 7" "7" "$?"
as_user srun -n 1 "$BIN" "$IMG" /bin/sh -c 'kill -USR1 $$' >/dev/null 2>&1
rc=$?
[[ $rc -ne 0 ]] && pass "death by signal is not success (rc $rc)" || fail "death by signal reported success"

# scancel (SIGTERM) reaches the application: no launcher process in between.
log=$(mktemp); chmod 644 "$log"
as_user srun -n 1 -J sigterm-test "$BIN" "$IMG" /opt/socker/probe --wait-term 30 >"$log" 2>&1 &
spid=$!
for _ in $(seq 100); do grep -q waiting "$log" && break; sleep 0.1; done
job=$(squeue -h -u "$U" -n sigterm-test -o %A | head -1)
scancel --signal=TERM "$job"
wait $spid
assert_contains "SIGTERM delivered to the application" "$(cat "$log")" "sigterm=received"
rm -f "$log"

# Bad input: clear one-line messages and documented exit codes.
out=$(as_user srun -n 1 "$BIN" dem /bin/true 2>&1); rc=$?
assert_eq "unknown image exit code" "65" "$rc"
assert_contains "unknown image message" "$out" "socker-mpi[rank 0]: image \`dem:latest\`: no such image"
assert_contains "unknown image suggestion" "$out" "did you mean 'demo'?"
out=$(as_user srun -n 1 "$BIN" "$IMG" 2>&1); rc=$?
assert_eq "missing command exit code" "64" "$rc"
assert_contains "missing command message" "$out" "no command given and image 'demo' has no Entrypoint or Cmd"
out=$(as_user "$BIN" "$IMG" /bin/true 2>&1); rc=$?
assert_eq "outside a Slurm step exit code" "77" "$rc"
assert_contains "outside a Slurm step message" "$out" "not inside a Slurm job step"
out=$(as_user srun -n 1 "$BIN" "$IMG" /no/such/cmd 2>&1); rc=$?
assert_eq "command not found exit code" "127" "$rc"
out=$(as_user srun -n 1 "$BIN" --bogus "$IMG" /bin/true 2>&1); rc=$?
assert_eq "unknown option exit code" "64" "$rc"

# Nothing left behind on the host.
sleep 0.5
assert_eq "host mount table unchanged" "$mounts_before" "$(mount_snapshot)"
left=$(pgrep -u "$U" -f 'probe|socker-mpi' || true)
assert_eq "no process of the user left" "" "$left"
finish
