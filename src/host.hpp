// Host facts the pipeline needs, read once by main() (thin syscall layer, no decisions).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "launcher/linux_sys.hpp"
#include "launcher/spec.hpp"
#include "policy.hpp"

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
std::vector<std::pair<gid_t, std::string>> group_names(const launcher::Identity& id);
std::string read_text(const std::string& path);
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

// From the admin's slurm.conf, %n/%h expanded to the node name: TmpFS (default /tmp), where
// the PMIx plugin keeps its per-step "spmix_appdir_<uid>_<job>.<step>", and SlurmdSpoolDir
// (default /var/spool/slurmd), where it keeps the server directory "pmix.<job>.<step>".
struct SlurmFacts {
    std::string tmpfs = "/tmp";
    std::string spool = "/var/spool/slurmd";
};
SlurmFacts parse_slurm_conf(const std::string& text, const std::string& node);
SlurmFacts slurm_facts(const std::string& slurm_conf, const std::string& node);

// The node-local state directory: created root-owned 0755 if missing; refused (78) unless it
// is a root-owned directory not writable by group or others.
void ensure_state_dir(const std::string& dir);
// The store's node-local lock file (image::node_lock_path), made to exist by root so that a
// process dropped to the user (garbage collection of the user's store) can open it.
std::string ensure_store_lock(const Policy& pol, const std::string& store_root);

// One audit record per launch and per refusal. Fields are key=value, in a fixed order (the
// decision first, the identity next, free-form fields last); a value is either a plain token
// or a double-quoted string with \", \\ and \xHH escapes, so no value can look like a field.
// The record is capped at kAuditMaxBytes: the command is truncated first, never the identity.
struct AuditFields {
    std::string decision;  // launch | refused | failed
    std::string reason;    // for refusals and failures
    std::string user;
    long uid = -1;
    std::string job = "-", step = "-";
    long rank = 0;
    std::string image, store = "-", digest = "-";
    std::vector<std::string> argv;
};
inline constexpr size_t kAuditMaxBytes = 2048;
std::string audit_record(const AuditFields& f);
// Sends it (syslog: RFC 3164 to the admin's syslog socket, facility authpriv). Returns "" when
// delivered, else why not.
std::string audit(const Policy& pol, const std::string& record);

}  // namespace socker::host
