// What users read: the --report-bindings line of a rank and the output of `socker-mpi plan`.
// Pure formatting; deterministic for a given input (golden-tested).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/env.hpp"
#include "topology/options.hpp"
#include "topology/placement.hpp"
#include "topology/topology.hpp"

namespace socker::topology {

// Open MPI's picture of a binding: one [...] per package, cores separated by '/', one character
// per PU of the core: 'B' when the PU is in `cpus`, '.' when not. "[BB/../../..][../../../..]"
// Only the PUs of the (restricted) topology are drawn.
std::string picture(const Topology& topo, const Bitmap& cpus);

// One --report-bindings line, without the "socker-mpi[rank N]: " prefix:
//   "rank 5 (local 1 of 4) on n1: cpus 2-3 numa 0 membind local [../BB/../..][../../../..]"
//   "rank 0 (local 0 of 1) on n1: not bound by socker-mpi, inherited cpus 0-1 numa 0 [B/B]"
std::string report_line(const Topology& topo, long rank, long local_rank, long local_size,
                        const std::string& node, const Placement& placement, const PlacementPolicy& policy);

// What `socker-mpi plan` was asked, besides the topology itself.
struct PlanOptions {
    int ranks = 1;
    std::optional<std::string> allowed;  // --cpuset: restrict to these CPUs (list string)
    std::string format = "table";        // table | json
    PlacementRequest placement;
};

// `socker-mpi plan` output. The topology is the one named by --topology (or this machine); the
// options' --cpuset restricts it, the placement is resolved with the same precedence as a launch
// (command line > environment > admin [node:GLOB] for `node` > default). `admin_note`, when
// not empty, is shown in the table (e.g. that no admin config exists on this machine).
// Table mode: settings with their sources, then one row per local rank and the planner's notes.
// JSON mode: [{"local_rank": 0, "cpus": "0-3", "numa": "0"}, ...] in local-rank order.
// Throws Error(Exit::Usage) when the policy cannot be met.
std::string render_placements(const PlanOptions& options, Topology topo, const EnvMap& env,
                              const std::vector<NodeDefaults>& sections, const std::string& node,
                              const std::string& admin_note);

std::string placements_json(const NodePlacement& plan);

}  // namespace socker::topology
