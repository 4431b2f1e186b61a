// LaunchContext: who this rank is, derived from the environment the launcher (srun --mpi=pmix,
// srun --mpi=pmi2, plain srun, Open MPI's mpirun, or nothing) gave the process, and from the
// process's own cgroup membership (which is what identifies the Slurm job and step: SLURM_*
// variables are under the user's control and are never trusted for that).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/env.hpp"

namespace socker::pmi {

enum class Flavour { SlurmPmix, SlurmPmi2, SlurmPlain, OpenMpiMpirun, Singleton };
const char* to_string(Flavour f);

// One line of /proc/self/cgroup: "4:memory:/slurm_n1/uid_1001/job_3/step_0/task_0".
struct CgroupEntry {
    std::string controllers;  // "memory", "cpu,cpuacct", "" for the v2 line
    std::string path;
};
std::vector<CgroupEntry> parse_proc_cgroup(const std::string& text);

// The Slurm step this process sits in, read from its cgroup paths.
struct SlurmStep {
    long uid = -1;
    long job = -1;
    std::string step;  // "0", "1", "batch", "interactive", "extern"
    std::string node;  // from "slurm_<node>" (multiple-slurmd layout); "" for plain "/slurm"
};
// Slurm's layout, anchored at the hierarchy root (or below `prefix`, the admin's
// slurm_cgroup_prefix): /slurm[_<node>]/uid_U/job_J/step_S[/task_N]. `problem` says why a
// membership that looks like Slurm's is not taken (cgroups below the step, disagreeing
// controllers); the launch is then refused.
struct CgroupStep {
    std::optional<SlurmStep> step;
    std::string problem;
};
CgroupStep step_from_cgroups(const std::vector<CgroupEntry>& cgroups, const std::string& prefix = "");

struct LaunchContext {
    Flavour flavour = Flavour::Singleton;
    long rank = 0, size = 1;
    long local_rank = 0, local_size = 1;
    long node_index = 0;
    std::optional<SlurmStep> step;   // from cgroups (authoritative)
    std::string cgroup_problem;      // a Slurm-looking membership that is not Slurm's (refused)
    std::optional<long> pmi_fd;      // PMI2: the fd that must stay open across exec
    std::string pmix_namespace;      // "slurm.pmix.J.S" or mpirun's
    std::vector<std::string> trace;  // why each probe was taken or rejected (-v)
};

struct ProbeInput {
    EnvMap env;
    std::string proc_self_cgroup;   // contents of /proc/self/cgroup
    bool pmi_fd_is_socket = false;  // main() checked fstat(PMI_FD) is a socket
    std::string cgroup_prefix;      // admin's slurm_cgroup_prefix ("" = hierarchy root)
};

// Probes are tried in a fixed order: Slurm+PMIx, Slurm+PMI2, Slurm without MPI plugin,
// Open MPI mpirun, singleton. Pure: the same input always gives the same context.
LaunchContext detect(const ProbeInput& in);

// The rank number for message prefixes, before (or without) full detection.
std::optional<long> rank_hint(const EnvMap& env);

}  // namespace socker::pmi
