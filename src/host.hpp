// Host facts the launch needs, read once (a thin layer over system calls and root-owned files;
// no policy decision here: validate.hpp makes them), and the privileged entry's hygiene.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/env.hpp"
#include "launcher/spec.hpp"
#include "pmi/launch_context.hpp"
#include "src/policy.hpp"

namespace socker::host {

// Entry hygiene of the setuid binary: fds 0-2 open (on /dev/null if closed), umask 022,
// not dumpable, every other fd closed except keep_fd. Returns the caller's umask.
mode_t sanitize_fds(int keep_fd);
bool fd_is_socket(int fd);

// Reads and parses the admin config; refuses unless it and its directory are root-owned and
// not group/world-writable.
Policy load_policy(const std::string& path);
// The admin store must be root-owned and not group/world-writable.
void check_store_dir(const std::string& path);

launcher::Identity current_identity();  // real uid/gid, current groups, passwd entry
// These ids (Slurm's job credentials, in the SPANK plugin's task) and their passwd entry.
launcher::Identity identity_of(uid_t uid, gid_t gid, std::vector<gid_t> groups);
std::vector<std::pair<gid_t, std::string>> group_names(const launcher::Identity& id);
// The path of the process's working directory now ("" when it has none: deleted).
std::string working_dir();
std::string short_hostname();
// Character devices matching the admin's allow-list patterns that exist on this node and that
// the process's devices cgroup (cgroup v1 devices.list; e.g. Slurm's ConstrainDevices) permits.
// Fails closed: with cgroup_required, a devices list that cannot be read (or none at all: cgroup
// v2, whose eBPF device control cannot be read) passes no device, and `unreadable` says why.
// proc_self_cgroup: the contents of /proc/self/cgroup, already read for the launch context;
// mountinfo: /proc/self/mountinfo (where the devices hierarchy is mounted).
struct DeviceFacts {
    std::vector<std::string> devices;
    std::string unreadable;  // "" = the devices cgroup was read (or not required)
};
DeviceFacts allowed_devices(const std::vector<std::string>& patterns, bool cgroup_required,
                            const std::string& proc_self_cgroup, const std::string& mountinfo);
bool matches_any(const std::string& path, const std::vector<std::string>& globs);
// Open a file as the user for reading ("-" is stdin).
int open_source_as_user(const std::string& path, const launcher::Identity& id);

// cgroup v1 devices.list rules ("a *:* rwm", "c 195:* rw"), for intersecting the device
// allow-list with what the step's devices cgroup permits.
struct DeviceRule {
    char type = 'a';              // a, c or b
    long major = -1, minor = -1;  // -1 = '*'
};
std::vector<DeviceRule> parse_devices_list(const std::string& text);
bool device_allowed(const std::vector<DeviceRule>& rules, char type, long major, long minor);

// The options of the host's /proc mount that limit what it shows (hidepid=, subset=, gid=),
// from /proc/self/mountinfo, for the container's /proc: nobody sees more inside than outside.
std::string proc_options_from_mountinfo(const std::string& mountinfo);

// From the admin's slurm.conf, %n/%h expanded to the node name: TmpFS (default /tmp), where
// the PMIx plugin keeps its per-step "spmix_appdir_<uid>_<job>.<step>", and SlurmdSpoolDir
// (default /var/spool/slurmd), where it keeps the server directory "pmix.<job>.<step>".
struct SlurmFacts {
    std::string tmpfs = "/tmp";
    std::string spool = "/var/spool/slurmd";
};
SlurmFacts parse_slurm_conf(const std::string& text, const std::string& node);
// slurm.conf's settings in file order: the first Key=Value of each line (NodeName and
// PartitionName lines carry more pairs, which are theirs), the key lower-cased, the value up to
// whitespace or '#'. A later line of the same key overrides an earlier one, as for Slurm.
std::vector<std::pair<std::string, std::string>> slurm_conf_settings(const std::string& text);
SlurmFacts slurm_facts(const std::string& slurm_conf, const std::string& node);

// The step's PMIx server directory <SlurmdSpoolDir>/pmix.J.S, where it exists (a directory).
std::optional<std::string> slurm_pmix_server_dir(const SlurmFacts& slurm, const pmi::SlurmStep& step);

// The node-local state directory: created root-owned 0755 if missing; refused (78) unless it
// is a root-owned directory not writable by group or others.
void ensure_state_dir(const std::string& dir);
// The store's node-local lock file (image::node_lock_path), made to exist by root so that a
// process dropped to the user (garbage collection of the user's store) can open it.
std::string ensure_store_lock(const Policy& pol, const std::string& store_root);

// The step's cgroup where its ranks can be found, for one container per node (launcher::Share):
// the freezer's (proctrack/cgroup puts every process of the step there), else the cpuset's, else
// any v1 hierarchy with the step; the step level of the path (a task_N below it stripped), its
// directory where mountinfo says the hierarchy is mounted. nullopt: not in a step, or the
// hierarchy is not mounted whole (then every rank builds its own container).
// Where a cgroup v1 hierarchy with these controllers is mounted whole, from mountinfo.
std::optional<std::string> hierarchy_mount(const std::string& mountinfo, const std::string& controllers);

// The SPANK plugin's task runs as root before Slurm has put it in its step everywhere (the
// freezer, where proctrack/cgroup tracks the step's processes, still shows the job's level):
// the step's directories below the job-level cgroups it is in, to enter first (Slurm moves it
// there a moment later anyway), so that the launch sees the task in its step, as a rank
// launched by srun is. enter_step_cgroups() writes the pid (only where the directory exists).
std::vector<std::string> step_cgroups_to_enter(const std::string& proc_self_cgroup,
                                               const std::string& mountinfo, unsigned long job,
                                               const std::string& step);
void enter_step_cgroups(unsigned long job, const std::string& step);
// The SPANK task, root in every id: the real ids become the user's, the effective and saved
// stay root's -- the setuid launcher's own state, so that what the launch reads of a process of
// the step (the real uid in /proc/PID/status: one container per node) is the same for both.
void take_real_ids(uid_t uid, gid_t gid);

std::optional<launcher::Share> step_share(const std::string& proc_self_cgroup, const std::string& mountinfo,
                                          const std::string& prefix);
// Engine mode's cgroup parent: the rank's Slurm step cgroup (its task_N stripped) from the
// memory controller's line of /proc/self/cgroup, else any controller's that is a step's; "" when
// the rank is in no Slurm step. Pure.
std::string step_cgroup_parent(const std::string& proc_self_cgroup, const std::string& prefix);
// The engine makes `parent` in every hierarchy, also in those Slurm leaves the rank at "/" (cpu,
// pids, blkio, ...), where nobody removes it. Those hierarchies' directories of this user
// (<mount><parent up to uid_U>), for sweep_empty_cgroups. Pure.
std::vector<std::string> engine_cgroup_leftovers(const std::string& proc_self_cgroup,
                                                 const std::string& mountinfo, const std::string& prefix,
                                                 const std::string& parent);
// Removes the empty cgroups below each directory (deepest first), then the directory and its
// parent when empty; cgroups in use stay (rmdir fails on them). Root, before engine mode drops.
void sweep_empty_cgroups(const std::vector<std::string>& dirs);

// What the host says for one launch, gathered once (gather) for validate() and the plan.
struct HostFacts {
    launcher::Identity id;
    std::vector<std::pair<gid_t, std::string>> group_names;
    std::string hostname;                       // short host name
    std::string cwd;                            // the working directory's path ("" = none: deleted)
    bool pmi_fd_is_socket = false;              // PMI_FD (when set) names an open socket
    DeviceFacts devices;                        // allowed by the admin, present, permitted by the cgroup
    SlurmFacts slurm;                           // of the step's node
    std::string proc_options;                   // hidepid=, subset=, gid= of the host's /proc
    std::optional<launcher::Share> step_share;  // where the step's ranks are (nullopt: not in one)
};

// The launch context's inputs: the environment, this process's cgroups, whether PMI_FD is a
// socket, and where the admin says Slurm's cgroups are.
pmi::ProbeInput probe_input(const EnvMap& env, const Policy& pol);
// Everything else the launch needs from the host, for this identity and launch context.
HostFacts gather(const Policy& pol, launcher::Identity id, const pmi::LaunchContext& ctx,
                 const pmi::ProbeInput& probe);

}  // namespace socker::host
