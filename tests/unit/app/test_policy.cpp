#include <gtest/gtest.h>

#include "base/error.hpp"
#include "src/policy.hpp"

namespace socker {
namespace {

TEST(Policy, DefaultsWhenEmpty) {
    auto p = parse_policy("# nothing\n\n", "t");
    EXPECT_EQ(p.image_store, "/var/lib/socker-mpi/images");
    EXPECT_TRUE(p.require_slurm_step);
    EXPECT_EQ(p.import_admin_store, "root");
    EXPECT_EQ(p.log, LogDest::Syslog);
}

TEST(Policy, ParsesKeysAndNodeSections) {
    auto p = parse_policy(
        "image_store = /srv/images\nuser_binds = no\nrequire_slurm_step=no\n"
        "bind_allowed_prefixes = /home, /scratch\nenv_deny = LD_PRELOAD,FOO\nlog = stderr\n"
        "[node:gpu*]\nbind = numa\ncpus_per_rank = 8\n",
        "t");
    EXPECT_EQ(p.image_store, "/srv/images");
    EXPECT_FALSE(p.user_binds);
    EXPECT_FALSE(p.require_slurm_step);
    EXPECT_EQ(p.bind_allowed_prefixes, (std::vector<std::string>{"/home", "/scratch"}));
    EXPECT_EQ(p.env_deny, (std::vector<std::string>{"LD_PRELOAD", "FOO"}));
    EXPECT_EQ(p.log, LogDest::Stderr);
    ASSERT_EQ(p.node_sections.size(), 1u);
    EXPECT_EQ(p.node_sections[0].placement.pattern, "gpu*");
    EXPECT_EQ(p.node_sections[0].placement.bind, topology::BindKind::Numa);
    EXPECT_EQ(p.node_sections[0].placement.cpus_per_rank, 8);
    EXPECT_EQ(p.node_sections[0].placement.origin, "t:7");
}

TEST(Policy, StoreFormat) {
    EXPECT_FALSE(parse_policy("", "t").store_squashfs);
    EXPECT_TRUE(parse_policy("store_format = squashfs\n", "t").store_squashfs);
    EXPECT_FALSE(parse_policy("store_format = layers\n", "t").store_squashfs);
    EXPECT_THROW(parse_policy("store_format = zfs\n", "t"), Error);
}

TEST(Policy, SlurmConfPerNode) {
    auto p = parse_policy(
        "slurm_conf = /etc/slurm/slurm.conf\n[node:n*]\nslurm_conf = /etc/slurm-multi/slurm.conf\n"
        "bind = core\n",
        "t");
    EXPECT_EQ(slurm_conf_for(p, "vm"), "/etc/slurm/slurm.conf");
    EXPECT_EQ(slurm_conf_for(p, "n2"), "/etc/slurm-multi/slurm.conf");
    EXPECT_FALSE(p.node_sections.at(0).placement.distribution) << "slurm_conf is not a placement key";
    EXPECT_EQ(p.node_sections.at(0).placement.bind, topology::BindKind::Core);
}

void expect_config_error(const std::string& text, const std::string& needle) {
    try {
        parse_policy(text, "/etc/socker-mpi/socker-mpi.conf");
        FAIL() << "accepted: " << text;
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Config);
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST(Policy, UnknownKeysAndBadValuesAreErrorsWithLineNumbers) {
    expect_config_error("image_store = /x\nallow_root = yes\n", "socker-mpi.conf:2");
    expect_config_error("allow_root = yes\n", "unknown key 'allow_root'");
    expect_config_error("user_binds = maybe\n", "wants yes or no");
    expect_config_error("image_store = relative\n", "absolute");
    expect_config_error("[node:x]\nimage_store = /y\n", "unknown key 'image_store' in [node:x]");
    expect_config_error("[global]\n", "unknown section");
    expect_config_error("just words\n", "expected 'key = value'");
    expect_config_error("bind_allowed_prefixes = /ok, rel\n", "'rel' is not an absolute path");
}

TEST(Policy, NodeSectionValuesAreCheckedWhenTheConfigIsLoaded) {
    // Every section, matching this node or not, with the file and line.
    expect_config_error(
        "log = syslog\n[node:other*]\ndistribution = cylic\n",
        "admin config `/etc/socker-mpi/socker-mpi.conf:3`: [node:other*] distribution = cylic: "
        "expected block|cyclic, did you mean 'cyclic'?");
    expect_config_error("[node:x]\nbind_to = rack\n",
                        "socker-mpi.conf:2`: [node:x] bind_to = rack: expected none|");
    expect_config_error("[node:x]\ncpus_per_rank = many\n", "expected a whole number of CPUs");
    const auto p = parse_policy("[node:a*]\nbind_to = l3\n[node:*]\nmembind = local\n", "t");
    const auto secs = p.placement_sections();
    ASSERT_EQ(secs.size(), 2u);
    EXPECT_EQ(secs[0].bind, topology::BindKind::L3);
    EXPECT_EQ(secs[1].membind, topology::MemBind::Local);
}

TEST(Policy, RoundTwoKeys) {
    const auto d = parse_policy("", "t");
    EXPECT_EQ(d.state_dir, "/run/socker-mpi");
    EXPECT_EQ(d.syslog_socket, "/dev/log");
    EXPECT_FALSE(d.audit_required);
    EXPECT_TRUE(d.device_cgroup_required);
    EXPECT_EQ(d.slurm_cgroup_prefix, "");
    EXPECT_GT(d.import_max_bytes, 0u);
    EXPECT_GT(d.import_max_ratio, 0.0);
    const auto p = parse_policy(
        "state_dir = /var/run/s\nsyslog_socket = /run/log.sock\naudit_required = yes\ndevice_cgroup = "
        "ignore\n"
        "slurm_cgroup_prefix = /system.slice/slurmd\nimport_max_bytes = 100M\nimport_max_files = 2K\n"
        "import_max_ratio = 12.5\n",
        "t");
    EXPECT_EQ(p.state_dir, "/var/run/s");
    EXPECT_EQ(p.syslog_socket, "/run/log.sock");
    EXPECT_TRUE(p.audit_required);
    EXPECT_FALSE(p.device_cgroup_required);
    EXPECT_EQ(p.slurm_cgroup_prefix, "/system.slice/slurmd");
    EXPECT_EQ(p.import_max_bytes, 100ULL << 20);
    EXPECT_EQ(p.import_max_files, 2048u);
    EXPECT_DOUBLE_EQ(p.import_max_ratio, 12.5);
    expect_config_error("import_max_bytes = 10X\n", "wants a size");
    expect_config_error("import_max_bytes = M\n", "wants a size");
    expect_config_error("import_max_ratio = -1\n", "import_max_ratio wants a number");
    expect_config_error("import_max_ratio = 3x\n", "import_max_ratio wants a number");
    expect_config_error("device_cgroup = maybe\n", "device_cgroup wants required or ignore");
    expect_config_error("state_dir = run\n", "absolute");
    expect_config_error("slurm_cgroup_prefix = slurm\n", "absolute");
}

}  // namespace
}  // namespace socker
