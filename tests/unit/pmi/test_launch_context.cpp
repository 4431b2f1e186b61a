#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "pmi/launch_context.hpp"

namespace socker::pmi {
namespace {

std::string slurp(const std::string& name) {
    std::ifstream in(std::string(SOCKER_FIXTURES) + "/env/" + name);
    EXPECT_TRUE(in) << name;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

ProbeInput fixture(const std::string& name, bool pmi_socket = false) {
    return {env_from_text(slurp(name + ".env")), slurp(name + ".cgroup"), pmi_socket, ""};
}

// Captured from `srun --mpi=pmix -n 2` on the dev cluster (rank 1).
TEST(LaunchContext, SrunPmix) {
    auto c = detect(fixture("pmix"));
    EXPECT_EQ(c.flavour, Flavour::SlurmPmix);
    EXPECT_EQ(c.rank, 1);
    EXPECT_EQ(c.size, 2);
    EXPECT_EQ(c.local_rank, 1);
    EXPECT_EQ(c.local_size, 2);
    EXPECT_EQ(c.pmix_namespace.rfind("slurm.pmix.", 0), 0u);
    ASSERT_TRUE(c.step);
    EXPECT_EQ(c.step->uid, 1001);
    EXPECT_EQ(c.step->step, "0");
    EXPECT_EQ(c.trace.front(), "probe slurm+pmix: taken");
}

TEST(LaunchContext, SrunPmi2NeedsAVerifiedSocket) {
    auto c = detect(fixture("pmi2", true));
    EXPECT_EQ(c.flavour, Flavour::SlurmPmi2);
    ASSERT_TRUE(c.pmi_fd);
    EXPECT_EQ(*c.pmi_fd, 13);
    EXPECT_EQ(c.rank, 1);
    // Same environment but PMI_FD is not a socket: PMI2 is rejected, plain Slurm taken.
    auto d = detect(fixture("pmi2", false));
    EXPECT_EQ(d.flavour, Flavour::SlurmPlain);
    EXPECT_FALSE(d.pmi_fd);
    bool said = false;
    for (const auto& t : d.trace)
        said = said || t == "probe slurm+pmi2: rejected (PMI_FD is not an open socket)";
    EXPECT_TRUE(said);
}

TEST(LaunchContext, SrunWithoutMpiPlugin) {
    auto c = detect(fixture("none"));
    EXPECT_EQ(c.flavour, Flavour::SlurmPlain);
    EXPECT_EQ(c.rank, 1);
    EXPECT_EQ(c.local_size, 2);
    ASSERT_TRUE(c.step);
}

TEST(LaunchContext, Mpirun) {
    auto c = detect(fixture("mpirun"));
    EXPECT_EQ(c.flavour, Flavour::OpenMpiMpirun);
    EXPECT_EQ(c.rank, 1);
    EXPECT_EQ(c.size, 2);
    EXPECT_EQ(c.local_rank, 1);
    EXPECT_FALSE(c.step);  // mpirun outside Slurm: no step cgroup
}

TEST(LaunchContext, Singleton) {
    auto c = detect({EnvMap{{"HOME", "/root"}}, "", false, ""});
    EXPECT_EQ(c.flavour, Flavour::Singleton);
    EXPECT_EQ(c.rank, 0);
    EXPECT_EQ(c.size, 1);
    EXPECT_EQ(c.trace.size(), 6u);  // five probes + cgroup line
}

TEST(LaunchContext, FakedJobIdIsIgnoredInFavourOfCgroup) {
    auto in = fixture("pmix");
    in.env["SLURM_JOB_ID"] = "999";
    auto c = detect(in);
    ASSERT_TRUE(c.step);
    EXPECT_NE(c.step->job, 999);
    bool noted = false;
    for (const auto& t : c.trace) noted = noted || t.find("SLURM_JOB_ID=999 ignored") != std::string::npos;
    EXPECT_TRUE(noted);
}

TEST(LaunchContext, CgroupParsing) {
    auto s = step_from_cgroups(parse_proc_cgroup("6:freezer:/slurm_n1/uid_1002/job_17/step_batch\n4:memory:/"
                                                 "slurm_n1/uid_1002/job_17/step_batch/task_0\n"))
                 .step;
    ASSERT_TRUE(s);
    EXPECT_EQ(s->uid, 1002);
    EXPECT_EQ(s->job, 17);
    EXPECT_EQ(s->step, "batch");
    EXPECT_EQ(s->node, "n1");
    auto plain = step_from_cgroups(parse_proc_cgroup("4:memory:/slurm/uid_5/job_6/step_0/task_0\n")).step;
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->node, "");
    EXPECT_EQ(plain->job, 6);
    // Controllers that disagree: no step, and said why.
    auto disagree = step_from_cgroups(parse_proc_cgroup(
        "6:freezer:/slurm_n1/uid_1002/job_17/step_0\n3:cpuset:/slurm_n1/uid_1002/job_18/step_0\n"));
    EXPECT_FALSE(disagree.step);
    EXPECT_NE(disagree.problem.find("different Slurm steps"), std::string::npos);
    EXPECT_FALSE(step_from_cgroups(parse_proc_cgroup("4:memory:/user.slice/job_17/step_0\n")).step);
    // Anchored at the hierarchy root: a Slurm-like path deeper down is not Slurm's (a delegated
    // subtree) unless the admin names the prefix Slurm's cgroups really sit under.
    const auto sub = parse_proc_cgroup("4:memory:/system.slice/slurmd/slurm/uid_5/job_6/step_extern\n");
    EXPECT_FALSE(step_from_cgroups(sub).step);
    EXPECT_TRUE(step_from_cgroups(sub).problem.empty());
    auto prefixed = step_from_cgroups(sub, "/system.slice/slurmd").step;
    ASSERT_TRUE(prefixed);
    EXPECT_EQ(prefixed->step, "extern");
    EXPECT_FALSE(step_from_cgroups(sub, "/system.slice/slurm").step);  // component-wise
    // A step forged from cgroups the user made inside their own step: refused, whatever it
    // names (the outer, real step is not taken either).
    for (const char* forged :
         {"3:cpuset:/slurm_vm/uid_1001/job_99/step_0/slurm/uid_1001/job_424242/step_0\n",
          "4:memory:/slurm_vm/uid_1001/job_99/step_0/task_0/slurm/uid_1001/job_424242/step_0\n",
          "4:memory:/slurm/uid_1/job_2/step_3/slurm_b/uid_4/job_5/step_6\n",
          "4:memory:/slurm/uid_1/job_2/step_3/mine\n", "4:memory:/slurm/uid_1/job_2/step_3/task_x\n"}) {
        const auto f = step_from_cgroups(parse_proc_cgroup(forged));
        EXPECT_FALSE(f.step) << forged;
        EXPECT_NE(f.problem.find("below a Slurm step's cgroup"), std::string::npos) << forged;
    }
    const auto forged_ctx = detect(
        {{}, "3:cpuset:/slurm_vm/uid_1001/job_99/step_0/slurm/uid_1001/job_424242/step_0\n", false, ""});
    EXPECT_FALSE(forged_ctx.step);
    EXPECT_NE(forged_ctx.cgroup_problem.find("job_424242/step_0"), std::string::npos);
    // Not the layout: no step (and never an exception, whatever the numbers).
    for (const char* bad :
         {"4:memory:/slurm_/uid_1/job_2/step_3\n", "4:memory:/xslurm/uid_1/job_2/step_3\n",
          "4:memory:/slurm/uid_/job_2/step_3\n", "4:memory:/slurm/uid_1/job_2x/step_3\n",
          "4:memory:/slurm/uid_1/job_2/step_\n", "4:memory:/slurm/uid_1/job_2/step_A\n",
          "4:memory:/slurm/uid_1/job_2\n", "4:memory:/slurm/uid_99999999999999999999/job_2/step_3\n"}) {
        const auto b = step_from_cgroups(parse_proc_cgroup(bad));
        EXPECT_FALSE(b.step) << bad;
        EXPECT_TRUE(b.problem.empty()) << bad;
    }
}

TEST(LaunchContext, TasksPerNodeGivesLocalSize) {
    EnvMap e = {{"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "7"},
                {"SLURM_LOCALID", "1"}, {"SLURM_NODEID", "2"}, {"SLURM_TASKS_PER_NODE", "3(x2),1"}};
    auto c = detect({e, "", false, ""});
    EXPECT_EQ(c.flavour, Flavour::SlurmPlain);
    EXPECT_EQ(c.local_size, 1);
    e["SLURM_NODEID"] = "1";
    EXPECT_EQ(detect({e, "", false, ""}).local_size, 3);
    // A malformed list gives no local size from it (SLURM_LOCALID+1 style fallbacks aside).
    for (const char* bad : {"3(x2,1", "3(2),1", "x,1", "3(x),1", "(x2)"}) {
        e["SLURM_TASKS_PER_NODE"] = bad;
        EXPECT_NE(detect({e, "", false, ""}).local_size, 3) << bad;
    }
}

TEST(LaunchContext, RankHint) {
    EXPECT_EQ(rank_hint({{"SLURM_PROCID", "3"}}), 3);
    EXPECT_EQ(rank_hint({{"OMPI_COMM_WORLD_RANK", "4"}}), 4);
    EXPECT_FALSE(rank_hint({{"SLURM_PROCID", "x"}}));
}

}  // namespace
}  // namespace socker::pmi
