#include <gtest/gtest.h>

#include "base/cpulist.hpp"
#include "base/error.hpp"

namespace socker {
namespace {

TEST(CpuList, StrictLinuxListStrings) {
    EXPECT_EQ(parse_cpu_list("0-3,8,10-11", "x"), (std::vector<unsigned>{0, 1, 2, 3, 8, 10, 11}));
    EXPECT_EQ(parse_cpu_list("3,1,1-2", "x"), (std::vector<unsigned>{1, 2, 3}));
    EXPECT_TRUE(parse_cpu_list("", "x").empty());
    EXPECT_EQ(parse_cpu_list("65535", "x"), (std::vector<unsigned>{65535}));
    for (const char* bad :
         {"1-", "-1", "3-1", "1,", ",1", "1,,2", "a", "1 2", "65536", "99999999999999999999", "0x1"}) {
        try {
            parse_cpu_list(bad, "--cpuset");
            ADD_FAILURE() << "accepted " << bad;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Exit::Usage) << bad;
            EXPECT_NE(std::string(e.what()).find("--cpuset"), std::string::npos);
        }
    }
}

}  // namespace
}  // namespace socker
