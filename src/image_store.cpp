#include "image_store.hpp"

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

#include "error.hpp"
#include "image_formats.hpp"
#include "image_layer.hpp"
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
    // NAME: components [a-z0-9]+([._-][a-z0-9]+)* joined by '/'; TAG: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
    // (Checked by hand: compiling the equivalent std::regex cost a third of a launch's CPU.)
    auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    auto valid_repo = [&](std::string_view r) {
        if (r.empty()) return false;
        char prev = '/';  // a component starts as after a '/'
        for (char c : r) {
            const bool sep = c == '.' || c == '_' || c == '-';
            if (c == '/' || sep) {
                if (!lower_alnum(prev)) return false;  // at a start, or after a separator
            } else if (!lower_alnum(c)) {
                return false;
            }
            prev = c;
        }
        return lower_alnum(prev);
    };
    auto valid_tag = [](std::string_view t) {
        if (t.empty() || t.size() > 128 || t[0] == '.' || t[0] == '-') return false;
        for (char c : t)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
                return false;
        return true;
    };
    const auto colon = s.find(':');
    const std::string_view repo = std::string_view(s).substr(0, colon);
    const std::string_view tag = colon == std::string::npos ? std::string_view("latest") : std::string_view(s).substr(colon + 1);
    if (!valid_repo(repo) || !valid_tag(tag))
        throw_usage("invalid image name '" + s + "' (expected NAME[:TAG], NAME of lowercase [a-z0-9._-/])");
    return {std::string(repo), std::string(tag)};
}

ImageName name_for_file(const FileIdentity& f) {
    std::string base = f.path.substr(f.path.rfind('/') + 1);
    for (const std::string ext : {".tar.gz", ".tar.zst", ".tar.xz", ".tar.bz2", ".tgz", ".tar", ".oci"}) {
        if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0) {
            base.resize(base.size() - ext.size());
            break;
        }
    }
    // Letters and digits kept; any run of other bytes becomes one '-' between them (image
    // names allow a single separator between alphanumerics).
    std::string stem;
    bool pending_sep = false;
    for (char c : base) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (pending_sep && !stem.empty()) stem += '-';
            pending_sep = false;
            stem += c;
            if (stem.size() >= 64) break;
        } else {
            pending_sep = true;
        }
    }
    if (stem.empty()) stem = "image";
    std::string id = f.path;
    for (unsigned long long v : {f.dev, f.ino, f.size, f.mtime_ns, f.ctime_ns}) id += '\0' + std::to_string(v);
    return parse_image_name("file/" + stem + ":" + sha256_hex(id).substr(0, 24));
}

