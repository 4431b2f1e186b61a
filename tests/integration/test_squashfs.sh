#!/usr/bin/env bash
# The squashfs admin store (store_format = squashfs): an image imported as one flattened,
# read-only squashfs file beside its layers, loop-mounted once per node while steps use it --
# entry for entry the tree the layers make, read-only/nosuid/nodev, one loop device for 64 ranks
# and for a second step, none left after the steps or killed set-ups, a corrupted file refused
# with 65 and never mounted,
# a user's squashfs file never given to the kernel. As the test user, on the real dev cluster.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/images_lib.sh"
N=sqtest
work=$(mktemp -d /tmp/socker-test-squashfs.XXXXXX); chmod 0755 "$work"
cleanup() {
  scancel -u "$U" -n sq-hold,sq-kill 2>/dev/null
  admin_conf_restore
  for t in latest a b; do "$BIN" image rm $N:$t >/dev/null 2>&1; done
  rm -rf "$work"
}
trap cleanup EXIT
mounts_before=$(mount_snapshot)
loops_before=$(losetup -a | wc -l)

# A two-layer docker-archive: busybox, then a layer that removes /etc/motd (whiteout), replaces
# /usr/share/doc (opaque directory) and adds a file.
base=$(base_rootfs) || { fail "busybox base rootfs"; finish; exit; }
python3 - "$work" "$base" <<'EOF'
import hashlib, io, json, os, sys, tarfile
w, base = sys.argv[1], sys.argv[2]
top = io.BytesIO()
with tarfile.open(fileobj=top, mode="w") as t:
    def add(name, data=None, kind=tarfile.REGTYPE, mode=0o644):
        ti = tarfile.TarInfo(name); ti.type = kind; ti.mode = mode
        if data is not None: ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
    add("etc", kind=tarfile.DIRTYPE, mode=0o755)
    add("etc/.wh.motd", b"")
    add("usr", kind=tarfile.DIRTYPE, mode=0o755); add("usr/share", kind=tarfile.DIRTYPE, mode=0o755)
    add("usr/share/doc", kind=tarfile.DIRTYPE, mode=0o755)
    add("usr/share/doc/.wh..wh..opq", b"")
    add("usr/share/doc/new", b"replaced\n")
    add("opt", kind=tarfile.DIRTYPE, mode=0o755)
    add("opt/sq-marker", b"from the top layer\n")
entries = [("base.tar", open(base, "rb").read()), ("top.tar", top.getvalue())]
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers",
                             "diff_ids": ["sha256:" + hashlib.sha256(b).hexdigest() for _, b in entries]}}).encode()
man = json.dumps([{"Config": "config.json", "RepoTags": ["sqtest:latest"], "Layers": [n for n, _ in entries]}]).encode()
with tarfile.open(os.path.join(w, "sq.tar"), "w") as t:
    for name, blob in entries + [("config.json", cfg), ("manifest.json", man)]:
        ti = tarfile.TarInfo(name); ti.size = len(blob); t.addfile(ti, io.BytesIO(blob))
EOF
write_listing_tool "$work/list.py"

