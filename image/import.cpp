#include "image/import.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "base/file.hpp"
#include "base/text.hpp"
#include "image/digest.hpp"
#include "image/formats.hpp"
#include "image/gc_detail.hpp"
#include "image/layer.hpp"
#include "image/layout.hpp"
#include "image/store.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace socker::image {

using namespace layout;
using gc::collect_layer;
using gc::collect_orphans;
using gc::NodeGuard;
using gc::sweep_tmp;

// ---------------------------------------------------------------- import
namespace {

struct LayerOutcome {
    std::string blob;  // sha256 of the stored bytes
    std::string diff;  // sha256 of the tar (the diff id)
    bool reused = false;
};

struct Collected {                               // what a single pass over an image archive found
    std::map<std::string, std::string> small;    // path -> JSON (or other small) content
    std::map<std::string, LayerOutcome> layers;  // path -> unpacked (or already stored) layer
    std::map<std::string, std::string> links;    // path -> target path (symlinks, hard links)
};

std::string parent_of(const std::string& p) {
    auto s = p.rfind('/');
    return s == std::string::npos ? "" : p.substr(0, s);
}

// "a/b" + "../c" -> "c"; nullopt when it leaves the archive.
std::optional<std::string> join_lexically(const std::string& dir, const std::string& target) {
    if (!target.empty() && target[0] == '/') return std::nullopt;
    std::vector<std::string> parts;
    std::istringstream in(dir + "/" + target);
    std::string c;
    while (std::getline(in, c, '/')) {
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (parts.empty()) return std::nullopt;
            parts.pop_back();
        } else {
            parts.push_back(c);
        }
    }
    std::string out;
    for (const auto& x : parts) out += (out.empty() ? "" : "/") + x;
    return out;
}

std::string resolve_links(const Collected& c, std::string path) {
    for (int i = 0; i < 16; ++i) {
        auto it = c.links.find(path);
        if (it == c.links.end()) return path;
        path = it->second;
    }
    return path;
}

bool hex64_at(const std::string& s, size_t pos) {
    return s.size() >= pos + 64 && formats::is_sha256_hex(std::string_view(s).substr(pos, 64));
}

