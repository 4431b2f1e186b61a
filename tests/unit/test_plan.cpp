#include <gtest/gtest.h>

#include <algorithm>

#include "error.hpp"
#include "plan.hpp"

namespace socker::launcher {
namespace {

PlanInput input() {
    PlanInput in;
    in.request.image = "demo";
    in.request.command = {"/opt/probe"};
    in.id.uid = 1001;
    in.id.gid = 1001;
    in.id.groups = {1001};
    in.id.name = "alice";
    in.id.home = "/home/alice";
    in.image.id = std::string(64, 'a');
    in.image.layers = {std::string(64, 'b')};
    in.layer_dirs = {"/store/layers/bbb"};
    in.env = {{"PMIX_SERVER_TMPDIR", "/var/spool/slurmd/pmix.3.0/"},
              {"PMIX_DSTORE_21_BASE_PATH", "/var/spool/slurmd/pmix.3.0//pmix_dstor_ds21_1"},
              {"PMIX_GDS_MODULE", "ds21,ds12,hash"},
              {"PATH", "/host/only/bin:/usr/bin"},
              {"LD_PRELOAD", "/evil.so"},
              {"SLURM_PROCID", "0"}};
    in.host_cwd = "/home/alice/run";
    in.group_names = {{1001, "alice"}};
    in.ctx.step = pmi::SlurmStep{1001, 3, "0", ""};
    in.slurm_spool = "/var/spool/slurmd";
    in.slurm_tmpfs = "/tmp";
    return in;
}

const MountOp* find(const ContainerSpec& s, const std::string& target) {
    for (const auto& m : s.mounts)
        if (m.target == target) return &m;
    return nullptr;
}

TEST(Plan, UserStoreImagesAreMarkedForMountingAsTheUser) {
    PlanInput in = input();
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
    // The dstore path is inside the server dir: one bind covers it.
    EXPECT_FALSE(find(s, "/var/spool/slurmd/pmix.3.0/pmix_dstor_ds21_1"));
    ASSERT_TRUE(find(s, "/proc"));
    EXPECT_EQ(find(s, "/proc")->kind, MountKind::Proc);
    EXPECT_EQ(find(s, "/home/alice")->check, SourceCheck::AsUser);
}

TEST(Plan, EveryUserControlledSourceIsCheckedAsTheUser) {
    auto in = input();
    in.request.binds = {{"/scratch/x", "/data", true}};
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
}

TEST(Plan, EnvironmentDenyListImagePathAndPmixMapping) {
    auto in = input();
    in.image.config.env = {"PATH=/opt/img/bin:/usr/bin", "PMIX_RANK=7", "FOO=bar"};
    auto s = make_spec(in);
    EXPECT_FALSE(s.env.count("LD_PRELOAD"));
    EXPECT_EQ(s.env.at("PATH"), "/opt/img/bin:/usr/bin");
    EXPECT_EQ(s.env.at("FOO"), "bar");
    EXPECT_FALSE(s.env.count("PMIX_RANK")) << "image may not override launcher variables";
    EXPECT_EQ(s.env.at("PMIX_MCA_gds"), "ds21,ds12,hash");
    EXPECT_EQ(s.env.at("HOME"), "/home/alice");
    EXPECT_EQ(s.env.at("USER"), "alice");
    EXPECT_EQ(s.path, (std::vector<std::string>{"/opt/img/bin", "/usr/bin"}));
}

TEST(Plan, CommandFromImageWhenNoneGiven) {
    auto in = input();
    in.request.command.clear();
    in.image.config.entrypoint = {"/entry"};
    in.image.config.cmd = {"--default"};
    EXPECT_EQ(make_spec(in).argv, (std::vector<std::string>{"/entry", "--default"}));
    in.request.command = {"x"};
    EXPECT_EQ(make_spec(in).argv, (std::vector<std::string>{"/entry", "x"}));
    in.image.config = {};
    in.request.command.clear();
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
    in.host_cwd = "/opt/elsewhere";  // not an allowed bind prefix: not bound
    in.image.config.working_dir = "/work";
    auto s = make_spec(in);
    EXPECT_EQ(s.cwd, "/work");
    EXPECT_FALSE(find(s, "/opt/elsewhere"));
    in.host_cwd = "/scratch/job";
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
}

TEST(Plan, PmixDirectoriesOnlyWhereSlurmOrMpirunPutThem) {
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
        try {
            pmix_binds(e, p);
            ADD_FAILURE() << "not refused: " << e.begin()->second;
        } catch (const Error& err) {
            EXPECT_EQ(err.code(), Exit::Refused);
            EXPECT_NE(std::string(err.what()).find(needle), std::string::npos) << err.what();
        }
    };
    refused({{"PMIX_SERVER_TMPDIR", "/var/spool/slurmd/pmix.4.0"}}, at, "PMIX_SERVER_TMPDIR=/var/spool/slurmd/pmix.4.0");
    refused({{"PMIX_DSTORE_ESH_BASE_PATH", "/var/tmp/x"}}, at, "outside the allowed bind sources");
    refused({{"PMIX_SERVER_TMPDIR", "/root"}}, at, "PMIX_SERVER_TMPDIR=/root");
    // Under the prefixes: a user bind, so only when user binds are allowed.
    b = pmix_binds({{"OMPI_MCA_orte_top_session_dir", "/scratch/alice/ompi.vm.1001"}}, at);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_FALSE(b[0].slurm_server_dir);
    at.user_binds = false;
    refused({{"OMPI_MCA_orte_top_session_dir", "/scratch/alice/ompi.vm.1001"}}, at, "user binds are disabled");
    // Not in a Slurm step: even a spool-looking directory is refused.
    at.slurm_server_dir.clear();
    refused({{"PMIX_SERVER_TMPDIR", "/var/spool/slurmd/pmix.3.0"}}, at, "not in a Slurm step");
    // In the spec: the user-bind kind is checked against the prefixes where it really is.
    auto in = input();
    in.env["OMPI_FILE_LOCATION"] = "/scratch/alice/ompi.vm.1001/pid.1";
    const ContainerSpec spec = make_spec(in);
    const MountOp* m = find(spec, "/scratch/alice/ompi.vm.1001/pid.1");
    ASSERT_TRUE(m);
    EXPECT_TRUE(m->within_prefixes);
    EXPECT_EQ(m->check, SourceCheck::OwnedByUser);
}

TEST(Plan, ProcLikeTheHostsProc) {
    EXPECT_EQ(proc_options_from_mountinfo("22 27 0:21 / /proc rw,relatime - proc proc rw\n"), "");
    EXPECT_EQ(proc_options_from_mountinfo("22 27 0:21 / /proc rw,nosuid - proc proc rw,hidepid=invisible,gid=27\n"
                                          "30 22 0:40 / /proc/sys/fs/binfmt_misc rw - binfmt_misc x rw\n"),
              "hidepid=invisible,gid=27");
    // A later /proc mount shadows the first.
    EXPECT_EQ(proc_options_from_mountinfo("22 27 0:21 / /proc rw - proc proc rw\n"
                                          "90 27 0:51 / /proc rw - proc proc rw,hidepid=2,subset=pid\n"),
              "hidepid=2,subset=pid");
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

TEST(Plan, UserBindsRefusedWhenAdminDisablesThem) {
    auto in = input();
    in.policy.user_binds = false;
    in.request.binds = {{"/scratch/x", "/data", false}};
    try {
        make_spec(in);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Refused);
    }
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

TEST(Plan, PmixDirectoriesKeepOnlyOutermost) {
    EnvMap e = {{"PMIX_SERVER_TMPDIR", "/tmp/ompi.vm.1001/pid.9"},
                {"PMIX_DSTORE_21_BASE_PATH", "/tmp/ompi.vm.1001/pid.9/pmix_dstor_ds21_9"},
                {"OMPI_MCA_orte_top_session_dir", "/tmp/ompi.vm.1001"},
                {"PMIX_DSTORE_ESH_BASE_PATH", "relative/ignored"}};
    EXPECT_EQ(pmix_directories(e), (std::vector<std::string>{"/tmp/ompi.vm.1001"}));
}

TEST(Plan, DevicesCgroupRules) {
    auto all = parse_devices_list("a *:* rwm\n");
    EXPECT_TRUE(device_allowed(all, 'c', 231, 192));
    auto some = parse_devices_list("c 1:3 rwm\nc 195:* rw\nc 231:5 m\n");
    EXPECT_TRUE(device_allowed(some, 'c', 1, 3));
    EXPECT_TRUE(device_allowed(some, 'c', 195, 254));
    EXPECT_FALSE(device_allowed(some, 'c', 231, 5)) << "mknod-only rule does not allow opening";
    EXPECT_FALSE(device_allowed(some, 'b', 1, 3));
    EXPECT_FALSE(device_allowed({}, 'c', 1, 3));
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
