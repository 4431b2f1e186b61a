// Helpers for the image store tests: tar archives built with libarchive's writer, docker-archive
// and OCI layout fixtures, a scratch store.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "image/digest.hpp"
#include "image/gc.hpp"
#include "image/import.hpp"
#include "image/in_use.hpp"
#include "image/layer.hpp"
#include "image/store.hpp"

namespace socker::image::testing {

namespace fs = std::filesystem;
using json = nlohmann::json;

class TarBuilder {
public:
    explicit TarBuilder(bool gzip = false) : a_(archive_write_new()) {
        archive_write_set_format_pax_restricted(a_);
        if (gzip) archive_write_add_filter_gzip(a_);
        archive_write_set_bytes_per_block(a_, 512);
        archive_write_open(a_, this, nullptr, &TarBuilder::cb, nullptr);
    }
    ~TarBuilder() {
        if (a_) archive_write_free(a_);
    }
    TarBuilder& file(const std::string& path, const std::string& data, unsigned mode = 0644, long uid = 0,
                     long gid = 0, long mtime = 1700000000) {
        return add(path, AE_IFREG, mode, data, "", "", uid, gid, mtime);
    }
    TarBuilder& dir(const std::string& path, unsigned mode = 0755, long uid = 0, long gid = 0) {
        return add(path, AE_IFDIR, mode, "", "", "", uid, gid, 1700000000);
    }
    TarBuilder& symlink(const std::string& path, const std::string& target) {
        return add(path, AE_IFLNK, 0777, "", target, "", 0, 0, 1700000000);
    }
    TarBuilder& hardlink(const std::string& path, const std::string& target) {
        return add(path, AE_IFREG, 0644, "", "", target, 0, 0, 1700000000);
    }
    TarBuilder& node(const std::string& path, unsigned type, unsigned mode = 0666) {
        return add(path, type, mode, "", "", "", 0, 0, 1700000000);
    }
    TarBuilder& xattr_file(const std::string& path, const std::string& data, const std::string& name,
                           const std::string& value) {
        archive_entry* e = entry(path, AE_IFREG, 0755, data.size(), 0, 0, 1700000000);
        archive_entry_xattr_add_entry(e, name.c_str(), value.data(), value.size());
        write(e, data);
        return *this;
    }
    std::string finish() {
        archive_write_close(a_);
        archive_write_free(a_);
        a_ = nullptr;
        return out_;
    }

private:
    static la_ssize_t cb(archive*, void* c, const void* buf, size_t n) {
        static_cast<TarBuilder*>(c)->out_.append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
    }
    archive_entry* entry(const std::string& path, unsigned type, unsigned mode, size_t size, long uid,
                         long gid, long mtime) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, path.c_str());
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, mode);
        archive_entry_set_size(e, static_cast<la_int64_t>(size));
        archive_entry_set_uid(e, uid);
        archive_entry_set_gid(e, gid);
        archive_entry_set_mtime(e, mtime, 0);
        return e;
    }
    void write(archive_entry* e, const std::string& data) {
        archive_write_header(a_, e);
        if (!data.empty()) archive_write_data(a_, data.data(), data.size());
        archive_entry_free(e);
    }
    TarBuilder& add(const std::string& path, unsigned type, unsigned mode, const std::string& data,
                    const std::string& symlink, const std::string& hardlink, long uid, long gid, long mtime) {
        archive_entry* e = entry(path, type, mode, data.size(), uid, gid, mtime);
        if (!symlink.empty()) archive_entry_set_symlink(e, symlink.c_str());
        if (!hardlink.empty()) {
            archive_entry_set_hardlink(e, hardlink.c_str());
            archive_entry_set_size(e, 0);
        }
        write(e, data);
        return *this;
    }
    archive* a_;
    std::string out_;
};

inline std::string gunzip(const std::string& gz) {
    archive* a = archive_read_new();
    archive_read_support_filter_gzip(a);
    archive_read_support_format_raw(a);
    archive_read_open_memory(a, gz.data(), gz.size());
    archive_entry* e;
    archive_read_next_header(a, &e);
    std::string out;
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    archive_read_free(a);
    return out;
}