// ---------------------------------------------------------------- records
std::string record_to_json(const ImageRecord& r) {
    json j = {{"id", r.id},
              {"names", r.names},
              {"layers", r.layers},
              {"created", r.created},
              {"format", r.format},
              {"manifest_digest", r.manifest_digest},
              {"architecture", r.architecture},
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
        r.manifest_digest = j.value("manifest_digest", "");
        r.architecture = j.value("architecture", "");
        r.size = j.value("size", 0ULL);
        const auto& c = j.at("config");
        r.config.env = c.value("Env", std::vector<std::string>{});
        r.config.entrypoint = c.value("Entrypoint", std::vector<std::string>{});
        r.config.cmd = c.value("Cmd", std::vector<std::string>{});
        r.config.working_dir = c.value("WorkingDir", "");
        r.config.user = c.value("User", "");
        if (!formats::is_sha256_hex(r.id)) throw std::runtime_error("bad id");
        if (r.layers.empty()) throw std::runtime_error("no layers");
        for (const auto& l : r.layers)
            if (!formats::is_sha256_hex(l)) throw std::runtime_error("bad layer id");
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

bool exists_nofollow(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

}  // namespace

bool Store::layer_present(const std::string& diff_id) const {
    struct stat st {};
    return formats::is_sha256_hex(diff_id) && ::lstat(layer_dir(diff_id).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

unsigned long long Store::layer_size(const std::string& diff_id) const {
    try {
        json j = json::parse(read_file(layer_dir(diff_id) + ".json"));
        return j.value("content_bytes", 0ULL);
    } catch (const std::exception&) {
        return 0;
    }
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
    for (const auto& f : files) {
        try {
            out.push_back(record_from_json(read_file(f), f));
        } catch (const Error& e) {
            if (e.err() != ENOENT) throw;  // removed meanwhile
        }
    }
    return out;
}

ImageRecord Store::find(const ImageName& name) const { return *lookup(name, true); }

std::optional<ImageRecord> Store::find_complete(const ImageName& name) const { return lookup(name, false); }

std::optional<ImageRecord> Store::lookup(const ImageName& name, bool strict) const {
    // Why NAME has no complete image: thrown when strict, else "not found".
    auto missing = [&](const Error& why) -> std::optional<ImageRecord> {
        if (strict) throw why;
        return std::nullopt;
    };
    const std::string ref = root_ + "/refs/" + escape_ref(name.str());
    std::ifstream in(ref);
    std::string id;
    if (!in || !std::getline(in, id)) {
        if (!strict) return std::nullopt;  // the suggestion below reads every record: only for errors
        std::vector<std::string> known;
        for (const auto& r : list())
            for (const auto& n : r.names) known.push_back(n);
        std::string msg = "no such image in " + root_;
        std::string plain = name.tag == "latest" ? name.repo : name.str();
        std::vector<std::string> cands;
        for (const auto& k : known)
            cands.push_back(name.tag == "latest" && k.size() > 7 && k.compare(k.size() - 7, 7, ":latest") == 0
                                ? k.substr(0, k.size() - 7)
                                : k);
        if (auto s = spellcheck(plain, cands)) msg += "; did you mean '" + *s + "'?";
        throw Error(Exit::BadImage, "image", name.str(), 0, msg);
    }
    if (!formats::is_sha256_hex(id)) return missing(Error(Exit::BadImage, "image ref", ref, 0, "corrupt"));
    const std::string rec_path = root_ + "/images/" + id + ".json";
    if (!strict && !exists_nofollow(rec_path)) return std::nullopt;
    auto rec = record_from_json(read_file(rec_path), id);  // strict: a missing record is an open error
    for (const auto& l : rec.layers)
        if (!layer_present(l)) return missing(Error(Exit::BadImage, "image", name.str(), 0, "layer " + l + " missing"));
    return rec;
}

// ---------------------------------------------------------------- layers in use
std::string overlay_source(const std::vector<std::string>& layer_ids) {
    std::string s = "socker-mpi:";
    for (size_t i = 0; i < layer_ids.size(); ++i) s += (i ? "," : "") + layer_ids[i].substr(0, 16);
    return s;
}

std::vector<std::vector<std::string>> overlays_in_mountinfo(const std::string& mountinfo) {
    std::vector<std::vector<std::string>> out;
    std::istringstream in(mountinfo);
    std::string line;
    while (std::getline(in, line)) {
        // "... - overlay socker-mpi:aaaa,bbbb rw,lowerdir=...": the fields after " - ".
        const auto sep = line.find(" - ");
        if (sep == std::string::npos) continue;
        std::istringstream f(line.substr(sep + 3));
        std::string fstype, source;
        if (!(f >> fstype >> source) || fstype != "overlay" || source.rfind("socker-mpi:", 0) != 0) continue;
        std::vector<std::string> layers;
        std::istringstream l(source.substr(11));
        std::string id;
        while (std::getline(l, id, ','))
            if (id.size() == 16 && id.find_first_not_of("0123456789abcdef") == std::string::npos) layers.push_back(id);
        out.push_back(std::move(layers));
    }
    return out;
}

bool layer_used(const InUse& u, const std::string& diff_id) {
    const std::string prefix = diff_id.substr(0, 16);
    for (const auto& c : u.containers)
        if (std::find(c.begin(), c.end(), prefix) != c.end()) return true;
    return false;
}

unsigned InUse::containers_using(const std::vector<std::string>& layer_ids) const {
    unsigned n = 0;
    for (const auto& c : containers) {
        bool uses = false;
        for (const auto& l : layer_ids) uses = uses || std::find(c.begin(), c.end(), l.substr(0, 16)) != c.end();
        n += uses ? 1 : 0;
    }
    return n;
}

InUse containers_in_use(const std::string& proc) {
    InUse u;
    std::set<std::string> seen;  // mount namespaces already read
    std::error_code ec;
    for (fs::directory_iterator it(proc, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string pid = it->path().filename();
        if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
        char ns[64];
        const ssize_t n = ::readlink((proc + "/" + pid + "/ns/mnt").c_str(), ns, sizeof ns - 1);
        if (n <= 0 || !seen.insert(std::string(ns, static_cast<size_t>(n))).second) continue;
        std::ifstream f(proc + "/" + pid + "/mountinfo");
        if (!f) continue;  // gone, or not ours to read
        std::ostringstream text;
        text << f.rdbuf();
        for (auto& c : overlays_in_mountinfo(text.str())) u.containers.push_back(std::move(c));
    }
    return u;
}

std::string node_lock_path(const std::string& state_dir, const std::string& store_root) {
    // FNV-1a of the store's path: one lock file per store, stable across versions.
    unsigned long long h = 1469598103934665603ULL;
    for (unsigned char c : store_root) h = (h ^ c) * 1099511628211ULL;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", h);
    return state_dir + "/store-" + hex + ".lock";
}

// ---------------------------------------------------------------- store plumbing
namespace {

class FileLock {
public:
    // read_only: a lock file another user (root) owns, opened for reading (flock needs no more);
    // created (0644) only if missing.
    FileLock(const std::string& path, int op = LOCK_EX, bool read_only = false) : path_(path) {
        fd_ = read_only ? ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                        : ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd_ < 0 && read_only && errno == ENOENT)
            fd_ = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd_ < 0) throw_errno("open lock", path, errno);
        if (::flock(fd_, op | LOCK_NB) == 0) return;
        waited_ = true;  // somebody held it
        while (::flock(fd_, op) != 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd_);
            throw_errno("lock", path, e);
        }
    }
    ~FileLock() { release(); }
    bool waited() const { return waited_; }
    void release() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

private:
    std::string path_;
    int fd_ = -1;
    bool waited_ = false;
};

// Which layers running containers on this node stack, decided under the node lock: garbage
// collection holds it exclusively from the scan of every mount namespace until the unused
// layers are renamed away; a launch holds it shared from opening its layers until its overlay
// is mounted (launcher::LinuxSys::mount_rootfs). A layer is kept while any container uses it.
class NodeGuard {
public:
    // wait=false: a busy lock (launches mounting) means "not now": held() is false.
    NodeGuard(const std::string& lock_path, bool wait) {
        if (!lock_path.empty()) {
            try {
                lock_.emplace(lock_path, wait ? LOCK_EX : LOCK_EX | LOCK_NB, true);
            } catch (const Error& e) {
                if (wait || e.err() != EWOULDBLOCK) throw;
                return;
            }
        }
        held_ = true;
        in_use_ = containers_in_use();
    }
    bool held() const { return held_; }
    bool in_use(const std::string& diff_id) const { return layer_used(in_use_, diff_id); }
    const InUse& usage() const { return in_use_; }

private:
    std::optional<FileLock> lock_;
    bool held_ = false;
    InUse in_use_;
};

struct Paths {
    std::string root;
    std::string node_lock;  // node-local lock shared with launches ("" = none): see NodeGuard
    std::string layer(const std::string& d) const { return root + "/layers/" + d; }
    std::string layer_info(const std::string& d) const { return root + "/layers/" + d + ".json"; }
    std::string alias(const std::string& b) const { return root + "/aliases/" + b; }
    std::string record(const std::string& id) const { return root + "/images/" + id + ".json"; }
    std::string ref(const ImageName& n) const { return root + "/refs/" + escape_ref(n.str()); }
    std::string meta_lock() const { return root + "/.lock"; }
    std::string bucket_lock(const std::string& d) const { return root + "/locks/" + d.substr(0, 2); }
    // For ensure_image: 256 buckets by the name's hash (a fixed set of lock files, never removed,
    // so no waiter can hold a lock on an unlinked file); never the layer buckets, which the
    // import it serialises takes itself.
    std::string name_lock(const ImageName& n) const { return root + "/locks/name-" + sha256_hex(n.str()).substr(0, 2); }
    // "<exit code>\n<message>" of the last failed ensure_image import of a name.
    std::string failed_note(const ImageName& n) const { return root + "/locks/failed-" + sha256_hex(n.str()); }
    std::string tmp() const { return root + "/tmp"; }
};

void ensure_dir(const std::string& p, mode_t mode) {
    if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) throw_errno("mkdir", p, errno);
}

void write_atomically(const std::string& path, const std::string& content) {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) throw_errno("create", tmp, errno);
    size_t off = 0;
    while (off < content.size()) {
        ssize_t n = ::write(fd, content.data() + off, content.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw_errno("write", path, e);
        }
        off += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw_errno("write", path, e);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        throw_errno("rename", path, e);
    }
}

std::optional<std::string> read_hex_file(const std::string& path) {
    std::ifstream in(path);
    std::string s;
    if (!in || !std::getline(in, s) || !formats::is_sha256_hex(s)) return std::nullopt;
    return s;
}

std::string now_rfc3339() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

void prepare_store(const Paths& p) {
    ensure_dir(p.root, 0755);
    for (const char* d : {"/images", "/refs", "/aliases"}) ensure_dir(p.root + d, 0755);
    // The layer trees keep the images' own modes and owners (a 1777 /run/lock, files owned by
    // some uid): reachable by the store's owner alone, or any host user could change what every
    // container of the image sees. A store made before this rule is tightened here.
    for (const char* d : {"/layers", "/tmp", "/locks"}) {
        const std::string dir = p.root + d;
        ensure_dir(dir, 0700);
        struct stat st {};
        if (::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 077) &&
            ::chmod(dir.c_str(), 0700) != 0)
            throw_errno("chmod 0700", dir, errno);
    }
}

