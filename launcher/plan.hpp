// LaunchPlan -> ContainerSpec: the container of one launch, as a pure function. A LaunchPlan
// holds only decided values: the policy decisions were made by the app's validate() (which
// mounts the user may have, which PMIx directories, which devices, the environment after the
// admin's deny list); make_spec turns them into the mount list, the command, the environment
// and the working directory.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/env.hpp"
#include "image/record.hpp"
#include "launcher/spec.hpp"

namespace socker::launcher {

// A bind the user asked for (-v/--bind SRC[:DST[:ro]]), already allowed by the admin policy.
struct UserBind {
    std::string source, target;  // normalised absolute paths
    bool read_only = false;
};

// A PMIx/Open MPI directory to bind at the same path.
struct PmixBind {
    std::string dir;
    bool slurm_server_dir = false;  // Slurm's own (pmix.J.S): must be the user's; else checked
                                    // like a user bind source (under the allowed prefixes)
};

struct LaunchPlan {
    Identity id;
    std::vector<std::pair<gid_t, std::string>> group_names;  // the user's groups, primary first
    // The image.
    std::string image_ref;  // as the user gave it
    image::ImageRecord image;
    std::vector<std::string> layer_dirs;  // lowest first
    bool user_store = false;              // the image is in the user's own store
    std::string store_lock;               // node-local lock of its store
    std::string squashfs_file;            // its squashfs file ("" = launch from the layers)
    std::string squashfs_sha256;
    std::string squashfs_stamps;  // node-local: which squashfs files were verified
    std::string runtime_dir;      // staging mount point
    // The command and its environment.
    std::vector<std::string> command;  // the user's; empty: the image's Entrypoint/Cmd
    EnvMap env;                        // the user's, after the admin's deny list
    std::vector<std::pair<std::string, std::string>> env_set;  // -e KEY=VALUE, in order
    EnvMap binding_env;                                        // e.g. OMP_NUM_THREADS, unless the user set it
    std::optional<std::string> workdir;                        // -w
    std::string host_cwd;    // the rank's working directory ("" = none: deleted)
    bool bind_cwd = false;   // bind it (it is under an allowed prefix, elsewhere unseen)
    bool mount_home = true;  // bind the home directory
    bool entrypoint = true;  // the image's Entrypoint runs before a command given
    mode_t umask = 022;
    // Mounts.
    std::string proc_options;          // hidepid=, subset=, gid= of the host's /proc
    std::vector<std::string> devices;  // device nodes to pass (host paths)
    std::vector<PmixBind> pmix_dirs;
    std::string slurm_appdir;  // Slurm PMIx's <TmpFS>/spmix_appdir_U_J.S ("" = none)
    std::vector<UserBind> binds;
    std::vector<std::string> bind_allowed_prefixes;  // checked again where sources really are
    std::vector<std::string> denied_destinations;    // checked again where targets resolve
    // The rank.
    std::optional<CpuBinding> binding;
    std::optional<int> keep_fd;  // PMI_FD of a PMI2 launch
    // One container per node for the ranks of this step (validate(): the admin allows it and
    // the rank is in a Slurm step); none: this rank builds its own.
    std::optional<Share> share;
    // Host MPI injection (src/mpi.hpp): the section's name ("" = none), its mounts (after every
    // other one) and each library's decision.
    std::string mpi;
    std::vector<MountOp> mpi_mounts;
    std::vector<InjectedLibrary> mpi_libraries;
};

ContainerSpec make_spec(const LaunchPlan& plan);

// The container's environment: the plan's (the user's, less the admin's deny list); the image's
// Env on top for the image's own paths; PMIx module names mapped to PMIX_MCA_*; HOME/USER/
// LOGNAME for the user; -e KEY=VALUE last.
EnvMap container_env(const LaunchPlan& plan);

// The passwd/group files the container sees: root, the user, nobody.
std::string passwd_file(const Identity& id);
std::string group_file(const Identity& id, const std::vector<std::pair<gid_t, std::string>>& names);

extern const char* const kDefaultPath;

}  // namespace socker::launcher
