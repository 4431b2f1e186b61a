// The ld.so cache: glibc's name order, the host's cache against ldconfig -p, round trips, the
// order ld.so's bisection relies on, malformed files, and a written cache used by the real ld.so.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <link.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include "base/error.hpp"
#include "launcher/host_files.hpp"
#include "launcher/ldcache.hpp"

namespace socker::launcher::ldcache {
namespace {

namespace fs = std::filesystem;
const char* const kHostCache = "/etc/ld.so.cache";
constexpr int32_t kX8664 = kFlagElfLibc6 | kFlagX8664Lib64;

using socker::test::output_of;
using socker::test::slurp;

std::optional<std::string> ldconfig() {
    for (const char* p : {"/sbin/ldconfig", "/usr/sbin/ldconfig"})
        if (access(p, X_OK) == 0) return std::string(p);
    return std::nullopt;
}

// ldconfig -p's "\tKEY (FLAGS) => PATH" lines, in order.
std::vector<std::pair<std::string, std::string>> listed(const std::string& out) {
    std::vector<std::pair<std::string, std::string>> r;
    std::istringstream s(out);
    std::string line;
    std::getline(s, line);  // "N libs found in cache `...'"
    while (std::getline(s, line)) {
        const auto arrow = line.find(" => ");
        const auto paren = line.rfind(" (", arrow);
        if (line.empty() || line[0] != '\t' || arrow == std::string::npos || paren == std::string::npos)
            continue;
        r.emplace_back(line.substr(1, paren - 1), line.substr(arrow + 4));
    }
    return r;
}

std::vector<std::pair<std::string, std::string>> pairs(const std::vector<Entry>& es) {
    std::vector<std::pair<std::string, std::string>> r;
    for (const auto& e : es) r.emplace_back(e.key, e.path);
    return r;
}

bool same(const Entry& a, const Entry& b) {
    return std::tie(a.key, a.path, a.flags, a.osversion, a.hwcap) ==
           std::tie(b.key, b.path, b.flags, b.osversion, b.hwcap);
}

void expect_entries(const std::vector<Entry>& got, const std::vector<Entry>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
        EXPECT_TRUE(same(got[i], want[i]))
            << i << ": got " << got[i].key << " " << got[i].path << " " << got[i].flags << ", want "
            << want[i].key << " " << want[i].path << " " << want[i].flags;
}

Entry entry(std::string key, std::string path, int32_t flags = kX8664, uint64_t hwcap = 0) {
    Entry e;
    e.key = std::move(key);
    e.path = std::move(path);
    e.flags = flags;
    e.hwcap = hwcap;
    return e;
}

// ld.so's search_cache (elf/dl-cache.c): bisection with _dl_cache_libcmp, then back to the
// first entry with the name, then forward to the first whose flags fit.
std::optional<std::string> lookup(const std::vector<Entry>& es, const std::string& name) {
    long left = 0, right = static_cast<long>(es.size()) - 1;
    while (left <= right) {
        long middle = (left + right) / 2;
        const int cmp = libcmp(name, es[static_cast<size_t>(middle)].key);
        if (cmp == 0) {
            while (middle > 0 && libcmp(name, es[static_cast<size_t>(middle - 1)].key) == 0) --middle;
            for (; middle <= right; ++middle) {
                const Entry& e = es[static_cast<size_t>(middle)];
                if (libcmp(name, e.key) != 0) break;
                if (e.flags == kX8664 && e.hwcap == 0) return e.path;
            }
            return std::nullopt;
        }
        if (cmp < 0)
            left = middle + 1;
        else
            right = middle - 1;
    }
    return std::nullopt;
}

void expect_bad(std::string_view bytes, const std::string& fragment) {
    try {
        parse(bytes, "bad.cache");
        ADD_FAILURE() << "parsed, expected an error containing: " << fragment;
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::BadImage);
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("`bad.cache`"), std::string::npos) << e.what();
    }
}

template <class T>
void poke(std::string& b, size_t off, T v) {
    std::memcpy(b.data() + off, &v, sizeof v);
}

// ---- _dl_cache_libcmp ----

int sign(int v) { return (v > 0) - (v < 0); }

