// One container per node for the ranks of a step: what makes two ranks' containers the same
// (the share key), and whether a container found on the node may be joined -- pure functions
// over what LinuxSys read from /proc (SECURITY.md "One container per node").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "launcher/spec.hpp"

namespace socker::launcher {

// 16 hex digits (FNV-1a 64) over everything that makes the container: the image and its layers
// and whose they are, every mount (kind, source, target, data, flags, checks), the identity.
// Not the rank's own: argv, environment, working directory, binding, umask, PMI fd.
std::string share_key(const ContainerSpec& spec);

// What LinuxSys read of a process of the step that has a mount namespace of its own.
struct Candidate {
    std::optional<long> real_uid;  // /proc/PID/status
    std::string cgroups;           // /proc/PID/cgroup
    std::string mountinfo;         // /proc/PID/mountinfo, of the namespace checked
    bool init_userns = false;      // that namespace is owned by the initial user namespace
};
// Why it may not be joined ("" = it may): another user, another step, not a socker-mpi container
// of this very key, not finished (its root not read-only yet), or a namespace a user made (owned
// by a user namespace: only root, i.e. socker-mpi, makes initial-namespace containers).
std::string why_not_joinable(const Candidate& c, const ContainerSpec& spec);

// A line of /proc/PID/cgroup that puts the process in this step (at its level, or in a task_N
// directory below it where the ranks sit there).
bool in_step(const std::string& line, const Share& share);

// The pids holding a flock (not waiting for one) on the file dev:ino, from /proc/locks
// ("1: FLOCK  ADVISORY  WRITE 1234 00:1e:5678 0 EOF"; waiters' lines have "->").
std::vector<long> flock_holders(const std::string& proc_locks, unsigned major, unsigned minor,
                                unsigned long long ino);

std::optional<long> real_uid_from_status(const std::string& status);

}  // namespace socker::launcher
