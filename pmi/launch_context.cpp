#include "pmi/launch_context.hpp"

#include <sstream>

#include "base/text.hpp"

namespace socker::pmi {

const char* to_string(Flavour f) {
    switch (f) {
        case Flavour::SlurmPmix:
            return "slurm+pmix";
        case Flavour::SlurmPmi2:
            return "slurm+pmi2";
        case Flavour::SlurmPlain:
            return "slurm";
        case Flavour::OpenMpiMpirun:
            return "mpirun";
        case Flavour::Singleton:
            return "singleton";
    }
    return "?";
}

std::vector<CgroupEntry> parse_proc_cgroup(const std::string& text) {
    std::vector<CgroupEntry> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        auto a = line.find(':');
        if (a == std::string::npos) continue;
        auto b = line.find(':', a + 1);
        if (b == std::string::npos) continue;
        out.push_back({line.substr(a + 1, b - a - 1), line.substr(b + 1)});
    }
    return out;
}

namespace {

// One cgroup path in Slurm's cgroup/v1 layout, anchored where Slurm puts it: at the root of
// the hierarchy (or below the admin's slurm_cgroup_prefix), exactly
// <prefix>/slurm[_<node>]/uid_U/job_J/step_S[/task_N]. A user may create cgroups inside their
// own step (they own its directories), so anything else below step_S is not Slurm's: reported
// as a problem, never taken for a step. Checked by hand: the equivalent std::regex took ~15% of
// a launch's CPU to compile.
struct PathStep {
    std::optional<SlurmStep> step;
    bool forged = false;
};
PathStep step_from_path(std::string_view path, std::string_view prefix) {
    std::vector<std::string_view> parts;  // components, without empty ones
    for (size_t start = 0; start <= path.size();) {
        size_t slash = path.find('/', start);
        if (slash == std::string_view::npos) slash = path.size();
        if (slash > start) parts.push_back(path.substr(start, slash - start));
        start = slash + 1;
    }
    size_t i = 0;
    for (size_t start = 0; start < prefix.size();) {  // the prefix, component by component
        size_t slash = prefix.find('/', start);
        if (slash == std::string_view::npos) slash = prefix.size();
        if (slash > start) {
            if (i >= parts.size() || parts[i] != prefix.substr(start, slash - start)) return {};
            ++i;
        }
        start = slash + 1;
    }
    if (i >= parts.size()) return {};
    std::string_view top = parts[i];
    std::string node;
    if (top.substr(0, 6) == "slurm_" && top.size() > 6)
        node = std::string(top.substr(6));
    else if (top != "slurm")
        return {};
    if (i + 3 >= parts.size()) return {};  // the job's or the user's cgroup: not a step
    const auto uid = number_after(parts[i + 1], "uid_");
    const auto job = number_after(parts[i + 2], "job_");
    std::string_view step = parts[i + 3];
    const bool step_ok =
        step.substr(0, 5) == "step_" && step.size() > 5 &&
        step.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789", 5) == std::string_view::npos;
    if (!uid || !job || !step_ok) return {};
    const size_t below = parts.size() - (i + 4);
    if (below > 1 || (below == 1 && !number_after(parts[i + 4], "task_"))) return {std::nullopt, true};
    return {SlurmStep{*uid, *job, std::string(step.substr(5)), node}, false};
}

}  // namespace

CgroupStep step_from_cgroups(const std::vector<CgroupEntry>& cgroups, const std::string& prefix) {
    // All controllers that carry a step path must agree; otherwise the membership is not
    // Slurm's doing.
    CgroupStep out;
    for (const auto& c : cgroups) {
        const PathStep parsed = step_from_path(c.path, prefix);
        if (parsed.forged) {
            out.step.reset();
            out.problem = "cgroup " + c.path + " (" + c.controllers +
                          ") is below a Slurm step's cgroup: only task_N there is Slurm's";
            return out;
        }
        if (!parsed.step) continue;
        const SlurmStep& s = *parsed.step;
        const auto& f = out.step;
        if (f && (f->uid != s.uid || f->job != s.job || f->step != s.step || f->node != s.node)) {
            out.step.reset();
            out.problem = "the controllers' cgroups name different Slurm steps";
            return out;
        }
        out.step = s;
    }
    return out;
}

std::optional<long> rank_hint(const EnvMap& env) {
    for (const char* k : {"PMIX_RANK", "PMI_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"})
        if (auto v = env_long(env, k)) return v;
    return std::nullopt;
}

