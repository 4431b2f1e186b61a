#!/usr/bin/env bash
# The SPANK plugin (spank_socker.so, enabled by scripts/devcluster through plugstack.conf):
# `srun --container-image=IMAGE CMD` as the unprivileged test user on the real dev cluster --
# the skeleton's assertions (identity, image, cgroups and CPUs as a native task's, capabilities,
# no_new_privs, exit status, SIGTERM), MPI over PMIx with vader+CMA, sbatch, the options, bad
# input with the launcher's messages and exit codes, srun without the option untouched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_lib.sh"
PLUGIN=/usr/lib/x86_64-linux-gnu/slurm-wlm/spank_socker.so
AUTH_LOG=${SOCKER_AUTH_LOG:-/var/log/auth.log}
MARK="SOCKER_TEST_SPANK=$$"
me() { as_user env "$MARK" "$@"; }
work=$(mktemp -d /tmp/socker-test-spank.XXXXXX); chmod 0755 "$work"; chown "$U" "$work"
host_mnt=$(readlink /proc/self/ns/mnt)
# in_work CMD...: as the user, from the work directory (below /tmp: not the home directory)
in_work() { (cd "$work" && runuser -u "$U" -- env -i HOME="$HOME_U" USER="$U" LOGNAME="$U" \
  PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 "$MARK" "$@"); }
cleanup() {
  scancel -u "$U" -n spank-sigterm,spank-batch 2>/dev/null; rm -rf "$work"; socker_rm_entry_image
  # the user-store image the file launch imported (it shares the busybox layer of other tests)
  for n in $(as_user "$BIN" image ls --user 2>/dev/null | awk '$1 ~ /^file\/entry-image/ { print $1 ":" $2 }'); do
    as_user "$BIN" image rm --user "$n" >/dev/null 2>&1
  done
}
socker_rm_entry_image() { "$BIN" image rm spank-entry >/dev/null 2>&1 || true; }
trap cleanup EXIT
mounts_before=$(mount_snapshot)
auth_start=$(stat -c %s "$AUTH_LOG" 2>/dev/null || echo 0)

assert_eq "plugin installed root's, 0644" "644 root" "$(stat -c '%a %U' "$PLUGIN" 2>&1)"
assert_eq "plugstack.conf: one required line" "required $PLUGIN" "$(grep -v '^#' /etc/slurm/plugstack.conf)"
assert_contains "srun --help lists --container-image" "$(me srun --help 2>&1)" "--container-image=IMAGE"

# ---------------------------------------------------------------- the skeleton, through the plugin
probe_step "--container-image=$IMG"  # (lib.sh: CapBnd empty and NoNewPrivs set by the plugin)
native=$PROBE_NATIVE
assert_eq "native tasks keep their full bounding set (the plugin leaves them alone)" \
  "0" "$(grep -c 'CapBnd=0000000000000000' <<<"$native")"

# Supplementary groups: Slurm's job credentials, as natively -- a second test user in "users"
# from its creation (Slurm caches group lists: a membership added now may not be seen yet).
G_USER=smpi-spank-groups
id "$G_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash -G users "$G_USER"
as_g() { (cd / && runuser -u "$G_USER" -- env -i PATH=/usr/bin:/bin HOME=/ "$@"); }
n_id=$(as_g srun -n 1 id 2>&1); c_id=$(as_g srun -n 1 --container-image="$IMG" id 2>&1)
assert_contains "a supplementary group natively" "$n_id" "(users)"
assert_eq "uid, gid and groups in the container as natively" "$n_id" "$c_id"

