# shellcheck shell=bash
# Helpers for test_images.sh (sourced): the admin store path, the busybox base rootfs (built with
# mmdebstrap, cached), tree listings, overlay mounts made like the launcher's, crafted archives.

STORE=$(awk -F= '/^[[:space:]]*image_store[[:space:]]*=/ { gsub(/[[:space:]]/, "", $2); print $2 }' \
  /etc/socker-mpi/socker-mpi.conf 2>/dev/null)
STORE=${STORE:-/var/lib/socker-mpi/images}
IMAGE_CACHE=${SOCKER_IMAGE_DIR:-/var/cache/socker-mpi/images}

# base_rootfs: prints the path of a busybox rootfs tarball (mmdebstrap --variant=extract), built
# once and cached; it carries /usr/share/doc/busybox-static (replaced by the 2nd layer) and a
# setuid file (cleared on import).
base_rootfs() {
  local out=$IMAGE_CACHE/itest-busybox.rootfs.tar key="bookworm busybox-static itest v1"
  mkdir -p "$IMAGE_CACHE"
  if [[ ! -s $out || "$(cat "$out.key" 2>/dev/null)" != "$key" ]]; then
    mmdebstrap --quiet --mode=root --variant=extract --include=busybox-static \
      --extract-hook='mkdir -p "$1"/proc "$1"/sys "$1"/usr/bin "$1"/usr/sbin "$1"/sbin "$1"/root "$1"/mnt "$1"/opt "$1"/var/tmp "$1"/etc' \
      --extract-hook='chroot "$1" /bin/busybox --install -s' \
      --extract-hook='printf "root:x:0:0:root:/root:/bin/sh\n" > "$1"/etc/passwd; printf "root:x:0:\n" > "$1"/etc/group' \
      --extract-hook='echo "welcome" > "$1"/etc/motd; cp "$1"/bin/busybox "$1"/bin/suidtool; chmod 4755 "$1"/bin/suidtool' \
      bookworm "${out%.tar}.tmp.tar" >/dev/null 2>&1 || return 1
    mv -f "${out%.tar}.tmp.tar" "$out" && echo "$key" > "$out.key"
  fi
  echo "$out"
}

# write_listing_tool FILE: a python lister: one sorted line per entry (path, type, mode, uid:gid,
# size of files and symlinks, link target, mtime of non-directories); device nodes, FIFOs and
# sockets are counted on a last line instead. MASK_SUID=1 clears setuid/setgid in the mode.
write_listing_tool() {
  cat > "$1" <<'EOF'
import os, stat, sys
root = sys.argv[1]; mask = os.environ.get("MASK_SUID") == "1"
lines, specials = [], []
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        p = os.path.join(d, n); st = os.lstat(p); rel = "./" + os.path.relpath(p, root)
        m = st.st_mode
        if stat.S_ISCHR(m) or stat.S_ISBLK(m) or stat.S_ISFIFO(m) or stat.S_ISSOCK(m):
            specials.append(rel); continue
        t = "d" if stat.S_ISDIR(m) else "l" if stat.S_ISLNK(m) else "f"
        perm = stat.S_IMODE(m) & (~0o6000 if mask else 0o7777)
        size = "-" if t == "d" else str(st.st_size)
        target = os.readlink(p) if t == "l" else ""
        mtime = "-" if t == "d" else str(st.st_mtime_ns)
        lines.append(f"{rel} {t} {perm:04o} {st.st_uid}:{st.st_gid} {size} {mtime} {target}")
for l in sorted(lines): print(l)
print(f"# specials {len(specials)}")
EOF
}

# image_layer_dirs NAME: the image's layer directories, lowest first (from image inspect).
image_layer_dirs() {
  "$BIN" image inspect "$1" | python3 -c 'import json, sys; print("\n".join(l["Dir"] for l in json.load(sys.stdin)["Layers"]))'
}

# overlay_listing LISTER LAYERDIR...: stack the layers as the launcher does (lowest first, under
# a tmpfs upper, in a private mount namespace) and list the merged tree.
overlay_listing() {
  local lister=$1; shift
  local lower="" d
  for d in "$@"; do lower="$d${lower:+:$lower}"; done
  unshare -m --propagation private bash -c '
    t=$(mktemp -d) && mount -t tmpfs -o mode=0755 itest "$t" && mkdir "$t/u" "$t/w" "$t/m" &&
    mount -t overlay -o "lowerdir=$1,upperdir=$t/u,workdir=$t/w" itest "$t/m" &&
    python3 "$2" "$t/m"; rc=$?; umount -l "$t/m" "$t"; rmdir "$t"; exit $rc' _ "$lower" "$lister"
}

