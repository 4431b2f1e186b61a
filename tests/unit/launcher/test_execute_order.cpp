#include <gtest/gtest.h>

#include <algorithm>

#include "base/error.hpp"
#include "launcher/recording_sys.hpp"

namespace socker::launcher {

void RecordingSys::rec(const std::string& s) {
    std::string name = s.substr(0, s.find(' '));
    if (!fail_on.empty() && name == fail_on) throw Error(Exit::Io, name, "", EPERM);
    calls.push_back(s);
}

namespace {

ContainerSpec sample() {
    ContainerSpec s;
    s.runtime_dir = "/var/lib/socker-mpi/mnt";
    s.layers = {"/store/layers/a"};
    s.id.uid = 1001;
    s.id.gid = 1001;
    s.id.groups = {1001, 27};
    s.cwd = "/home/alice";
    s.argv = {"/bin/true"};
    MountOp proc;
    proc.kind = MountKind::Proc;
    proc.target = "/proc";
    s.mounts.push_back(proc);
    MountOp home;
    home.kind = MountKind::Bind;
    home.source = home.target = "/home/alice";
    s.mounts.push_back(home);
    s.binding = CpuBinding{"0-1", "0", topology::MemBind::Local};
    return s;
}

size_t pos(const std::vector<std::string>& calls, const std::string& prefix) {
    auto it = std::find_if(calls.begin(), calls.end(),
                           [&](const std::string& c) { return c.rfind(prefix, 0) == 0; });
    EXPECT_NE(it, calls.end()) << "missing call " << prefix;
    return static_cast<size_t>(it - calls.begin());
}

TEST(ExecuteOrder, UserStoreLayersAreMountedAsTheUsers) {
    ContainerSpec s = sample();
    RecordingSys admin;
    EXPECT_THROW(execute(s, admin), ExecCalled);
    EXPECT_EQ(admin.calls.at(1), "mount_rootfs /var/lib/socker-mpi/mnt layers=1");
    s.layers_owned_by_user = true;
    RecordingSys user;
    EXPECT_THROW(execute(s, user), ExecCalled);
    EXPECT_EQ(user.calls.at(1), "mount_rootfs /var/lib/socker-mpi/mnt layers=1 owner=1001");
}

TEST(ExecuteOrder, PrivilegedStepsInTheRightOrder) {
    RecordingSys sys;
    EXPECT_THROW(execute(sample(), sys), ExecCalled);
    const auto& c = sys.calls;
    EXPECT_EQ(c.front(), "unshare_mount_namespace");
    EXPECT_LT(pos(c, "unshare"), pos(c, "mount_rootfs"));
    EXPECT_LT(pos(c, "mount_rootfs"), pos(c, "mount proc /proc"));
    EXPECT_LT(pos(c, "mount bind /home/alice"), pos(c, "pivot_root"));
    EXPECT_LT(pos(c, "pivot_root"), pos(c, "make_root_readonly"));
    EXPECT_LT(pos(c, "set_binding"), pos(c, "setresuid"));
    // Bounding set needs CAP_SETPCAP: before the uid changes.
    EXPECT_LT(pos(c, "drop_bounding_set"), pos(c, "setgroups"));
    EXPECT_LT(pos(c, "setgroups"), pos(c, "setresgid"));
    EXPECT_LT(pos(c, "setresgid"), pos(c, "setresuid"));
    EXPECT_LT(pos(c, "setresuid"), pos(c, "verify_dropped"));
    EXPECT_LT(pos(c, "verify_dropped"), pos(c, "no_new_privs"));
    // chdir as the user, exec last.
    EXPECT_LT(pos(c, "no_new_privs"), pos(c, "chdir"));
    EXPECT_EQ(c.back(), "exec /bin/true");
    EXPECT_EQ(c[pos(c, "setresuid")], "setresuid 1001");
    EXPECT_EQ(c[pos(c, "setgroups")], "setgroups n=2");
}

TEST(ExecuteOrder, NoBindingCallWithoutBinding) {
    RecordingSys sys;
    auto s = sample();
    s.binding.reset();
    EXPECT_THROW(execute(s, sys), ExecCalled);
    for (const auto& c : sys.calls) EXPECT_EQ(c.rfind("set_binding", 0), std::string::npos);
}

TEST(ExecuteOrder, FailureStopsBeforeIdentityChangeAndNamesTheMount) {
    RecordingSys sys;
    sys.fail_on = "mount";
    try {
        execute(sample(), sys);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("proc /proc"), std::string::npos) << e.what();
    }
    for (const auto& c : sys.calls) {
        EXPECT_EQ(c.rfind("setresuid", 0), std::string::npos);
        EXPECT_EQ(c.rfind("exec", 0), std::string::npos);
    }
}

TEST(ExecuteOrder, VerifyFailureNeverReachesExec) {
    RecordingSys sys;
    sys.fail_on = "verify_dropped";
    EXPECT_THROW(execute(sample(), sys), Error);
    EXPECT_EQ(sys.calls.back(), "setresuid 1001");
}

}  // namespace
}  // namespace socker::launcher

