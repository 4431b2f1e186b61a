#include "image_store.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "error.hpp"
#include "spellcheck.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace socker::image {

// ---------------------------------------------------------------- names
ImageName parse_image_name(const std::string& s) {
    if (s.empty()) throw_usage("empty image name");
    if (s.size() > 255) throw_usage("image name too long (" + std::to_string(s.size()) + " bytes, max 255)");
    for (unsigned char c : s)
        if (c < 0x21 || c > 0x7e) throw_usage("image name contains a control, space or non-ASCII byte");
    static const std::regex re(
        R"(^([a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$)");
    std::smatch m;
    if (!std::regex_match(s, m, re))
        throw_usage("invalid image name '" + s + "' (expected NAME[:TAG], NAME of lowercase [a-z0-9._-/])");
    return {m[1], m[2].matched ? std::string(m[2]) : "latest"};
}

// ---------------------------------------------------------------- records
std::string record_to_json(const ImageRecord& r) {
    json j = {{"id", r.id},
              {"names", r.names},
              {"layers", r.layers},
              {"created", r.created},
              {"format", r.format},
              {"size", r.size},
              {"config",
               {{"Env", r.config.env},
                {"Entrypoint", r.config.entrypoint},
                {"Cmd", r.config.cmd},
                {"WorkingDir", r.config.working_dir},
                {"User", r.config.user}}}};
    return j.dump(2) + "\n";
}

ImageRecord record_from_json(const std::string& text, const std::string& origin) {
    try {
        json j = json::parse(text);
        ImageRecord r;
        r.id = j.at("id").get<std::string>();
        r.names = j.at("names").get<std::vector<std::string>>();
        r.layers = j.at("layers").get<std::vector<std::string>>();
        r.created = j.value("created", "");
        r.format = j.value("format", "");
        r.size = j.value("size", 0ULL);
        const auto& c = j.at("config");
        r.config.env = c.value("Env", std::vector<std::string>{});
        r.config.entrypoint = c.value("Entrypoint", std::vector<std::string>{});
        r.config.cmd = c.value("Cmd", std::vector<std::string>{});
        r.config.working_dir = c.value("WorkingDir", "");
        r.config.user = c.value("User", "");
        static const std::regex hex(R"(^[0-9a-f]{64}$)");
        if (!std::regex_match(r.id, hex)) throw std::runtime_error("bad id");
        for (const auto& l : r.layers)
            if (!std::regex_match(l, hex)) throw std::runtime_error("bad layer id");
        return r;
    } catch (const std::exception& e) {
        throw Error(Exit::BadImage, "read image record", origin, 0, e.what());
    }
}

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_errno("open", path, errno, Exit::BadImage);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string escape_ref(const std::string& ref) {
    std::string out;
    for (char c : ref) out += (c == '/') ? std::string("%2F") : std::string(1, c);
    return out;
}

}  // namespace