# gzip_docker_archive IN OUT: the same docker-archive with every layer gzip-compressed
# (manifest.json names the .tar.gz files; the config and its diff ids are unchanged).
gzip_docker_archive() {
  python3 - "$1" "$2" <<'EOF'
import gzip, io, json, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as o:
    man = json.load(t.extractfile("manifest.json"))
    layers = {l for e in man for l in e["Layers"]}
    real = {}
    for m in t.getmembers():
        if m.name in layers and m.issym():
            real[m.name] = m.name.rsplit("/", 1)[0] + "/" + m.linkname if "/" in m.name else m.linkname
    def norm(p):
        parts = []
        for c in p.split("/"):
            if c == "..": parts.pop()
            elif c not in ("", "."): parts.append(c)
        return "/".join(parts)
    mapping = {l: norm(real.get(l, l)) for l in layers}
    for e in man: e["Layers"] = [mapping[l] + ".gz" for l in e["Layers"]]
    for m in t.getmembers():
        if not m.isfile() or m.name == "manifest.json": continue
        data = t.extractfile(m).read()
        if m.name in mapping.values():
            data = gzip.compress(data, 6); m = tarfile.TarInfo(m.name + ".gz")
        m.size = len(data); o.addfile(m, io.BytesIO(data))
    data = json.dumps(man).encode(); m = tarfile.TarInfo("manifest.json"); m.size = len(data)
    o.addfile(m, io.BytesIO(data))
EOF
}

# corrupt_docker_layer IN OUT: flips one byte of file content inside the last layer of a
# docker-archive (the tar structure stays valid: only the digest can tell).
corrupt_docker_layer() {
  python3 - "$1" "$2" <<'EOF'
import json, os, shutil, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
shutil.copyfile(src, dst)
with tarfile.open(src) as t:
    man = json.load(t.extractfile("manifest.json"))
    name = man[0]["Layers"][-1]
    m = t.getmember(name)
    while m.issym():
        name = os.path.normpath(os.path.join(os.path.dirname(name), m.linkname))
        m = t.getmember(name)
    outer = m.offset_data
    inner_tar = tarfile.open(fileobj=t.extractfile(m))
    victim = next(x for x in inner_tar.getmembers() if x.isfile() and x.size > 0)
    off = outer + victim.offset_data
with open(dst, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0xFF]))
print(victim.name)
EOF
}

# make_malicious DIR OUTSIDE: one rootfs tarball per attack, named after it.
make_malicious() {
  python3 - "$1" "$2" <<'EOF'
import io, os, sys, tarfile
d, outside = sys.argv[1], sys.argv[2]
os.makedirs(d, exist_ok=True)
def tar(name, entries):
    with tarfile.open(os.path.join(d, name + ".tar"), "w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            data = e.pop("data", b"")
            ti = tarfile.TarInfo(e.pop("name"))
            for k, v in e.items(): setattr(ti, k, v)
            ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
            t.addfile(ti, io.BytesIO(data))
def f(name, data=b"x", mode=0o644, **kw): return dict(name=name, data=data, mode=mode, **kw)
def sym(name, target): return dict(name=name, type=tarfile.SYMTYPE, linkname=target, mode=0o777)
def hard(name, target): return dict(name=name, type=tarfile.LNKTYPE, linkname=target, mode=0o644)
tar("dotdot", [f("ok"), f("../../../../../../tmp/itest-dotdot-pwned")])
tar("absolute", [f("/tmp/itest-absolute-pwned")])
tar("symlink-write", [sym("lnk", outside), f("lnk/pwned")])
tar("symlink-dir-write", [sym("lnk", outside), dict(name="lnk/sub", type=tarfile.DIRTYPE, mode=0o755)])
tar("hardlink-dotdot", [hard("h", "../../../../../../etc/passwd")])
tar("hardlink-absolute", [hard("h", "/etc/passwd")])
tar("hardlink-via-symlink", [sym("lnk", "/etc"), hard("h", "lnk/passwd")])
tar("whiteout-via-symlink", [sym("lnk", outside), f("lnk/.wh.victim", b"")])
tar("opaque-via-symlink", [sym("lnk", outside), f("lnk/.wh..wh..opq", b"")])
tar("devices", [f("ok"), dict(name="dev/mem", type=tarfile.CHRTYPE, devmajor=1, devminor=1, mode=0o666),
                dict(name="dev/sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660),
                dict(name="fifo", type=tarfile.FIFOTYPE, mode=0o666)])
cap = dict(f("bin/capped", b"x", 0o755))
cap["pax_headers"] = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}
tar("setuid-caps", [f("bin/suid", b"x", 0o4755), f("bin/sgid", b"x", 0o2755), cap])
EOF
}
