#include "binding_policy.hpp"

#include <fnmatch.h>

#include <charconv>

#include "error.hpp"
#include "spellcheck.hpp"

namespace socker::topology {

namespace {

constexpr int kMaxCpusPerRank = 65536;

std::string choices(const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : "|") + n;
    return s;
}

// Where a value came from, to word the error and pick its exit code.
struct Origin {
    std::string name;  // "SOCKER_MPI_BIND", "admin config [node:x]"
    bool admin = false;
};

[[noreturn]] void bad_value(const Origin& o, const std::string& key, const std::string& value,
                            const std::string& why, const std::vector<std::string>& names = {}) {
    std::string detail = why;
    if (!names.empty())
        if (auto s = spellcheck(value, names)) detail += ", did you mean '" + *s + "'?";
    if (o.admin) throw Error(Exit::Config, o.name, key + " = " + value, 0, detail);
    throw Error(Exit::Usage, o.name, value, 0, detail);
}

template <typename T>
T parse_enum(const Origin& o, const std::string& key, const std::string& v,
             std::optional<T> (*parse)(std::string_view), const std::vector<std::string>& names) {
    if (auto r = parse(v)) return *r;
    bad_value(o, key, v, "expected " + choices(names), names);
}

int parse_cpus(const Origin& o, const std::string& key, const std::string& v) {
    int out = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || out < 1 || out > kMaxCpusPerRank)
        bad_value(o, key, v, "expected a whole number of CPUs from 1 to " + std::to_string(kMaxCpusPerRank));
    return out;
}

}  // namespace

std::string ResolvedPolicy::summary() const {
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

ResolvedPolicy resolve_policy(const BindingOptions& cli, const EnvMap& env, const Policy& admin,
                              const std::string& node) {
    ResolvedPolicy out;
    for (const char* k : {"bind", "distribution", "membind", "cpus_per_rank"}) out.source[k] = "default";

    // 4 -> 1: each later layer overrides what it sets.
    // 3. Admin [node:GLOB] sections, in file order; every section is validated.
    for (const NodeBinding& nb : admin.node_bindings) {
        const Origin o{"admin config [node:" + nb.pattern + "]", true};
        const bool match = !node.empty() && ::fnmatch(nb.pattern.c_str(), node.c_str(), 0) == 0;
        for (const auto& [key, value] : nb.settings) {
            BindPolicy& p = out.policy;
            if (key == "bind") {
                auto v = parse_enum<BindKind>(o, key, value, parse_bind_kind, bind_kind_names());
                if (match) p.bind = v;
            } else if (key == "distribution") {
                auto v = parse_enum<Distribution>(o, key, value, parse_distribution, distribution_names());
                if (match) p.distribution = v;
            } else if (key == "membind") {
                auto v = parse_enum<MemBind>(o, key, value, parse_membind, membind_names());
                if (match) p.membind = v;
            } else if (key == "cpus_per_rank") {
                auto v = parse_cpus(o, key, value);
                if (match) p.cpus_per_rank = v;
            } else {
                throw Error(Exit::Config, o.name, key, 0, "unknown key");
            }
            if (match) out.source[key] = o.name;
        }
    }

    // 2. The environment.
    if (auto v = env_long(env, "SLURM_CPUS_PER_TASK"); v && *v >= 1 && *v <= kMaxCpusPerRank) {
        out.policy.cpus_per_rank = static_cast<int>(*v);
        out.source["cpus_per_rank"] = "SLURM_CPUS_PER_TASK";
    }
    auto from_env = [&](const char* var, const char* key, auto apply) {
        auto v = env_get(env, var);
        if (!v || v->empty()) return;  // exported but empty: as if unset
        apply(Origin{var, false}, key, *v);
        out.source[key] = var;
    };
    from_env("SOCKER_MPI_BIND", "bind", [&](const Origin& o, const std::string& k, const std::string& v) {
        out.policy.bind = parse_enum<BindKind>(o, k, v, parse_bind_kind, bind_kind_names());
    });
    from_env("SOCKER_MPI_DISTRIBUTION", "distribution",
             [&](const Origin& o, const std::string& k, const std::string& v) {
                 out.policy.distribution =
                     parse_enum<Distribution>(o, k, v, parse_distribution, distribution_names());
             });
    from_env("SOCKER_MPI_MEMBIND", "membind",
             [&](const Origin& o, const std::string& k, const std::string& v) {
                 out.policy.membind = parse_enum<MemBind>(o, k, v, parse_membind, membind_names());
             });
    from_env("SOCKER_MPI_CPUS_PER_RANK", "cpus_per_rank",
             [&](const Origin& o, const std::string& k, const std::string& v) {
                 out.policy.cpus_per_rank = parse_cpus(o, k, v);
             });

    // 1. The command line (already checked by the parser; checked again, cheaply).
    const std::string cl = "command line";
    if (cli.bind) {
        out.policy.bind =
            parse_enum<BindKind>({"--bind", false}, "bind", *cli.bind, parse_bind_kind, bind_kind_names());
        out.source["bind"] = cl;
    }
    if (cli.distribution) {
        out.policy.distribution =
            parse_enum<Distribution>({"--distribution", false}, "distribution", *cli.distribution,
                                     parse_distribution, distribution_names());
        out.source["distribution"] = cl;
    }
    if (cli.membind) {
        out.policy.membind = parse_enum<MemBind>({"--membind", false}, "membind", *cli.membind, parse_membind,
                                                 membind_names());
        out.source["membind"] = cl;
    }
    if (cli.cpus_per_rank) {
        out.policy.cpus_per_rank =
            parse_cpus({"--cpus-per-rank", false}, "cpus_per_rank", std::to_string(*cli.cpus_per_rank));
        out.source["cpus_per_rank"] = cl;
    }
    return out;
}

EnvMap openmp_env(const ResolvedPolicy& policy, const EnvMap& env) {
    EnvMap out;
    if (policy.policy.cpus_per_rank && !env.count("OMP_NUM_THREADS"))
        out["OMP_NUM_THREADS"] = std::to_string(*policy.policy.cpus_per_rank);
    return out;
}

}  // namespace socker::topology