TEST(LdCacheLibcmp, Table) {
    struct Case {
        const char* a;
        const char* b;
        int want;
    };
    const Case cases[] = {
        {"libfoo.so.10", "libfoo.so.9", 1},  // numbers, not characters
        {"libfoo.so.9", "libfoo.so.10", -1},
        {"libfoo.so.1", "libfoo.so.1", 0},
        {"libfoo.so.01", "libfoo.so.1", 0},  // same number
        {"libfoo.so", "libfoo.so.1", -1},    // a prefix sorts first
        {"libfoo.so.1", "libfoo.so", 1},
        {"libfoo.so.1.2", "libfoo.so.1", 1},
        {"", "", 0},
        {"", "a", -1},
        {"a", "", 1},
        {"lib2", "liba", 1},  // a digit after the same text sorts after a non-digit
        {"liba", "lib2", -1},
        {"libA.so", "liba.so", -1},  // characters by value
        {"libc.so.6", "libcrypt.so.1", -1},
        {"libz.so.1", "libzstd.so.1", -1},
        {"libmpi.so.12", "libmpi.so.40", -1},
        {"libfoo-2.0.so.0", "libfoo-10.0.so.0", -1},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(sign(libcmp(c.a, c.b)), c.want) << c.a << " vs " << c.b;
        EXPECT_EQ(sign(libcmp(c.b, c.a)), -c.want) << c.b << " vs " << c.a;
    }
}

TEST(LdCacheLibcmp, ViewEndsAtItsLength) {
    const std::string_view longer = "libfoo.so.12345";
    EXPECT_EQ(libcmp(longer.substr(0, 11), "libfoo.so.1"), 0);
    EXPECT_EQ(libcmp(std::string_view("libfoo.so.1\0junk", 16), "libfoo.so.1"), 0);  // stops at NUL
}

TEST(LdCacheLibcmp, HugeNumbersWrapAsInGlibc) {
    // 4294967297 wraps to 1 in glibc's int arithmetic.
    EXPECT_EQ(libcmp("libx.so.4294967297", "libx.so.1"), 0);
}

// ---- The host's cache ----

TEST(LdCacheHost, MatchesLdconfigP) {
    const auto bytes = slurp(kHostCache);
    const auto tool = ldconfig();
    if (!bytes || !tool) GTEST_SKIP() << "no host cache or ldconfig";
    const auto out = output_of(*tool + " -p -C " + kHostCache);
    if (!out) GTEST_SKIP() << "ldconfig -p failed";
    const auto es = parse(*bytes, kHostCache);
    ASSERT_FALSE(es.empty());
    EXPECT_EQ(pairs(es), listed(*out));  // same entries, same order
    EXPECT_EQ(out->substr(0, out->find(' ')), std::to_string(es.size()));
    bool libc = false;
    for (const auto& e : es)
        if (e.key == "libc.so.6" && e.flags == kX8664) libc = true;
    EXPECT_TRUE(libc);
}

// The last of each (key, flags, hwcap), in the order of `es`.
std::vector<Entry> dedup(const std::vector<Entry>& es) {
    std::vector<Entry> r;
    for (size_t i = 0; i < es.size(); ++i) {
        bool later = false;
        for (size_t j = i + 1; j < es.size() && !later; ++j)
            later = es[j].key == es[i].key && es[j].flags == es[i].flags && es[j].hwcap == es[i].hwcap;
        if (!later) r.push_back(es[i]);
    }
    return r;
}

TEST(LdCacheHost, RewriteKeepsLdconfigsOrder) {
    const auto bytes = slurp(kHostCache);
    if (!bytes) GTEST_SKIP();
    const auto es = parse(*bytes, kHostCache);
    // Given in any order, written in ldconfig's.
    auto shuffled = es;
    std::reverse(shuffled.begin(), shuffled.end());
    std::rotate(shuffled.begin(), shuffled.begin() + static_cast<long>(shuffled.size() / 3), shuffled.end());
    const auto rewritten = parse(write(shuffled), "rewritten");
    // ldconfig keeps duplicates (same name in two directories); write() keeps the last given.
    const std::vector<Entry> want = dedup(shuffled);
    std::vector<Entry> in_host_order;
    for (const auto& e : es)
        for (const auto& w : want)
            if (same(e, w)) in_host_order.push_back(e);
    expect_entries(rewritten, in_host_order);
}

// ---- write ----