bool Store::layer_present(const std::string& diff_id) const {
    struct stat st {};
    return ::stat(layer_dir(diff_id).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<ImageRecord> Store::list() const {
    std::vector<ImageRecord> out;
    std::error_code ec;
    fs::directory_iterator it(root_ + "/images", ec), end;
    if (ec) return out;
    std::vector<std::string> files;
    for (; it != end; it.increment(ec))
        if (it->path().extension() == ".json") files.push_back(it->path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) out.push_back(record_from_json(read_file(f), f));
    return out;
}

ImageRecord Store::find(const ImageName& name) const {
    const std::string ref = root_ + "/refs/" + escape_ref(name.str());
    std::ifstream in(ref);
    std::string id;
    if (!in || !std::getline(in, id)) {
        std::vector<std::string> known;
        for (const auto& r : list())
            for (const auto& n : r.names) known.push_back(n);
        std::string msg = "no such image in " + root_;
        std::string plain = name.tag == "latest" ? name.repo : name.str();
        std::vector<std::string> cands;
        for (const auto& k : known) cands.push_back(name.tag == "latest" && k.size() > 7 &&
                                                    k.compare(k.size() - 7, 7, ":latest") == 0
                                                ? k.substr(0, k.size() - 7) : k);
        if (auto s = spellcheck(plain, cands)) msg += "; did you mean '" + *s + "'?";
        throw Error(Exit::BadImage, "image", name.str(), 0, msg);
    }
    static const std::regex hex(R"(^[0-9a-f]{64}$)");
    if (!std::regex_match(id, hex)) throw Error(Exit::BadImage, "image ref", ref, 0, "corrupt");
    auto rec = record_from_json(read_file(root_ + "/images/" + id + ".json"), id);
    for (const auto& l : rec.layers)
        if (!layer_present(l)) throw Error(Exit::BadImage, "image", name.str(), 0, "layer " + l + " missing");
    return rec;
}

// ---------------------------------------------------------------- import
namespace {

struct Sha256 {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    Sha256() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
    ~Sha256() { EVP_MD_CTX_free(ctx); }
    void update(const void* p, size_t n) { EVP_DigestUpdate(ctx, p, n); }
    std::string hex() {
        unsigned char md[32];
        unsigned int n = 0;
        EVP_DigestFinal_ex(ctx, md, &n);
        static const char* d = "0123456789abcdef";
        std::string s;
        for (unsigned i = 0; i < n; ++i) { s += d[md[i] >> 4]; s += d[md[i] & 15]; }
        return s;
    }
};

std::string sha256_of(const std::string& data) {
    Sha256 h;
    h.update(data.data(), data.size());
    return h.hex();
}

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

// Decompressed byte stream of `outer` (raw format), hashed as it is read: the layer's diff id.
struct HashingStream {
    archive* outer = nullptr;
    Sha256 sha;
    unsigned long long bytes = 0;
    char buf[1 << 16];
    bool progress = false;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now(), last = start;
};

la_ssize_t hashing_read(archive* a, void* client, const void** out) {
    auto* s = static_cast<HashingStream*>(client);
    la_ssize_t n = archive_read_data(s->outer, s->buf, sizeof s->buf);
    if (n < 0) {
        archive_set_error(a, archive_errno(s->outer), "%s", archive_error_string(s->outer));
        return -1;
    }
    s->sha.update(s->buf, static_cast<size_t>(n));
    s->bytes += static_cast<unsigned long long>(n);
    if (s->progress) {
        auto now = std::chrono::steady_clock::now();
        if (now - s->last > std::chrono::milliseconds(200) || n == 0) {
            double secs = std::chrono::duration<double>(now - s->start).count();
            double mib = static_cast<double>(s->bytes) / 1048576.0;
            std::fprintf(stderr, "\r  unpacking  %8.1f MiB  %7.1f MiB/s", mib, secs > 0 ? mib / secs : 0.0);
            s->last = now;
        }
    }
    *out = s->buf;
    return n;
}

// Entry path, normalised; empty for the root entry. Refuses absolute paths and "..".
std::string safe_relative(const char* raw, const std::string& what) {
    if (!raw) throw Error(Exit::BadImage, "layer entry", "", 0, what + " without a name");
    std::string p(raw);
    if (!p.empty() && p[0] == '/') throw Error(Exit::BadImage, "layer entry", p, 0, what + " is an absolute path");
    std::vector<std::string> parts;
    std::istringstream in(p);
    std::string c;
    while (std::getline(in, c, '/')) {
        if (c.empty() || c == ".") continue;
        if (c == "..") throw Error(Exit::BadImage, "layer entry", p, 0, what + " contains '..'");
        parts.push_back(c);
    }
    std::string out;
    for (const auto& x : parts) out += (out.empty() ? "" : "/") + x;
    return out;
}

struct LayerStats {
    std::string diff_id;
    unsigned long long bytes_read = 0, content = 0;
    unsigned dropped = 0;
};

// Unpacks one layer stream into dest (an empty directory). Whiteouts become overlayfs whiteouts
// (0/0 character devices) and opaque markers trusted.overlay.opaque=y, so that overlayfs applies
// Docker's semantics when layers are stacked.
LayerStats unpack_layer(int fd, const std::string& dest, bool progress) {
    ArchivePtr outer(archive_read_new(), archive_read_free);
    archive_read_support_filter_all(outer.get());
    archive_read_support_format_raw(outer.get());
    if (archive_read_open_fd(outer.get(), fd, 1 << 16) != ARCHIVE_OK)
        throw Error(Exit::BadImage, "read layer", dest, 0, archive_error_string(outer.get()));
    archive_entry* e = nullptr;
    if (archive_read_next_header(outer.get(), &e) != ARCHIVE_OK)
        throw Error(Exit::BadImage, "read layer", dest, 0, archive_error_string(outer.get()));

    HashingStream hs;
    hs.outer = outer.get();
    hs.progress = progress;
    ArchivePtr in(archive_read_new(), archive_read_free);
    archive_read_support_format_tar(in.get());
    archive_read_support_format_gnutar(in.get());
    if (archive_read_open(in.get(), &hs, nullptr, hashing_read, nullptr) != ARCHIVE_OK)
        throw Error(Exit::BadImage, "read layer", dest, 0, archive_error_string(in.get()));

    ArchivePtr out(archive_write_disk_new(), archive_write_free);
    int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
    if (geteuid() == 0) flags |= ARCHIVE_EXTRACT_OWNER;
    archive_write_disk_set_options(out.get(), flags);

    int destfd = ::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    int cwd = ::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (destfd < 0 || cwd < 0 || ::fchdir(destfd) != 0) throw_errno("open", dest, errno);
    struct Restore {
        int cwd, destfd;
        ~Restore() { if (::fchdir(cwd) != 0) {} ::close(cwd); ::close(destfd); }
    } restore{cwd, destfd};

    LayerStats st;
    int r;
    while ((r = archive_read_next_header(in.get(), &e)) == ARCHIVE_OK) {
        std::string path = safe_relative(archive_entry_pathname(e), "entry");
        if (path.empty()) continue;  // "./": the layer root itself
        if (const char* hl = archive_entry_hardlink(e)) {
            std::string target = safe_relative(hl, "hard link target of " + path);
            archive_entry_set_hardlink(e, target.c_str());
        }
        archive_entry_set_pathname(e, path.c_str());
        std::string base = path.substr(path.rfind('/') + 1);
        std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
        if (base == ".wh..wh..opq") {  // opaque directory
            std::string d = dir;
            ::mkdir(d.c_str(), 0755);
            if (::lsetxattr(d.c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0)
                throw_errno("mark opaque", d, errno);
            continue;
        }
        if (base.rfind(".wh.", 0) == 0) {  // whiteout of a lower file
            std::string victim = (dir == "." ? "" : dir + "/") + base.substr(4);
            if (victim.empty() || base.size() == 4) { ++st.dropped; continue; }
            if (::mknod(victim.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0 && errno != EEXIST)
                throw_errno("whiteout", victim, errno);
            continue;
        }
        mode_t type = archive_entry_filetype(e);
        if (!archive_entry_hardlink(e) && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
            ++st.dropped;  // device nodes, FIFOs, sockets: never part of an image
            continue;
        }
        archive_entry_set_perm(e, archive_entry_perm(e) & ~(S_ISUID | S_ISGID));
        archive_entry_xattr_clear(e);  // no file capabilities, no foreign xattrs
        if (archive_write_header(out.get(), e) != ARCHIVE_OK)
            throw Error(Exit::BadImage, "unpack", path, 0, archive_error_string(out.get()));
        if (type == AE_IFREG && archive_entry_size(e) > 0) {
            const void* buf;
            size_t size;
            la_int64_t off;
            int rr;
            while ((rr = archive_read_data_block(in.get(), &buf, &size, &off)) == ARCHIVE_OK) {
                if (archive_write_data_block(out.get(), buf, size, off) != ARCHIVE_OK)
                    throw Error(Exit::Io, "write", path, 0, archive_error_string(out.get()));
                st.content += size;
            }
            if (rr != ARCHIVE_EOF)
                throw Error(Exit::BadImage, "read", path, 0, archive_error_string(in.get()));
        }
        if (archive_write_finish_entry(out.get()) != ARCHIVE_OK)
            throw Error(Exit::Io, "finish", path, 0, archive_error_string(out.get()));
    }
    if (r != ARCHIVE_EOF)
        throw Error(Exit::BadImage, "read layer", "", 0, archive_error_string(in.get()));
    if (archive_write_close(out.get()) != ARCHIVE_OK)
        throw Error(Exit::Io, "unpack", dest, 0, archive_error_string(out.get()));
    // The hash covers the whole decompressed stream, trailing padding included.
    const void* dummy;
    while (hashing_read(in.get(), &hs, &dummy) > 0) {}
    if (progress) std::fputc('\n', stderr);
    st.diff_id = hs.sha.hex();
    st.bytes_read = hs.bytes;
    return st;
}

class StoreLock {
public:
    explicit StoreLock(const std::string& root) {
        fd_ = ::open((root + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd_ < 0) throw_errno("open lock", root + "/.lock", errno);
        if (::flock(fd_, LOCK_EX) != 0) throw_errno("lock", root + "/.lock", errno);
    }
    ~StoreLock() { ::close(fd_); }
private:
    int fd_ = -1;
};

void ensure_dir(const std::string& p, mode_t mode) {
    if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) throw_errno("mkdir", p, errno);
}

void write_atomically(const std::string& path, const std::string& content) {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    {
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) throw_errno("create", tmp, errno);
        size_t off = 0;
        while (off < content.size()) {
            ssize_t n = ::write(fd, content.data() + off, content.size() - off);
            if (n < 0) { int e = errno; ::close(fd); ::unlink(tmp.c_str()); throw_errno("write", tmp, e); }
            off += static_cast<size_t>(n);
        }
        if (::fsync(fd) != 0 || ::close(fd) != 0) { int e = errno; ::unlink(tmp.c_str()); throw_errno("write", tmp, e); }
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) { int e = errno; ::unlink(tmp.c_str()); throw_errno("rename", path, e); }
}

std::string now_rfc3339() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

void prepare_store(const std::string& root) {
    ensure_dir(root, 0755);
    for (const char* d : {"/layers", "/images", "/refs", "/tmp"}) ensure_dir(root + d, 0755);
    ::chmod((root + "/tmp").c_str(), 0700);
}

// Anything under tmp/ is an interrupted import: imports hold the store lock for their whole
// run, so when we hold it nothing else is building there.
void clear_stale(const std::string& root) {
    std::error_code ec;
    for (auto& e : fs::directory_iterator(root + "/tmp", ec)) fs::remove_all(e.path(), ec);
}

}  // namespace

ImportResult import_image(const std::string& store_root, int fd, const std::string& source_label,
                          const ImageName& name, bool progress) {
    auto t0 = std::chrono::steady_clock::now();
    prepare_store(store_root);
    StoreLock lock(store_root);
    clear_stale(store_root);

    char tmpl[4096];
    std::snprintf(tmpl, sizeof tmpl, "%s/tmp/import-XXXXXX", store_root.c_str());
    if (!::mkdtemp(tmpl)) throw_errno("mkdtemp", store_root + "/tmp", errno);
    const std::string work = tmpl;
    struct Cleanup {
        std::string dir;
        ~Cleanup() { std::error_code ec; fs::remove_all(dir, ec); }
    } cleanup{work};

    const std::string layer_tmp = work + "/layer";
    ensure_dir(layer_tmp, 0755);
    LayerStats st;
    try {
        st = unpack_layer(fd, layer_tmp, progress);
    } catch (Error& e) {
        throw std::move(e).with_context("import " + source_label);
    }
    ::chmod(layer_tmp.c_str(), 0755);

    ImportResult res;
    res.bytes_read = st.bytes_read;
    ImageRecord& rec = res.record;
    rec.layers = {st.diff_id};
    rec.format = "rootfs";
    rec.created = now_rfc3339();
    rec.size = st.content;
    // A rootfs tarball has no image config: make the minimal Docker-style one, whose digest is
    // the image id (so the same tarball imported twice gives the same id).
    json config = {{"architecture", "amd64"},
                   {"os", "linux"},
                   {"config", json::object()},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", {"sha256:" + st.diff_id}}}}};
    rec.id = sha256_of(config.dump());

    const std::string layer_final = store_root + "/layers/" + st.diff_id;
    struct stat sb {};
    if (::lstat(layer_final.c_str(), &sb) == 0) {
        res.layers_reused = true;  // same content already stored: keep the old copy
    } else if (::rename(layer_tmp.c_str(), layer_final.c_str()) != 0) {
        throw_errno("rename", layer_final, errno);
    }
    // Names: keep names of an existing record with this id; the new name moves here.
    const std::string rec_path = store_root + "/images/" + rec.id + ".json";
    if (::lstat(rec_path.c_str(), &sb) == 0) {
        auto old = record_from_json(read_file(rec_path), rec_path);
        rec.names = old.names;
        rec.created = old.created;
    }
    // If the name pointed at another image, that image loses the name.
    const std::string ref_path = store_root + "/refs/" + escape_ref(name.str());
    std::ifstream oldref(ref_path);
    std::string old_id;
    if (oldref && std::getline(oldref, old_id) && old_id != rec.id) {
        std::string op = store_root + "/images/" + old_id + ".json";
        if (::lstat(op.c_str(), &sb) == 0) {
            auto other = record_from_json(read_file(op), op);
            other.names.erase(std::remove(other.names.begin(), other.names.end(), name.str()),
                              other.names.end());
            write_atomically(op, record_to_json(other));
        }
    }
    if (std::find(rec.names.begin(), rec.names.end(), name.str()) == rec.names.end())
        rec.names.push_back(name.str());
    write_atomically(rec_path, record_to_json(rec));
    write_atomically(ref_path, rec.id + "\n");
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    (void)st.dropped;
    return res;
}

void remove_image(const std::string& store_root, const ImageName& name) {
    prepare_store(store_root);
    StoreLock lock(store_root);
    Store store(store_root);
    ImageRecord rec = store.find(name);
    const std::string ref_path = store_root + "/refs/" + escape_ref(name.str());
    if (::unlink(ref_path.c_str()) != 0) throw_errno("unlink", ref_path, errno);
    rec.names.erase(std::remove(rec.names.begin(), rec.names.end(), name.str()), rec.names.end());
    const std::string rec_path = store_root + "/images/" + rec.id + ".json";
    if (!rec.names.empty()) {
        write_atomically(rec_path, record_to_json(rec));
        return;
    }
    ::unlink(rec_path.c_str());
    // Layers no remaining image uses are removed (garbage collection).
    std::set<std::string> used;
    for (const auto& r : store.list())
        for (const auto& l : r.layers) used.insert(l);
    std::error_code ec;
    for (const auto& l : rec.layers)
        if (!used.count(l)) fs::remove_all(store_root + "/layers/" + l, ec);
}

}  // namespace socker::image