inline std::string gzip(const std::string& data) {
    archive* a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_raw(a);
    std::string out;
    archive_write_open(
        a, &out, nullptr,
        [](archive*, void* c, const void* buf, size_t n) -> la_ssize_t {
            static_cast<std::string*>(c)->append(static_cast<const char*>(buf), n);
            return static_cast<la_ssize_t>(n);
        },
        nullptr);
    archive_entry* e = archive_entry_new();
    archive_entry_set_filetype(e, AE_IFREG);
    archive_write_header(a, e);
    archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    return out;
}

inline json config_for(const std::vector<std::string>& layer_tars) {
    json diff = json::array();
    for (const auto& t : layer_tars) diff.push_back("sha256:" + sha256_hex(t));
    return {{"architecture", "amd64"},
            {"os", "linux"},
            {"created", "2024-01-02T03:04:05Z"},
            {"config",
             {{"Env", {"PATH=/usr/local/bin:/usr/bin:/bin", "FOO=bar"}},
              {"Entrypoint", {"/bin/sh", "-c"}},
              {"Cmd", {"echo hi"}},
              {"WorkingDir", "/work"},
              {"User", "1000:1000"}}},
            {"rootfs", {{"type", "layers"}, {"diff_ids", diff}}}};
}

enum class DockerStyle { Podman, Legacy };

// A docker-archive. layer_blobs: what is stored for each layer (a tar, or its gzip); the config
// records the diff ids of `layer_tars` (pass the same when uncompressed).
inline std::string docker_archive(const std::vector<std::string>& layer_tars,
                                  const std::vector<std::string>& layer_blobs, const std::string& config_text,
                                  DockerStyle style = DockerStyle::Podman,
                                  const std::vector<std::string>& repo_tags = {"localhost/test:latest"},
                                  bool extra_image = false) {
    TarBuilder t;
    json layers = json::array();
    for (size_t i = 0; i < layer_blobs.size(); ++i) {
        const std::string blob_hex = sha256_hex(layer_blobs[i]);
        const std::string v1 = sha256_hex("v1-" + std::to_string(i) + config_text);
        if (style == DockerStyle::Podman) {
            t.file(blob_hex + ".tar", layer_blobs[i], 0444);
            t.symlink(v1 + "/layer.tar", "../" + blob_hex + ".tar");
            layers.push_back(blob_hex + ".tar");
        } else {
            t.dir(v1);
            t.file(v1 + "/VERSION", "1.0");
            t.file(v1 + "/json", "{\"id\":\"" + v1 + "\"}");
            t.file(v1 + "/layer.tar", layer_blobs[i]);
            layers.push_back(v1 + "/layer.tar");
        }
    }
    (void)layer_tars;
    const std::string cfg_hex = sha256_hex(config_text);
    t.file(cfg_hex + ".json", config_text);
    json manifest =
        json::array({{{"Config", cfg_hex + ".json"}, {"RepoTags", repo_tags}, {"Layers", layers}}});
    if (extra_image)
        manifest.push_back(
            {{"Config", cfg_hex + ".json"}, {"RepoTags", {"localhost/other:1"}}, {"Layers", layers}});
    t.file("manifest.json", manifest.dump());
    t.file("repositories", "{}");
    return t.finish();
}

// Writes blobs into an OCI layout directory; returns the digest hex.
inline std::string put_blob(const std::string& layout, const std::string& data) {
    const std::string hex = sha256_hex(data);
    fs::create_directories(layout + "/blobs/sha256");
    FILE* f = std::fopen((layout + "/blobs/sha256/" + hex).c_str(), "wb");
    std::fwrite(data.data(), 1, data.size(), f);
    std::fclose(f);
    return hex;
}

inline void write_text(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
}

inline std::string read_text(const std::string& path) {
    std::string out;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return out;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
    return out;
}

