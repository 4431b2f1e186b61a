#!/usr/bin/env bash
# Images end to end, on real images made during the run by the real tools: a busybox rootfs
# (mmdebstrap, cached), a 2-layer image whose second layer deletes files and replaces a
# directory (podman build: whiteouts + opaque dir), saved as a docker-archive (podman save),
# copied to an OCI layout with gzip layers (skopeo) and unpacked by umoci as the reference.
# Imports go through the installed setuid binary as root; launches run as the test user.
# Scenarios that need an empty store run in a private mount namespace with a scratch directory
# bound over the admin store (the re-entry below), so the admin store is left as it was.
# ITEST_KEEP=1 keeps the work dir (/var/tmp/itest-images.*) for debugging.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/images_lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
N=itest-img   # every image this test creates is named itest-img:*

count() { find "$1" -mindepth 1 -maxdepth 1 ${2:+-name "$2"} 2>/dev/null | wc -l; }
store_counts() {  # layers images refs tmp of $STORE
  echo "layers=$(find "$STORE/layers" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)" \
       "images=$(count "$STORE/images")" "refs=$(count "$STORE/refs")" "tmp=$(count "$STORE/tmp")"
}

# ---------------------------------------------------------------- scenarios in a scratch store
scn_import_and_list() {  # SOURCE: import, then list the merged tree
  "$BIN" image import "$1" $N:scratch >/dev/null 2>"$W/scn.err" || { cat "$W/scn.err" >&2; return 1; }
  mapfile -t dirs < <(image_layer_dirs $N:scratch)
  MASK_SUID=1 overlay_listing "$W/list.py" "${dirs[@]}"
}

scn_concurrent() {  # 16 imports of one archive at once
  local i pids=()
  for i in $(seq 1 16); do
    "$BIN" image import "$W/d.tar" $N:c"$i" >"$W/c$i.out" 2>"$W/c$i.err" & pids+=($!)
  done
  local ok=0
  for i in "${!pids[@]}"; do wait "${pids[$i]}" && ok=$((ok + 1)); done
  echo "ok=$ok"
  echo "unpacked=$(cat "$W"/c*.err | sed -nE 's/.*layer\(s\): ([0-9]+) unpacked.*/\1/p' | paste -sd+ | bc)"
  echo "ids=$(sort -u "$W"/c*.out | wc -l)"
  echo "names=$("$BIN" image inspect $N:c1 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["RepoTags"]))')"
  store_counts
}

scn_corrupt() {
  out=$("$BIN" image import "$W/corrupt.tar" $N:corrupt 2>&1); echo "rc=$?"
  echo "msg=$out"
  store_counts
}