std::string random_suffix() {
    static std::mt19937_64 rng{std::random_device{}() ^ static_cast<unsigned long long>(::getpid())};
    static const char* d = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string s;
    for (int i = 0; i < 10; ++i) s += d[rng() % 36];
    return s;
}

// Is the import owning work dir `dir` still running? It holds flock(LOCK_EX) on the dir.
bool import_alive(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    bool alive = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return alive;
}

std::vector<std::string> dir_names(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        out.push_back(it->path().filename());
    return out;
}

// A layer is in use when a live import marked it (checked first) or a record lists it.
bool layer_in_use(const Paths& p, const std::string& d) {
    for (const auto& n : dir_names(p.tmp()))
        if (n.rfind("import-", 0) == 0 && exists_nofollow(p.tmp() + "/" + n + "/uses/" + d) &&
            import_alive(p.tmp() + "/" + n))
            return true;
    for (const auto& r : Store(p.root).list())
        if (std::find(r.layers.begin(), r.layers.end(), d) != r.layers.end()) return true;
    return false;
}

// Removes layer d if nothing uses it: no record, no live import, no running container on this
// node. `guard`: the caller's, held already; else one is taken for this layer. With wait=false
// a busy lock (an import unpacking, launches mounting) means: not now.
enum class Collected_ { Removed, InUseByContainer, Kept };
struct CollectOutcome {
    Collected_ what = Collected_::Kept;
    unsigned long long bytes = 0;
};
CollectOutcome collect_layer(const Paths& p, const std::string& d, bool wait = true, const NodeGuard* guard = nullptr) {
    std::optional<NodeGuard> own;
    if (!guard) {
        own.emplace(p.node_lock, wait);
        if (!own->held()) return {};
        guard = &*own;
    }
    std::optional<FileLock> lk;
    try {
        lk.emplace(p.bucket_lock(d), wait ? LOCK_EX : LOCK_EX | LOCK_NB);
    } catch (const Error& e) {
        if (!wait && e.err() == EWOULDBLOCK) return {};
        throw;
    }
    if (!exists_nofollow(p.layer(d))) {
        ::unlink(p.layer_info(d).c_str());
        return {};
    }
    if (layer_in_use(p, d)) return {};
    if (guard->in_use(d)) return {Collected_::InUseByContainer, 0};
    unsigned long long bytes = Store(p.root).layer_size(d);
    const std::string trash = p.tmp() + "/gc-" + random_suffix();
    if (::rename(p.layer(d).c_str(), trash.c_str()) != 0) throw_errno("rename", p.layer(d), errno);
    ::unlink(p.layer_info(d).c_str());
    lk.reset();
    std::error_code ec;
    fs::remove_all(trash, ec);
    return {Collected_::Removed, bytes};
}

