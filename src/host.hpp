// Host facts the pipeline needs, read once by main() (thin syscall layer, no decisions).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "launcher/spec.hpp"
#include "policy.hpp"

namespace socker::host {

// Entry hygiene of the setuid binary: fds 0-2 open (on /dev/null if closed), umask 022,
// not dumpable, every other fd closed except keep_fd.
void sanitize_fds(int keep_fd);
bool fd_is_socket(int fd);

// Reads and parses the admin config; refuses unless it and its directory are root-owned and
// not group/world-writable.
Policy load_policy(const std::string& path);
// The admin store must be root-owned and not group/world-writable.
void check_store_dir(const std::string& path);

launcher::Identity current_identity();  // real uid/gid, current groups, passwd entry
std::vector<std::pair<gid_t, std::string>> group_names(const launcher::Identity& id);
std::string read_text(const std::string& path);
std::string cwd();
std::string short_hostname();
// Character devices matching the admin's allow-list patterns that exist on this node and that
// the process's devices cgroup (cgroup v1 devices.list; e.g. Slurm's ConstrainDevices) permits.
// proc_self_cgroup: the contents of /proc/self/cgroup, already read for the launch context.
std::vector<std::string> allowed_devices(const std::vector<std::string>& patterns,
                                         const std::string& proc_self_cgroup);
bool matches_any(const std::string& path, const std::vector<std::string>& globs);
// Open a file as the user for reading ("-" is stdin).
int open_source_as_user(const std::string& path, const launcher::Identity& id);

// Slurm's TmpFS from the admin's slurm.conf (default /tmp), %n/%h expanded to the node name.
// The PMIx plugin keeps its per-step "spmix_appdir_<uid>_<job>.<step>" there.
std::string slurm_tmpfs(const std::string& slurm_conf, const std::string& node);

// One syslog record (or stderr line) per launch and per refusal.
void audit(LogDest dest, const std::string& record);

}  // namespace socker::host
