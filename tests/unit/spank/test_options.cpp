#include <gtest/gtest.h>

#include "base/error.hpp"
#include "spank/options.hpp"

namespace socker::spank {
namespace {

ContainerOptions given(std::initializer_list<std::pair<Opt, const char*>> opts) {
    ContainerOptions o;
    for (const auto& [opt, v] : opts) set_option(o, opt, v);
    return o;
}

TEST(SpankOptions, PyxisNamesAreRegistered) {
    std::vector<std::string> names;
    for (const auto& o : option_table()) names.push_back(o.name);
    for (const char* n : {"container-image", "container-mounts", "container-workdir", "container-env",
                          "container-mount-home", "no-container-mount-home", "container-entrypoint",
                          "no-container-entrypoint", "container-bind-policy", "container-dry-run"})
        EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
}

TEST(SpankOptions, AnOptionWithoutAnImageIsRefusedOnTheCommandLine) {
    EXPECT_EQ(check_command_line({}), "");
    EXPECT_EQ(check_command_line(given({{Opt::Image, "demo"}, {Opt::Workdir, "/opt"}})), "");
    EXPECT_NE(check_command_line(given({{Opt::Workdir, "/opt"}})), "");
    EXPECT_NE(check_command_line(given({{Opt::NoMountHome, nullptr}})), "");
    EXPECT_NE(check_command_line(given({{Opt::Image, ""}})), "");
}

TEST(SpankOptions, CommandLineWinsThenSockerThenPyxisVariables) {
    const EnvMap env = {{"PYXIS_CONTAINER_IMAGE", "pyxis-img"},
                        {"PYXIS_CONTAINER_WORKDIR", "/p"},
                        {"SOCKER_CONTAINER_WORKDIR", "/s"},
                        {"PYXIS_CONTAINER_MOUNT_HOME", "0"}};
    ContainerOptions o = with_environment({}, env);
    EXPECT_EQ(o.image, "pyxis-img");
    EXPECT_EQ(o.workdir, "/s");
    EXPECT_EQ(o.mount_home, false);
    o = with_environment(given({{Opt::Image, "cli"}, {Opt::MountHome, nullptr}}), env);
    EXPECT_EQ(o.image, "cli");
    EXPECT_EQ(o.mount_home, true);
    EXPECT_THROW(
        with_environment({}, {{"PYXIS_CONTAINER_IMAGE", "x"}, {"PYXIS_CONTAINER_ENTRYPOINT", "maybe"}}),
        Error);
    EXPECT_EQ(
        with_environment({}, {{"SOCKER_CONTAINER_IMAGE", "x"}, {"SOCKER_CONTAINER_DRY_RUN", "yes"}}).dry_run,
        true);
    // No image anywhere: the other variables are not read (a native srun stays untouched).
    ContainerOptions none;
    EXPECT_NO_THROW(none = with_environment(
                        {}, {{"PYXIS_CONTAINER_ENTRYPOINT", "maybe"}, {"PYXIS_CONTAINER_WORKDIR", "/x"}}));
    EXPECT_FALSE(none.entrypoint);
    EXPECT_FALSE(none.workdir);
}

TEST(SpankOptions, RequestFromTheOptions) {
    const EnvMap env = {{"OMP_NUM_THREADS", "4"}};
    const RunRequest r = to_request(given({{Opt::Image, "demo"},
                                           {Opt::Mounts, "/scratch/run1:/data:ro,/tmp/x"},
                                           {Opt::Workdir, "/opt"},
                                           {Opt::Env, "OMP_NUM_THREADS,UNSET_ONE"},
                                           {Opt::BindPolicy, "core"},
                                           {Opt::NoMountHome, nullptr}}),
                                    {"./solver", "-n", "3"}, env);
    EXPECT_EQ(r.image, "demo");
    EXPECT_EQ(r.command, (std::vector<std::string>{"./solver", "-n", "3"}));
    ASSERT_EQ(r.binds.size(), 2u);
    EXPECT_EQ(r.binds[0].source, "/scratch/run1");
    EXPECT_EQ(r.binds[0].target, "/data");
    EXPECT_TRUE(r.binds[0].read_only);
    EXPECT_EQ(r.binds[1].target, "/tmp/x");
    EXPECT_FALSE(r.binds[1].read_only);
    EXPECT_EQ(r.workdir, "/opt");
    EXPECT_EQ(r.env_set, (std::vector<std::string>{"OMP_NUM_THREADS=4"}));  // an unset name is skipped
    ASSERT_TRUE(r.placement.bind);
    EXPECT_FALSE(r.mount_home);
    EXPECT_FALSE(r.entrypoint);  // Pyxis's default: the command alone
    EXPECT_FALSE(r.dry_run);
}

TEST(SpankOptions, BadValuesAreUsageErrorsNamingTheOption) {
    auto code_and_message = [](const ContainerOptions& o) -> std::pair<Exit, std::string> {
        try {
            to_request(o, {"x"}, {});
        } catch (const Error& e) {
            return {e.code(), e.what()};
        }
        return {Exit::Ok, ""};
    };
    for (const auto& [o, needle] : std::vector<std::pair<ContainerOptions, std::string>>{
             {given({{Opt::Image, "demo"}, {Opt::Mounts, "relative:/x"}}),
              "--container-mounts 'relative:/x'"},
             {given({{Opt::Image, "demo"}, {Opt::Mounts, "/a:/b:rx"}}), "--container-mounts '/a:/b:rx'"},
             {given({{Opt::Image, "demo"}, {Opt::Workdir, "opt"}}), "--container-workdir 'opt'"},
             {given({{Opt::Image, "demo"}, {Opt::Env, "A=1"}}), "--container-env 'A=1'"},
             {given({{Opt::Image, "demo"}, {Opt::BindPolicy, "sideways"}}),
              "--container-bind-policy 'sideways'"},
             {given({}), "--container-image"}}) {
        const auto [code, msg] = code_and_message(o);
        EXPECT_EQ(code, Exit::Usage) << needle;
        EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
}

TEST(SpankOptions, TaskEnvironmentCarriesSlurmsIds) {
    TaskIds ids;
    ids.job = 12;
    ids.step = 3;
    ids.global = 5;
    ids.local = 1;
    ids.node = 2;
    ids.total = 8;
    const EnvMap e = task_env({{"SLURM_PROCID", "forged"}, {"KEEP", "1"}}, ids);
    EXPECT_EQ(e.at("SLURM_PROCID"), "5");
    EXPECT_EQ(e.at("SLURM_LOCALID"), "1");
    EXPECT_EQ(e.at("SLURM_NODEID"), "2");
    EXPECT_EQ(e.at("SLURM_JOB_ID"), "12");
    EXPECT_EQ(e.at("SLURM_STEP_ID"), "3");
    EXPECT_EQ(e.at("SLURM_STEP_NUM_TASKS"), "8");
    EXPECT_EQ(e.at("KEEP"), "1");
}

}  // namespace
}  // namespace socker::spank

namespace socker::spank {
namespace {

TEST(SpankOptions, ContainerMpiIsTheLaunchersMpi) {
    ContainerOptions o;
    set_option(o, Opt::Image, "mpi-mpich");
    EXPECT_FALSE(to_request(o, {"./a"}, {}).mpi);  // the admin's default
    set_option(o, Opt::Mpi, "cray");
    EXPECT_EQ(to_request(o, {"./a"}, {}).mpi, "cray");
    ContainerOptions from_env =
        with_environment({}, {{"PYXIS_CONTAINER_IMAGE", "x"}, {"SOCKER_CONTAINER_MPI", "none"}});
    EXPECT_EQ(to_request(from_env, {"./a"}, {}).mpi, "none");
    ContainerOptions empty;
    set_option(empty, Opt::Image, "x");
    set_option(empty, Opt::Mpi, "");
    EXPECT_THROW(to_request(empty, {"./a"}, {}), Error);
    ContainerOptions no_image;
    set_option(no_image, Opt::Mpi, "default");
    EXPECT_FALSE(check_command_line(no_image).empty());  // --container-mpi alone would run natively
}

}  // namespace
}  // namespace socker::spank