// An image manifest (gzip layers) for the layer tars; returns the manifest digest and size.
inline json oci_manifest_descriptor(const std::string& layout, const std::vector<std::string>& layer_tars,
                                    const std::string& config_text, const std::string& ref_name) {
    json layers = json::array();
    for (const auto& t : layer_tars) {
        std::string gz = gzip(t);
        layers.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                          {"digest", "sha256:" + put_blob(layout, gz)},
                          {"size", gz.size()}});
    }
    json manifest = {{"schemaVersion", 2},
                     {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"config",
                      {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                       {"digest", "sha256:" + put_blob(layout, config_text)},
                       {"size", config_text.size()}}},
                     {"layers", layers}};
    const std::string mtext = manifest.dump();
    json d = {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
              {"digest", "sha256:" + put_blob(layout, mtext)},
              {"size", mtext.size()}};
    if (!ref_name.empty()) d["annotations"] = {{"org.opencontainers.image.ref.name", ref_name}};
    return d;
}

inline void write_index(const std::string& layout, const std::vector<json>& descriptors) {
    json manifests = json::array();
    for (const auto& d : descriptors) manifests.push_back(d);
    fs::create_directories(layout);
    write_text(layout + "/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
    write_text(layout + "/index.json", json{{"schemaVersion", 2}, {"manifests", manifests}}.dump());
}

// A scratch directory removed at the end of the test.
class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/socker-unit-XXXXXX";
        path_ = ::mkdtemp(tmpl);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        out.push_back(it->path().filename());
    std::sort(out.begin(), out.end());
    return out;
}

// Layer directories of a store (names of 64 hex digits).
inline std::vector<std::string> layer_dirs(const std::string& store) {
    std::vector<std::string> out;
    for (const auto& n : entries(store + "/layers"))
        if (n.size() == 64) out.push_back(n);
    return out;
}

// Imports bytes as if from a file (seekable) or a pipe.
inline ImportResult import_bytes(const std::string& store, const std::string& bytes, const std::string& name,
                                 bool as_pipe = false, const ImportOptions& opt = {}) {
    ImportSource src;
    src.label = "test-input";
    if (as_pipe) {
        int p[2];
        if (::pipe(p) != 0) throw std::runtime_error("pipe");
        pid_t pid = ::fork();
        if (pid == 0) {
            ::close(p[0]);
            size_t off = 0;
            while (off < bytes.size()) {
                ssize_t n = ::write(p[1], bytes.data() + off, bytes.size() - off);
                if (n <= 0) ::_exit(1);
                off += static_cast<size_t>(n);
            }
            ::_exit(0);
        }
        ::close(p[1]);
        src.fd = p[0];
        try {
            auto r = import_image(store, src, parse_image_name(name), opt);
            ::close(p[0]);
            int st;
            ::waitpid(pid, &st, 0);
            return r;
        } catch (...) {
            ::close(p[0]);
            int st;
            ::waitpid(pid, &st, 0);
            throw;
        }
    }
    char tmpl[] = "/tmp/socker-unit-src-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ::unlink(tmpl);
    size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
        if (n <= 0) throw std::runtime_error("write");
        off += static_cast<size_t>(n);
    }
    ::lseek(fd, 0, SEEK_SET);
    src.fd = fd;
    src.seekable = true;
    src.size = bytes.size();
    try {
        auto r = import_image(store, src, parse_image_name(name), opt);
        ::close(fd);
        return r;
    } catch (...) {
        ::close(fd);
        throw;
    }
}

inline ImportResult import_layout(const std::string& store, const std::string& layout, const std::string& tag,
                                  const std::string& name) {
    ImportSource src;
    src.label = "layout:" + layout;
    src.layout_tag = tag;
    src.open_layout = [layout](const std::string& rel) {
        return ::open((layout + "/" + rel).c_str(), O_RDONLY | O_CLOEXEC);
    };
    return import_image(store, src, parse_image_name(name));
}

}  // namespace socker::image::testing