# One container per node: both tasks in one mount namespace, not the host's.
out=$(me srun -n 2 --container-image="$IMG" readlink /proc/self/ns/mnt 2>&1)
assert_eq "2 tasks, one container (one mount namespace)" "1" "$(sort -u <<<"$out" | grep -c '^mnt:')"
assert_not_contains "... not the host's" "$out" "$host_mnt"
out=$(me srun -O -n 16 --container-image="$IMG" readlink /proc/self/ns/mnt 2>&1)
assert_eq "16 tasks on the node, one container" "16 1" "$(grep -c '^mnt:' <<<"$out") $(sort -u <<<"$out" | grep -c '^mnt:')"
out=$(me srun -n 1 readlink /proc/self/ns/mnt 2>&1)
assert_eq "srun without the option: the host's mount namespace" "$host_mnt" "$out"
out=$(me srun -n 1 cat /etc/socker-test-image 2>&1); rc=$?
assert_eq "srun without the option runs natively (no image file)" "1" "$rc"

# The command runs from the image: slurmstepd's exec, after the plugin's pivot_root.
host_stat=$(stat -L -c %d:%i /usr/bin/stat)
out=$(me srun -n 1 --container-image="$IMG" stat -L -c %d:%i /proc/self/exe 2>&1)
[[ $out =~ ^[0-9]+:[0-9]+$ && $out != "$host_stat" ]] && pass "the command is the image's file ($out), not the host's ($host_stat)" \
  || fail "the command is the image's file: got '$out', host $host_stat"
out=$(me srun -n 1 --container-image="$IMG" sh -c 'echo "$PATH|$HOME|$USER|$SOCKER_MPI_IMAGE|$(pwd)"' 2>&1)
assert_eq "the container's environment (image PATH, user, image) and working directory" \
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|$HOME_U|$U|$IMG|$HOME_U" "$out"
assert_eq "host mounts unchanged by the launches" "$mounts_before" "$(mount_snapshot)"

# Exit status, signals.
me srun -n 1 --container-image="$IMG" /opt/socker/probe --exit 7 >/dev/null 2>&1
assert_eq "exit status 7 -> 7" "7" "$?"
log=$work/sigterm.log; touch "$log"; chmod 666 "$log"
me srun -n 1 -J spank-sigterm --container-image="$IMG" /opt/socker/probe --wait-term 30 >"$log" 2>&1 &
spid=$!
for _ in $(seq 100); do grep -q waiting "$log" && break; sleep 0.1; done
scancel --signal=TERM -u "$U" -n spank-sigterm
wait $spid
assert_contains "scancel's SIGTERM reaches the application" "$(cat "$log")" "sigterm=received"
out=$(me srun -n 1 --container-image="$IMG" /no/such/cmd 2>&1); rc=$?
n_rc=$(me srun -n 1 /no/such/cmd >/dev/null 2>&1; echo $?)
assert_eq "a command not in the image: slurmstepd's exit code, as natively" "$n_rc" "$rc"
assert_contains "... its message" "$out" "/no/such/cmd: No such file or directory"

# ---------------------------------------------------------------- MPI over PMIx
out=$(me env OMPI_MCA_btl_base_verbose=100 srun --mpi=pmix -n 2 --container-image="$IMG" \
  /opt/socker/mpi-hello-ring --expect-ranks 2 2>&1); rc=$?
assert_eq "pmix: hello/ring/4 MiB exit 0" "0" "$rc"
assert_contains "pmix: data checked" "$out" "RESULT ok ranks=2"
assert_eq "pmix: vader between the ranks" "0 1 vader
1 0 vader" "$(btl_pairs "$out")"
assert_contains "pmix: vader single copy is CMA" "$out" "info: btl_vader_single_copy_mechanism=cma"
assert_no_mpi_errors "pmix through the plugin" "$out"
out=$(me srun --mpi=pmix -n 1 --container-image="$IMG" sh -c 'echo "$PMIX_NAMESPACE $PMIX_RANK"; test -d "$PMIX_SERVER_TMPDIR" && echo server-dir-visible' 2>&1)
assert_contains "pmix: Slurm's PMIx variables inside" "$out" "slurm.pmix."
assert_contains "pmix: the server directory is bound" "$out" "server-dir-visible"

