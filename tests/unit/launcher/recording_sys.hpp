// A recording fake of the syscall layer: each call appends one line; nothing is done.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "launcher/sys.hpp"

namespace socker::launcher {

struct ExecCalled {};

class RecordingSys final : public Sys {
public:
    std::vector<std::string> calls;
    std::string fail_on;  // throw an Error when this call name comes up
    bool joins = false;   // join_shared finds a container to join

    bool join_shared(const ContainerSpec& s) override {
        rec("join_shared " + s.share_key + (joins ? " joined" : " build"));
        return joins;
    }
    void end_setup() override { rec("end_setup"); }

    void unshare_mount_namespace() override { rec("unshare_mount_namespace"); }
    std::string mount_rootfs(const ContainerSpec& s) override {
        rec("mount_rootfs " + s.runtime_dir + " layers=" + std::to_string(s.layers.size()) +
            (s.layers_owned_by_user ? " owner=" + std::to_string(s.id.uid) : ""));
        return s.runtime_dir + "/root";
    }
    void apply_mount(const std::string&, const MountOp& op, const ContainerSpec&) override {
        rec(std::string("mount ") + to_string(op.kind) + " " + op.target);
    }
    void pivot_root(const std::string& r) override { rec("pivot_root " + r); }
    void make_root_readonly() override { rec("make_root_readonly"); }
    void set_binding(const CpuBinding& b) override { rec("set_binding " + b.cpus); }
    void drop_bounding_set() override { rec("drop_bounding_set"); }
    void verify_confined(const Identity& id) override { rec("verify_confined " + std::to_string(id.uid)); }
    void set_groups(const std::vector<gid_t>& g) override { rec("setgroups n=" + std::to_string(g.size())); }
    void set_resgid(gid_t g) override { rec("setresgid " + std::to_string(g)); }
    void set_resuid(uid_t u) override { rec("setresuid " + std::to_string(u)); }
    void verify_dropped(uid_t, gid_t) override { rec("verify_dropped"); }
    void set_no_new_privs() override { rec("no_new_privs"); }
    void chdir(const std::string& d) override { rec("chdir " + d); }
    void set_umask(mode_t m) override { rec("umask " + std::to_string(m)); }
    [[noreturn]] void exec(const std::vector<std::string>& argv, const std::vector<std::string>&,
                           const EnvMap&) override {
        rec("exec " + argv.at(0));
        throw ExecCalled{};
    }

private:
    void rec(const std::string& s);
};

}  // namespace socker::launcher
