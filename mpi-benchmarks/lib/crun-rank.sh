#!/bin/sh
# crun-rank.sh STATE_DIR BUNDLE -- one rank under crun, the way a user (root: crun needs it here)
# wraps crun under srun: `srun -n N crun-rank.sh STATE BUNDLE`.
# - a private mount namespace hides the hugetlb-only cgroup2 at /sys/fs/cgroup/unified, which
#   makes crun 1.8 refuse this hybrid cgroup layout (see shared/STACK.md);
# - --cgroup-manager=disabled: the container stays in the step's cgroups;
# - a container id unique per rank and step.
exec unshare -m --propagation private sh -c '
  if mountpoint -q /sys/fs/cgroup/unified; then umount -l /sys/fs/cgroup/unified || exit 125; fi
  exec crun --root "$0" --cgroup-manager=disabled run -b "$1" \
    "smpi-${SLURM_JOB_ID:-0}.${SLURM_STEP_ID:-0}.${SLURM_PROCID:-$$}"' "$1" "$2"
