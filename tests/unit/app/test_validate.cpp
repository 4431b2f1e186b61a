// validate(): every policy decision of a launch, and each refusal, as values; then the chain
// validate -> plan_launch -> make_spec on what it decided.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "base/error.hpp"
#include "launcher/plan.hpp"
#include "src/validate.hpp"

namespace socker {
namespace {

struct Launch {
    RunRequest r;
    EnvMap env = {{"PMIX_SERVER_TMPDIR", "/var/spool/slurmd/pmix.3.0/"},
                  {"PMIX_DSTORE_21_BASE_PATH", "/var/spool/slurmd/pmix.3.0//pmix_dstor_ds21_1"},
                  {"PMIX_GDS_MODULE", "ds21,ds12,hash"},
                  {"PATH", "/host/only/bin:/usr/bin"},
                  {"LD_PRELOAD", "/evil.so"},
                  {"SLURM_PROCID", "0"}};
    pmi::LaunchContext ctx;
    Policy pol;
    host::HostFacts host;
    Launch() {
        r.image = "demo";
        r.command = {"/opt/probe"};
        ctx.step = pmi::SlurmStep{1001, 3, "0", ""};
        host.id.uid = 1001;
        host.id.gid = 1001;
        host.id.groups = {1001};
        host.id.name = "alice";
        host.id.home = "/home/alice";
        host.group_names = {{1001, "alice"}};
        host.cwd = "/home/alice/run";
        host.slurm.spool = "/var/spool/slurmd";
        host.slurm.tmpfs = "/tmp";
    }
    ValidatedRequest validated() const { return validate(r, env, ctx, pol, host); }
    launcher::ContainerSpec spec() const {
        ResolvedImage img;
        img.record.id = std::string(64, 'a');
        img.record.layers = {std::string(64, 'b')};
        img.store_root = "/store";
        return launcher::make_spec(
            plan_launch(validated(), img, host, {}, pol, 022, "/run/socker-mpi/x.lock"));
    }
};

const launcher::MountOp* find(const launcher::ContainerSpec& s, const std::string& target) {
    for (const auto& m : s.mounts)
        if (m.target == target) return &m;
    return nullptr;
}

// The exit code and message of a refusal (Exit::Ok when none).
std::pair<Exit, std::string> outcome(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return {e.code(), e.what()};
    }
    return {Exit::Ok, ""};
}

void expect_refused(const Launch& l, Exit code, const std::string& needle) {
    const auto [c, msg] = outcome([&] { l.validated(); });
    EXPECT_EQ(c, code) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
}

TEST(Validate, WhereTheRankIs) {
    Launch l;
    EXPECT_EQ(outcome([&] { l.validated(); }).first, Exit::Ok);
    auto forged = l;
    forged.ctx.cgroup_problem = "cgroup /slurm/uid_1/job_2/step_0/x is below a Slurm step's cgroup";
    expect_refused(forged, Exit::Refused, "below a Slurm step's cgroup");
    auto no_step = l;
    no_step.ctx.step.reset();
    expect_refused(no_step, Exit::Refused, "not inside a Slurm job step");
    no_step.pol.require_slurm_step = false;
    EXPECT_EQ(outcome([&] { no_step.validated(); }).first, Exit::Refused)
        << "Slurm's PMIx dir outside a step";
    no_step.env.erase("PMIX_SERVER_TMPDIR");
    no_step.env.erase("PMIX_DSTORE_21_BASE_PATH");
    EXPECT_EQ(outcome([&] { no_step.validated(); }).first, Exit::Ok);
    auto other = l;
    other.ctx.step->uid = 1002;
    expect_refused(other, Exit::Refused, "belongs to uid 1002");
    auto pmi = l;
    pmi.env["PMI_FD"] = "5";
    expect_refused(pmi, Exit::Refused, "PMI_FD=5`: not an open socket");
    pmi.host.pmi_fd_is_socket = true;
    EXPECT_EQ(outcome([&] { pmi.validated(); }).first, Exit::Ok);
}

TEST(Validate, ImageNamesAndFiles) {
    Launch l;
    l.r.image = "lab/../../x";
    expect_refused(l, Exit::Usage, "invalid image name");
    l.r.image = "./app.tar";
    const ValidatedRequest v = l.validated();
    EXPECT_FALSE(v.name) << "a file";
    l.pol.user_store = false;
    expect_refused(l, Exit::Refused, "user_store = no");
}

TEST(Validate, Devices) {
    Launch l;
    l.pol.devices = {"/dev/infiniband/*"};
    l.host.devices.devices = {"/dev/infiniband/uverbs0"};
    l.r.devices = {"/dev/infiniband/uverbs0"};
    EXPECT_EQ(l.validated().devices, (std::vector<std::string>{"/dev/infiniband/uverbs0"}));
    l.r.devices = {"/dev/mem"};
    expect_refused(l, Exit::Refused, "not in the admin's device allow-list");
    l.r.devices = {"/dev/infiniband/uverbs9"};
    expect_refused(l, Exit::Io, "not present on this node");
    l.host.devices = {{}, "the step's devices cgroup list /x cannot be read"};
    l.r.devices = {"/dev/infiniband/uverbs0"};
    expect_refused(l, Exit::Refused, "no device is passed: the step's devices cgroup list");
}

TEST(Validate, UserBindsRefusedWhenAdminDisablesThem) {
    Launch l;
    l.r.binds = {{"/scratch/x", "/data", false}};
    EXPECT_EQ(l.validated().binds.size(), 1u);
    l.pol.user_binds = false;
    expect_refused(l, Exit::Refused, "user binds are disabled by the admin");
    l.pol.user_binds = true;
    l.r.binds = {{"/scratch/x", "/proc/1", false}};
    expect_refused(l, Exit::Refused, "destination /proc/1 is not allowed");
    l.r.binds = {{"/scratch/x", "/etc/../usr", false}};
    expect_refused(l, Exit::Refused, "destination /usr is not allowed");
}

TEST(Validate, EnvironmentDenyList) {
    Launch l;
    l.r.env_set = {"A=1", "B==2"};
    const ValidatedRequest v = l.validated();
    EXPECT_FALSE(v.env.count("LD_PRELOAD"));
    EXPECT_EQ(v.env.at("PATH"), "/host/only/bin:/usr/bin");
    EXPECT_EQ(v.env_set, (std::vector<std::pair<std::string, std::string>>{{"A", "1"}, {"B", "=2"}}));
    l.r.env_set = {"=x"};
    expect_refused(l, Exit::Usage, "expected KEY=VALUE");
    const auto s = Launch().spec();
    EXPECT_FALSE(s.env.count("LD_PRELOAD"));
}

TEST(Validate, PmixDirectoriesOnlyWhereSlurmOrMpirunPutThem) {
    PmixPlaces at;
    at.slurm_server_dir = "/var/spool/slurmd/pmix.3.0";
    at.bind_allowed_prefixes = {"/home", "/scratch", "/tmp"};
    at.user_binds = true;
    // Slurm's own server directory: one bind, owned by the user.
    auto b = pmix_binds({{"PMIX_SERVER_TMPDIR", "/var/spool/slurmd/pmix.3.0/"},
                         {"PMIX_DSTORE_21_BASE_PATH", "/var/spool/slurmd/pmix.3.0//pmix_dstor_ds21_1"}},
                        at);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].dir, "/var/spool/slurmd/pmix.3.0");
    EXPECT_TRUE(b[0].slurm_server_dir);
    // mpirun's session directory below /tmp: nothing to bind.
    EXPECT_TRUE(pmix_binds({{"PMIX_SERVER_TMPDIR", "/tmp/ompi.vm.1001/pid.9"}}, at).empty());
    // Another step's directory, or any other place outside the prefixes: refused, naming it.
    auto refused = [&](const EnvMap& e, const PmixPlaces& p, const std::string& needle) {
        const auto [c, msg] = outcome([&] { pmix_binds(e, p); });
        EXPECT_EQ(c, Exit::Refused) << e.begin()->second;
        EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    };
    refused({{"PMIX_SERVER_TMPDIR", "/var/spool/slurmd/pmix.4.0"}}, at,
            "PMIX_SERVER_TMPDIR=/var/spool/slurmd/pmix.4.0");
    refused({{"PMIX_DSTORE_ESH_BASE_PATH", "/var/tmp/x"}}, at, "outside the allowed bind sources");
    refused({{"PMIX_SERVER_TMPDIR", "/root"}}, at, "PMIX_SERVER_TMPDIR=/root");
    // Under the prefixes: a user bind, so only when user binds are allowed; nested ones: the
    // outermost carries them.
    b = pmix_binds({{"OMPI_MCA_orte_top_session_dir", "/scratch/alice/ompi.vm.1001"},
                    {"OMPI_FILE_LOCATION", "/scratch/alice/ompi.vm.1001/pid.9/0/0"},
                    {"PMIX_DSTORE_ESH_BASE_PATH", "relative/ignored"}},
                   at);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].dir, "/scratch/alice/ompi.vm.1001");
    EXPECT_FALSE(b[0].slurm_server_dir);
    at.user_binds = false;
    refused({{"OMPI_MCA_orte_top_session_dir", "/scratch/alice/ompi.vm.1001"}}, at,
            "user binds are disabled");
    // Not in a Slurm step: even a spool-looking directory is refused.
    at.slurm_server_dir.clear();
    refused({{"PMIX_SERVER_TMPDIR", "/var/spool/slurmd/pmix.3.0"}}, at, "not in a Slurm step");
}

