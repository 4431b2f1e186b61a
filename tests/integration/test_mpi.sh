#!/usr/bin/env bash
# MPI in the container, as the unprivileged test user, on the real dev cluster (issue 4):
# mpi-hello-ring (hello + token ring + 4 MiB exchanges, data checked) under srun --mpi=pmix,
# mpirun (batch step, salloc, and refused outside Slurm), srun --mpi=pmi2, on one node and on a
# second, emulated two-node cluster; Open MPI's transport as the library reports it (vader with
# CMA on a node, tcp across nodes); device pass-through from the admin's allow-list.
# Needs: the demo image, the host copies of the MPI programs in /usr/local/libexec/socker-mpi-test
# (scripts/check installs both); optional image mpi-mpich (examples/mpi-image.sh --mpi mpich
# --bench mpi-mpich) for the MPICH + PMI2 checks.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"
RING=/opt/socker/mpi-hello-ring
NATIVE_RING=$HOST_BIN/mpi-hello-ring
VERBOSE=(env OMPI_MCA_btl_base_verbose=100)
TEST_DEV=/dev/socker-test0
made_dev=0
section() { echo "# $* (t=${SECONDS}s)"; }
# Everything this test starts carries SOCKER_TEST_MPI=<pid> in its environment (srun, mpirun
# and socker-mpi pass it on), so leftovers are found even while other tests run as the same user.
MARK="SOCKER_TEST_MPI=$$"
me() { as_user env "$MARK" "$@"; }
me_multi() { as_user env "$MARK" SLURM_CONF="$MULTI_CONF" "$@"; }
alloc=""
cleanup() {
  [[ -n $alloc ]] && scancel "$alloc" 2>/dev/null
  admin_conf_restore
  [[ $made_dev -eq 1 ]] && rm -f "$TEST_DEV"
  multi_down
  rm -rf "${work:-}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[[ -x $NATIVE_RING ]] || { fail "host copy $NATIVE_RING missing (scripts/check installs it)"; finish; exit; }
work=$(mktemp -d /tmp/socker-test-mpi.XXXXXX); chown "$U" "$work"

# ---------------------------------------------------------------- mpirun outside Slurm
section "mpirun outside Slurm"
# The default admin policy (require_slurm_step = yes) refuses every rank. (mpirun inside
# allocations is checked on the two-node cluster below, which is not shared: no queueing.)
out=$(me mpirun -n 2 "$BIN" "$IMG" $RING 2>&1); rc=$?
assert_eq "mpirun outside Slurm: exit 77" "77" "$rc"
assert_contains "mpirun outside Slurm: message" "$out" \
  "refused \`launch\`: not inside a Slurm job step (the admin requires one)"
assert_not_contains "mpirun outside Slurm: nothing ran" "$out" "hello from rank"

# One allocation (2 CPUs of the shared node) held for the one-node steps: on a busy shared
# cluster every new job may wait for the node, a step in a held allocation starts at once.
alloc=$(me salloc --no-shell -n 2 -J socker-test-mpi 2>&1 | sed -n 's/.*Granted job allocation \([0-9]*\).*/\1/p')
[[ $alloc =~ ^[0-9]+$ ]] || { fail "salloc --no-shell -n 2 gave no allocation"; finish; exit; }
sr() { me srun --jobid="$alloc" "$@"; }
srv() { me env OMPI_MCA_btl_base_verbose=100 srun --jobid="$alloc" "$@"; }
# ---------------------------------------------------------------- one node, srun --mpi=pmix
section "one node, srun --mpi=pmix"
# Native and container in one allocation, so both see the same node and CPUs.
native=$(srv --mpi=pmix -n 2 "$NATIVE_RING" --expect-ranks 2 2>&1); rc=$?
assert_eq "pmix: native run ok" "0" "$rc"
cont=$(srv --mpi=pmix -n 2 "$BIN" "$IMG" $RING --expect-ranks 2 2>&1); rc=$?
assert_eq "pmix: container exit 0" "0" "$rc"
assert_contains "pmix: container RESULT" "$cont" "RESULT ok ranks=2"
assert_eq "pmix: container ranks on this node" "0 $(hostname -s)
1 $(hostname -s)" "$(rank_hosts "$cont")"
assert_eq "pmix: container uses vader between the ranks (bml)" "0 1 vader
1 0 vader" "$(btl_pairs "$cont")"
assert_eq "pmix: same transports as native" "$(btl_pairs "$native")" "$(btl_pairs "$cont")"
assert_contains "pmix: vader single copy is CMA" "$cont" "info: btl_vader_single_copy_mechanism=cma"
assert_contains "pmix: the image's Open MPI" "$cont" "library=Open MPI v4.1.4"
assert_no_mpi_errors "pmix container" "$cont"

# ---------------------------------------------------------------- srun --mpi=pmi2
section "srun --mpi=pmi2"
# Debian's Open MPI has no PMI-1/PMI-2 client (only PMIx): under --mpi=pmi2 MPI_Init fails
# natively. The container must fail the same way (same message, same exit), not differently.
n_out=$(sr --mpi=pmi2 -n 2 "$NATIVE_RING" 2>&1); n_rc=$?
c_out=$(sr --mpi=pmi2 -n 2 "$BIN" "$IMG" $RING 2>&1); c_rc=$?
assert_eq "pmi2 + Open MPI: native fails (no PMI2 in Debian's Open MPI)" "1" "$n_rc"
assert_eq "pmi2 + Open MPI: container fails with the same exit" "$n_rc" "$c_rc"
assert_contains "pmi2 + Open MPI: native says why" "$n_out" "OMPI was not built with SLURM's PMI support"
assert_contains "pmi2 + Open MPI: container says the same" "$c_out" "OMPI was not built with SLURM's PMI support"
norm() { grep -E 'OPAL ERROR|OMPI was not built|An error occurred in MPI_Init' <<<"$1" | sed -E 's/\[[^]]*:[0-9]+\]//' | sort -u; }
assert_eq "pmi2 + Open MPI: same error lines natively and in the container" "$(norm "$n_out")" "$(norm "$c_out")"
assert_not_contains "pmi2 + Open MPI: no launcher error" "$c_out" "socker-mpi["
# MPICH speaks PMI2 over the PMI_FD socket Slurm passes: that fd must survive into the container.
if [[ -n $(as_user "$BIN" image ls 2>/dev/null | awk '$1 == "mpi-mpich"') ]]; then
  out=$(sr --mpi=pmi2 -n 2 "$BIN" mpi-mpich /opt/bench/mpi-hello-ring --expect-ranks 2 2>&1); rc=$?
  assert_eq "pmi2 + MPICH in the container: exit 0" "0" "$rc"
  assert_contains "pmi2 + MPICH: RESULT" "$out" "RESULT ok ranks=2"
  assert_contains "pmi2 + MPICH: the image's MPICH" "$out" "library=MPICH"
  out=$(sr --mpi=none -n 2 "$BIN" mpi-mpich /opt/bench/mpi-hello-ring --expect-ranks 2 2>&1); rc=$?
  assert_eq "MPICH without PMI2 falls apart into singletons (control)" "2" "$rc"
else
  echo "skip - $T: image mpi-mpich absent (examples/mpi-image.sh --mpi mpich --bench mpi-mpich): MPICH + PMI2 not checked"
fi

# ---------------------------------------------------------------- devices
section "devices"
# A test-only char device (1:3, like /dev/null) in the admin's allow-list appears inside, as the
# same device, and opens; --device outside the allow-list is refused.
[[ -e $TEST_DEV ]] || { mknod -m 0666 "$TEST_DEV" c 1 3 && made_dev=1; }
out=$(sr -n 1 "$BIN" "$IMG" /bin/sh -c "ls $TEST_DEV 2>&1" 2>&1)
assert_contains "device not in the allow-list: absent inside" "$out" "No such file or directory"
orig_devices=$(sed -n 's/^devices[[:space:]]*=[[:space:]]*//p' "$ADMIN_CONF")
if admin_conf_set_devices "${orig_devices:+$orig_devices, }$TEST_DEV"; then
  assert_eq "admin config stays root-owned 0644" "root:root 644" "$(stat -c '%U:%G %a' "$ADMIN_CONF")"
  probe="stat -c '%F %t:%T' $TEST_DEV && exec 3<>$TEST_DEV && echo opened && echo x >&3 && echo written"
  out=$(sr -n 1 "$BIN" "$IMG" /bin/sh -c "$probe" 2>&1); rc=$?
  assert_eq "allowed device: exit 0" "0" "$rc"
  assert_contains "allowed device: char device 1:3 inside" "$out" "character special file 1:3"
  assert_contains "allowed device: opens" "$out" "opened"
  assert_contains "allowed device: writable" "$out" "written"
  out=$(sr -n 1 "$BIN" --device $TEST_DEV "$IMG" /bin/sh -c "$probe" 2>&1); rc=$?
  assert_eq "--device of an allowed device: exit 0" "0" "$rc"
  out=$(sr -n 1 "$BIN" --device /dev/mem "$IMG" /bin/true 2>&1); rc=$?
  assert_eq "--device /dev/mem: exit 77" "77" "$rc"
  assert_contains "--device /dev/mem: message" "$out" "not in the admin's device allow-list"
  out=$(sr -n 1 "$BIN" "$IMG" /bin/sh -c 'ls /dev/mem' 2>&1)
  assert_contains "/dev/mem not inside" "$out" "No such file or directory"
else
  fail "could not add $TEST_DEV to the devices key of $ADMIN_CONF"
fi
admin_conf_restore
assert_eq "admin config restored" "$orig_devices" "$(sed -n 's/^devices[[:space:]]*=[[:space:]]*//p' "$ADMIN_CONF")"

scancel "$alloc"; alloc=""

# ---------------------------------------------------------------- two emulated nodes
section "two emulated nodes"
if multi_up; then
  pass "second dev cluster up (n1, n2; $MULTI_CONF)"
  # The emulated nodes n1, n2 belong to a second cluster on this host: the admin says which
  # slurm.conf describes them (the launcher reads TmpFS from it).
  admin_conf_append "$(printf '[node:n*]\nslurm_conf = %s' "$MULTI_CONF")"
  # Slurm's PMIx plugin gives each step an app dir under this cluster's TmpFS; the launcher must
  # bind that one (it reads TmpFS from a slurm.conf: is it this cluster's?).
  tmpfs=$(sed -n 's/^TmpFS=//p' "$MULTI_CONF" | sed 's/%n/n1/; s/%h/n1/')
  spmix=$(me_multi srun -N 1 -n 1 -w n1 "$BIN" --dry-run "$IMG" /bin/true 2>&1 | grep -o '"target": *"[^"]*spmix_appdir[^"]*"' | cut -d'"' -f4)
  assert_contains "2 nodes: the spmix app dir bound is under this cluster's TmpFS ($tmpfs)" "$spmix" "$tmpfs/spmix_appdir_${UID_U}_"
  # srun --mpi=pmix -N 2 -n 4: two ranks per node; vader within a node, tcp across.
  out=$(me_multi "${VERBOSE[@]}" srun --mpi=pmix -N 2 -n 4 "$BIN" "$IMG" $RING --expect-ranks 4 2>&1); rc=$?
  assert_eq "2 nodes, srun --mpi=pmix: exit 0" "0" "$rc"
  assert_contains "2 nodes, srun --mpi=pmix: RESULT" "$out" "RESULT ok ranks=4"
  hosts=$(rank_hosts "$out")
  assert_eq "2 nodes, srun --mpi=pmix: ranks on n1 and n2" "0 n1
1 n1
2 n2
3 n2" "$hosts"
  assert_eq "2 nodes, srun --mpi=pmix: vader within a node, tcp across (bml)" \
    "$(expected_pairs "0 n1
1 n1
2 n2
3 n2")" "$(btl_pairs "$out")"
  assert_no_mpi_errors "2 nodes, srun --mpi=pmix" "$out"
  # mpirun inside allocations. salloc's shell runs on the submit host (vm), which is not a node
  # of this cluster, as on a real cluster's login node: mpirun starts one orted per node with
  # srun, and the ranks, the orteds' children, are inside that step. (On the shared one-node
  # cluster the submit host *is* the node: there mpirun would fork the ranks outside any step,
  # and they are refused like "mpirun outside Slurm".)
  out=$(me_multi "${VERBOSE[@]}" salloc -Q -N 1 -n 2 mpirun -n 2 "$BIN" "$IMG" $RING --expect-ranks 2 2>&1); rc=$?
  assert_eq "1 node, salloc mpirun: exit 0" "0" "$rc"
  assert_contains "1 node, salloc mpirun: RESULT" "$out" "RESULT ok ranks=2"
  assert_eq "1 node, salloc mpirun: both ranks on n1" "0 n1
1 n1" "$(rank_hosts "$out")"
  assert_eq "1 node, salloc mpirun: vader between the ranks" "0 1 vader
1 0 vader" "$(btl_pairs "$out")"
  assert_contains "1 node, salloc mpirun: CMA" "$out" "info: btl_vader_single_copy_mechanism=cma"
  assert_no_mpi_errors "1 node, salloc mpirun" "$out"
  # A batch script: mpirun forks the ranks inside the job's batch step.
  cat > "$work/mpirun.sbatch" <<EOF
#!/bin/sh
cat /proc/self/cgroup
OMPI_MCA_btl_base_verbose=100 mpirun -n 2 $BIN $IMG $RING --expect-ranks 2
echo "mpirun rc=\$?"
EOF
  chmod 755 "$work/mpirun.sbatch"
  job=$(me_multi sbatch --parsable -N 1 -n 2 -o "$work/mpirun.out" "$work/mpirun.sbatch")
  [[ $job =~ ^[0-9]+$ ]] || fail "sbatch gave no job id: '$job'"
  for _ in $(seq 300); do [[ -z $(SLURM_CONF=$MULTI_CONF squeue -h -j "${job:-0}" -t PD,CF,R,CG 2>/dev/null) ]] && break; sleep 0.2; done
  out=$(cat "$work/mpirun.out" 2>&1)
  assert_contains "sbatch mpirun: ranks in the batch step" "$out" "/job_$job/step_batch"
  assert_contains "sbatch mpirun: exit 0" "$out" "mpirun rc=0"
  assert_contains "sbatch mpirun: RESULT" "$out" "RESULT ok ranks=2"
  assert_eq "sbatch mpirun: vader between the ranks" "0 1 vader
1 0 vader" "$(btl_pairs "$out")"
  assert_contains "sbatch mpirun: CMA" "$out" "info: btl_vader_single_copy_mechanism=cma"
  assert_no_mpi_errors "sbatch mpirun" "$out"
  # Two nodes: one rank each, tcp between them.
  out=$(me_multi "${VERBOSE[@]}" salloc -Q -N 2 -n 2 mpirun -n 2 "$BIN" "$IMG" $RING --expect-ranks 2 2>&1); rc=$?
  assert_eq "2 nodes, salloc mpirun: exit 0" "0" "$rc"
  assert_contains "2 nodes, salloc mpirun: RESULT" "$out" "RESULT ok ranks=2"
  assert_eq "2 nodes, salloc mpirun: one rank per node" "0 n1
1 n2" "$(rank_hosts "$out")"
  assert_eq "2 nodes, salloc mpirun: tcp across nodes" "0 1 tcp
1 0 tcp" "$(btl_pairs "$out")"
  assert_no_mpi_errors "2 nodes, salloc mpirun" "$out"
  if [[ -n $(as_user "$BIN" image ls 2>/dev/null | awk '$1 == "mpi-mpich"') ]]; then
    out=$(me_multi srun --mpi=pmi2 -N 2 -n 4 "$BIN" mpi-mpich /opt/bench/mpi-hello-ring --expect-ranks 4 2>&1); rc=$?
    assert_eq "2 nodes, pmi2 + MPICH: exit 0" "0" "$rc"
    assert_contains "2 nodes, pmi2 + MPICH: RESULT" "$out" "RESULT ok ranks=4"
    assert_eq "2 nodes, pmi2 + MPICH: ranks on n1 and n2" "n1 n2" "$(rank_hosts "$out" | awk '{print $2}' | sort -u | xargs)"
  fi
  sleep 0.5
  left=$(cat /sys/fs/cgroup/freezer/slurm_n[12]/uid_"$UID_U"/job_*/step_*/cgroup.procs 2>/dev/null | xargs)
  assert_eq "2 nodes: no process left in the jobs' cgroups" "" "$left"
  admin_conf_restore
  multi_down
else
  fail "second dev cluster did not come up"
fi

# Nothing of ours left: no process of the user that carries this test's marker.
sleep 0.5
left=""
for p in $(pgrep -u "$U"); do
  grep -qzx "$MARK" /proc/"$p"/environ 2>/dev/null &&
    left+=" $p:$(tr '\0' ' ' < /proc/"$p"/cmdline 2>/dev/null | cut -c1-60)"
done
assert_eq "no process of this test left" "" "$left"
finish
