#include <gtest/gtest.h>

#include "launcher/abi.hpp"

namespace mabi = socker::launcher::abi;
using mabi::Level;
using mabi::Verdict;

TEST(AbiVersion, FromFileName) {
    EXPECT_EQ(mabi::of_file_name("libmpich.so.12.3.0"), (mabi::Version{12, 3, 0}));
    EXPECT_EQ(mabi::of_file_name("/usr/lib/x86_64-linux-gnu/libmpi.so.40.30.4"), (mabi::Version{40, 30, 4}));
    EXPECT_EQ(mabi::of_file_name("libmpi.so.12"), (mabi::Version{12}));
    EXPECT_EQ(mabi::of_file_name("libmpi.so"), std::nullopt);
    EXPECT_EQ(mabi::of_file_name("libmpi.so."), std::nullopt);
    EXPECT_EQ(mabi::of_file_name("libmpi.so.12..1"), std::nullopt);
    EXPECT_EQ(mabi::of_file_name("libmpi.so.12.1."), std::nullopt);
    EXPECT_EQ(mabi::of_file_name("libmpi.so.12a"), std::nullopt);
    EXPECT_EQ(mabi::of_file_name("libmpi.so.99999999999999"), std::nullopt);
    EXPECT_EQ(mabi::of_file_name("libfoo.so.1/libbar.txt"), std::nullopt);
}

TEST(AbiVersion, GlibcSymbolVersions) {
    EXPECT_EQ(mabi::of_glibc_symbol_version("GLIBC_2.34"), (mabi::Version{2, 34}));
    EXPECT_EQ(mabi::of_glibc_symbol_version("GLIBC_2.2.5"), (mabi::Version{2, 2, 5}));
    EXPECT_EQ(mabi::of_glibc_symbol_version("GLIBC_PRIVATE"), std::nullopt);
    EXPECT_EQ(mabi::of_glibc_symbol_version("GLIBCXX_3.4"), std::nullopt);
    EXPECT_TRUE(mabi::older({2, 9}, {2, 34}));
    EXPECT_FALSE(mabi::older({2, 34}, {2, 34, 0}));
    EXPECT_TRUE(mabi::older({2, 34}, {2, 34, 1}));
}

// The compatibility table: (host, image, level) -> verdict, with crafted version numbers.
TEST(AbiCompare, Table) {
    struct Case {
        mabi::Version host, image;
        Level level;
        Verdict want;
    };
    const Case cases[] = {
        {{12, 1, 8}, {12, 1, 8}, Level::Major, Verdict::Compatible},
        {{12, 1, 8}, {12, 0, 0}, Level::Major, Verdict::Compatible},
        {{12, 0, 0}, {12, 5, 0}, Level::Major, Verdict::Compatible},
        {{12}, {40, 30, 4}, Level::Major, Verdict::Incompatible},
        {{40, 30, 4}, {12, 3, 0}, Level::Major, Verdict::Incompatible},
        {{12, 3, 0}, {12, 1, 0}, Level::Full, Verdict::Compatible},
        {{12, 1, 9}, {12, 1, 0}, Level::Full, Verdict::Compatible},
        {{12, 1, 0}, {12, 3, 0}, Level::Full, Verdict::CompatibleOlderHost},
        {{13, 1, 0}, {12, 1, 0}, Level::Full, Verdict::Incompatible},
        {{12, 1, 0}, {12, 1, 7}, Level::Strict, Verdict::Compatible},
        {{12, 2, 0}, {12, 1, 0}, Level::Strict, Verdict::Incompatible},
        {{12, 1, 0}, {12, 2, 0}, Level::Strict, Verdict::Incompatible},
        {{12}, {12, 0, 1}, Level::Strict, Verdict::Compatible},
        {{12}, {12, 1}, Level::Strict, Verdict::Incompatible},
        {{}, {12}, Level::Major, Verdict::Incompatible},
    };
    for (const Case& c : cases) {
        const mabi::Decision d = mabi::compare(c.host, c.image, c.level);
        EXPECT_EQ(d.verdict, c.want) << mabi::to_string(c.host) << " vs " << mabi::to_string(c.image)
                                     << " at " << mabi::to_string(c.level) << ": " << d.reason;
    }
}

TEST(AbiCompare, ReasonNamesBothVersions) {
    const mabi::Decision d = mabi::compare({12, 3, 0}, {40, 30, 4}, Level::Major);
    EXPECT_NE(d.reason.find("host 12.3.0"), std::string::npos) << d.reason;
    EXPECT_NE(d.reason.find("image 40.30.4"), std::string::npos) << d.reason;
}

TEST(AbiLevel, Words) {
    EXPECT_EQ(mabi::parse_level("major"), Level::Major);
    EXPECT_EQ(mabi::parse_level("full"), Level::Full);
    EXPECT_EQ(mabi::parse_level("strict"), Level::Strict);
    EXPECT_EQ(mabi::parse_level("Major"), std::nullopt);
    EXPECT_EQ(mabi::parse_level(""), std::nullopt);
}

TEST(AbiGlibc, NeededAndDefined) {
    socker::launcher::elf::ElfInfo lib;
    lib.version_needs = {{"libc.so.6", {"GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_2.14"}},
                         {"libm.so.6", {"GLIBC_2.29"}},
                         {"libstdc++.so.6", {"GLIBCXX_3.4.30"}}};
    EXPECT_EQ(mabi::glibc_needed(lib), (mabi::Version{2, 34}));
    socker::launcher::elf::ElfInfo libc;
    libc.version_defs = {"libc.so.6", "GLIBC_2.2.5", "GLIBC_2.31", "GLIBC_PRIVATE", "GLIBC_2.30"};
    EXPECT_EQ(mabi::glibc_defined(libc), (mabi::Version{2, 31}));
    EXPECT_EQ(mabi::glibc_needed(socker::launcher::elf::ElfInfo{}), std::nullopt);
}