namespace {

struct Probe {
    const char* name;
    // Returns a reason for rejection, or empty when the probe applies.
    std::string (*check)(const ProbeInput&);
    Flavour flavour;
};

bool has(const EnvMap& e, const char* k) { return e.count(k) != 0; }

std::string need_slurm_task(const ProbeInput& in) {
    for (const char* k : {"SLURM_STEP_ID", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"})
        if (!env_long(in.env, k)) return std::string(k) + " missing or not a number";
    return {};
}

std::string check_slurm_pmix(const ProbeInput& in) {
    if (auto r = need_slurm_task(in); !r.empty()) return r;
    auto ns = env_get(in.env, "PMIX_NAMESPACE");
    if (!ns) return "PMIX_NAMESPACE not set";
    if (ns->rfind("slurm.pmix.", 0) != 0) return "PMIX_NAMESPACE '" + *ns + "' is not Slurm's";
    if (!env_long(in.env, "PMIX_RANK")) return "PMIX_RANK missing";
    return {};
}

std::string check_slurm_pmi2(const ProbeInput& in) {
    if (auto r = need_slurm_task(in); !r.empty()) return r;
    if (!has(in.env, "PMI_FD")) return "PMI_FD not set";
    if (!env_long(in.env, "PMI_FD")) return "PMI_FD is not a number";
    if (!in.pmi_fd_is_socket) return "PMI_FD is not an open socket";
    return {};
}

std::string check_slurm_plain(const ProbeInput& in) { return need_slurm_task(in); }

std::string check_mpirun(const ProbeInput& in) {
    for (const char* k : {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
                          "OMPI_COMM_WORLD_LOCAL_SIZE"})
        if (!env_long(in.env, k)) return std::string(k) + " missing";
    return {};
}

std::string check_singleton(const ProbeInput&) { return {}; }

const Probe kProbes[] = {
    {"slurm+pmix", check_slurm_pmix, Flavour::SlurmPmix},
    {"slurm+pmi2", check_slurm_pmi2, Flavour::SlurmPmi2},
    {"slurm", check_slurm_plain, Flavour::SlurmPlain},
    {"mpirun", check_mpirun, Flavour::OpenMpiMpirun},
    {"singleton", check_singleton, Flavour::Singleton},
};

long get_or(const EnvMap& e, const char* k, long dflt) { return env_long(e, k).value_or(dflt); }

// SLURM_TASKS_PER_NODE is "2(x3),1": tasks on each node in node order. Used for local size when
// SLURM_NTASKS_PER_NODE is absent.
std::optional<long> tasks_on_node(const std::string& spec, long node) {
    std::istringstream in(spec);
    std::string item;
    long idx = 0;
    while (std::getline(in, item, ',')) {
        // "N" or "N(xR)", by hand (std::regex compiles slowly).
        const auto paren = item.find('(');
        const auto n = number_after(std::string_view(item).substr(0, paren), "");
        std::optional<long> rep = 1;
        if (paren != std::string::npos) {
            std::string_view r = std::string_view(item).substr(paren);
            rep = r.size() > 3 && r.back() == ')' ? number_after(r.substr(0, r.size() - 1), "(x")
                                                  : std::nullopt;
        }
        if (!n || !rep) return std::nullopt;
        if (node < idx + *rep) return *n;
        idx += *rep;
    }
    return std::nullopt;
}

}  // namespace

LaunchContext detect(const ProbeInput& in) {
    LaunchContext ctx;
    const auto& e = in.env;
    for (const auto& p : kProbes) {
        std::string why = p.check(in);
        if (!why.empty()) {
            ctx.trace.push_back(std::string("probe ") + p.name + ": rejected (" + why + ")");
            continue;
        }
        ctx.trace.push_back(std::string("probe ") + p.name + ": taken");
        ctx.flavour = p.flavour;
        break;
    }
    switch (ctx.flavour) {
        case Flavour::SlurmPmix:
        case Flavour::SlurmPmi2:
        case Flavour::SlurmPlain: {
            ctx.rank = get_or(e, "SLURM_PROCID", 0);
            ctx.size = get_or(e, "SLURM_NTASKS", 1);
            ctx.local_rank = get_or(e, "SLURM_LOCALID", 0);
            ctx.node_index = get_or(e, "SLURM_NODEID", 0);
            std::optional<long> ls;
            if (auto t = env_get(e, "SLURM_TASKS_PER_NODE")) ls = tasks_on_node(*t, ctx.node_index);
            ctx.local_size = ls.value_or(get_or(e, "SLURM_NTASKS_PER_NODE", ctx.size));
            if (ctx.flavour == Flavour::SlurmPmix) {
                ctx.pmix_namespace = *env_get(e, "PMIX_NAMESPACE");
                long pr = *env_long(e, "PMIX_RANK");
                if (pr != ctx.rank)
                    ctx.trace.push_back("note: PMIX_RANK " + std::to_string(pr) +
                                        " differs from SLURM_PROCID " + std::to_string(ctx.rank));
            }
            if (ctx.flavour == Flavour::SlurmPmi2) ctx.pmi_fd = env_long(e, "PMI_FD");
            break;
        }
        case Flavour::OpenMpiMpirun:
            ctx.rank = get_or(e, "OMPI_COMM_WORLD_RANK", 0);
            ctx.size = get_or(e, "OMPI_COMM_WORLD_SIZE", 1);
            ctx.local_rank = get_or(e, "OMPI_COMM_WORLD_LOCAL_RANK", 0);
            ctx.local_size = get_or(e, "OMPI_COMM_WORLD_LOCAL_SIZE", 1);
            ctx.node_index = get_or(e, "OMPI_COMM_WORLD_NODE_RANK", 0);
            ctx.pmix_namespace = env_get(e, "PMIX_NAMESPACE").value_or("");
            break;
        case Flavour::Singleton:
            break;
    }
    CgroupStep cs = step_from_cgroups(parse_proc_cgroup(in.proc_self_cgroup), in.cgroup_prefix);
    ctx.step = cs.step;
    ctx.cgroup_problem = cs.problem;
    if (!cs.problem.empty()) {
        ctx.trace.push_back("cgroup: refused: " + cs.problem);
    } else if (ctx.step) {
        ctx.trace.push_back("cgroup: uid " + std::to_string(ctx.step->uid) + " job " +
                            std::to_string(ctx.step->job) + " step " + ctx.step->step);
        auto ej = env_long(e, "SLURM_JOB_ID");
        if (ej && *ej != ctx.step->job)
            ctx.trace.push_back("note: SLURM_JOB_ID=" + std::to_string(*ej) +
                                " ignored: the process's cgroup says job " + std::to_string(ctx.step->job));
    } else {
        ctx.trace.push_back("cgroup: not inside a Slurm step");
    }
    return ctx;
}

}  // namespace socker::pmi
