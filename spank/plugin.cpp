// spank_socker.so: the SPANK plugin's C boundary -- the only file that sees Slurm's header.
// srun/sbatch (local and allocator contexts) register and check the --container-* options;
// slurmstepd (remote context) runs the launcher's pipeline in each task (spank/task.hpp). No
// exception crosses into Slurm: every callback catches everything.
//   plugstack.conf:  required /usr/lib/x86_64-linux-gnu/slurm-wlm/spank_socker.so [config=PATH]
// spank.h declares the callbacks outside its extern "C" block (C++ linkage, for a C++
// includer); renamed while it is read, so that the definitions below can be extern "C".
#define slurm_spank_init spank_h_slurm_spank_init
#define slurm_spank_init_post_opt spank_h_slurm_spank_init_post_opt
#define slurm_spank_task_init_privileged spank_h_slurm_spank_task_init_privileged
#define slurm_spank_task_init spank_h_slurm_spank_task_init
#include <slurm/spank.h>
#undef slurm_spank_init
#undef slurm_spank_init_post_opt
#undef slurm_spank_task_init_privileged
#undef slurm_spank_task_init
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "config.h"
#include "spank/options.hpp"
#include "spank/task.hpp"

// What Slurm's plugin loader looks up (exported; everything else in the module is hidden).
#define SOCKER_EXPORT __attribute__((visibility("default")))
extern "C" {
SOCKER_EXPORT extern const char plugin_name[];
SOCKER_EXPORT extern const char plugin_type[];
SOCKER_EXPORT extern const unsigned int plugin_version;
SOCKER_EXPORT extern const unsigned int spank_plugin_version;
}
SPANK_PLUGIN(socker, 1)

namespace {

using socker::spank::ContainerOptions;

ContainerOptions g_cmdline;                        // the options given on the command line
std::string g_config = SOCKER_CONFIG_FILE;         // the admin config (plugin argument config=)
std::vector<struct spank_option> g_spank_options;  // Slurm keeps pointers into it

extern "C" int option_cb(int val, const char* optarg, int /*remote*/) {
    try {
        const auto& t = socker::spank::option_table();
        if (val < 0 || static_cast<size_t>(val) >= t.size()) return -1;
        socker::spank::set_option(g_cmdline, t[static_cast<size_t>(val)].opt, optarg);
        return 0;
    } catch (...) {
        return -1;
    }
}

bool parse_plugin_args(int ac, char** av) {
    for (int i = 0; i < ac; ++i) {
        const std::string a = av[i] ? av[i] : "";
        if (a.rfind("config=", 0) == 0 && a.size() > 7 && a[7] == '/') {
            g_config = a.substr(7);
        } else {
            slurm_error("socker-mpi: plugstack.conf: unknown plugin argument '%s' (known: config=/PATH)",
                        a.c_str());
            return false;
        }
    }
    return true;
}

socker::EnvMap env_of(char** env) {
    socker::EnvMap m;
    for (char** e = env; e && *e; ++e) {
        const char* eq = std::strchr(*e, '=');
        if (eq && eq != *e) m[std::string(*e, static_cast<size_t>(eq - *e))] = std::string(eq + 1);
    }
    return m;
}

socker::EnvMap job_env(spank_t sp) {
    char** env = nullptr;
    if (spank_get_item(sp, S_JOB_ENV, &env) != ESPANK_SUCCESS) return {};
    return env_of(env);
}

template <class T>
T item(spank_t sp, spank_item_t it) {
    T v{};
    if (spank_get_item(sp, it, &v) != ESPANK_SUCCESS)
        throw std::runtime_error("Slurm item " + std::to_string(static_cast<int>(it)) + " unavailable");
    return v;
}

// Slurm's special step ids (batch script, extern, interactive) are at the top of the range:
// those steps run natively (the batch script needs Slurm's commands, which an image lacks;
// its sruns get the container).
constexpr uint32_t kFirstSpecialStep = 0xfffffff0U;

[[noreturn]] void end_task(int code) {
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(code);
}

}  // namespace

