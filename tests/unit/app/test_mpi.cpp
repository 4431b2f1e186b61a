// Host MPI injection's pure parts: the [mpi] sections, the selection, the injection rules
// (ABI, glibc, dependencies, the loader cache), and the scan's pipe protocol.
#include <gtest/gtest.h>

#include <algorithm>

#include "base/error.hpp"
#include "launcher/ldcache.hpp"
#include "src/mpi.hpp"
#include "src/policy.hpp"
#include "src/request.hpp"

namespace socker {
namespace {

namespace ldc = launcher::ldcache;
using launcher::MountKind;

Exit code_of(const std::function<void()>& f, std::string* msg = nullptr) {
    try {
        f();
    } catch (const Error& e) {
        if (msg) *msg = e.what();
        return e.code();
    }
    return Exit::Ok;
}

const char* kConf =
    "mpi = none\n"
    "[mpi]\n"
    "libraries = /usr/lib/x86_64-linux-gnu/libmpich.so.12, /usr/lib/x86_64-linux-gnu/libmpi.so.12\n"
    "dependencies = /usr/lib/x86_64-linux-gnu/libfabric.so.1\n"
    "binds = /etc/libibverbs.d, /opt/cray/etc:/etc/cray\n"
    "devices = /dev/infiniband/*\n"
    "env = FI_PROVIDER=verbs\n"
    "abi = full\n"
    "[mpi:cray]\n"
    "libraries = /opt/cray/pe/lib64/libmpi_gnu_123.so.12\n"
    "glibc = inject\n"
    "[node:gpu*]\n"
    "mpi = cray\n";

TEST(MpiPolicy, SectionsAndKeys) {
    const Policy p = parse_policy(kConf, "t");
    ASSERT_EQ(p.mpi_sections.size(), 2u);
    const MpiSection& d = p.mpi_sections[0];
    EXPECT_EQ(d.name, "default");
    EXPECT_EQ(d.libraries.size(), 2u);
    EXPECT_EQ(d.dependencies, (std::vector<std::string>{"/usr/lib/x86_64-linux-gnu/libfabric.so.1"}));
    EXPECT_EQ(d.binds, (std::vector<std::string>{"/etc/libibverbs.d", "/opt/cray/etc:/etc/cray"}));
    EXPECT_EQ(d.env, (std::vector<std::string>{"FI_PROVIDER=verbs"}));
    EXPECT_EQ(d.abi, launcher::abi::Level::Full);
    EXPECT_FALSE(d.glibc_inject);
    EXPECT_TRUE(p.mpi_sections[1].glibc_inject);
    EXPECT_EQ(p.mpi_sections[1].abi, launcher::abi::Level::Major);
    // The keys after [node:gpu*] are the node section's again, not [mpi:cray]'s.
    ASSERT_EQ(p.node_sections.size(), 1u);
    EXPECT_EQ(p.node_sections[0].mpi, "cray");
}

TEST(MpiPolicy, Errors) {
    std::string msg;
    EXPECT_EQ(code_of([&] { parse_policy("[mpi]\nabi = exact\nlibraries = /x.so.1\n", "t"); }, &msg),
              Exit::Config);
    EXPECT_NE(msg.find("t:2"), std::string::npos) << msg;
    EXPECT_EQ(code_of([] { parse_policy("[mpi]\nlibraries = lib.so\n", "t"); }), Exit::Config);
    EXPECT_EQ(code_of([] { parse_policy("[mpi]\nlibraries = /a.so.1\nfoo = 1\n", "t"); }), Exit::Config);
    EXPECT_EQ(code_of([&] { parse_policy("[mpi]\n", "t"); }, &msg), Exit::Config);
    EXPECT_NE(msg.find("lists no libraries"), std::string::npos) << msg;
    EXPECT_EQ(code_of([&] { parse_policy("mpi = cray\n", "t"); }, &msg), Exit::Config);
    EXPECT_NE(msg.find("[mpi:cray]"), std::string::npos) << msg;
    EXPECT_EQ(code_of([] { parse_policy("[mpi:none]\nlibraries = /a.so.1\n", "t"); }), Exit::Config);
    EXPECT_EQ(code_of([] { parse_policy("[mpi:a b]\nlibraries = /a.so.1\n", "t"); }), Exit::Config);
    EXPECT_EQ(code_of([] { parse_policy("[mpi]\nlibraries = /a.so.1\n[mpi]\nlibraries = /b.so.1\n", "t"); }),
              Exit::Config);
    EXPECT_EQ(code_of([] { parse_policy("[mpi]\nlibraries = /a.so.1\nbinds = relative\n", "t"); }),
              Exit::Config);
    EXPECT_EQ(code_of([] { parse_policy("[mpi]\nlibraries = /a.so.1\nenv = NOEQUALS\n", "t"); }),
              Exit::Config);
    EXPECT_EQ(code_of([] { parse_policy("[mpi]\nlibraries = /a.so.1\nglibc = maybe\n", "t"); }),
              Exit::Config);
}

TEST(MpiPolicy, Selection) {
    const Policy p = parse_policy(kConf, "t");
    EXPECT_EQ(mpi_for(p, std::nullopt, "cn01"), nullptr);  // mpi = none
    EXPECT_EQ(mpi_for(p, std::string("default"), "cn01")->name, "default");
    EXPECT_EQ(mpi_for(p, std::string("cray"), "cn01")->name, "cray");
    EXPECT_EQ(mpi_for(p, std::nullopt, "gpu3")->name, "cray");  // the node's default
    EXPECT_EQ(mpi_for(p, std::string("none"), "gpu3"), nullptr);
    std::string msg;
    EXPECT_EQ(code_of([&] { mpi_for(p, std::string("mvapich"), "cn01"); }, &msg), Exit::Usage);
    EXPECT_NE(msg.find("--mpi=mvapich"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--mpi=cray"), std::string::npos) << msg;
    const Policy none = parse_policy("", "t");
    EXPECT_EQ(code_of([&] { mpi_for(none, std::string("default"), "cn01"); }, &msg), Exit::Usage);
    EXPECT_NE(msg.find("no host MPI"), std::string::npos) << msg;
}

TEST(MpiRequest, Option) {
    auto r = std::get<RunRequest>(parse_command_line({"--mpi", "img", "./a"}));
    EXPECT_EQ(r.mpi, std::string("default"));
    EXPECT_EQ(r.image, "img");  // --mpi never takes IMAGE as its value
    r = std::get<RunRequest>(parse_command_line({"--mpi=none", "img"}));
    EXPECT_EQ(r.mpi, std::string("none"));
    r = std::get<RunRequest>(parse_command_line({"--mpi=cray", "img"}));
    EXPECT_EQ(r.mpi, std::string("cray"));
    r = std::get<RunRequest>(parse_command_line({"img", "--mpi"}));
    EXPECT_EQ(r.mpi, std::nullopt);  // after IMAGE: the command's
    EXPECT_EQ(r.command, (std::vector<std::string>{"--mpi"}));
}

// An image like the project's MPICH image, as its scan reports it.
mpi::ImageLibraries mpich_image() {
    mpi::ImageLibraries img;
    img.has_cache = true;
    const std::string d = "/lib/x86_64-linux-gnu/";
    for (const char* k : {"libmpich.so.12", "libmpi.so.12", "libc.so.6", "libucp.so.0", "libm.so.6",
                          "ld-linux-x86-64.so.2", "libz.so.1"})
        img.cache.push_back({k, d + k});
    img.real[d + "libmpich.so.12"] = "/usr/lib/x86_64-linux-gnu/libmpich.so.12.3.0";
    img.real[d + "libmpi.so.12"] = "/usr/lib/x86_64-linux-gnu/libmpich.so.12.3.0";
    img.real[d + "libc.so.6"] = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    img.real[d + "libm.so.6"] = "/usr/lib/x86_64-linux-gnu/libm.so.6";
    img.real[d + "ld-linux-x86-64.so.2"] = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
    img.libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    img.glibc = launcher::abi::Version{2, 36};
    return img;
}

mpi::HostLibrary host_lib(const std::string& real, const std::string& soname, launcher::abi::Version v,
                          mpi::Role role = mpi::Role::Mpi) {
    mpi::HostLibrary h;
    h.role = role;
    h.path = real;
    h.real = real;
    h.soname = soname;
    h.version = v;
    h.needed = {"libc.so.6"};
    h.glibc_needed = launcher::abi::Version{2, 34};
    return h;
}

MpiSection section() {
    MpiSection m;
    m.name = "default";
    m.libraries = {"/usr/lib/x86_64-linux-gnu/libmpich.so.12"};
    return m;
}

TEST(MpiInjection, ReplacesTheImagesCompatibleLibrary) {
    const auto inj = mpi::plan_injection(
        section(), {host_lib("/usr/lib/x86_64-linux-gnu/libmpich.so.12.3.0", "libmpich.so.12", {12, 3, 0})},
        mpich_image(), "mpi-mpich");
    ASSERT_EQ(inj.libraries.size(), 1u);
    EXPECT_EQ(inj.libraries[0].decision, "replace");
    EXPECT_EQ(inj.libraries[0].image_path, "/usr/lib/x86_64-linux-gnu/libmpich.so.12.3.0");
    EXPECT_EQ(inj.libraries[0].image_version, "12.3.0");
    EXPECT_EQ(inj.libraries[0].host_version, "12.3.0");
    ASSERT_GE(inj.mounts.size(), 2u);
    EXPECT_EQ(inj.mounts[0].kind, MountKind::Bind);
    EXPECT_EQ(inj.mounts[0].source, "/usr/lib/x86_64-linux-gnu/libmpich.so.12.3.0");
    EXPECT_EQ(inj.mounts[0].target, "/usr/lib/x86_64-linux-gnu/libmpich.so.12.3.0");
    EXPECT_TRUE(inj.mounts[0].read_only);
    EXPECT_EQ(inj.mounts[0].check, launcher::SourceCheck::Trusted);
    // The container's own loader cache, with every entry of the image's.
    const auto& cache = inj.mounts.back();
    EXPECT_EQ(cache.kind, MountKind::File);
    EXPECT_EQ(cache.target, "/etc/ld.so.cache");
    EXPECT_EQ(ldc::parse(cache.data, "new").size(), mpich_image().cache.size());
}

TEST(MpiInjection, AnOpenMpiImageIsRefusedNamingBothVersions) {
    mpi::ImageLibraries img = mpich_image();
    img.cache = {{"libmpi.so.40", "/lib/x86_64-linux-gnu/libmpi.so.40"},
                 {"libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"}};
    img.real = {{"/lib/x86_64-linux-gnu/libmpi.so.40", "/usr/lib/x86_64-linux-gnu/libmpi.so.40.30.4"},
                {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"}};
    std::string msg;
    EXPECT_EQ(code_of(
                  [&] {
                      mpi::plan_injection(section(),
                                          {host_lib("/usr/lib/x86_64-linux-gnu/libmpich.so.12.3.0",
                                                    "libmpi.so.12", {12, 3, 0})},
                                          img, "mpi-openmpi");
                  },
                  &msg),
              Exit::BadImage);
    EXPECT_NE(msg.find("12.3.0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("40.30.4"), std::string::npos) << msg;
}

TEST(MpiInjection, AbiLevels) {
    auto run = [](launcher::abi::Level level, launcher::abi::Version host) {
        MpiSection m = section();
        m.abi = level;
        return mpi::plan_injection(
            m, {host_lib("/h/libmpich.so." + launcher::abi::to_string(host), "libmpich.so.12", host)},
            mpich_image(), "i");
    };
    using L = launcher::abi::Level;
    EXPECT_TRUE(run(L::Major, {12, 1, 0}).warnings.empty());
    EXPECT_EQ(run(L::Full, {12, 1, 0}).warnings.size(), 1u);  // older host minor: a warning
    EXPECT_TRUE(run(L::Full, {12, 4, 0}).warnings.empty());
    EXPECT_EQ(code_of([&] { run(L::Strict, {12, 4, 0}); }), Exit::BadImage);
    EXPECT_EQ(code_of([&] { run(L::Strict, {12, 3, 9}); }), Exit::Ok);
    EXPECT_EQ(code_of([&] { run(L::Major, {13, 0, 0}); }), Exit::BadImage);
}

TEST(MpiInjection, AddsWhatTheImageLacksWithLinksAndCacheEntries) {
    auto dep = host_lib("/usr/lib/x86_64-linux-gnu/libfabric.so.1.18.2", "libfabric.so.1", {1, 18, 2},
                        mpi::Role::Dependency);
    auto lib = host_lib("/usr/lib/x86_64-linux-gnu/libmpich.so.12.3.0", "libmpich.so.12", {12, 3, 0});
    lib.needed = {"libc.so.6", "libfabric.so.1"};
    const auto inj = mpi::plan_injection(section(), {lib, dep}, mpich_image(), "i");
    ASSERT_EQ(inj.libraries.size(), 2u);
    EXPECT_EQ(inj.libraries[1].decision, "add (dependency)");
    const auto has = [&](MountKind k, const std::string& target, const std::string& data = "") {
        return std::any_of(inj.mounts.begin(), inj.mounts.end(), [&](const launcher::MountOp& m) {
            return m.kind == k && m.target == target && (data.empty() || m.data == data);
        });
    };
    EXPECT_TRUE(has(MountKind::Bind, "/usr/lib/x86_64-linux-gnu/libfabric.so.1.18.2"));
    EXPECT_TRUE(has(MountKind::Symlink, "/usr/lib/x86_64-linux-gnu/libfabric.so.1", "libfabric.so.1.18.2"));
    const auto cache = ldc::parse(inj.mounts.back().data, "new");
    EXPECT_TRUE(std::any_of(cache.begin(), cache.end(), [](const ldc::Entry& e) {
        return e.key == "libfabric.so.1" && e.path == "/usr/lib/x86_64-linux-gnu/libfabric.so.1";
    }));
}

TEST(MpiInjection, ANeededLibraryNobodyHasIsRefused) {
    auto lib = host_lib("/usr/lib/x86_64-linux-gnu/libmpich.so.12.3.0", "libmpich.so.12", {12, 3, 0});
    lib.needed = {"libc.so.6", "libcxi.so.1"};
    std::string msg;
    EXPECT_EQ(code_of([&] { mpi::plan_injection(section(), {lib}, mpich_image(), "i"); }, &msg),
              Exit::BadImage);
    EXPECT_NE(msg.find("libcxi.so.1"), std::string::npos) << msg;
}

TEST(MpiInjection, Glibc) {
    mpi::ImageLibraries old = mpich_image();
    old.glibc = launcher::abi::Version{2, 30};
    old.glibc_release = "2.31";
    auto lib = host_lib("/usr/lib/x86_64-linux-gnu/libmpich.so.12.3.0", "libmpich.so.12", {12, 3, 0});
    std::string msg;
    EXPECT_EQ(code_of([&] { mpi::plan_injection(section(), {lib}, old, "old"); }, &msg), Exit::BadImage);
    EXPECT_NE(msg.find("needs glibc 2.34"), std::string::npos) << msg;
    EXPECT_NE(msg.find("the image has glibc 2.31 (symbol versions up to GLIBC_2.30)"), std::string::npos)
        << msg;
    // glibc = inject: the host's glibc libraries over the image's of the same SONAME only.
    MpiSection m = section();
    m.glibc_inject = true;
    const auto inj = mpi::plan_injection(
        m,
        {lib, host_lib("/usr/lib/x86_64-linux-gnu/libc.so.6", "libc.so.6", {6}, mpi::Role::Glibc),
         host_lib("/usr/lib/x86_64-linux-gnu/libutil.so.1", "libutil.so.1", {1}, mpi::Role::Glibc)},
        old, "old");
    ASSERT_EQ(inj.libraries.size(), 2u);  // libutil.so.1 is not in the image: left out
    EXPECT_EQ(inj.libraries[1].decision, "replace (glibc)");
    // A new enough image: the host's glibc stays out even with glibc = inject.
    EXPECT_EQ(mpi::plan_injection(m, {lib, host_lib("/x/libc.so.6", "libc.so.6", {6}, mpi::Role::Glibc)},
                                  mpich_image(), "new")
                  .libraries.size(),
              1u);
    mpi::ImageLibraries none = mpich_image();
    none.glibc.reset();
    none.libc.clear();
    EXPECT_EQ(code_of([&] { mpi::plan_injection(section(), {lib}, none, "static"); }, &msg), Exit::BadImage);
    EXPECT_NE(msg.find("no glibc"), std::string::npos) << msg;
}

TEST(MpiInjection, NoLoaderCache) {
    mpi::ImageLibraries img;
    std::string msg;
    EXPECT_EQ(code_of(
                  [&] {
                      mpi::plan_injection(section(),
                                          {host_lib("/h/libmpich.so.12.3.0", "libmpich.so.12", {12, 3})}, img,
                                          "bare");
                  },
                  &msg),
              Exit::BadImage);
    EXPECT_NE(msg.find("ldconfig"), std::string::npos) << msg;
}

TEST(MpiScanProtocol, RoundTripAndStrictness) {
    const mpi::ImageLibraries img = mpich_image();
    const mpi::ImageLibraries back = mpi::decode(mpi::encode(img));
    EXPECT_EQ(back.has_cache, img.has_cache);
    ASSERT_EQ(back.cache.size(), img.cache.size());
    EXPECT_EQ(back.cache[0].key, img.cache[0].key);
    EXPECT_EQ(back.cache[0].flags, img.cache[0].flags);
    EXPECT_EQ(back.real, img.real);
    EXPECT_EQ(back.glibc, img.glibc);
    EXPECT_EQ(back.libc, img.libc);
    mpi::ImageLibraries rel = img;
    rel.glibc_release = "2.31";
    EXPECT_EQ(mpi::decode(mpi::encode(rel)).glibc_release, "2.31");
    EXPECT_EQ(code_of([] { mpi::decode("C 1\nV 2.x\nEND\n"); }), Exit::Internal);
    EXPECT_EQ(code_of([] { mpi::decode(""); }), Exit::Internal);
    EXPECT_EQ(code_of([] { mpi::decode("C 1\n"); }), Exit::Internal);  // no END: truncated
    EXPECT_EQ(code_of([] { mpi::decode("C 1\nE 771 0 0 zz 2f\nEND\n"); }), Exit::Internal);
    EXPECT_EQ(code_of([] { mpi::decode("C 1\nR 2f 6c6962\nEND\n"); }), Exit::Internal);  // relative
    EXPECT_EQ(code_of([] { mpi::decode("C 1\nR 2f00 2f\nEND\n"); }), Exit::Internal);    // NUL
    EXPECT_EQ(code_of([] { mpi::decode("C 1\nEND\nC 0\n"); }), Exit::Internal);
    EXPECT_EQ(code_of([] { mpi::decode("C 1\nE 99999999999 0 0 61 2f\nEND\n"); }), Exit::Internal);
    EXPECT_EQ(mpi::library_name("libmpich.so.12.3.0"), "libmpich");
    EXPECT_TRUE(mpi::is_mpi_library("libmpi"));
    EXPECT_TRUE(mpi::is_mpi_library("libmpich"));
    EXPECT_TRUE(mpi::is_mpi_library("libmpi_gnu_123"));
    EXPECT_FALSE(mpi::is_mpi_library("libmpi_cxx"));
    EXPECT_FALSE(mpi::is_mpi_library("libmpi_usempif08"));
    EXPECT_FALSE(mpi::is_mpi_library("libmpichcxx"));
    EXPECT_EQ(mpi::library_name("/x/libmpi_gnu_123.so.12"), "libmpi_gnu_123");
}

}  // namespace
}  // namespace socker