TEST(Validate, TheChainSharesWhatMpiNeeds) {
    const auto s = Launch().spec();
    auto* pmix = find(s, "/var/spool/slurmd/pmix.3.0");
    ASSERT_TRUE(pmix) << "PMIx server dir must be bound at the same path";
    EXPECT_EQ(pmix->check, launcher::SourceCheck::OwnedByUser);
    // The dstore path is inside the server dir: one bind covers it.
    EXPECT_FALSE(find(s, "/var/spool/slurmd/pmix.3.0/pmix_dstor_ds21_1"));
    Launch other;
    other.host.slurm.tmpfs = "/local/tmp";
    ASSERT_TRUE(find(other.spec(), "/local/tmp/spmix_appdir_1001_3.0")) << "Slurm PMIx's appdir";
    EXPECT_EQ(s.store_lock, "/run/socker-mpi/x.lock");
}

TEST(Validate, WorkingDirectoryBoundOnlyUnderThePrefixes) {
    Launch l;
    EXPECT_TRUE(l.validated().bind_cwd) << "under /home (make_spec sees it is visible with the home anyway)";
    EXPECT_FALSE(find(l.spec(), "/home/alice/run")) << "no second bind";
    l.pol.bind_allowed_prefixes = {"/scratch"};
    EXPECT_FALSE(l.validated().bind_cwd);
    l.host.cwd = "/opt/elsewhere";
    l.r.workdir.reset();
    EXPECT_FALSE(l.validated().bind_cwd);
    l.host.cwd = "/scratch/job";
    EXPECT_TRUE(l.validated().bind_cwd);
    const auto s = l.spec();
    EXPECT_EQ(s.cwd, "/scratch/job");
    ASSERT_TRUE(find(s, "/scratch/job"));
    EXPECT_TRUE(find(s, "/scratch/job")->source_is_cwd);
    l.host.cwd = "";
    EXPECT_FALSE(l.validated().bind_cwd) << "no working directory";
}

}  // namespace
}  // namespace socker
