#include <gtest/gtest.h>

#include "base/text.hpp"

namespace socker {
namespace {

TEST(Text, SplitTrimAndNumbers) {
    EXPECT_EQ(split_list("a,,b,", ','), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(split_list(" a , b ,", ',', true), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(split_list(" a , b ,", ','), (std::vector<std::string>{" a ", " b "}));
    EXPECT_TRUE(split_list("", ':').empty());
    EXPECT_EQ(trim(" \tx y\t "), "x y");
    EXPECT_EQ(number_after("uid_1001", "uid_"), 1001);
    EXPECT_FALSE(number_after("uid_", "uid_"));
    EXPECT_FALSE(number_after("uid_12a", "uid_"));
    EXPECT_FALSE(number_after("uid_1234567890123456789", "uid_")) << "19 digits do not fit";
    EXPECT_FALSE(number_after("gid_1", "uid_"));
}

TEST(Text, PathsAreComparedComponentWise) {
    EXPECT_EQ(lexically_normal("/a//b/./c/../d/"), "/a/b/d");
    EXPECT_EQ(lexically_normal("/../../x"), "/x");
    EXPECT_EQ(lexically_normal(""), "/");
    EXPECT_TRUE(path_under("/home/a", "/home"));
    EXPECT_TRUE(path_under("/home", "/home"));
    EXPECT_FALSE(path_under("/homex", "/home"));
    EXPECT_FALSE(path_under("/home/ab", "/home/a"));
    EXPECT_TRUE(path_under("/anything", "/"));
    EXPECT_TRUE(ends_with("a.tar.gz", ".tar.gz"));
    EXPECT_FALSE(ends_with("gz", ".tar.gz"));
}

}  // namespace
}  // namespace socker