TEST(LdCacheWrite, SortsAsLdconfigAndKeepsTheLastDuplicate) {
    const std::vector<Entry> given = {
        entry("libbar.so.1", "/lib/libbar.so.1"),
        entry("libfoo.so.9", "/old/libfoo.so.9"),
        entry("libfoo.so.10", "/lib/libfoo.so.10"),
        entry("libfoo.so.9", "/lib32/libfoo.so.9", kFlagElfLibc6),
        entry("libfoo.so.9", "/hw/libfoo.so.9", kX8664, 0x3),
        entry("libfoo.so.9", "/hw1/libfoo.so.9", kX8664, 0x4),
        entry("libfoo.so.9", "/new/libfoo.so.9"),  // replaces /old
        entry("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2"),
    };
    const std::vector<Entry> want = {
        entry("libfoo.so.10", "/lib/libfoo.so.10"),
        entry("libfoo.so.9", "/hw/libfoo.so.9", kX8664, 0x3),   // most hwcap bits first
        entry("libfoo.so.9", "/hw1/libfoo.so.9", kX8664, 0x4),  // then highest hwcap
        entry("libfoo.so.9", "/new/libfoo.so.9"),
        entry("libfoo.so.9", "/lib32/libfoo.so.9", kFlagElfLibc6),  // lower flags last
        entry("libbar.so.1", "/lib/libbar.so.1"),
        entry("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2"),
    };
    expect_entries(parse(write(given), "written"), want);
}

TEST(LdCacheWrite, HeaderAsGlibcWritesIt) {
    const std::string b = write({entry("libz.so.1", "/lib/libz.so.1"), entry("libc.so.6", "/lib/libc.so.6")});
    ASSERT_GE(b.size(), 48u + 2 * 24);
    EXPECT_EQ(b.substr(0, 20), "glibc-ld.so.cache1.1");
    uint32_t nlibs, len_strings, extension_offset, key;
    std::memcpy(&nlibs, b.data() + 20, 4);
    std::memcpy(&len_strings, b.data() + 24, 4);
    std::memcpy(&extension_offset, b.data() + 32, 4);
    std::memcpy(&key, b.data() + 48 + 4, 4);
    EXPECT_EQ(nlibs, 2u);
    EXPECT_EQ(static_cast<unsigned>(b[28]), 2u);  // cache_file_new_flags_endian_little
    EXPECT_EQ(extension_offset, 0u);
    EXPECT_EQ(len_strings, b.size() - (48 + 2 * 24));
    EXPECT_EQ(key, 48u + 2 * 24);  // strings right after the entries, offsets from the header
    EXPECT_STREQ(b.data() + key, "libz.so.1");
    EXPECT_EQ(b.back(), '\0');
}

TEST(LdCacheWrite, EmptyCache) {
    const std::string b = write({});
    EXPECT_EQ(b.size(), 48u);
    EXPECT_TRUE(parse(b, "empty").empty());
}

TEST(LdCacheWrite, StringsSharedOnce) {
    const std::string b =
        write({entry("libz.so.1", "/lib/libz.so.1"), entry("libz.so.1", "/lib/libz.so.1", 1)});
    EXPECT_EQ(b.size(), 48u + 2 * 24 + sizeof("libz.so.1") + sizeof("/lib/libz.so.1"));
}

TEST(LdCacheWrite, BisectionFindsEveryName) {
    // The host's names plus injected ones, searched as ld.so searches.
    std::vector<Entry> es;
    if (const auto bytes = slurp(kHostCache)) es = parse(*bytes, kHostCache);
    for (int i = 0; i < 40; ++i)
        es.push_back(entry("libinj" + std::to_string(i % 7) + ".so." + std::to_string(i * 37 % 101),
                           "/inj/" + std::to_string(i)));
    es.push_back(entry("libmpi.so.12", "/host/mpi/libmpi.so.12"));
    es.push_back(entry("libz.so.1", "/host/libz.so.1"));  // overrides the host's
    const auto written = parse(write(es), "written");
    for (const auto& e : dedup(es)) {
        if (e.flags != kX8664 || e.hwcap != 0) continue;
        EXPECT_EQ(lookup(written, e.key), e.path) << e.key;
    }
    EXPECT_EQ(lookup(written, "libnot-there.so.1"), std::nullopt);
}

TEST(LdCacheWrite, NulInANameIsRefused) {
    EXPECT_THROW(write({entry(std::string("lib\0x.so", 8), "/x")}), Error);
}

// ---- parse: the old combined format, malformed files ----

