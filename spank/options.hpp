// The SPANK plugin's options (srun/sbatch --container-*), Pyxis's names and meanings where they
// exist, and how they become the launcher's RunRequest -- pure functions, no Slurm header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/env.hpp"
#include "src/request.hpp"

namespace socker::spank {

enum class Opt {
    Image,
    Mounts,
    Workdir,
    Env,
    MountHome,
    NoMountHome,
    Entrypoint,
    NoEntrypoint,
    BindPolicy,
    Mpi,
    DryRun
};

struct OptionInfo {
    Opt opt;
    const char* name;      // without the leading "--"
    const char* arg_info;  // nullptr: a flag
    const char* usage;
};
const std::vector<OptionInfo>& option_table();

// What the user gave, on the command line or in the environment.
struct ContainerOptions {
    std::optional<std::string> image, mounts, workdir, env, bind_policy, mpi;
    std::optional<bool> mount_home, entrypoint;
    std::optional<bool> dry_run;
    bool any_but_image() const;
};

// One option from the command line (idempotent: Slurm hands them to a task more than once).
void set_option(ContainerOptions& o, Opt opt, const char* value);

// The environment's value for an option the command line did not give: SOCKER_CONTAINER_<NAME>,
// else Pyxis's PYXIS_CONTAINER_<NAME> (NAME: the option's name upper-cased, '-' -> '_'; the
// --no- forms have none: PYXIS_CONTAINER_MOUNT_HOME=0). Flags take 1|0|yes|no|true|false.
// A malformed flag value is a usage error (64) naming the variable. Without an image on the
// command line or in the environment, nothing else is read (the task runs natively).
ContainerOptions with_environment(ContainerOptions cmdline, const EnvMap& env);
std::vector<std::string> environment_names(const OptionInfo& o);  // for the docs and --help

// On srun's/sbatch's command line, a --container-* option without --container-image is a
// usage error ("" = none): it would silently run the command natively.
std::string check_command_line(const ContainerOptions& cmdline);

// The launcher's request for this task: the image, --container-mounts as binds,
// --container-workdir, --container-env=NAME,... as -e NAME=<its value here> (unset names are
// skipped), home and entrypoint, the binding policy, --container-mpi (socker-mpi --mpi=),
// dry-run; argv: Slurm's command.
RunRequest to_request(const ContainerOptions& o, const std::vector<std::string>& argv, const EnvMap& env);

// Who this task is, from Slurm's items (the environment has none of it yet when the plugin runs
// as root): the launch context reads them as the launcher would read the task's environment.
struct TaskIds {
    uint32_t job = 0, step = 0, global = 0, local = 0, node = 0, total = 1;
};
EnvMap task_env(EnvMap job_env, const TaskIds& ids);

}  // namespace socker::spank
