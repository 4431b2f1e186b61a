// make_spec: LaunchPlan -> ContainerSpec, pure.
#include <gtest/gtest.h>

#include <algorithm>

#include "base/error.hpp"
#include "launcher/plan.hpp"

namespace socker::launcher {
namespace {

LaunchPlan input() {
    LaunchPlan in;
    in.image_ref = "demo";
    in.command = {"/opt/probe"};
    in.id.uid = 1001;
    in.id.gid = 1001;
    in.id.groups = {1001};
    in.id.name = "alice";
    in.id.home = "/home/alice";
    in.image.id = std::string(64, 'a');
    in.image.layers = {std::string(64, 'b')};
    in.layer_dirs = {"/store/layers/bbb"};
    in.env = {
        {"PMIX_GDS_MODULE", "ds21,ds12,hash"}, {"PATH", "/host/only/bin:/usr/bin"}, {"SLURM_PROCID", "0"}};
    in.pmix_dirs = {{"/var/spool/slurmd/pmix.3.0", true}};
    in.host_cwd = "/home/alice/run";
    in.group_names = {{1001, "alice"}};
    in.bind_allowed_prefixes = {"/home", "/scratch", "/tmp", "/work"};
    in.denied_destinations = {"/", "/proc", "/sys", "/dev"};
    return in;
}

const MountOp* find(const ContainerSpec& s, const std::string& target) {
    for (const auto& m : s.mounts)
        if (m.target == target) return &m;
    return nullptr;
}

TEST(Plan, UserStoreImagesAreMarkedForMountingAsTheUser) {
    LaunchPlan in = input();
    EXPECT_FALSE(make_spec(in).layers_owned_by_user);
    in.user_store = true;
    in.layer_dirs = {"/home/alice/.local/share/socker-mpi/images/layers/bbb"};
    const ContainerSpec s = make_spec(in);
    EXPECT_TRUE(s.layers_owned_by_user);
    EXPECT_EQ(s.layers, in.layer_dirs);
    EXPECT_NE(to_json(s).find("\"layers_owned_by_user\": true"), std::string::npos);
}

TEST(Plan, SharesWhatMpiNeedsAtTheSamePaths) {
    auto s = make_spec(input());
    ASSERT_TRUE(find(s, "/dev/shm"));
    EXPECT_EQ(find(s, "/dev/shm")->source, "/dev/shm");
    auto* pmix = find(s, "/var/spool/slurmd/pmix.3.0");
    ASSERT_TRUE(pmix) << "PMIx server dir must be bound at the same path";
    EXPECT_EQ(pmix->check, SourceCheck::OwnedByUser);
    EXPECT_FALSE(pmix->within_prefixes) << "Slurm's own: where Slurm put it";
    ASSERT_TRUE(find(s, "/proc"));
    EXPECT_EQ(find(s, "/proc")->kind, MountKind::Proc);
    EXPECT_EQ(find(s, "/home/alice")->check, SourceCheck::AsUser);
}

TEST(Plan, EveryUserControlledSourceIsCheckedAsTheUser) {
    auto in = input();
    in.binds = {{"/scratch/x", "/data", true}};
    in.pmix_dirs.push_back({"/scratch/alice/ompi.vm.1001", false});
    in.slurm_appdir = "/local/spmix_appdir_1001_3.0";
    auto s = make_spec(in);
    for (const auto& m : s.mounts) {
        if (m.kind != MountKind::Bind) continue;
        bool launcher_chosen = m.source == "/sys" || m.source.rfind("/dev/", 0) == 0 || m.source == "/tmp" ||
                               m.source.rfind("/etc/", 0) == 0;
        if (!launcher_chosen) {
            EXPECT_NE(m.check, SourceCheck::Trusted) << m.source;
        }
        EXPECT_TRUE(m.nosuid) << m.target;
    }
    auto* d = find(s, "/data");
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->user_bind);
    EXPECT_TRUE(d->read_only);
    EXPECT_TRUE(d->nodev);
    EXPECT_TRUE(d->within_prefixes);
    auto* session = find(s, "/scratch/alice/ompi.vm.1001");
    ASSERT_TRUE(session);
    EXPECT_TRUE(session->within_prefixes) << "a session dir outside Slurm's: checked like a user bind";
    EXPECT_EQ(session->check, SourceCheck::OwnedByUser);
    ASSERT_TRUE(find(s, "/local/spmix_appdir_1001_3.0"));
    EXPECT_EQ(find(s, "/local/spmix_appdir_1001_3.0")->check, SourceCheck::OwnedByUser);
}

TEST(Plan, EnvironmentImagePathAndPmixMapping) {
    auto in = input();
    in.image.config.env = {"PATH=/opt/img/bin:/usr/bin", "PMIX_RANK=7", "FOO=bar"};
    in.env_set = {{"FOO", "mine"}};
    in.binding_env = {{"OMP_NUM_THREADS", "4"}};
    auto s = make_spec(in);
    EXPECT_EQ(s.env.at("PATH"), "/opt/img/bin:/usr/bin");
    EXPECT_EQ(s.env.at("FOO"), "mine") << "-e last";
    EXPECT_FALSE(s.env.count("PMIX_RANK")) << "image may not override launcher variables";
    EXPECT_EQ(s.env.at("PMIX_MCA_gds"), "ds21,ds12,hash");
    EXPECT_EQ(s.env.at("HOME"), "/home/alice");
    EXPECT_EQ(s.env.at("USER"), "alice");
    EXPECT_EQ(s.env.at("OMP_NUM_THREADS"), "4");
    EXPECT_EQ(s.path, (std::vector<std::string>{"/opt/img/bin", "/usr/bin"}));
}

TEST(Plan, CommandFromImageWhenNoneGiven) {
    auto in = input();
    in.command.clear();
    in.image.config.entrypoint = {"/entry"};
    in.image.config.cmd = {"--default"};
    EXPECT_EQ(make_spec(in).argv, (std::vector<std::string>{"/entry", "--default"}));
    in.command = {"x"};
    EXPECT_EQ(make_spec(in).argv, (std::vector<std::string>{"/entry", "x"}));
    in.image.config = {};
    in.command.clear();
    try {
        make_spec(in);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Usage);
    }
}

