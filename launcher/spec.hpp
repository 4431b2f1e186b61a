// ContainerSpec: plain data describing one launch, fully decided before any side effect.
// Deterministic (ordered containers) and printable with --dry-run.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/env.hpp"
#include "topology/options.hpp"

namespace socker::launcher {

struct Identity {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary groups, as the rank would have them natively
    std::string name, home, shell;
};

enum class MountKind {
    Bind,     // host path -> container path
    Tmpfs,    // fresh tmpfs (data = options)
    Proc,     // fresh procfs (host PID namespace is kept)
    File,     // generated file content (data) bound read-only at target
    Symlink,  // symlink at target pointing to data
    Node,     // character device node (data = "MAJOR:MINOR") made on the launcher's own /dev tmpfs
};
const char* to_string(MountKind k);

enum class SourceCheck {
    Trusted,      // chosen by the launcher itself (e.g. /dev/null, /sys): opened as root
    AsUser,       // user-named or user-owned: opened with the user's credentials
    OwnedByUser,  // as AsUser, and must also be owned by the user (PMIx dirs)
};

struct MountOp {
    MountKind kind = MountKind::Bind;
    std::string source;  // host path (Bind)
    std::string target;  // absolute path inside the container
    std::string data;    // tmpfs options, file content or symlink target
    bool read_only = false;
    bool nosuid = true;
    bool nodev = true;
    bool noexec = false;
    bool optional = false;   // skip quietly when the source does not exist
    bool user_bind = false;  // named by the user on the command line (a file or a directory)
    // The source, as opened (its real path), must lie under the admin's bind_allowed_prefixes
    // (user binds, the working directory).
    bool within_prefixes = false;
    SourceCheck check = SourceCheck::Trusted;
    // The source is the process's working directory itself ("." when mounted: the very
    // directory the rank runs in, never looked up again by its path, which may have changed).
    bool source_is_cwd = false;
};

using topology::CpuBinding;  // cpus, NUMA mems and the memory policy, from the placement

// The step whose ranks share one container per node: its cgroup directory in one hierarchy
// (flock'ed by the rank that builds a container; its cgroup.procs, and its task_N directories'
// where the ranks sit there, list the processes that may have one to join), and the step's line
// of /proc/PID/cgroup in that hierarchy ("6:freezer:/slurm/uid_U/job_J/step_S", a task_N below
// it stripped), which a process must show to be of this step.
struct Share {
    std::string cgroup_dir;
    std::string cgroup_line;
    bool tasks_below = false;  // the ranks sit in task_N directories below cgroup_dir
};

// Host MPI injection (docs/mpi.md): one library's decision, for --dry-run and -v.
struct InjectedLibrary {
    std::string soname;
    std::string host_path, host_version;    // the host's file (its real path)
    std::string image_path, image_version;  // the image's file it replaces ("" = added)
    std::string decision;                   // "replace", "add", "replace (dependency)", ...
    std::string reason;
};

struct ContainerSpec {
    std::string image_ref;
    std::string image_id;
    std::vector<std::string> layers;  // host directories, lowest first
    // The layers lie in the user's own store: opened as the user (must be the user's own
    // directories) and stacked with overlayfs' userxattr option (user.overlay.* xattrs, which
    // the user could set, carry no redirects or metacopy). false: the root-owned admin store.
    bool layers_owned_by_user = false;
    std::string runtime_dir;  // where the private staging tmpfs is mounted
    // The overlay's mount source: "socker-mpi:k=<share key>:" and the layers it stacks, so that
    // garbage collection sees in any container's mountinfo which layers are in use
    // (image::in_use), and a rank of the same step can find a container it may join.
    std::string rootfs_source = "socker-mpi";
    // One container per node for the ranks of a step (execute.cpp): the key of everything that
    // makes the container (image, layers, mounts, identity), and where the step is.
    std::string share_key;
    std::optional<Share> share;
    // Node-local lock file held (shared) while the layers are opened and mounted; the store's
    // garbage collection holds it exclusively while it decides what is unused ("" = none).
    std::string store_lock;
    // An admin-store image kept as one squashfs file (image/squashfs.hpp): the file, its sha256
    // (its name), and the node-local directory of verification stamps. "" = the layers.
    std::string squashfs_file, squashfs_sha256, squashfs_stamps;
    std::vector<MountOp> mounts;  // applied in this order, inside the new root
    std::vector<std::string> bind_allowed_prefixes;
    std::vector<std::string> denied_destinations;
    Identity id;
    std::string cwd;  // inside the container
    std::vector<std::string> argv;
    std::vector<std::string> path;  // PATH of the container, for the command lookup
    EnvMap env;
    std::optional<CpuBinding> binding;
    std::optional<int> keep_fd;  // PMI_FD of a PMI2 launch
    mode_t umask = 022;          // the caller's umask, restored before exec
    // Host MPI injection: the admin's MPI section injected ("" = none) and each library's decision
    // (the mounts themselves are in `mounts`).
    std::string mpi;
    std::vector<InjectedLibrary> mpi_libraries;
};

std::string to_json(const ContainerSpec& spec);  // for --dry-run

}  // namespace socker::launcher
