#!/usr/bin/env bash
# The Debian package (issue 18): what it holds and with which modes, its control data (conffile,
# Depends from the shared libraries, maintainer scripts), lintian, the man pages and completion
# as installed, and the admin's upgrade path: an older version installed, the new one over it,
# an edited config kept; `dpkg -r` leaves no setuid file and no mount, even with a container
# running. Ends with the package of this build installed again, as scripts/setup left it.
# Usage: test_package.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
build=${1:?usage: test_package.sh BUILD_DIR}
deb=$(ls "$build"/socker-mpi_*_amd64.deb 2>/dev/null | head -1)
[[ -f $deb ]] || { echo "FAIL - $T: no package in $build (scripts/setup builds it)"; exit 1; }
version=$(dpkg-deb -f "$deb" Version)
work=$(mktemp -d /tmp/socker-package.XXXXXX)
conf=/etc/socker-mpi/socker-mpi.conf
cp -p "$conf" "$work/conf.saved"
reinstall() { dpkg -i --force-confold "$deb" >/dev/null 2>&1; cp -p "$work/conf.saved" "$conf"; }
installed_version() { dpkg-query -W -f='${Version}' socker-mpi 2>/dev/null; }
cleanup() {
  kill "${holder:-0}" 2>/dev/null
  [[ "$(installed_version)" == "$version" && -u $BIN ]] || reinstall
  cp -p "$work/conf.saved" "$conf"; rm -rf "$work"
}
trap cleanup EXIT

# 1. Contents: the launcher setuid root, the tools root's and not setuid, man pages, completion,
#    the config, docs; nothing else setuid; nothing in /usr/local.
listing=$(dpkg-deb -c "$deb")
assert_eq "1 file name" "socker-mpi_${version}_amd64.deb" "$(basename "$deb")"
assert_contains "1 the launcher: -rwsr-xr-x root/root" "$(grep ' ./usr/bin/socker-mpi$' <<<"$listing")" "-rwsr-xr-x root/root"
assert_contains "1 the tools: -rwxr-xr-x root/root" "$(grep 'socker-mpi-tools$' <<<"$listing")" "-rwxr-xr-x root/root"
assert_contains "1 ... at /usr/libexec/socker-mpi/socker-mpi-tools" "$listing" "./usr/libexec/socker-mpi/socker-mpi-tools"
assert_eq "1 one setuid file only" "1" "$(grep -c '^-rws' <<<"$listing")"
assert_contains "1 engine mode's reaper: root's, 0755, not setuid" "$(grep ' ./usr/libexec/socker-mpi/socker-mpi-reaper$' <<<"$listing")" "-rwxr-xr-x root/root"
assert_contains "1 socker: a link to the launcher" "$(grep ' ./usr/bin/socker ' <<<"$listing")" "./usr/bin/socker -> socker-mpi"
assert_contains "1 the SPANK plugin: -rw-r--r-- root/root in Slurm's plugin directory" \
  "$(grep ' ./usr/lib/x86_64-linux-gnu/slurm-wlm/spank_socker.so$' <<<"$listing")" "-rw-r--r-- root/root"
for f in ./etc/socker-mpi/socker-mpi.conf ./usr/share/man/man1/socker-mpi.1.gz ./usr/share/man/man5/socker-mpi.conf.5.gz \
         ./usr/share/bash-completion/completions/socker-mpi ./usr/share/doc/socker-mpi/copyright \
         ./usr/share/doc/socker-mpi/changelog.gz ./usr/share/doc/socker-mpi/SECURITY.md ./usr/share/doc/socker-mpi/examples/osu.sbatch; do
  assert_contains "1 holds $f" "$listing" " $f"
done
assert_not_contains "1 nothing in /usr/local" "$listing" "./usr/local"
assert_eq "1 every file root/root" "" "$(awk '$2 != "root/root"' <<<"$listing")"

# 2. Control data: the config is a conffile; Depends computed (glibc at least); scripts.
assert_eq "2 conffiles" "/etc/socker-mpi/socker-mpi.conf" "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)"
depends=$(dpkg-deb -f "$deb" Depends)
assert_contains "2 Depends from the shared libraries (dpkg-shlibdeps)" "$depends" "libc6 (>="
assert_contains "2 ... libudev (hwloc's, left shared)" "$depends" "libudev1"
assert_contains "2 postinst and postrm" "$(dpkg-deb -I "$deb")" "postinst"

# 3. lintian: no error, no warning; the two overrides (the setuid launcher and the static
#    reaper, by design) are justified in packaging/lintian-overrides.
lint=$(lintian --tag-display-limit 0 --show-overrides "$deb" 2>&1 | grep -v -e '^running with root privileges' -e 'A future release')
assert_eq "3 lintian: no error" "" "$(grep '^E:' <<<"$lint")"
assert_eq "3 lintian: no warning" "" "$(grep '^W:' <<<"$lint")"
assert_eq "3 lintian: two overrides, the setuid launcher and the static reaper" \
  "O: socker-mpi: elevated-privileges 4755 root/root [usr/bin/socker-mpi]
