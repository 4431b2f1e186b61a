// LaunchPlan -> ContainerSpec: every decision about one launch, as a pure function.
#pragma once

#include <string>
#include <vector>

#include "image_store.hpp"
#include "launch_context.hpp"
#include "policy.hpp"
#include "request.hpp"
#include "spec.hpp"

namespace socker::launcher {

struct PlanInput {
    RunRequest request;
    pmi::LaunchContext ctx;
    Policy policy;
    Identity id;
    image::ImageRecord image;
    std::vector<std::string> layer_dirs;  // lowest first
    bool user_store = false;              // the image is in the user's own store
    EnvMap env;                           // the user's environment
    std::string host_cwd;                 // the cwd the rank was started in ("" = none: deleted)
    std::string hostname;
    std::vector<std::string> devices;     // device nodes present and allowed (host paths)
    std::vector<std::pair<gid_t, std::string>> group_names;  // the user's groups, primary first
    std::string slurm_tmpfs;              // Slurm's TmpFS on this node ("" = not under Slurm)
    std::string slurm_spool;              // Slurm's SlurmdSpoolDir on this node ("" = not under Slurm)
    std::string proc_options;             // hidepid=, subset=, gid= of the host's /proc
    std::string store_lock;               // node-local lock of the image's store
    mode_t umask = 022;                   // the caller's umask
    std::optional<CpuBinding> binding;
    EnvMap binding_env;                   // e.g. OMP_NUM_THREADS, unless the user set it
};

ContainerSpec make_spec(const PlanInput& in);

// The container's environment: the user's, less the admin's deny list; the image's Env on top
// for the image's own paths; PMIx module names mapped to PMIX_MCA_*; HOME/USER/LOGNAME for
// the user; -e KEY=VALUE last.
EnvMap container_env(const PlanInput& in);

// The PMIx/Open MPI directories named in the environment that must appear at the same path.
std::vector<std::string> pmix_directories(const EnvMap& env);

// Where those directories may be: below /tmp (mpirun's session dir; /tmp is shared anyway),
// Slurm's own <SlurmdSpoolDir>/pmix.J.S of this very step (bound, must be the user's), or --
// when the admin allows user binds -- under the allowed bind prefixes (bound as a user bind).
// Anything else is refused (77) naming the variable: a PMIX_* variable is no way around the
// bind policy.
struct PmixBind {
    std::string dir;
    bool slurm_server_dir = false;  // Slurm's: owned by the user; else a user-bind-like source
};
struct PmixPlaces {
    std::string slurm_server_dir;   // <SlurmdSpoolDir>/pmix.J.S ("" = not in a Slurm step)
    bool user_binds = false;
    std::vector<std::string> bind_allowed_prefixes;
};
std::vector<PmixBind> pmix_binds(const EnvMap& env, const PmixPlaces& at);

// The options of the host's /proc mount that limit what it shows (hidepid=, subset=, gid=),
// from /proc/self/mountinfo, for the container's /proc: nobody sees more inside than outside.
std::string proc_options_from_mountinfo(const std::string& mountinfo);

// The passwd/group files the container sees: root, the user, nobody.
std::string passwd_file(const Identity& id);
std::string group_file(const Identity& id, const std::vector<std::pair<gid_t, std::string>>& names);

extern const char* const kDefaultPath;

// The non-empty items of a separated list ("a,,b" -> a, b).
std::vector<std::string> split_list(const std::string& s, char sep);

// cgroup v1 devices.list rules ("a *:* rwm", "c 195:* rw"), for intersecting the device
// allow-list with what the step's devices cgroup permits.
struct DeviceRule {
    char type = 'a';           // a, c or b
    long major = -1, minor = -1;  // -1 = '*'
};
std::vector<DeviceRule> parse_devices_list(const std::string& text);
bool device_allowed(const std::vector<DeviceRule>& rules, char type, long major, long minor);

}  // namespace socker::launcher
