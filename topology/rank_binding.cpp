#include "topology/rank_binding.hpp"

#include <hwloc.h>

#include <cerrno>

#include "base/error.hpp"
#include "topology/binding_report.hpp"

namespace socker::topology {

RankBinding bind_rank(const Topology& topo, const Bitmap& inherited, const ResolvedPlacement& policy,
                      const EnvMap& env, const std::string& hostname, long rank, long local_rank,
                      long local_size) {
    RankBinding out;
    out.source = policy.summary();
    out.env = openmp_env(policy, env);
    out.trace.push_back("binding policy: " + out.source);
    Placement pl = place_rank(topo, inherited, local_rank, local_size, policy.policy);
    for (auto& t : pl.trace) out.trace.push_back(std::move(t));
    out.report = report_line(topo, rank, local_rank, local_size, hostname, pl, policy.policy);
    const PlacementPolicy& p = policy.policy;
    if (p.bind != BindKind::None || p.membind != MemBind::None) {
        CpuBinding b;
        b.cpus = pl.cpus.list();
        b.membind = p.membind;
        if (p.membind != MemBind::None) {
            if (pl.numa.empty())
                throw Error(Exit::Usage, std::string("membind=") + to_string(p.membind), b.cpus, 0,
                            "these CPUs have no local NUMA node");
            b.mems = pl.numa.list();
        }
        std::string what = "cpus " + b.cpus;
        if (!b.mems.empty()) what += std::string(", memory ") + to_string(b.membind) + " on NUMA " + b.mems;
        out.trace.push_back(std::move(what));
        out.binding = std::move(b);
    }
    for (const auto& [k, v] : out.env) {
        std::string set = "sets " + k;
        set += "=" + v;
        out.trace.push_back(std::move(set));
    }
    return out;
}

Bitmap current_affinity(const Topology& this_machine) {
    Bitmap set;
    if (hwloc_get_cpubind(this_machine.raw(), set.raw(), HWLOC_CPUBIND_THREAD) < 0)
        throw Error(Exit::Io, "sched_getaffinity", "self", errno);
    return set;
}

RankBinding binding_for_rank(const PlacementRequest& cli, const EnvMap& env,
                             const std::vector<NodeDefaults>& sections, const std::string& hostname,
                             long rank, long local_rank, long local_size) {
    const ResolvedPlacement policy = resolve_placement(cli, env, sections, hostname);
    if (policy.policy.bind == BindKind::None && policy.policy.membind == MemBind::None && !cli.report) {
        RankBinding out;
        out.source = policy.summary();
        out.env = openmp_env(policy, env);
        out.trace.push_back("binding policy: " + out.source);
        out.trace.push_back("bind=none: the inherited binding is left as is");
        return out;
    }
    const Topology topo = Topology::this_machine();
    const Bitmap inherited = current_affinity(topo);
    return bind_rank(topo, inherited, policy, env, hostname, rank, local_rank, local_size);
}

}  // namespace socker::topology
