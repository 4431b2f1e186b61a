#include "image/squashfs.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <vector>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "base/file.hpp"
#include "image/digest.hpp"
#include "image/layout.hpp"
#include "image/record.hpp"

namespace socker::image {

using namespace layout;
namespace fs = std::filesystem;

std::string squashfs_path(const std::string& store_root, const std::string& sha) {
    return store_root + "/squashfs/" + sha + ".sqfs";
}

namespace {

unsigned long long le(std::string_view b, size_t at, size_t n) {
    unsigned long long v = 0;
    for (size_t i = 0; i < n; ++i)
        v |= static_cast<unsigned long long>(static_cast<unsigned char>(b[at + i])) << (8 * i);
    return v;
}

// The child: a private mount namespace, the layers stacked read-only at `mnt` (an empty lowest
// layer below a single one: overlayfs wants two lower layers without an upper one), then
// mksquashfs of that tree. Returns only on failure (the exit status says which step).
[[noreturn]] void flatten_child(const std::vector<std::string>& lowers_top_first, const std::string& mnt,
                                const std::string& empty, const std::string& out) {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        ::_exit(120);
    std::string lower;
    for (const auto& l : lowers_top_first) lower += (lower.empty() ? "" : ":") + l;
    if (lowers_top_first.size() == 1) lower += ":" + empty;
    const std::string opts = "lowerdir=" + lower;
    if (::mount("socker-mpi-squashfs", mnt.c_str(), "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV,
                opts.c_str()) != 0)
        ::_exit(121);
    const char* argv[] = {"mksquashfs", mnt.c_str(), out.c_str(),    "-noappend",    "-no-xattrs", "-comp",
                          "zstd",       "-quiet",    "-no-progress", "-no-recovery", nullptr};
    const char* envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", nullptr};
    ::execve("/usr/bin/mksquashfs", const_cast<char* const*>(argv), const_cast<char* const*>(envp));
    ::_exit(errno == ENOENT ? 127 : 126);
}

}  // namespace

std::string squashfs_superblock_problem(std::string_view h, unsigned long long file_size) {
    if (h.size() < 96) return "shorter than a squashfs superblock";
    if (h.substr(0, 4) != "hsqs") return "no squashfs magic";
    if (le(h, 28, 2) != 4 || le(h, 30, 2) != 0) return "not squashfs 4.0";
    const unsigned long long block = le(h, 12, 4), log = le(h, 22, 2), comp = le(h, 20, 2);
    if (block < 4096 || block > (1u << 20) || (block & (block - 1)) != 0 || (1ULL << log) != block)
        return "bad block size";
    if (comp < 1 || comp > 6) return "unknown compression";
    const unsigned long long used = le(h, 40, 8), inodes = le(h, 64, 8), dirs = le(h, 72, 8),
                             ids = le(h, 48, 8);
    if (used < 96 || used > file_size) return "filesystem larger than the file";
    if (!(96 <= inodes && inodes < dirs && dirs < used && ids < used)) return "tables out of place";
    return "";
}

SquashfsResult build_squashfs(const std::string& root, const std::string& image_id) {
    const auto t0 = std::chrono::steady_clock::now();
    const Paths p{root, ""};
    SquashfsResult res;
    ImageRecord rec = record_from_json(read_store_file(p.record(image_id)), p.record(image_id));
    if (!rec.squashfs.empty() && exists_nofollow(squashfs_path(root, rec.squashfs))) {
        res.sha256 = rec.squashfs;
        return res;
    }
    prepare_store(p);
    ensure_dir(root + "/squashfs", 0700);
    // A work dir like an import's ("import-" and flock'ed: another import's sweep leaves it alone).
    const auto [work, fd] = make_work_dir(p, "import-sqfs-");
    const Fd work_fd(fd);
    struct Cleanup {
        std::string dir;
        ~Cleanup() {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    } cleanup{work};
    const std::string mnt = work + "/tree", empty = work + "/empty", out = work + "/image.sqfs";
    ensure_dir(mnt, 0700);
    ensure_dir(empty, 0755);
    std::vector<std::string> lowers;
    for (auto it = rec.layers.rbegin(); it != rec.layers.rend(); ++it) {
        if (!exists_nofollow(p.layer(*it)))
            throw Error(Exit::BadImage, "squashfs", image_id.substr(0, 12), 0,
                        "layer " + it->substr(0, 12) + " missing");
        lowers.push_back(p.layer(*it));
    }
    if (lowers.empty())
        throw Error(Exit::BadImage, "squashfs", image_id.substr(0, 12), 0, "image has no layers");

    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork", "mksquashfs", errno);
    if (pid == 0) flatten_child(lowers, mnt, empty, out);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw_errno("waitpid", "mksquashfs", errno);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        const char* why = code == 120   ? "no private mount namespace"
                          : code == 121 ? "the layers could not be stacked"
                          : code == 127 ? "mksquashfs not installed (apt-get install squashfs-tools)"
                                        : "mksquashfs failed";
        throw Error(Exit::Io, "squashfs", image_id.substr(0, 12), 0,
                    std::string(why) + " (exit " + std::to_string(code) + ")");
    }

    // Named by its own digest, made durable, then renamed into place and recorded.
    const Fd f(::open(out.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    struct stat st {};
    if (f.get() < 0 || ::fstat(f.get(), &st) != 0) throw_errno("open", out, errno);
    std::string head(96, '\0');
    if (::pread(f.get(), head.data(), head.size(), 0) != static_cast<ssize_t>(head.size()))
        throw_errno("read", out, errno);
    if (const std::string why =
            squashfs_superblock_problem(head, static_cast<unsigned long long>(st.st_size));
        !why.empty())
        throw Error(Exit::Io, "squashfs", out, 0, "mksquashfs wrote a bad file: " + why);
    res.sha256 = sha256_of_fd(f.get(), out);
    if (::fchmod(f.get(), 0644) != 0 || ::fsync(f.get()) != 0) throw_errno("fsync", out, errno);
    const std::string final_path = squashfs_path(root, res.sha256);
    {
        // Renamed and recorded under the store's lock: garbage collection (which removes the
        // files no record names, under the same lock) never sees one in between.
        FileLock meta(p.meta_lock());
        if (!exists_nofollow(p.record(image_id)))
            throw Error(Exit::BadImage, "squashfs", image_id.substr(0, 12), 0, "image removed meanwhile");
        if (::rename(out.c_str(), final_path.c_str()) != 0) throw_errno("rename", final_path, errno);
        rec = record_from_json(read_store_file(p.record(image_id)), p.record(image_id));
        rec.squashfs = res.sha256;
        write_atomically(p.record(image_id), record_to_json(rec));
    }
    res.built = true;
    res.bytes = static_cast<unsigned long long>(st.st_size);
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
}

}  // namespace socker::image
