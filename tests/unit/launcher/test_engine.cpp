// Engine mode's pure half: what the engine is asked to make of a spec, and the readers of its
// answers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/error.hpp"
#include "launcher/engine.hpp"

using namespace socker;
using namespace socker::launcher;
using nlohmann::json;

namespace {

ContainerSpec sample_spec() {
    ContainerSpec s;
    s.id.uid = 1001;
    s.id.gid = 1002;
    s.id.groups = {1002, 27};
    s.id.name = "alice";
    s.argv = {"/bin/sh", "-c", "echo $(id); rm -rf /"};
    s.env = {{"PATH", "/usr/bin:/bin"}, {"SLURM_PROCID", "3"}};
    s.cwd = "/home/alice/run";
    s.umask = 027;
    s.binding = CpuBinding{"1", "0", topology::MemBind::None};
    auto add = [&](MountKind k, std::string src, std::string tgt, std::string data = "") {
        MountOp m;
        m.kind = k;
        m.source = std::move(src);
        m.target = std::move(tgt);
        m.data = std::move(data);
        s.mounts.push_back(m);
        return &s.mounts.back();
    };
    add(MountKind::Proc, "", "/proc");
    add(MountKind::Bind, "/sys", "/sys")->read_only = true;
    add(MountKind::Tmpfs, "", "/dev", "mode=0755");
    add(MountKind::Node, "", "/dev/null", "1:3");
    add(MountKind::Symlink, "", "/dev/fd", "/proc/self/fd");
    add(MountKind::Bind, "/dev/shm", "/dev/shm");
    auto* ib = add(MountKind::Bind, "/dev/infiniband/uverbs0", "/dev/infiniband/uverbs0");
    ib->nodev = false;
    add(MountKind::Bind, "/tmp", "/tmp");
    add(MountKind::Tmpfs, "", "/var/tmp", "mode=1777");
    add(MountKind::Bind, "/etc/hosts", "/etc/hosts");
    add(MountKind::File, "", "/etc/passwd", "alice:x:1001:1002::/home/alice:/bin/sh\n");
    auto* home = add(MountKind::Bind, "/home/alice", "/home/alice");
    home->check = SourceCheck::AsUser;
    auto* data = add(MountKind::Bind, "/scratch/d", "/data");
    data->check = SourceCheck::AsUser;
    data->within_prefixes = true;
    data->read_only = true;
    return s;
}

}  // namespace

TEST(EnginePlan, TheEngineMakesProcDevShmAndNameResolutionItself) {
    const engine::EnginePlan p = engine::engine_plan(sample_spec());
    std::vector<std::string> targets;
    for (const auto& b : p.binds) targets.push_back(b.target);
    EXPECT_EQ(targets, (std::vector<std::string>{"/tmp", "/home/alice", "/data"}));
    EXPECT_EQ(p.devices, std::vector<std::string>{"/dev/infiniband/uverbs0"});
    ASSERT_EQ(p.tmpfs.size(), 1u);
    EXPECT_EQ(p.tmpfs[0].first, "/var/tmp");
    ASSERT_EQ(p.files.size(), 1u);
    EXPECT_EQ(p.files[0].first, "/etc/passwd");
    EXPECT_TRUE(p.binds[2].within_prefixes);
    EXPECT_TRUE(p.binds[2].read_only);
}

TEST(EngineCreate, AsTheUserInTheStepWithNothingToGain) {
    const ContainerSpec spec = sample_spec();
    engine::EnginePlan plan = engine::engine_plan(spec);
    plan.binds[1].dev = 2049;
    plan.binds[1].ino = 77;
    engine::EngineOptions o;
    o.image = "demo:1";
    o.reaper_source = "/usr/libexec/socker-mpi/socker-mpi-reaper";
    o.cgroup_parent = "/slurm/uid_1001/job_5/step_0";
    o.launcher_pid = 4242;
    o.launcher_start = 999;
    o.labels = {{"socker-mpi.uid", "1001"}};
    o.limits = {{"memlock", -1, -1}};
    const json b = json::parse(engine::create_body(spec, plan, o));
    EXPECT_EQ(b["Image"], "demo:1");
    EXPECT_EQ(b["User"], "1001:1002");
    EXPECT_EQ(b["WorkingDir"], "/home/alice/run");
    EXPECT_TRUE(b["Cmd"].is_null());
    // The reaper first, the command's argv verbatim after "--" (no shell).
    const std::vector<std::string> entry = b["Entrypoint"];
    EXPECT_EQ(entry, (std::vector<std::string>{engine::kReaperTarget, "--parent", "4242", "999",
                                               "--check=2049:77:/home/alice", "--umask=23", "--", "/bin/sh",
                                               "-c", "echo $(id); rm -rf /"}));
    const json& h = b["HostConfig"];
    EXPECT_EQ(h["CgroupParent"], "/slurm/uid_1001/job_5/step_0");
    EXPECT_EQ(h["PidMode"], "host");
    EXPECT_EQ(h["IpcMode"], "host");
    EXPECT_EQ(h["NetworkMode"], "host");
    EXPECT_EQ(h["Privileged"], false);
    EXPECT_EQ(h["CapDrop"], json::array({"ALL"}));
    EXPECT_EQ(h["SecurityOpt"], json::array({"no-new-privileges"}));
    EXPECT_EQ(h["ReadonlyRootfs"], true);
    EXPECT_EQ(h["AutoRemove"], true);
    EXPECT_EQ(h["GroupAdd"], json::array({"1002", "27"}));
    EXPECT_EQ(h["CpusetCpus"], "1");
    EXPECT_EQ(h["CpusetMems"], "0");
    EXPECT_EQ(h["Devices"][0]["PathOnHost"], "/dev/infiniband/uverbs0");
    EXPECT_EQ(h["Tmpfs"]["/var/tmp"], "mode=1777");
    EXPECT_EQ(h["Ulimits"][0]["Name"], "memlock");
    EXPECT_EQ(h["Ulimits"][0]["Hard"], -1);
    // The reaper is bound read-only from the host, then the plan's binds in order.
    EXPECT_EQ(h["Mounts"][0]["Source"], "/usr/libexec/socker-mpi/socker-mpi-reaper");
    EXPECT_EQ(h["Mounts"][0]["ReadOnly"], true);
    EXPECT_EQ(h["Mounts"][3]["Target"], "/data");
    EXPECT_EQ(h["Mounts"][3]["ReadOnly"], true);
    const auto env = b["Env"].get<std::vector<std::string>>();
    EXPECT_NE(std::find(env.begin(), env.end(), "SLURM_PROCID=3"), env.end());
}

