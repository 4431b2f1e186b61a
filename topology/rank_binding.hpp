// The launcher's entry into topology/: the CPU and memory binding of this rank.
//
//   resolve_policy (precedence, binding_policy.hpp)
//   -> this machine's topology (hwloc; restricted to the cgroup's CPUs by hwloc itself)
//   -> the inherited CPUs (this process's affinity: the one system call here)
//   -> place_rank (pure, placement.hpp)
//   -> launcher::CpuBinding, applied by the executor before exec.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "binding_policy.hpp"
#include "env.hpp"
#include "placement.hpp"
#include "policy.hpp"
#include "request.hpp"
#include "spec.hpp"
#include "topology.hpp"

namespace socker::topology {

struct RankBinding {
    // nullopt: leave CPU affinity and memory policy exactly as inherited (bind=none and
    // membind=none). Otherwise cpus is always set (possibly equal to the inherited set); mems is
    // "" when membind is none, else the NUMA nodes local to cpus.
    std::optional<launcher::CpuBinding> binding;
    std::vector<std::string> trace;  // for -v: where each setting came from, what was decided
    std::string source;              // ResolvedPolicy::summary()
    std::string report;              // the --report-bindings line (no prefix), always filled
                                     // when a topology was loaded, else ""
    EnvMap env;                      // to add to the container's environment (OMP_NUM_THREADS)
};

// Pure part, for tests: a topology and the inherited CPUs given as values.
RankBinding bind_rank(const Topology& topo, const Bitmap& inherited, const ResolvedPolicy& policy,
                      const EnvMap& env, const std::string& hostname, long rank, long local_rank,
                      long local_size);

// For the launcher. Loads this machine's topology and reads this thread's CPU affinity only when
// needed (bind or membind not none, or --report-bindings); otherwise does no system call.
// Throws Error(Exit::Usage) for an impossible policy, Error(Exit::Config) for a bad admin value.
RankBinding binding_for_rank(const BindingOptions& cli, const EnvMap& env, const Policy& admin,
                             const std::string& hostname, long rank, long local_rank, long local_size);

// The inherited CPUs of the calling thread (sched_getaffinity through hwloc).
Bitmap current_affinity(const Topology& this_machine);

}  // namespace socker::topology
