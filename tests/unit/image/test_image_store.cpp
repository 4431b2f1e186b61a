// Image store: formats, verification, layer semantics, dedup, garbage collection, concurrency
// and crash safety, on scratch stores under /tmp. Runs as any user (ownership is checked only
// as root; the opaque xattr namespace is trusted.* as root, user.* otherwise).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "base/error.hpp"
#include "image/formats.hpp"
#include "image/test_image_store_util.hpp"

namespace socker::image {
namespace {

using namespace testing;

const std::string kNs = ::geteuid() == 0 ? "trusted" : "user";

struct StoreTest : ::testing::Test {
    TempDir tmp;
    std::string store = tmp.path() + "/store";
    std::string outside = tmp.path() + "/outside";
    void SetUp() override { fs::create_directories(outside); }

    // Nothing of a refused import may remain: no layer, record, ref, alias or work dir.
    void expect_store_empty() {
        EXPECT_EQ(layer_dirs(store), std::vector<std::string>{});
        EXPECT_EQ(entries(store + "/images"), std::vector<std::string>{});
        EXPECT_EQ(entries(store + "/refs"), std::vector<std::string>{});
        EXPECT_EQ(entries(store + "/tmp"), std::vector<std::string>{});
        for (const auto& n : entries(store + "/layers")) ADD_FAILURE() << "left in layers/: " << n;
    }
    Exit import_code(const std::string& bytes, const std::string& name = "bad:1",
                     std::string* msg = nullptr) {
        try {
            import_bytes(store, bytes, name);
        } catch (const Error& e) {
            if (msg) *msg = e.what();
            EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
            return e.code();
        }
        return Exit::Ok;
    }
};

std::string layer1() {
    return TarBuilder()
        .dir("etc")
        .file("etc/hostname", "box\n")
        .file("etc/motd", "hello\n")
        .dir("usr/share/doc", 0755)
        .dir("usr/share/doc/pkg")
        .file("usr/share/doc/pkg/README", "old docs\n")
        .dir("bin")
        .file("bin/tool", std::string(5000, 'x'), 0755, 0, 0, 1600000000)
        .hardlink("bin/tool2", "bin/tool")
        .symlink("bin/sh", "/bin/tool")
        .finish();
}
std::string layer2() {
    return TarBuilder()
        .dir("etc")
        .file("etc/.wh.motd", "")
        .dir("usr/share/doc")
        .file("usr/share/doc/.wh..wh..opq", "")
        .dir("usr/share/doc/new")
        .file("usr/share/doc/new/f", "new\n")
        .file("etc/added", "added\n", 0600, 123, 456)
        .finish();
}

bool is_whiteout(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}
std::string xattr(const std::string& p, const std::string& name) {
    char buf[16] = {};
    ssize_t n = ::lgetxattr(p.c_str(), name.c_str(), buf, sizeof buf);
    return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

// ------------------------------------------------------------------ formats
TEST(ImageFormats, DigestsArePlainSha256Hex) {
    EXPECT_EQ(formats::digest_hex("sha256:" + std::string(64, 'a'), "t"), std::string(64, 'a'));
    for (const std::string& bad :
         std::vector<std::string>{"sha256:" + std::string(63, 'a'), "sha256:" + std::string(64, 'A'),
                                  "sha512:" + std::string(128, 'a'), std::string(64, 'a'),
                                  "sha256:../../../../etc/passwd" + std::string(40, 'a')}) {
        EXPECT_THROW(formats::digest_hex(bad, "t"), Error) << bad;
    }
}

TEST(ImageFormats, ArchivePathsAreNormalisedAndConfined) {
    EXPECT_EQ(formats::normalize_archive_path("./a//b/./c", "t"), "a/b/c");
    EXPECT_EQ(formats::normalize_archive_path("./", "t"), "");
    EXPECT_THROW(formats::normalize_archive_path("/etc/passwd", "t"), Error);
    EXPECT_THROW(formats::normalize_archive_path("a/../../b", "t"), Error);
    EXPECT_THROW(formats::normalize_archive_path("..", "t"), Error);
}

TEST(ImageFormats, DockerManifestTypesChecked) {
    auto m =
        formats::parse_docker_manifest(R"([{"Config":"c.json","RepoTags":null,"Layers":["a/layer.tar"]}])");
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].layers, std::vector<std::string>{"a/layer.tar"});
    for (const char* bad : {"", "{}", "[]", "[1]", R"([{"Layers":[]}])", R"([{"Config":5}])",
                            R"([{"Config":"c","Layers":"x"}])", R"([{"Config":"../c"}])",
                            R"([{"Config":"c","Layers":["/etc/shadow"]}])", "[[[[[[[[[[[[[[[["}) {
        try {
            formats::parse_docker_manifest(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Exit::BadImage) << bad;
        }
    }
}

TEST(ImageFormats, ShortRefsAndSelection) {
    EXPECT_EQ(formats::short_ref("localhost/tiny:latest"), "tiny:latest");
    EXPECT_EQ(formats::short_ref("docker.io/library/debian"), "debian:latest");
    EXPECT_EQ(formats::short_ref("localhost:5000/x"), "localhost:5000/x:latest");
    std::vector<formats::DockerManifestEntry> two = {{"a", {"localhost/a:1"}, {}}, {"b", {"b:2"}, {}}};
    EXPECT_EQ(formats::select_docker_entry(two, parse_image_name("b:2")), 1u);
    EXPECT_EQ(formats::select_docker_entry(two, parse_image_name("a:1")), 0u);
    try {
        formats::select_docker_entry(two, parse_image_name("c"));
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("localhost/a:1, b:2"), std::string::npos) << e.what();
    }
}

