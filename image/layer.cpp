#include "image/layer.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <set>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "image/formats.hpp"

namespace socker::image {

// ------------------------------------------------------------------ sources
FdSource::FdSource(int fd, std::string label, std::function<void(size_t)> on_read)
    : fd_(fd), label_(std::move(label)), on_read_(std::move(on_read)), buf_(1u << 20) {}

size_t FdSource::next(const void** data) {
    for (;;) {
        ssize_t n = ::read(fd_, buf_.data(), buf_.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read", label_, errno);
        *data = buf_.data();
        consumed += static_cast<unsigned long long>(n);
        if (on_read_ && n > 0) on_read_(static_cast<size_t>(n));
        return static_cast<size_t>(n);
    }
}

size_t MemorySource::next(const void** data) {
    size_t n = std::min<size_t>(data_.size() - off_, 1u << 16);
    *data = data_.data() + off_;
    off_ += n;
    consumed += n;
    return n;
}

size_t EntrySource::read_block(const void** data) {
    for (;;) {
        if (eof_) return 0;
        size_t size = 0;
        la_int64_t off = 0;
        int r = archive_read_data_block(outer_.tar(), data, &size, &off);
        if (r == ARCHIVE_EOF) {
            eof_ = true;
            return 0;
        }
        if (r < ARCHIVE_WARN) outer_.fail(outer_.tar(), label_);
        if (off != expect_off_) throw Error(Exit::BadImage, "read", label_, 0, "sparse archive member");
        expect_off_ += static_cast<long long>(size);
        if (size > 0) return size;
    }
}

int EntrySource::peek() {
    if (!have_peek_) {
        peeked_n_ = read_block(&peeked_);
        have_peek_ = true;
    }
    return peeked_n_ > 0 ? static_cast<const unsigned char*>(peeked_)[0] : -1;
}

size_t EntrySource::next(const void** data) {
    size_t n;
    if (have_peek_) {
        have_peek_ = false;
        *data = peeked_;
        n = peeked_n_;
    } else {
        n = read_block(data);
    }
    consumed += n;
    return n;
}

// ------------------------------------------------------------------ tar stream
struct TarStream::Glue {
    ByteSource* src = nullptr;
    archive* raw = nullptr;
    Sha256 raw_sha, plain_sha;
    unsigned long long raw_bytes = 0, plain_bytes = 0;
    bool compressed = false, raw_eof = false, src_eof = false;
    double max_ratio = 0;
    std::string label;
    std::exception_ptr error;  // thrown by the source inside a libarchive callback
};

namespace {

using Glue = TarStream::Glue;

la_ssize_t raw_read_cb(archive* a, void* ctx, const void** buf) {
    auto* g = static_cast<Glue*>(ctx);
    try {
        size_t n = g->src->next(buf);
        if (n == 0) g->src_eof = true;
        g->raw_sha.update(*buf, n);
        g->raw_bytes += n;
        return static_cast<la_ssize_t>(n);
    } catch (...) {
        g->error = std::current_exception();
        archive_set_error(a, EIO, "source read failed");
        return -1;
    }
}

la_ssize_t plain_read_cb(archive* a, void* ctx, const void** buf) {
    auto* g = static_cast<Glue*>(ctx);
    for (;;) {
        if (g->raw_eof) return 0;
        size_t size = 0;
        la_int64_t off = 0;
        int r = archive_read_data_block(g->raw, buf, &size, &off);
        if (r == ARCHIVE_EOF) {
            g->raw_eof = true;
            return 0;
        }
        if (r < ARCHIVE_WARN) {
            archive_set_error(
                a, archive_errno(g->raw) ? archive_errno(g->raw) : EIO, "%s",
                archive_error_string(g->raw) ? archive_error_string(g->raw) : "decompression failed");
            return -1;
        }
        if (size == 0) continue;
        if (g->compressed) g->plain_sha.update(*buf, size);
        g->plain_bytes += size;
        constexpr unsigned long long kRatioFloor = 64ULL << 20;
        if (g->compressed && g->max_ratio > 0 && g->plain_bytes > kRatioFloor &&
            static_cast<double>(g->plain_bytes) > g->max_ratio * static_cast<double>(g->raw_bytes)) {
            char msg[160];
            std::snprintf(msg, sizeof msg,
                          "%llu bytes from %llu stored: compression ratio above import_max_ratio = %g",
                          g->plain_bytes, g->raw_bytes, g->max_ratio);
            g->error = std::make_exception_ptr(Error(Exit::BadImage, "decompress", g->label, 0,
                                                     std::string(msg) + " (a decompression bomb?)"));
            archive_set_error(a, EFBIG, "compression ratio limit");
            return -1;
        }
        return static_cast<la_ssize_t>(size);
    }
}

}  // namespace

TarStream::TarStream(ByteSource& src, std::string label)
    : glue_(std::make_unique<Glue>()),
      raw_(archive_read_new(), archive_read_free),
      tar_(archive_read_new(), archive_read_free),
      label_(std::move(label)) {
    if (!raw_ || !tar_) throw Error(Exit::Internal, "archive_read_new", label_);
    archive* raw = raw_.get();
    archive* tar = tar_.get();
    glue_->src = &src;
    glue_->raw = raw;
    glue_->label = label_;
    auto msg = [](archive* a) { return std::string(archive_error_string(a) ? archive_error_string(a) : ""); };
    // Built-in decompressors only (filter_all would also run external programs).
    archive_read_support_filter_gzip(raw);
    archive_read_support_filter_zstd(raw);
    archive_read_support_filter_xz(raw);
    archive_read_support_filter_bzip2(raw);
    archive_read_support_format_raw(raw);
    if (archive_read_open(raw, glue_.get(), nullptr, raw_read_cb, nullptr) != ARCHIVE_OK) {
        if (glue_->error) std::rethrow_exception(glue_->error);
        throw Error(Exit::BadImage, "read", label_, 0, msg(raw));
    }
    archive_entry* e = nullptr;
    int r = archive_read_next_header(raw, &e);
    if (glue_->error) std::rethrow_exception(glue_->error);
    if (r == ARCHIVE_EOF)
        glue_->raw_eof = true;
    else if (r < ARCHIVE_WARN)
        throw Error(Exit::BadImage, "read", label_, 0, msg(raw));
    glue_->compressed = archive_filter_code(raw, 0) != ARCHIVE_FILTER_NONE;
    archive_read_support_format_tar(tar);
    archive_read_support_format_empty(tar);
    if (archive_read_open(tar, glue_.get(), nullptr, plain_read_cb, nullptr) != ARCHIVE_OK) {
        if (glue_->error) std::rethrow_exception(glue_->error);
        throw Error(Exit::BadImage, "read", label_, 0, "not a tar archive (" + msg(tar) + ")");
    }
}

TarStream::~TarStream() = default;

archive_entry* TarStream::next() {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(tar_.get(), &e);
    if (r == ARCHIVE_EOF) return nullptr;
    if (r < ARCHIVE_WARN) fail(tar_.get(), label_);
    return e;
}

StreamDigests TarStream::finish() {
    const void* b = nullptr;
    la_ssize_t n;
    while ((n = plain_read_cb(tar_.get(), glue_.get(), &b)) > 0) {
    }
    if (n < 0) fail(tar_.get(), label_);
    // Bytes after the compressed stream (or not read ahead) still belong to the blob.
    while (!glue_->src_eof) {
        size_t m = glue_->src->next(&b);
        if (m == 0) break;
        glue_->raw_sha.update(b, m);
        glue_->raw_bytes += m;
    }
    StreamDigests d;
    d.compressed = glue_->compressed;
    d.raw = glue_->raw_sha.hex();
    d.plain = d.compressed ? glue_->plain_sha.hex() : d.raw;
    d.raw_bytes = glue_->raw_bytes;
    d.plain_bytes = glue_->plain_bytes;
    return d;
}

void TarStream::limit_ratio(double max_ratio) { glue_->max_ratio = max_ratio; }

void ImportBudget::add_bytes(unsigned long long n, const std::string& what) {
    bytes_ += n;
    if (limits_.max_bytes && bytes_ > limits_.max_bytes)
        throw Error(Exit::BadImage, "import", what, 0,
                    "more than import_max_bytes = " + std::to_string(limits_.max_bytes) +
                        " bytes of file content (a decompression bomb?)");
}

void ImportBudget::add_file(const std::string& what) {
    ++files_;
    if (limits_.max_files && files_ > limits_.max_files)
        throw Error(Exit::BadImage, "import", what, 0,
                    "more than import_max_files = " + std::to_string(limits_.max_files) + " entries");
}

void TarStream::fail(archive* a, const std::string& what) {
    if (glue_->error) std::rethrow_exception(glue_->error);
    throw Error(Exit::BadImage, "read", what, 0,
                archive_error_string(a) ? archive_error_string(a) : "truncated");
}

StreamDigests digest_layer(ByteSource& src, const std::string& label) {
    TarStream ts(src, label);
    return ts.finish();
}

StreamDigests hash_source(ByteSource& src) {
    Sha256 h;
    StreamDigests d;
    const void* b = nullptr;
    while (size_t n = src.next(&b)) {
        h.update(b, n);
        d.raw_bytes += n;
    }
    d.raw = h.hex();
    return d;
}

// ------------------------------------------------------------------ unpack
namespace {

// Opens directory `rel` beneath rootfd, never following a symlink (nor "..", nor leaving the
// filesystem); creates missing components (0755) when `create`.
int open_dir_beneath(int rootfd, const std::string& rel, bool create, const std::string& what) {
    int fd = ::fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) throw_errno("dup", what, errno);
    size_t i = 0;
    while (i < rel.size()) {
        size_t j = rel.find('/', i);
        if (j == std::string::npos) j = rel.size();
        const std::string comp = rel.substr(i, j - i);
        i = j + 1;
        struct open_how how {};
        how.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
        int nfd = static_cast<int>(::syscall(SYS_openat2, fd, comp.c_str(), &how, sizeof how));
        if (nfd < 0 && errno == ENOENT && create) {
            if (::mkdirat(fd, comp.c_str(), 0755) != 0 && errno != EEXIST) {
                int e = errno;
                ::close(fd);
                throw_errno("mkdir", what, e, e == ENOSPC || e == EDQUOT ? Exit::Io : Exit::BadImage);
            }
            nfd = static_cast<int>(::syscall(SYS_openat2, fd, comp.c_str(), &how, sizeof how));
        }
        int e = errno;
        ::close(fd);
        if (nfd < 0) {
            if (e == ELOOP || e == ENOTDIR || e == EXDEV)
                throw Error(Exit::BadImage, "refused", what, 0, "its parent is a symlink or not a directory");
            throw_errno("open", what, e);
        }
        fd = nfd;
    }
    return fd;
}

struct CwdGuard {
    int saved;
    explicit CwdGuard(int dirfd) : saved(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) {
        if (saved < 0) saved = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (::fchdir(dirfd) != 0) throw_errno("chdir", "layer directory", errno);
    }
    ~CwdGuard() {
        if (::fchdir(saved) != 0) {
        }
        ::close(saved);
    }
    CwdGuard(const CwdGuard&) = delete;
    CwdGuard& operator=(const CwdGuard&) = delete;
};

bool is_space_error(int e) { return e == ENOSPC || e == EDQUOT || e == EFBIG || e == EIO || e == EROFS; }

[[noreturn]] void write_failed(archive* out, const std::string& op, const std::string& what) {
    int e = archive_errno(out);
    const char* msg = archive_error_string(out);
    if (is_space_error(e)) throw_errno(op, what, e, Exit::Io);
    throw Error(Exit::BadImage, "refused", what, 0, msg ? msg : op + " failed");
}

void mark_opaque(int rootfd, const std::string& dir, const std::string& xattr, const std::string& what) {
    Fd d(open_dir_beneath(rootfd, dir, true, what));
    if (::fsetxattr(d.get(), xattr.c_str(), "y", 1, 0) != 0)
        throw_errno("set " + xattr, what, errno, is_space_error(errno) ? Exit::Io : Exit::Internal);
}

}  // namespace

UnpackStats unpack_entries(TarStream& ts, archive_entry* e, const std::string& dest,
                           const UnpackOptions& opt) {
    const bool root = ::geteuid() == 0;
    const std::string ns = opt.xattr_ns.empty() ? (root ? "trusted" : "user") : opt.xattr_ns;
    const std::string opaque_xattr = ns + ".overlay.opaque";
    Fd rootfd(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (rootfd.get() < 0) throw_errno("open", dest, errno);
    CwdGuard cwd(rootfd.get());  // archive_write_disk resolves entry paths against the cwd

    std::unique_ptr<archive, int (*)(archive*)> out(archive_write_disk_new(), archive_write_free);
    int flags = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;
    if (root && opt.restore_owner) flags |= ARCHIVE_EXTRACT_OWNER;  // numeric ids: no name lookup set
    archive_write_disk_set_options(out.get(), flags);

    UnpackStats st;
    std::set<std::string> whiteouts, dropped;
    const std::string& label = ts.label();
    for (; e != nullptr; e = ts.next()) {
        const char* raw_name = archive_entry_pathname(e);
        const std::string path = formats::normalize_archive_path(raw_name ? raw_name : "", label + " entry");
        if (path.empty()) continue;  // "./": the layer root itself
        const std::string what = label + ": " + path;
        if (opt.budget) opt.budget->add_file(what);
        const auto slash = path.rfind('/');
        const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
        const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);

        if (base.rfind(".wh.", 0) == 0) {
            if (base == ".wh..wh..opq") {
                mark_opaque(rootfd.get(), dir, opaque_xattr, what);
                ++st.files;
            } else if (base.rfind(".wh..wh.", 0) == 0 || base == ".wh." || base == ".wh.." ||
                       base == ".wh...") {
                ++st.dropped;  // AUFS bookkeeping, or a whiteout of nothing
            } else {
                const std::string victim = base.substr(4);
                Fd parent(open_dir_beneath(rootfd.get(), dir, true, what));
                if (::mknodat(parent.get(), victim.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0 &&
                    errno != EEXIST)
                    throw_errno("create whiteout", what, errno,
                                is_space_error(errno) ? Exit::Io : Exit::BadImage);
                whiteouts.insert(dir.empty() ? victim : dir + "/" + victim);
                ++st.files;
            }
            continue;  // a whiteout's data, if any, is skipped by the next header read
        }

        const auto type = archive_entry_filetype(e);
        if (const char* hl = archive_entry_hardlink(e)) {
            const std::string target = formats::normalize_archive_path(hl, what + " (hard link target)");
            if (target.empty())
                throw Error(Exit::BadImage, "refused", what, 0, "hard link to the layer root");
            if (dropped.count(target)) {
                ++st.dropped;
                dropped.insert(path);
                continue;
            }
            archive_entry_set_hardlink(e, target.c_str());
        } else if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
            ++st.dropped;  // device nodes, FIFOs, sockets: an image carries none
            dropped.insert(path);
            continue;
        }
        archive_entry_set_pathname(e, path.c_str());
        const auto perm = archive_entry_perm(e);
        if (type != AE_IFDIR && (perm & (S_ISUID | S_ISGID))) {
            archive_entry_set_perm(e, perm & ~static_cast<mode_t>(S_ISUID | S_ISGID));
            ++st.suid_cleared;
        }
        archive_entry_xattr_clear(e);  // no file capabilities, no foreign xattrs
        archive_entry_acl_clear(e);
        archive_entry_set_fflags(e, 0, 0);
        archive_entry_copy_mac_metadata(e, nullptr, 0);

        if (archive_write_header(out.get(), e) < ARCHIVE_WARN) write_failed(out.get(), "create", what);
        if (archive_entry_size(e) > 0 && (type == AE_IFREG || archive_entry_hardlink(e))) {
            const void* buf;
            size_t size;
            la_int64_t off;
            int rr;
            while ((rr = archive_read_data_block(ts.tar(), &buf, &size, &off)) == ARCHIVE_OK) {
                if (opt.budget) opt.budget->add_bytes(size, what);
                if (archive_write_data_block(out.get(), buf, size, off) != ARCHIVE_OK)
                    write_failed(out.get(), "write", what);
                st.content_bytes += size;
            }
            if (rr != ARCHIVE_EOF) ts.fail(ts.tar(), what);
        }
        if (archive_write_finish_entry(out.get()) < ARCHIVE_WARN) write_failed(out.get(), "finish", what);
        // A directory replacing what this layer whited out hides the lower one completely.
        if (type == AE_IFDIR && whiteouts.count(path)) mark_opaque(rootfd.get(), path, opaque_xattr, what);
        ++st.files;
    }
    if (archive_write_close(out.get()) != ARCHIVE_OK) write_failed(out.get(), "finish", dest);
    return st;
}

LayerResult unpack_layer(ByteSource& src, const std::string& dest, const std::string& label,
                         const UnpackOptions& opt) {
    TarStream ts(src, label);
    if (opt.budget) ts.limit_ratio(opt.budget->limits().max_ratio);
    archive_entry* first = ts.next();
    LayerResult r;
    r.stats = unpack_entries(ts, first, dest, opt);
    r.digests = ts.finish();
    return r;
}

}  // namespace socker::image
