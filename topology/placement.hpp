// Binding as a pure function (STYLE.md): (topology, allowed CPUs, local rank, local size, policy)
// -> (cpuset, NUMA nodeset). No system call here; the same input always gives the same output.
// The rules are written out in docs/binding.md; in short:
//
//  * Units. bind=hwthread places ranks on PUs, core on cores, and l3/numa/socket on L3 caches,
//    NUMA nodes or packages. Only the allowed part of each unit counts.
//  * Exclusive policies (hwthread, core): every rank gets whole units of its own, consecutive in
//    hwloc's logical order, never shared. With cpus_per_rank=N a rank gets the fewest whole
//    units holding N PUs; without it, an even split: units / ranks units each (the rest unused).
//    A rank's units stay inside one L3, NUMA node and package when the count allows it; only
//    when too few such groups exist may a rank span them (said in the notes).
//  * Domain policies (l3, numa, socket): every rank is bound to one whole domain, which ranks
//    share. With cpus_per_rank=N a domain holds allowed_PUs/N ranks; without it, block places
//    rank r in the domain of the (r * PUs / ranks)-th allowed PU, and cyclic fills each domain up
//    to one rank per PU.
//  * block: ranks take the slots in logical order. cyclic: round-robin over packages, then over
//    NUMA nodes inside a package, then L3 caches, then cores (Slurm's cyclic, applied at every
//    level) — consecutive ranks land as far apart as the tree allows.
//  * NUMA: a placement's nodeset is the NUMA nodes local to its CPUs (Topology::numa_of: per
//    CPU the covering node(s) of smallest locality, so never a machine-wide CXL node).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "topology/options.hpp"
#include "topology/topology.hpp"

namespace socker::topology {

struct Placement {
    Bitmap cpus;                     // OS indexes, always inside the allowed (or inherited) set
    Bitmap numa;                     // NUMA nodes local to `cpus`, OS indexes
    std::vector<std::string> trace;  // why, for -v
};

struct NodePlacement {
    std::vector<Placement> ranks;    // index = local rank
    std::vector<std::string> notes;  // node-wide remarks (unused CPUs, ranks spanning domains…)
};

// Every local rank of a node whose ranks may use `allowed` (a subset of the topology's CPUs,
// usually all of them after Topology::restrict_to). Throws Error(Exit::Usage) when the policy
// cannot be met: more ranks than units under an exclusive policy, more ranks than CPUs, an
// object type the topology lacks (bind=l3 without L3 caches), cpus_per_rank too large.
NodePlacement place_node(const Topology& topo, const Bitmap& allowed, long local_size,
                         const PlacementPolicy& p);
NodePlacement place_node(const Topology& topo, long local_size, const PlacementPolicy& p);  // allowed = all

// One rank, given the CPUs it inherited (its affinity when the launcher starts).
//  * inherited == all the topology's CPUs: the node-wide plan, entry local_rank.
//  * inherited is smaller (Slurm's task/affinity or mpirun bound the task already): when the
//    policy asks for no less than the inherited set, that binding is kept and the trace says
//    so; when it asks for less, the node-wide plan's entry is used if it lies inside the
//    inherited set, otherwise the inherited set is kept. A rank never leaves its inherited set.
Placement place_rank(const Topology& topo, const Bitmap& inherited, long local_rank, long local_size,
                     const PlacementPolicy& p);

}  // namespace socker::topology
