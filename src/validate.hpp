// validate(): the user's request checked against the admin policy, in one pure function that
// holds every policy decision of a launch (docs: SECURITY.md). What comes out is decided: the
// image to look up, the binds allowed, the PMIx directories that may be bound, the devices, the
// environment after the admin's deny list. Refusals are Error(Refused, 77) naming what and why,
// usage errors Error(Usage, 64).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/env.hpp"
#include "image/name.hpp"
#include "launcher/plan.hpp"
#include "pmi/launch_context.hpp"
#include "src/host.hpp"
#include "src/images.hpp"
#include "src/policy.hpp"
#include "src/request.hpp"
#include "topology/options.hpp"
#include "topology/rank_binding.hpp"

namespace socker {

struct ValidatedRequest {
    std::string image;                     // as given
    std::optional<image::ImageName> name;  // a name; nullopt: an image file (path in `image`)
    std::vector<std::string> command;      // empty: the image's Entrypoint/Cmd
    std::optional<std::string> workdir;
    EnvMap env;                                                // the user's, less the admin's env_deny
    std::vector<std::pair<std::string, std::string>> env_set;  // -e KEY=VALUE
    std::vector<launcher::UserBind> binds;
    std::vector<launcher::PmixBind> pmix_dirs;
    std::string slurm_appdir;          // <TmpFS>/spmix_appdir_U_J.S ("" = not in a step)
    bool bind_cwd = false;             // the working directory is bound
    bool mount_home = true;            // the home directory is bound
    bool entrypoint = true;            // the image's Entrypoint runs before the command
    std::vector<std::string> devices;  // host paths
    std::vector<std::string> bind_allowed_prefixes;
    std::vector<std::string> denied_destinations;
    topology::PlacementRequest placement;
    std::optional<int> keep_fd;            // PMI_FD of a PMI2 launch
    std::optional<launcher::Share> share;  // one container per node for this step's ranks
};

// The user's environment less the admin's deny list (env_deny).
EnvMap allowed_env(const EnvMap& env, const Policy& pol);

ValidatedRequest validate(const RunRequest& r, const EnvMap& env, const pmi::LaunchContext& ctx,
                          const Policy& pol, const host::HostFacts& host);

// Where PMIx/Open MPI directories named in the environment may be: below /tmp (mpirun's
// session dir; /tmp is shared anyway), Slurm's own <SlurmdSpoolDir>/pmix.J.S of this very step
// (bound, must be the user's), or -- when the admin allows user binds -- under the allowed bind
// prefixes (bound as a user bind). Anything else is refused (77) naming the variable: a PMIX_*
// variable is no way around the bind policy.
struct PmixPlaces {
    std::string slurm_server_dir;  // <SlurmdSpoolDir>/pmix.J.S ("" = not in a Slurm step)
    bool user_binds = false;
    std::vector<std::string> bind_allowed_prefixes;
};
std::vector<launcher::PmixBind> pmix_binds(const EnvMap& env, const PmixPlaces& at);

// The launch plan: the validated request with the image found, the host's facts, this rank's
// binding, the caller's umask and the image store's node lock. Pure.
launcher::LaunchPlan plan_launch(const ValidatedRequest& v, const ResolvedImage& img,
                                 const host::HostFacts& host, const topology::RankBinding& rb,
                                 const Policy& pol, mode_t umask, const std::string& store_lock);

}  // namespace socker