// Work dirs of dead imports and trash of interrupted removals. Under the meta lock, so that no
// import is between creating its work dir and locking it.
unsigned sweep_tmp(const Paths& p) {
    FileLock meta(p.meta_lock());
    unsigned n = 0;
    for (const auto& name : dir_names(p.tmp())) {
        const std::string path = p.tmp() + "/" + name;
        if (name.rfind("import-", 0) == 0) {
            int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
                ::close(fd);
                continue;  // alive
            }
            std::error_code ec;
            fs::remove_all(path, ec);
            if (fd >= 0) ::close(fd);
        } else {
            std::error_code ec;
            fs::remove_all(path, ec);
        }
        ++n;
    }
    // Half-written records and refs of a killed writer (written under this lock).
    for (const char* sub : {"/images", "/refs"})
        for (const auto& name : dir_names(p.root + sub))
            if (name.find(".tmp.") != std::string::npos) ::unlink((p.root + sub + "/" + name).c_str());
    return n;
}

}  // namespace

namespace {
// Layers no record lists (left by killed imports or removals), their info files, dead aliases.
unsigned collect_orphans(const Paths& p, bool wait) {
    unsigned removed = 0;
    std::set<std::string> used;
    for (const auto& r : Store(p.root).list()) used.insert(r.layers.begin(), r.layers.end());
    std::optional<NodeGuard> guard;  // taken at the first orphan: most calls find none
    for (const auto& name : dir_names(p.root + "/layers")) {
        if (formats::is_sha256_hex(name) && !used.count(name)) {
            if (!guard) guard.emplace(p.node_lock, wait);
            if (!guard->held()) return removed;
            if (collect_layer(p, name, wait, &*guard).what == Collected_::Removed) ++removed;
        } else if (wait && name.size() == 69 && name.compare(64, 5, ".json") == 0 &&
                   !exists_nofollow(p.layer(name.substr(0, 64)))) {
            FileLock lk(p.bucket_lock(name.substr(0, 64)));
            if (!exists_nofollow(p.layer(name.substr(0, 64)))) ::unlink((p.root + "/layers/" + name).c_str());
        }
    }
    for (const auto& name : dir_names(p.root + "/aliases")) {
        auto target = read_hex_file(p.alias(name));
        if (!target || !exists_nofollow(p.layer(*target))) ::unlink(p.alias(name).c_str());
    }
    return removed;
}
}  // namespace

