// One container per node: what makes two ranks' containers the same, and what may be joined.
#include <gtest/gtest.h>

#include "image/in_use.hpp"
#include "launcher/sharing.hpp"

namespace socker::launcher {
namespace {

ContainerSpec spec() {
    ContainerSpec s;
    s.image_id = "sha256:1111";
    s.layers = {"/store/layers/a", "/store/layers/b"};
    s.runtime_dir = "/var/lib/socker-mpi/mnt";
    s.id.uid = 1001;
    s.id.gid = 1001;
    s.id.groups = {1001};
    MountOp home;
    home.kind = MountKind::Bind;
    home.source = home.target = "/home/alice";
    s.mounts.push_back(home);
    s.share =
        Share{"/sys/fs/cgroup/freezer/slurm/uid_1001/job_7/step_0", "6:freezer:/slurm/uid_1001/job_7/step_0"};
    s.argv = {"./solver", "--rank-0"};
    s.env = {{"PMIX_RANK", "0"}};
    s.cwd = "/home/alice";
    s.binding = CpuBinding{"0", "0", topology::MemBind::Local};
    return s;
}

TEST(ShareKey, TheRanksOwnSettingsDoNotChangeIt) {
    const auto a = spec();
    auto b = spec();
    b.argv = {"./other", "--rank-1"};
    b.env = {{"PMIX_RANK", "1"}};
    b.cwd = "/";
    b.binding = CpuBinding{"1", "0", topology::MemBind::Local};
    b.umask = 077;
    b.keep_fd = 5;
    EXPECT_EQ(share_key(a), share_key(b));
    EXPECT_EQ(share_key(a).size(), 16u);
}

TEST(ShareKey, EverythingThatMakesTheContainerChangesIt) {
    const std::string k = share_key(spec());
    auto differs = [&](auto change) {
        auto s = spec();
        change(s);
        return share_key(s) != k;
    };
    EXPECT_TRUE(differs([](ContainerSpec& s) { s.image_id = "sha256:2222"; }));
    EXPECT_TRUE(differs([](ContainerSpec& s) { s.layers.pop_back(); }));
    EXPECT_TRUE(differs([](ContainerSpec& s) { s.layers_owned_by_user = true; }));
    EXPECT_TRUE(differs([](ContainerSpec& s) { s.id.uid = 1002; }));
    EXPECT_TRUE(differs([](ContainerSpec& s) { s.id.groups.push_back(27); }));
    EXPECT_TRUE(differs([](ContainerSpec& s) { s.mounts[0].read_only = true; }));
    EXPECT_TRUE(differs([](ContainerSpec& s) { s.mounts[0].target = "/home/bob"; }));
    EXPECT_TRUE(differs([](ContainerSpec& s) { s.mounts.push_back(s.mounts[0]); }));
    EXPECT_TRUE(
        differs([](ContainerSpec& s) { s.share->cgroup_line = "6:freezer:/slurm/uid_1001/job_7/step_1"; }));
    // Fields stay apart: moving a byte from one field to the next is another key.
    EXPECT_TRUE(differs([](ContainerSpec& s) {
        s.mounts[0].source = "/home/alic";
        s.mounts[0].target = "e/home/alice";
    }));
}

std::string mountinfo(const std::string& source, const std::string& opts) {
    return "1 0 0:50 / / " + opts + ",relatime - overlay " + source +
           " rw,lowerdir=x\n"
           "2 1 0:51 / /proc rw - proc proc rw\n";
}

Candidate good(const ContainerSpec& s) {
    Candidate c;
    c.real_uid = 1001;
    c.cgroups = "7:memory:/slurm/uid_1001/job_7/step_0/task_0\n6:freezer:/slurm/uid_1001/job_7/step_0\n";
    c.mountinfo = mountinfo(s.rootfs_source, "ro,nosuid,nodev");
    c.init_userns = true;
    return c;
}

ContainerSpec keyed() {
    auto s = spec();
    s.share_key = share_key(s);
    s.rootfs_source = image::overlay_source({"aaaaaaaaaaaaaaaaXX", "bbbbbbbbbbbbbbbbYY"}, s.share_key);
    return s;
}

TEST(Joinable, OnlyAFinishedContainerOfThisUserStepAndKey) {
    const auto s = keyed();
    EXPECT_EQ(why_not_joinable(good(s), s), "");
    auto c = good(s);
    c.real_uid = 1002;
    EXPECT_EQ(why_not_joinable(c, s), "another user's");
    c = good(s);
    c.real_uid.reset();
    EXPECT_EQ(why_not_joinable(c, s), "another user's");
    c = good(s);
    c.cgroups = "6:freezer:/slurm/uid_1001/job_7/step_1\n";
    EXPECT_EQ(why_not_joinable(c, s), "not in this step");
    c.cgroups = "6:freezer:/slurm/uid_1001/job_7/step_0/fake\n";  // a cgroup the user made below
    EXPECT_EQ(why_not_joinable(c, s), "not in this step");
    c = good(s);
    c.mountinfo = mountinfo("socker-mpi:k=0123456789abcdef:aaaaaaaaaaaaaaaa", "ro");  // another spec
    EXPECT_EQ(why_not_joinable(c, s), "not this container");
    c.mountinfo = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n";  // the host's
    EXPECT_EQ(why_not_joinable(c, s), "not this container");
    c = good(s);
    c.mountinfo = mountinfo(s.rootfs_source, "rw");  // pivoted, not yet read-only: being built
    EXPECT_EQ(why_not_joinable(c, s), "not set up yet");
    c = good(s);
    c.init_userns = false;  // a user namespace's copy, however alike
    EXPECT_EQ(why_not_joinable(c, s), "a user namespace's, not socker-mpi's");
    c = good(s);
    c.mountinfo = "";
    EXPECT_EQ(why_not_joinable(c, s), "no root mount");
    auto unshared = s;
    unshared.share.reset();
    EXPECT_EQ(why_not_joinable(good(s), unshared), "no sharing");
}

TEST(Joinable, TheLastRootMountCounts) {
    const auto s = keyed();
    auto c = good(s);
    // Something mounted over the container's root afterwards is what the namespace shows.
    c.mountinfo += "3 1 0:52 / / rw - tmpfs tmpfs rw\n";
    EXPECT_EQ(why_not_joinable(c, s), "not this container");
}

TEST(InStep, TheStepLevelOrItsTaskDirectories) {
    Share sh{"/x", "4:memory:/slurm/uid_1/job_2/step_0", true};
    EXPECT_TRUE(in_step("4:memory:/slurm/uid_1/job_2/step_0", sh));
    EXPECT_TRUE(in_step("4:memory:/slurm/uid_1/job_2/step_0/task_12", sh));
    EXPECT_FALSE(in_step("4:memory:/slurm/uid_1/job_2/step_0/task_", sh));
    EXPECT_FALSE(in_step("4:memory:/slurm/uid_1/job_2/step_0/task_1x", sh));
    EXPECT_FALSE(in_step("4:memory:/slurm/uid_1/job_2/step_00", sh));
    EXPECT_FALSE(in_step("5:memory:/slurm/uid_1/job_2/step_0", sh));
    sh.tasks_below = false;
    EXPECT_FALSE(in_step("4:memory:/slurm/uid_1/job_2/step_0/task_1", sh));
}

TEST(FlockHolders, HoldersOfThatInodeNotWaiters) {
    const std::string locks =
        "1: FLOCK  ADVISORY  WRITE 4242 00:1e:9876 0 EOF\n"
        "1: -> FLOCK  ADVISORY  WRITE 4243 00:1e:9876 0 EOF\n"
        "2: POSIX  ADVISORY  WRITE 4244 00:1e:9876 0 EOF\n"
        "3: FLOCK  ADVISORY  WRITE 4245 00:1f:9876 0 EOF\n"
        "4: FLOCK  ADVISORY  READ  4246 fd:01:9876 0 EOF\n";
    EXPECT_EQ(flock_holders(locks, 0, 0x1e, 9876), std::vector<long>{4242});
    EXPECT_EQ(flock_holders(locks, 0xfd, 1, 9876), std::vector<long>{4246});
    EXPECT_TRUE(flock_holders(locks, 0, 0x1e, 1).empty());
    EXPECT_TRUE(flock_holders("garbage\n1: FLOCK\n", 0, 0x1e, 9876).empty());
}

TEST(Status, RealUid) {
    EXPECT_EQ(real_uid_from_status("Name:\tx\nUid:\t1001\t0\t0\t0\n"), 1001);
    EXPECT_FALSE(real_uid_from_status("Name:\tx\n").has_value());
    EXPECT_FALSE(real_uid_from_status("Uid:\tabc\n").has_value());
}

}  // namespace
}  // namespace socker::launcher
