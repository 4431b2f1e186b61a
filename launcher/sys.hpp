// Sys: every side effect the executor makes, behind one small interface. LinuxSys does it for
// real; tests/unit use RecordingSys to check the order of privileged steps without root.
#pragma once

#include <string>
#include <vector>

#include "launcher/spec.hpp"

namespace socker::launcher {

class Sys {
public:
    virtual ~Sys() = default;
    // One container per node per step: join a finished container of this very user, step and
    // share key (spec.share), found among the step's processes and verified; true when joined.
    // false: build one -- then the step's set-up lock is held until end_setup(), so that the
    // other ranks wait for this container rather than build their own.
    virtual bool join_shared(const ContainerSpec& spec) = 0;
    virtual void end_setup() = 0;
    // unshare(CLONE_NEWNS) and make every mount private, so nothing propagates to the host.
    virtual void unshare_mount_namespace() = 0;
    // Private tmpfs at spec.runtime_dir, then an overlay (spec.layers below, tmpfs above)
    // mounted nosuid,nodev at runtime_dir/root with spec.rootfs_source as its source, while
    // holding spec.store_lock shared. layers_owned_by_user: the layers are the user's (per-user
    // store): each is opened as the user and must be the user's. Returns the new root's path.
    virtual std::string mount_rootfs(const ContainerSpec& spec) = 0;
    // One mount inside the new root: sources opened as the spec says, targets resolved inside
    // the root (never following the image's symlinks out of it).
    virtual void apply_mount(const std::string& root, const MountOp& op, const ContainerSpec& spec) = 0;
    virtual void pivot_root(const std::string& new_root) = 0;
    virtual void make_root_readonly() = 0;
    virtual void set_binding(const CpuBinding& b) = 0;
    virtual void drop_bounding_set() = 0;
    virtual void set_groups(const std::vector<gid_t>& groups) = 0;
    virtual void set_resgid(gid_t gid) = 0;
    virtual void set_resuid(uid_t uid) = 0;
    // getresuid/getresgid/capget: nothing of root may remain.
    virtual void verify_dropped(uid_t uid, gid_t gid) = 0;
    virtual void set_no_new_privs() = 0;
    // After a drop made by someone else (slurmstepd's, for the SPANK plugin's task): exactly the
    // identity's supplementary groups, an empty bounding set, no_new_privs on.
    virtual void verify_confined(const Identity& id) = 0;
    virtual void chdir(const std::string& dir) = 0;
    virtual void set_umask(mode_t mask) = 0;
    // Look the command up in PATH (as the user, after the drop) and execve it. Returns only by
    // throwing.
    [[noreturn]] virtual void exec(const std::vector<std::string>& argv, const std::vector<std::string>& path,
                                   const EnvMap& env) = 0;
};

// The one routine that drops root: bounding set (needs CAP_SETPCAP), then groups, gid, uid;
// verified. Used by execute() and by every other command that acts as the user.
void drop_privileges(const Identity& id, Sys& sys);

// The one place where the privileged steps are ordered.
[[noreturn]] void execute(const ContainerSpec& spec, Sys& sys);
// Its first part, for a rank that joins no container: namespace, rootfs, mounts, pivot_root.
void build_container(const ContainerSpec& spec, Sys& sys);

// The SPANK plugin's task (root, in slurmstepd's child, before slurmstepd drops it to the user
// and execs the command): the container joined or built, the bounding set emptied and
// no_new_privs set while root can still do both; the working directory and umask. The drop
// and the exec are slurmstepd's; check_task_identity() then checks them as the user.
void enter_for_task(const ContainerSpec& spec, Sys& sys);
// As the user, after slurmstepd's drop: nothing of root left (uid, gid, capabilities), the
// identity's groups, an empty bounding set, no_new_privs.
void check_task_identity(const Identity& id, Sys& sys);

}  // namespace socker::launcher
