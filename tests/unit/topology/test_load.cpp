// topology/topology.hpp: CPU lists and loading topologies (XML, synthetic, this machine).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "base/error.hpp"
#include "topology/topology.hpp"

namespace socker::topology {
namespace {

const std::string kDir = SOCKER_TOPOLOGY_FIXTURES;

template <typename F>
Error expect_error(F&& f, Exit code, const std::string& needle) {
    try {
        f();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line: " << e.what();
        return e;
    }
    ADD_FAILURE() << "no error; wanted one containing: " << needle;
    return Error(Exit::Ok, "", "");
}

TEST(Bitmap, ParsesAndPrintsLinuxLists) {
    EXPECT_EQ(Bitmap::parse_list("0-3,8", "t").list(), "0-3,8");
    EXPECT_EQ(Bitmap::parse_list("8,0-3", "t").list(), "0-3,8");
    EXPECT_EQ(Bitmap::parse_list("1,2,3,5", "t").list(), "1-3,5");
    EXPECT_EQ(Bitmap::parse_list("7", "t").list(), "7");
    EXPECT_EQ(Bitmap::parse_list("4-4", "t").list(), "4");
    EXPECT_TRUE(Bitmap::parse_list("", "t").empty());
    EXPECT_EQ(Bitmap::parse_list("", "t").list(), "");
    EXPECT_EQ(Bitmap::parse_list("0-3,8", "t").weight(), 5u);
    EXPECT_EQ(Bitmap::parse_list("2,9", "t").indexes(), (std::vector<unsigned>{2, 9}));
}

TEST(Bitmap, RejectsMalformedLists) {
    for (const char* bad : {"a", "1-", "-1", "3-1", "1,,2", "1,", " 1", "1 ", "0x3", "1-2-3", "70000", "1;2"})
        expect_error([&] { Bitmap::parse_list(bad, "--cpuset"); }, Exit::Usage, "--cpuset");
}

TEST(Bitmap, SetOperations) {
    Bitmap a = Bitmap::parse_list("0-7", "a"), b = Bitmap::parse_list("4-11", "b");
    EXPECT_EQ((a & b).list(), "4-7");
    EXPECT_EQ((a | b).list(), "0-11");
    EXPECT_EQ((a - b).list(), "0-3");
    EXPECT_TRUE(a.includes(Bitmap::parse_list("1,3", "c")));
    EXPECT_FALSE(a.includes(b));
    EXPECT_TRUE(a.intersects(b));
    Bitmap c = a;  // copies are independent
    c.set(40);
    EXPECT_EQ(a.list(), "0-7");
    EXPECT_EQ(c.list(), "0-7,40");
    Bitmap d = std::move(c);
    EXPECT_EQ(d.list(), "0-7,40");
}

TEST(Topology, SyntheticDescription) {
    auto t = Topology::from_synthetic("pack:2 numa:4 l3:2 core:8 pu:2");
    EXPECT_EQ(t.cpus().list(), "0-255");
    EXPECT_EQ(t.summary(), "2 packages, 8 NUMA nodes, 16 L3 caches, 128 cores, 256 PUs");
    EXPECT_EQ(t.origin(), "synthetic 'pack:2 numa:4 l3:2 core:8 pu:2'");
    EXPECT_EQ(t.numa_of(Bitmap::parse_list("0,255", "x")).list(), "0,7");
}

TEST(Topology, XmlFileKeepsOsIndexes) {
    auto t = Topology::from_xml_file(kDir + "/intel-2s-ht.xml");
    EXPECT_EQ(t.cpus().list(), "0-79");
    EXPECT_EQ(t.summary(), "2 packages, 2 NUMA nodes, 2 L3 caches, 40 cores, 80 PUs");
    // CPU 40 is the hyperthread sibling of CPU 0: both on package 0, NUMA node 0.
    EXPECT_EQ(t.numa_of(Bitmap::parse_list("40", "x")).list(), "0");
    EXPECT_EQ(t.numa_of(Bitmap::parse_list("20", "x")).list(), "1");
}

// NUMA node 2 has no CPU of its own (a CXL expander); hwloc attaches it to the whole machine,
// so it "covers" every CPU, yet it is nobody's local memory.
TEST(Topology, MachineWideMemoryNodeIsNobodysLocalNode) {
    auto t = Topology::from_xml_file(kDir + "/asym-numa.xml");
    EXPECT_EQ(t.summary(), "1 package, 3 NUMA nodes, 2 L3 caches, 16 cores, 32 PUs");
    EXPECT_EQ(t.numa_of(t.cpus()).list(), "0-1");  // never the CXL node 2
}

TEST(Topology, MalformedInputsAreOneLineUsageErrors) {
    expect_error([] { Topology::from_synthetic("pack:2 core:3"); }, Exit::Usage,
                 "not a valid hwloc synthetic");
    expect_error([] { Topology::from_synthetic("pack:32 core:1024 pu:4"); }, Exit::Usage,
                 "more than 65536 PUs");
    expect_error([] { Topology::from_synthetic("bogus"); }, Exit::Usage, "topology `bogus`");
    expect_error([] { Topology::from_synthetic("pack:2\ncore:2 pu:1"); }, Exit::Usage, "synthetic");
    expect_error([] { Topology::from_xml_text("<xml>", "node.xml"); }, Exit::Usage,
                 "topology `node.xml`: not a valid hwloc XML");
    expect_error([] { Topology::from_xml_text("", "empty.xml"); }, Exit::Usage, "not a valid hwloc XML");
    expect_error(
        [] {
            Topology::from_xml_text("<?xml version=\"1.0\"?><topology version=\"2.0\"></topology>", "t.xml");
        },
        Exit::Usage, "t.xml");
    expect_error([] { Topology::from_xml_file(kDir + "/does-not-exist.xml"); }, Exit::Usage, "No such file");
    // A truncated copy of a real file.
    std::ifstream in(kDir + "/intel-2s-ht.xml");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    expect_error([&] { Topology::from_xml_text(text.substr(0, text.size() / 2), "cut.xml"); }, Exit::Usage,
                 "cut.xml");
}

TEST(Topology, Classify) {
    using K = Topology::SpecKind;
    EXPECT_EQ(Topology::classify(""), K::ThisMachine);
    EXPECT_EQ(Topology::classify("node.xml"), K::XmlFile);
    EXPECT_EQ(Topology::classify("./node"), K::XmlFile);
    EXPECT_EQ(Topology::classify("/tmp/a:b.xml"), K::XmlFile);
    EXPECT_EQ(Topology::classify("nodefile"), K::XmlFile);
    EXPECT_EQ(Topology::classify("pack:2 numa:4 l3:2 core:8 pu:2"), K::Synthetic);
}

TEST(Topology, RestrictKeepsOnlyTheAllowedCpus) {
    auto t = Topology::from_xml_file(kDir + "/intel-2s-ht.xml");
    t.restrict_to(Bitmap::parse_list("14-25,54-59", "x"), "--cpuset");
    EXPECT_EQ(t.cpus().list(), "14-25,54-59");
    EXPECT_EQ(t.summary(), "2 packages, 2 NUMA nodes, 2 L3 caches, 12 cores, 18 PUs");
    EXPECT_NE(t.origin().find("restricted to 14-25,54-59"), std::string::npos);
    // A restriction inside one package drops the other package and its NUMA node.
    auto u = Topology::from_xml_file(kDir + "/intel-2s-ht.xml");
    u.restrict_to(Bitmap::parse_list("0-3", "x"), "--cpuset");
    EXPECT_EQ(u.summary(), "1 package, 1 NUMA node, 1 L3 cache, 4 cores, 4 PUs");
}

TEST(Topology, RestrictRejectsUnknownOrEmptySets) {
    auto t = Topology::from_synthetic("pack:1 core:8 pu:1");
    expect_error([&] { t.restrict_to(Bitmap::parse_list("4-9", "x"), "--cpuset"); }, Exit::Usage,
                 "CPUs 8-9 are not in the topology (it has 0-7)");
    expect_error([&] { t.restrict_to(Bitmap(), "--cpuset"); }, Exit::Usage, "empty CPU set");
    EXPECT_EQ(t.cpus().list(), "0-7");  // unchanged after the refusals
}

TEST(Topology, ThisMachineLoads) {
    auto t = Topology::this_machine();
    EXPECT_FALSE(t.cpus().empty());
    EXPECT_FALSE(t.numa_of(t.cpus()).empty());
    EXPECT_EQ(t.origin(), "this machine");
}

}  // namespace
}  // namespace socker::topology
