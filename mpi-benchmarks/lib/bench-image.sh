#!/usr/bin/env bash
# mpi-benchmarks/lib/bench-image.sh SMPI_BENCH -- prepare the benchmark image `bench` (run as root).
#
#   $SOCKER_IMAGE_DIR/bench-base.tar  mmdebstrap bookworm minbase + openmpi-bin, libopenmpi3, hpcc,
#                                     netpipe-openmpi (cached by package list)
#   $SOCKER_IMAGE_DIR/bench.tar       bench-base + /opt/socker/smpi-bench (the given binary, same
#                                     Debian Open MPI ABI) + marker /etc/socker-bench-image
#                                     (rebuilt when the base or the binary changes)
#   socker-mpi image `bench`          imported from bench.tar when bench.tar changed
#   $SOCKER_BENCH_ROOTFS              bench.tar unpacked, world-readable, for ch-run and crun
#                                     (default /var/cache/socker-mpi/bench-rootfs)
# Default SOCKER_IMAGE_DIR=/var/cache/socker-mpi/images. Prints KEY=VALUE lines on stdout (the
# last lines): tar, key, rootfs, image; progress goes to stderr. Idempotent: a second run with
# nothing changed takes about a second.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 SMPI_BENCH" >&2; exit 2; }
[[ $EUID -eq 0 ]] || { echo "bench-image: must run as root" >&2; exit 1; }
bench_bin=$(readlink -f "$1")
[[ -x $bench_bin ]] || { echo "bench-image: $1 is not an executable" >&2; exit 1; }
out=${SOCKER_IMAGE_DIR:-/var/cache/socker-mpi/images}
rootfs=${SOCKER_BENCH_ROOTFS:-/var/cache/socker-mpi/bench-rootfs}
bin=${SOCKER_BIN:-/usr/bin/socker-mpi}
suite=bookworm
pkgs=openmpi-bin,libopenmpi3,hpcc,netpipe-openmpi
say() { echo "bench-image: $*" >&2; }
mkdir -p "$out"
exec 9>"$out/.bench-image.lock"
flock 9   # two runners at once build once

base_key=$(echo "$suite $pkgs v1" | sha256sum | cut -c1-16)
if [[ ! -s $out/bench-base.tar || "$(cat "$out/bench-base.key" 2>/dev/null)" != "$base_key" ]]; then
  say "mmdebstrap $suite minbase + $pkgs (about a minute)"
  rm -f "$out/bench-base.tmp.tar"
  mmdebstrap --quiet --mode=root --variant=minbase --include="$pkgs" \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    "$suite" "$out/bench-base.tmp.tar" >&2
  mv -f "$out/bench-base.tmp.tar" "$out/bench-base.tar"
  echo "$base_key" >"$out/bench-base.key"
fi

key=$( (echo "$base_key"; sha256sum <"$bench_bin") | sha256sum | cut -c1-16)
if [[ ! -s $out/bench.tar || "$(cat "$out/bench.key" 2>/dev/null)" != "$key" ]]; then
  say "bench.tar = bench-base.tar + /opt/socker/smpi-bench"
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/opt/socker" "$stage/etc"
  install -m 0755 "$bench_bin" "$stage/opt/socker/smpi-bench"
  echo "socker-mpi benchmark image $key" >"$stage/etc/socker-bench-image"
  cp "$out/bench-base.tar" "$out/bench.tmp.tar"
  tar --append -f "$out/bench.tmp.tar" --owner=0 --group=0 -C "$stage" ./opt/socker ./etc/socker-bench-image
  mv -f "$out/bench.tmp.tar" "$out/bench.tar"
  echo "$key" >"$out/bench.key"
  rm -rf "$stage"
  trap - EXIT
fi

# socker-mpi image store: import when the tarball changed (or the image is gone).
image_id=$("$bin" image inspect bench 2>/dev/null | sed -n 's/^ *"Id": "\(.*\)",$/\1/p' | head -1 || true)
if [[ -z $image_id || "$(cat "$out/bench.imported" 2>/dev/null)" != "$key $image_id" ]]; then
  say "socker-mpi image import bench.tar bench"
  "$bin" image import "$out/bench.tar" bench >&2
  image_id=$("$bin" image inspect bench | sed -n 's/^ *"Id": "\(.*\)",$/\1/p' | head -1)
  echo "$key $image_id" >"$out/bench.imported"
fi

# Unpacked rootfs for ch-run (as the user: must be readable) and crun.
if [[ "$(cat "$rootfs/.key" 2>/dev/null)" != "$key" ]]; then
  say "unpacking bench.tar into $rootfs"
  rm -rf "$rootfs.tmp" "$rootfs"
  mkdir -p "$rootfs.tmp"
  tar -xf "$out/bench.tar" -C "$rootfs.tmp" --numeric-owner
  chmod 0755 "$rootfs.tmp"
  echo "$key" >"$rootfs.tmp/.key"
  mv "$rootfs.tmp" "$rootfs"
fi

echo "tar=$out/bench.tar"
echo "key=$key"
echo "rootfs=$rootfs"
echo "image=bench"
echo "image_id=$image_id"
