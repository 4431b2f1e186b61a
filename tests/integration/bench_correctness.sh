#!/usr/bin/env bash
# Correctness test for the MPI programs in mpi-benchmarks/ (smpi-bench, mpi-hello-ring), run
# natively with mpirun.  Checks exit codes, the CSV (rows, columns, units, positive values),
# that --validate really compares data (a run with --corrupt must fail), and the test
# program's output.  Asserts no timings.
#
# usage: bench_correctness.sh SMPI_BENCH MPI_HELLO_RING [MPIRUN]
#   MPIRUN defaults to $MPIRUN or `mpirun` from PATH.  Exit 0 if every check passed, 1 if not,
#   77 if the programs or mpirun are missing.
set -uo pipefail

prog=${0##*/}
if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $prog SMPI_BENCH MPI_HELLO_RING [MPIRUN]" >&2
  exit 2
fi
bench=$1
hello=$2
mpirun_bin=${3:-${MPIRUN:-mpirun}}
for p in "$bench" "$hello"; do
  [[ -x $p ]] || { echo "$prog: SKIP: $p is not an executable" >&2; exit 77; }
done
command -v "$mpirun_bin" >/dev/null || { echo "$prog: SKIP: no $mpirun_bin" >&2; exit 77; }

mpirun_args=(--oversubscribe)
[[ $(id -u) -eq 0 ]] && mpirun_args+=(--allow-run-as-root)
timeout_s=${BENCH_TEST_TIMEOUT:-120}

work=$(mktemp -d "${TMPDIR:-/tmp}/bench_correctness.XXXXXX")
trap 'rm -rf "$work"' EXIT

failures=0
checks=0
pass() { checks=$((checks + 1)); echo "ok   - $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL - $*"; }

# run NAME NP PROGRAM ARGS...: runs under mpirun; stdout in $work/NAME.out, stderr in
# $work/NAME.err, exit status in $rc.
run() {
  local name=$1 np=$2
  shift 2
  timeout --kill-after=10 "$timeout_s" "$mpirun_bin" "${mpirun_args[@]}" -n "$np" "$@" \
    >"$work/$name.out" 2>"$work/$name.err"
  rc=$?
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "     $name: timed out after ${timeout_s}s" >&2
  fi
}

show() { # show NAME: the captured output, for a failure's diagnosis
  sed 's/^/     | /' "$work/$1.out" "$work/$1.err" | head -40
}

# expected_rows BENCH MIN MAX: the "benchmark,size,unit" lines smpi-bench must print.
expected_rows() {
  local b=$1 min=$2 max=$3 unit=us s size
  [[ $b == bw || $b == bibw ]] && unit=MB/s
  if [[ $b == init ]]; then echo "init,0,us"; return; fi
  for ((s = min; s <= max; s *= 2)); do
    size=$s
    [[ $b == allreduce ]] && size=$((s / 4 * 4))
    [[ $size -gt 0 ]] && echo "$b,$size,$unit"
  done
}

# check_csv NAME EXPECTED_FILE [ITERS]: header, exact (benchmark,size,unit) rows in order,
# five columns, positive integer iterations (== ITERS if given), positive finite values.
check_csv() {
  local name=$1 expected=$2 iters=${3:-} out=$work/$1.out bad
  if [[ $(head -n 1 "$out") != "benchmark,size_bytes,iterations,value,unit" ]]; then
    fail "$name: first line is not the CSV header"; show "$name"; return
  fi
  if ! diff <(tail -n +2 "$out" | cut -d, -f1,2,5) "$expected" >"$work/$name.diff"; then
    fail "$name: rows differ from the expected benchmark,size,unit list"
    sed 's/^/     | /' "$work/$name.diff" | head -20
    return
  fi
  bad=$(tail -n +2 "$out" | awk -F, -v iters="$iters" '
    NF != 5 { print "line " NR+1 ": " NF " columns: " $0; next }
    $2 !~ /^[0-9]+$/ { print "line " NR+1 ": size not an integer: " $0; next }
    $3 !~ /^[1-9][0-9]*$/ { print "line " NR+1 ": iterations not a positive integer: " $0; next }
    iters != "" && $1 != "init" && $3 != iters { print "line " NR+1 ": iterations " $3 " != " iters; next }
    $4 !~ /^[0-9]+(\.[0-9]+)?$/ || $4 + 0 <= 0 { print "line " NR+1 ": value not positive: " $0; next }')
  if [[ -n $bad ]]; then
    fail "$name: bad CSV values"; echo "$bad" | sed 's/^/     | /' | head -20; return
  fi
  pass "$name: $(($(wc -l <"$out") - 1)) CSV rows as expected"
}

rc_is() { # rc_is WANT: WANT is a number or "nonzero" (a time-out is never what we want)
  [[ $1 == nonzero && $rc -ne 0 && $rc -ne 124 && $rc -ne 137 ]] || [[ $1 == "$rc" ]]
}

expect_rc() { # expect_rc NAME WANT: counts a failure (with the output) if $rc is not WANT
  local name=$1 want=$2
  rc_is "$want" && return 0
  fail "$name: exit status $rc, expected $want"; show "$name"
  return 1
}

echo "# $prog: $bench, $hello, $("$mpirun_bin" --version 2>/dev/null | head -n 1)"

# --- smpi-bench: every benchmark, validated, 2 ranks ------------------------------------
run all2 2 "$bench" all --check --max 64K
if expect_rc all2 0; then
  for b in init latency bw bibw allreduce alltoall; do expected_rows $b 1 65536; done >"$work/all2.exp"
  check_csv all2 "$work/all2.exp"
fi

# --- explicit CLI as the runner calls it --------------------------------------------------
run lat8 2 "$bench" latency --min 8 --max 8 --iters 50 --warmup 5 --check
if expect_rc lat8 0; then
  expected_rows latency 8 8 >"$work/lat8.exp"
  check_csv lat8 "$work/lat8.exp" 50
fi

# odd sizes, a small window, comma-separated list, aliases
run odd 2 "$bench" bandwidth,bibw allreduce --min 3 --max 24 --window 4 --iters 7 --check
if expect_rc odd 0; then
  { expected_rows bw 3 24; expected_rows bibw 3 24; expected_rows allreduce 3 24; } >"$work/odd.exp"
  check_csv odd "$work/odd.exp" 7
fi

# 3 ranks: collectives on all, point-to-point with rank 2 idle
run all3 3 "$bench" --check --max 4K
if expect_rc all3 0; then
  for b in init latency bw bibw allreduce alltoall; do expected_rows $b 1 4096; done >"$work/all3.exp"
  check_csv all3 "$work/all3.exp"
fi

# a timing run (no validation; OSU-style shared buffers) must work too
run timing 2 "$bench" latency bw bibw --max 1M --quick
if expect_rc timing 0; then
  for b in latency bw bibw; do expected_rows $b 1 1048576; done >"$work/timing.exp"
  check_csv timing "$work/timing.exp"
fi

# a singleton: init and collectives; point-to-point in "all" is skipped with a note
run single 1 "$bench" --check --max 16
if expect_rc single 0; then
  { expected_rows init 0 0; expected_rows allreduce 1 16; expected_rows alltoall 1 16; } >"$work/single.exp"
  check_csv single "$work/single.exp"
fi
run single_lat 1 "$bench" latency --check
expect_rc single_lat 1 && pass "single_lat: latency on 1 rank is a usage error"

# --- the validation can fail: one flipped byte must be caught ----------------------------
for b in latency bw bibw allreduce alltoall; do
  run "corrupt_$b" 2 "$bench" "$b" --check --corrupt --max 256
  if expect_rc "corrupt_$b" nonzero; then
    if grep -q "FAILED: $b size" "$work/corrupt_$b.err" &&
       grep -Eq "(data mismatch|element .* expected)" "$work/corrupt_$b.err"; then
      pass "corrupt_$b: validation caught the corrupted message (exit $rc)"
    else
      fail "corrupt_$b: failed without the validation message"; show "corrupt_$b"
    fi
  fi
done

# --- usage ------------------------------------------------------------------------------
run usage_bad 2 "$bench" nosuchbench
if rc_is 1 && grep -q "unknown benchmark" "$work/usage_bad.err"; then
  pass "usage_bad: unknown benchmark rejected (exit 1)"
else
  fail "usage_bad: exit $rc, expected 1 and 'unknown benchmark'"; show usage_bad
fi
run usage_help 1 "$bench" --help
if rc_is 0 && grep -q "^usage: smpi-bench" "$work/usage_help.out"; then
  pass "usage_help: --help prints usage"
else
  fail "usage_help: exit $rc, expected 0 and the usage text"; show usage_help
fi

# --- mpi-hello-ring -----------------------------------------------------------------------
for np in 2 3; do
  name=hello$np
  run "$name" "$np" "$hello" --expect-ranks "$np"
  if expect_rc "$name" 0; then
    out=$work/$name.out
    got=$(grep -E "^hello from rank [0-9]+ of $np on .+" "$out" | awk '{print $4}' | sort -n | tr '\n' ' ')
    want=$(seq 0 $((np - 1)) | tr '\n' ' ')
    if [[ $got != "$want" ]]; then
      fail "$name: hello lines from ranks '$got', expected '$want'"; show "$name"
    elif [[ $(grep -c "^RESULT ok ranks=$np\$" "$out") -ne 1 ]]; then
      fail "$name: no single 'RESULT ok ranks=$np' line"; show "$name"
    elif ! grep -q "^info: mpi_standard=" "$out"; then
      fail "$name: no 'info: mpi_standard=' line"; show "$name"
    else
      pass "$name: $np hello lines, token ring and 4 MiB exchanges verified, RESULT ok"
    fi
  fi
done

for what in data token; do
  name=hello_corrupt_$what
  run "$name" 3 "$hello" --corrupt "$what"
  if expect_rc "$name" nonzero; then
    if grep -q "^RESULT ok" "$work/$name.out" || ! grep -q "^RESULT FAILED ranks=3" "$work/$name.out"; then
      fail "$name: expected 'RESULT FAILED'"; show "$name"
    else
      pass "$name: corrupted $what detected (exit $rc)"
    fi
  fi
done

run hello_expect 2 "$hello" --expect-ranks 3 --bytes 1K
if rc_is nonzero && grep -q "has 2 ranks, expected 3" "$work/hello_expect.err"; then
  pass "hello_expect: wrong rank count detected (exit $rc)"
else
  fail "hello_expect: exit $rc, expected non-zero and 'has 2 ranks, expected 3'"; show hello_expect
fi

echo "# $prog: $((checks - failures))/$checks checks passed"
[[ $failures -eq 0 ]]
