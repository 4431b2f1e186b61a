// doctor's findings from facts: each problem named with its fix, exit status 1 only for FAIL.
#include <gtest/gtest.h>

#include "src/doctor.hpp"

using namespace socker::doctor;

namespace {

bool has(const std::vector<Finding>& fs, Level l, const std::string& text) {
    for (const auto& f : fs)
        if (f.level == l && (f.what + " " + f.fix).find(text) != std::string::npos) return true;
    return false;
}

const char* kGoodSlurm =
    "ClusterName=dev\n"
    "ProctrackType=proctrack/cgroup   # the step's cgroups\n"
    "TaskPlugin=task/cgroup,task/affinity\n"
    "MpiDefault=pmix\n"
    "TmpFS=/tmp\n"
    "NodeName=vm CPUs=2 TmpFS=/nope State=UNKNOWN\n";

}  // namespace

TEST(Doctor, LauncherFacts) {
    EXPECT_EQ(check_launcher("/usr/bin/socker-mpi", {true, true, 0, 04755}).level, Level::Ok);
    const Finding nosuid = check_launcher("/usr/bin/socker-mpi", {true, true, 0, 0755});
    EXPECT_EQ(nosuid.level, Level::Fail);
    EXPECT_NE(nosuid.what.find("not setuid (0755)"), std::string::npos);
    EXPECT_EQ(nosuid.fix, "chmod 4755 /usr/bin/socker-mpi");
    EXPECT_NE(check_launcher("/x", {true, true, 1000, 04755}).what.find("owned by uid 1000"),
              std::string::npos);
    EXPECT_NE(check_launcher("/x", {true, true, 0, 04777}).what.find("writable by group or others"),
              std::string::npos);
    EXPECT_NE(check_launcher("/x", {}).what.find("not installed"), std::string::npos);
    EXPECT_EQ(check_tools("/t", {true, true, 0, 0755}).level, Level::Ok);
    EXPECT_EQ(check_tools("/t", {true, true, 0, 04755}).level, Level::Fail);
    EXPECT_EQ(check_tools("/t", {true, true, 5, 0755}).level, Level::Fail);
}

TEST(Doctor, SlurmConfGood) {
    const auto fs = check_slurm_conf("slurm.conf", kGoodSlurm, true, "/tmp", true);
    for (const auto& f : fs) EXPECT_EQ(f.level, Level::Ok) << format(f);
    EXPECT_EQ(exit_status(fs), 0);
    EXPECT_EQ(slurm_plugin_dir("PluginDir=/opt/slurm/lib:/other\n"), "/opt/slurm/lib");
    EXPECT_EQ(slurm_plugin_dir(""), "/usr/lib/x86_64-linux-gnu/slurm-wlm");
}

TEST(Doctor, SlurmConfProblemsNamed) {
    const std::string linuxproc =
        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/affinity\nMpiDefault=none\n";
    const auto fs = check_slurm_conf("s.conf", linuxproc, true, "/tmp", true);
    EXPECT_TRUE(has(fs, Level::Fail, "ProctrackType=proctrack/linuxproc"));
    EXPECT_TRUE(has(fs, Level::Fail, "lacks task/cgroup"));
    EXPECT_TRUE(has(fs, Level::Note, "MpiDefault=none"));
    EXPECT_EQ(exit_status(fs), 1);
    EXPECT_TRUE(
        has(check_slurm_conf("s.conf", kGoodSlurm, false, "/tmp", true), Level::Fail, "no mpi_pmix plugin"));
    EXPECT_TRUE(has(check_slurm_conf("s.conf", kGoodSlurm, true, "/scratch/vm", false), Level::Fail,
                    "TmpFS=/scratch/vm does not exist"));
    EXPECT_TRUE(has(check_slurm_conf("s.conf", "ProctrackType=proctrack/cgroup\nTaskPlugin=task/cgroup\n",
                                     true, "/tmp", true),
                    Level::Note, "lacks task/affinity"));
    // Keys are case-insensitive, comments are not settings.
    EXPECT_TRUE(has(check_slurm_conf("s.conf", "proctracktype=proctrack/cgroup\n#TaskPlugin=task/cgroup\n",
                                     true, "/tmp", true),
                    Level::Fail, "TaskPlugin=(unset)"));
}

