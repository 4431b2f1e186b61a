// Where each binding setting comes from. Precedence, highest first (docs/binding.md):
//
//   1. the command line       --bind-to, --distribution, --membind, --cpus-per-rank
//   2. the environment        SOCKER_MPI_BIND, SOCKER_MPI_DISTRIBUTION, SOCKER_MPI_MEMBIND,
//                             SOCKER_MPI_CPUS_PER_RANK; for cpus_per_rank only, then
//                             SLURM_CPUS_PER_TASK (srun -c), which is the user's own request too
//   3. the admin config       [node:GLOB] sections whose glob matches the short node name; when
//                             several match, the last one that sets a key wins for that key
//   4. the built-in default   bind=none (leave Slurm's binding as it is), distribution=block,
//                             membind=none, cpus_per_rank = an even split of the allowed CPUs
//
// Each setting is resolved on its own: --bind=core with SOCKER_MPI_MEMBIND=local gives both.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/env.hpp"
#include "topology/options.hpp"

namespace socker::topology {

struct ResolvedPlacement {
    PlacementPolicy policy;
    // Per setting ("bind", "distribution", "membind", "cpus_per_rank"): where its value came
    // from, e.g. "command line", "SOCKER_MPI_BIND", "SLURM_CPUS_PER_TASK",
    // "admin config [node:gpu*]", "default".
    std::map<std::string, std::string> source;

    // "bind=core (command line), distribution=block (default), membind=none (default),
    // cpus_per_rank=even split (default)"
    std::string summary() const;
};

// Pure. `sections`: the admin's [node:GLOB] sections, in file order (their values were checked
// when the config was loaded). Throws Error(Exit::Usage) for a bad value in a SOCKER_MPI_*
// variable. A malformed SLURM_CPUS_PER_TASK is ignored (it is Slurm's, not a socker-mpi
// setting).
ResolvedPlacement resolve_placement(const PlacementRequest& cli, const EnvMap& env,
                                    const std::vector<NodeDefaults>& sections, const std::string& node);

// The OpenMP variables a rank should get (docs/binding.md): OMP_NUM_THREADS = cpus_per_rank
// when cpus_per_rank was given (any source but the even-split default) and the user's
// environment does not set OMP_NUM_THREADS already.
EnvMap openmp_env(const ResolvedPlacement& policy, const EnvMap& env);

}  // namespace socker::topology
