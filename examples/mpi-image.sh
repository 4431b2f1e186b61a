#!/usr/bin/env bash
# examples/mpi-image.sh -- build an MPI container image from Debian packages with mmdebstrap
# (no registry, no Dockerfile, no daemon) and import it into socker-mpi's image store.
#
#   examples/mpi-image.sh [options] NAME
#     --mpi openmpi|mpich  MPI inside the image (default openmpi: Debian 12's Open MPI 4.1.4, the
#                          same build as on the hosts, so `srun --mpi=pmix` works unchanged)
#     --packages P,Q       extra Debian packages, e.g. hpcc (HPL; needs --mpi openmpi)
#     --bench              compile the project's MPI programs (mpi-benchmarks/src) inside the
#                          image with the image's own mpicc, into /opt/bench/{smpi-bench,
#                          mpi-hello-ring}; the compiler is removed again afterwards
#     --suite S            Debian suite (default bookworm)
#     --out FILE           image tarball (default $SOCKER_IMAGE_DIR/NAME.tar,
#                          SOCKER_IMAGE_DIR=/var/cache/socker-mpi/images)
#     --no-import          only build the tarball
#     --force              rebuild even if the tarball for the same packages and sources exists
#                          (default: reuse it, re-import only if the image is not in the store)
#
# Examples (as root):
#   examples/mpi-image.sh --packages hpcc --bench mpi-hpcc      # Open MPI + HPL + benchmarks
#   examples/mpi-image.sh --mpi mpich --bench mpi-mpich         # MPICH 4.0 + benchmarks
#   srun --mpi=pmix -n 2 socker-mpi mpi-hpcc /opt/bench/smpi-bench latency --min 8 --max 8
#
# The image is a plain rootfs tarball (what `socker-mpi image import` takes); the same file also
# works with `podman import`. Building takes 30-90 s (a Debian mirror must be reachable).
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
repo=$(cd "$here/.." && pwd)
mpi=openmpi extra="" bench=0 suite=bookworm out="" import=1 force=0 name=""
usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-64}"; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --mpi) mpi=${2:?}; shift 2 ;;
    --packages) extra=${2:?}; shift 2 ;;
    --bench) bench=1; shift ;;
    --suite) suite=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --no-import) import=0; shift ;;
    --force) force=1; shift ;;
    -h|--help) usage 0 ;;
    -*) echo "mpi-image: unknown option '$1'" >&2; usage ;;
    *) [[ -z $name ]] || usage; name=$1; shift ;;
  esac
done
[[ -n $name ]] || usage
[[ $EUID -eq 0 ]] || { echo "mpi-image: run as root (mmdebstrap --mode=root, image import)" >&2; exit 77; }
case $mpi in
  openmpi) runtime=openmpi-bin,libopenmpi3; devel=libopenmpi-dev ;;
  mpich)   runtime=mpich,libmpich12;        devel=libmpich-dev ;;
  *) echo "mpi-image: --mpi wants openmpi or mpich, got '$mpi'" >&2; exit 64 ;;
esac
out=${out:-${SOCKER_IMAGE_DIR:-/var/cache/socker-mpi/images}/$name.tar}
mkdir -p "$(dirname "$out")"

pkgs=$runtime,procps${extra:+,$extra}
hooks=(--customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*')
if [[ $bench -eq 1 ]]; then
  # Build inside the image so the programs match its MPI ABI (Open MPI or MPICH), then remove
  # the compiler and headers; the runtime packages were installed explicitly and stay.
  pkgs+=,gcc,libc6-dev,$devel
  hooks=(
    --customize-hook="mkdir -p \"\$1/opt/bench/src\" && cp '$repo'/mpi-benchmarks/src/*.[ch] \"\$1/opt/bench/src/\""
    --customize-hook='chroot "$1" sh -ec "cd /opt/bench && mpicc -std=c17 -O2 -o smpi-bench src/smpi_bench.c -lm && mpicc -std=c17 -O2 -o mpi-hello-ring src/mpi_hello_ring.c"'
    --customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q --autoremove gcc libc6-dev $devel >/dev/null"
    "${hooks[@]}")
fi

bin=${SOCKER_BIN:-/usr/bin/socker-mpi}
# Cache key: suite, packages and (with --bench) the benchmark sources.
key=$( { echo "$suite $pkgs v1"; [[ $bench -eq 0 ]] || cat "$repo"/mpi-benchmarks/src/*.[ch]; } | sha256sum | cut -c1-16)
if [[ $force -eq 0 && -s $out && "$(cat "$out.key" 2>/dev/null)" == "$key" ]]; then
  echo "mpi-image: $out is up to date (--force rebuilds)"
  if [[ $import -eq 1 ]] && "$bin" image ls 2>/dev/null | awk '{print $1}' | grep -qx "$name"; then exit 0; fi
else
  echo "mpi-image: mmdebstrap $suite minbase + $pkgs -> $out"
  t0=$(date +%s)
  tmp=${out%.tar}.tmp.tar
  mmdebstrap --quiet --mode=root --format=tar --variant=minbase --include="$pkgs" "${hooks[@]}" "$suite" "$tmp"
  mv -f "$tmp" "$out"
  echo "$key" > "$out.key"
  echo "mpi-image: built $out ($(du -h --apparent-size "$out" | cut -f1)) in $(( $(date +%s) - t0 )) s"
fi
if [[ $import -eq 1 ]]; then
  "$bin" image import "$out" "$name"
fi
