#!/usr/bin/env bash
# Host MPI injection (issue 15), as the unprivileged test user on the real dev cluster: the
# host's MPICH (Debian libmpich12, ABI 12) bound into the MPICH image under srun --mpi=pmi2, on
# one node and across two emulated nodes, the rank mapping the host's very file (device and
# inode in /proc/self/maps); refusals with 65 (an Open MPI image: both versions named; an image
# whose glibc is older than the host library needs; an image without a loader cache); the admin's
# default and --mpi=none; --dry-run's report; nothing left behind.
# Needs: images mpi-mpich and demo (scripts/check builds them), mpi-mpich-bullseye for the glibc
# case (scripts/check builds it: examples/mpi-image.sh --mpi mpich --suite bullseye ...).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"
RING=/opt/bench/mpi-hello-ring
HOST_MPICH=/usr/lib/x86_64-linux-gnu/libmpich.so.12
section() { echo "# $* (t=${SECONDS}s)"; }
MARK="SOCKER_TEST_MPI_INJECT=$$"
me() { as_user env "$MARK" "$@"; }
me_multi() { as_user env "$MARK" SLURM_CONF="$MULTI_CONF" "$@"; }
cleanup() {
  admin_conf_restore
  multi_down
  as_user "$BIN" image rm --user nocache >/dev/null 2>&1
  rm -rf "${work:-}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[[ -e $HOST_MPICH ]] || { fail "host MPICH $HOST_MPICH missing (scripts/setup installs libmpich12)"; finish; exit; }
[[ -n $(as_user "$BIN" image ls 2>/dev/null | awk '$1 == "mpi-mpich"') ]] || { fail "image mpi-mpich missing"; finish; exit; }
work=$(mktemp -d /tmp/socker-test-inject.XXXXXX); chown "$U" "$work"
host_real=$(readlink -f "$HOST_MPICH")
# The host file's device and inode as /proc/PID/maps writes them ("fe:00 14884865").
host_id=$(python3 -c 'import os,sys; s=os.stat(sys.argv[1]); print("%02x:%02x %d" % (os.major(s.st_dev), os.minor(s.st_dev), s.st_ino))' "$host_real")
mapped() { sed -nE 's/^info: mapped=([^ ]+ [0-9]+) .*libmpich\.so.*$/\1/p' <<<"$1" | head -1; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# [mpi:inject]: Debian 11's MPICH image has no UCX: the host's comes along (with its modules).
L=/usr/lib/x86_64-linux-gnu
admin_conf_append "$(printf '[mpi]\nlibraries = %s\n[mpi:strict]\nlibraries = %s\nabi = strict\n[mpi:inject]\nlibraries = %s\nglibc = inject\ndependencies = %s\nbinds = %s' \
  "$HOST_MPICH" "$HOST_MPICH" "$HOST_MPICH" "$L/libucp.so.0, $L/libucs.so.0, $L/libuct.so.0, $L/libucm.so.0, $L/libhwloc.so.15, $L/libnuma.so.1" "$L/ucx")"
before=$(mount_snapshot)

# ---------------------------------------------------------------- --dry-run
section "--dry-run: each library, from where, why"
out=$(me srun -n 1 "$BIN" --mpi --dry-run mpi-mpich $RING 2>&1); rc=$?
assert_eq "--mpi --dry-run: exit 0" "0" "$rc"
lib=$(json 'd["mpi"]["libraries"][0]' <<<"$out" 2>/dev/null)
assert_eq "dry-run: the section" "default" "$(json 'd["mpi"]["name"]' <<<"$out" 2>/dev/null)"
assert_contains "dry-run: the SONAME" "$lib" "'soname': 'libmpich.so.12'"
assert_contains "dry-run: the host's file" "$lib" "'host_path': '$host_real'"
assert_contains "dry-run: the image's file" "$lib" "'image_path': '/usr/lib/x86_64-linux-gnu/libmpich.so.12"
assert_contains "dry-run: the host's version" "$lib" "'host_version': '${host_real##*.so.}'"
assert_contains "dry-run: the decision" "$lib" "'decision': 'replace'"
assert_contains "dry-run: the host file bound read-only" "$(json '[m for m in d["mounts"] if m.get("source")=="'"$host_real"'"]' <<<"$out")" "'ro'"
assert_contains "dry-run: the container's own loader cache" "$(json '[m["kind"] for m in d["mounts"] if m["target"]=="/etc/ld.so.cache"]' <<<"$out")" "file"
out=$(me srun -n 1 "$BIN" --dry-run mpi-mpich $RING 2>&1)
assert_eq "without --mpi (admin default none): no injection" "False" "$(json '"mpi" in d' <<<"$out")"

# ---------------------------------------------------------------- one node, pmi2
section "one node: host MPICH into the MPICH image, srun --mpi=pmi2"
out=$(me srun --mpi=pmi2 -n 2 "$BIN" --mpi mpi-mpich $RING --expect-ranks 2 2>&1); rc=$?
assert_eq "injected, pmi2, 2 ranks: exit 0" "0" "$rc"
assert_contains "injected: ring + 4 MiB exchanges pass" "$out" "RESULT ok ranks=2"
assert_contains "injected: MPICH runs" "$out" "library=MPICH"
assert_eq "injected: the rank maps the host's libmpich (device and inode)" "$host_id" "$(mapped "$out")"
out=$(me srun --mpi=pmi2 -n 2 "$BIN" mpi-mpich $RING --expect-ranks 2 2>&1); rc=$?
assert_eq "control, the image's MPICH: exit 0" "0" "$rc"
m=$(mapped "$out")
if [[ -n $m && $m != "$host_id" ]]; then pass "control: the image's own libmpich is mapped ($m)"; else fail "control: mapped '$m' (host: $host_id)"; fi
out=$(me srun --mpi=pmi2 -n 1 "$BIN" --mpi mpi-mpich /bin/sh -c 'ldconfig -p | grep -c "libmpich.so.12 "; ls -l /etc/ld.so.cache' 2>&1); rc=$?
assert_eq "injected: the loader cache in the container is readable by ldconfig -p" "0" "$rc"
assert_contains "injected: the container's cache lists libmpich" "$out" "1"

# The SPANK plugin's --container-mpi: the same injection through srun's own options.
out=$(me srun --mpi=pmi2 -n 2 --container-image=mpi-mpich --container-mpi=default $RING --expect-ranks 2 2>&1); rc=$?
assert_eq "srun --container-mpi=default: exit 0" "0" "$rc"
assert_contains "srun --container-mpi: ring + 4 MiB exchanges pass" "$out" "RESULT ok ranks=2"
assert_eq "srun --container-mpi: the rank maps the host's libmpich" "$host_id" "$(mapped "$out")"
out=$(me srun --mpi=pmi2 -n 1 --container-image=mpi-mpich --container-mpi=nosuch true 2>&1); rc=$?
assert_ne_zero() { if [[ $2 -ne 0 ]]; then pass "$1 (rc=$2)"; else fail "$1: rc 0"; fi; }
assert_ne_zero "srun --container-mpi=nosuch: refused" "$rc"
assert_contains "srun --container-mpi=nosuch: naming what the admin offers" "$out" "offered"

# ---------------------------------------------------------------- the admin's default
section "the admin's default and --mpi=none"
admin_conf_set mpi default
out=$(me srun -n 1 "$BIN" --dry-run mpi-mpich $RING 2>&1)
assert_eq "mpi = default: injected without --mpi" "default" "$(json 'd.get("mpi",{}).get("name")' <<<"$out")"
out=$(me srun -n 1 "$BIN" --mpi=none --dry-run mpi-mpich $RING 2>&1)
assert_eq "--mpi=none: never" "False" "$(json '"mpi" in d' <<<"$out")"
admin_conf_set mpi none
out=$(me srun -n 1 "$BIN" --mpi=mvapich mpi-mpich /bin/true 2>&1); rc=$?
assert_eq "--mpi=unknown: 64" "64" "$rc"
assert_contains "--mpi=unknown: names what is offered" "$out" "--mpi=strict"

# ---------------------------------------------------------------- refusals
section "refusals: 65, both versions, nothing left behind"
out=$(me srun -n 1 "$BIN" --mpi "$IMG" /bin/true 2>&1); rc=$?
assert_eq "host MPICH (ABI 12) into the Open MPI image: 65" "65" "$rc"
assert_contains "refusal names the host's version" "$out" "${host_real##*.so.}"
assert_contains "refusal names the image's version" "$out" "40."
assert_contains "refusal: not compatible" "$out" "not compatible"
# strict on the same Debian MPICH: equal versions pass.
out=$(me srun -n 1 "$BIN" --mpi=strict --dry-run mpi-mpich $RING 2>&1); rc=$?
assert_eq "abi = strict, equal versions: accepted" "0" "$rc"
# An image without a loader cache.
mkdir -p "$work/nocache/bin"; cp /bin/busybox "$work/nocache/bin/sh"
tar -C "$work/nocache" -cf "$work/nocache.tar" . ; chown "$U" "$work/nocache.tar"
as_user "$BIN" image import --user "$work/nocache.tar" nocache >/dev/null 2>&1
out=$(me srun -n 1 "$BIN" --mpi nocache /bin/sh -c true 2>&1); rc=$?
assert_eq "image without /etc/ld.so.cache: 65" "65" "$rc"
assert_contains "no cache: tells the user to run ldconfig" "$out" "ldconfig"
# An image whose glibc is older than the host library needs (Debian 11: glibc 2.31).
if [[ -n $(as_user "$BIN" image ls 2>/dev/null | awk '$1 == "mpi-mpich-bullseye"') ]]; then
  need=$(readelf -V "$host_real" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  out=$(me srun -n 1 "$BIN" --mpi mpi-mpich-bullseye $RING 2>&1); rc=$?
  assert_eq "older glibc in the image (glibc = refuse): 65" "65" "$rc"
  assert_contains "older glibc: the version needed" "$out" "needs glibc $need"
  assert_contains "older glibc: the image's version" "$out" "the image has glibc 2.31"
  out=$(me srun -n 1 "$BIN" --mpi=inject --dry-run mpi-mpich-bullseye $RING 2>&1); rc=$?
  assert_eq "glibc = inject: accepted" "0" "$rc"
  assert_contains "glibc = inject: the host's libc over the image's" "$(json '[l["decision"] for l in d["mpi"]["libraries"] if l["soname"]=="libc.so.6"]' <<<"$out")" "replace (glibc)"
  assert_contains "glibc = inject: the loader too" "$(json '[l["soname"] for l in d["mpi"]["libraries"]]' <<<"$out")" "ld-linux-x86-64.so.2"
  out=$(me srun --mpi=pmi2 -n 2 "$BIN" --mpi=inject mpi-mpich-bullseye /bin/sh -c 'ldd --version | head -1; exec '"$RING"' --expect-ranks 2' 2>&1); rc=$?
  assert_eq "glibc = inject: the ring runs in the Debian 11 image with the host's glibc and MPICH" "0" "$rc"
  assert_contains "glibc = inject: RESULT" "$out" "RESULT ok ranks=2"
  assert_eq "glibc = inject: the rank maps the host's libmpich" "$host_id" "$(mapped "$out")"
else
  fail "image mpi-mpich-bullseye absent (examples/mpi-image.sh --mpi mpich --suite bullseye --bench mpi-mpich-bullseye)"
fi
assert_eq "no mount left behind on the host" "$before" "$(mount_snapshot)"

# ---------------------------------------------------------------- two emulated nodes
section "two emulated nodes: host MPICH, pmi2"
if multi_up; then
  admin_conf_append "$(printf '[node:n*]\nslurm_conf = %s' "$MULTI_CONF")"
  out=$(me_multi srun --mpi=pmi2 -N 2 -n 4 "$BIN" --mpi mpi-mpich $RING --expect-ranks 4 2>&1); rc=$?
  assert_eq "2 nodes, injected, pmi2: exit 0" "0" "$rc"
  assert_contains "2 nodes, injected: RESULT" "$out" "RESULT ok ranks=4"
  assert_eq "2 nodes: ranks on n1 and n2" "n1 n2" "$(rank_hosts "$out" | awk '{print $2}' | sort -u | xargs)"
  assert_eq "2 nodes: the host's libmpich mapped" "$host_id" "$(mapped "$out")"
  multi_down
else
  fail "two-node cluster did not start"
fi
finish