TEST(EngineCreate, NoCgroupParentOutsideAStep) {
    engine::EngineOptions o;
    const json b = json::parse(engine::create_body(sample_spec(), {}, o));
    EXPECT_FALSE(b["HostConfig"].contains("CgroupParent"));
}

TEST(EngineAnswers, InspectGivesTheImageConfig) {
    const std::string id(64, 'a');
    const auto r = engine::parse_inspect(
        R"({"Id":"sha256:)" + id +
            R"(","Architecture":"amd64","Config":{"Env":["A=1"],"Entrypoint":null,"Cmd":["/bin/bash"],"WorkingDir":"/w","User":"root"}})",
        "demo");
    EXPECT_EQ(r.id, id);
    EXPECT_EQ(r.config.env, std::vector<std::string>{"A=1"});
    EXPECT_TRUE(r.config.entrypoint.empty());
    EXPECT_EQ(r.config.cmd, std::vector<std::string>{"/bin/bash"});
    EXPECT_EQ(r.config.working_dir, "/w");
    EXPECT_THROW(engine::parse_inspect("not json", "demo"), Error);
    EXPECT_THROW(engine::parse_inspect(R"({"Id":"sha256:xyz"})", "demo"), Error);
    EXPECT_THROW(engine::parse_inspect(R"({"Id":"sha256:)" + id + R"(","Config":{"Cmd":[1]}})", "demo"),
                 Error);
}

TEST(EngineAnswers, CreateWaitAndErrors) {
    EXPECT_EQ(engine::parse_created_id(R"({"Id":"0123abcd","Warnings":[]})"), "0123abcd");
    EXPECT_THROW(engine::parse_created_id(R"({"Id":"../x"})"), Error);
    EXPECT_EQ(engine::parse_wait_status(R"({"StatusCode":7,"Error":null})"), 7);
    EXPECT_EQ(engine::parse_wait_status(R"({"StatusCode":143})"), 143);
    EXPECT_EQ(engine::parse_wait_status(R"({"StatusCode":-1})"), 255);
    EXPECT_THROW(engine::parse_wait_status(R"({"Error":{"Message":"gone"}})"), Error);
    EXPECT_EQ(engine::error_message(R"({"message":"No such image: x:latest"})"), "No such image: x:latest");
    EXPECT_EQ(engine::error_message("plain text\n"), "plain text");
}

TEST(EngineAnswers, EscapesNamesForTheUrl) {
    EXPECT_EQ(engine::url_escape("lab/solver:1.2"), "lab%2Fsolver%3A1.2");
    EXPECT_EQ(engine::url_escape("a b&c=d"), "a%20b%26c%3Dd");
}

TEST(EngineNames, RankAndStepInTheContainerName) {
    EXPECT_EQ(engine::container_name("5.0", 3, 77), "socker-mpi-5.0-3-77");
    EXPECT_EQ(engine::container_name("", 0, 9), "socker-mpi-0-9");
    EXPECT_EQ(engine::container_name("5.ba/tch", 1, 2), "socker-mpi-5.ba_tch-1-2");
}

TEST(EngineDemux, SplitsStdoutAndStderrAcrossAnyCut) {
    std::string wire;
    auto frame = [&](char stream, const std::string& s) {
        wire += stream;
        wire += std::string(3, '\0');
        for (int sh : {24, 16, 8, 0}) wire += static_cast<char>((s.size() >> sh) & 0xff);
        wire += s;
    };
    frame(1, "hello ");
    frame(2, "oops\n");
    frame(1, std::string(300, 'x'));
    for (size_t cut = 1; cut < 12; ++cut) {
        engine::Demux d;
        std::string out, err;
        for (size_t i = 0; i < wire.size(); i += cut)
            d.feed(std::string_view(wire).substr(i, cut),
                   [&](int s, std::string_view p) { (s == 2 ? err : out).append(p); });
        EXPECT_EQ(out, "hello " + std::string(300, 'x')) << cut;
        EXPECT_EQ(err, "oops\n") << cut;
    }
}