TEST(Doctor, DevicesNotADeviceFailsAbsentIsANote) {
    const auto fs = check_devices(
        {{"/dev/infiniband/*", 0, {}}, {"/dev/infiniband", 0, {"/dev/infiniband"}}, {"/dev/nvidia*", 2, {}}});
    EXPECT_TRUE(
        has(fs, Level::Fail, "/dev/infiniband: matches /dev/infiniband, which is not a character device"));
    EXPECT_TRUE(has(fs, Level::Fail, "/dev/infiniband/*"));  // the fix names the pattern meant
    EXPECT_TRUE(has(fs, Level::Note, "not on this node (passed where present): /dev/infiniband/*"));
    EXPECT_TRUE(has(fs, Level::Ok, "2 device node(s)"));
    EXPECT_EQ(exit_status(check_devices({{"/dev/xpmem", 0, {}}, {"/dev/kfd", 0, {}}})), 0);
}

TEST(Doctor, FormatAndKernelVersion) {
    EXPECT_EQ(format({Level::Fail, "audit", "syslog at /dev/log: refused", "start rsyslog"}),
              "FAIL  audit     syslog at /dev/log: refused -- fix: start rsyslog");
    EXPECT_EQ(format({Level::Ok, "kernel", "open_tree", ""}), "ok    kernel    open_tree");
    EXPECT_TRUE(kernel_at_least("6.1.0-18-amd64", 5, 11));
    EXPECT_TRUE(kernel_at_least("5.11.0", 5, 11));
    EXPECT_FALSE(kernel_at_least("5.10.0-28-amd64", 5, 11));
    EXPECT_FALSE(kernel_at_least("garbage", 5, 11));
}

TEST(Doctor, SpankPluginLine) {
    const std::string so = "/usr/lib/x86_64-linux-gnu/slurm-wlm/spank_socker.so";
    EXPECT_EQ(plugstack_path("/etc/slurm/slurm.conf", "ClusterName=x\n"), "/etc/slurm/plugstack.conf");
    EXPECT_EQ(plugstack_path("/etc/slurm/slurm.conf", "PlugStackConfig=/opt/ps.conf\n"), "/opt/ps.conf");
    auto f = check_spank({{"/etc/slurm/plugstack.conf", "# stack\nrequired " + so + " config=/etc/x.conf\n"}},
                         so, true);
    EXPECT_EQ(f.level, Level::Ok);
    f = check_spank({{"/etc/slurm/plugstack.conf", "optional " + so + "\n"}}, so, true);
    EXPECT_EQ(f.level, Level::Fail);
    EXPECT_NE(f.fix.find("required"), std::string::npos);
    f = check_spank({{"/etc/slurm/plugstack.conf", "required " + so + "\n"}}, so, false);
    EXPECT_EQ(f.level, Level::Fail);
    EXPECT_NE(f.what.find("every srun fails"), std::string::npos);
    f = check_spank({{"/etc/slurm/plugstack.conf", "#required " + so + "\n"}}, so, true);
    EXPECT_EQ(f.level, Level::Note);
    EXPECT_NE(f.fix.find("required " + so), std::string::npos);
    // In an included file.
    f = check_spank({{"/etc/slurm/plugstack.conf", "include /etc/slurm/plugstack.conf.d/*.conf\n"},
                     {"/etc/slurm/plugstack.conf.d/socker.conf", "required /opt/spank_socker.so\n"}},
                    so, true);
    EXPECT_EQ(f.level, Level::Ok);
    EXPECT_EQ(plugstack_includes("include /a/*.conf\n  # include /b\nrequired x\n"),
              std::vector<std::string>{"/a/*.conf"});
}
