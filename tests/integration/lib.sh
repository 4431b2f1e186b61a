# shellcheck shell=bash disable=SC2034  # (sourced: the variables are the tests')
# Shared helpers for the integration tests. They run as root (the harness) and launch everything
# under test as the unprivileged test user through the installed setuid binary:
#   SOCKER_TEST_USER   the user (scripts/check creates it; default smpi-test)
#   SOCKER_BIN         the launcher (default /usr/bin/socker-mpi, setuid root)
set -uo pipefail
U=${SOCKER_TEST_USER:-smpi-test}
BIN=${SOCKER_BIN:-/usr/bin/socker-mpi}
IMG=${SOCKER_TEST_IMAGE:-demo}
UID_U=$(id -u "$U") || { echo "FAIL: test user $U missing"; exit 1; }
GID_U=$(id -g "$U")
HOME_U=$(getent passwd "$U" | cut -d: -f6)
FAILS=0
PASSES=0
T=${TEST_NAME:-$(basename "$0" .sh)}

# as_user CMD...: run in the user's home, with a login-like environment.
as_user() { (cd "$HOME_U" && runuser -u "$U" -- env -i HOME="$HOME_U" USER="$U" LOGNAME="$U" \
  PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 "$@"); }
pass() { PASSES=$((PASSES + 1)); echo "ok   - $T: $*"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $T: $*"; }
assert_eq() {  # assert_eq WHAT EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi; }
assert_contains() {  # assert_contains WHAT HAYSTACK NEEDLE
  if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1: '$3' not in output:"; echo "$2" | head -20 | sed 's/^/    | /'; fi; }
assert_not_contains() {
  if [[ "$2" != *"$3"* ]]; then pass "$1"; else fail "$1: '$3' unexpectedly in output:"; echo "$2" | head -20 | sed 's/^/    | /'; fi; }
# probe_value OUTPUT RANK KEY: the value the probe printed (first match).
probe_value() { grep -m1 "^probe\[$2\] $3=" <<<"$1" | cut -d= -f2-; }
# probe_step HOW: one allocation of 2 tasks; the probe natively, then as HOW (the words before the
# probe's path: "$BIN $IMG" for the launcher, "--container-image=$IMG" for the SPANK plugin);
# asserts what a rank in the container must share with the native one (identity, groups, CPUs,
# every cgroup) and must not (the image's file, capabilities, no_new_privs, one step). The two
# probes' outputs stay in PROBE_NATIVE and PROBE_CONT.
probe_step() {
  local out r ncg ccg
  out=$(as_user salloc -Q -n 2 sh -c "srun -n 2 /usr/local/libexec/socker-mpi-test/probe | sed 's/^/native /'; \
    srun -n 2 $1 /opt/socker/probe; echo STEPS_DONE" 2>&1)
  PROBE_NATIVE=$(grep '^native ' <<<"$out" | sed 's/^native //')
  PROBE_CONT=$(grep '^probe' <<<"$out")
  local native=$PROBE_NATIVE cont=$PROBE_CONT
  assert_contains "both steps ran" "$out" "STEPS_DONE"
  for r in 0 1; do
    assert_eq "rank $r uid" "$UID_U" "$(probe_value "$cont" $r uid)"
    assert_eq "rank $r euid" "$UID_U" "$(probe_value "$cont" $r euid)"
    assert_eq "rank $r gid" "$GID_U" "$(probe_value "$cont" $r gid)"
    assert_eq "rank $r groups as native" "$(probe_value "$native" $r groups)" "$(probe_value "$cont" $r groups)"
    assert_eq "rank $r file only in the image" "present" "$(probe_value "$cont" $r image_marker)"
    assert_eq "rank $r no image marker natively" "absent" "$(probe_value "$native" $r image_marker)"
    assert_eq "rank $r CapEff" "0000000000000000" "$(probe_value "$cont" $r CapEff)"
    assert_eq "rank $r CapPrm" "0000000000000000" "$(probe_value "$cont" $r CapPrm)"
    assert_eq "rank $r CapBnd" "0000000000000000" "$(probe_value "$cont" $r CapBnd)"
    assert_eq "rank $r NoNewPrivs" "1" "$(probe_value "$cont" $r NoNewPrivs)"
    assert_eq "rank $r Cpus_allowed_list as native" "$(probe_value "$native" $r Cpus_allowed_list)" \
      "$(probe_value "$cont" $r Cpus_allowed_list)"
    # cgroups: identical to the native rank's, for every controller, up to the step number.
    ncg=$(grep "^probe\[$r\] cgroup=" <<<"$native" | sed -E 's/step_[0-9]+/step_S/' | sort)
    ccg=$(grep "^probe\[$r\] cgroup=" <<<"$cont" | sed -E 's/step_[0-9]+/step_S/' | sort)
    assert_eq "rank $r cgroups as native (all controllers)" "$ncg" "$ccg"
    assert_contains "rank $r in the user's step cgroup" "$ccg" "/uid_$UID_U/job_"
  done
  assert_eq "container ranks share one step" "1" "$(grep -oE 'job_[0-9]+/step_[0-9]+' <<<"$cont" | sort -u | wc -l)"
}
mount_snapshot() { awk '{ $1=""; $2=""; print }' /proc/self/mountinfo | sort; }
finish() {
  echo "$T: $PASSES passed, $FAILS failed"
  [[ $FAILS -eq 0 ]]
}

# ---- temporary admin config: the original file is put back by admin_conf_restore (trap).
ADMIN_CONF=${SOCKER_ADMIN_CONF:-/etc/socker-mpi/socker-mpi.conf}
ADMIN_CONF_SAVED=""
# The original is kept once, whatever the number of changes, for admin_conf_restore.
admin_conf_save_once() {
  [[ -n $ADMIN_CONF_SAVED ]] && return 0
  ADMIN_CONF_SAVED=$(mktemp "$(dirname "$ADMIN_CONF")/.socker-mpi.conf.saved.XXXXXX")
  cp -p "$ADMIN_CONF" "$ADMIN_CONF_SAVED"
}
# admin_conf_set KEY VALUE: set a top-level key of the current config (replaced where it is,
# else added before the first [section]: a config installed by an older version may lack it),
# atomically, root-owned 0644.
admin_conf_set() {
  admin_conf_save_once
  local tmp; tmp=$(mktemp "$(dirname "$ADMIN_CONF")/.socker-mpi.conf.test.XXXXXX")
  awk -v k="$1" -v v="$2" '
    BEGIN { done = 0 }
    !done && $0 ~ "^" k "[[:space:]]*=" { print k " = " v; done = 1; next }
    !done && /^\[/ { print k " = " v; done = 1 }
    { print }
    END { if (!done) print k " = " v }' "$ADMIN_CONF" > "$tmp"
  grep -qxF "$1 = $2" "$tmp" || { rm -f "$tmp"; return 1; }
  chown root:root "$tmp"; chmod 0644 "$tmp"; mv -f "$tmp" "$ADMIN_CONF"
}
admin_conf_set_devices() { admin_conf_set devices "$1"; }
# admin_conf_append TEXT: add lines (e.g. a [node:GLOB] section) to the current admin config.
admin_conf_append() {
  admin_conf_save_once
  local tmp; tmp=$(mktemp "$(dirname "$ADMIN_CONF")/.socker-mpi.conf.test.XXXXXX")
  { cat "$ADMIN_CONF"; printf '%s\n' "$1"; } > "$tmp"
  chown root:root "$tmp"; chmod 0644 "$tmp"; mv -f "$tmp" "$ADMIN_CONF"
}
admin_conf_restore() {
  [[ -n $ADMIN_CONF_SAVED ]] || return 0
  mv -f "$ADMIN_CONF_SAVED" "$ADMIN_CONF"   # cp -p kept root:root 0644
  ADMIN_CONF_SAVED=""
}