# MPICH over Slurm's PMI2 (the PMI_FD socket slurmstepd passes must reach the application).
if [[ -n $(as_user "$BIN" image ls 2>/dev/null | awk '$1 == "mpi-mpich"') ]]; then
  out=$(me srun --mpi=pmi2 -n 2 --container-image=mpi-mpich /opt/bench/mpi-hello-ring --expect-ranks 2 2>&1); rc=$?
  assert_eq "pmi2 + MPICH through the plugin: exit 0" "0" "$rc"
  assert_contains "pmi2 + MPICH: RESULT" "$out" "RESULT ok ranks=2"
  assert_contains "pmi2 + MPICH: the image's MPICH" "$out" "library=MPICH"
else
  echo "skip - $T: image mpi-mpich absent (examples/mpi-image.sh --mpi mpich --bench mpi-mpich): PMI2 not checked"
fi

# ---------------------------------------------------------------- sbatch
cat > "$work/job.sh" <<'EOF'
#!/bin/bash
#SBATCH --container-image=demo
#SBATCH -n 2
#SBATCH -J spank-batch
echo "batch-script: $(cat /etc/socker-test-image 2>/dev/null || echo native)"
srun -n 2 cat /etc/socker-test-image
EOF
chmod 0755 "$work/job.sh"
out=$(in_work sbatch -W -o "$work/batch.out" "$work/job.sh" 2>&1); rc=$?
assert_eq "sbatch -W exit 0" "0" "$rc"
bout=$(cat "$work/batch.out" 2>/dev/null)
assert_eq "#SBATCH --container-image: each srun of the script runs in the image" "2" "$(grep -c '^socker-mpi test image$' <<<"$bout")"
assert_contains "... the batch script itself runs natively (it drives srun)" "$bout" "batch-script: native"

# ---------------------------------------------------------------- the options
out=$(me srun -n 1 --container-image="$IMG" --container-workdir=/opt pwd 2>&1)
assert_eq "--container-workdir" "/opt" "$out"
out=$(me env SPANK_TEST_VAR=from-host srun -n 1 --container-image="$IMG" --container-env=SPANK_TEST_VAR printenv SPANK_TEST_VAR 2>&1)
assert_eq "--container-env keeps the host's value" "from-host" "$out"
out=$(in_work srun -n 1 --container-image="$IMG" --no-container-mount-home sh -c "ls $HOME_U >/dev/null 2>&1 && echo home || echo no-home" 2>&1)
assert_eq "--no-container-mount-home (run from elsewhere)" "no-home" "$out"
out=$(in_work srun -n 1 --container-image="$IMG" sh -c "ls -d $HOME_U >/dev/null 2>&1 && echo home || echo no-home" 2>&1)
assert_eq "... the home directory is there by default" "home" "$out"
mkdir -p "$work/data"; echo payload > "$work/data/f"; chmod -R a+rX "$work/data"
out=$(me srun -n 1 --container-image="$IMG" --container-mounts="$work/data:/data:ro" sh -c 'cat /data/f; touch /data/g 2>&1 || true' 2>&1)
assert_contains "--container-mounts SRC:DST:ro: the file" "$out" "payload"
assert_contains "... read-only" "$out" "Read-only file system"
out=$(me srun -n 1 --container-image="$IMG" --container-bind-policy=core sh -c 'grep Cpus_allowed_list /proc/self/status' 2>&1); rc=$?
assert_eq "--container-bind-policy=core accepted" "0" "$rc"
out=$(me srun -n 1 --container-image="$IMG" --container-dry-run /bin/true 2>&1); rc=$?
assert_eq "--container-dry-run exit 0" "0" "$rc"
assert_contains "--container-dry-run prints the spec" "$out" "\"image\": \"$IMG\""
out=$(me env PYXIS_CONTAINER_IMAGE="$IMG" srun -n 1 cat /etc/socker-test-image 2>&1)
assert_eq "PYXIS_CONTAINER_IMAGE in the environment" "socker-mpi test image" "$out"
out=$(me env SOCKER_CONTAINER_IMAGE=nosuch srun -n 1 --container-image="$IMG" cat /etc/socker-test-image 2>&1)
assert_eq "the command line wins over the environment" "socker-mpi test image" "$out"

