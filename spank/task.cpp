#include "spank/task.hpp"

#include <cstdio>
#include <iostream>
#include <memory>

#include "base/error.hpp"
#include "base/text.hpp"
#include "launcher/linux_sys.hpp"
#include "launcher/sys.hpp"
#include "src/host.hpp"
#include "src/launch.hpp"

namespace socker::spank {

namespace {

// What the root step leaves for the user step, in this task process (slurmstepd's child).
struct TaskState {
    RunRequest request;
    EnvMap env;
    std::unique_ptr<Launch> launch;
};
TaskState* g_task = nullptr;

mode_t umask_of(const EnvMap& env) {
    if (auto v = env_get(env, "SLURM_UMASK")) {
        char* end = nullptr;
        const unsigned long m = std::strtoul(v->c_str(), &end, 8);
        if (end && *end == '\0' && !v->empty() && m <= 0777) return static_cast<mode_t>(m);
    }
    return 022;
}

// The launcher's messages name its own options; the plugin's user gave --container-mounts.
std::string in_plugin_words(std::string msg) {
    for (size_t at; (at = msg.find("--bind ")) != std::string::npos;)
        msg.replace(at, 7, "--container-mounts ");
    return msg;
}

// The launcher's error report: one line with the rank's prefix, the documented exit code.
template <class F>
std::optional<int> reported(const std::string& prefix, F&& body) {
    try {
        return body();
    } catch (const Error& e) {
        std::fprintf(stderr, "%s%s\n", prefix.c_str(), in_plugin_words(e.what()).c_str());
        return static_cast<int>(e.code());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%sinternal error: %s\n", prefix.c_str(), e.what());
        return static_cast<int>(Exit::Internal);
    }
}

}  // namespace

bool in_container() { return g_task != nullptr && g_task->launch != nullptr; }

std::optional<int> task_privileged(const TaskInput& in) {
    const std::string prefix = "socker-mpi[rank " + std::to_string(in.ids.global) + "]: ";
    return reported(prefix, [&]() -> std::optional<int> {
        const ContainerOptions o = with_environment(in.cmdline, in.job_env);
        if (!o.image) return std::nullopt;  // no container asked for: the task runs natively
        auto st = std::make_unique<TaskState>();
        st->env = task_env(in.job_env, in.ids);
        st->request = to_request(o, in.argv, st->env);
        // Into the step's cgroups first (Slurm's proctrack puts the task there next anyway): the
        // launch then finds itself in its step, as a rank started by srun does.
        host::enter_step_cgroups(in.ids.job, std::to_string(in.ids.step));
        host::take_real_ids(in.uid, in.gid);
        LaunchInput li{
            st->request, st->env, prefix, umask_of(in.job_env), host::identity_of(in.uid, in.gid, in.groups),
            in.config};
        li.slurm_task = true;
        st->launch = std::make_unique<Launch>(li);
        Launch& launch = *st->launch;
        launch.prepare();
        if (st->request.dry_run) {  // printed by the user step: the task's stdout is not connected yet
            g_task = st.release();
            return std::nullopt;
        }
        launch.audit_launch();
        launcher::LinuxSys sys;
        launch.audited([&] { launcher::enter_for_task(launch.spec(), sys); });
        g_task = st.release();
        return std::nullopt;
    });
}

std::optional<int> task_user(const EnvMap& env_now, EnvMap& env) {
    if (!in_container()) return std::nullopt;
    const Launch& launch = *g_task->launch;
    return reported(launch.prefix(), [&]() -> std::optional<int> {
        const launcher::ContainerSpec& spec = launch.spec();
        if (g_task->request.dry_run) {
            std::cout << launcher::to_json(spec) << std::endl;
            return 0;
        }
        launcher::LinuxSys sys;
        launcher::check_task_identity(spec.id, sys);
        const TaskFinish fin = finish_in_task(launch, env_now);
        if (g_task->request.verbose)
            for (const auto& l : fin.trace)
                std::fprintf(stderr, "%s%s\n", launch.prefix().c_str(), l.c_str());
        if (g_task->request.placement.report && !fin.report.empty())
            std::fprintf(stderr, "%s%s\n", launch.prefix().c_str(), fin.report.c_str());
        if (fin.binding) sys.set_binding(*fin.binding);
        sys.chdir(spec.cwd);  // slurmstepd's own chdir (to srun's directory) came after ours
        sys.set_umask(spec.umask);
        env = fin.env;
        if (env.count("PWD")) env["PWD"] = spec.cwd;
        if (g_task->request.entrypoint && !launch.plan().image.config.entrypoint.empty())
            sys.exec(spec.argv, split_list(env["PATH"], ':'), env);  // Entrypoint + command
        return std::nullopt;
    });
}

}  // namespace socker::spank