# ---------------------------------------------------------------- import
admin_conf_set store_format squashfs
out=$("$BIN" image import "$work/sq.tar" $N 2>&1); rc=$?
assert_eq "import into a squashfs store: exit 0" "0" "$rc"
assert_contains "... the squashfs file built" "$out" "squashfs sha256:"
sha=$("$BIN" image inspect $N | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Squashfs", ""))')
file=$STORE/squashfs/$sha.sqfs
assert_eq "... named in the record, one file in the store" "yes" "$([[ -n $sha && -f $file ]] && echo yes)"
assert_eq "... root's, 0644, in a directory root's alone" "644 root 700" "$(stat -c '%a %U' "$file") $(stat -c '%a' "$STORE/squashfs")"
assert_eq "... its name is its sha256" "$sha" "$(sha256sum "$file" | cut -c1-64)"
out=$("$BIN" image import "$work/sq.tar" $N 2>&1)
assert_contains "a second import reuses it" "$out" "(already built)"

# Entry for entry what the layers make (the same lister as the whiteout test).
mapfile -t dirs < <(image_layer_dirs $N)
layers_list=$(MASK_SUID=1 overlay_listing "$work/list.py" "${dirs[@]}")
sq_list=$(unshare -m --propagation private bash -c 'm=$(mktemp -d) && mount -o loop,ro -t squashfs "$1" "$m" &&
  MASK_SUID=1 python3 "$2" "$m"; rc=$?; umount "$m"; rmdir "$m"; exit $rc' _ "$file" "$work/list.py")
assert_eq "the squashfs tree equals the layers' merged tree, entry for entry" "$layers_list" "$sq_list"
assert_contains "... whiteout applied (no /etc/motd), opaque dir replaced" "$(grep -c 'etc/motd' <<<"$sq_list") $(grep -c 'usr/share/doc/busybox' <<<"$sq_list")" "0 0"

# ---------------------------------------------------------------- launch
out=$(as_user srun -n 2 "$BIN" $N sh -c 'cat /opt/sq-marker; cat /usr/share/doc/new; test -e /etc/motd || echo no-motd' 2>&1); rc=$?
assert_eq "2 ranks from the squashfs image: exit 0" "0" "$rc"
assert_eq "... the image's files, whiteout and opaque dir applied" "2 2 2" \
  "$(grep -c '^from the top layer$' <<<"$out") $(grep -c '^replaced$' <<<"$out") $(grep -c '^no-motd$' <<<"$out")"
out=$(as_user srun -n 1 --container-image=$N cat /opt/sq-marker 2>&1)
assert_eq "... and through the SPANK plugin" "from the top layer" "$out"
as_user srun -O -n 64 -J sq-hold "$BIN" $N sleep 20 >/dev/null 2>&1 & hold=$!
for _ in $(seq 200); do [[ $(pgrep -u "$U" -x sleep | wc -l) -ge 64 ]] && break; sleep 0.1; done
assert_eq "64 ranks on the node: all running" "64" "$(pgrep -u "$U" -x sleep | wc -l)"
assert_eq "... one loop device for the file" "1" "$(losetup -n -j "$file" | wc -l)"
assert_eq "... read-only, autoclear" "1 1" "$(losetup -n -l -O RO,AUTOCLEAR -j "$file" | xargs)"
rank=$(pgrep -u "$U" -x sleep | head -1)
root_line=$(awk '$5 == "/" { l = $0 } END { print l }' "/proc/$rank/mountinfo")
assert_contains "... the rank's root: the overlay on the squashfs mount, read-only, nosuid, nodev" "$root_line" " / / ro,nosuid,nodev"
assert_contains "... lower layer the squashfs mount" "$root_line" "lowerdir=/var/lib/socker-mpi/mnt/sqfs,"
img_line=$(awk '$5 == "/dev/.socker-mpi-image"' "/proc/$rank/mountinfo")
assert_contains "... the squashfs mount itself: read-only, nosuid, nodev" "$img_line" " /dev/.socker-mpi-image ro,nosuid,nodev"
assert_contains "... squashfs on the loop device" "$img_line" " - squashfs /dev/loop"
scancel -u "$U" -n sq-hold; wait $hold 2>/dev/null
for _ in $(seq 50); do [[ -z $(losetup -n -j "$file") ]] && break; sleep 0.1; done
assert_eq "after the step: no loop device left" "" "$(losetup -n -j "$file")"

# A second step while the first runs (two steps of one allocation): the same mount, taken from
# the running container -- still one loop device on the node; none once both ended.
out=$(as_user salloc -Q -n 2 sh -c "srun --overlap -n 1 $BIN $N sleep 4 & sleep 1.5
  srun --overlap -n 1 $BIN $N sh -c 'cat /opt/sq-marker; sleep 1.5' & sleep 0.8
  echo loops=\$(/usr/sbin/losetup -n -j $file | wc -l); wait" 2>&1)
assert_contains "two concurrent steps of the image: one loop device" "$out" "loops=1"
assert_contains "... the second step runs from it" "$out" "from the top layer"
for _ in $(seq 50); do [[ -z $(losetup -n -j "$file") ]] && break; sleep 0.1; done
assert_eq "... none after both" "" "$(losetup -n -j "$file")"

# Killed at random moments of a 4-rank set-up: no loop device, no mount left.
for _ in $(seq 8); do
  as_user srun -n 4 -J sq-kill "$BIN" $N sleep 30 >/dev/null 2>&1 &
  sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
  scancel -u "$U" -n sq-kill 2>/dev/null
  wait $! 2>/dev/null
done
for _ in $(seq 50); do [[ -z $(losetup -n -j "$file") ]] && break; sleep 0.1; done
assert_eq "killed set-ups: no loop device left" "" "$(losetup -n -j "$file")"
assert_eq "killed set-ups: host mounts unchanged" "$mounts_before" "$(mount_snapshot)"

# ---------------------------------------------------------------- corruption
cp -p "$file" "$work/good.sqfs"
python3 -c 'import os,sys; f=open(sys.argv[1],"r+b"); n=os.path.getsize(sys.argv[1]); f.seek(n//2); b=f.read(1); f.seek(n//2); f.write(bytes([b[0]^0xff]))' "$file"
out=$(as_user srun -n 2 "$BIN" $N true 2>&1); rc=$?
assert_eq "a corrupted squashfs file: 65" "65" "$rc"
assert_contains "... says so" "$out" "corrupted: its sha256 is"
assert_eq "... never mounted (no loop device)" "" "$(losetup -n -j "$file")"
printf 'nope' | dd of="$file" bs=1 seek=0 conv=notrunc status=none
out=$(as_user srun -n 1 "$BIN" $N true 2>&1); rc=$?
assert_eq "a file that is not squashfs: 65" "65" "$rc"
assert_contains "... says so" "$out" "no squashfs magic"
cp "$work/good.sqfs" "$file"
out=$(as_user srun -n 1 "$BIN" $N cat /opt/sq-marker 2>&1)
assert_eq "the good file back: launches again" "from the top layer" "$out"

# ---------------------------------------------------------------- a user's squashfs file
cp -p "$file" "$work/user.sqfs"; chmod 0644 "$work/user.sqfs"
loops=$(losetup -a | wc -l)
out=$(as_user srun -n 1 "$BIN" "$work/user.sqfs" true 2>&1); rc=$?
assert_eq "a user-supplied squashfs file as the image: refused (65)" "65" "$rc"
out=$(as_user "$BIN" image import --user "$work/user.sqfs" mine 2>&1); rc=$?
assert_eq "... nor imported into the user's store (65)" "65" "$rc"
assert_eq "... and never loop-mounted" "$loops" "$(losetup -a | wc -l)"

# ---------------------------------------------------------------- layers again, bad value, rm
admin_conf_set store_format layers
as_user srun -n 1 -J sq-hold "$BIN" $N sleep 5 >/dev/null 2>&1 & hold=$!
for _ in $(seq 50); do pgrep -u "$U" -x sleep >/dev/null && break; sleep 0.1; done
assert_eq "store_format = layers: the same image from its layers, no loop device" "" "$(losetup -n -j "$file")"
scancel -u "$U" -n sq-hold; wait $hold 2>/dev/null
admin_conf_set store_format zfs
out=$(as_user srun -n 1 "$BIN" $N true 2>&1); rc=$?
assert_eq "store_format = zfs: 78" "78" "$rc"
assert_contains "... names the key" "$out" "store_format must be layers or squashfs"
admin_conf_set store_format squashfs
"$BIN" image rm $N >/dev/null 2>&1
assert_eq "image rm: its squashfs file goes too" "no" "$([[ -e $file ]] && echo yes || echo no)"

# Two imports at once (as two nodes of a shared store would): both succeed, the record names a
# complete file, gc leaves exactly the files records name.
"$BIN" image import "$work/sq.tar" $N:a >/dev/null 2>&1 & ia=$!
"$BIN" image import "$work/sq.tar" $N:b >/dev/null 2>&1 & ib=$!
wait $ia; ra=$?; wait $ib; rb=$?
assert_eq "two concurrent imports into the squashfs store: both exit 0" "0 0" "$ra $rb"
sha=$("$BIN" image inspect $N:a | python3 -c 'import json,sys; print(json.load(sys.stdin)["Squashfs"])')
assert_eq "... the record names a complete file" "$sha" "$(sha256sum "$STORE/squashfs/$sha.sqfs" 2>/dev/null | cut -c1-64)"
"$BIN" image gc >/dev/null 2>&1
unnamed=$(for f in "$STORE"/squashfs/*.sqfs; do b=$(basename "$f" .sqfs); grep -qs "\"$b\"" "$STORE"/images/*.json || echo "$b"; done)
assert_eq "... after image gc every squashfs file is one a record names" "" "$unnamed"
out=$(as_user srun -n 1 "$BIN" $N:b cat /opt/sq-marker 2>&1)
assert_eq "... and it launches" "from the top layer" "$out"
"$BIN" image rm $N:a >/dev/null 2>&1; "$BIN" image rm $N:b >/dev/null 2>&1

sleep 0.3
assert_eq "loop devices as before the test" "$loops_before" "$(losetup -a | wc -l)"
assert_eq "host mount table unchanged" "$mounts_before" "$(mount_snapshot)"
finish
