// topology/placement.hpp: the pure binding function, on cases worked out by hand (the golden
// tests cover the full matrix; these pin the meaning of each rule).
#include <gtest/gtest.h>

#include "base/error.hpp"
#include "topology/placement.hpp"

namespace socker::topology {
namespace {

const std::string kDir = SOCKER_TOPOLOGY_FIXTURES;

PlacementPolicy pol(BindKind b, Distribution d = Distribution::Block, std::optional<int> cpr = std::nullopt,
                    MemBind m = MemBind::None) {
    PlacementPolicy p;
    p.bind = b;
    p.distribution = d;
    p.cpus_per_rank = cpr;
    p.membind = m;
    return p;
}

std::vector<std::string> cpus(const NodePlacement& plan) {
    std::vector<std::string> out;
    for (const auto& r : plan.ranks) out.push_back(r.cpus.list());
    return out;
}
std::vector<std::string> numa(const NodePlacement& plan) {
    std::vector<std::string> out;
    for (const auto& r : plan.ranks) out.push_back(r.numa.list());
    return out;
}

Bitmap L(const char* s) { return Bitmap::parse_list(s, "test"); }

std::string error_of(const Topology& t, long n, const PlacementPolicy& p) {
    try {
        place_node(t, n, p);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Usage);
        return e.what();
    }
    return "no error";
}

using V = std::vector<std::string>;

// Intel: a core is CPUs i and i+40, so whole-core placements must show both OS indexes.
TEST(Placement, IntelCoresAreOsIndexPairs) {
    auto t = Topology::from_xml_file(kDir + "/intel-2s-ht.xml");
    EXPECT_EQ(cpus(place_node(t, 2, pol(BindKind::Core))), (V{"0-19,40-59", "20-39,60-79"}));
    EXPECT_EQ(numa(place_node(t, 2, pol(BindKind::Core))), (V{"0", "1"}));
    EXPECT_EQ(cpus(place_node(t, 4, pol(BindKind::Core, Distribution::Block, 2))),
              (V{"0,40", "1,41", "2,42", "3,43"}));
    // Cyclic alternates packages.
    EXPECT_EQ(cpus(place_node(t, 4, pol(BindKind::Core, Distribution::Cyclic, 2))),
              (V{"0,40", "20,60", "1,41", "21,61"}));
}

TEST(Placement, HwthreadBlockFillsACoreCyclicSpreadsCoresFirst) {
    auto t = Topology::from_xml_file(kDir + "/intel-2s-ht.xml");
    EXPECT_EQ(cpus(place_node(t, 4, pol(BindKind::HwThread, Distribution::Block, 1))),
              (V{"0", "40", "1", "41"}));
    EXPECT_EQ(cpus(place_node(t, 4, pol(BindKind::HwThread, Distribution::Cyclic, 1))),
              (V{"0", "20", "1", "21"}));
    // 80 ranks: every PU exactly once.
    auto all = place_node(t, 80, pol(BindKind::HwThread, Distribution::Cyclic));
    Bitmap seen;
    for (const auto& r : all.ranks) {
        EXPECT_EQ(r.cpus.weight(), 1u);
        EXPECT_FALSE(seen.intersects(r.cpus));
        seen = seen | r.cpus;
    }
    EXPECT_EQ(seen.list(), "0-79");
    // Cyclic deals the first thread of all 40 cores before any second thread.
    for (size_t r = 0; r < 40; ++r) EXPECT_LT(*all.ranks[r].cpus.indexes().begin(), 40u) << r;
}

TEST(Placement, EvenSplitLeavesTheRestUnusedAndSaysSo) {
    auto t = Topology::from_synthetic("pack:1 l3:1 core:8 pu:1");
    auto p = place_node(t, 3, pol(BindKind::Core));
    EXPECT_EQ(cpus(p), (V{"0-1", "2-3", "4-5"}));
    ASSERT_EQ(p.notes.size(), 1u);
    EXPECT_EQ(p.notes[0], "allowed CPUs 6-7 are not used by any rank");
}

TEST(Placement, EpycL3AndNumaCyclic) {
    auto t = Topology::from_synthetic("pack:2 numa:4 l3:2 core:8 pu:2(indexes=2*128:1*2)");
    // L3 #1 = cores 8-15: CPUs 8-15 and their siblings 136-143.
    EXPECT_EQ(cpus(place_node(t, 16, pol(BindKind::L3)))[1], "8-15,136-143");
    // Cyclic NUMA: package 0 NUMA 0, package 1 NUMA 4, package 0 NUMA 1, ...
    auto p = place_node(t, 4, pol(BindKind::Numa, Distribution::Cyclic));
    EXPECT_EQ(numa(p), (V{"0", "4", "1", "5"}));
    EXPECT_EQ(cpus(p)[0], "0-15,128-143");
    EXPECT_EQ(cpus(p)[1], "64-79,192-207");
    // Block NUMA with 2 ranks: an even split of the CPUs, one package each.
    EXPECT_EQ(numa(place_node(t, 2, pol(BindKind::Numa))), (V{"0", "4"}));
    // cpus_per_rank=16 fills a NUMA node (16 cores, 32 PUs) with two ranks before the next.
    EXPECT_EQ(numa(place_node(t, 3, pol(BindKind::Numa, Distribution::Block, 16))), (V{"0", "0", "1"}));
}

TEST(Placement, CoresPerRankStayInsideAnL3WhenTheyCan) {
    // 2 ranks of 6 cores on 2 L3 x 8 cores: 0-5 and 6-11 would straddle the first L3; the
    // planner keeps each rank inside one L3 (0-5, 8-13) and only spans when nothing else fits.
    auto t = Topology::from_synthetic("pack:1 numa:1 l3:2 core:8 pu:1");
    auto p = place_node(t, 2, pol(BindKind::Core, Distribution::Block, 6));
    EXPECT_EQ(cpus(p), (V{"0-5", "8-13"}));
    EXPECT_EQ(p.notes, (V{"allowed CPUs 6-7,14-15 are not used by any rank"}));
    auto q = place_node(t, 3, pol(BindKind::Core, Distribution::Block, 5));
    EXPECT_EQ(cpus(q), (V{"0-4", "5-9", "10-14"}));  // 3 x 5 cores fit only by spanning
    bool said = false;
    for (const auto& n : q.notes) said = said || n.find("some ranks span L3 caches") != std::string::npos;
    EXPECT_TRUE(said);
}

TEST(Placement, AsymmetricNumaSplitsByWeight) {
    auto t = Topology::from_xml_file(kDir + "/asym-numa.xml");  // NUMA 0: 20 PUs, NUMA 1: 12 PUs
    EXPECT_EQ(numa(place_node(t, 4, pol(BindKind::Numa))), (V{"0", "0", "0", "1"}));
    EXPECT_EQ(numa(place_node(t, 4, pol(BindKind::Numa, Distribution::Cyclic))), (V{"0", "1", "0", "1"}));
    EXPECT_EQ(cpus(place_node(t, 1, pol(BindKind::Numa)))[0], "0-9,16-25");
    // Cyclic stops giving NUMA 1 ranks once it has one per CPU.
    auto full = place_node(t, 32, pol(BindKind::Numa, Distribution::Cyclic));
    size_t on1 = 0;
    for (const auto& r : full.ranks) on1 += r.numa.list() == "1";
    EXPECT_EQ(on1, 12u);
}

TEST(Placement, RestrictedToASlurmCpuset) {
    auto t = Topology::from_xml_file(kDir + "/intel-2s-ht.xml");
    t.restrict_to(L("0-3,40-41"), "--cpuset");  // cores 0,1 whole; cores 2,3 one thread each
    EXPECT_EQ(cpus(place_node(t, 4, pol(BindKind::Core))), (V{"0,40", "1,41", "2", "3"}));
    EXPECT_EQ(cpus(place_node(t, 2, pol(BindKind::Socket))), (V{"0-3,40-41", "0-3,40-41"}));
    EXPECT_EQ(cpus(place_node(t, 2, pol(BindKind::Core, Distribution::Block, 2))), (V{"0,40", "1,41"}));
    // 3 ranks of 2 CPUs need the single-thread cores 2 and 3 together.
    EXPECT_EQ(cpus(place_node(t, 3, pol(BindKind::Core, Distribution::Block, 2))),
              (V{"0,40", "1,41", "2-3"}));
}

TEST(Placement, ErrorsNameThePolicyAndTheShortfall) {
    auto t = Topology::from_synthetic("pack:1 l3:1 core:8 pu:1");
    EXPECT_EQ(error_of(t, 9, pol(BindKind::Core)),
              "bind=core: 9 ranks but only 8 cores in the allowed CPUs 0-7 (use bind=hwthread, fewer ranks "
              "or more CPUs)");
    EXPECT_EQ(error_of(t, 9, pol(BindKind::HwThread)),
              "bind=hwthread: 9 ranks but only 8 hardware threads in the allowed CPUs 0-7 (use fewer ranks "
              "or more CPUs)");
    EXPECT_EQ(error_of(t, 3, pol(BindKind::Core, Distribution::Block, 3)),
              "bind=core cpus_per_rank=3: 3 ranks of 3 CPUs need 9 CPUs but only 8 are allowed (0-7)");
    EXPECT_EQ(error_of(t, 9, pol(BindKind::Numa)), "bind=numa: 9 ranks but only 8 allowed CPUs (0-7)");
    EXPECT_EQ(error_of(t, 3, pol(BindKind::L3, Distribution::Cyclic, 3)),
              "bind=l3 cpus_per_rank=3: 3 ranks do not fit: the L3 caches of the allowed CPUs 0-7 hold 2 "
              "ranks of 3 CPUs");
    auto arm = Topology::from_synthetic("pack:1 numa:4 l2:1 core:12 pu:1");
    EXPECT_NE(
        error_of(arm, 4, pol(BindKind::L3))
            .find("bind=l3: the topology (synthetic 'pack:1 numa:4 l2:1 core:12 pu:1') has no L3 caches"),
        std::string::npos);
    EXPECT_THROW(place_node(t, 0, pol(BindKind::Core)), Error);
}

TEST(Placement, BindNoneKeepsTheAllowedSet) {
    auto t = Topology::from_synthetic("pack:2 core:4 pu:1");
    auto p = place_node(t, 3, pol(BindKind::None));
    EXPECT_EQ(cpus(p), (V{"0-7", "0-7", "0-7"}));
    auto r = place_rank(t, L("2"), 0, 2, pol(BindKind::None));
    EXPECT_EQ(r.cpus.list(), "2");
}

// The rank inherits the whole allocation: it takes its entry of the node-wide plan.
TEST(PlaceRank, NodeWideWhenInheritingEverything) {
    auto t = Topology::from_synthetic("pack:1 l3:1 core:8 pu:1");
    for (long r = 0; r < 4; ++r) {
        auto pl = place_rank(t, t.cpus(), r, 4, pol(BindKind::Core));
        EXPECT_EQ(pl.cpus.list(), std::to_string(2 * r) + "-" + std::to_string(2 * r + 1));
    }
}

// Slurm's task/affinity bound each task to one CPU (the dev cluster: rank 1 of 2 on CPU 1).
TEST(PlaceRank, SlurmsTighterBindingIsKeptAndSaid) {
    auto t = Topology::from_synthetic("pack:1 l3:1 core:2 pu:1");
    for (long r = 0; r < 2; ++r) {
        auto pl = place_rank(t, L(std::to_string(r).c_str()), r, 2, pol(BindKind::Core));
        EXPECT_EQ(pl.cpus.list(), std::to_string(r));
        EXPECT_EQ(pl.numa.list(), "0");
        ASSERT_FALSE(pl.trace.empty());
        EXPECT_EQ(pl.trace.back(), "the inherited binding (cpus " + std::to_string(r) +
                                       ") is what bind=core gives this rank: kept");
    }
    // cpus_per_rank larger than what Slurm gave: kept, never widened.
    auto big = place_rank(t, L("1"), 1, 2, pol(BindKind::Core, Distribution::Block, 4));
    EXPECT_EQ(big.cpus.list(), "1");
    EXPECT_NE(big.trace.back().find("(cpus 1) is tighter than bind=core cpus_per_rank=4 asks: kept"),
              std::string::npos)
        << big.trace.back();
    // A NUMA policy asks for both cores: Slurm's single core is kept.
    auto numa_pl = place_rank(t, L("1"), 1, 2, pol(BindKind::Numa));
    EXPECT_EQ(numa_pl.cpus.list(), "1");
    EXPECT_EQ(numa_pl.trace.back(),
              "the inherited binding (cpus 1) is already as tight as bind=numa asks: kept");
}

TEST(PlaceRank, NarrowsInsideALooserInheritedSetOnlyWhereTheNodePlanAgrees) {
    auto t = Topology::from_synthetic("pack:2 core:4 pu:1");
    // Slurm bound tasks 0,1 to socket 0 and 2,3 to socket 1 (--cpu-bind=sockets). Core binding
    // gives each rank its own cores from the node-wide plan, inside its socket.
    auto r1 = place_rank(t, L("0-3"), 1, 4, pol(BindKind::Core));
    EXPECT_EQ(r1.cpus.list(), "2-3");
    EXPECT_EQ(r1.trace.back(), "inside the inherited binding (cpus 0-3)");
    auto r2 = place_rank(t, L("4-7"), 2, 4, pol(BindKind::Core, Distribution::Block, 2));
    EXPECT_EQ(r2.cpus.list(), "4-5");
    // A plan that would leave the inherited set keeps the inherited set.
    auto odd = place_rank(t, L("4-7"), 0, 4, pol(BindKind::Core, Distribution::Block, 2));
    EXPECT_EQ(odd.cpus.list(), "4-7");
    EXPECT_EQ(odd.trace.back(),
              "the node-wide plan puts local rank 0 on cpus 0-1, outside the inherited "
              "binding (cpus 4-7): inherited binding kept");
    // Same when the node-wide plan is impossible (16 ranks on 8 cores) but one rank fits.
    auto many = place_rank(t, L("4-7"), 9, 16, pol(BindKind::Core, Distribution::Block, 1));
    EXPECT_EQ(many.cpus.list(), "4-7");
    EXPECT_NE(many.trace.back().find("16 ranks of 1 CPUs need 16 CPUs"), std::string::npos)
        << many.trace.back();
}

TEST(PlaceRank, RejectsBadRankNumbersAndForeignCpus) {
    auto t = Topology::from_synthetic("pack:1 core:2 pu:1");
    EXPECT_THROW(place_rank(t, t.cpus(), 2, 2, pol(BindKind::Core)), Error);
    EXPECT_THROW(place_rank(t, t.cpus(), -1, 2, pol(BindKind::Core)), Error);
    EXPECT_THROW(place_rank(t, L("5"), 0, 1, pol(BindKind::Core)), Error);
}

TEST(PolicyNames, RoundTrip) {
    for (const auto& n : bind_kind_names()) EXPECT_EQ(to_string(*parse_bind_kind(n)), n);
    for (const auto& n : distribution_names()) EXPECT_EQ(to_string(*parse_distribution(n)), n);
    for (const auto& n : membind_names()) EXPECT_EQ(to_string(*parse_membind(n)), n);
    EXPECT_FALSE(parse_bind_kind("cores"));
    EXPECT_EQ(describe(pol(BindKind::L3, Distribution::Cyclic, 4, MemBind::Local)),
              "bind=l3 distribution=cyclic membind=local cpus_per_rank=4");
}

}  // namespace
}  // namespace socker::topology
