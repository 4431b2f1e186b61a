#include "topology/precedence.hpp"

#include <fnmatch.h>

#include "base/error.hpp"
#include "base/spellcheck.hpp"

namespace socker::topology {

namespace {

std::string choices(const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : "|") + n;
    return s;
}

// A bad value in a SOCKER_MPI_* variable: a usage error naming the variable, with a spelling.
template <typename T>
T from_env(const char* var, const std::string& v, std::optional<T> (*parse)(std::string_view),
           const std::vector<std::string>& names) {
    if (auto r = parse(v)) return *r;
    std::string detail = "expected " + choices(names);
    if (auto s = spellcheck(v, names)) detail += ", did you mean '" + *s + "'?";
    throw Error(Exit::Usage, var, v, 0, detail);
}

}  // namespace

std::string ResolvedPlacement::summary() const {
    auto src = [&](const char* k) {
        auto it = source.find(k);
        return it == source.end() ? std::string("default") : it->second;
    };
    return std::string("bind=") + to_string(policy.bind) + " (" + src("bind") +
           "), distribution=" + to_string(policy.distribution) + " (" + src("distribution") +
           "), membind=" + to_string(policy.membind) + " (" + src("membind") + "), cpus_per_rank=" +
           (policy.cpus_per_rank ? std::to_string(*policy.cpus_per_rank) : "even split") + " (" +
           src("cpus_per_rank") + ")";
}

ResolvedPlacement resolve_placement(const PlacementRequest& cli, const EnvMap& env,
                                    const std::vector<NodeDefaults>& sections, const std::string& node) {
    ResolvedPlacement out;
    for (const char* k : {"bind", "distribution", "membind", "cpus_per_rank"}) out.source[k] = "default";
    PlacementPolicy& p = out.policy;
    // 4 -> 1: each later layer overrides what it sets.
    // 3. Admin [node:GLOB] sections matching this node, in file order.
    for (const NodeDefaults& d : sections) {
        if (node.empty() || ::fnmatch(d.pattern.c_str(), node.c_str(), 0) != 0) continue;
        const std::string o = "admin config [node:" + d.pattern + "]";
        if (d.bind) p.bind = *d.bind, out.source["bind"] = o;
        if (d.distribution) p.distribution = *d.distribution, out.source["distribution"] = o;
        if (d.membind) p.membind = *d.membind, out.source["membind"] = o;
        if (d.cpus_per_rank) p.cpus_per_rank = *d.cpus_per_rank, out.source["cpus_per_rank"] = o;
    }
    // 2. The environment (exported but empty: as if unset).
    if (auto v = env_long(env, "SLURM_CPUS_PER_TASK"); v && *v >= 1 && *v <= kMaxCpusPerRank) {
        p.cpus_per_rank = static_cast<int>(*v);
        out.source["cpus_per_rank"] = "SLURM_CPUS_PER_TASK";
    }
    auto var = [&](const char* name) -> std::optional<std::string> {
        auto v = env_get(env, name);
        return v && !v->empty() ? v : std::nullopt;
    };
    if (auto v = var("SOCKER_MPI_BIND")) {
        p.bind = from_env<BindKind>("SOCKER_MPI_BIND", *v, parse_bind_kind, bind_kind_names());
        out.source["bind"] = "SOCKER_MPI_BIND";
    }
    if (auto v = var("SOCKER_MPI_DISTRIBUTION")) {
        p.distribution =
            from_env<Distribution>("SOCKER_MPI_DISTRIBUTION", *v, parse_distribution, distribution_names());
        out.source["distribution"] = "SOCKER_MPI_DISTRIBUTION";
    }
    if (auto v = var("SOCKER_MPI_MEMBIND")) {
        p.membind = from_env<MemBind>("SOCKER_MPI_MEMBIND", *v, parse_membind, membind_names());
        out.source["membind"] = "SOCKER_MPI_MEMBIND";
    }
    if (auto v = var("SOCKER_MPI_CPUS_PER_RANK")) {
        p.cpus_per_rank = parse_cpus_per_rank(*v);
        if (!p.cpus_per_rank)
            throw Error(Exit::Usage, "SOCKER_MPI_CPUS_PER_RANK", *v, 0,
                        "expected a whole number of CPUs from 1 to " + std::to_string(kMaxCpusPerRank));
        out.source["cpus_per_rank"] = "SOCKER_MPI_CPUS_PER_RANK";
    }
    // 1. The command line (typed already: the parser used this vocabulary).
    const std::string cl = "command line";
    if (cli.bind) p.bind = *cli.bind, out.source["bind"] = cl;
    if (cli.distribution) p.distribution = *cli.distribution, out.source["distribution"] = cl;
    if (cli.membind) p.membind = *cli.membind, out.source["membind"] = cl;
    if (cli.cpus_per_rank) p.cpus_per_rank = *cli.cpus_per_rank, out.source["cpus_per_rank"] = cl;
    return out;
}

EnvMap openmp_env(const ResolvedPlacement& policy, const EnvMap& env) {
    EnvMap out;
    if (policy.policy.cpus_per_rank && !env.count("OMP_NUM_THREADS"))
        out["OMP_NUM_THREADS"] = std::to_string(*policy.policy.cpus_per_rank);
    return out;
}

}  // namespace socker::topology