extern "C" SOCKER_EXPORT int slurm_spank_init(spank_t sp, int ac, char** av) {
    try {
        if (!parse_plugin_args(ac, av)) return -1;
        const spank_context_t ctx = spank_context();
        if (ctx != S_CTX_LOCAL && ctx != S_CTX_ALLOCATOR && ctx != S_CTX_REMOTE) return 0;
        if (g_spank_options.empty()) {
            const auto& t = socker::spank::option_table();
            for (size_t i = 0; i < t.size(); ++i)
                g_spank_options.push_back({const_cast<char*>(t[i].name), const_cast<char*>(t[i].arg_info),
                                           const_cast<char*>(t[i].usage), t[i].arg_info ? 1 : 0,
                                           static_cast<int>(i), option_cb});
        }
        for (auto& o : g_spank_options)
            if (spank_option_register(sp, &o) != ESPANK_SUCCESS) {
                slurm_error("socker-mpi: cannot register --%s", o.name);
                return -1;
            }
        return 0;
    } catch (...) {
        return -1;
    }
}

// srun/sbatch/salloc: an option without an image is refused here, before anything is submitted.
extern "C" SOCKER_EXPORT int slurm_spank_init_post_opt(spank_t, int, char**) {
    try {
        const spank_context_t ctx = spank_context();
        if (ctx != S_CTX_LOCAL && ctx != S_CTX_ALLOCATOR) return 0;
        const std::string why = socker::spank::check_command_line(g_cmdline);
        if (why.empty()) return 0;
        slurm_error("socker-mpi: %s", why.c_str());
        return -1;
    } catch (...) {
        return -1;
    }
}

// Root, in the task, before slurmstepd drops it to the user. An error here must end the task
// with the launcher's exit code: a SPANK error from the node's other callbacks is reported to
// srun as success (measured), so the task exits here, its message on its stderr.
extern "C" SOCKER_EXPORT int slurm_spank_task_init_privileged(spank_t sp, int, char**) {
    try {
        socker::spank::TaskInput in;
        in.cmdline = g_cmdline;
        in.config = g_config;
        in.ids.job = item<uint32_t>(sp, S_JOB_ID);
        in.ids.step = item<uint32_t>(sp, S_JOB_STEPID);
        if (in.ids.step >= kFirstSpecialStep) return 0;
        in.ids.global = item<uint32_t>(sp, S_TASK_GLOBAL_ID);
        in.ids.local = static_cast<uint32_t>(item<int>(sp, S_TASK_ID));
        in.ids.node = item<uint32_t>(sp, S_JOB_NODEID);
        in.ids.total = item<uint32_t>(sp, S_JOB_TOTAL_TASK_COUNT);
        in.uid = item<uid_t>(sp, S_JOB_UID);
        in.gid = item<gid_t>(sp, S_JOB_GID);
        gid_t* gids = nullptr;
        int ngids = 0;
        if (spank_get_item(sp, S_JOB_SUPPLEMENTARY_GIDS, &gids, &ngids) == ESPANK_SUCCESS && gids)
            in.groups.assign(gids, gids + ngids);
        int argc = 0;
        char** argv = nullptr;
        if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) == ESPANK_SUCCESS)
            for (int i = 0; i < argc && argv && argv[i]; ++i) in.argv.emplace_back(argv[i]);
        in.job_env = job_env(sp);
        if (const auto code = socker::spank::task_privileged(in)) end_task(*code);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "socker-mpi: internal error: %s\n", e.what());
        end_task(70);
    } catch (...) {
        end_task(70);
    }
}

// As the user, just before slurmstepd execs the command: the container's environment replaces
// the task's (spank_setenv/unsetenv on the job environment slurmstepd passes to execve).
extern "C" SOCKER_EXPORT int slurm_spank_task_init(spank_t sp, int, char**) {
    try {
        if (!socker::spank::in_container()) return 0;
        const socker::EnvMap now = job_env(sp);
        socker::EnvMap env;
        if (const auto code = socker::spank::task_user(now, env)) end_task(*code);
        for (const auto& [k, v] : now)
            if (!env.count(k)) spank_unsetenv(sp, k.c_str());
        for (const auto& [k, v] : env)
            if (spank_setenv(sp, k.c_str(), v.c_str(), 1) != ESPANK_SUCCESS) {
                std::fprintf(stderr, "socker-mpi: cannot set %s in the task's environment\n", k.c_str());
                end_task(70);
            }
        return 0;
    } catch (...) {
        end_task(70);
    }
}
