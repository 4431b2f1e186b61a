// The launcher's entry into topology/: the CPU and memory binding of this rank.
//
//   resolve_placement (precedence.hpp)
//   -> this machine's topology (hwloc; restricted to the cgroup's CPUs by hwloc itself)
//   -> the inherited CPUs (this process's affinity: the one system call here)
//   -> place_rank (pure, placement.hpp)
//   -> CpuBinding (options.hpp), applied by the launcher before exec.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/env.hpp"
#include "topology/options.hpp"
#include "topology/placement.hpp"
#include "topology/precedence.hpp"
#include "topology/topology.hpp"

namespace socker::topology {

struct RankBinding {
    // nullopt: leave CPU affinity and memory policy exactly as inherited (bind=none and
    // membind=none). Otherwise cpus is always set (possibly equal to the inherited set); mems is
    // "" when membind is none, else the NUMA nodes local to cpus.
    std::optional<CpuBinding> binding;
    std::vector<std::string> trace;  // for -v: where each setting came from, what was decided
    std::string source;              // ResolvedPlacement::summary()
    std::string report;              // the --report-bindings line (no prefix), always filled
                                     // when a topology was loaded, else ""
    EnvMap env;                      // to add to the container's environment (OMP_NUM_THREADS)
};

// Pure part, for tests: a topology and the inherited CPUs given as values.
RankBinding bind_rank(const Topology& topo, const Bitmap& inherited, const ResolvedPlacement& policy,
                      const EnvMap& env, const std::string& hostname, long rank, long local_rank,
                      long local_size);

// For the launcher. Loads this machine's topology and reads this thread's CPU affinity only when
// needed (bind or membind not none, or --report-bindings); otherwise does no system call.
// Throws Error(Exit::Usage) for an impossible policy.
RankBinding binding_for_rank(const PlacementRequest& cli, const EnvMap& env,
                             const std::vector<NodeDefaults>& sections, const std::string& hostname,
                             long rank, long local_rank, long local_size);

// The inherited CPUs of the calling thread (sched_getaffinity through hwloc).
Bitmap current_affinity(const Topology& this_machine);

}  // namespace socker::topology