TEST(Plan, WorkingDirectory) {
    auto in = input();
    EXPECT_EQ(make_spec(in).cwd, "/home/alice/run");
    in.host_cwd = "/opt/elsewhere";  // not bound (validate() did not ask for it)
    in.image.config.working_dir = "/work";
    auto s = make_spec(in);
    EXPECT_EQ(s.cwd, "/work");
    EXPECT_FALSE(find(s, "/opt/elsewhere"));
    in.host_cwd = "/scratch/job";
    in.bind_cwd = true;
    s = make_spec(in);
    EXPECT_EQ(s.cwd, "/scratch/job");
    const MountOp* w = find(s, "/scratch/job");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->check, SourceCheck::AsUser);
    // Mounted from the very directory the rank runs in ("."), and checked where it really is.
    EXPECT_TRUE(w->source_is_cwd);
    EXPECT_TRUE(w->within_prefixes);
    // No working directory (deleted): nothing bound, the image's WorkingDir.
    in.host_cwd = "";
    s = make_spec(in);
    EXPECT_EQ(s.cwd, "/work");
    EXPECT_FALSE(find(s, "/scratch/job"));
    in.workdir = "/opt";
    EXPECT_EQ(make_spec(in).cwd, "/opt") << "-w wins";
}

TEST(Plan, ProcLikeTheHostsProc) {
    auto in = input();
    in.proc_options = "hidepid=invisible";
    EXPECT_EQ(find(make_spec(in), "/proc")->data, "hidepid=invisible");
}

TEST(Plan, UmaskLockAndOverlaySourceForTheExecutor) {
    auto in = input();
    in.umask = 077;
    in.store_lock = "/run/socker-mpi/store-x.lock";
    in.image.layers = {std::string(64, 'b'), "0123456789abcdef" + std::string(48, 'c')};
    const ContainerSpec s = make_spec(in);
    EXPECT_EQ(s.umask, 077u);
    EXPECT_EQ(s.store_lock, "/run/socker-mpi/store-x.lock");
    EXPECT_EQ(s.rootfs_source, "socker-mpi:bbbbbbbbbbbbbbbb,0123456789abcdef");
}

TEST(Plan, PasswdAndGroupFiles) {
    auto in = input();
    auto s = make_spec(in);
    auto* pw = find(s, "/etc/passwd");
    ASSERT_TRUE(pw);
    EXPECT_NE(pw->data.find("alice:x:1001:1001::/home/alice:"), std::string::npos);
    auto* gr = find(s, "/etc/group");
    ASSERT_TRUE(gr);
    EXPECT_NE(gr->data.find("alice:x:1001:"), std::string::npos);
}

TEST(Plan, DevicesAreBoundWithDeviceAccess) {
    auto in = input();
    in.devices = {"/dev/infiniband/uverbs0"};
    auto s = make_spec(in);
    auto* d = find(s, "/dev/infiniband/uverbs0");
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->nodev);
    EXPECT_TRUE(d->nosuid);
    EXPECT_EQ(d->check, SourceCheck::Trusted);
}

TEST(Plan, DryRunJsonIsDeterministic) {
    auto a = to_json(make_spec(input()));
    auto b = to_json(make_spec(input()));
    EXPECT_EQ(a, b);
    EXPECT_NE(a.find("\"owned-by-user\""), std::string::npos);
}

}  // namespace
}  // namespace socker::launcher
