// socker-mpi [run] IMAGE [CMD...]: the launch. The pipeline to the spec (launch.hpp: detect ->
// validate -> find the image -> bind -> plan -> make_spec, audited there), then --dry-run's
// spec, or the launch record and execute() -- or, in engine mode (docs/docker.md), the same spec
// run as a container of the node's Docker engine (launcher/engine_run.hpp).
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <iostream>
#include <optional>

#include "base/error.hpp"
#include "base/file.hpp"
#include "config.h"
#include "launcher/engine_run.hpp"
#include "launcher/linux_sys.hpp"
#include "src/commands.hpp"
#include "src/host.hpp"
#include "src/launch.hpp"
#include "src/stores.hpp"

namespace socker {

namespace {

std::vector<launcher::engine::Limit> own_limits() {
    std::vector<launcher::engine::Limit> out;
    for (auto [name, res] : std::vector<std::pair<const char*, int>>{{"nofile", RLIMIT_NOFILE},
                                                                     {"memlock", RLIMIT_MEMLOCK},
                                                                     {"stack", RLIMIT_STACK},
                                                                     {"core", RLIMIT_CORE}}) {
        rlimit rl{};
        if (::getrlimit(res, &rl) != 0) continue;
        auto v = [](rlim_t x) { return x == RLIM_INFINITY ? -1LL : static_cast<long long>(x); };
        out.push_back({name, v(rl.rlim_cur), v(rl.rlim_max)});
    }
    return out;
}

// The CPUs this rank may run on (Slurm's binding, inherited), as a list: "0-3,8".
std::string own_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return {};
    std::string out;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &set)) continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set)) ++e;
        out += (out.empty() ? "" : ",") + std::to_string(c) + (e > c ? "-" + std::to_string(e) : "");
        c = e;
    }
    return out;
}

int run_in_engine(Launch& launch, const RunRequest& r, std::optional<launcher::engine::Connections>& conns,
                  const std::string& cgroup_parent, const Invocation& inv) {
    namespace engine = launcher::engine;
    const launcher::ContainerSpec& spec = launch.spec();
    const pmi::LaunchContext& ctx = launch.context();
    engine::EngineOptions o;
    o.image = launch.validated().image;
    o.reaper_source = SOCKER_REAPER_PROGRAM;
    o.cgroup_parent = cgroup_parent;
    o.launcher_pid = ::getpid();
    o.launcher_start = engine::own_start_time();
    std::string job_step;
    if (ctx.step) job_step = std::to_string(ctx.step->job) + "." + ctx.step->step;
    o.name = engine::container_name(job_step, ctx.rank, o.launcher_pid);
    o.labels = {{"socker-mpi.user", spec.id.name},
                {"socker-mpi.uid", std::to_string(spec.id.uid)},
                {"socker-mpi.rank", std::to_string(ctx.rank)}};
    if (ctx.step) {
        o.labels.emplace_back("socker-mpi.job", std::to_string(ctx.step->job));
        o.labels.emplace_back("socker-mpi.step", ctx.step->step);
    }
    o.limits = own_limits();
    o.cpus = own_cpus();
    const engine::EnginePlan plan = engine::engine_plan(spec);
    if (r.verbose)
        std::cerr << inv.prefix << "engine: docker at " << launch.policy().docker_socket << ", container "
                  << o.name << ", image " << o.image << ", cgroup parent "
                  << (o.cgroup_parent.empty() ? "(the engine's)" : o.cgroup_parent) << ", cpus "
                  << (spec.binding ? spec.binding->cpus : o.cpus) << "\n";
    if (r.dry_run) {
        std::cout << engine::create_body(spec, plan, o) << "\n";
        return 0;
    }
    launch.audit_launch();
    int status = 0;
    launch.audited([&] { status = engine::run(spec, plan, o, *conns, inv.prefix); });
    return status;
}

}  // namespace

int run_command(const RunRequest& r, const Invocation& inv) {
    const launcher::Identity id = host::current_identity();
    Launch launch({r, inv.env, inv.prefix, inv.umask, id, SOCKER_CONFIG_FILE});
    // Engine mode: the API socket is root's; three connections are made as root, then the
    // launcher drops to the user for good before it reads anything the engine says.
    std::optional<launcher::engine::Connections> conns;
    std::string cgroup_parent;
    launch.prepare([&](const Launch& l, const ValidatedRequest& v) {
        // This user's empty cgroups an earlier container's parent left in the hierarchies Slurm
        // does not use (the engine makes the step's path in every one): removed, as root.
        const std::string cg = read_file("/proc/self/cgroup");
        const std::string prefix = l.policy().slurm_cgroup_prefix;
        cgroup_parent = host::step_cgroup_parent(cg, prefix);  // the container's, too
        host::sweep_empty_cgroups(host::engine_cgroup_leftovers(
            cg, read_file("/proc/self/mountinfo", 4u << 20), prefix, cgroup_parent));
        conns = launcher::engine::connect(l.policy().docker_socket);
        if (::geteuid() == 0) become_user(id);
        ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        return ResolvedImage{launcher::engine::inspect(conns->control, v.image), "", false};
    });
    if (launch.engine() != "inplace") return run_in_engine(launch, r, conns, cgroup_parent, inv);
    if (r.dry_run) {
        std::cout << launcher::to_json(launch.spec()) << "\n";
        return 0;
    }
    launch.audit_launch();
    launcher::LinuxSys sys;
    launch.audited([&] { launcher::execute(launch.spec(), sys); });
    throw Error(Exit::Internal, "exec", launch.spec().argv.at(0), 0, "returned");  // execute never returns
}

}  // namespace socker
