// The executor's mount rules, as values.
#include <gtest/gtest.h>

#include "base/error.hpp"
#include "launcher/mount_policy.hpp"

namespace socker::launcher {
namespace {

Exit code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.code();
    }
    return Exit::Ok;
}

TEST(MountPolicy, WhoseMountPointsAreChecked) {
    MountOp own;  // /proc, /tmp ...: the launcher's
    own.kind = MountKind::Proc;
    EXPECT_FALSE(user_influenced(own));
    own.kind = MountKind::Bind;
    own.check = SourceCheck::Trusted;
    EXPECT_FALSE(user_influenced(own));
    MountOp user = own;
    for (SourceCheck c : {SourceCheck::AsUser, SourceCheck::OwnedByUser}) {
        user.check = c;
        EXPECT_TRUE(user_influenced(user));
    }
}

TEST(MountPolicy, DeniedDestinationsAndPrefixes) {
    const std::vector<std::string> denied = {"/", "/proc", "/sys", "/dev", "/etc", "/usr"};
    EXPECT_EQ(code_of([&] { check_destination("/proc/1", denied, "x"); }), Exit::Refused) << "a kernel tree";
    EXPECT_EQ(code_of([&] { check_destination("/dev/shm/x", denied, "x"); }), Exit::Refused);
    EXPECT_EQ(code_of([&] { check_destination("/etc", denied, "x"); }), Exit::Refused);
    EXPECT_EQ(code_of([&] { check_destination("/etc/myapp", denied, "x"); }), Exit::Ok)
        << "exact only elsewhere";
    EXPECT_EQ(code_of([&] { check_destination("/data", denied, "x"); }), Exit::Ok);
    const std::vector<std::string> prefixes = {"/home", "/scratch"};
    EXPECT_EQ(code_of([&] { check_within_prefixes("/scratch/u/x", prefixes, "x"); }), Exit::Ok);
    EXPECT_EQ(code_of([&] { check_within_prefixes("/scratchy", prefixes, "x"); }), Exit::Refused);
    EXPECT_EQ(code_of([&] { check_within_prefixes("/etc", prefixes, "x"); }), Exit::Refused);
}

TEST(MountPolicy, ResolvedPathsInsideTheRoot) {
    EXPECT_EQ(path_inside_root("/mnt/root/etc", "/mnt/root"), "/etc");
    EXPECT_EQ(path_inside_root("/mnt/root", "/mnt/root"), "/");
    EXPECT_EQ(path_inside_root("/dev/shm", "/mnt/root"), "/dev/shm") << "on a mount below the root";
    EXPECT_EQ(path_components("/a/./b//c/"), (std::vector<std::string>{"a", "b", "c"}));
}

}  // namespace
}  // namespace socker::launcher