// An "ld.so-1.7.0" part with `nold` entries before the new part, as glibc < 2.32 wrote it.
std::string combined(const std::string& fresh, uint32_t nold) {
    std::string b = "ld.so-1.7.0";
    b.resize(16, '\0');
    poke<uint32_t>(b, 12, nold);
    b.resize(16 + 12 * nold, '\x11');
    b.resize((b.size() + 7) / 8 * 8, '\0');  // ALIGN_CACHE
    return b + fresh;
}

TEST(LdCacheParse, OldCombinedFormat) {
    const std::vector<Entry> es = {entry("libz.so.1", "/lib/libz.so.1"),
                                   entry("libc.so.6", "/lib/libc.so.6")};
    const std::string fresh = write(es);
    for (uint32_t nold : {0u, 1u, 2u, 3u}) {  // 1 and 3 need padding
        SCOPED_TRACE(nold);
        expect_entries(parse(combined(fresh, nold), "combined"), parse(fresh, "new"));
    }
}

TEST(LdCacheParse, OldFormatAlone) {
    // ld.so-1.7.0, nlibs, entries {flags, key, value}, strings relative to the entries' end.
    std::string b = "ld.so-1.7.0";
    b.resize(16, '\0');
    poke<uint32_t>(b, 12, 1);
    b.resize(28, '\0');
    poke<int32_t>(b, 16, kX8664);
    poke<uint32_t>(b, 20, 0);
    poke<uint32_t>(b, 24, 10);
    b += std::string("libz.so.1\0/lib/libz.so.1\0", 25);
    expect_entries(parse(b, "old"), {entry("libz.so.1", "/lib/libz.so.1")});
}

TEST(LdCacheMalformed, NotACache) {
    expect_bad("", "bad magic");
    expect_bad("glibc-ld.so.cache1.0", "bad magic");
    expect_bad(std::string(100, 'x'), "bad magic");
    expect_bad("glibc-ld.so.cache1.1", "too short");
    expect_bad("ld.so-1.7.0", "too short");
}

TEST(LdCacheMalformed, CountsTooLarge) {
    std::string b = write({entry("libz.so.1", "/lib/libz.so.1")});
    poke<uint32_t>(b, 20, 0xffffffff);
    expect_bad(b, "4294967295 entries do not fit");
    poke<uint32_t>(b, 20, 3);  // 49 bytes after the header: room for 2 (the strings read as entries)
    expect_bad(b, "3 entries do not fit");
    std::string old = combined(write({}), 0);
    poke<uint32_t>(old, 12, 0x20000000);
    expect_bad(old, "old-format entries do not fit");
}

TEST(LdCacheMalformed, Strings) {
    const std::string good = write({entry("libz.so.1", "/lib/libz.so.1")});
    std::string b = good;
    poke<uint32_t>(b, 48 + 4, static_cast<uint32_t>(good.size()));  // key just past the end
    expect_bad(b, "library name offset");
    b = good;
    poke<uint32_t>(b, 48 + 8, 0xffffffff);
    expect_bad(b, "library path offset");
    b = good;
    b.back() = 'x';  // the path's NUL gone: runs into the end of the file
    expect_bad(b, "not NUL-terminated");
    // In a combined file, offsets count from the new header, not from the file's start.
    const std::string c = combined(good, 1);
    b = c;
    poke<uint32_t>(b, 32 + 48 + 8, static_cast<uint32_t>(c.size() - 32));
    expect_bad(b, "library path offset");
}

TEST(LdCacheMalformed, OtherByteOrder) {
    std::string b = write({entry("libz.so.1", "/lib/libz.so.1")});
    b[28] = 3;  // cache_file_new_flags_endian_big
    expect_bad(b, "another byte order");
    b[28] = 0;  // unset: glibc before 2.33, accepted
    EXPECT_EQ(parse(b, "unset").size(), 1u);
}

TEST(LdCacheMalformed, EveryPrefixAndStomp) {
    std::vector<Entry> es;
    for (int i = 0; i < 5; ++i)
        es.push_back(entry("lib" + std::to_string(i) + ".so.1", "/l/" + std::to_string(i)));
    for (const std::string& full : {write(es), combined(write(es), 3)}) {
        for (size_t n = 0; n < full.size(); ++n) {
            const std::string prefix = full.substr(0, n);
            try {
                parse(prefix, "prefix");
            } catch (const Error& e) {
                EXPECT_EQ(e.code(), Exit::BadImage);
            }
        }
        std::string b = full;
        for (size_t i = 0; i < b.size(); ++i)
            for (int v : {0x00, 0x7f, 0xff}) {
                const char old = b[i];
                b[i] = static_cast<char>(v);
                try {
                    parse(b, "stomped");
                } catch (const Error& e) {
                    EXPECT_EQ(e.code(), Exit::BadImage);
                }
                b[i] = old;
            }
    }
}

