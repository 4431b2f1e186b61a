// topology/precedence.hpp, binding_report.hpp, rank_binding.hpp: where each setting comes from,
// what users read (--report-bindings, socker-mpi plan) and what the launcher gets.
#include <gtest/gtest.h>
#include <sched.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/error.hpp"
#include "topology/binding_report.hpp"
#include "topology/precedence.hpp"
#include "topology/rank_binding.hpp"

namespace socker::topology {
namespace {

const std::string kDir = SOCKER_TOPOLOGY_FIXTURES;

// [node:GLOB] sections as the admin config has them (the app's parse_policy reads them the same
// way, through set_node_default).
std::vector<NodeDefaults> sections(const std::string& text) {
    std::vector<NodeDefaults> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("[node:", 0) == 0) {
            out.push_back({line.substr(6, line.size() - 7), "t", {}, {}, {}, {}});
            continue;
        }
        const auto eq = line.find(" = ");
        if (eq != std::string::npos) {
            EXPECT_TRUE(set_node_default(out.back(), line.substr(0, eq), line.substr(eq + 3), "t"));
        }
    }
    return out;
}

template <typename F>
std::string error_text(F&& f, Exit code) {
    try {
        f();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
}

// --------------------------------------------------------------------------- precedence

TEST(Precedence, DefaultsLeaveSlurmsBindingAlone) {
    auto r = resolve_placement({}, {}, std::vector<NodeDefaults>{}, "n1");
    EXPECT_EQ(r.policy.bind, BindKind::None);
    EXPECT_EQ(r.policy.distribution, Distribution::Block);
    EXPECT_EQ(r.policy.membind, MemBind::None);
    EXPECT_FALSE(r.policy.cpus_per_rank);
    EXPECT_EQ(r.summary(),
              "bind=none (default), distribution=block (default), membind=none (default), "
              "cpus_per_rank=even split (default)");
}

TEST(Precedence, CommandLineOverEnvironmentOverAdminOverDefault) {
    const auto pol =
        sections("[node:n*]\nbind = numa\ndistribution = cyclic\nmembind = local\ncpus_per_rank = 8\n");
    // Admin only.
    auto a = resolve_placement({}, {}, pol, "n1");
    EXPECT_EQ(a.policy.bind, BindKind::Numa);
    EXPECT_EQ(a.policy.cpus_per_rank, 8);
    EXPECT_EQ(a.source.at("bind"), "admin config [node:n*]");
    // The environment beats the admin config, key by key.
    EnvMap env = {{"SOCKER_MPI_BIND", "l3"}, {"SOCKER_MPI_CPUS_PER_RANK", "4"}};
    auto e = resolve_placement({}, env, pol, "n1");
    EXPECT_EQ(e.policy.bind, BindKind::L3);
    EXPECT_EQ(e.source.at("bind"), "SOCKER_MPI_BIND");
    EXPECT_EQ(e.policy.cpus_per_rank, 4);
    EXPECT_EQ(e.policy.distribution, Distribution::Cyclic);
    EXPECT_EQ(e.source.at("distribution"), "admin config [node:n*]");
    // The command line beats both.
    PlacementRequest cli;
    cli.bind = BindKind::Core;
    cli.cpus_per_rank = 2;
    auto c = resolve_placement(cli, env, pol, "n1");
    EXPECT_EQ(c.policy.bind, BindKind::Core);
    EXPECT_EQ(c.policy.cpus_per_rank, 2);
    EXPECT_EQ(c.source.at("bind"), "command line");
    EXPECT_EQ(c.source.at("cpus_per_rank"), "command line");
    EXPECT_EQ(c.policy.membind, MemBind::Local);
    EXPECT_EQ(c.summary(),
              "bind=core (command line), distribution=cyclic (admin config [node:n*]), "
              "membind=local (admin config [node:n*]), cpus_per_rank=2 (command line)");
}

TEST(Precedence, NodeSectionsMatchByGlobAndTheLastMatchWinsPerKey) {
    const auto pol = sections(
        "[node:*]\nbind = core\nmembind = local\n[node:gpu*]\nbind = socket\n[node:cpu[0-9]*]\nbind = l3\n");
    EXPECT_EQ(resolve_placement({}, {}, pol, "gpu3").policy.bind, BindKind::Socket);
    EXPECT_EQ(resolve_placement({}, {}, pol, "gpu3").policy.membind, MemBind::Local);
    EXPECT_EQ(resolve_placement({}, {}, pol, "gpu3").source.at("membind"), "admin config [node:*]");
    EXPECT_EQ(resolve_placement({}, {}, pol, "cpu17").policy.bind, BindKind::L3);
    EXPECT_EQ(resolve_placement({}, {}, pol, "login1").policy.bind, BindKind::Core);
    // No node name: no section applies.
    EXPECT_EQ(resolve_placement({}, {}, pol, "").policy.bind, BindKind::None);
}

TEST(Precedence, SlurmCpusPerTaskIsTheUsersRequest) {
    const auto pol = sections("[node:*]\ncpus_per_rank = 8\n");
    EnvMap env = {{"SLURM_CPUS_PER_TASK", "4"}};
    auto r = resolve_placement({}, env, pol, "n1");
    EXPECT_EQ(r.policy.cpus_per_rank, 4);
    EXPECT_EQ(r.source.at("cpus_per_rank"), "SLURM_CPUS_PER_TASK");
    env["SOCKER_MPI_CPUS_PER_RANK"] = "2";
    EXPECT_EQ(resolve_placement({}, env, pol, "n1").policy.cpus_per_rank, 2);
    // Garbage from Slurm's variable is ignored, not fatal.
    EXPECT_EQ(resolve_placement({}, {{"SLURM_CPUS_PER_TASK", "x"}}, std::vector<NodeDefaults>{}, "n1")
                  .policy.cpus_per_rank,
              std::nullopt);
    // An exported but empty SOCKER_MPI_* variable counts as unset.
    EXPECT_EQ(resolve_placement({}, {{"SOCKER_MPI_BIND", ""}}, std::vector<NodeDefaults>{}, "n1").policy.bind,
              BindKind::None);
}

TEST(Precedence, BadValuesAreOneLineErrorsNamingTheirSource) {
    EXPECT_EQ(
        error_text(
            [] {
                resolve_placement({}, {{"SOCKER_MPI_BIND", "cores"}}, std::vector<NodeDefaults>{}, "n1");
            },
            Exit::Usage),
        "SOCKER_MPI_BIND `cores`: expected none|hwthread|core|l3|numa|socket, did you mean 'core'?");
    EXPECT_EQ(
        error_text(
            [] {
                resolve_placement({}, {{"SOCKER_MPI_CPUS_PER_RANK", "0"}}, std::vector<NodeDefaults>{}, "n1");
            },
            Exit::Usage),
        "SOCKER_MPI_CPUS_PER_RANK `0`: expected a whole number of CPUs from 1 to 65536");
    EXPECT_EQ(error_text(
                  [] {
                      resolve_placement({}, {{"SOCKER_MPI_MEMBIND", "interleaved"}},
                                        std::vector<NodeDefaults>{}, "n1");
                  },
                  Exit::Usage),
              "SOCKER_MPI_MEMBIND `interleaved`: expected none|local|interleave, did you mean 'interleave'?");
    // (Admin values are checked when the config is loaded, with file:line: app's test_policy;
    // the command line's by the CLI parser: app's test_request.)
}

TEST(Precedence, AdminValuesAreCheckedBySetNodeDefault) {
    NodeDefaults d{"other*", "/etc/socker-mpi/socker-mpi.conf:7", {}, {}, {}, {}};
    EXPECT_EQ(
        error_text([&] { set_node_default(d, "distribution", "cylic", d.origin); }, Exit::Config),
        "admin config `/etc/socker-mpi/socker-mpi.conf:7`: [node:other*] distribution = cylic: expected "
        "block|cyclic, did you mean 'cyclic'?");
    EXPECT_EQ(
        error_text([&] { set_node_default(d, "cpus_per_rank", "0", d.origin); }, Exit::Config),
        "admin config `/etc/socker-mpi/socker-mpi.conf:7`: [node:other*] cpus_per_rank = 0: expected a whole "
        "number of CPUs from 1 to 65536");
    EXPECT_FALSE(set_node_default(d, "image_store", "/x", d.origin)) << "not a placement key";
    EXPECT_TRUE(set_node_default(d, "bind_to", "numa", d.origin));
    EXPECT_EQ(d.bind, BindKind::Numa);
    EXPECT_TRUE(set_node_default(d, "bind", "core", d.origin)) << "the old spelling";
    EXPECT_EQ(d.bind, BindKind::Core);
}

TEST(OpenMp, ThreadsFollowCpusPerRankUnlessTheUserSetThem) {
    auto with = resolve_placement({}, {{"SLURM_CPUS_PER_TASK", "8"}}, std::vector<NodeDefaults>{}, "n1");
    EXPECT_EQ(openmp_env(with, {}), (EnvMap{{"OMP_NUM_THREADS", "8"}}));
    EXPECT_TRUE(openmp_env(with, {{"OMP_NUM_THREADS", "3"}}).empty());
    EXPECT_TRUE(openmp_env(resolve_placement({}, {}, std::vector<NodeDefaults>{}, "n1"), {})
                    .empty());  // even split: not set
}

// ----------------------------------------------------------------------------- reports

TEST(Report, PictureLikeOpenMpi) {
    auto t = Topology::from_synthetic("pack:2 core:4 pu:2(indexes=2*8:1*2)");
    // Core 2 of package 0 is CPUs 2 and 10 (siblings i and i+8).
    EXPECT_EQ(picture(t, Bitmap::parse_list("2,10", "x")), "[../../BB/..][../../../..]");
    EXPECT_EQ(picture(t, Bitmap::parse_list("8", "x")), "[.B/../../..][../../../..]");
    auto flat = Topology::from_synthetic("pu:4");
    EXPECT_EQ(picture(flat, Bitmap::parse_list("1", "x")), "[./B/./.]");
}

TEST(Report, ReportLine) {
    auto t = Topology::from_xml_file(kDir + "/intel-2s-ht.xml");
    t.restrict_to(Bitmap::parse_list("0-3,40-43", "x"), "--cpuset");
    PlacementPolicy p;
    p.bind = BindKind::Core;
    p.membind = MemBind::Local;
    auto pl = place_rank(t, t.cpus(), 1, 2, p);
    EXPECT_EQ(report_line(t, 5, 1, 2, "n1", pl, p),
              "rank 5 (local 1 of 2) on n1: cpus 2-3,42-43 numa 0 membind local [../../BB/BB]");
    PlacementPolicy none;
    auto kept = place_rank(t, t.cpus(), 0, 1, none);
    EXPECT_EQ(report_line(t, 0, 0, 1, "n1", kept, none),
              "rank 0 (local 0 of 1) on n1: not bound by socker-mpi, inherited cpus 0-3,40-43 numa 0 membind "
              "none [BB/BB/BB/BB]");
}

TEST(RankBinding, LauncherGetsListsOfOsIndexes) {
    auto t = Topology::from_xml_file(kDir + "/intel-2s-ht.xml");
    PlacementRequest cli;
    cli.bind = BindKind::Core;
    cli.membind = MemBind::Local;
    auto pol = resolve_placement(cli, {{"SLURM_CPUS_PER_TASK", "2"}}, std::vector<NodeDefaults>{}, "n1");
    auto rb = bind_rank(t, t.cpus(), pol, {}, "n1", 7, 3, 8);
    ASSERT_TRUE(rb.binding);
    EXPECT_EQ(rb.binding->cpus, "3,43");
    EXPECT_EQ(rb.binding->mems, "0");
    EXPECT_EQ(rb.binding->membind, MemBind::Local);
    EXPECT_EQ(rb.env, (EnvMap{{"OMP_NUM_THREADS", "2"}}));
    EXPECT_EQ(rb.report.rfind("rank 7 (local 3 of 8) on n1: cpus 3,43 numa 0 membind local [../../../BB/", 0),
              0u);
    EXPECT_EQ(rb.source, pol.summary());
    // membind=interleave spans the NUMA nodes of a socket-wide binding.
    cli.bind = BindKind::Socket;
    cli.membind = MemBind::Interleave;
    auto rb2 = bind_rank(t, t.cpus(), resolve_placement(cli, {}, std::vector<NodeDefaults>{}, "n1"), {}, "n1",
                         1, 1, 2);
    EXPECT_EQ(rb2.binding->cpus, "20-39,60-79");
    EXPECT_EQ(rb2.binding->mems, "1");
    EXPECT_EQ(rb2.binding->membind, MemBind::Interleave);
}

TEST(RankBinding, NoneLeavesEverythingAsInherited) {
    auto t = Topology::from_synthetic("pack:1 core:2 pu:1");
    auto rb = bind_rank(t, t.cpus(), resolve_placement({}, {}, std::vector<NodeDefaults>{}, "n1"), {}, "n1",
                        0, 0, 1);
    EXPECT_FALSE(rb.binding);
    // membind alone still binds memory (CPUs stay the inherited set).
    PlacementRequest cli;
    cli.membind = MemBind::Local;
    auto mem = bind_rank(t, Bitmap::parse_list("1", "x"),
                         resolve_placement(cli, {}, std::vector<NodeDefaults>{}, "n1"), {}, "n1", 0, 0, 2);
    ASSERT_TRUE(mem.binding);
    EXPECT_EQ(mem.binding->cpus, "1");
    EXPECT_EQ(mem.binding->mems, "0");
}

TEST(RankBinding, ThisMachine) {
    // bind=none: no topology is loaded, nothing to apply.
    auto none = binding_for_rank({}, {}, std::vector<NodeDefaults>{}, "n1", 0, 0, 1);
    EXPECT_FALSE(none.binding);
    EXPECT_TRUE(none.report.empty());
    // bind=core for a single rank: stays within this process's own affinity.
    PlacementRequest cli;
    cli.bind = BindKind::Core;
    auto rb = binding_for_rank(cli, {}, std::vector<NodeDefaults>{}, "n1", 0, 0, 1);
    ASSERT_TRUE(rb.binding);
    auto here = Topology::this_machine();
    const Bitmap mine = current_affinity(here);
    EXPECT_TRUE(mine.includes(Bitmap::parse_list(rb.binding->cpus, "cpus")));
    EXPECT_FALSE(rb.report.empty());
}

// The thin system-call path: a thread narrowed to one CPU (as Slurm's task/affinity narrows a
// task) keeps that CPU under bind=hwthread, whatever this machine looks like.
TEST(RankBinding, ThisMachineKeepsATighterInheritedAffinity) {
    auto here = Topology::this_machine();
    const Bitmap cpus = current_affinity(here) & here.cpus();
    if (cpus.weight() < 2) GTEST_SKIP() << "needs 2 CPUs, has " << cpus.list();
    const unsigned last = cpus.indexes().back();
    RankBinding rb;
    std::string err;
    std::thread th([&] {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(last, &set);
        if (::sched_setaffinity(0, sizeof set, &set) != 0) {
            err = std::strerror(errno);
            return;
        }
        PlacementRequest cli;
        cli.bind = BindKind::HwThread;
        cli.membind = MemBind::Local;
        try {
            rb = binding_for_rank(cli, {}, std::vector<NodeDefaults>{}, "n1", 1, 1, 2);
        } catch (const std::exception& e) {
            err = e.what();
        }
    });
    th.join();
    ASSERT_EQ(err, "");
    ASSERT_TRUE(rb.binding);
    EXPECT_EQ(rb.binding->cpus, std::to_string(last));
    EXPECT_EQ(rb.binding->mems, here.numa_of(Bitmap::parse_list(std::to_string(last), "x")).list());
    std::string trace;
    for (const auto& t : rb.trace) trace += t + "\n";
    EXPECT_NE(trace.find("(cpus " + std::to_string(last) + ")"), std::string::npos) << trace;
    EXPECT_NE(trace.find(": kept"), std::string::npos) << trace;
}

// ------------------------------------------------------------------ socker-mpi plan output

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// XML fixtures named by file name only: golden output must not depend on the checkout path.
Topology xml(const std::string& name) { return Topology::from_xml_text(slurp(kDir + "/" + name), name); }

void check_golden(const std::string& name, const std::string& actual) {
    const std::string path = kDir + "/golden/" + name;
    if (const char* u = std::getenv("SOCKER_UPDATE_GOLDEN"); u && *u && std::string(u) != "0") {
        std::ofstream(path, std::ios::binary) << actual;
        return;
    }
    EXPECT_EQ(slurp(path), actual) << path;
}

PlanOptions request(const std::string&, int ranks, const char* bind, const char* dist, const char* format) {
    PlanOptions r;
    r.ranks = ranks;
    if (bind) r.placement.bind = parse_bind_kind(bind);
    if (dist) r.placement.distribution = parse_distribution(dist);
    r.format = format;
    return r;
}

TEST(GoldenPlan, TableShowsSettingsSourcesAndRanks) {
    const auto pol = sections("[node:n*]\nmembind = local\n");
    auto r = request("", 3, "core", nullptr, "table");
    r.allowed = "0-3,40-43";
    EnvMap env = {{"SOCKER_MPI_DISTRIBUTION", "cyclic"}};
    check_golden("plan-intel-core.txt", render_placements(r, xml("intel-2s-ht.xml"), env, pol, "n1", ""));
    auto s = request("", 5, "numa", "block", "table");
    check_golden("plan-asym-numa.txt",
                 render_placements(s, xml("asym-numa.xml"), {}, std::vector<NodeDefaults>{}, "laptop",
                                   "/etc/socker-mpi/socker-mpi.conf not present: no [node:GLOB] defaults"));
    auto n = request("", 2, nullptr, nullptr, "table");
    check_golden("plan-single-none.txt",
                 render_placements(n, Topology::from_synthetic("pack:1 l3:1 core:8 pu:1"), {},
                                   std::vector<NodeDefaults>{}, "n1", ""));
}

TEST(GoldenPlan, JsonIsAnArrayInLocalRankOrder) {
    auto r = request("", 4, "l3", "cyclic", "json");
    const std::string out = render_placements(r, Topology::from_synthetic("pack:2 numa:4 l3:2 core:8 pu:2"),
                                              {}, std::vector<NodeDefaults>{}, "n1", "");
    EXPECT_EQ(out,
              "[\n"
              "  {\"local_rank\": 0, \"cpus\": \"0-15\", \"numa\": \"0\"},\n"
              "  {\"local_rank\": 1, \"cpus\": \"128-143\", \"numa\": \"4\"},\n"
              "  {\"local_rank\": 2, \"cpus\": \"32-47\", \"numa\": \"1\"},\n"
              "  {\"local_rank\": 3, \"cpus\": \"160-175\", \"numa\": \"5\"}\n"
              "]\n");
    // Through the hwloc XML of the Intel node: OS indexes of hyperthread siblings.
    auto x = request("", 2, "core", "block", "json");
    x.placement.cpus_per_rank = 2;
    EXPECT_EQ(render_placements(x, Topology::from_xml_file(kDir + "/intel-2s-ht.xml"), {},
                                std::vector<NodeDefaults>{}, "n1", ""),
              "[\n  {\"local_rank\": 0, \"cpus\": \"0,40\", \"numa\": \"0\"},\n"
              "  {\"local_rank\": 1, \"cpus\": \"1,41\", \"numa\": \"0\"}\n]\n");
}

TEST(GoldenPlan, ImpossiblePlansAreUsageErrors) {
    auto r = request("", 9, "core", nullptr, "table");
    EXPECT_EQ(
        error_text(
            [&] {
                render_placements(r, Topology::from_synthetic("pack:1 core:8 pu:1"), {},
                                  std::vector<NodeDefaults>{}, "n1", "");
            },
            Exit::Usage),
        "bind=core: 9 ranks but only 8 cores in the allowed CPUs 0-7 (use bind=hwthread, fewer ranks or more "
        "CPUs)");
    auto c = request("", 2, "core", nullptr, "table");
    c.allowed = "6-9";
    EXPECT_EQ(error_text(
                  [&] {
                      render_placements(c, Topology::from_synthetic("pack:1 core:8 pu:1"), {},
                                        std::vector<NodeDefaults>{}, "n1", "");
                  },
                  Exit::Usage),
              "--cpuset `6-9`: CPUs 8-9 are not in the topology (it has 0-7)");
}

}  // namespace
}  // namespace socker::topology