scn_killed() {  # SIGKILL an import in the middle, then import again
  mkfifo "$W/fifo"
  "$BIN" image import - $N:killed <"$W/fifo" >/dev/null 2>&1 & local imp=$!
  python3 -c '
import sys, time
data = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "wb", buffering=0) as f:
    f.write(data[: len(data) * 3 // 4]); time.sleep(60)' "$W/d.tar" "$W/fifo" & local writer=$!
  local i started=0
  for i in $(seq 100); do
    compgen -G "$STORE/tmp/import-*/layer-*/bin/*" >/dev/null && { started=1; break; }
    sleep 0.05
  done
  kill -KILL $imp; wait $imp 2>/dev/null; echo "killed_rc=$?"; kill $writer 2>/dev/null; wait $writer 2>/dev/null
  echo "started=$started"
  echo "visible=$("$BIN" image ls | grep -c "$N *killed")"
  "$BIN" image inspect $N:killed >/dev/null 2>&1; echo "inspect_rc=$?"
  echo "refs=$(count "$STORE/refs") images=$(count "$STORE/images")"
  "$BIN" image import "$W/d.tar" $N:killed >/dev/null 2>&1; echo "again_rc=$?"
  "$BIN" image inspect $N:killed >/dev/null 2>&1; echo "after_inspect_rc=$?"
  store_counts
}

scn_enospc() {  # a store on a 1 MiB filesystem
  mount -t tmpfs -o size=1m,mode=0755 itest-full "$STORE" || return 1
  out=$("$BIN" image import "$W/d.tar" $N:full 2>&1); echo "rc=$?"
  echo "lines=$(wc -l <<<"$out")"
  echo "msg=$out"
  echo "used_kb=$(du -sk "$STORE" | cut -f1)"
  store_counts
}

if [[ ${1:-} == --scratch ]]; then
  mount --bind "$2" "$STORE" || exit 90
  shift 2
  "$@"
  exit $?
fi
in_scratch() {
  local d; d=$(mktemp -d "$W/store.XXXXXX"); chmod 755 "$d"
  unshare -m --propagation private "$here/test_images.sh" --scratch "$d" "$@"
}

# ---------------------------------------------------------------- images made by the real tools
t_start=$(date +%s)
W=$(mktemp -d /var/tmp/itest-images.XXXXXX); chmod 755 "$W"; export W
P="podman --root $W/podman/root --runroot $W/podman/run --tmpdir $W/podman/tmp --storage-driver overlay --cgroup-manager cgroupfs --events-backend file"
cleanup() {
  admin_conf_restore
  for n in $(as_user "$BIN" image ls --user 2>/dev/null | awk '$1 ~ /^file\// { print $1 ":" $2 }'); do as_user "$BIN" image rm --user "$n" >/dev/null 2>&1; done
  for n in $("$BIN" image ls 2>/dev/null | awk -v n=$N '$1 == n { print $1 ":" $2 }'); do "$BIN" image rm "$n" >/dev/null 2>&1; done
  as_user "$BIN" image rm --user $N:user >/dev/null 2>&1
  $P rmi -a -f >/dev/null 2>&1
  umount -R "$W/podman/run" 2>/dev/null
  rm -rf "$W" /tmp/itest-dotdot-pwned /tmp/itest-absolute-pwned
}
trap cleanup EXIT; [[ -n ${ITEST_KEEP:-} ]] && trap - EXIT

base=$(base_rootfs) || { fail "mmdebstrap base rootfs"; finish; exit 1; }
mkdir -p "$W/ctx"
cat > "$W/ctx/Containerfile" <<'EOF'
FROM localhost/itest-base:latest
RUN rm -rf /usr/share/doc && mkdir -p /usr/share/doc/new && echo replaced > /usr/share/doc/new/f && \
    rm /bin/vi /etc/motd && ln /bin/busybox /opt/hardlink && ln -s ../bin/sh /opt/symlink && \
    echo data > /opt/file && chmod 0640 /opt/file && chown 1234:4321 /opt/file
ENV ITEST_VAR=from-image
WORKDIR /opt
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo entry-cmd-ran in $(pwd) with ITEST_VAR=$ITEST_VAR"]
EOF
if ! { $P import -q --change 'CMD ["/bin/sh"]' "$base" localhost/itest-base:latest &&
       $P build -q --runtime runc --network host --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 \
         -t localhost/itest-app:latest "$W/ctx" &&
       $P save -q --format docker-archive -o "$W/d.tar" localhost/itest-app:latest &&
       skopeo copy -q "docker-archive:$W/d.tar" "oci:$W/oci:itest" &&
       umoci unpack --image "$W/oci:itest" "$W/bundle"; } >"$W/build.log" 2>&1; then
  fail "building the test image with podman/skopeo/umoci"; sed 's/^/    | /' "$W/build.log" | tail -20; finish; exit 1
fi
gzip_docker_archive "$W/d.tar" "$W/dgz.tar"
write_listing_tool "$W/list.py"
config_id=$(tar -xOf "$W/d.tar" manifest.json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Config"][:64])')
pass "test image built with mmdebstrap, podman build/save, skopeo, umoci ($(( $(date +%s) - t_start )) s)"

# ---------------------------------------------------------------- docker-archive vs umoci unpack
layers_before=$(find "$STORE/layers" -mindepth 1 -maxdepth 1 -type d | wc -l)
out=$("$BIN" image import "$W/d.tar" $N:docker 2>"$W/imp.err"); rc=$?
assert_eq "docker-archive import exit code" "0" "$rc"
assert_eq "image id is the config digest" "sha256:$config_id" "$out"
assert_contains "import summary" "$(cat "$W/imp.err")" "imported $N:docker (docker-archive): sha256:${config_id:0:12}, 2 layer(s)"
mapfile -t dirs < <(image_layer_dirs $N:docker)
assert_eq "two layer directories" "2" "${#dirs[@]}"
ours=$(MASK_SUID=1 overlay_listing "$W/list.py" "${dirs[@]}")
ref=$(MASK_SUID=1 python3 "$W/list.py" "$W/bundle/rootfs")
if [[ "$(grep -v '^# specials' <<<"$ours")" == "$(grep -v '^# specials' <<<"$ref")" ]]; then
  pass "merged tree equals umoci unpack: $(grep -vc '^#' <<<"$ours") entries (path, type, mode, owner, size, mtime, target)"
else
  fail "merged tree differs from umoci unpack"; diff <(echo "$ours") <(echo "$ref") | head -20 | sed 's/^/    | /'
fi
assert_eq "no device node or FIFO in our tree" "# specials 0" "$(grep '^# specials' <<<"$ours")"
assert_not_contains "umoci has the device nodes we drop" "$(grep '^# specials' <<<"$ref")" "# specials 0"
assert_not_contains "whiteout: /bin/vi deleted" "$ours" "./bin/vi "
assert_not_contains "whiteout: /etc/motd deleted" "$ours" "./etc/motd "
assert_not_contains "opaque dir: old /usr/share/doc content hidden" "$ours" "./usr/share/doc/busybox-static"
assert_contains "opaque dir: new content" "$ours" "./usr/share/doc/new/f f 0644 0:0 9 "
assert_contains "ownership and mode kept" "$ours" "./opt/file f 0640 1234:4321 5 "
assert_contains "symlink kept" "$ours" "./opt/symlink l 0777 0:0 9 "
assert_eq "hard link kept within the layer" "2" "$(stat -c %h "${dirs[1]}/opt/hardlink")"
raw=$(overlay_listing "$W/list.py" "${dirs[@]}")
assert_contains "setuid bit cleared" "$raw" "./bin/suidtool f 0755 "
assert_contains "umoci keeps it (the reference has it)" "$(python3 "$W/list.py" "$W/bundle/rootfs")" "./bin/suidtool f 4755 "

# ---------------------------------------------------------------- other formats, independent stores
oci=$(in_scratch scn_import_and_list "layout:$W/oci:itest")
assert_eq "OCI layout (gzip layers) gives the same tree, unpacked in its own store" \
  "$(sha256sum <<<"$ours" | cut -c1-16)" "$(sha256sum <<<"$oci" | cut -c1-16)"
gz=$(in_scratch scn_import_and_list "$W/dgz.tar")
assert_eq "docker-archive with gzip layers gives the same tree" \
  "$(sha256sum <<<"$ours" | cut -c1-16)" "$(sha256sum <<<"$gz" | cut -c1-16)"
out=$(cat "$W/d.tar" | "$BIN" image import - $N:stdin 2>&1); rc=$?
assert_eq "import from stdin exit code" "0" "$rc"
assert_contains "stdin import reuses the stored layers" "$out" "2 layer(s): 0 unpacked, 2 already stored"
out=$("$BIN" image import "layout:$W/oci:itest" $N:oci 2>&1); rc=$?
assert_contains "OCI import of the same image: same id, nothing stored twice" "$out" "sha256:${config_id:0:12}, 2 layer(s): 0 unpacked, 2 already stored"
layers_after=$(find "$STORE/layers" -mindepth 1 -maxdepth 1 -type d | wc -l)
assert_eq "three imports of one image added two layers" "$((layers_before + 2))" "$layers_after"
ls_out=$("$BIN" image ls)
assert_contains "image ls: name, tag, digest" "$ls_out" "$N"
assert_eq "image ls rows of the image" "3" "$(awk -v n=$N -v d="sha256:${config_id:0:12}" '$1 == n && $3 == d' <<<"$ls_out" | wc -l)"
insp=$("$BIN" image inspect $N:oci)
assert_contains "inspect: Entrypoint" "$(tr -d ' \n' <<<"$insp")" '"Entrypoint":["/bin/sh","-c"]'
assert_contains "inspect: WorkingDir" "$insp" '"WorkingDir": "/opt"'
assert_contains "inspect: Env" "$insp" '"ITEST_VAR=from-image"'
assert_contains "inspect: manifest digest of the OCI import" "$insp" '"ManifestDigest": "sha256:'

# ---------------------------------------------------------------- launches
out=$(cd / && runuser -u "$U" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME_U" srun -n 2 "$BIN" $N:docker 2>&1)
assert_eq "no command: the image's Entrypoint+Cmd in its WorkingDir, with its Env (2 ranks)" \
  "2" "$(grep -c '^entry-cmd-ran in /opt with ITEST_VAR=from-image$' <<<"$out")"
out=$(as_user srun -O -n 16 "$BIN" $N:docker 'cat /usr/share/doc/new/f; test -e /bin/vi || echo vi-gone' 2>&1)
assert_eq "16 concurrent launches see the replaced dir" "16" "$(grep -c '^replaced$' <<<"$out")"
assert_eq "16 concurrent launches see the whiteout" "16" "$(grep -c '^vi-gone$' <<<"$out")"

# ---------------------------------------------------------------- concurrency, corruption, kill, disk full
res=$(in_scratch scn_concurrent)
assert_contains "16 concurrent imports all succeed" "$res" "ok=16"
assert_contains "each layer unpacked once in all" "$res" "unpacked=2"
assert_contains "one image, 16 names" "$res" "names=16"
assert_contains "one stored copy, no leftovers" "$res" "layers=2 images=1 refs=16 tmp=0"

victim=$(corrupt_docker_layer "$W/d.tar" "$W/corrupt.tar")
res=$(in_scratch scn_corrupt)
assert_contains "corrupted layer ($victim) refused with 65" "$res" "rc=65"
assert_contains "corruption message" "$res" "(corrupted or tampered layer)"
assert_contains "corrupted import leaves nothing" "$res" "layers=0 images=0 refs=0 tmp=0"
cp -a "$W/oci" "$W/oci-bad"
blob=$(ls -S "$W/oci-bad/blobs/sha256/" | head -1)
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(b)' "$W/oci-bad/blobs/sha256/$blob"
before=$(store_counts)
out=$("$BIN" image import "layout:$W/oci-bad:itest" $N:badblob 2>&1); rc=$?
assert_eq "corrupted OCI blob refused (layer already stored)" "65" "$rc"
assert_contains "corrupted OCI blob message" "$out" "corrupted or tampered blob"
assert_eq "admin store unchanged by the refused import" "$before" "$(store_counts)"

res=$(in_scratch scn_killed)
assert_contains "import was unpacking when killed" "$res" "started=1"
assert_contains "killed import not visible in ls" "$res" "visible=0"
assert_contains "killed import not found" "$res" "inspect_rc=65"
assert_contains "killed import wrote no ref or record" "$res" "refs=0 images=0"
assert_contains "next import succeeds" "$res" "again_rc=0"
assert_contains "and is usable" "$res" "after_inspect_rc=0"
assert_contains "leftovers of the killed import swept" "$res" "layers=2 images=1 refs=1 tmp=0"

res=$(in_scratch scn_enospc)
assert_contains "disk full: exit code 74" "$res" "rc=74"
assert_contains "disk full: one line" "$res" "lines=1"
assert_contains "disk full: says so" "$res" "No space left on device"
assert_contains "disk full: partial data removed" "$res" "layers=0 images=0 refs=0 tmp=0"

# ---------------------------------------------------------------- malicious tarballs (as root, admin store)
outside="$W/outside"; mkdir -p "$outside"; echo precious > "$outside/victim"
make_malicious "$W/mal" "$outside"
passwd_links=$(stat -c %h /etc/passwd)
for c in dotdot absolute symlink-write symlink-dir-write hardlink-dotdot hardlink-absolute hardlink-via-symlink \
         whiteout-via-symlink opaque-via-symlink; do
  before=$(store_counts)
  out=$("$BIN" image import "$W/mal/$c.tar" $N:$c 2>&1); rc=$?
  assert_eq "malicious $c refused (65)" "65" "$rc"
  assert_eq "malicious $c: one-line message" "1" "$(wc -l <<<"$out")"
  assert_eq "malicious $c: store unchanged" "$before" "$(store_counts)"
done
assert_eq "nothing written outside: sentinel dir" "victim" "$(ls "$outside")"
assert_eq "nothing written outside: victim intact" "precious" "$(cat "$outside/victim")"
assert_eq "nothing written outside: /tmp" "" "$(ls /tmp/itest-dotdot-pwned /tmp/itest-absolute-pwned 2>/dev/null)"
assert_eq "no hard link made to /etc/passwd" "$passwd_links" "$(stat -c %h /etc/passwd)"
assert_eq "no xattr set outside" "" \
  "$(python3 -c 'import os,sys; print(os.listxattr(sys.argv[1]) or "")' "$outside")"
out=$("$BIN" image import "$W/mal/devices.tar" $N:devices 2>&1); rc=$?
assert_eq "device nodes/FIFO tarball imported" "0" "$rc"
assert_contains "device nodes/FIFO reported as left out" "$out" "left out 3 device node(s)"
dev_layer=$(image_layer_dirs $N:devices)
assert_eq "no device node or FIFO stored" "" "$(find "$dev_layer" \( -type b -o -type c -o -type p \) -print)"
out=$("$BIN" image import "$W/mal/setuid-caps.tar" $N:caps 2>&1); rc=$?
assert_eq "setuid/caps tarball imported" "0" "$rc"
caps_layer=$(image_layer_dirs $N:caps)
assert_eq "setuid and setgid cleared" "755 755" "$(stat -c %a "$caps_layer/bin/suid" "$caps_layer/bin/sgid" | xargs)"
assert_eq "file capability not restored" "" \
  "$(python3 -c 'import os,sys; print(os.listxattr(sys.argv[1], follow_symlinks=False) or "")' "$caps_layer/bin/capped")"

# ---------------------------------------------------------------- per-user store (written as the user)
ustore=$HOME_U/.local/share/socker-mpi/images
out=$(as_user "$BIN" image import "$W/d.tar" $N:user 2>&1); rc=$?
assert_eq "user imports into the admin store: refused (77)" "77" \
  "$(as_user "$BIN" image import "$W/d.tar" $N:user >/dev/null 2>&1; echo $?)"
out=$(as_user "$BIN" image import --user "$W/d.tar" $N:user 2>&1); rc=$?
assert_eq "import --user exit code" "0" "$rc"
assert_contains "import --user: same image id" "$out" "sha256:${config_id:0:12}"
assert_eq "per-user store: every file owned by the user" "" "$(find "$ustore" ! -user "$U" -print -quit)"
assert_contains "image ls --user" "$(as_user "$BIN" image ls --user)" "$N "
assert_not_contains "not in the admin store" "$("$BIN" image ls)" "$N                      user"
mapfile -t udirs < <(as_user "$BIN" image inspect $N:user | python3 -c 'import json,sys; print("\n".join(l["Dir"] for l in json.load(sys.stdin)["Layers"]))')
assert_eq "inspect finds it in the user's store" "$ustore/layers" "$(dirname "${udirs[0]}")"
assert_eq "opaque dir marked with user.overlay.opaque" "b'y'" \
  "$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.overlay.opaque"))' "${udirs[1]}/usr/share/doc")"
# Stacked as root with userxattr (the option a launch from a user store needs): same tree as
# umoci's but for the owner.
lower=""; for d in "${udirs[@]}"; do lower="$d${lower:+:$lower}"; done
utree=$(unshare -m --propagation private bash -c '
  t=$(mktemp -d) && mount -t tmpfs -o mode=0755 itest "$t" && mkdir "$t/u" "$t/w" "$t/m" &&
  mount -t overlay -o "lowerdir=$1,upperdir=$t/u,workdir=$t/w,userxattr" itest "$t/m" &&
  MASK_SUID=1 python3 "$2" "$t/m"; umount -l "$t/m" "$t"; rmdir "$t"' _ "$lower" "$W/list.py")
strip_owner() { awk '{ $4 = ""; print }'; }
assert_eq "user-store tree equals umoci unpack (owner aside)" \
  "$(grep -v '^#' <<<"$ref" | strip_owner | sha256sum)" "$(grep -v '^#' <<<"$utree" | strip_owner | sha256sum)"

# ---------------------------------------------------------------- launches from the user's store
# Mounted as the user's: layers opened as the user, overlayfs with userxattr (whiteouts and the
# opaque dir of a store the user wrote must work as in the admin store).
out=$(as_user srun -O -n 4 "$BIN" $N:user 'id -u; cat /usr/share/doc/new/f; ls /usr/share/doc; test -e /bin/vi || echo vi-gone; test -e /etc/motd || echo motd-gone; grep " / " /proc/self/mountinfo' 2>&1)
assert_eq "user-store image runs as the user (4 ranks)" "4" "$(grep -cx "$UID_U" <<<"$out")"
assert_eq "user store: opaque dir shows only the new content" "4 4" "$(grep -cx replaced <<<"$out") $(grep -cx new <<<"$out")"
assert_eq "user store: whiteouts hide deleted files" "4 4" "$(grep -cx vi-gone <<<"$out") $(grep -cx motd-gone <<<"$out")"
assert_contains "user store: overlay mounted with userxattr" "$out" ",userxattr"
out=$(cd / && runuser -u "$U" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME_U" srun -n 1 "$BIN" $N:user 2>&1)
assert_eq "user store: no command runs Entrypoint+Cmd in WorkingDir with Env" \
  "entry-cmd-ran in /opt with ITEST_VAR=from-image" "$out"
# A layer directory that is not the user's own is refused before anything is mounted; one
# swapped for a symlink does not count as present.
chown root "${udirs[1]}"
out=$(as_user srun -n 1 "$BIN" $N:user true 2>&1); rc=$?
assert_eq "user-store layer not owned by the user: refused (77)" "77" "$rc"
assert_contains "... and says why" "$out" "not by the user"
chown "$U" "${udirs[1]}"
mv "${udirs[1]}" "${udirs[1]}.away" && ln -s /usr/share "${udirs[1]}" && chown -h "$U" "${udirs[1]}"
out=$(as_user srun -n 1 "$BIN" $N:user true 2>&1); rc=$?
assert_eq "user-store layer swapped for a symlink: image incomplete, not found (65)" "65" "$rc"
rm -f "${udirs[1]}"; mv "${udirs[1]}.away" "${udirs[1]}"
admin_conf_set user_store no
out=$(as_user srun -n 1 "$BIN" $N:user true 2>&1); rc=$?
assert_eq "user_store = no: user-store images are not found (65)" "65" "$rc"
assert_contains "... with the admin store's message" "$out" "no such image in $STORE"
admin_conf_restore

out=$(as_user "$BIN" image rm --user $N:user 2>&1)
assert_contains "rm --user removes its layers" "$out" "2 unused layer(s) deleted"
assert_eq "its layer directories are gone" "0" "$(ls -d "${udirs[@]}" 2>/dev/null | wc -l)"

# ---------------------------------------------------------------- launches from an image file
# The first launch imports the file (16 ranks at once: one import, 16 launches); later launches
# find it by the file's identity without reading it; a changed file is imported again.
cp "$W/d.tar" "$W/job app.tar"; chmod 0644 "$W/job app.tar"
ucount() { as_user "$BIN" image ls --user | awk '$1 == "file/job-app"' | wc -l; }
out=$(as_user srun -O -n 16 "$BIN" "$W/job app.tar" 'cat /usr/share/doc/new/f; test -e /bin/vi || echo vi-gone' 2>&1); rc=$?
assert_eq "16 concurrent first launches from a file succeed" "0 16 16" "$rc $(grep -cx replaced <<<"$out") $(grep -cx vi-gone <<<"$out")"
assert_eq "... with one import among them" "1" "$(grep -c "imported $W/job app.tar as file/job-app:" <<<"$out")"
assert_contains "... which unpacked both layers" "$out" "2 layer(s): 2 unpacked, 0 already stored"
assert_eq "... into the user's store, as one image" "1" "$(ucount)"
assert_eq "... owned by the user" "" "$(find "$ustore" ! -user "$U" -print -quit)"
out=$(as_user srun -O -n 4 "$BIN" "$W/job app.tar" true 2>&1); rc=$?
assert_eq "next launches from the unchanged file: no import" "0 0" "$rc $(grep -c imported <<<"$out")"
out=$(cd / && runuser -u "$U" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME_U" srun -n 1 "$BIN" "$W/job app.tar" 2>&1)
assert_eq "no command: the file's Entrypoint+Cmd" "entry-cmd-ran in /opt with ITEST_VAR=from-image" "$out"
touch "$W/job app.tar"
out=$(as_user srun -n 1 "$BIN" "$W/job app.tar" true 2>&1)
assert_contains "a touched file is imported again, its layers reused" "$out" "2 layer(s): 0 unpacked, 2 already stored"
assert_eq "... as a second name" "2" "$(ucount)"
out=$(as_user srun -n 1 "$BIN" "$W" true 2>&1); rc=$?
assert_eq "a directory as IMAGE: usage error (64)" "64" "$rc"
assert_contains "... naming what to do" "$out" "image import layout:DIR"
out=$(as_user srun -n 1 "$BIN" "$W/missing.tar" true 2>&1); rc=$?
assert_eq "a missing image file: I/O error (74)" "74" "$rc"
chmod 0600 "$W/job app.tar"
out=$(as_user srun -n 1 "$BIN" "$W/job app.tar" true 2>&1); rc=$?
assert_eq "an image file the user cannot read: refused (77)" "77" "$rc"
chmod 0644 "$W/job app.tar"
# Killed in the middle of the first launch's import (the 245 MB demo image, so that there is a
# middle): no image appears, the next launch imports and runs.
ln -f "$IMAGE_CACHE/demo.tar" "$W/killed.tar" 2>/dev/null || cp "$IMAGE_CACHE/demo.tar" "$W/killed.tar"
as_user srun -n 1 "$BIN" "$W/killed.tar" true >/dev/null 2>&1 & kpid=$!
for i in $(seq 500); do compgen -G "$ustore/tmp/import-*/layer-*/usr/*" >/dev/null && break; sleep 0.02; done
pkill -KILL -U "$U" -x socker-mpi; wait $kpid 2>/dev/null  # the launcher and its import child, not srun
assert_eq "killed first launch: no image from that file" "0" "$(as_user "$BIN" image ls --user | awk '$1 == "file/killed"' | wc -l)"
out=$(as_user srun -n 1 "$BIN" "$W/killed.tar" cat /etc/debian_version 2>&1); rc=$?
assert_eq "the next launch imports and runs" "0 1" "$rc $(grep -c "imported $W/killed.tar" <<<"$out")"
assert_eq "... and no work dir is left behind" "0" "$(find "$ustore/tmp" -mindepth 1 -maxdepth 1 | wc -l)"
for n in $(as_user "$BIN" image ls --user | awk '$1 ~ /^file\// { print $1 ":" $2 }'); do as_user "$BIN" image rm --user "$n" >/dev/null; done
# File launches import into the user's own store only (running a private file must not publish
# it in the shared admin store): with user stores disabled they are refused, whatever
# import_admin_store says.
admin_conf_set user_store no
admin_conf_set import_admin_store users
out=$(as_user srun -n 1 "$BIN" "$W/job app.tar" true 2>&1); rc=$?
assert_eq "user_store = no: launching a file refused (77), even with import_admin_store = users" "77" "$rc"
assert_contains "... and says why" "$out" "user_store = no"
assert_eq "... nothing imported into the admin store" "0" "$("$BIN" image ls | awk '$1 == "file/job-app"' | wc -l)"
admin_conf_restore


# ---------------------------------------------------------------- rm and garbage collection
mapfile -t dirs < <(image_layer_dirs $N:docker)
"$BIN" image rm $N:stdin >/dev/null && "$BIN" image rm $N:oci >/dev/null
out=$("$BIN" image rm $N:docker 2>&1)
assert_contains "rm of the last name removes the image and its unused layers" "$out" "removed $N:docker; 2 unused layer(s) deleted"
assert_eq "layer directories gone" "0" "$(ls -d "${dirs[@]}" 2>/dev/null | wc -l)"
"$BIN" image inspect $N:docker >/dev/null 2>&1
assert_eq "removed image not found" "65" "$?"

# Not an assertion: srun steps queue behind other jobs on a busy node.
echo "# $T: ran in $(( $(date +%s) - t_start )) s (about 10 s with the base rootfs cached and an idle node)"
finish