namespace socker::launcher {
namespace {

ContainerSpec shared_sample() {
    ContainerSpec s = sample();
    s.share =
        Share{"/sys/fs/cgroup/freezer/slurm/uid_1001/job_7/step_0", "6:freezer:/slurm/uid_1001/job_7/step_0"};
    s.share_key = "00000000000000aa";
    return s;
}

TEST(ExecuteOrder, JoiningRankBuildsNothingAndKeepsItsOwnIdentityBindingAndCommand) {
    RecordingSys sys;
    sys.joins = true;
    EXPECT_THROW(execute(shared_sample(), sys), ExecCalled);
    const auto& c = sys.calls;
    EXPECT_EQ(c.front(), "join_shared 00000000000000aa joined");
    for (const auto& call : c)
        for (const char* built : {"unshare", "mount", "pivot_root", "make_root_readonly", "end_setup"})
            EXPECT_NE(call.rfind(built, 0), 0u) << call;
    EXPECT_LT(pos(c, "set_binding 0-1"), pos(c, "setresuid"));
    EXPECT_LT(pos(c, "drop_bounding_set"), pos(c, "setresuid 1001"));
    EXPECT_LT(pos(c, "verify_dropped"), pos(c, "chdir /home/alice"));
    EXPECT_EQ(c.back(), "exec /bin/true");
}

TEST(ExecuteOrder, FirstRankBuildsAndReleasesTheStepBeforeItDropsPrivileges) {
    RecordingSys sys;
    EXPECT_THROW(execute(shared_sample(), sys), ExecCalled);
    const auto& c = sys.calls;
    EXPECT_EQ(c.front(), "join_shared 00000000000000aa build");
    EXPECT_LT(pos(c, "join_shared"), pos(c, "unshare_mount_namespace"));
    // Joinable only once finished: the read-only root is the last step of the set-up.
    EXPECT_LT(pos(c, "make_root_readonly"), pos(c, "end_setup"));
    EXPECT_LT(pos(c, "end_setup"), pos(c, "set_binding"));
    EXPECT_EQ(c.back(), "exec /bin/true");
}

TEST(ExecuteOrder, WithoutSharingNoRankLooksForAContainer) {
    RecordingSys sys;
    sys.joins = true;  // would join if asked: it must not be asked
    EXPECT_THROW(execute(sample(), sys), ExecCalled);
    EXPECT_EQ(sys.calls.front(), "unshare_mount_namespace");
    for (const auto& call : sys.calls) EXPECT_NE(call.rfind("join_shared", 0), 0u);
}

}  // namespace
}  // namespace socker::launcher

namespace socker::launcher {
namespace {

// The SPANK task: built (or joined) as root, bounding set and no_new_privs before slurmstepd's
// drop; never an identity change or an exec of its own (those are slurmstepd's).
TEST(ExecuteOrder, TaskEntryBuildsThenConfinesAndNeverDropsOrExecs) {
    RecordingSys sys;
    enter_for_task(sample(), sys);
    const auto& c = sys.calls;
    EXPECT_LT(pos(c, "pivot_root"), pos(c, "drop_bounding_set"));
    EXPECT_LT(pos(c, "make_root_readonly"), pos(c, "drop_bounding_set"));
    EXPECT_LT(pos(c, "drop_bounding_set"), pos(c, "no_new_privs"));
    EXPECT_LT(pos(c, "no_new_privs"), pos(c, "chdir /home/alice"));
    for (const auto& call : c) {
        EXPECT_NE(call.rfind("setres", 0), 0u) << call;
        EXPECT_NE(call.rfind("setgroups", 0), 0u) << call;
        EXPECT_NE(call.rfind("exec", 0), 0u) << call;
        EXPECT_NE(call.rfind("set_binding", 0), 0u) << call;  // the user phase's, with Slurm's env
    }
}

TEST(ExecuteOrder, TaskEntryFailureStopsBeforeConfinement) {
    RecordingSys sys;
    sys.fail_on = "pivot_root";
    EXPECT_THROW(enter_for_task(sample(), sys), Error);
    EXPECT_EQ(std::count(sys.calls.begin(), sys.calls.end(), "drop_bounding_set"), 0);
}

TEST(ExecuteOrder, TaskIdentityCheckReadsBackEverything) {
    RecordingSys sys;
    check_task_identity(sample().id, sys);
    EXPECT_EQ(sys.calls, (std::vector<std::string>{"verify_dropped", "verify_confined 1001"}));
    RecordingSys failing;
    failing.fail_on = "verify_confined";
    EXPECT_THROW(check_task_identity(sample().id, failing), Error);
}

}  // namespace
}  // namespace socker::launcher
