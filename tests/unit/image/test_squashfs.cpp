// The squashfs superblock check a launch makes before anything reaches the kernel.
#include <gtest/gtest.h>

#include <cstdint>

#include "image/squashfs.hpp"

namespace socker::image {
namespace {

void put(std::string& b, size_t at, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// A squashfs 4.0 superblock as mksquashfs writes it: 128 KiB blocks, zstd, tables in order.
std::string superblock(uint64_t bytes_used = 4096) {
    std::string b(96, '\0');
    b.replace(0, 4, "hsqs");
    put(b, 12, 131072, 4);  // block size
    put(b, 20, 6, 2);       // zstd
    put(b, 22, 17, 2);      // log2(block size)
    put(b, 28, 4, 2);       // version 4.0
    put(b, 30, 0, 2);
    put(b, 40, bytes_used, 8);
    put(b, 48, 4000, 8);  // id table
    put(b, 64, 100, 8);   // inode table
    put(b, 72, 2000, 8);  // directory table
    return b;
}

TEST(Squashfs, SaneSuperblockPasses) { EXPECT_EQ(squashfs_superblock_problem(superblock(), 8192), ""); }

TEST(Squashfs, EveryBrokenFieldIsNamed) {
    EXPECT_EQ(squashfs_superblock_problem("hsqs", 8192), "shorter than a squashfs superblock");
    std::string b = superblock();
    b[0] = 'x';
    EXPECT_EQ(squashfs_superblock_problem(b, 8192), "no squashfs magic");
    b = superblock();
    put(b, 28, 3, 2);
    EXPECT_EQ(squashfs_superblock_problem(b, 8192), "not squashfs 4.0");
    b = superblock();
    put(b, 12, 131071, 4);
    EXPECT_EQ(squashfs_superblock_problem(b, 8192), "bad block size");
    b = superblock();
    put(b, 22, 16, 2);  // log does not match the size
    EXPECT_EQ(squashfs_superblock_problem(b, 8192), "bad block size");
    b = superblock();
    put(b, 20, 9, 2);
    EXPECT_EQ(squashfs_superblock_problem(b, 8192), "unknown compression");
    // Truncated: the filesystem says it is longer than the file.
    EXPECT_EQ(squashfs_superblock_problem(superblock(4096), 4095), "filesystem larger than the file");
    b = superblock();
    put(b, 72, 50, 8);  // directory table before the inode table
    EXPECT_EQ(squashfs_superblock_problem(b, 8192), "tables out of place");
}

TEST(Squashfs, FileNamedByItsDigest) {
    EXPECT_EQ(squashfs_path("/store", std::string(64, 'a')),
              "/store/squashfs/" + std::string(64, 'a') + ".sqfs");
}

}  // namespace
}  // namespace socker::image