O: socker-mpi: statically-linked-binary [usr/libexec/socker-mpi/socker-mpi-reaper]" "$(grep '^O:' <<<"$lint" | sort)"
grep -q '^[EW]:' <<<"$lint" && printf '    | %s\n' "$lint"

# 4. As installed: status, the setuid launcher, man pages, completion.
assert_eq "4 installed" "install ok installed $version" "$(dpkg-query -W -f='${Status} ${Version}' socker-mpi)"
assert_eq "4 /usr/bin/socker-mpi 4755 root" "4755 root root" "$(stat -c '%a %U %G' /usr/bin/socker-mpi)"
assert_contains "4 man socker-mpi: the examples" "$(MANPAGER=cat MANWIDTH=100 man socker-mpi 2>&1)" "srun -n 64 socker-mpi demo ./solver"
assert_contains "4 ... every option, from --help" "$(MANPAGER=cat MANWIDTH=100 man socker-mpi 2>&1)" "--bind-to"
assert_contains "4 man socker-mpi.conf: the keys" "$(MANPAGER=cat MANWIDTH=100 man 5 socker-mpi.conf 2>&1)" "share_containers = yes"
complete_words() {  # complete_words WORD...: what bash completion offers for the last word, as the user
  as_user bash -c 'source /usr/share/bash-completion/bash_completion; source /usr/share/bash-completion/completions/socker-mpi
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _socker_mpi; echo "${COMPREPLY[*]}"' _ "$@"; }
assert_eq "4 completion: subcommands of image" "import ls rm inspect gc" "$(complete_words socker-mpi image '')"
assert_contains "4 completion: image names from image ls" " $(complete_words socker-mpi image rm de) " " $IMG "
assert_contains "4 completion: subcommands and images first" "$(complete_words socker-mpi d)" "doctor"
assert_eq "4 completion: --bind-to values" "core" "$(complete_words socker-mpi --bind-to co)"

# 5. Removal with a container running: no setuid file and no mount stay behind on the host.
before=$(mount_snapshot)
as_user srun -n 1 -J pkg-holder "$BIN" "$IMG" /bin/sleep 60 >/dev/null 2>&1 & holder=$!
for _ in $(seq 50); do pgrep -u "$U" -x sleep >/dev/null && break; sleep 0.2; done
dpkg -r socker-mpi >/dev/null 2>&1; rc=$?
assert_eq "5 dpkg -r socker-mpi" 0 "$rc"
assert_eq "5 no file of the package left in /usr" "" "$(find /usr \( -path '*socker-mpi*' -o -name 'spank_socker*' \) -not -path '/usr/local/libexec/socker-mpi-test*' 2>/dev/null)"
# (the build tree included: CPack's staging copy of the setuid launcher is removed after packaging)
assert_eq "5 no setuid socker-mpi file anywhere on the root filesystem" "" "$(find / -xdev -perm -4000 -name 'socker-mpi*' 2>/dev/null)"
assert_eq "5 the running container's mounts are not on the host" "$before" "$(mount_snapshot)"
assert_eq "5 the config stays (a conffile, until purge)" "yes" "$([[ -f $conf ]] && echo yes)"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; scancel -n pkg-holder -u "$U" 2>/dev/null
for _ in $(seq 50); do pgrep -u "$U" -x sleep >/dev/null || break; sleep 0.2; done
assert_eq "5 after the container ended: no mount" "$before" "$(mount_snapshot)"

# 6. Upgrade: an older version (this package relabelled 0.0.1), the admin edits the config, the
#    new version over it: the edit is kept, the launcher is the new one, still setuid.
dpkg-deb -R "$deb" "$work/old"
sed -i 's/^Version: .*/Version: 0.0.1/' "$work/old/DEBIAN/control"
dpkg-deb --root-owner-group -b "$work/old" "$work/socker-mpi_0.0.1_amd64.deb" >/dev/null
dpkg -i "$work/socker-mpi_0.0.1_amd64.deb" >/dev/null 2>&1
assert_eq "6 the old version installed" "0.0.1" "$(dpkg-query -W -f='${Version}' socker-mpi)"
echo "# edited by the admin (test_package)" >> "$conf"
out=$(dpkg -i "$deb" 2>&1 </dev/null); rc=$?
assert_eq "6 the new version over it, no question asked" 0 "$rc"
assert_eq "6 ... version" "$version" "$(dpkg-query -W -f='${Version}' socker-mpi)"
assert_eq "6 ... the edited config kept" "# edited by the admin (test_package)" "$(tail -1 "$conf")"
assert_eq "6 ... the launcher setuid root" "4755 root" "$(stat -c '%a %U' /usr/bin/socker-mpi)"
cp -p "$work/conf.saved" "$conf"
out=$(as_user srun -n 1 "$BIN" "$IMG" /bin/sh -c 'id -u' 2>&1)
assert_eq "6 ... and launches, as the user" "$UID_U" "$out"
finish
