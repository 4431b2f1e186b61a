#!/usr/bin/env bash
# bench_runner_quick.sh [SMPI_BENCH] -- CI test of the benchmark runner (issues 7, 13): runs
# `mpi-benchmarks/run --quick` into a temporary directory and checks that it produced every CSV,
# PNG and the Markdown report with the expected rows (launch at 1, 2, 16, 64 ranks and 64 on 4
# emulated nodes, in-step launch, MTC, mounts, memory; both target tables; where dockerd is
# installed, socker-mpi in engine mode -- socker-mpi-docker, issue 16 -- in the micro-benchmarks
# and launches), that --report-only regenerates the report, and that neither a finished nor an
# interrupted (SIGTERM) run -- in the root phase, while the second (emulated-node) dev cluster is
# up, and while the admin config names the run's dockerd for engine mode -- leaves processes,
# mounts, containers, Slurm jobs, the second cluster's daemons or temporary directories behind,
# or the admin config, /etc/slurm-multi or the second cluster's state directory changed.
# Asserts no timings. Takes about 3-4 min (the quick run 2-3 min, the interrupted ones ~15 s
# each).
#
# Run as root on the dev cluster (scripts/check sets it up), like the other integration tests.
# SMPI_BENCH defaults to build/mpi-benchmarks/smpi-bench. The first run on a machine builds the
# benchmark image (mmdebstrap, ~2 min; cached in /var/cache/socker-mpi/images afterwards).
# Exit: 0 all checks passed, 1 a check failed, 77 skipped (not root, no Slurm, no socker-mpi...).
set -uo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
repo=$(cd "$here/../.." && pwd)
runner=$repo/mpi-benchmarks/run
bench=${1:-$repo/build/mpi-benchmarks/smpi-bench}
user=${SOCKER_TEST_USER:-smpi-test}
skip() { echo "bench_runner_quick: SKIP: $*"; exit 77; }
[[ $EUID -eq 0 ]] || skip "must run as root (the runner drops to $user itself)"
[[ -x $bench ]] || skip "no smpi-bench at $bench"
[[ -u ${SOCKER_BIN:-/usr/bin/socker-mpi} ]] || skip "socker-mpi not installed setuid"
id "$user" >/dev/null 2>&1 || skip "test user $user missing"
command -v gnuplot >/dev/null || skip "gnuplot missing"
timeout 20 sinfo -h >/dev/null 2>&1 || skip "Slurm not answering (scripts/devcluster up)"

TEST_NAME=bench_runner_quick
# shellcheck source=tests/integration/lib.sh
source "$here/lib.sh"
out=$(mktemp -d /tmp/bench_runner_quick.XXXXXX)
trap 'rm -rf "$out"' EXIT
log=$out.log