// ---- The real glibc reads what write() wrote ----

class LdCacheGlibc : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/socker-ldcache-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    void save(const std::string& name, const std::string& bytes) {
        std::ofstream(dir_ / name, std::ios::binary) << bytes;
    }
    fs::path dir_;
};

TEST_F(LdCacheGlibc, LdconfigListsAWrittenCache) {
    const auto tool = ldconfig();
    if (!tool) GTEST_SKIP() << "no ldconfig";
    const std::vector<Entry> es = {
        entry("libz.so.1", "/x/libz.so.1"), entry("libfoo.so.10", "/x/libfoo.so.10"),
        entry("libfoo.so.9", "/x/libfoo.so.9"), entry("ld-linux.so.2", "/x/ld-linux.so.2", 1)};
    save("cache", write(es));
    const auto out = output_of(*tool + " -p -C " + (dir_ / "cache").string() + " 2>&1");
    ASSERT_TRUE(out) << "ldconfig -p refused the cache";
    EXPECT_EQ(out->substr(0, out->find('\n')), "4 libs found in cache `" + (dir_ / "cache").string() + "'");
    EXPECT_EQ(listed(*out), pairs(parse(write(es), "w")));
    EXPECT_NE(out->find("\tlibz.so.1 (libc6,x86-64) => /x/libz.so.1\n"), std::string::npos) << *out;
    EXPECT_NE(out->find("\tld-linux.so.2 (ELF) => /x/ld-linux.so.2\n"), std::string::npos) << *out;
}

// In a child with its own mount namespace (as root, or in a user namespace), the written cache
// is bind-mounted on /etc/ld.so.cache and dlopen finds a name that only the cache knows.
TEST_F(LdCacheGlibc, DlopenFindsALibraryThroughAWrittenCache) {
    std::error_code ec;
    const fs::path libz = fs::canonical("/lib/x86_64-linux-gnu/libz.so.1", ec);
    const auto host = slurp(kHostCache);
    if (ec || !host) GTEST_SKIP() << "no host libz or cache";
    fs::create_directories(dir_ / "lib");
    const fs::path copy = dir_ / "lib" / "libsockertest.so.1.0";
    fs::copy_file(libz, copy);
    auto es = parse(*host, kHostCache);
    es.push_back(entry("libsockertest.so.1", copy.string()));
    save("ld.so.cache", write(es));

    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const uid_t uid = getuid();
    const gid_t gid = getgid();
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        auto say = [&](const std::string& s) {
            (void)!::write(fds[1], s.data(), s.size());
            _exit(0);
        };
        if (unshare(CLONE_NEWNS) != 0) {
            if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) say("skip: no mount namespace");
            auto put = [](const char* file, const std::string& s) {
                const int fd = open(file, O_WRONLY);
                const bool ok = fd >= 0 && ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
                if (fd >= 0) close(fd);
                return ok;
            };
            if (!put("/proc/self/setgroups", "deny") ||
                !put("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
                !put("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1"))
                say("skip: no id map");
        }
        if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) say("skip: mount private");
        if (mount((dir_ / "ld.so.cache").c_str(), "/etc/ld.so.cache", nullptr, MS_BIND, nullptr) != 0)
            say(std::string("skip: bind mount: ") + std::strerror(errno));
        void* h = dlopen("libsockertest.so.1", RTLD_NOW | RTLD_LOCAL);
        if (h == nullptr) say(std::string("dlopen failed: ") + dlerror());
        link_map* map = nullptr;
        if (dlinfo(h, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) say("dlinfo failed");
        say(std::string("loaded ") + map->l_name);
    }
    close(fds[1]);
    std::string said;
    char buf[512];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) said.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (said.rfind("skip: ", 0) == 0) GTEST_SKIP() << said;
    EXPECT_EQ(said, "loaded " + copy.string());
}

}  // namespace
}  // namespace socker::launcher::ldcache
