// The on-disk layout of an image store, spelled once, and the file plumbing every part of the
// store shares (locks, atomic writes). Internal to image/.
//
//   <root>/layers/<diffid-hex>/      one unpacked layer (overlay-ready; whiteouts as 0/0 devices,
//                                    opaque directories marked with <ns>.overlay.opaque=y); 0700
//   <root>/layers/<diffid-hex>.json  its size (content bytes, tar bytes)
//   <root>/aliases/<blob-hex>        "<diffid-hex>\n": a compressed blob already unpacked
//   <root>/images/<id-hex>.json      image record: layers, config (Env, Entrypoint, Cmd, ...)
//   <root>/refs/<escaped name>       "<id-hex>\n": NAME:TAG -> image
//   <root>/tmp/import-XXXXXX/        one import at work, flock(2)ed while it lives; uses/<diffid>
//                                    marks layers it relies on (garbage collection skips them)
//   <root>/locks/<00..ff>            flock(2): check-and-create of layers (bucket of the digest)
//   <root>/.lock                     flock(2): records and refs, creation of work dirs
//
// Crash safety: a layer appears by rename(2) of a fully unpacked directory, a record or ref by
// rename(2) of a fsync'ed file, and a record is written only once all its layers are in place.
// A killed import leaves a work dir and perhaps unreferenced layers; the next import or rm
// removes them. Layer file data is not fsync'ed (like tar -x, docker and containerd).
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/types.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "image/digest.hpp"
#include "image/name.hpp"

namespace socker::image::layout {

std::string escape_ref(const std::string& ref);  // "lab/x:1" -> "lab%2Fx:1"

// Where everything of a store is, spelled once (docs/images.md "The store").
struct Paths {
    std::string root;
    std::string node_lock;  // node-local lock shared with launches ("" = none): see NodeGuard
    std::string layers() const { return root + "/layers"; }
    std::string images() const { return root + "/images"; }
    std::string refs() const { return root + "/refs"; }
    std::string aliases() const { return root + "/aliases"; }
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
    std::string name_lock(const ImageName& n) const {
        return root + "/locks/name-" + sha256_hex(n.str()).substr(0, 2);
    }
    // "<exit code>\n<message>" of the last failed ensure_image import of a name.
    std::string failed_note(const ImageName& n) const {
        return root + "/locks/failed-" + sha256_hex(n.str());
    }
    std::string tmp() const { return root + "/tmp"; }
};

// flock(2) on a lock file, held for the object's lifetime.
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

void ensure_dir(const std::string& p, mode_t mode);
// Creates the store's directories (0755; layers/, tmp/, locks/ 0700, tightened if wider).
void prepare_store(const Paths& p);
// The first line of a file, if it is 64 lowercase hex digits.
std::optional<std::string> read_hex_file(const std::string& path);
// A store file read into memory (records, layer info): a missing or unreadable one is a bad image.
std::string read_store_file(const std::string& path);
bool exists_nofollow(const std::string& p);
std::vector<std::string> dir_names(const std::string& dir);
std::string random_suffix();
std::string now_rfc3339();
// A work dir <tmp>/<prefix>XXXXXX (prefix "import-..."), made under the store's lock and locked
// (flock LOCK_EX) by the returned fd, the caller's to close: sweep_tmp() leaves it alone while
// that lock is held. Returns its path and the fd.
std::pair<std::string, int> make_work_dir(const Paths& p, const std::string& prefix);
// Is the import owning work dir `dir` still running? It holds flock(LOCK_EX) on the dir.
bool import_alive(const std::string& dir);

}  // namespace socker::image::layout
