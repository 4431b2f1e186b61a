#include "image/layout.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "base/error.hpp"
#include "base/file.hpp"
#include "image/formats.hpp"

namespace socker::image::layout {

namespace fs = std::filesystem;

std::string escape_ref(const std::string& ref) {
    std::string out;
    for (char c : ref) out += (c == '/') ? std::string("%2F") : std::string(1, c);
    return out;
}

bool exists_nofollow(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

std::string read_store_file(const std::string& path) { return read_file(path, 64u << 20, Exit::BadImage); }

void ensure_dir(const std::string& p, mode_t mode) {
    if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) throw_errno("mkdir", p, errno);
}

std::pair<std::string, int> make_work_dir(const Paths& p, const std::string& prefix) {
    FileLock meta(p.meta_lock());
    std::string tmpl = p.tmp() + "/" + prefix + "XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw_errno("mkdtemp", p.tmp(), errno);
    std::string dir = buf.data();
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int e = errno;
        if (fd >= 0) ::close(fd);
        throw_errno("lock", dir, e);
    }
    return {dir, fd};
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

}  // namespace socker::image::layout
