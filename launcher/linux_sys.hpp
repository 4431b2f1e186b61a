#pragma once

#include <unistd.h>

#include <functional>
#include <set>
#include <utility>

#include "launcher/sys.hpp"

namespace socker::launcher {

// The real thing. Requires euid 0 (the setuid binary) for everything but exec.
class LinuxSys final : public Sys {
public:
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
    void chdir(const std::string& dir) override;
    void set_umask(mode_t mask) override;
    [[noreturn]] void exec(const std::vector<std::string>& argv, const std::vector<std::string>& path,
                           const EnvMap& env) override;

private:
    std::string staging_;       // runtime_dir
    std::set<dev_t> own_devs_;  // filesystems we mounted: mount points may be created there
    int file_counter_ = 0;
};

}  // namespace socker::launcher
