// Engine mode's and Socker's admin keys, Socker's command line, and the step cgroup the engine
// puts a rank's container in.
#include <gtest/gtest.h>

#include "base/error.hpp"
#include "src/host.hpp"
#include "src/policy.hpp"
#include "src/socker.hpp"

namespace socker {
namespace {

TEST(EnginePolicy, DefaultInPlacePerNodeDockerAndTheRequestDecides) {
    const Policy p = parse_policy("docker_socket = /run/d.sock\n[node:gpu*]\nengine = docker\n", "t");
    EXPECT_EQ(p.docker_socket, "/run/d.sock");
    EXPECT_EQ(engine_for(p, std::nullopt, "n1"), "inplace");
    EXPECT_EQ(engine_for(p, std::nullopt, "gpu3"), "docker");
    EXPECT_EQ(engine_for(p, std::string("inplace"), "gpu3"), "inplace");
    EXPECT_EQ(engine_for(p, std::string("docker"), "n1"), "docker");
}

TEST(EnginePolicy, DockerWithoutASocketIsRefused) {
    const Policy p = parse_policy("", "t");
    try {
        engine_for(p, std::string("docker"), "n1");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Refused);
        EXPECT_NE(std::string(e.what()).find("docker_socket"), std::string::npos) << e.what();
    }
}

TEST(EnginePolicy, BadValuesNameTheLine) {
    EXPECT_THROW(parse_policy("engine = podman\n", "t"), Error);
    EXPECT_THROW(parse_policy("docker_socket = relative.sock\n", "t"), Error);
    EXPECT_THROW(parse_policy("socker_images_file = images.txt\n", "t"), Error);
    try {
        parse_policy("\n[node:x]\nengine = rkt\n", "/etc/c.conf");
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/etc/c.conf:3"), std::string::npos) << e.what();
    }
}

TEST(SockerPolicy, AllowListFromTheConfigAndSockersFileFormat) {
    const Policy p = parse_policy("socker_images = demo, lab/solver:2\n", "t");
    EXPECT_TRUE(p.socker_restricted());
    EXPECT_EQ(p.socker_images, (std::vector<std::string>{"demo", "lab/solver:2"}));
    EXPECT_FALSE(parse_policy("", "t").socker_restricted());
    EXPECT_EQ(parse_socker_images("# Socker's images\ndemo\n\n  ubuntu:22.04  # LTS\nmpi-mpich\n"),
              (std::vector<std::string>{"demo", "ubuntu:22.04", "mpi-mpich"}));
}

bool no_dirs(const std::string&) { return false; }
bool all_dirs(const std::string&) { return true; }

TEST(SockerCommandLine, SockersVerbs) {
    const Policy pol = parse_policy("", "t");
    EXPECT_TRUE(
        std::holds_alternative<SockerImagesRequest>(parse_socker_command_line({"images"}, {}, pol, no_dirs)));
    EXPECT_TRUE(std::get<VersionRequest>(parse_socker_command_line({"--version"}, {}, pol, no_dirs)).socker);
    EXPECT_TRUE(std::get<VersionRequest>(parse_socker_command_line({"-v"}, {}, pol, no_dirs)).socker);
    EXPECT_THROW(parse_socker_command_line({"-h"}, {}, pol, no_dirs), HelpRequested);
    for (auto bad :
         std::vector<std::vector<std::string>>{{}, {"ps"}, {"run"}, {"images", "x"}, {"--version", "x"}})
        EXPECT_THROW(parse_socker_command_line(bad, {}, pol, no_dirs), Error);
}

TEST(SockerCommandLine, RunPassesTheCommandVerbatimWithSockersBinds) {
    const Policy pol = parse_policy("", "t");
    const EnvMap env = {{"SLURM_JOB_ID", "5"}, {"SCRATCH", "/scratch/alice"}, {"HOME", "/home/alice"}};
    auto r = std::get<RunRequest>(
        parse_socker_command_line({"run", "demo", "sh", "-c", "echo hi; rm -rf $(pwd)"}, env, pol, all_dirs));
    EXPECT_TRUE(r.socker);
    EXPECT_EQ(r.image, "demo");
    EXPECT_EQ(r.command, (std::vector<std::string>{"sh", "-c", "echo hi; rm -rf $(pwd)"}));
    ASSERT_EQ(r.binds.size(), 2u);
    EXPECT_EQ(r.binds[0].target, "/work");
    EXPECT_EQ(r.binds[1].target, "/scratch/alice");
    // Outside a job, no $SCRATCH; directories that are not there are not bound.
    EXPECT_TRUE(std::get<RunRequest>(parse_socker_command_line({"run", "demo", "id"},
                                                               {{"SCRATCH", "/scratch/a"}}, pol, no_dirs))
                    .binds.empty());
    // A prefix the admin does not allow is not bound either.
    const Policy narrow = parse_policy("bind_allowed_prefixes = /home\n", "t");
    EXPECT_TRUE(std::get<RunRequest>(parse_socker_command_line({"run", "demo", "id"}, env, narrow, all_dirs))
                    .binds.empty());
    // A privilege option before the image: refused as such.
    try {
        parse_socker_command_line({"run", "--privileged", "demo", "id"}, env, pol, all_dirs);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Refused);
    }
}

TEST(EngineCgroup, TheStepOfTheMemoryControllerTaskStripped) {
    const std::string cg =
        "9:name=systemd:/\n8:pids:/\n6:freezer:/slurm_n1/uid_1001/job_91/step_0\n5:devices:/slurm_n1/"
        "uid_1001/job_91/step_0\n"
        "4:memory:/slurm_n1/uid_1001/job_91/step_0/task_0\n3:cpuset:/slurm_n1/uid_1001/job_91/step_0\n1:cpu:/"
        "\n0::/\n";
    EXPECT_EQ(host::step_cgroup_parent(cg, ""), "/slurm_n1/uid_1001/job_91/step_0");
    EXPECT_EQ(host::step_cgroup_parent("4:memory:/user.slice\n3:cpuset:/\n", ""), "");
    EXPECT_EQ(host::step_cgroup_parent("4:memory:/site/slurm/uid_1/job_2/step_batch\n", "/site"),
              "/site/slurm/uid_1/job_2/step_batch");
}

}  // namespace
}  // namespace socker

namespace socker {
namespace {

TEST(EngineCgroup, LeftoversOnlyInTheHierarchiesSlurmDoesNotUse) {
    const std::string cg =
        "8:pids:/\n6:freezer:/slurm_n1/uid_1001/job_91/step_0\n4:memory:/slurm_n1/uid_1001/job_91/step_0/"
        "task_0\n"
        "2:cpu,cpuacct:/\n0::/\n";
    const std::string mi =
        "30 25 0:26 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids\n"
        "31 25 0:27 / /sys/fs/cgroup/freezer rw,nosuid - cgroup cgroup rw,freezer\n"
        "32 25 0:28 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
        "33 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
        "34 25 0:30 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n";
    const std::string parent = host::step_cgroup_parent(cg, "");
    EXPECT_EQ(host::engine_cgroup_leftovers(cg, mi, "", parent),
              (std::vector<std::string>{"/sys/fs/cgroup/pids/slurm_n1/uid_1001",
                                        "/sys/fs/cgroup/cpu,cpuacct/slurm_n1/uid_1001",
                                        "/sys/fs/cgroup/unified/slurm_n1/uid_1001"}));
    EXPECT_TRUE(host::engine_cgroup_leftovers(cg, mi, "", "").empty());  // not in a step: nothing
}

}  // namespace
}  // namespace socker
