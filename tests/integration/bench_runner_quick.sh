#!/usr/bin/env bash
# bench_runner_quick.sh [SMPI_BENCH] -- CI test of the benchmark runner (issue 7): runs
# `mpi-benchmarks/run --quick` into a temporary directory and checks that it produced every CSV,
# PNG and the Markdown report with the expected rows, that --report-only regenerates the report,
# and that neither a finished nor an interrupted (SIGTERM) run leaves processes, mounts,
# containers, Slurm jobs or temporary directories behind. Asserts no timings.
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
[[ -u ${SOCKER_BIN:-/usr/local/bin/socker-mpi} ]] || skip "socker-mpi not installed setuid"
id "$user" >/dev/null 2>&1 || skip "test user $user missing"
command -v gnuplot >/dev/null || skip "gnuplot missing"
timeout 20 sinfo -h >/dev/null 2>&1 || skip "Slurm not answering (scripts/devcluster up)"

TEST_NAME=bench_runner_quick
# shellcheck source=tests/integration/lib.sh
source "$here/lib.sh"
out=$(mktemp -d /tmp/bench_runner_quick.XXXXXX)
trap 'rm -rf "$out"' EXIT
log=$out.log

leftovers() {  # what a runner must not leave behind (prints one line per leftover)
  ls -d /tmp/smpi-bench-run.* 2>/dev/null
  [[ -e /run/socker-bench ]] && echo "/run/socker-bench exists"
  grep -E ' /run/socker-bench(/| )' /proc/self/mountinfo
  squeue -h -o '%i %j' 2>/dev/null | grep ' smpi-bench-run-'
  pgrep -a -f 'exec-root /run/socker-bench' 2>/dev/null
  pgrep -a -f 'runroot /run/socker-bench' 2>/dev/null
  pgrep -a -f 'conmon.*socker-mpi/podman' 2>/dev/null
  pgrep -a -f 'crun --root /tmp/smpi-bench-run' 2>/dev/null
}
before_results=$(cat "$repo/mpi-benchmarks/RESULTS.md" 2>/dev/null | sha256sum)
pre=$(leftovers)
[[ -z $pre ]] || echo "note: leftovers before the run (not counted): $pre"

# 1. a complete quick run ----------------------------------------------------------------------
start=$(date +%s)
timeout --kill-after=30 1500 "$runner" --quick --out "$out" --smpi-bench "$bench" >"$log" 2>&1
rc=$?
echo "runner --quick: rc=$rc, $(($(date +%s) - start)) s (log: last lines)"
tail -n 25 "$log" | sed 's/^/    | /'
assert_eq "runner --quick exit status" 0 "$rc"

for f in micro_raw.csv micro.csv hpl.csv netpipe_raw.csv netpipe.csv launch_raw.csv launch.csv \
         memory.csv runs.csv meta.json RESULTS.md; do
  if [[ -s $out/$f ]]; then pass "$f written"; else fail "$f missing or empty"; fi
done
for p in latency bandwidth collectives ratio netpipe launch; do
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
assert_eq "micro_raw.csv: native and socker-mpi rows" "native socker-mpi" \
  "$(tail -n +2 "$out/micro_raw.csv" | cut -d, -f2 | sort -u | xargs)"

# runs.csv: every MPI run (2 micro sweeps, 1 HPL, 1 NetPIPE a side) with its wall time.
assert_eq "runs.csv: phase,mode counts" "1 hpl,native|1 hpl,socker-mpi|2 micro,native|2 micro,socker-mpi|1 netpipe,native|1 netpipe,socker-mpi" \
  "$(awk -F, 'NR > 1 && $4 == 1 && $5 > 0 { print $1 "," $3 }' "$out/runs.csv" | sort | uniq -c | awk '{ print $1 " " $2 }' | paste -sd'|')"
# HPL: one passed run a side.
assert_eq "hpl.csv: passed runs" "native,1 socker-mpi,1" \
  "$(awk -F, 'NR > 1 && $9 == 1 && $7 > 0 { print $2 "," $9 }' "$out/hpl.csv" | sort | xargs)"
# NetPIPE: 8 B and 1 MiB on both sides.
for s in 8 1048576; do
  row=$(awk -F, -v s=$s '$1 == s && $2 > 0 && $3 > 0 && $5 > 0 && $6 > 0' "$out/netpipe.csv")
  if [[ -n $row ]]; then pass "netpipe.csv: $s bytes measured on both sides"; else fail "netpipe.csv: no $s-byte row"; fi
