// Host facts that are pure text work: the audit record's format, slurm.conf's keys.
#include <gtest/gtest.h>

#include <regex>

#include "src/audit.hpp"
#include "src/host.hpp"

namespace socker::host {
namespace {

using audit::audit_record;
using audit::AuditFields;
using audit::kAuditMaxBytes;

AuditFields sample() {
    AuditFields f;
    f.decision = "launch";
    f.user = "alice";
    f.uid = 1001;
    f.job = "17";
    f.step = "0";
    f.rank = 3;
    f.image = "demo:latest";
    f.store = "admin";
    f.digest = "sha256:" + std::string(64, 'a');
    f.argv = {"/bin/sh", "-c", "echo hi"};
    return f;
}

// The grammar a reader of the log can rely on: key=token or key="escaped", one space apart.
std::vector<std::pair<std::string, std::string>> parse(const std::string& r) {
    static const std::regex field(R"rx(([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ "]+)( |$))rx");
    std::vector<std::pair<std::string, std::string>> out;
    auto it = r.cbegin();
    std::smatch m;
    while (it != r.cend()) {
        if (!std::regex_search(it, r.cend(), m, field, std::regex_constants::match_continuous)) {
            ADD_FAILURE() << "unparsable at: " << std::string(it, r.cend());
            break;
        }
        out.emplace_back(m[1], m[2]);
        it = m[0].second;
    }
    return out;
}

TEST(Audit, DecisionFirstIdentityWholeFreeFormQuoted) {
    const std::string r = audit_record(sample());
    EXPECT_EQ(r, "decision=launch user=alice uid=1001 job=17 step=0 rank=3 store=admin digest=sha256:" +
                     std::string(64, 'a') + " image=demo:latest cmd=\"/bin/sh -c echo hi\"");
}

TEST(Audit, NoArgumentCanAddOrReplaceAField) {
    AuditFields f = sample();
    f.argv = {"/bin/true", "x' user=root uid=0 '", "y\" user=root uid=0 \"", "z\\\" user=root",
              "\n uid=0\x1b[2J"};
    f.decision = "refused";
    f.reason = "bind `/x\" user=root`: refused";
    const std::string r = audit_record(f);
    EXPECT_EQ(r.find('\n'), std::string::npos);
    EXPECT_EQ(r.find('\x1b'), std::string::npos);
    const auto fields = parse(r);
    std::vector<std::string> keys;
    for (const auto& [k, v] : fields) keys.push_back(k);
    EXPECT_EQ(keys, (std::vector<std::string>{"decision", "user", "uid", "job", "step", "rank", "store",
                                              "digest", "image", "reason", "cmd"}));
    EXPECT_EQ(fields[1].second, "alice");
    EXPECT_EQ(fields[2].second, "1001");
}

TEST(Audit, LongCommandsAreTruncatedNeverTheIdentity) {
    AuditFields f = sample();
    f.argv = {"/bin/true", std::string(300000, 'A'), std::string(100000, 'B')};
    f.image = "/home/alice/" + std::string(5000, 'i') + ".tar";
    const std::string r = audit_record(f);
    EXPECT_LE(r.size(), kAuditMaxBytes);
    EXPECT_EQ(
        r.rfind("decision=launch user=alice uid=1001 job=17 step=0 rank=3 store=admin digest=sha256:", 0),
        0u);
    const auto fields = parse(r);
    ASSERT_FALSE(fields.empty());
    EXPECT_EQ(fields.back().first, "cmd_truncated");
    EXPECT_EQ(fields.back().second, std::to_string(10 + 300000 + 1 + 100000));
}

TEST(SlurmConf, TmpFsAndSpoolPerNode) {
    const auto f = parse_slurm_conf(
        "# c\nSlurmdSpoolDir=/var/spool/%n # per node\ntmpfs=/local/%h\nTmpFS=relative\n", "n2");
    EXPECT_EQ(f.spool, "/var/spool/n2");
    EXPECT_EQ(f.tmpfs, "/local/n2");
    const auto d = parse_slurm_conf("", "x");
    EXPECT_EQ(d.spool, "/var/spool/slurmd");
    EXPECT_EQ(d.tmpfs, "/tmp");
}

TEST(Host, DevicesCgroupRules) {
    auto all = parse_devices_list("a *:* rwm\n");
    EXPECT_TRUE(device_allowed(all, 'c', 231, 192));
    auto some = parse_devices_list("c 1:3 rwm\nc 195:* rw\nc 231:5 m\n");
    EXPECT_TRUE(device_allowed(some, 'c', 1, 3));
    EXPECT_TRUE(device_allowed(some, 'c', 195, 254));
    EXPECT_FALSE(device_allowed(some, 'c', 231, 5)) << "mknod-only rule does not allow opening";
    EXPECT_FALSE(device_allowed(some, 'b', 1, 3));
    EXPECT_FALSE(device_allowed({}, 'c', 1, 3));
}

