// The plugin's two steps in a task of the step, on the launcher's pipeline (src/launch.hpp):
// as root, before slurmstepd drops the task to the user (task_init_privileged), and as the
// user, just before slurmstepd execs the command (task_init). No Slurm header: plugin.cpp
// hands in what Slurm's items say.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/env.hpp"
#include "spank/options.hpp"

namespace socker::spank {

struct TaskInput {
    ContainerOptions cmdline;       // from srun's/sbatch's command line
    std::vector<std::string> argv;  // the task's command, as Slurm will exec it
    EnvMap job_env;                 // the step's environment (no per-task variables yet)
    TaskIds ids;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
    std::string config;  // the admin config (plugin argument config=)
};

// Root, in the task. nullopt: carry on (natively when no image was asked for; else this process
// is in its container now, its bounding set empty, no_new_privs set). A value: the task must
// exit with it now (its one-line message written to stderr). --container-dry-run builds
// nothing here: task_user prints the spec (stdout is connected only by then) and exits 0.
std::optional<int> task_privileged(const TaskInput& in);

// As the user, after slurmstepd's drop: that drop checked (70 if anything of root remains),
// the binding applied, and the container's environment computed from the task's environment
// as Slurm finished it. nullopt: carry on with `env` as the task's environment (slurmstepd execs
// the command); a value: exit with it. With --container-entrypoint (and an image Entrypoint)
// this execs Entrypoint + command itself and returns only on failure.
std::optional<int> task_user(const EnvMap& env_now, EnvMap& env);

// Whether task_privileged set up a container for this task.
bool in_container();

}  // namespace socker::spank
