// launcher::in_user_process: the child that does all work on a user's own store. Needs root (it
// drops to nobody); skipped otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <string>

#include "base/error.hpp"
#include "launcher/linux_sys.hpp"
#include "launcher/user_process.hpp"

namespace socker::launcher {
namespace {

Identity nobody() {
    Identity id;
    id.uid = 65534;
    id.gid = 65534;
    id.groups = {65534};
    id.name = "nobody";
    return id;
}

TEST(UserProcess, RunsAsTheUserAndReturnsTheResult) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop privileges";
    const std::string r = in_user_process(nobody(), [] {
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        ::getresuid(&ru, &eu, &su);
        ::getresgid(&rg, &eg, &sg);
        return std::to_string(ru) + "," + std::to_string(eu) + "," + std::to_string(su) + " " +
               std::to_string(rg) + "," + std::to_string(eg) + "," + std::to_string(sg) + " " +
               std::to_string(::getgroups(0, nullptr));
    });
    EXPECT_EQ(r, "65534,65534,65534 65534,65534,65534 1");
    EXPECT_EQ(::geteuid(), 0u) << "the caller keeps its privileges";
    // Results of any size and content come back whole.
    EXPECT_EQ(in_user_process(nobody(), [] { return std::string(300000, '\n'); }), std::string(300000, '\n'));
}

TEST(UserProcess, ErrorsComeBackWithTheirCodeAndMessage) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop privileges";
    try {
        in_user_process(nobody(),
                        []() -> std::string { throw Error(Exit::BadImage, "image", "x:1", 0, "corrupt"); });
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::BadImage);
        EXPECT_STREQ(e.what(), "image `x:1`: corrupt");
    }
    try {
        in_user_process(nobody(), []() -> std::string {
            ::kill(::getpid(), SIGKILL);
            return "unreachable";
        });
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Internal);
        EXPECT_NE(std::string(e.what()).find("killed by signal"), std::string::npos) << e.what();
    }
}

TEST(UserProcess, IgnoredSigchldAndOversizedRepliesAreHandled) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop privileges";
    // A caller that ignores SIGCHLD (it survives the setuid exec) must not lose the child.
    struct sigaction ign {
    }, old{};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGCHLD, &ign, &old);
    EXPECT_EQ(in_user_process(nobody(), [] { return std::string("ok"); }), "ok");
    struct sigaction now {};
    ::sigaction(SIGCHLD, nullptr, &now);
    EXPECT_EQ(now.sa_handler, SIG_IGN) << "the caller's disposition is restored";
    ::sigaction(SIGCHLD, &old, nullptr);
    // The user's data is bounded: a reply over 16 MiB is refused, not held.
    try {
        in_user_process(nobody(), [] { return std::string((16u << 20) + 1, 'x'); });
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::BadImage);
        EXPECT_NE(std::string(e.what()).find("larger than 16 MiB"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace socker::launcher

namespace socker::launcher {
namespace {

std::string cap_eff() {
    FILE* f = std::fopen("/proc/self/status", "r");
    char line[256];
    std::string v;
    while (f && std::fgets(line, sizeof line, f))
        if (std::string(line).rfind("CapEff:", 0) == 0) v = line;
    if (f) std::fclose(f);
    return v;
}

TEST(OpenAsUser, RefusesProcMagicLinksAndRestoresTheCapabilities) {
    const std::string before = cap_eff();
    for (const char* p : {"/proc/self/cwd", "/proc/self/root/etc/hostname", "/proc/1/root"}) {
        try {
            open_as_user(p, ::getuid() == 0 ? 65534 : ::getuid(), ::getgid() == 0 ? 65534 : ::getgid(), true);
            ADD_FAILURE() << "opened " << p;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Exit::Refused) << p << ": " << e.what();
        }
        EXPECT_EQ(cap_eff(), before) << "effective capabilities restored after " << p;
    }
    // A plain path still opens, with the caller's rights restored afterwards.
    UserOpen uo = open_as_user("/etc", ::getuid() == 0 ? 65534 : ::getuid(),
                               ::getgid() == 0 ? 65534 : ::getgid(), false);
    EXPECT_TRUE(uo.is_dir);
    ::close(uo.fd);
    EXPECT_EQ(cap_eff(), before);
}

TEST(OpenAsUser, HasNoCapabilityBeyondTheUsers) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    // /root is 0700 root: with the user's rights (no CAP_DAC_*), refused.
    try {
        open_as_user("/root", 65534, 65534, false);
        ADD_FAILURE() << "opened /root as nobody";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::Refused);
    }
}

}  // namespace
}  // namespace socker::launcher