bool ends_with(const std::string& s, const char* suffix) {
    const size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// The first entry of the stream decides: image archives hold only names like these, rootfs
// tarballs start with "./" or a directory.
bool image_archive_path(const std::string& p, bool is_dir) {
    static const std::set<std::string> fixed = {"manifest.json", "repositories", "index.json",
                                                "oci-layout",    "blobs",        "blobs/sha256"};
    if (fixed.count(p)) return true;
    if (p.rfind("blobs/sha256/", 0) == 0) return p.size() == 13 + 64 && hex64_at(p, 13);
    const auto slash = p.find('/');
    if (slash == std::string::npos) {
        if (is_dir) return p.size() == 64 && hex64_at(p, 0);
        for (const char* ext : {".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".json"})
            if (ends_with(p, ext)) return true;
        return false;
    }
    const std::string rest = p.substr(slash);
    return p.find('/', slash + 1) == std::string::npos &&
           (rest == "/VERSION" || rest == "/json" || rest == "/layer.tar");
}

// After the fact: a "rootfs" that is an image archive: a valid manifest.json whose config file
// is there, or an OCI index next to an oci-layout file.
bool looks_like_image_archive(const std::string& dir) {
    auto small_file = [&](const char* n) -> std::optional<std::string> {
        struct stat st {};
        const std::string path = dir + "/" + n;
        if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
            static_cast<size_t>(st.st_size) > formats::kMaxJsonBytes)
            return std::nullopt;
        return read_store_file(path);
    };
    try {
        if (auto m = small_file("manifest.json")) {
            auto entries = formats::parse_docker_manifest(*m);
            return exists_nofollow(dir + "/" + entries.at(0).config);
        }
        if (auto i = small_file("index.json"); i && small_file("oci-layout")) {
            formats::parse_oci_index(*i, "index.json");
            return true;
        }
    } catch (const std::exception&) {
    }
    return false;
}

bool metadata_name(const std::string& p) {
    const std::string base = p.substr(p.rfind('/') + 1);
    return base == "manifest.json" || base == "repositories" || base == "index.json" ||
           base == "oci-layout" || base == "json" || base == "VERSION" ||
           (base.size() > 5 && base.compare(base.size() - 5, 5, ".json") == 0);
}

// A layer's name that claims its digest: "<hex>.tar" (podman) or "blobs/sha256/<hex>".
std::string digest_hint(const std::string& p) {
    if (p.size() == 68 && hex64_at(p, 0) && p.compare(64, 4, ".tar") == 0) return p.substr(0, 64);
    if (p.size() == 13 + 64 && p.rfind("blobs/sha256/", 0) == 0 && hex64_at(p, 13)) return p.substr(13);
    return {};
}

std::string short_id(const std::string& hex) { return hex.substr(0, 12); }

class Importer {
public:
    Importer(std::string root, const ImportOptions& opt) : p_{std::move(root), opt.node_lock}, opt_(opt) {
        prepare_store(p_);
        if (sweep_tmp(p_) > 0) collect_orphans(p_, false);  // what a killed import left
        std::tie(work_, work_fd_) = make_work_dir(p_, "import-");
        ensure_dir(work_ + "/uses", 0700);
    }

    ~Importer() {
        // Failed or finished: drop the marks, then the layers this import created that nothing
        // else uses (a failed import leaves nothing behind).
        std::error_code ec;
        fs::remove_all(work_ + "/uses", ec);
        if (!committed_) {
            for (const auto& d : published_) {
                try {
                    collect_layer(p_, d);
                } catch (const std::exception&) {
                }
            }
        }
        fs::remove_all(work_, ec);
        if (work_fd_ >= 0) ::close(work_fd_);
    }
    Importer(const Importer&) = delete;
    Importer& operator=(const Importer&) = delete;

    const Paths& paths() const { return p_; }
    std::string new_layer_dir() {
        std::string d = work_ + "/layer-" + std::to_string(++counter_);
        ensure_dir(d, 0755);
        return d;
    }

    // The stored diff id for a digest key (a diff id, or a blob digest seen before).
    std::optional<std::string> stored(const std::string& key) const {
        if (key.empty()) return std::nullopt;
        if (exists_nofollow(p_.layer(key))) return key;
        if (auto d = read_hex_file(p_.alias(key)); d && exists_nofollow(p_.layer(*d))) return d;
        return std::nullopt;
    }

    // One layer from `src`. `key`: the digest the layer is expected to have, when known before
    // reading it (a diff id or blob digest); `trusted`: the key comes from a verified config, so
    // a mismatch is corruption. `expect_blob`: the blob digest the source must have ("" = any).
    LayerOutcome ingest(ByteSource& src, const std::string& label, const std::string& key, bool trusted,
                        const std::string& expect_blob) {
        std::optional<FileLock> lk;
        if (!key.empty()) {
            lk.emplace(p_.bucket_lock(key));
            if (auto d = stored(key)) return reuse(src, label, key, *d, trusted, expect_blob);
        }
        const std::string dir = new_layer_dir();
        LayerResult r = unpack_layer(src, dir, label, unpack_options());
        dropped_ += r.stats.dropped;
        suid_ += r.stats.suid_cleared;
        if (!expect_blob.empty() && r.digests.raw != expect_blob)
            throw Error(Exit::BadImage, "verify", label, 0,
                        "content is sha256:" + r.digests.raw + ", expected sha256:" + expect_blob +
                            " (corrupted or tampered blob)");
        if (trusted && r.digests.plain != key)
            throw Error(Exit::BadImage, "verify", label, 0,
                        "uncompressed content is sha256:" + r.digests.plain +
                            ", the image config says sha256:" + key + " (corrupted or tampered layer)");
        // Publishing needs the bucket of the diff id. Keep the key's bucket while taking it if
        // possible (others waiting on the key then find the layer or its alias); never block on a
        // second lock while holding one.
        const std::string want = p_.bucket_lock(r.digests.plain);
        if (lk && want != p_.bucket_lock(key)) {
            std::optional<FileLock> second;
            try {
                second.emplace(want, LOCK_EX | LOCK_NB);
            } catch (const Error& e) {
                if (e.err() != EWOULDBLOCK) throw;
            }
            if (second) {
                LayerOutcome o = publish(dir, r);
                return o;
            }
            lk.reset();
        }
        if (!lk) lk.emplace(want);
        return publish(dir, r);
    }

    UnpackOptions unpack_options() { return UnpackOptions{opt_.xattr_ns, true, &budget_}; }
    double max_ratio() const { return opt_.limits.max_ratio; }

    // A layer unpacked by the caller into new_layer_dir(): store it under its diff id.
    LayerOutcome adopt(const std::string& dir, const LayerResult& r) {
        dropped_ += r.stats.dropped;
        suid_ += r.stats.suid_cleared;
        FileLock lk(p_.bucket_lock(r.digests.plain));
        return publish(dir, r);
    }

    void mark_used(const std::string& d) {
        int fd = ::open((work_ + "/uses/" + d).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) throw_errno("create", work_ + "/uses/" + d, errno);
        ::close(fd);
    }

    void commit_done() { committed_ = true; }
    unsigned unpacked() const { return static_cast<unsigned>(published_.size()); }
    unsigned reused() const { return reused_; }
    unsigned long dropped() const { return dropped_; }
    unsigned long suid_cleared() const { return suid_; }

private:
    // Caller holds the bucket lock of the digests involved.
    LayerOutcome reuse(ByteSource& src, const std::string& label, const std::string& key,
                       const std::string& diff, bool trusted, const std::string& expect_blob) {
        mark_used(diff);
        LayerOutcome o;
        if (trusted) {
            // The diff id comes from a verified config: only the blob itself is left to check.
            StreamDigests h = hash_source(src);
            o.blob = h.raw;
            o.diff = diff;
        } else {
            StreamDigests h = digest_layer(src, label);
            o.blob = h.raw;
            o.diff = h.plain;
            if (h.raw != key && h.plain != key)
                throw Error(Exit::BadImage, "verify", label, 0,
                            "content is sha256:" + h.plain + ", its name says sha256:" + key);
            if (h.plain != diff)
                throw Error(Exit::BadImage, "verify", label, 0,
                            "content is sha256:" + h.plain + ", the stored layer is sha256:" + diff);
        }
        if (!expect_blob.empty() && o.blob != expect_blob)
            throw Error(Exit::BadImage, "verify", label, 0,
                        "content is sha256:" + o.blob + ", expected sha256:" + expect_blob +
                            " (corrupted or tampered blob)");
        o.reused = true;
        ++reused_;
        return o;
    }

    // Caller holds the bucket lock of r.digests.plain.
    LayerOutcome publish(const std::string& dir, const LayerResult& r) {
        const std::string& d = r.digests.plain;
        LayerOutcome o{r.digests.raw, d, false};
        mark_used(d);
        std::error_code ec;
        if (exists_nofollow(p_.layer(d))) {  // someone else stored it meanwhile
            fs::remove_all(dir, ec);
            o.reused = true;
            ++reused_;
        } else {
            json info = {{"diff_id", "sha256:" + d},
                         {"content_bytes", r.stats.content_bytes},
                         {"tar_bytes", r.digests.plain_bytes},
                         {"imported", now_rfc3339()}};
            write_atomically(p_.layer_info(d), info.dump() + "\n");
            if (::rename(dir.c_str(), p_.layer(d).c_str()) != 0) throw_errno("rename", p_.layer(d), errno);
            published_.push_back(d);
        }
        if (r.digests.compressed && !exists_nofollow(p_.alias(r.digests.raw)))
            write_atomically(p_.alias(r.digests.raw), d + "\n");
        return o;
    }

    Paths p_;
    const ImportOptions& opt_;
    ImportBudget budget_{opt_.limits};
    std::string work_;
    int work_fd_ = -1;
    int counter_ = 0;
    bool committed_ = false;
    std::vector<std::string> published_;
    unsigned reused_ = 0;
    unsigned long dropped_ = 0, suid_ = 0;
};

struct Resolved {  // an image found in a source, verified
    std::string config_text;
    std::string id;
    formats::ParsedConfig config;
    std::vector<std::string> layers;  // diff ids, lowest first
    std::string format, manifest_digest;
};

// OCI: index -> (nested indexes) -> manifest -> config + layers. `read_blob` returns a verified
// JSON blob; `layer` ingests a layer blob given its descriptor and the diff id from the config.
Resolved resolve_oci(
    const std::string& index_text, const std::string& tag, const std::string& where,
    const std::function<std::string(const formats::Descriptor&, const std::string&)>& read_blob,
    const std::function<LayerOutcome(const formats::Descriptor&, const std::string&, size_t)>& layer) {
    using namespace formats;
    const std::string idx_origin = where + "/index.json";
    OciIndex idx = parse_oci_index(index_text, idx_origin);
    Descriptor d = select_by_ref(idx, tag, idx_origin);
    std::string text;
    for (int depth = 0;; ++depth) {
        if (depth > 4) throw Error(Exit::BadImage, "image", where, 0, "indexes nested too deeply");
        const std::string origin = where + " manifest " + short_id(d.digest);
        text = read_blob(d, origin);
        DocKind k = media_kind(d.media_type);
        if (k == DocKind::Unknown) k = sniff_kind(text, origin);
        if (k == DocKind::Index) {
            d = select_platform(parse_oci_index(text, origin), host_architecture(), origin);
            continue;
        }
        if (k != DocKind::Manifest)
            throw Error(Exit::BadImage, "image", origin, 0,
                        "unsupported media type '" + d.media_type.substr(0, 80) + "'");
        break;
    }
    Resolved r;
    r.manifest_digest = d.digest;
    OciManifest m = parse_oci_manifest(text, where + " manifest " + short_id(d.digest));
    r.config_text = read_blob(m.config, where + " config " + short_id(m.config.digest));
    r.id = m.config.digest;
    r.config = parse_image_config(r.config_text, where + " config " + short_id(r.id));
    if (m.layers.size() != r.config.diff_ids.size())
        throw Error(Exit::BadImage, "image", where, 0,
                    "manifest lists " + std::to_string(m.layers.size()) + " layers, the config " +
                        std::to_string(r.config.diff_ids.size()));
    for (size_t i = 0; i < m.layers.size(); ++i) {
        LayerOutcome o = layer(m.layers[i], r.config.diff_ids[i], i);
        if (o.blob != m.layers[i].digest || o.diff != r.config.diff_ids[i])
            throw Error(Exit::BadImage, "verify", where + " layer " + short_id(m.layers[i].digest), 0,
                        "content does not match its digest (corrupted or tampered blob)");
        r.layers.push_back(o.diff);
    }
    r.format = "oci";
    return r;
}

std::string verified_json(const std::string& content, const formats::Descriptor& d,
                          const std::string& origin) {
    if (sha256_hex(content) != d.digest)
        throw Error(Exit::BadImage, "verify", origin, 0,
                    "content is sha256:" + sha256_hex(content) + ", expected sha256:" + d.digest +
                        " (corrupted or tampered blob)");
    if (d.size >= 0 && static_cast<unsigned long long>(d.size) != content.size())
        throw Error(Exit::BadImage, "verify", origin, 0,
                    "size " + std::to_string(content.size()) + " differs from the descriptor's " +
                        std::to_string(d.size));
    return content;
}

Resolved resolve_docker(const Collected& c, const ImageName& name, const std::string& where) {
    auto entries = formats::parse_docker_manifest(c.small.at("manifest.json"));
    const auto& e = entries[formats::select_docker_entry(entries, name)];
    Resolved r;
    const std::string cfg_path = resolve_links(c, e.config);
    auto cfg = c.small.find(cfg_path);
    if (cfg == c.small.end())
        throw Error(Exit::BadImage, "image", where, 0,
                    "config " + e.config + " named by manifest.json is missing");
    r.config_text = cfg->second;
    r.id = sha256_hex(r.config_text);
    // Config files are named after their digest ("<hex>.json", "blobs/sha256/<hex>").
    std::string base = cfg_path.substr(cfg_path.rfind('/') + 1);
    if (base.size() >= 64 && hex64_at(base, 0) && base.substr(0, 64) != r.id &&
        (base.size() == 64 || base.substr(64) == ".json"))
        throw Error(Exit::BadImage, "verify", where + ": " + e.config, 0,
                    "content is sha256:" + r.id + " (corrupted or tampered config)");
    r.config = formats::parse_image_config(r.config_text, where + ": " + e.config);
    if (e.layers.size() != r.config.diff_ids.size())
        throw Error(Exit::BadImage, "image", where, 0,
                    "manifest.json lists " + std::to_string(e.layers.size()) + " layers, the config " +
                        std::to_string(r.config.diff_ids.size()));
    for (size_t i = 0; i < e.layers.size(); ++i) {
        auto it = c.layers.find(resolve_links(c, e.layers[i]));
        if (it == c.layers.end())
            throw Error(Exit::BadImage, "image", where, 0,
                        "layer " + e.layers[i] + " named by manifest.json is missing");
        if (it->second.diff != r.config.diff_ids[i])
            throw Error(Exit::BadImage, "verify", where + ": " + e.layers[i], 0,
                        "content is sha256:" + it->second.diff + ", the config says sha256:" +
                            r.config.diff_ids[i] + " (corrupted or tampered layer)");
        r.layers.push_back(it->second.diff);
    }
    r.format = "docker-archive";
    return r;
}

// A stream: rootfs tarball, docker-archive or OCI archive, in one pass.
enum class StreamMode { Detect, Rootfs, Archive };

Resolved import_stream(Importer& imp, const ImportSource& src, const ImageName& name, StreamMode mode,
                       const std::function<void(size_t)>& on_read, StreamMode* retry) {
    FdSource fsrc(src.fd, src.label, on_read);
    TarStream outer(fsrc, src.label);
    outer.limit_ratio(imp.max_ratio());
    archive_entry* first = outer.next();
    std::string first_path;
    if (first && archive_entry_pathname(first))
        first_path = formats::normalize_archive_path(archive_entry_pathname(first), src.label + " entry");
    if (mode == StreamMode::Rootfs ||
        (mode == StreamMode::Detect &&
         (!first || !image_archive_path(first_path, archive_entry_filetype(first) == AE_IFDIR)))) {
        const std::string dir = imp.new_layer_dir();
        LayerResult lr;
        lr.stats = unpack_entries(outer, first, dir, imp.unpack_options());
        lr.digests = outer.finish();
        if (mode == StreamMode::Detect && looks_like_image_archive(dir)) {
            if (src.seekable && retry) {
                *retry = StreamMode::Archive;
                return {};
            }
            throw Error(Exit::BadImage, "import", src.label, 0,
                        "looks like an image archive whose first entry '" + first_path.substr(0, 100) +
                            "' was not recognised; import it from a file");
        }
        const std::string diff = imp.adopt(dir, lr).diff;
        Resolved r;
        r.layers = {diff};
        // A rootfs tarball has no image config: make the minimal Docker-style one, whose digest
        // is the image id (the same tarball imported twice gives the same id).
        json config = {{"architecture", formats::host_architecture()},
                       {"os", "linux"},
                       {"config", json::object()},
                       {"rootfs", {{"type", "layers"}, {"diff_ids", {"sha256:" + diff}}}}};
        r.config_text = config.dump();
        r.id = sha256_hex(r.config_text);
        r.config = formats::parse_image_config(r.config_text, "rootfs config");
        r.format = "rootfs";
        return r;
    }

    Collected c;
    unsigned long long small_total = 0;
    for (archive_entry* e = first; e; e = outer.next()) {
        const char* pn = archive_entry_pathname(e);
        const std::string path = formats::normalize_archive_path(pn ? pn : "", src.label + " entry");
        const std::string label = src.label + ": " + path;
        if (const char* hl = archive_entry_hardlink(e)) {
            c.links[path] = formats::normalize_archive_path(hl, label);
            continue;
        }
        const auto type = archive_entry_filetype(e);
        if (type == AE_IFLNK) {
            const char* t = archive_entry_symlink(e);
            if (auto j = join_lexically(parent_of(path), t ? t : "")) c.links[path] = *j;
            continue;
        }
        if (type != AE_IFREG) continue;
        EntrySource es(outer, label);
        const int b = es.peek();
        if (metadata_name(path) || b == '{' || b == '[' || b < 0) {
            std::string data;
            const void* buf;
            while (size_t n = es.next(&buf)) {
                data.append(static_cast<const char*>(buf), n);
                if (data.size() > formats::kMaxJsonBytes)
                    throw Error(Exit::BadImage, "read", label, 0, "metadata file too large");
            }
            small_total += data.size();
            if (small_total > 16 * formats::kMaxJsonBytes)
                throw Error(Exit::BadImage, "read", src.label, 0, "too much metadata");
            c.small[path] = std::move(data);
        } else {
            c.layers[path] = imp.ingest(es, label, digest_hint(path), false, "");
        }
    }
    outer.finish();

    if (c.small.count("manifest.json")) return resolve_docker(c, name, src.label);
    if (c.small.count("index.json")) {
        auto read_blob = [&](const formats::Descriptor& d, const std::string& origin) {
            auto it = c.small.find("blobs/sha256/" + d.digest);
            if (it == c.small.end())
                throw Error(Exit::BadImage, "image", origin, 0, "blob missing from the archive");
            return verified_json(it->second, d, origin);
        };
        auto layer = [&](const formats::Descriptor& d, const std::string&, size_t) {
            auto it = c.layers.find("blobs/sha256/" + d.digest);
            if (it == c.layers.end())
                throw Error(Exit::BadImage, "image", src.label, 0,
                            "layer blob " + short_id(d.digest) + " missing");
            return it->second;
        };
        return resolve_oci(c.small.at("index.json"), "", src.label, read_blob, layer);
    }
    if (src.seekable && retry && mode == StreamMode::Detect) {
        *retry = StreamMode::Rootfs;
        return {};
    }
    throw Error(
        Exit::BadImage, "import", src.label, 0,
        "not a docker-archive (no manifest.json), an OCI archive (no index.json) or a rootfs tarball");
}

Resolved import_layout(Importer& imp, const ImportSource& src, const std::function<void(size_t)>& on_read) {
    auto open_rel = [&](const std::string& rel) {
        int fd = src.open_layout(rel);
        if (fd < 0) throw_errno("open", src.label + "/" + rel, errno, Exit::BadImage);
        return fd;
    };
    {
        const Fd f(open_rel("oci-layout"));
        json j;
        try {
            j = json::parse(read_fd(f.get(), src.label + "/oci-layout", 4096, Exit::BadImage));
        } catch (const json::exception&) {
            throw Error(Exit::BadImage, "image", src.label + "/oci-layout", 0, "not valid JSON");
        }
        if (!j.is_object() || !j.contains("imageLayoutVersion") || !j["imageLayoutVersion"].is_string())
            throw Error(Exit::BadImage, "image", src.label + "/oci-layout", 0, "no imageLayoutVersion");
    }
    const Fd idx(open_rel("index.json"));
    const std::string index_text =
        read_fd(idx.get(), src.label + "/index.json", formats::kMaxJsonBytes, Exit::BadImage);
    auto read_blob = [&](const formats::Descriptor& d, const std::string& origin) {
        const Fd f(open_rel("blobs/sha256/" + d.digest));
        return verified_json(read_fd(f.get(), origin, formats::kMaxJsonBytes, Exit::BadImage), d, origin);
    };
    auto layer = [&](const formats::Descriptor& d, const std::string& diff, size_t i) {
        const Fd f(open_rel("blobs/sha256/" + d.digest));
        struct stat st {};
        if (::fstat(f.get(), &st) == 0 && d.size >= 0 && st.st_size != d.size)
            throw Error(Exit::BadImage, "verify", src.label + " layer " + short_id(d.digest), 0,
                        "size " + std::to_string(st.st_size) + " differs from the manifest's " +
                            std::to_string(d.size));
        FdSource fs(f.get(), src.label + " layer " + std::to_string(i + 1), on_read);
        return imp.ingest(fs, src.label + " layer " + short_id(d.digest), diff, true, d.digest);
    };
    return resolve_oci(index_text, src.layout_tag, src.label, read_blob, layer);
}

}  // namespace

ImportResult import_image(const std::string& store_root, const ImportSource& src, const ImageName& name,
                          const ImportOptions& opt) {
    const auto t0 = std::chrono::steady_clock::now();
    Importer imp(store_root, opt);
    const Paths& p = imp.paths();

    ImportProgress prog;
    prog.total = src.size;
    auto on_read = [&](size_t n) {
        prog.bytes += n;
        if (opt.progress) opt.progress(prog);
    };

    Resolved r;
    try {
        if (src.open_layout) {
            r = import_layout(imp, src, on_read);
        } else {
            StreamMode retry = StreamMode::Detect;
            r = import_stream(imp, src, name, StreamMode::Detect, on_read, &retry);
            if (retry != StreamMode::Detect) {  // misdetected: read the file again, the other way
                if (::lseek(src.fd, 0, SEEK_SET) != 0) throw_errno("seek", src.label, errno);
                prog.bytes = 0;
                r = import_stream(imp, src, name, retry, on_read, nullptr);
            }
        }
        const std::string arch = formats::host_architecture();
        if (!r.config.architecture.empty() && r.config.architecture != arch)
            throw Error(Exit::BadImage, "image", name.str(), 0,
                        "built for " + r.config.architecture + ", this node is " + arch);
    } catch (Error& e) {
        throw std::move(e).with_context("import " + src.label);
    }

    ImportResult res;
    ImageRecord& rec = res.record;
    rec.id = r.id;
    // A layer listed twice adds nothing the upper copy does not: keep the topmost occurrence
    // (overlayfs refuses the same lower directory twice).
    for (auto it = r.layers.rbegin(); it != r.layers.rend(); ++it)
        if (std::find(rec.layers.begin(), rec.layers.end(), *it) == rec.layers.end())
            rec.layers.insert(rec.layers.begin(), *it);
    rec.config = r.config.config;
    rec.created = r.config.created.empty() ? now_rfc3339() : r.config.created;
    rec.format = r.format;
    rec.manifest_digest = r.manifest_digest;
    rec.architecture = r.config.architecture;
    const Store store(store_root);
    for (const auto& l : rec.layers) rec.size += store.layer_size(l);

    std::vector<ImageRecord> orphaned;
    {
        FileLock meta(p.meta_lock());
        for (const auto& l : rec.layers)
            if (!store.layer_present(l))
                throw Error(Exit::Internal, "import", src.label, 0, "layer " + l + " vanished");
        const std::string rec_path = p.record(rec.id);
        if (exists_nofollow(rec_path)) {
            auto old = record_from_json(read_store_file(rec_path), rec_path);
            rec.names = old.names;
            if (rec.format == "rootfs") rec.created = old.created;  // the import time of the first copy
            if (rec.manifest_digest.empty()) rec.manifest_digest = old.manifest_digest;
            rec.squashfs = old.squashfs;  // the same image (same id): its squashfs file is still it
        }
        // If the name pointed at another image, that image loses the name (and goes when it
        // has no name left).
        const std::string ref_path = p.ref(name);
        if (auto old_id = read_hex_file(ref_path);
            old_id && *old_id != rec.id && exists_nofollow(p.record(*old_id))) {
            auto other = record_from_json(read_store_file(p.record(*old_id)), p.record(*old_id));
            other.names.erase(std::remove(other.names.begin(), other.names.end(), name.str()),
                              other.names.end());
            if (other.names.empty()) {
                ::unlink(p.record(*old_id).c_str());
                orphaned.push_back(other);
            } else {
                write_atomically(p.record(*old_id), record_to_json(other));
            }
        }
        if (std::find(rec.names.begin(), rec.names.end(), name.str()) == rec.names.end())
            rec.names.push_back(name.str());
        write_atomically(rec_path, record_to_json(rec));
        write_atomically(ref_path, rec.id + "\n");
    }
    imp.commit_done();
    if (!orphaned.empty()) {
        const NodeGuard guard(p.node_lock, true);
        for (const auto& o : orphaned) {
            res.replaced.push_back(o.id);
            for (const auto& l : o.layers) collect_layer(p, l, true, &guard);
        }
    }
    res.layers_unpacked = imp.unpacked();
    res.layers_reused = imp.reused();
    res.dropped = imp.dropped();
    res.suid_cleared = imp.suid_cleared();
    res.bytes_read = prog.bytes;
    prog.done = true;
    if (opt.progress) opt.progress(prog);
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
}

EnsureResult ensure_image(const std::string& store_root, const ImportSource& src, const ImageName& name,
                          const ImportOptions& opt) {
    const Store store(store_root);
    EnsureResult out;
    if (auto rec = store.find_complete(name)) {  // the common case: no lock, no write
        out.record = std::move(*rec);
        return out;
    }
    Paths p{store_root, opt.node_lock};
    prepare_store(p);
    FileLock once(p.name_lock(name));
    if (auto rec = store.find_complete(name)) {  // another caller imported it while we waited
        out.record = std::move(*rec);
        return out;
    }
    // The import we waited for failed: fail with its message rather than each waiter reading
    // and unpacking the same bad image again. (One that was killed leaves no note: retry.)
    const std::string note = p.failed_note(name);
    if (once.waited()) {
        std::ifstream in(note);
        std::string code, msg;
        if (in && std::getline(in, code) && std::getline(in, msg)) {
            const long c = number_after(code, "").value_or(0);
            throw Error(c >= 64 && c <= 78 ? static_cast<Exit>(c) : Exit::BadImage,
                        "import of " + src.label + " by another rank failed: " + msg, {});
        }
    }
    ::unlink(note.c_str());  // a note of an older failure: this import starts afresh
    try {
        out.imported = import_image(store_root, src, name, opt);
    } catch (const Error& e) {
        try {
            write_atomically(note, std::to_string(static_cast<int>(e.code())) + "\n" + e.what() + "\n");
        } catch (const Error&) {
            // No note (disk full...): the waiters try themselves and meet the same error.
        }
        throw;
    }
    out.record = out.imported->record;
    return out;
}

}  // namespace socker::image
