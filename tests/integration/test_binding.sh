#!/usr/bin/env bash
# Binding on the real dev cluster: the placement is applied before exec, inside what Slurm
# assigned, and reported; impossible policies are refused before any launch.
. "$(dirname "$0")/lib.sh"
cpus() { grep -m1 "^Cpus_allowed_list" <<<"$1" | awk '{print $2}'; }
show='grep Cpus_allowed_list /proc/self/status; grep -m1 -o "heap.*" /proc/self/numa_maps >/dev/null; sed -n "s/.* \(bind:[0-9,-]*\|interleave:[0-9,-]*\|default\) heap.*/policy=\1/p" /proc/self/numa_maps; echo OMP=${OMP_NUM_THREADS:-unset}'

# Without a policy the inherited (Slurm) binding is left as is.
native=$(as_user srun -Q -n 1 -c 2 sh -c 'grep Cpus_allowed_list /proc/self/status')
out=$(as_user srun -Q -n 1 -c 2 "$BIN" "$IMG" /bin/sh -c "$show" 2>&1)
assert_eq "no policy: container cpus = native rank's" "$(cpus "$native")" "$(cpus "$out")"
assert_contains "no policy: memory policy untouched" "$out" "policy=default"

# --bind=core --cpus-per-rank=1 --membind=local inside a 2-CPU task: one core, local memory.
out=$(as_user srun -Q -n 1 -c 2 "$BIN" --bind=core --cpus-per-rank=1 --membind=local --report-bindings "$IMG" /bin/sh -c "$show" 2>&1)
assert_eq "core binding inside the step's cpuset" "0" "$(cpus "$out")"
assert_contains "membind=local sets MPOL_BIND on the local node" "$out" "policy=bind:0"
assert_contains "OMP_NUM_THREADS from cpus-per-rank" "$out" "OMP=1"
assert_contains "report line" "$out" "socker-mpi[rank 0]: rank 0 (local 0 of 1) on $(hostname -s): cpus 0 numa 0 membind local [B/.]"
out=$(as_user srun -Q -n 1 -c 2 env OMP_NUM_THREADS=7 "$BIN" --bind=core --cpus-per-rank=1 "$IMG" /bin/sh -c "$show" 2>&1)
assert_contains "a user's OMP_NUM_THREADS wins" "$out" "OMP=7"
# --bind-to is the placement's own name (--bind=KIND above is its old spelling); --bind with a
# path is a mount, next to it.
out=$(as_user srun -Q -n 1 -c 2 "$BIN" --bind-to=core --cpus-per-rank=1 --bind "$HOME_U:/mnt/h:ro" "$IMG" /bin/sh -c "$show; test -d /mnt/h && echo BOUND" 2>&1)
assert_eq "--bind-to=core: the same binding" "0" "$(cpus "$out")"
assert_contains "--bind PATH next to it is a mount" "$out" "BOUND"

# Environment variables are a lower precedence than the command line.
out=$(as_user srun -Q -n 1 -c 2 env SOCKER_MPI_BIND=core SOCKER_MPI_CPUS_PER_RANK=1 "$BIN" "$IMG" /bin/sh -c "$show" 2>&1)
assert_eq "SOCKER_MPI_BIND applies" "0" "$(cpus "$out")"
out=$(as_user srun -Q -n 1 -c 2 env SOCKER_MPI_BIND=core SOCKER_MPI_CPUS_PER_RANK=1 "$BIN" --bind=none "$IMG" /bin/sh -c "$show" 2>&1)
assert_eq "command line beats SOCKER_MPI_BIND" "0-1" "$(cpus "$out")"

# Two ranks, one per core, each reported; never outside the step, never shared.
out=$(as_user srun -Q -n 2 "$BIN" --bind=core --report-bindings "$IMG" /bin/sh -c 'echo "r$SLURM_PROCID $(grep Cpus_allowed_list /proc/self/status | cut -f2)"' 2>&1)
assert_contains "rank 0 on cpu 0" "$out" "r0 0"
assert_contains "rank 1 on cpu 1" "$out" "r1 1"
assert_contains "rank 0 report" "$out" "[B/.]"
assert_contains "rank 1 report" "$out" "[./B]"

# Impossible: more CPUs per rank than the step has. Refused, nothing launched.
out=$(as_user srun -Q -n 1 "$BIN" --bind=core --cpus-per-rank=4 "$IMG" /bin/sh -c 'echo LAUNCHED' 2>&1); rc=$?
assert_eq "impossible policy exit code" "64" "$rc"
assert_contains "impossible policy message" "$out" "need 4 CPUs but only 1 are allowed"
assert_not_contains "impossible policy: no launch" "$out" "LAUNCHED"

# plan works for any user, on a synthetic topology, as JSON in local-rank order
# (128 cores = 256 PUs over 32 ranks: 4 whole cores = 8 PUs each, 4 ranks per NUMA node).
out=$(as_user "$BIN" plan --topology 'pack:2 numa:4 l3:2 core:8 pu:2' --ranks 32 --bind=core --format=json 2>&1)
assert_eq "plan json: 32 entries" "32" "$(grep -c '"local_rank"' <<<"$out")"
assert_contains "plan json: first rank" "$out" '{"local_rank": 0, "cpus": "0-7", "numa": "0"}'
assert_contains "plan json: last rank" "$out" '{"local_rank": 31, "cpus": "248-255", "numa": "7"}'
finish