GcResult collect_garbage(const std::string& store_root, const GcOptions& opt) {
    Paths p{store_root, opt.node_lock};
    prepare_store(p);
    GcResult g;
    g.tmp_removed = sweep_tmp(p);
    g.layers_removed = collect_orphans(p, true);
    std::set<std::string> used;
    for (const auto& r : Store(p.root).list()) used.insert(r.layers.begin(), r.layers.end());
    for (const auto& name : dir_names(p.root + "/layers"))
        if (formats::is_sha256_hex(name) && !used.count(name)) ++g.layers_in_use;
    return g;
}

// ---------------------------------------------------------------- import
namespace {

struct LayerOutcome {
    std::string blob;  // sha256 of the stored bytes
    std::string diff;  // sha256 of the tar (the diff id)
    bool reused = false;
};

struct Collected {  // what a single pass over an image archive found
    std::map<std::string, std::string> small;          // path -> JSON (or other small) content
    std::map<std::string, LayerOutcome> layers;        // path -> unpacked (or already stored) layer
    std::map<std::string, std::string> links;          // path -> target path (symlinks, hard links)
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
    static const std::set<std::string> fixed = {"manifest.json", "repositories", "index.json", "oci-layout",
                                                "blobs", "blobs/sha256"};
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
    return p.find('/', slash + 1) == std::string::npos && (rest == "/VERSION" || rest == "/json" || rest == "/layer.tar");
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
        return read_file(path);
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
    return base == "manifest.json" || base == "repositories" || base == "index.json" || base == "oci-layout" ||
           base == "json" || base == "VERSION" ||
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
        FileLock meta(p_.meta_lock());
        std::string tmpl = p_.tmp() + "/import-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (!::mkdtemp(buf.data())) throw_errno("mkdtemp", p_.tmp(), errno);
        work_ = buf.data();
        work_fd_ = ::open(work_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (work_fd_ < 0 || ::flock(work_fd_, LOCK_EX | LOCK_NB) != 0) throw_errno("lock", work_, errno);
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
                        "uncompressed content is sha256:" + r.digests.plain + ", the image config says sha256:" + key +
                            " (corrupted or tampered layer)");
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
    LayerOutcome reuse(ByteSource& src, const std::string& label, const std::string& key, const std::string& diff,
                       bool trusted, const std::string& expect_blob) {
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
            if (::rename(dir.c_str(), p_.layer(d).c_str()) != 0)
                throw_errno("rename", p_.layer(d), errno);
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

std::string read_fd_limited(int fd, const std::string& what, size_t limit) {
    std::string out;
    char buf[1 << 16];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read", what, errno);
        if (n == 0) return out;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > limit)
            throw Error(Exit::BadImage, "read", what, 0, "larger than " + std::to_string(limit) + " bytes");
    }
}

// OCI: index -> (nested indexes) -> manifest -> config + layers. `read_blob` returns a verified
// JSON blob; `layer` ingests a layer blob given its descriptor and the diff id from the config.
Resolved resolve_oci(const std::string& index_text, const std::string& tag, const std::string& where,
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
            throw Error(Exit::BadImage, "image", origin, 0, "unsupported media type '" + d.media_type.substr(0, 80) + "'");
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

std::string verified_json(const std::string& content, const formats::Descriptor& d, const std::string& origin) {
    if (sha256_hex(content) != d.digest)
        throw Error(Exit::BadImage, "verify", origin, 0,
                    "content is sha256:" + sha256_hex(content) + ", expected sha256:" + d.digest +
                        " (corrupted or tampered blob)");
    if (d.size >= 0 && static_cast<unsigned long long>(d.size) != content.size())
        throw Error(Exit::BadImage, "verify", origin, 0,
                    "size " + std::to_string(content.size()) + " differs from the descriptor's " + std::to_string(d.size));
    return content;
}

Resolved resolve_docker(const Collected& c, const ImageName& name, const std::string& where) {
    auto entries = formats::parse_docker_manifest(c.small.at("manifest.json"));
    const auto& e = entries[formats::select_docker_entry(entries, name)];
    Resolved r;
    const std::string cfg_path = resolve_links(c, e.config);
    auto cfg = c.small.find(cfg_path);
    if (cfg == c.small.end())
        throw Error(Exit::BadImage, "image", where, 0, "config " + e.config + " named by manifest.json is missing");
    r.config_text = cfg->second;
    r.id = sha256_hex(r.config_text);
    // Config files are named after their digest ("<hex>.json", "blobs/sha256/<hex>").
    std::string base = cfg_path.substr(cfg_path.rfind('/') + 1);
    if (base.size() >= 64 && hex64_at(base, 0) && base.substr(0, 64) != r.id && (base.size() == 64 || base.substr(64) == ".json"))
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
            throw Error(Exit::BadImage, "image", where, 0, "layer " + e.layers[i] + " named by manifest.json is missing");
        if (it->second.diff != r.config.diff_ids[i])
            throw Error(Exit::BadImage, "verify", where + ": " + e.layers[i], 0,
                        "content is sha256:" + it->second.diff + ", the config says sha256:" + r.config.diff_ids[i] +
                            " (corrupted or tampered layer)");
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
            if (it == c.small.end()) throw Error(Exit::BadImage, "image", origin, 0, "blob missing from the archive");
            return verified_json(it->second, d, origin);
        };
        auto layer = [&](const formats::Descriptor& d, const std::string&, size_t) {
            auto it = c.layers.find("blobs/sha256/" + d.digest);
            if (it == c.layers.end())
                throw Error(Exit::BadImage, "image", src.label, 0, "layer blob " + short_id(d.digest) + " missing");
            return it->second;
        };
        return resolve_oci(c.small.at("index.json"), "", src.label, read_blob, layer);
    }
    if (src.seekable && retry && mode == StreamMode::Detect) {
        *retry = StreamMode::Rootfs;
        return {};
    }
    throw Error(Exit::BadImage, "import", src.label, 0,
                "not a docker-archive (no manifest.json), an OCI archive (no index.json) or a rootfs tarball");
}

