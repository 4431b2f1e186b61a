#pragma once

#include <unistd.h>

#include <functional>
#include <optional>
#include <set>
#include <utility>

#include "base/fd.hpp"
#include "launcher/sys.hpp"

namespace socker::launcher {

// The real thing. Requires euid 0 (the setuid binary) for everything but exec.
class LinuxSys final : public Sys {
public:
    bool join_shared(const ContainerSpec& spec) override;
    void end_setup() override;
    void unshare_mount_namespace() override;
    std::string mount_rootfs(const ContainerSpec& spec) override;
    void apply_mount(const std::string& root, const MountOp& op, const ContainerSpec& spec) override;
    void pivot_root(const std::string& new_root) override;
    void make_root_readonly() override;
    void set_binding(const CpuBinding& b) override;
    void drop_bounding_set() override;
    void set_groups(const std::vector<gid_t>& groups) override;
    void set_resgid(gid_t gid) override;
    void set_resuid(uid_t uid) override;
    void verify_dropped(uid_t uid, gid_t gid) override;
    void set_no_new_privs() override;
    void verify_confined(const Identity& id) override;
    void chdir(const std::string& dir) override;
    void set_umask(mode_t mask) override;
    [[noreturn]] void exec(const std::vector<std::string>& argv, const std::vector<std::string>& path,
                           const EnvMap& env) override;

private:
    // A finished container of this very user, step and key among the step's processes: joined.
    bool join_found(const ContainerSpec& spec, int step_dir);
    bool join_verified(const ContainerSpec& spec, long pid);
    // Who holds the step's set-up lock: a process of this user in this step (its pid: worth
    // waiting for, and likely the builder), nobody any more (0), or someone else (-1).
    long lock_holder_in_step(const ContainerSpec& spec, int step_dir);
    void begin_build(Fd lock);
    // apply_mount's steps.
    struct Source {
        Fd fd;
        bool dir = true;
    };
    std::optional<Source> open_source(const MountOp& op, const ContainerSpec& spec);
    Fd open_parent(const MountOp& op, const std::vector<std::string>& parts, bool follow);
    Fd open_mount_point(const MountOp& op, int dir, const std::string& name, bool src_dir, bool follow,
                        const ContainerSpec& spec);
    void require_own_fs(int dir, const std::string& target, const std::string& why) const;

    Fd setup_lock_;                  // the step's cgroup directory, flock'ed while building
    std::optional<int> saved_nice_;  // the caller's nice value, while the build runs boosted
    Fd root_fd_;                     // the new root, while the mounts are made
    std::string root_path_;          // its path
    std::string staging_;            // runtime_dir
    std::set<dev_t> own_devs_;       // filesystems we mounted: mount points may be created there
    int file_counter_ = 0;
    Fd image_mount_;  // a squashfs image's mount, to keep reachable in the container (pivot_root)
};

}  // namespace socker::launcher
