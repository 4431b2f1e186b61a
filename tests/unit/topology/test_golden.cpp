// Golden-output tests of the binding planner across realistic node topologies, every policy and
// distribution, rank counts that do and do not divide evenly; and the invariants every plan must
// hold, checked independently of the planner on the same matrix.
//
// Golden files: tests/fixtures/topology/golden/<topology>.txt. After an intended change, rewrite
// them with SOCKER_UPDATE_GOLDEN=1 and review the diff like code.
#include <gtest/gtest.h>
#include <hwloc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "base/error.hpp"
#include "topology/placement.hpp"

namespace socker::topology {
namespace {

const std::string kDir = SOCKER_TOPOLOGY_FIXTURES;

struct Case {
    long ranks;
    std::optional<int> cpus_per_rank;
};

struct Fixture {
    std::string name;
    std::string xml;        // file under fixtures/topology, or
    std::string synthetic;  // an hwloc synthetic description
    std::string cpuset;     // restrict to these CPUs (Slurm's step cpuset), "" = all
    std::vector<Case> cases;
};

const std::vector<Fixture>& fixtures() {
    static const std::vector<Fixture> f = {
        // 2 x Xeon Gold 6248, 20 cores x 2 hyperthreads; a core is CPUs i and i+40.
        {"intel-2s-ht",
         "intel-2s-ht.xml",
         "",
         "",
         {{1, {}},
          {2, {}},
          {3, {}},
          {4, {}},
          {6, {}},
          {7, {}},
          {20, {}},
          {40, {}},
          {41, {}},
          {80, {}},
          {81, {}},
          {4, 8},
          {6, 3},
          {10, 4},
          {3, 20},
          {13, 6}}},
        // AMD EPYC 2 x 64 cores, NPS4 (4 NUMA nodes per socket), an L3 per 8 cores (CCD), SMT2
        // numbered as Linux does on EPYC: a core is CPUs i and i+128.
        {"epyc-2x64",
         "",
         "pack:2 numa:4 l3:2 core:8 pu:2(indexes=2*128:1*2)",
         "",
         {{1, {}},
          {2, {}},
          {3, {}},
          {8, {}},
          {12, {}},
          {16, {}},
          {24, {}},
          {100, {}},
          {128, {}},
          {129, {}},
          {16, 8},
          {32, 4},
          {5, 16},
          {17, 16},
          {40, 6}}},
        // Arm, A64FX-like: 4 NUMA nodes (CMGs) x 12 cores, an L2 per CMG, no L3, no SMT.
        {"arm-4x12",
         "",
         "pack:1 numa:4 l2:1 core:12 pu:1",
         "",
         {{1, {}},
          {2, {}},
          {4, {}},
          {5, {}},
          {12, {}},
          {47, {}},
          {48, {}},
          {49, {}},
          {4, 12},
          {8, 6},
          {5, 12},
          {7, 5}}},
        // A single-socket 8-core workstation.
        {"single-8",
         "",
         "pack:1 l3:1 core:8 pu:1",
         "",
         {{1, {}}, {2, {}}, {3, {}}, {5, {}}, {8, {}}, {9, {}}, {2, 4}, {3, 2}, {2, 3}, {3, 3}}},
        // Asymmetric NUMA: 10 and 6 cores (SMT2, i and i+16), plus a CPU-less CXL memory node.
        {"asym-numa",
         "asym-numa.xml",
         "",
         "",
         {{1, {}},
          {2, {}},
          {3, {}},
          {4, {}},
          {5, {}},
          {7, {}},
          {16, {}},
          {17, {}},
          {32, {}},
          {33, {}},
          {4, 4},
          {3, 8},
          {2, 12},
          {5, 6}}},
        // The Intel node as lstopo sees it inside a Slurm step: 6 whole cores on package 0 and 6
        // single threads on package 1 (CPUs 14-25,54-59).
        {"intel-slurm-step",
         "intel-2s-ht-slurm.xml",
         "",
         "",
         {{1, {}},
          {2, {}},
          {3, {}},
          {4, {}},
          {5, {}},
          {12, {}},
          {13, {}},
          {18, {}},
          {19, {}},
          {6, 2},
          {3, 6},
          {9, 2},
          {4, 4}}},
        // EPYC with a Slurm cpuset crossing an L3 and a NUMA boundary: cores 8-23 and siblings.
        {"epyc-slurm-cpuset",
         "",
         "pack:2 numa:4 l3:2 core:8 pu:2(indexes=2*128:1*2)",
         "8-23,136-151",
         {{1, {}},
          {2, {}},
          {3, {}},
          {4, {}},
          {16, {}},
          {17, {}},
          {32, {}},
          {33, {}},
          {2, 8},
          {4, 4},
          {3, 10}}},
        // Intel with a partial cpuset: cores 0-1 whole, cores 2-3 one thread each.
        {"intel-partial-cores",
         "intel-2s-ht.xml",
         "",
         "0-3,40-41",
         {{1, {}}, {2, {}}, {3, {}}, {4, {}}, {6, {}}, {7, {}}, {3, 2}, {2, 3}}},
    };
    return f;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// gtest prints a parameter's name, not its bytes.
void PrintTo(const Fixture& f, std::ostream* os) { *os << f.name; }

// XML fixtures are named by file name only, so golden files do not depend on the checkout path.
Topology load(const Fixture& f) {
    Topology t = f.xml.empty() ? Topology::from_synthetic(f.synthetic)
                               : Topology::from_xml_text(slurp(kDir + "/" + f.xml), f.xml);
    if (!f.cpuset.empty()) t.restrict_to(Bitmap::parse_list(f.cpuset, "cpuset"), "cpuset");
    return t;
}

const BindKind kBinds[] = {BindKind::HwThread, BindKind::Core, BindKind::L3, BindKind::Numa,
                           BindKind::Socket};
const Distribution kDists[] = {Distribution::Block, Distribution::Cyclic};

PlacementPolicy policy(BindKind b, Distribution d, const Case& c) {
    PlacementPolicy p;
    p.bind = b;
    p.distribution = d;
    p.cpus_per_rank = c.cpus_per_rank;
    p.membind = MemBind::Local;
    return p;
}

std::string header(const PlacementPolicy& p, long ranks) {
    return "== " + describe(p) + " ranks=" + std::to_string(ranks) + "\n";
}

std::string render(const Fixture& f) {
    Topology t = load(f);
    std::string out =
        "# " + f.name + ": " + t.origin() + "\n# " + t.summary() + "; allowed " + t.cpus().list() + "\n";
    for (BindKind b : kBinds)
        for (Distribution d : kDists)
            for (const Case& c : f.cases) {
                PlacementPolicy p = policy(b, d, c);
                out += header(p, c.ranks);
                try {
                    NodePlacement plan = place_node(t, c.ranks, p);
                    for (size_t r = 0; r < plan.ranks.size(); ++r)
                        out += std::to_string(r) + " cpus=" + plan.ranks[r].cpus.list() +
                               " numa=" + plan.ranks[r].numa.list() + "\n";
                    for (const auto& n : plan.notes) out += "note: " + n + "\n";
                } catch (const Error& e) {
                    out += "error(" + std::to_string(static_cast<int>(e.code())) + "): " + e.what() + "\n";
                }
            }
    return out;
}

// Compares with the golden file, showing the first differing line; rewrites it on request.
void check_golden(const std::string& name, const std::string& actual) {
    const std::string path = kDir + "/golden/" + name;
    if (const char* u = std::getenv("SOCKER_UPDATE_GOLDEN"); u && *u && std::string(u) != "0") {
        std::ofstream(path, std::ios::binary) << actual;
        std::printf("rewrote %s\n", path.c_str());
        return;
    }
    const std::string want = slurp(path);
    ASSERT_FALSE(want.empty()) << "missing golden file " << path << " (SOCKER_UPDATE_GOLDEN=1 writes it)";
    if (want == actual) return;
    std::istringstream a(actual), w(want);
    std::string la, lw;
    for (int line = 1;; ++line) {
        bool ga = static_cast<bool>(std::getline(a, la)), gw = static_cast<bool>(std::getline(w, lw));
        if (!ga && !gw) break;
        if (!ga || !gw || la != lw) {
            ADD_FAILURE() << path << ":" << line << " differs\n  golden: " << (gw ? lw : "<end>")
                          << "\n  actual: " << (ga ? la : "<end>");
            return;
        }
    }
}

class Golden : public ::testing::TestWithParam<Fixture> {};

TEST_P(Golden, PlansMatchTheGoldenFile) {
    const std::string first = render(GetParam());
    EXPECT_EQ(first, render(GetParam())) << "not deterministic";
    check_golden(GetParam().name + ".txt", first);
}

// ---------------------------------------------------------------------------- invariants

std::vector<hwloc_obj_t> all_of(const Topology& t, hwloc_obj_type_t type) {
    std::vector<hwloc_obj_t> v;
    v.reserve(static_cast<size_t>(std::max(0, hwloc_get_nbobjs_by_type(t.raw(), type))));
    for (int i = 0; i < hwloc_get_nbobjs_by_type(t.raw(), type); ++i)
        v.push_back(hwloc_get_obj_by_type(t.raw(), type, static_cast<unsigned>(i)));
    return v;
}

// The local NUMA nodes of `cpus`, recomputed here by walking the nodes: for every CPU, the
// nodes covering it whose CPU set is the smallest (never a machine-wide CXL node when the
// CPU has a closer one).
Bitmap local_nodes(const Topology& t, const Bitmap& cpus) {
    Bitmap out;
    const auto nodes = all_of(t, HWLOC_OBJ_NUMANODE);
    for (unsigned cpu : cpus.indexes()) {
        unsigned smallest = ~0u;
        for (hwloc_obj_t n : nodes)
            if (Bitmap::copy_of(n->cpuset).contains(cpu))
                smallest = std::min(smallest, Bitmap::copy_of(n->cpuset).weight());
        for (hwloc_obj_t n : nodes)
            if (Bitmap::copy_of(n->cpuset).contains(cpu) && Bitmap::copy_of(n->cpuset).weight() == smallest)
                out.set(n->os_index);
    }
    return out;
}

std::set<unsigned> cores_touched(const Topology& t, const Bitmap& cpus) {
    std::set<unsigned> out;
    for (hwloc_obj_t c : all_of(t, HWLOC_OBJ_CORE))
        if (hwloc_bitmap_intersects(c->cpuset, cpus.raw())) out.insert(c->logical_index);
    return out;
}

void check_invariants(const Topology& t, const PlacementPolicy& p, long n, const NodePlacement& plan,
                      const std::string& what) {
    SCOPED_TRACE(what);
    const Bitmap allowed = t.cpus();
    ASSERT_EQ(plan.ranks.size(), static_cast<size_t>(n));
    hwloc_obj_type_t domain = p.bind == BindKind::L3     ? HWLOC_OBJ_L3CACHE
                              : p.bind == BindKind::Numa ? HWLOC_OBJ_NUMANODE
                                                         : HWLOC_OBJ_PACKAGE;
    std::set<unsigned> cores_used;
    Bitmap pus_used;
    for (size_t r = 0; r < plan.ranks.size(); ++r) {
        const Placement& pl = plan.ranks[r];
        SCOPED_TRACE("local rank " + std::to_string(r) + " cpus " + pl.cpus.list());
        // Never empty, never outside the allowed set.
        EXPECT_FALSE(pl.cpus.empty());
        EXPECT_TRUE(allowed.includes(pl.cpus));
        // Memory binding matches the CPUs' NUMA nodes; never a CPU-less node.
        EXPECT_EQ(pl.numa, local_nodes(t, pl.cpus));
        EXPECT_FALSE(pl.numa.empty());
        if (p.cpus_per_rank && (p.bind == BindKind::HwThread || p.bind == BindKind::Core)) {
            EXPECT_GE(pl.cpus.weight(), static_cast<unsigned>(*p.cpus_per_rank));
        }
        if (p.cpus_per_rank && p.bind == BindKind::HwThread) {
            EXPECT_EQ(pl.cpus.weight(), static_cast<unsigned>(*p.cpus_per_rank));
        }
        if (p.bind == BindKind::Core) {
            // Whole cores (as far as allowed), and no core shared between ranks.
            for (unsigned c : cores_touched(t, pl.cpus)) {
                EXPECT_TRUE(cores_used.insert(c).second) << "core L#" << c << " shared";
                Bitmap core =
                    Bitmap::copy_of(hwloc_get_obj_by_type(t.raw(), HWLOC_OBJ_CORE, c)->cpuset) & allowed;
                EXPECT_TRUE(pl.cpus.includes(core)) << "partial core L#" << c;
            }
        }
        if (p.bind == BindKind::HwThread) {
            EXPECT_FALSE(pus_used.intersects(pl.cpus)) << "hardware thread shared";
            pus_used = pus_used | pl.cpus;
        }
        if (p.bind == BindKind::L3 || p.bind == BindKind::Numa || p.bind == BindKind::Socket) {
            // Exactly the allowed part of one domain.
            size_t matches = 0;
            for (hwloc_obj_t d : all_of(t, domain))
                matches += (Bitmap::copy_of(d->cpuset) & allowed) == pl.cpus;
            EXPECT_GE(matches, 1u) << "not exactly one " << hwloc_obj_type_string(domain);
        }
    }
    // Block keeps rank order along the machine for exclusive policies.
    if (p.distribution == Distribution::Block && (p.bind == BindKind::Core || p.bind == BindKind::HwThread)) {
        auto first_logical = [&](const Bitmap& b) {
            return hwloc_get_pu_obj_by_os_index(t.raw(), b.indexes().front())->logical_index;
        };
        for (size_t r = 1; r < plan.ranks.size(); ++r)
            EXPECT_LT(first_logical(plan.ranks[r - 1].cpus), first_logical(plan.ranks[r].cpus));
    }
}

TEST_P(Golden, InvariantsHoldForEveryPolicy) {
    const Fixture& f = GetParam();
    Topology t = load(f);
    size_t planned = 0, refused = 0;
    for (BindKind b : kBinds)
        for (Distribution d : kDists)
            for (const Case& c : f.cases) {
                PlacementPolicy p = policy(b, d, c);
                const std::string what = f.name + " " + describe(p) + " ranks=" + std::to_string(c.ranks);
                try {
                    check_invariants(t, p, c.ranks, place_node(t, c.ranks, p), what);
                    ++planned;
                } catch (const Error& e) {
                    ++refused;
                    EXPECT_EQ(e.code(), Exit::Usage) << what;
                    // Refusals only where a policy really cannot be met.
                    const unsigned cpus = t.cpus().weight();
                    const bool too_many =
                        static_cast<unsigned long>(c.ranks) * c.cpus_per_rank.value_or(1) > cpus;
                    const bool exclusive_core =
                        b == BindKind::Core && c.ranks > static_cast<long>(all_of(t, HWLOC_OBJ_CORE).size());
                    const bool no_type = b == BindKind::L3 && all_of(t, HWLOC_OBJ_L3CACHE).empty();
                    const bool chunky = c.cpus_per_rank.has_value();  // per-domain capacity
                    EXPECT_TRUE(too_many || exclusive_core || no_type || chunky) << what << ": " << e.what();
                }
            }
    EXPECT_GT(planned, refused) << f.name;
}

std::string fixture_name(const ::testing::TestParamInfo<Fixture>& i) {
    std::string s = i.param.name;
    for (char& c : s)
        if (c == '-') c = '_';
    return s;
}

INSTANTIATE_TEST_SUITE_P(Topologies, Golden, ::testing::ValuesIn(fixtures()), fixture_name);

// ---------------------------------------------------------------- cross-check with hwloc-calc

// hwloc's own tool, independent of this code, names the OS indexes of logical cores. Skipped
// where hwloc-calc is not installed (Debian package hwloc).
std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");  // NOLINT(cert-env33-c): a fixed tool on fixture paths
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (::pclose(p) != 0) return {};
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

Bitmap from_commas(const std::string& s) {
    Bitmap b;
    std::istringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) b.set(static_cast<unsigned>(std::stoul(item)));
    return b;
}

TEST(HwlocCalc, CoreAndL3PlacementsAreTheOsIndexesHwlocCalcNames) {
    if (run("command -v hwloc-calc").empty()) GTEST_SKIP() << "hwloc-calc not installed";
    const std::string xml = kDir + "/intel-2s-ht.xml";
    auto t = Topology::from_xml_file(xml);
    PlacementPolicy p;
    p.bind = BindKind::Core;
    auto plan = place_node(t, 20, p);  // 2 cores per rank
    for (size_t r = 0; r < 20; r += 7) {
        std::string want =
            run("hwloc-calc -i '" + xml + "' --physical-output --intersect pu core:" + std::to_string(2 * r) +
                "-" + std::to_string(2 * r + 1));
        ASSERT_FALSE(want.empty());
        EXPECT_EQ(plan.ranks[r].cpus, from_commas(want)) << "rank " << r << " hwloc-calc: " << want;
    }
    const std::string epyc = "pack:2 numa:4 l3:2 core:8 pu:2(indexes=2*128:1*2)";
    auto e = Topology::from_synthetic(epyc);
    p.bind = BindKind::L3;
    auto l3 = place_node(e, 16, p);
    for (size_t r = 0; r < 16; r += 5) {
        std::string want =
            run("hwloc-calc -i '" + epyc + "' --physical-output --intersect pu l3:" + std::to_string(r));
        ASSERT_FALSE(want.empty());
        EXPECT_EQ(l3.ranks[r].cpus, from_commas(want)) << "rank " << r;
        std::string nodes =
            run("hwloc-calc -i '" + epyc + "' --physical-output --intersect numa l3:" + std::to_string(r));
        EXPECT_EQ(l3.ranks[r].numa, from_commas(nodes)) << "rank " << r;
    }
}

}  // namespace
}  // namespace socker::topology