Resolved import_layout(Importer& imp, const ImportSource& src, const std::function<void(size_t)>& on_read) {
    auto open_rel = [&](const std::string& rel) {
        int fd = src.open_layout(rel);
        if (fd < 0) throw_errno("open", src.label + "/" + rel, errno, Exit::BadImage);
        return fd;
    };
    struct Fd {
        int fd;
        ~Fd() { ::close(fd); }
    };
    {
        Fd f{open_rel("oci-layout")};
        json j;
        try {
            j = json::parse(read_fd_limited(f.fd, src.label + "/oci-layout", 4096));
        } catch (const json::exception&) {
            throw Error(Exit::BadImage, "image", src.label + "/oci-layout", 0, "not valid JSON");
        }
        if (!j.is_object() || !j.contains("imageLayoutVersion") || !j["imageLayoutVersion"].is_string())
            throw Error(Exit::BadImage, "image", src.label + "/oci-layout", 0, "no imageLayoutVersion");
    }
    Fd idx{open_rel("index.json")};
    const std::string index_text = read_fd_limited(idx.fd, src.label + "/index.json", formats::kMaxJsonBytes);
    auto read_blob = [&](const formats::Descriptor& d, const std::string& origin) {
        Fd f{open_rel("blobs/sha256/" + d.digest)};
        return verified_json(read_fd_limited(f.fd, origin, formats::kMaxJsonBytes), d, origin);
    };
    auto layer = [&](const formats::Descriptor& d, const std::string& diff, size_t i) {
        Fd f{open_rel("blobs/sha256/" + d.digest)};
        struct stat st {};
        if (::fstat(f.fd, &st) == 0 && d.size >= 0 && st.st_size != d.size)
            throw Error(Exit::BadImage, "verify", src.label + " layer " + short_id(d.digest), 0,
                        "size " + std::to_string(st.st_size) + " differs from the manifest's " + std::to_string(d.size));
        FdSource fs(f.fd, src.label + " layer " + std::to_string(i + 1), on_read);
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
        if (std::find(rec.layers.begin(), rec.layers.end(), *it) == rec.layers.end()) rec.layers.insert(rec.layers.begin(), *it);
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
            if (!store.layer_present(l)) throw Error(Exit::Internal, "import", src.label, 0, "layer " + l + " vanished");
        const std::string rec_path = p.record(rec.id);
        if (exists_nofollow(rec_path)) {
            auto old = record_from_json(read_file(rec_path), rec_path);
            rec.names = old.names;
            if (rec.format == "rootfs") rec.created = old.created;  // the import time of the first copy
            if (rec.manifest_digest.empty()) rec.manifest_digest = old.manifest_digest;
        }
        // If the name pointed at another image, that image loses the name (and goes when it
        // has no name left).
        const std::string ref_path = p.ref(name);
        if (auto old_id = read_hex_file(ref_path); old_id && *old_id != rec.id && exists_nofollow(p.record(*old_id))) {
            auto other = record_from_json(read_file(p.record(*old_id)), p.record(*old_id));
            other.names.erase(std::remove(other.names.begin(), other.names.end(), name.str()), other.names.end());
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
            const int c = std::atoi(code.c_str());
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

RemoveResult remove_image(const std::string& store_root, const ImageName& name, const GcOptions& opt) {
    Paths p{store_root, opt.node_lock};
    prepare_store(p);
    RemoveResult rr;
    ImageRecord rec;
    {
        FileLock meta(p.meta_lock());
        auto id = read_hex_file(p.ref(name));
        if (!id || !exists_nofollow(p.record(*id))) Store(store_root).find(name);  // throws, with a suggestion
        rec = record_from_json(read_file(p.record(*id)), p.record(*id));
        if (::unlink(p.ref(name).c_str()) != 0) throw_errno("unlink", p.ref(name), errno);
        rec.names.erase(std::remove(rec.names.begin(), rec.names.end(), name.str()), rec.names.end());
        if (rec.names.empty()) {
            if (::unlink(p.record(rec.id).c_str()) != 0) throw_errno("unlink", p.record(rec.id), errno);
            rr.record_removed = true;
        } else {
            write_atomically(p.record(rec.id), record_to_json(rec));
        }
    }
    if (rr.record_removed) {
        const NodeGuard guard(p.node_lock, true);
        for (const auto& l : rec.layers) {
            const CollectOutcome o = collect_layer(p, l, true, &guard);
            if (o.what == Collected_::Removed) {
                ++rr.layers_removed;
                rr.bytes_freed += o.bytes;
            } else if (o.what == Collected_::InUseByContainer) {
                ++rr.layers_in_use;
            }
        }
        if (rr.layers_in_use) rr.containers = guard.usage().containers_using(rec.layers);
    }
    sweep_tmp(p);
    collect_orphans(p, true);
    return rr;
}

}  // namespace socker::image