done

# Launch: native and socker-mpi at 1, 2, 64 ranks; each installed peer at least at 1 and 2.
launch_row() {  # launch_row LAUNCHER RANKS -> "ok" when measured with a positive median
  awk -F, -v l="$1" -v n="$2" '$1 == l && $2 == n && $3 >= 1 && $5 > 0 { print "ok" }' "$out/launch.csv"
}
for l in native socker-mpi; do
  for n in 1 2 64; do assert_eq "launch.csv: $l at $n ranks" ok "$(launch_row "$l" $n)"; done
done
peers=()
command -v ch-run >/dev/null && peers+=(ch-run)
command -v crun >/dev/null && peers+=(crun)
command -v podman >/dev/null && peers+=(podman)
command -v dockerd >/dev/null && peers+=(docker)
for l in "${peers[@]}"; do
  for n in 1 2; do assert_eq "launch.csv: $l at $n ranks" ok "$(launch_row "$l" $n)"; done
done
grep -q '^"*launcher' "$out/launch.csv" || fail "launch.csv header"

# Memory: native leaves nothing; socker-mpi execs in place (0 processes); crun waits for its
# container (>= 1 process): the method sees both cases.
mem() { awk -F, -v l="$1" '$1 == l && $2 == 1 { print $3 }' "$out/memory.csv"; }
assert_eq "memory.csv: native, 0 launcher processes" 0 "$(mem native)"
assert_eq "memory.csv: socker-mpi, 0 launcher processes (exec in place)" 0 "$(mem socker-mpi)"
if [[ " ${peers[*]} " == *" crun "* ]]; then
  n=$(mem crun)
  if [[ -n $n && $n -ge 1 ]]; then pass "memory.csv: crun stays resident ($n process(es))"; else fail "memory.csv: crun row '$n'"; fi
fi

# RESULTS.md: the targets with a verdict each, tables, plots that exist.
md=$out/RESULTS.md
for h in "## Targets (issue 7)" "## Machine and versions" "## MPI micro-benchmarks: native vs socker-mpi" \
         "## HPL (Debian hpcc) and NetPIPE (Debian netpipe-openmpi)" "## Job-step launch time" \
         "## Memory the launcher leaves on the node while the rank runs" "## How it was measured"; do
  assert_contains "RESULTS.md section '$h'" "$(cat "$md")" "$h"
done
targets=$(sed -n '/^## Targets/,/^## Machine/p' "$md" | grep -c -E '\| \*\*(met|not met)\*\* \|$')
assert_eq "RESULTS.md: 7 targets, each met or not met" 7 "$targets"
assert_contains "RESULTS.md: latency table has 8 B" "$(cat "$md")" "| 8 B |"
assert_contains "RESULTS.md: launch table has socker-mpi" "$(cat "$md")" "| socker-mpi |"
missing=$(grep -o '!\[[^]]*\]([^)]*)' "$md" | sed 's/.*(\(.*\))/\1/' | while read -r p; do
  [[ -s $out/$p ]] || echo "$p"; done)
assert_eq "RESULTS.md: every embedded plot exists" "" "$missing"
assert_eq "RESULTS.md: 6 plots embedded" 6 "$(grep -c '^!\[' "$md")"

# --report-only regenerates the same report from the CSV files.
cp "$md" "$out.md.orig"
"$runner" --report-only --out "$out" >/dev/null 2>&1
assert_eq "--report-only exit status" 0 "$?"
assert_eq "--report-only regenerates the same RESULTS.md" "" "$(diff "$out.md.orig" "$md")"
rm -f "$out.md.orig"

assert_eq "nothing left behind after the run" "" "$(leftovers)"
assert_eq "the committed mpi-benchmarks/RESULTS.md is untouched" "$before_results" \
  "$(cat "$repo/mpi-benchmarks/RESULTS.md" 2>/dev/null | sha256sum)"

# 2. an interrupted run cleans up ---------------------------------------------------------------
# SIGTERM while the root launchers (crun, podman: containers, state, mounts) are being measured.
out2=$(mktemp -d /tmp/bench_runner_quick.XXXXXX)
"$runner" --quick --skip-mpi --launchers native,crun,podman --out "$out2" --smpi-bench "$bench" \
  >"$out2.log" 2>&1 &
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
rm -rf "$out2" "$out2.log" "$log"

finish