TEST(Host, ProcLikeTheHostsProc) {
    EXPECT_EQ(proc_options_from_mountinfo("22 27 0:21 / /proc rw,relatime - proc proc rw\n"), "");
    EXPECT_EQ(
        proc_options_from_mountinfo("22 27 0:21 / /proc rw,nosuid - proc proc rw,hidepid=invisible,gid=27\n"
                                    "30 22 0:40 / /proc/sys/fs/binfmt_misc rw - binfmt_misc x rw\n"),
        "hidepid=invisible,gid=27");
    // A later /proc mount shadows the first.
    EXPECT_EQ(proc_options_from_mountinfo("22 27 0:21 / /proc rw - proc proc rw\n"
                                          "90 27 0:51 / /proc rw - proc proc rw,hidepid=2,subset=pid\n"),
              "hidepid=2,subset=pid");
}

// The SPANK task as slurmstepd forks it: the freezer still at the job's level, cpuset and
// memory already in the step (slurmstepd's own): only the freezer's step directory is entered.
TEST(Host, StepCgroupsToEnterAreTheStepsBelowJobLevelMemberships) {
    const std::string cgroup =
        "9:name=systemd:/\n6:freezer:/slurm_vm/uid_1001/job_2\n5:devices:/\n"
        "4:memory:/slurm_vm/uid_1001/job_2/step_0\n3:cpuset:/slurm_vm/uid_1001/job_2/step_0\n0::/\n";
    const std::string mountinfo =
        "30 25 0:26 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"
        "32 25 0:28 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n";
    EXPECT_EQ(step_cgroups_to_enter(cgroup, mountinfo, 2, "0"),
              std::vector<std::string>{"/sys/fs/cgroup/freezer/slurm_vm/uid_1001/job_2/step_0"});
    // Another job's cgroup, a job id that only ends the same, a named hierarchy: nothing.
    EXPECT_TRUE(step_cgroups_to_enter(cgroup, mountinfo, 3, "0").empty());
    EXPECT_TRUE(step_cgroups_to_enter("6:freezer:/slurm_vm/uid_1001/job_12\n", mountinfo, 2, "0").empty());
    EXPECT_TRUE(step_cgroups_to_enter("1:name=x:/slurm_vm/uid_1001/job_2\n",
                                      "40 25 0:30 / /sys/fs/cgroup/x rw - cgroup cgroup rw,name=x\n", 2, "0")
                    .empty());
    // A hierarchy not mounted whole (a bind of a sub-tree) is not written to.
    EXPECT_TRUE(step_cgroups_to_enter(
                    "6:freezer:/slurm_vm/uid_1001/job_2\n",
                    "32 25 0:28 /slurm_vm /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n", 2, "0")
                    .empty());
}

TEST(Host, StepShareFromTheFreezerWhereTheWholeStepIs) {
    const std::string cgroup =
        "4:memory:/slurm_vm/uid_1001/job_9/step_0/task_1\n3:cpuset:/slurm_vm/uid_1001/job_9/step_0\n"
        "6:freezer:/slurm_vm/uid_1001/job_9/step_0\n0::/\n";
    const std::string mountinfo =
        "30 25 0:26 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"
        "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "32 25 0:28 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n";
    auto sh = step_share(cgroup, mountinfo, "");
    ASSERT_TRUE(sh);
    EXPECT_EQ(sh->cgroup_dir, "/sys/fs/cgroup/freezer/slurm_vm/uid_1001/job_9/step_0");
    EXPECT_EQ(sh->cgroup_line, "6:freezer:/slurm_vm/uid_1001/job_9/step_0");
    EXPECT_FALSE(sh->tasks_below);
    // Only memory: the ranks are in task_N below the step.
    sh = step_share("4:memory:/slurm_vm/uid_1001/job_9/step_0/task_1\n", mountinfo, "");
    ASSERT_TRUE(sh);
    EXPECT_EQ(sh->cgroup_dir, "/sys/fs/cgroup/memory/slurm_vm/uid_1001/job_9/step_0");
    EXPECT_EQ(sh->cgroup_line, "4:memory:/slurm_vm/uid_1001/job_9/step_0");
    EXPECT_TRUE(sh->tasks_below);
    // Not a step (the job's cgroup, a user-made one below the step), or not mounted whole.
    EXPECT_FALSE(step_share("6:freezer:/slurm_vm/uid_1001/job_9\n", mountinfo, ""));
    EXPECT_FALSE(step_share("6:freezer:/slurm_vm/uid_1001/job_9/step_0/fake\n", mountinfo, ""));
    EXPECT_FALSE(step_share("6:freezer:/slurm_vm/uid_1001/job_9/step_0\n",
                            "32 25 0:28 /slurm_vm /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n",
                            ""));
    EXPECT_FALSE(step_share("6:freezer:/slurm_vm/uid_1001/job_9/step_0\n", "", ""));
}

}  // namespace
}  // namespace socker::host
