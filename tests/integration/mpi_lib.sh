# shellcheck shell=bash disable=SC2034  # (variables are used by test_mpi.sh)
# Helpers for test_mpi.sh (sourced after lib.sh): reading what Open MPI reports, the second
# (emulated two-node) dev cluster, and a temporary admin config.

MPI_ERR_RE='PMIX ERROR|pmix_|ORTE_ERROR_LOG|Unreachable'
HOST_BIN=${SOCKER_TEST_LIBEXEC:-/usr/local/libexec/socker-mpi-test}

# assert_no_mpi_errors WHAT OUTPUT: no PMIx/ORTE error line anywhere in OUTPUT.
assert_no_mpi_errors() {
  local bad; bad=$(grep -E "$MPI_ERR_RE" <<<"$2" || true)
  if [[ -z $bad ]]; then pass "$1: no PMIx/ORTE error lines"
  else fail "$1: PMIx/ORTE error lines:"; head -5 <<<"$bad" | sed 's/^/    | /'; fi
}

# btl_pairs OUTPUT: from `OMPI_MCA_btl_base_verbose=100` output, one line "SRC DST BTL" per
# (sender, peer) pair, sorted. Open MPI prints, per process, "[host:pid] mca: bml: Using B btl
# for send to [[jobid,vpid],R] on node H"; the pid is mapped to its rank via the "self" line
# (a process sends to itself over the self btl).
btl_pairs() {
  local lines; lines=$(sed -nE 's/^\[[^]:]+:0*([0-9]+)\] mca: bml: Using ([a-z0-9]+) btl for send to \[\[[0-9]+,[0-9]+\],([0-9]+)\] on node .*/\1 \2 \3/p' <<<"$1")
  awk 'NR == FNR { if ($2 == "self") rank[$1] = $3; next }
       NF == 3 && $2 != "self" { print (($1 in rank) ? rank[$1] : "pid" $1), $3, $2 }' \
    <(echo "$lines") <(echo "$lines") | sort -n -k1,1 -k2,2 | uniq
}

# rank_hosts OUTPUT: "RANK HOST" per "hello from rank R of N on HOST" line, sorted by rank.
rank_hosts() { sed -nE 's/^hello from rank ([0-9]+) of [0-9]+ on ([^ ]+)$/\1 \2/p' <<<"$1" | sort -n; }

# expected_pairs RANK_HOSTS: what Open MPI should pick: vader within a node, tcp across nodes.
expected_pairs() {
  awk '{ host[$1] = $2; n++ } END {
         for (i = 0; i < n; i++) for (j = 0; j < n; j++) if (i != j)
           print i, j, (host[i] == host[j] ? "vader" : "tcp") }' <<<"$1" | sort -n -k1,1 -k2,2
}

# ---- the second dev cluster: two emulated nodes n1, n2, beside the shared one-node cluster.
MULTI_ENV=("SLURM_ETC=${SOCKER_MULTI_ETC:-/etc/slurm-multi}"
           "DEVCLUSTER_DIR=${SOCKER_MULTI_DIR:-/var/lib/socker-mpi-devcluster-multi}"
           "SLURM_CTLD_PORT=${SOCKER_MULTI_CTLD_PORT:-6917}"
           "SLURMD_BASE_PORT=${SOCKER_MULTI_SLURMD_PORT:-6918}")
MULTI_CONF=${SOCKER_MULTI_ETC:-/etc/slurm-multi}/slurm.conf
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MULTI_STARTED=0
multi_up() {
  local out
  if out=$(env "${MULTI_ENV[@]}" "$REPO/scripts/devcluster" up --nodes 2 2>&1); then MULTI_STARTED=1; return 0; fi
  echo "$out" | tail -15 | sed 's/^/    | /'; return 1
}
multi_down() {
  [[ $MULTI_STARTED -eq 1 ]] || return 0
  env "${MULTI_ENV[@]}" "$REPO/scripts/lib/slurm-down.sh" >/dev/null 2>&1 || echo "warning: slurm-down of the two-node cluster failed"
  MULTI_STARTED=0
}
# as_user_multi CMD...: as_user against the two-node cluster.
as_user_multi() { as_user env SLURM_CONF="$MULTI_CONF" "$@"; }

# (temporary admin config helpers: lib.sh)