TEST(ImageFormats, ConfigFieldsAndRefusals) {
    auto c = formats::parse_image_config(config_for({"x"}).dump(), "cfg");
    EXPECT_EQ(c.config.entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
    EXPECT_EQ(c.config.working_dir, "/work");
    EXPECT_EQ(c.diff_ids.size(), 1u);
    auto nulls = config_for({"x"});
    nulls["config"]["Entrypoint"] = nullptr;
    nulls["config"]["Env"] = nullptr;
    EXPECT_TRUE(formats::parse_image_config(nulls.dump(), "cfg").config.entrypoint.empty());
    for (auto mutate : std::vector<std::function<void(json&)>>{
             [](json& j) { j["config"]["Cmd"] = "echo"; }, [](json& j) { j["config"]["Env"] = {"NOEQUALS"}; },
             [](json& j) { j["config"]["WorkingDir"] = "relative"; },
             [](json& j) { j["rootfs"]["diff_ids"] = {"md5:abc"}; },
             [](json& j) { j["rootfs"]["diff_ids"] = json::array(); }, [](json& j) { j["os"] = "windows"; },
             [](json& j) { j.erase("rootfs"); }}) {
        json j = config_for({"x"});
        mutate(j);
        EXPECT_THROW(formats::parse_image_config(j.dump(), "cfg"), Error) << j.dump();
    }
}

TEST(ImageFormats, OciSelection) {
    formats::OciIndex idx = formats::parse_oci_index(
        json{{"schemaVersion", 2},
             {"manifests",
              {{{"digest", "sha256:" + std::string(64, '1')},
                {"annotations", {{"org.opencontainers.image.ref.name", "tiny"}}}},
               {{"digest", "sha256:" + std::string(64, '2')},
                {"annotations", {{"org.opencontainers.image.ref.name", "docker.io/x/mpi:2"}}}}}}}
            .dump(),
        "index.json");
    EXPECT_EQ(formats::select_by_ref(idx, "tiny", "i").digest, std::string(64, '1'));
    EXPECT_EQ(formats::select_by_ref(idx, "2", "i").digest, std::string(64, '2'));
    EXPECT_THROW(formats::select_by_ref(idx, "", "i"), Error);
    EXPECT_THROW(formats::select_by_ref(idx, "nope", "i"), Error);
}

// ------------------------------------------------------------------ rootfs tarballs
TEST_F(StoreTest, RootfsTarballKeepsModesTimesLinksAndOwnership) {
    const std::string tar = layer1();
    auto r = import_bytes(store, tar, "plain:1");
    EXPECT_EQ(r.record.format, "rootfs");
    ASSERT_EQ(r.record.layers, std::vector<std::string>{sha256_hex(tar)});
    EXPECT_EQ(r.layers_unpacked, 1u);
    const std::string L = store + "/layers/" + r.record.layers[0];
    struct stat st {};
    ASSERT_EQ(::lstat((L + "/bin/tool").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    EXPECT_EQ(st.st_mtime, 1600000000);
    EXPECT_EQ(st.st_size, 5000);
    struct stat st2 {};
    ASSERT_EQ(::lstat((L + "/bin/tool2").c_str(), &st2), 0);
    EXPECT_EQ(st.st_ino, st2.st_ino) << "hard link kept";
    EXPECT_EQ(fs::read_symlink(L + "/bin/sh"), "/bin/tool");
    EXPECT_EQ(r.record.size, 5000u + 4 + 6 + 9);
    // Same tarball again: same id, layer not written twice.
    auto again = import_bytes(store, tar, "plain:2");
    EXPECT_EQ(again.record.id, r.record.id);
    EXPECT_EQ(layer_dirs(store).size(), 1u);
    EXPECT_EQ(Store(store).find(parse_image_name("plain:1")).names,
              (std::vector<std::string>{"plain:1", "plain:2"}));
}

TEST_F(StoreTest, RootfsOwnershipIsNumericAsRoot) {
    if (::geteuid() != 0) GTEST_SKIP() << "ownership is restored only as root";
    auto r = import_bytes(store, TarBuilder().file("f", "x", 0640, 4242, 4343).finish(), "own:1");
    struct stat st {};
    ASSERT_EQ(::lstat((store + "/layers/" + r.record.layers[0] + "/f").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 4242u);
    EXPECT_EQ(st.st_gid, 4343u);
}

TEST_F(StoreTest, GzipRootfsDiffIdIsOfTheTar) {
    const std::string tar = layer1();
    auto r = import_bytes(store, gzip(tar), "gz:1", /*as_pipe=*/true);
    EXPECT_EQ(r.record.layers, std::vector<std::string>{sha256_hex(tar)});
}

// ------------------------------------------------------------------ docker-archive
TEST_F(StoreTest, DockerArchiveTwoLayersWithWhiteoutsAndOpaqueDir) {
    const std::string l1 = layer1(), l2 = layer2();
    const std::string cfg = config_for({l1, l2}).dump();
    auto r = import_bytes(store, docker_archive({l1, l2}, {l1, l2}, cfg), "app:1.2");
    EXPECT_EQ(r.record.format, "docker-archive");
    EXPECT_EQ(r.record.id, sha256_hex(cfg));
    EXPECT_EQ(r.record.layers, (std::vector<std::string>{sha256_hex(l1), sha256_hex(l2)}));
    EXPECT_EQ(r.record.config.entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
    EXPECT_EQ(r.record.config.cmd, std::vector<std::string>{"echo hi"});
    EXPECT_EQ(r.record.config.env[1], "FOO=bar");
    EXPECT_EQ(r.record.config.working_dir, "/work");
    EXPECT_EQ(r.record.config.user, "1000:1000");
    EXPECT_EQ(r.record.created, "2024-01-02T03:04:05Z");
    const std::string L2 = store + "/layers/" + sha256_hex(l2);
    EXPECT_TRUE(is_whiteout(L2 + "/etc/motd"));
    EXPECT_FALSE(fs::exists(L2 + "/etc/.wh.motd"));
    EXPECT_EQ(xattr(L2 + "/usr/share/doc", kNs + ".overlay.opaque"), "y");
    EXPECT_FALSE(fs::exists(L2 + "/usr/share/doc/.wh..wh..opq"));
    EXPECT_EQ(read_text(L2 + "/usr/share/doc/new/f"), "new\n");
    EXPECT_EQ(xattr(store + "/layers/" + sha256_hex(l1) + "/usr/share/doc", kNs + ".overlay.opaque"), "");
    // What the launcher reads back.
    auto found = Store(store).find(parse_image_name("app:1.2"));
    EXPECT_EQ(found.id, r.record.id);
    EXPECT_EQ(found.config.cmd, r.record.config.cmd);
}

TEST_F(StoreTest, DockerArchiveLegacyLayoutGzipLayersFromAPipe) {
    const std::string l1 = layer1(), l2 = layer2();
    const std::string cfg = config_for({l1, l2}).dump();
    auto r =
        import_bytes(store, docker_archive({l1, l2}, {gzip(l1), l2}, cfg, DockerStyle::Legacy), "legacy:1",
                     /*as_pipe=*/true);
    EXPECT_EQ(r.record.layers, (std::vector<std::string>{sha256_hex(l1), sha256_hex(l2)}));
    EXPECT_EQ(r.layers_unpacked, 2u);
    EXPECT_TRUE(is_whiteout(store + "/layers/" + sha256_hex(l2) + "/etc/motd"));
}

TEST_F(StoreTest, DockerArchiveCompressedAsAWhole) {
    const std::string l1 = layer1();
    const std::string cfg = config_for({l1}).dump();
    auto r = import_bytes(store, gzip(docker_archive({l1}, {l1}, cfg)), "whole:1");
    EXPECT_EQ(r.record.format, "docker-archive");
    EXPECT_EQ(r.record.id, sha256_hex(cfg));
}

TEST_F(StoreTest, DockerArchiveWithAnUnexpectedFirstEntry) {
    // gzip layers named "<x>.layer": the first entry does not say "image archive".
    const std::string l1 = layer1();
    const std::string cfg = config_for({l1}).dump();
    const std::string arch =
        TarBuilder()
            .file("first.layer", gzip(l1))
            .file(sha256_hex(cfg) + ".json", cfg)
            .file("manifest.json",
                  json::array({{{"Config", sha256_hex(cfg) + ".json"}, {"Layers", {"first.layer"}}}}).dump())
            .finish();
    auto r = import_bytes(store, arch, "odd:1");  // a file: read again as an archive
    EXPECT_EQ(r.record.format, "docker-archive");
    EXPECT_EQ(r.record.layers, std::vector<std::string>{sha256_hex(l1)});
    try {
        import_bytes(store, arch, "odd:2", /*as_pipe=*/true);  // a pipe cannot be read twice
        ADD_FAILURE() << "accepted as a rootfs";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("looks like an image archive"), std::string::npos) << e.what();
    }
    EXPECT_EQ(layer_dirs(store).size(), 1u);
}

TEST_F(StoreTest, DockerArchiveWithSeveralImagesChoosesByName) {
    const std::string l1 = layer1();
    const std::string cfg = config_for({l1}).dump();
    const std::string arch =
        docker_archive({l1}, {l1}, cfg, DockerStyle::Podman, {"localhost/test:latest"}, true);
    EXPECT_EQ(import_bytes(store, arch, "other:1").record.id, sha256_hex(cfg));
    std::string msg;
    EXPECT_EQ(import_code(arch, "third:1", &msg), Exit::BadImage);
    EXPECT_NE(msg.find("RepoTags: localhost/test:latest, localhost/other:1"), std::string::npos) << msg;
}

TEST_F(StoreTest, SharedLayersAreStoredOnceAndCollectedWhenUnused) {
    const std::string base = layer1(), top_a = layer2(), top_b = TarBuilder().file("b", "b").finish();
    const std::string cfg_a = config_for({base, top_a}).dump(), cfg_b = config_for({base, top_b}).dump();
    auto a = import_bytes(store, docker_archive({base, top_a}, {base, top_a}, cfg_a), "a:1");
    auto b = import_bytes(store, docker_archive({base, top_b}, {base, top_b}, cfg_b), "b:1");
    EXPECT_EQ(a.layers_unpacked, 2u);
    EXPECT_EQ(b.layers_unpacked, 1u);
    EXPECT_EQ(b.layers_reused, 1u);
    EXPECT_EQ(layer_dirs(store).size(), 3u);
    auto again = import_bytes(store, docker_archive({base, top_a}, {base, top_a}, cfg_a), "a:1");
    EXPECT_EQ(again.layers_unpacked, 0u) << "re-import writes nothing";
    EXPECT_EQ(again.layers_reused, 2u);

    auto rm_a = remove_image(store, parse_image_name("a:1"));
    EXPECT_TRUE(rm_a.record_removed);
    EXPECT_EQ(rm_a.layers_removed, 1u);
    EXPECT_EQ(layer_dirs(store), (std::vector<std::string>{std::min(sha256_hex(base), sha256_hex(top_b)),
                                                           std::max(sha256_hex(base), sha256_hex(top_b))}));
    remove_image(store, parse_image_name("b:1"));
    EXPECT_EQ(entries(store + "/layers"), std::vector<std::string>{}) << "layers and their info files gone";
    EXPECT_THROW(remove_image(store, parse_image_name("b:1")), Error);
}

TEST_F(StoreTest, RetaggingDropsTheImageThatLostItsLastName) {
    const std::string l1 = layer1(), l2 = TarBuilder().file("x", "y").finish();
    import_bytes(store, l1, "t:1");
    import_bytes(store, l2, "t:1");
    EXPECT_EQ(layer_dirs(store), std::vector<std::string>{sha256_hex(l2)});
    EXPECT_EQ(Store(store).list().size(), 1u);
}

// ------------------------------------------------------------------ OCI layout
TEST_F(StoreTest, OciLayoutChoosesByRefNameAndVerifiesGzipLayers) {
    const std::string layout = tmp.path() + "/oci";
    const std::string l1 = layer1(), l2 = layer2();
    const std::string cfg1 = config_for({l1}).dump(), cfg2 = config_for({l1, l2}).dump();
    json d1 = oci_manifest_descriptor(layout, {l1}, cfg1, "one");
    json d2 = oci_manifest_descriptor(layout, {l1, l2}, cfg2, "two");
    write_index(layout, {d1, d2});
    auto r = import_layout(store, layout, "two", "oci:two");
    EXPECT_EQ(r.record.format, "oci");
    EXPECT_EQ(r.record.id, sha256_hex(cfg2));
    EXPECT_EQ(r.record.manifest_digest, d2["digest"].get<std::string>().substr(7));
    EXPECT_EQ(r.record.layers, (std::vector<std::string>{sha256_hex(l1), sha256_hex(l2)}));
    EXPECT_TRUE(is_whiteout(store + "/layers/" + sha256_hex(l2) + "/etc/motd"));
    // Same layers as a docker-archive: same diff ids, nothing unpacked again.
    auto d = import_bytes(store, docker_archive({l1, l2}, {l1, l2}, cfg2), "dock:two");
    EXPECT_EQ(d.record.id, r.record.id);
    EXPECT_EQ(d.layers_unpacked, 0u);
    try {
        import_layout(store, layout, "", "oci:any");
        ADD_FAILURE() << "two images and no tag accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("one, two"), std::string::npos) << e.what();
    }
}

TEST_F(StoreTest, OciNestedIndexPicksThisPlatform) {
    const std::string layout = tmp.path() + "/oci";
    const std::string l1 = layer1();
    json cfg_arm = config_for({TarBuilder().file("arm", "x").finish()});
    cfg_arm["architecture"] = "arm64";
    json m_amd = oci_manifest_descriptor(layout, {l1}, config_for({l1}).dump(), "");
    json m_arm =
        oci_manifest_descriptor(layout, {TarBuilder().file("arm", "x").finish()}, cfg_arm.dump(), "");
    m_amd["platform"] = {{"os", "linux"}, {"architecture", formats::host_architecture()}};
    m_arm["platform"] = {{"os", "linux"}, {"architecture", "arm64"}};
    const std::string nested = json{
        {"schemaVersion", 2},
        {"mediaType", "application/vnd.oci.image.index.v1+json"},
        {"manifests",
         {m_arm, m_amd}}}.dump();
    json top = {{"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"digest", "sha256:" + put_blob(layout, nested)},
                {"size", nested.size()},
                {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}};
    write_index(layout, {top});
    auto r = import_layout(store, layout, "multi", "multi:1");
    EXPECT_EQ(r.record.layers, std::vector<std::string>{sha256_hex(l1)});
}

TEST_F(StoreTest, OciArchiveInATarStream) {
    const std::string layout = tmp.path() + "/oci";
    const std::string l1 = layer1();
    const std::string cfg = config_for({l1}).dump();
    write_index(layout, {oci_manifest_descriptor(layout, {l1}, cfg, "x")});
    TarBuilder t;
    t.file("oci-layout", read_text(layout + "/oci-layout"));
    t.file("index.json", read_text(layout + "/index.json"));
    for (const auto& b : entries(layout + "/blobs/sha256"))
        t.file("blobs/sha256/" + b, read_text(layout + "/blobs/sha256/" + b));
    auto r = import_bytes(store, t.finish(), "ociarch:1", true);
    EXPECT_EQ(r.record.format, "oci");
    EXPECT_EQ(r.record.id, sha256_hex(cfg));
}

// ------------------------------------------------------------------ verification
TEST_F(StoreTest, DiffIdMismatchRefusedAndNothingKept) {
    const std::string l1 = layer1(), l2 = layer2();
    json cfg = config_for({l1, l2});
    cfg["rootfs"]["diff_ids"][1] = "sha256:" + std::string(64, 'e');
    std::string msg;
    EXPECT_EQ(import_code(docker_archive({l1, l2}, {l1, l2}, cfg.dump()), "bad:1", &msg), Exit::BadImage);
    EXPECT_NE(msg.find("the config says sha256:eeee"), std::string::npos) << msg;
    expect_store_empty();
}

TEST_F(StoreTest, TamperedConfigRefused) {
    const std::string l1 = layer1();
    const std::string cfg = config_for({l1}).dump();
    std::string arch = docker_archive({l1}, {l1}, cfg);
    // Change the config's Cmd in place (same length): its file name no longer is its digest.
    auto pos = arch.find("echo hi");
    ASSERT_NE(pos, std::string::npos);
    arch.replace(pos, 7, "rm -rf ");
    // The tar header checksum does not cover data, so the archive still reads.
    EXPECT_EQ(import_code(arch), Exit::BadImage);
    expect_store_empty();
}

TEST_F(StoreTest, CorruptedOciBlobRefusedAndNothingKept) {
    const std::string layout = tmp.path() + "/oci";
    const std::string l1 = layer1(), l2 = layer2();
    json d = oci_manifest_descriptor(layout, {l1, l2}, config_for({l1, l2}).dump(), "x");
    write_index(layout, {d});
    // Flip one byte in the second layer blob (compressed data: decompression or digest fails).
    json manifest =
        json::parse(read_text(layout + "/blobs/sha256/" + d["digest"].get<std::string>().substr(7)));
    const std::string blob =
        layout + "/blobs/sha256/" + manifest["layers"][1]["digest"].get<std::string>().substr(7);
    std::string bytes = read_text(blob);
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x55);
    write_text(blob, bytes);
    try {
        import_layout(store, layout, "x", "x:1");
        ADD_FAILURE() << "corrupted blob accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::BadImage) << e.what();
    }
    expect_store_empty();
}

TEST_F(StoreTest, CorruptedOciManifestRefused) {
    const std::string layout = tmp.path() + "/oci";
    const std::string l1 = layer1();
    json d = oci_manifest_descriptor(layout, {l1}, config_for({l1}).dump(), "x");
    const std::string mpath = layout + "/blobs/sha256/" + d["digest"].get<std::string>().substr(7);
    write_text(mpath, read_text(mpath) + " ");
    write_index(layout, {d});
    EXPECT_THROW(import_layout(store, layout, "x", "x:1"), Error);
    expect_store_empty();
}

TEST_F(StoreTest, ForeignArchitectureRefused) {
    const std::string l1 = layer1();
    json cfg = config_for({l1});
    cfg["architecture"] = formats::host_architecture() == "amd64" ? "arm64" : "amd64";
    std::string msg;
    EXPECT_EQ(import_code(docker_archive({l1}, {l1}, cfg.dump()), "bad:1", &msg), Exit::BadImage);
    EXPECT_NE(msg.find("built for"), std::string::npos) << msg;
    expect_store_empty();
}

TEST_F(StoreTest, GarbageIsNotAnImage) {
    EXPECT_EQ(import_code(std::string(10000, 'z')), Exit::BadImage);
    EXPECT_EQ(import_code(TarBuilder().file("manifest.json", "[{\"Config\":\"c.json\"}]").finish()),
              Exit::BadImage);
    expect_store_empty();
}

// ------------------------------------------------------------------ malicious layers
TEST_F(StoreTest, DotDotAndAbsolutePathsRefused) {
    EXPECT_EQ(import_code(TarBuilder().file("../escape", "x").finish()), Exit::BadImage);
    EXPECT_EQ(import_code(TarBuilder().file("a/../../escape", "x").finish()), Exit::BadImage);
    EXPECT_EQ(import_code(TarBuilder().file("/abs-escape", "x").finish()), Exit::BadImage);
    EXPECT_FALSE(fs::exists(tmp.path() + "/escape"));
    EXPECT_FALSE(fs::exists(store + "/escape"));
    EXPECT_FALSE(fs::exists("/abs-escape"));
    expect_store_empty();
}

TEST_F(StoreTest, WritesThroughSymlinksRefused) {
    EXPECT_EQ(import_code(TarBuilder().symlink("lnk", outside).file("lnk/pwned", "x").finish()),
              Exit::BadImage);
    EXPECT_EQ(
        import_code(TarBuilder().symlink("lnk", "../../../../../../" + outside).dir("lnk/sub").finish()),
        Exit::BadImage);
    EXPECT_EQ(entries(outside), std::vector<std::string>{});
    expect_store_empty();
}

TEST_F(StoreTest, SymlinkReplacedByAFileIsNotFollowed) {
    write_text(outside + "/target", "precious");
    auto r = import_bytes(
        store, TarBuilder().symlink("f", outside + "/target").file("f", "replaced").finish(), "ok:1");
    EXPECT_EQ(read_text(outside + "/target"), "precious");
    EXPECT_EQ(read_text(store + "/layers/" + r.record.layers[0] + "/f"), "replaced");
}

TEST_F(StoreTest, HardLinksOutOfTheLayerRefused) {
    write_text(outside + "/secret", "s");
    EXPECT_EQ(import_code(TarBuilder().hardlink("h", "../../outside/secret").finish()), Exit::BadImage);
    EXPECT_EQ(import_code(TarBuilder().hardlink("h", outside + "/secret").finish()), Exit::BadImage);
    EXPECT_EQ(import_code(TarBuilder().symlink("lnk", outside).hardlink("h", "lnk/secret").finish()),
              Exit::BadImage);
    EXPECT_EQ(import_code(TarBuilder().hardlink("h", "not/in/layer").finish()), Exit::BadImage);
    struct stat st {};
    ASSERT_EQ(::stat((outside + "/secret").c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 1u) << "no new link to the outside file";
    expect_store_empty();
}

TEST_F(StoreTest, WhiteoutsThroughSymlinksRefused) {
    write_text(outside + "/victim", "v");
    EXPECT_EQ(import_code(TarBuilder().symlink("lnk", outside).file("lnk/.wh.victim", "").finish()),
              Exit::BadImage);
    EXPECT_EQ(import_code(TarBuilder().symlink("lnk", outside).file("lnk/.wh..wh..opq", "").finish()),
              Exit::BadImage);
    EXPECT_EQ(read_text(outside + "/victim"), "v");
    EXPECT_EQ(xattr(outside, kNs + ".overlay.opaque"), "");
    EXPECT_EQ(entries(outside), std::vector<std::string>{"victim"});
    expect_store_empty();
}

TEST_F(StoreTest, DevicesDroppedSetuidClearedXattrsNotRestored) {
    const std::string tar =
        TarBuilder()
            .node("dev/sda", AE_IFBLK)
            .node("dev/mem", AE_IFCHR)
            .node("fifo", AE_IFIFO)
            .file("bin/su", "x", 04755)
            .file("bin/wall", "x", 02755)
            .dir("shared", 02775)
            .xattr_file("bin/ping", "x", "security.capability", std::string("\x01\x00\x00\x02", 4))
            .xattr_file("bin/ping2", "x", "trusted.overlay.opaque", "y")
            .finish();
    auto r = import_bytes(store, tar, "sec:1");
    const std::string L = store + "/layers/" + r.record.layers[0];
    EXPECT_FALSE(fs::exists(fs::symlink_status(L + "/dev/sda")));
    EXPECT_FALSE(fs::exists(fs::symlink_status(L + "/dev/mem")));
    EXPECT_FALSE(fs::exists(fs::symlink_status(L + "/fifo")));
    EXPECT_EQ(r.dropped, 3u);
    struct stat st {};
    ASSERT_EQ(::lstat((L + "/bin/su").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    ASSERT_EQ(::lstat((L + "/bin/wall").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    EXPECT_EQ(r.suid_cleared, 2u);
    EXPECT_EQ(xattr(L + "/bin/ping", "security.capability"), "");
    EXPECT_EQ(xattr(L + "/bin/ping2", "trusted.overlay.opaque"), "");
}

TEST_F(StoreTest, HardLinkToADroppedDeviceIsDroppedToo) {
    auto r =
        import_bytes(store, TarBuilder().node("fifo", AE_IFIFO).hardlink("fifo2", "fifo").finish(), "x:1");
    EXPECT_EQ(r.dropped, 2u);
}

TEST_F(StoreTest, WhiteoutThenDirectoryInOneLayerIsOpaque) {
    auto r = import_bytes(store, TarBuilder().file(".wh.d", "").dir("d").file("d/f", "x").finish(), "x:1");
    EXPECT_EQ(xattr(store + "/layers/" + r.record.layers[0] + "/d", kNs + ".overlay.opaque"), "y");
}

// ------------------------------------------------------------------ progress, concurrency, crashes
TEST_F(StoreTest, ProgressReportsBytesAndEnd) {
    const std::string tar = layer1();
    std::vector<ImportProgress> seen;
    ImportOptions opt;
    opt.progress = [&](const ImportProgress& p) { seen.push_back(p); };
    auto r = import_bytes(store, tar, "p:1", false, opt);
    ASSERT_FALSE(seen.empty());
    EXPECT_TRUE(seen.back().done);
    EXPECT_EQ(seen.back().bytes, tar.size());
    EXPECT_EQ(seen.back().total, tar.size());
    EXPECT_EQ(r.bytes_read, tar.size());
}

// Runs child(i) in kN forked processes at once and returns the line each wrote (a child that
// throws writes none and fails the test). while_running runs in the parent meanwhile.
std::vector<std::string> in_children(int kN, const std::function<std::string(int)>& child,
                                     const std::function<void()>& while_running = {}) {
    int p[2];
    if (::pipe(p) != 0) return {};
    std::vector<pid_t> kids;
    for (int i = 0; i < kN; ++i) {
        pid_t pid = ::fork();
        if (pid == 0) {
            ::close(p[0]);
            int code = 0;
            try {
                const std::string line = child(i) + "\n";  // one write: lines do not interleave
                if (::write(p[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) code = 2;
            } catch (const std::exception& e) {
                std::fprintf(stderr, "child %d: %s\n", i, e.what());
                code = 1;
            }
            ::_exit(code);
        }
        kids.push_back(pid);
    }
    ::close(p[1]);
    if (while_running) while_running();
    for (pid_t k : kids) {
        int st = 0;
        ::waitpid(k, &st, 0);
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    std::string all;
    char buf[4096];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) all.append(buf, static_cast<size_t>(n));
    ::close(p[0]);
    std::vector<std::string> lines;
    std::istringstream in(all);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
}

// Imports `arch` from kN processes at once; returns the layers they unpacked, in all.
int concurrent_imports(const std::string& store, const std::string& arch, int kN, bool as_pipe) {
    const auto lines = in_children(kN, [&](int i) {
        return std::to_string(
            import_bytes(store, arch, "conc:" + std::to_string(i), as_pipe).layers_unpacked);
    });
    EXPECT_EQ(lines.size(), static_cast<size_t>(kN)) << "every import succeeded";
    int unpacked = 0;
    for (const auto& l : lines) unpacked += std::stoi(l);
    return unpacked;
}

TEST_F(StoreTest, ConcurrentImportsUnpackEachLayerOnce) {
    const std::string l1 = layer1(), l2 = layer2();
    const std::string arch = docker_archive({l1, l2}, {l1, l2}, config_for({l1, l2}).dump());
    constexpr int kN = 8;
    EXPECT_EQ(concurrent_imports(store, arch, kN, false), 2) << "each layer unpacked by exactly one import";
    EXPECT_EQ(layer_dirs(store).size(), 2u);
    EXPECT_EQ(Store(store).list().size(), 1u);
    EXPECT_EQ(Store(store).list()[0].names.size(), static_cast<size_t>(kN));
    EXPECT_EQ(entries(store + "/tmp"), std::vector<std::string>{});
}

TEST_F(StoreTest, ConcurrentOciArchiveStreamsUnpackOnce) {
    // Gzip blobs named by their compressed digest: the alias written with the layer lets the
    // imports waiting on that digest find it.
    const std::string layout = tmp.path() + "/oci";
    const std::string l1 = layer1();
    write_index(layout, {oci_manifest_descriptor(layout, {l1}, config_for({l1}).dump(), "x")});
    TarBuilder t;
    t.file("oci-layout", read_text(layout + "/oci-layout"));
    t.file("index.json", read_text(layout + "/index.json"));
    for (const auto& b : entries(layout + "/blobs/sha256"))
        t.file("blobs/sha256/" + b, read_text(layout + "/blobs/sha256/" + b));
    EXPECT_EQ(concurrent_imports(store, t.finish(), 6, true), 1);
    EXPECT_EQ(layer_dirs(store), std::vector<std::string>{sha256_hex(l1)});
    EXPECT_EQ(entries(store + "/aliases").size(), 1u);
}

// ensure_image from kN processes at once, all for one name (ranks launching from one file);
// returns how many of them imported (the others must have found that import's image).
int concurrent_ensures(const std::string& store, const std::string& arch, int kN,
                       std::set<std::string>* ids) {
    char tmpl[] = "/tmp/socker-unit-ensure-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ::unlink(tmpl);
    if (fd < 0 || ::write(fd, arch.data(), arch.size()) != static_cast<ssize_t>(arch.size())) return -1;
    const auto lines = in_children(kN, [&](int) {
        ImportSource src;
        src.label = "ranks";
        src.fd = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY);  // own offset
        src.seekable = true;
        src.size = arch.size();
        auto r = ensure_image(store, src, parse_image_name("file/job:1"));
        return (r.imported ? "I" : "F") + r.record.id;
    });
    ::close(fd);
    EXPECT_EQ(lines.size(), static_cast<size_t>(kN)) << "every launch got an image";
    int imported = 0;
    for (const auto& l : lines) {
        imported += l[0] == 'I';
        ids->insert(l.substr(1));
    }
    return imported;
}

TEST_F(StoreTest, ConcurrentFirstLaunchesImportOnce) {
    const std::string l1 = layer1(), l2 = layer2();
    const std::string arch = docker_archive({l1, l2}, {l1, l2}, config_for({l1, l2}).dump());
    std::set<std::string> ids;
    EXPECT_EQ(concurrent_ensures(store, arch, 12, &ids), 1) << "one import, the others wait and reuse it";
    EXPECT_EQ(ids.size(), 1u);
    EXPECT_EQ(layer_dirs(store).size(), 2u);
    ASSERT_EQ(Store(store).list().size(), 1u);
    EXPECT_EQ(Store(store).list()[0].names, std::vector<std::string>{"file/job:1"});
    // Found again without an import.
    ids.clear();
    EXPECT_EQ(concurrent_ensures(store, arch, 3, &ids), 0);
    // A missing layer makes the image incomplete: the next launch imports it again.
    fs::remove_all(store + "/layers/" + sha256_hex(l2));
    EXPECT_FALSE(Store(store).find_complete(parse_image_name("file/job:1")));
    ids.clear();
    EXPECT_EQ(concurrent_ensures(store, arch, 4, &ids), 1);
    EXPECT_TRUE(Store(store).find_complete(parse_image_name("file/job:1")));
}

TEST_F(StoreTest, FailedFirstLaunchIsTriedOnceAndEveryWaiterReportsIt) {
    std::string arch = docker_archive({layer1()}, {layer1()}, config_for({layer1()}).dump());
    arch[arch.size() / 2] ^= 0x55;  // corrupt the middle of the archive
    char tmpl[] = "/tmp/socker-unit-bad-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ::unlink(tmpl);
    ASSERT_EQ(::write(fd, arch.data(), arch.size()), static_cast<ssize_t>(arch.size()));
    const ImageName name = parse_image_name("file/bad:1");
    // Hold the name's lock so that all ranks queue behind it, as 64 ranks starting together do.
    fs::create_directories(store + "/locks");
    const std::string lock = store + "/locks/name-" + sha256_hex(name.str()).substr(0, 2);
    int lfd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_EQ(::flock(lfd, LOCK_EX), 0);
    constexpr int kN = 5;
    const auto lines = in_children(
        kN,
        [&](int) -> std::string {
            ::close(lfd);  // the held lock is the parent's, not ours
            try {
                ImportSource src;
                src.label = "job.tar";
                src.fd = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY);
                src.seekable = true;
                src.size = arch.size();
                ensure_image(store, src, name);
            } catch (const Error& e) {
                const std::string m = e.what();
                if (e.code() != Exit::BadImage || m.find('\n') != std::string::npos) return "X";
                return m.find("by another rank failed") != std::string::npos ? "W" : "O";
            }
            return "S";
        },
        [&] {
            ::usleep(300000);  // every rank is blocked on the lock
            ::close(lfd);
        });
    std::string got;
    for (const auto& l : lines) got += l;
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, "OWWWW") << "one import failed on its own, the 4 that waited report it";
    EXPECT_EQ(entries(store + "/images"), std::vector<std::string>{});
    EXPECT_EQ(entries(store + "/refs"), std::vector<std::string>{});
    EXPECT_EQ(layer_dirs(store), std::vector<std::string>{});
    // A later launch (nobody to wait for) tries again itself, and clears the note when it works.
    ImportSource again;
    again.label = "job.tar";
    again.fd = fd;
    again.seekable = true;
    EXPECT_THROW(ensure_image(store, again, name), Error);
    ::close(fd);
    const std::string note = store + "/locks/failed-" + sha256_hex(name.str());
    EXPECT_TRUE(fs::exists(note));
    const std::string good = docker_archive({layer1()}, {layer1()}, config_for({layer1()}).dump());
    char gtmpl[] = "/tmp/socker-unit-good-XXXXXX";
    int gfd = ::mkstemp(gtmpl);
    ::unlink(gtmpl);
    ASSERT_EQ(::write(gfd, good.data(), good.size()), static_cast<ssize_t>(good.size()));
    ::lseek(gfd, 0, SEEK_SET);
    ImportSource fixed;
    fixed.label = "job.tar";
    fixed.fd = gfd;
    fixed.seekable = true;
    EXPECT_TRUE(ensure_image(store, fixed, name).imported);
    ::close(gfd);
    EXPECT_FALSE(fs::exists(note)) << "a successful import clears the note";
}

TEST(ImageNames, NameForFileIsStableAndChangesWithTheFile) {
    FileIdentity f{"/scratch/u/My App_v1.2.tar.gz", 2049, 1234, 5000, 1700000000000000001ULL,
                   1700000000000000002ULL};
    const ImageName a = name_for_file(f);
    EXPECT_EQ(a.repo, "file/my-app-v1-2");
    EXPECT_EQ(a.tag.size(), 24u);
    EXPECT_EQ(name_for_file(f).str(), a.str());
    for (auto change : std::vector<std::function<void(FileIdentity&)>>{
             [](FileIdentity& x) { x.path = "/other" + x.path; }, [](FileIdentity& x) { ++x.dev; },
             [](FileIdentity& x) { ++x.ino; }, [](FileIdentity& x) { ++x.size; },
             [](FileIdentity& x) { ++x.mtime_ns; }, [](FileIdentity& x) { ++x.ctime_ns; }}) {
        FileIdentity g = f;
        change(g);
        EXPECT_EQ(name_for_file(g).repo, a.repo);
        EXPECT_NE(name_for_file(g).tag, a.tag);
    }
    EXPECT_EQ(name_for_file({"/x/.._--.tar", 1, 1, 1, 1, 1}).repo, "file/image");
    // Every odd file name gives a valid name (separators collapse, none at the ends).
    for (const std::string odd : {"My App - v2.tar", "app__v2.tar", "run_.1.tar", "a--b.tar", "-x-.tar.bz2",
                                  "é.tar", "a b\tc\n.tgz"}) {
        const ImageName n = name_for_file({"/x/" + odd, 1, 1, 1, 1, 1});
        EXPECT_NO_THROW(parse_image_name(n.str())) << odd;
    }
    EXPECT_EQ(name_for_file({"/x/My App - v2.tar", 1, 1, 1, 1, 1}).repo, "file/my-app-v2");
    EXPECT_EQ(name_for_file({"/x/run_.1.tar.bz2", 1, 1, 1, 1, 1}).repo, "file/run-1");
    EXPECT_EQ(name_for_file({"/x/" + std::string(300, 'A'), 1, 1, 1, 1, 1}).repo,
              "file/" + std::string(64, 'a'));
}

TEST_F(StoreTest, KilledImportLeavesNoVisibleImageAndTheNextOneSucceeds) {
    // A layer big enough that the import is still running when killed, fed through a pipe.
    TarBuilder big;
    for (int i = 0; i < 64; ++i)
        big.file("data/f" + std::to_string(i), std::string(256 * 1024, static_cast<char>('a' + i % 26)));
    const std::string tar = big.finish();
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(p[1]);
        ImportSource src;
        src.label = "pipe";
        src.fd = p[0];
        try {
            import_image(store, src, parse_image_name("killed:1"));
        } catch (...) {
        }
        ::_exit(0);
    }
    ::close(p[0]);
    // Half the data, then wait until the importer has written some of it, then SIGKILL.
    size_t half = tar.size() / 2, off = 0;
    while (off < half) off += static_cast<size_t>(::write(p[1], tar.data() + off, half - off));
    bool writing = false;
    for (int i = 0; i < 1000 && !writing; ++i) {  // up to 10 s on a loaded machine
        for (const auto& w : entries(store + "/tmp"))
            writing = writing || fs::exists(store + "/tmp/" + w + "/layer-1/data/f3");
        if (!writing) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(writing) << "import never started unpacking";
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    ::close(p[1]);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(entries(store + "/refs"), std::vector<std::string>{});
    EXPECT_EQ(entries(store + "/images"), std::vector<std::string>{});
    EXPECT_EQ(layer_dirs(store), std::vector<std::string>{});
    EXPECT_THROW(Store(store).find(parse_image_name("killed:1")), Error);
    EXPECT_EQ(entries(store + "/tmp").size(), 1u) << "the dead import's work dir";
    auto r = import_bytes(store, tar, "killed:1");
    EXPECT_EQ(r.record.layers, std::vector<std::string>{sha256_hex(tar)});
    EXPECT_EQ(entries(store + "/tmp"), std::vector<std::string>{}) << "leftovers swept";
    EXPECT_EQ(Store(store).find(parse_image_name("killed:1")).id, r.record.id);
}

TEST_F(StoreTest, NextImportRemovesWhatADeadImportLeft) {
    import_bytes(store, layer1(), "keep:1");
    // A dead import: its work dir (nobody holds its lock) marks an orphan layer as used.
    const std::string orphan = std::string(64, 'f');
    fs::create_directories(store + "/layers/" + orphan + "/x");
    fs::create_directories(store + "/tmp/import-dead00/uses");
    write_text(store + "/tmp/import-dead00/uses/" + orphan, "");
    auto r = import_bytes(store, layer2(), "other:1");
    EXPECT_EQ(entries(store + "/tmp"), std::vector<std::string>{});
    EXPECT_FALSE(fs::exists(store + "/layers/" + orphan));
    EXPECT_EQ(layer_dirs(store).size(), 2u);
}

TEST_F(StoreTest, LayersMarkedByALiveImportAreKept) {
    const std::string orphan = std::string(64, 'f');
    fs::create_directories(store + "/layers/" + orphan + "/x");
    fs::create_directories(store + "/tmp/import-live00/uses");
    write_text(store + "/tmp/import-live00/uses/" + orphan, "");
    int fd = ::open((store + "/tmp/import-live00").c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // alive
    auto g = collect_garbage(store);
    EXPECT_EQ(g.layers_removed, 0u);
    EXPECT_TRUE(fs::exists(store + "/layers/" + orphan));
    ::close(fd);
    g = collect_garbage(store);
    EXPECT_EQ(g.layers_removed, 1u);
    EXPECT_EQ(g.tmp_removed, 1u);
}

TEST_F(StoreTest, GarbageCollectionKeepsLayersOfLiveImports) {
    // An orphan layer (as a killed import leaves one) is collected; a referenced one is not.
    auto r = import_bytes(store, layer1(), "keep:1");
    const std::string orphan = std::string(64, 'f');
    fs::create_directories(store + "/layers/" + orphan + "/x");
    auto g = collect_garbage(store);
    EXPECT_EQ(g.layers_removed, 1u);
    EXPECT_EQ(layer_dirs(store), r.record.layers);
}

}  // namespace
}  // namespace socker::image

// ------------------------------------------------------------------ round two (issue 11)
namespace socker::image {
namespace {

TEST_F(StoreTest, LayerTreesAreReachableByTheStoreOwnerAlone) {
    import_bytes(store, layer1(), "a:1");
    struct stat st {};
    ASSERT_EQ(::stat((store + "/layers").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    // A store made before the rule is tightened by the next command that prepares it.
    ASSERT_EQ(::chmod((store + "/layers").c_str(), 0755), 0);
    collect_garbage(store);
    ASSERT_EQ(::stat((store + "/layers").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(StoreTest, DecompressionBombsStopAtTheLimitsAndLeaveNothing) {
    const std::string zeros = TarBuilder().file("zeros", std::string(80u << 20, '\0')).finish();
    const std::string gz = gzip(zeros);
    ImportOptions opt;
    opt.limits.max_ratio = 50;
    std::string msg;
    try {
        import_bytes(store, gz, "bomb:1", false, opt);
        ADD_FAILURE() << "ratio not enforced";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::BadImage);
        msg = e.what();
    }
    EXPECT_NE(msg.find("import_max_ratio = 50"), std::string::npos) << msg;
    expect_store_empty();
    opt.limits = {10u << 20, 0, 0};
    try {
        import_bytes(store, zeros, "bomb:1", false, opt);
        ADD_FAILURE() << "bytes not enforced";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::BadImage);
        EXPECT_NE(std::string(e.what()).find("import_max_bytes = 10485760"), std::string::npos) << e.what();
    }
    expect_store_empty();
    TarBuilder many;
    for (int i = 0; i < 300; ++i) many.file("f" + std::to_string(i), "");
    opt.limits = {0, 100, 0};
    try {
        import_bytes(store, many.finish(), "many:1", false, opt);
        ADD_FAILURE() << "files not enforced";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Exit::BadImage);
        EXPECT_NE(std::string(e.what()).find("import_max_files = 100"), std::string::npos) << e.what();
    }
    expect_store_empty();
    // Under the limits, the same image imports (the limits count the whole import).
    opt.limits = {100u << 20, 10, 0};
    EXPECT_NO_THROW(import_bytes(store, gz, "bomb:1", false, opt));
}

TEST(InUse, OverlaysOfSockerMpiInMountinfo) {
    const std::string a(64, 'a'), b = "0123456789abcdef" + std::string(48, 'e');
    EXPECT_EQ(overlay_source({a, b}), "socker-mpi:aaaaaaaaaaaaaaaa,0123456789abcdef");
    const std::string mi =
        "100 90 0:50 / / ro,nosuid,nodev - overlay socker-mpi:aaaaaaaaaaaaaaaa,0123456789abcdef "
        "rw,lowerdir=/x\n"
        "101 90 0:51 / /other rw - overlay overlay rw,lowerdir=/y\n"
        "102 90 0:52 / /proc rw - proc proc rw\n"
        "103 90 0:53 / /z rw - overlay socker-mpi:nothex,0123 rw\n";
    const auto found = overlays_in_mountinfo(mi);
    ASSERT_EQ(found.size(), 2u);
    EXPECT_EQ(found[0], (std::vector<std::string>{"aaaaaaaaaaaaaaaa", "0123456789abcdef"}));
    EXPECT_TRUE(found[1].empty()) << "malformed ids are ignored";
    InUse u;
    u.containers = found;
    EXPECT_TRUE(layer_used(u, a));
    EXPECT_TRUE(layer_used(u, b));
    EXPECT_FALSE(layer_used(u, std::string(64, 'c')));
    EXPECT_EQ(u.containers_using({std::string(64, 'c'), a}), 1u);
    // One lock file per store, the same in every process and version.
    EXPECT_EQ(node_lock_path("/run/socker-mpi", "/var/lib/socker-mpi/images"),
              node_lock_path("/run/socker-mpi", "/var/lib/socker-mpi/images"));
    EXPECT_NE(node_lock_path("/run/socker-mpi", "/a"), node_lock_path("/run/socker-mpi", "/b"));
}

// A real container: an overlay of the image's layers with the launcher's mount source, in a
// child's private mount namespace. image rm keeps its layers until the child is gone.
TEST_F(StoreTest, LayersOfARunningContainerAreKeptUntilItEnds) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount an overlay";
    const std::string lock = tmp.path() + "/node.lock";
    const ImportOptions opt = [&] {
        ImportOptions o;
        o.node_lock = lock;
        return o;
    }();
    const auto rec = import_bytes(store, layer1(), "run:1", false, opt).record;
    const std::string mnt = tmp.path() + "/mnt";
    fs::create_directories(mnt);
    int ready[2], stop[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(stop), 0);
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(ready[0]);
        ::close(stop[1]);
        if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
            ::_exit(2);
        if (::mount("t", mnt.c_str(), "tmpfs", 0, nullptr) != 0) ::_exit(3);
        fs::create_directories(mnt + "/u");
        fs::create_directories(mnt + "/w");
        fs::create_directories(mnt + "/r");
        const std::string opts = "lowerdir=" + Store(store).layer_dir(rec.layers[0]) + ",upperdir=" + mnt +
                                 "/u,workdir=" + mnt + "/w";
        if (::mount(overlay_source(rec.layers).c_str(), (mnt + "/r").c_str(), "overlay", 0, opts.c_str()) !=
            0)
            ::_exit(4);
        (void)!::write(ready[1], "x", 1);
        char c;
        (void)!::read(stop[0], &c, 1);
        ::_exit(0);
    }
    ::close(ready[1]);
    ::close(stop[0]);
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1) << "child could not mount";
    const RemoveResult rr = remove_image(store, parse_image_name("run:1"), {lock});
    EXPECT_TRUE(rr.record_removed);
    EXPECT_EQ(rr.layers_removed, 0u);
    EXPECT_EQ(rr.layers_in_use, 1u);
    EXPECT_EQ(rr.containers, 1u);
    EXPECT_EQ(layer_dirs(store), rec.layers) << "kept while the container runs";
    EXPECT_EQ(collect_garbage(store, {lock}).layers_in_use, 1u);
    ::close(stop[1]);
    int st = 0;
    ::waitpid(child, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    const GcResult g = collect_garbage(store, {lock});
    EXPECT_EQ(g.layers_removed, 1u);
    EXPECT_EQ(g.layers_in_use, 0u);
    EXPECT_EQ(layer_dirs(store), std::vector<std::string>{});
    ::close(ready[0]);
}

}  // namespace
}  // namespace socker::image