admin_conf=${SOCKER_ADMIN_CONF:-/etc/socker-mpi/socker-mpi.conf}
multi_etc=/etc/slurm-multi
multi_dir=/var/lib/socker-mpi-devcluster-multi
leftovers() {  # what a runner must not leave behind (prints one line per leftover)
  ls -d /tmp/smpi-bench-run.* 2>/dev/null
  [[ -e /run/socker-bench ]] && echo "/run/socker-bench exists"
  grep -E ' /run/socker-bench(/| )' /proc/self/mountinfo
  squeue -h -o '%i %j' 2>/dev/null | grep ' smpi-bench-run-'
  pgrep -a -f 'exec-root /run/socker-bench' 2>/dev/null
  pgrep -a -f '/run/socker-bench/docker/containerd' 2>/dev/null  # its containerd, shims
  pgrep -a -f 'runroot /run/socker-bench' 2>/dev/null
  pgrep -a -f 'conmon.*socker-mpi/podman' 2>/dev/null
  pgrep -a -f 'crun --root /tmp/smpi-bench-run' 2>/dev/null
  pgrep -a -f "$multi_etc/slurm.conf" 2>/dev/null          # the second cluster's daemons
  ls -d /sys/fs/cgroup/*/slurm_n[0-9]* 2>/dev/null         # ... and their cgroups
  ls -d "$(dirname "$admin_conf")"/.socker-mpi.conf.* 2>/dev/null
}
state() {  # what a run must put back as it was: admin config (bytes, owner, mode), the second
           # cluster's config directory (removed if it was not there) and its state directory
  echo "admin config: $(stat -c '%U:%G %a' "$admin_conf") $(sha256sum < "$admin_conf")"
  if [[ -d $multi_etc ]]; then
    (cd "$multi_etc" && find . -printf '%p %m %U:%G\n' | sort && find . -type f -exec sha256sum {} + | sort)
  else echo "$multi_etc absent"; fi
  if [[ -d $multi_dir ]]; then (cd "$multi_dir" && find . | sort); else echo "$multi_dir absent"; fi
}
# socker-mpi in engine mode (socker-mpi-docker) is measured wherever dockerd is installed: its
# rows are expected then (the runner starts its own dockerd).
engine=
command -v dockerd >/dev/null && engine=socker-mpi-docker
before_results=$(cat "$repo/mpi-benchmarks/RESULTS.md" 2>/dev/null | sha256sum)
pre=$(leftovers)
[[ -z $pre ]] || echo "note: leftovers before the run (not counted): $pre"
state0=$(state)

# 1. a complete quick run ----------------------------------------------------------------------
start=$(date +%s)
timeout --kill-after=30 1500 "$runner" --quick --out "$out" --smpi-bench "$bench" >"$log" 2>&1
rc=$?
echo "runner --quick: rc=$rc, $(($(date +%s) - start)) s (log: last lines)"
tail -n 25 "$log" | sed 's/^/    | /'
assert_eq "runner --quick exit status" 0 "$rc"

for f in micro_raw.csv micro.csv hpl.csv netpipe_raw.csv netpipe.csv launch_raw.csv launch.csv \
         instep_raw.csv instep.csv mtc_raw.csv mtc.csv mounts.csv memory.csv runs.csv meta.json \
         RESULTS.md; do
  if [[ -s $out/$f ]]; then pass "$f written"; else fail "$f missing or empty"; fi
done
for p in latency bandwidth collectives ratio netpipe launch instep mtc; do
  f=$out/$p.png
  desc=$(file -b "$f" 2>/dev/null)
  size=$(stat -c %s "$f" 2>/dev/null || echo 0)
  if [[ $desc == "PNG image data, "* && $size -gt 8000 ]]; then
    pass "$p.png is a PNG ($desc, $size bytes)"
  else
    fail "$p.png: '$desc', $size bytes"
  fi
done

# micro.csv: exactly the (benchmark, size, unit) rows of smpi-bench's sweep, both medians > 0.
expected=$(
  for b in latency bw bibw allreduce alltoall; do
    unit=us; [[ $b == bw || $b == bibw ]] && unit=MB/s
    for ((s = 1; s <= 4194304; s *= 2)); do
      [[ $b == allreduce && $s -lt 4 ]] && continue
      echo "$b,$s,$unit"
    done
  done
  echo "init,0,us")
assert_eq "micro.csv header" \
  "benchmark,size_bytes,unit,native_median,socker_median,ratio,native_min,native_max,socker_min,socker_max,native_runs,socker_runs" \
  "$(head -n 1 "$out/micro.csv")"
assert_eq "micro.csv rows (benchmark,size,unit)" "$expected" "$(tail -n +2 "$out/micro.csv" | cut -d, -f1-3)"
bad=$(tail -n +2 "$out/micro.csv" | awk -F, '!($4 > 0 && $5 > 0 && $6 > 0 && $11 >= 2 && $12 >= 2)')
assert_eq "micro.csv: positive medians and ratio, 2 runs a side, on every row" "" "$bad"
assert_eq "micro_raw.csv: native, socker-mpi, spank (the SPANK plugin)${engine:+ and $engine} rows" \
  "$(printf '%s\n' native socker-mpi spank $engine | sort -u | xargs)" \
  "$(tail -n +2 "$out/micro_raw.csv" | cut -d, -f2 | sort -u | xargs)"
assert_eq "micro_spank.csv rows (benchmark,size,unit)" "$expected" "$(tail -n +2 "$out/micro_spank.csv" | cut -d, -f1-3)"
bad=$(tail -n +2 "$out/micro_spank.csv" | awk -F, '!($4 > 0 && $5 > 0 && $6 > 0 && $11 >= 2 && $12 >= 2)')
assert_eq "micro_spank.csv: positive medians and ratio, 2 runs a side, on every row" "" "$bad"
assert_contains "RESULTS.md: the issue-14 targets" "$(cat "$out/RESULTS.md")" "## Targets (issue 14)"
engine_skip=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["skipped"].get("socker-mpi-docker", ""))' "$out/meta.json")
if [[ -n $engine ]]; then
  assert_eq "socker-mpi-docker not skipped (dockerd is installed)" "" "$engine_skip"
  assert_eq "micro_engine.csv rows (benchmark,size,unit)" "$expected" "$(tail -n +2 "$out/micro_engine.csv" 2>/dev/null | cut -d, -f1-3)"
  bad=$(tail -n +2 "$out/micro_engine.csv" | awk -F, '!($4 > 0 && $5 > 0 && $6 > 0 && $11 >= 2 && $12 >= 2)')
  assert_eq "micro_engine.csv: positive medians and ratio, 2 runs a side, on every row" "" "$bad"
  assert_contains "RESULTS.md: the engine-mode section" "$(cat "$out/RESULTS.md")" \
    "## Engine mode (issue 16): \`socker-mpi --engine=docker\`"
  assert_contains "RESULTS.md: engine-mode micro-benchmarks beside socker-mpi" "$(cat "$out/RESULTS.md")" \
    "| benchmark | size | native | socker-mpi | socker-mpi-docker |"
else
  echo "note: dockerd not installed: socker-mpi-docker not measured ($engine_skip)"
  assert_contains "RESULTS.md says why socker-mpi-docker was not measured" "$(cat "$out/RESULTS.md")" \
    "**socker-mpi-docker**: $engine_skip"
fi

# runs.csv: every MPI run (2 micro sweeps, 1 HPL, 1 NetPIPE a side) with its wall time.
assert_eq "runs.csv: phase,mode counts" "1 hpl,native|1 hpl,socker-mpi|2 micro,native|2 micro,socker-mpi|${engine:+2 micro,$engine|}2 micro,spank|1 netpipe,native|1 netpipe,socker-mpi" \
  "$(awk -F, 'NR > 1 && $4 == 1 && $5 > 0 { print $1 "," $3 }' "$out/runs.csv" | sort | uniq -c | awk '{ print $1 " " $2 }' | paste -sd'|')"
# HPL: one passed run a side.
assert_eq "hpl.csv: passed runs" "native,1 socker-mpi,1" \
  "$(awk -F, 'NR > 1 && $9 == 1 && $7 > 0 { print $2 "," $9 }' "$out/hpl.csv" | sort | xargs)"
# NetPIPE: 8 B and 1 MiB on both sides.
for s in 8 1048576; do
  row=$(awk -F, -v s=$s '$1 == s && $2 > 0 && $3 > 0 && $5 > 0 && $6 > 0' "$out/netpipe.csv")
  if [[ -n $row ]]; then pass "netpipe.csv: $s bytes measured on both sides"; else fail "netpipe.csv: no $s-byte row"; fi
done

# Launch: native and socker-mpi at 1, 2, 16, 64 ranks on one node, native, socker-mpi and ch-run
# at 64 ranks on 4 emulated nodes (unless the second cluster could not start: then the report
# says why); each installed peer at least at 1 and 2.
assert_eq "launch.csv header" \
  "launcher,ranks,runs,failed,median_ms,q1_ms,q3_ms,min_ms,max_ms,ratio_to_native,nodes" \
  "$(head -n 1 "$out/launch.csv")"
launch_row() {  # launch_row LAUNCHER RANKS [NODES] -> "ok" when measured with a positive median
  awk -F, -v l="$1" -v n="$2" -v k="${3:-1}" \
    '$1 == l && $2 == n && $11 == k && $3 >= 1 && $5 > 0 { print "ok" }' "$out/launch.csv"
}
for l in native socker-mpi spank; do
  for n in 1 2 16 64; do assert_eq "launch.csv: $l at $n ranks" ok "$(launch_row "$l" $n)"; done
done
peers=()
command -v ch-run >/dev/null && peers+=(ch-run)
command -v crun >/dev/null && peers+=(crun)
command -v podman >/dev/null && peers+=(podman)
command -v dockerd >/dev/null && peers+=(docker)
for l in "${peers[@]}"; do
  for n in 1 2; do assert_eq "launch.csv: $l at $n ranks" ok "$(launch_row "$l" $n)"; done
done
# engine mode: every rank count the quick profile runs a heavy launcher at (64: not in --quick)
if [[ -n $engine ]]; then
  for n in 1 2 16; do assert_eq "launch.csv: $engine at $n ranks" ok "$(launch_row "$engine" $n)"; done
  assert_eq "launch.csv: $engine not at 64 ranks in --quick" "" "$(launch_row "$engine" 64)"
  assert_contains "RESULTS.md: launch table has socker-mpi-docker" "$(cat "$out/RESULTS.md")" "| $engine |"
fi
multi_skip=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["skipped"].get("64 ranks on 4 nodes", ""))' "$out/meta.json")
if [[ -z $multi_skip ]]; then
  multi_l=(native socker-mpi spank)
  [[ " ${peers[*]} " == *" ch-run "* ]] && multi_l+=(ch-run)
  for l in "${multi_l[@]}"; do
    assert_eq "launch.csv: $l at 64 ranks on 4 nodes" ok "$(launch_row "$l" 64 4)"
  done
  assert_contains "RESULTS.md: launch table has the 4-node column" "$(cat "$out/RESULTS.md")" \
    "64 ranks on 4 nodes: ms (× native)"
else
  echo "note: 64 ranks on 4 nodes not measured: $multi_skip"
  assert_contains "RESULTS.md says why 64 ranks on 4 nodes were not measured" "$(cat "$out/RESULTS.md")" \
    "$multi_skip"
fi
root_peers=()
for l in "${peers[@]}"; do [[ $l != ch-run ]] && root_peers+=("$l"); done

# In-step launch: one row per launcher and case, with runs and a positive median.
assert_eq "instep.csv header" \
  "launcher,case,runs,median_ms,mean_ms,stddev_ms,min_ms,max_ms,ratio_to_native" \
  "$(head -n 1 "$out/instep.csv")"
expected=$(
  echo "native,no container"; echo "socker-mpi,first rank"; echo "socker-mpi,joining rank"
  [[ " ${peers[*]} " == *" ch-run "* ]] && echo "ch-run,own container"
  if [[ ${#root_peers[@]} -gt 0 ]]; then
    echo "native (root),no container"
    for l in "${root_peers[@]}"; do echo "$l,own container"; done
  fi)
assert_eq "instep.csv rows (launcher,case)" "$expected" "$(tail -n +2 "$out/instep.csv" | cut -d, -f1-2)"
bad=$(tail -n +2 "$out/instep.csv" | awk -F, '!($3 >= 1 && $4 > 0 && $9 > 0)')
assert_eq "instep.csv: runs and a positive median on every row" "" "$bad"

# MTC: every launcher with the quick profile's task count (20; podman and docker 4).
assert_eq "mtc.csv header" "launcher,tasks,seconds,tasks_per_s,ratio_to_native" "$(head -n 1 "$out/mtc.csv")"
expected=$(
  echo "native,20"; echo "socker-mpi,20"; echo "spank,20"
  [[ " ${peers[*]} " == *" ch-run "* ]] && echo "ch-run,20"
  if [[ ${#root_peers[@]} -gt 0 ]]; then
    echo "native (root),20"
    for l in "${root_peers[@]}"; do
      if [[ $l == podman || $l == docker ]]; then echo "$l,4"; else echo "$l,20"; fi
    done
  fi)
assert_eq "mtc.csv rows (launcher,tasks)" "$expected" "$(tail -n +2 "$out/mtc.csv" | cut -d, -f1-2)"
bad=$(tail -n +2 "$out/mtc.csv" | awk -F, '!($3 > 0 && $4 > 0 && $5 > 0)')
assert_eq "mtc.csv: positive seconds, tasks/s and ratio on every row" "" "$bad"

# Mounts of a 64-rank step: all 64 ranks seen; socker-mpi one namespace, ch-run and crun one
# per rank (the method sees both cases).
assert_eq "mounts.csv header" \
  "launcher,ranks,ok,ranks_seen,namespaces,mounts,mounts_per_namespace,other_namespaces" \
  "$(head -n 1 "$out/mounts.csv")"
mounts_row() { awk -F, -v l="$1" '$1 == l && $3 == 1 && $4 == 64 && $6 > 0 { print $5 }' "$out/mounts.csv"; }
assert_eq "mounts.csv: socker-mpi, 64 ranks in 1 mount namespace" 1 "$(mounts_row socker-mpi)"
assert_eq "mounts.csv: spank (the plugin), 64 ranks in 1 mount namespace" 1 "$(mounts_row spank)"
for l in ch-run crun; do
  [[ " ${peers[*]} " == *" $l "* ]] || continue
  assert_eq "mounts.csv: $l, 64 ranks in 64 mount namespaces" 64 "$(mounts_row $l)"
done

# Memory: native leaves nothing; socker-mpi execs in place (0 processes); crun waits for its
# container (>= 1 process): the method sees both cases.
mem() { awk -F, -v l="$1" '$1 == l && $2 == 1 { print $3 }' "$out/memory.csv"; }
assert_eq "memory.csv: native, 0 launcher processes" 0 "$(mem native)"
assert_eq "memory.csv: socker-mpi, 0 launcher processes (exec in place)" 0 "$(mem socker-mpi)"
assert_eq "memory.csv: spank, 0 launcher processes (slurmstepd execs the rank)" 0 "$(mem spank)"
if [[ " ${peers[*]} " == *" crun "* ]]; then
  n=$(mem crun)
  if [[ -n $n && $n -ge 1 ]]; then pass "memory.csv: crun stays resident ($n process(es))"; else fail "memory.csv: crun row '$n'"; fi
fi

# RESULTS.md: the targets with a verdict each, tables, plots that exist.
md=$out/RESULTS.md
for h in "## Targets (issue 7)" "## Targets (issue 13)" "## Machine and versions" \
         "## MPI micro-benchmarks: native vs socker-mpi" \
         "## HPL (Debian hpcc) and NetPIPE (Debian netpipe-openmpi)" "## Job-step launch time" \
         "## In-step launch" "## Many-task throughput (MTC)" \
         "## Mounts made on the node for a 64-rank step" \
         "## Memory the launcher leaves on the node while the rank runs" "## How it was measured"; do
  assert_contains "RESULTS.md section '$h'" "$(cat "$md")" "$h"
done
targets=$(sed -n '/^## Targets (issue 7)/,/^## Targets (issue 13)/p' "$md" | grep -c -E '\| \*\*(met|not met)\*\* \|$')
assert_eq "RESULTS.md: 7 issue-7 targets, each met or not met" 7 "$targets"
t13=$(sed -n '/^## Targets (issue 13)/,/^## Targets (issue 14)/p' "$md")
t14=$(sed -n '/^## Targets (issue 14)/,/^## Machine/p' "$md")
assert_eq "RESULTS.md: 5 issue-14 targets (the SPANK plugin), each met or not met" 5 \
  "$(grep -c -E '\| \*\*(met|not met)\*\* \|$' <<<"$t14")"
assert_eq "RESULTS.md: 11 issue-13 targets with a verdict" 11 \
  "$(grep -c -E '\| (\*\*(met|not met)\*\*|not measured) \|$' <<<"$t13")"
# All measured in a quick run, but the 4-node row when the second cluster could not start.
assert_eq "RESULTS.md: issue-13 targets measured" "$([[ -z $multi_skip ]] && echo 11 || echo 10)" \
  "$(grep -c -E '\| \*\*(met|not met)\*\* \|$' <<<"$t13")"
assert_contains "RESULTS.md: latency table has 8 B" "$(cat "$md")" "| 8 B |"
assert_contains "RESULTS.md: launch table has socker-mpi" "$(cat "$md")" "| socker-mpi |"
missing=$(grep -o '!\[[^]]*\]([^)]*)' "$md" | sed 's/.*(\(.*\))/\1/' | while read -r p; do
  [[ -s $out/$p ]] || echo "$p"; done)
assert_eq "RESULTS.md: every embedded plot exists" "" "$missing"
assert_eq "RESULTS.md: 8 plots embedded" 8 "$(grep -c '^!\[' "$md")"

# --report-only regenerates the same report from the CSV files.
cp "$md" "$out.md.orig"
"$runner" --report-only --out "$out" >/dev/null 2>&1
assert_eq "--report-only exit status" 0 "$?"
assert_eq "--report-only regenerates the same RESULTS.md" "" "$(diff "$out.md.orig" "$md")"
rm -f "$out.md.orig"

assert_eq "nothing left behind after the run" "" "$(leftovers)"
assert_eq "admin config, $multi_etc and $multi_dir as before the run" "$state0" "$(state)"
assert_eq "the committed mpi-benchmarks/RESULTS.md is untouched" "$before_results" \
  "$(cat "$repo/mpi-benchmarks/RESULTS.md" 2>/dev/null | sha256sum)"

# 2. an interrupted run cleans up ---------------------------------------------------------------
# SIGTERM while the root launchers (crun, podman: containers, state, mounts) are being measured.
out2=$(mktemp -d /tmp/bench_runner_quick.XXXXXX)
"$runner" --quick --skip-mpi --skip-multinode --launchers native,crun,podman --out "$out2" \
  --smpi-bench "$bench" >"$out2.log" 2>&1 &
pid=$!
for _ in $(seq 1 4500); do  # up to 15 min: the runner may wait for the node (shared cluster)
  grep -q -- '-- 3. launch time as root' "$out2.log" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.2
done
sleep 1.5
kill -TERM $pid 2>/dev/null
wait $pid
rc=$?
tail -n 5 "$out2.log" | sed 's/^/    | /'
if grep -q -- '-- 3. launch time as root' "$out2.log"; then
  assert_eq "interrupted runner exit status (130)" 130 "$rc"
  assert_contains "interrupted runner says so" "$(cat "$out2.log")" "interrupted"
else
  fail "the interrupted run never reached the root launchers (rc $rc)"
fi
assert_eq "nothing left behind after SIGTERM" "" "$(leftovers)"
rm -rf "$out2" "$out2.log"

# 3. interrupted while the second dev cluster is up ----------------------------------------------
# SIGTERM as soon as the emulated nodes are up (allocation or launches on them): the cluster
# must be stopped and the admin config and /etc/slurm-multi put back.
out3=$(mktemp -d /tmp/bench_runner_quick.XXXXXX)
"$runner" --quick --skip-mpi --launchers native --out "$out3" --smpi-bench "$bench" >"$out3.log" 2>&1 &
pid=$!
for _ in $(seq 1 9000); do  # up to 15 min (the runner may wait for the node)
  grep -q -E 'second dev cluster up|not measured' "$out3.log" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
if grep -q 'second dev cluster up' "$out3.log"; then
  kill -TERM $pid 2>/dev/null
  wait $pid
  rc=$?
  tail -n 5 "$out3.log" | sed 's/^/    | /'
  assert_eq "runner interrupted on the emulated nodes: exit status 130" 130 "$rc"
  assert_eq "nothing left behind after SIGTERM on the emulated nodes" "" "$(leftovers)"
  assert_eq "admin config, $multi_etc and $multi_dir put back after SIGTERM" "$state0" "$(state)"
else
  kill -TERM $pid 2>/dev/null
  wait $pid
  echo "note: the second dev cluster did not come up; interrupting on it not tested:"
  grep -m1 'not measured' "$out3.log" | sed 's/^/    | /'
  assert_eq "nothing left behind (second cluster not started)" "" "$(leftovers)"
  assert_eq "admin config, $multi_etc and $multi_dir as before" "$state0" "$(state)"
fi
rm -rf "$out3" "$out3.log"

# 4. interrupted while the admin config names the run's dockerd (engine mode) ---------------------
# SIGTERM during the launches as the user, socker-mpi-docker among them: docker_socket set in the
# admin config, the run's dockerd up, engine-mode containers being made.
if [[ -n $engine ]]; then
  out4=$(mktemp -d /tmp/bench_runner_quick.XXXXXX)
  "$runner" --quick --skip-mpi --skip-multinode --launchers "native,$engine" --out "$out4" \
    --smpi-bench "$bench" >"$out4.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 9000); do  # up to 15 min (the runner may wait for the node)
    grep -q -E -- '-- 3. launch time as|socker-mpi-docker: (not measured|skipped)' "$out4.log" 2>/dev/null && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  conf_during=$(grep -c '^docker_socket = /run/socker-bench/docker.sock$' "$admin_conf")
  sleep 1.5
  kill -TERM $pid 2>/dev/null
  wait $pid
  rc=$?
  tail -n 5 "$out4.log" | sed 's/^/    | /'
  if grep -q -- '-- 3. launch time as' "$out4.log"; then
    assert_eq "engine mode: the admin config named the run's dockerd during the launches" 1 "$conf_during"
    assert_eq "runner interrupted in engine mode: exit status 130" 130 "$rc"
    assert_contains "runner interrupted in engine mode: config put back" "$(cat "$out4.log")" \
      "socker-mpi-docker: admin config put back"
  else
    fail "the engine-mode run never reached the launches (rc $rc): $(grep -m1 'socker-mpi-docker' "$out4.log")"
  fi
  assert_eq "nothing left behind after SIGTERM in engine mode" "" "$(leftovers)"
  assert_eq "admin config, $multi_etc and $multi_dir put back after SIGTERM in engine mode" "$state0" "$(state)"
  rm -rf "$out4" "$out4.log"
fi
rm -f "$log"

finish