# --container-entrypoint: an image with an Entrypoint (busybox, the images test's cached base,
# and a layer with an entry script).
. "$(dirname "$0")/images_lib.sh"
base=$(base_rootfs)
python3 - "$work" "$base" <<'EOF'
import hashlib, io, json, os, sys, tarfile
w, base = sys.argv[1], sys.argv[2]
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    data = b'#!/bin/sh\necho "entry: $*"\nexec "$@"\n'
    for d in ("usr", "usr/local", "usr/local/bin"):
        ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
    ti = tarfile.TarInfo("usr/local/bin/entry.sh"); ti.size = len(data); ti.mode = 0o755
    t.addfile(ti, io.BytesIO(data))
entry = layer.getvalue()
base_raw = open(base, "rb").read()
diffs = ["sha256:" + hashlib.sha256(b).hexdigest() for b in (base_raw, entry)]
cfg = json.dumps({"architecture": "amd64", "os": "linux",
                  "config": {"Entrypoint": ["/usr/local/bin/entry.sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
man = json.dumps([{"Config": "config.json", "RepoTags": ["spank-entry:latest"],
                   "Layers": ["base.tar", "entry.tar"]}]).encode()
with tarfile.open(os.path.join(w, "entry-image.tar"), "w") as t:
    for name, blob in (("base.tar", base_raw), ("entry.tar", entry), ("config.json", cfg), ("manifest.json", man)):
        ti = tarfile.TarInfo(name); ti.size = len(blob); t.addfile(ti, io.BytesIO(blob))
EOF
out=$("$BIN" image import "$work/entry-image.tar" spank-entry 2>&1); rc=$?
assert_eq "import of an image with an Entrypoint" "0" "$rc"
out=$(me srun -n 1 --container-image=spank-entry --container-entrypoint echo hi 2>&1)
assert_eq "--container-entrypoint: Entrypoint + command" "entry: echo hi
hi" "$out"
out=$(me srun -n 1 --container-image=spank-entry echo hi 2>&1)
assert_eq "without it (the default, as Pyxis): the command alone" "hi" "$out"
out=$(me env PYXIS_CONTAINER_ENTRYPOINT=1 srun -n 1 --container-image=spank-entry echo hi 2>&1)
assert_eq "PYXIS_CONTAINER_ENTRYPOINT=1" "entry: echo hi
hi" "$out"
# An image file: imported into the user's own store on first use (2 tasks, one import), as
# `socker-mpi FILE` does; the audit record says store=user.
chmod 0644 "$work/entry-image.tar"
out=$(in_work srun -n 2 --container-image="$work/entry-image.tar" /bin/busybox echo from-file 2>&1); rc=$?
assert_eq "--container-image=FILE: exit 0" "0" "$rc"
assert_eq "... both tasks ran from the file's image" "2" "$(grep -c '^from-file$' <<<"$out")"
assert_contains "... listed in the user's store" "$(as_user "$BIN" image ls --user 2>&1)" "sha256:"

# ---------------------------------------------------------------- bad input
out=$(me srun -n 1 --container-image=dem /bin/true 2>&1); rc=$?
assert_eq "unknown image: the step fails with 65" "65" "$rc"
assert_contains "... the launcher's message" "$out" "socker-mpi[rank 0]: image \`dem:latest\`: no such image"
assert_contains "... and its suggestion" "$out" "did you mean 'demo'?"
out=$(me srun -n 1 --container-image=demo --container-mounts=/etc:/mnt/etc /bin/true 2>&1); rc=$?
assert_eq "refused bind: 77" "77" "$rc"
assert_contains "... says why, in the plugin's words" "$out" "refused \`--container-mounts /etc\`: /etc is outside the allowed bind sources"
out=$(me srun -n 1 --container-workdir=/opt /bin/true 2>&1); rc=$?
[[ $rc -ne 0 ]] && pass "an option without --container-image: srun refuses (rc $rc)" || fail "option without image ran"
assert_contains "... and says so" "$out" "--container-* options need --container-image"
out=$(me srun -n 1 --container-image="$IMG" --container-bind-policy=sideways /bin/true 2>&1); rc=$?
assert_eq "bad --container-bind-policy: 64" "64" "$rc"
assert_contains "... names the accepted words" "$out" "--container-bind-policy 'sideways': expected"
out=$(me srun -n 1 --container-image="$IMG" --container-mounts=relative:/x /bin/true 2>&1); rc=$?
assert_eq "bad --container-mounts: 64" "64" "$rc"
out=$(me env PYXIS_CONTAINER_MOUNT_HOME=maybe srun -n 1 --container-image="$IMG" /bin/true 2>&1); rc=$?
assert_eq "bad flag value in the environment: 64" "64" "$rc"
assert_contains "... names the variable" "$out" "PYXIS_CONTAINER_MOUNT_HOME='maybe'"
out=$(me env PYXIS_CONTAINER_MOUNT_HOME=maybe PYXIS_CONTAINER_WORKDIR=/opt srun -n 1 cat /proc/self/status 2>&1); rc=$?
assert_eq "... without an image the variables are ignored: a native srun runs untouched" "0" "$rc"
out=$(me srun -n 2 --container-image=/nonexistent/x.tar /bin/true 2>&1); rc=$?
[[ $rc -ne 0 && $out == *"x.tar"* ]] && pass "a missing image file fails the step, naming it (rc $rc)" || fail "missing image file: rc $rc: $out"

# Hostile values: refused by the launcher's own checks, nothing run by a shell.
out=$(me srun -n 1 --container-image="$IMG" --container-mounts=/proc/self/root/etc:/x /bin/true 2>&1); rc=$?
assert_eq "--container-mounts through a /proc magic link: 77" "77" "$rc"
out=$(me srun -n 1 --container-image="$IMG" --container-mounts="$work/data:/etc" /bin/true 2>&1); rc=$?
assert_eq "--container-mounts onto /etc: 77" "77" "$rc"
out=$(me srun -n 1 '--container-image=demo;touch /tmp/spank-pwned' /bin/true 2>&1); rc=$?
[[ $rc -ne 0 && ! -e /tmp/spank-pwned ]] && pass "an image name with a shell command: refused (rc $rc), nothing run" \
  || fail "image name with a shell command: rc $rc, $(ls /tmp/spank-pwned 2>&1)"
rm -f /tmp/spank-pwned
out=$(me srun -n 1 --container-image="$IMG" '--container-workdir=/nonexistent;id' /bin/true 2>&1); rc=$?
assert_eq "a working directory missing in the image: 74" "74" "$rc"
assert_contains "... named" "$out" "/nonexistent;id"

# Killed during set-up (scancel at random moments of a 4-task start): nothing left behind.
for _ in $(seq 8); do
  me srun -n 4 -J spank-kill --container-image="$IMG" /bin/sleep 30 >/dev/null 2>&1 &
  sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
  scancel -u "$U" -n spank-kill 2>/dev/null
  wait $! 2>/dev/null
done
sleep 1
assert_eq "killed set-ups: host mount table unchanged" "$mounts_before" "$(mount_snapshot)"
assert_eq "killed set-ups: no task left" "" "$(pgrep -u "$U" -x sleep || true)"
assert_eq "killed set-ups: no staging mount on the host" "" \
  "$(grep -E ' /var/lib/socker-mpi/mnt' /proc/self/mountinfo || true)"

# ---------------------------------------------------------------- the audit record
sleep 0.3
audit=$(tail -c +"$((auth_start + 1))" "$AUTH_LOG" 2>/dev/null)
assert_contains "audit: a launch record from the plugin" "$audit" "decision=launch user=$U uid=$UID_U"
assert_contains "audit: the refusal of the unknown image" "$audit" 'decision=refused'
assert_contains "audit: the image file's launch, from the user's store" "$audit" 'store=user'

# ---------------------------------------------------------------- nothing left behind
sleep 0.5
assert_eq "host mount table unchanged" "$mounts_before" "$(mount_snapshot)"
assert_eq "no process of the test left" "" "$(pgrep -u "$U" -f 'probe|mpi-hello|sleep' || true)"
finish
