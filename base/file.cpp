#include "base/file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/fd.hpp"

namespace socker {

std::string read_fd(int fd, const std::string& what, size_t limit, Exit too_large) {
    std::string out;
    char buf[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("read", what, errno);
        if (n == 0) return out;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > limit)
            throw Error(too_large, "read", what, 0, "larger than " + std::to_string(limit) + " bytes");
    }
}

MappedFile::MappedFile(const std::string& path, size_t limit, Exit open_error) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) throw_errno("open", path, errno, open_error);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno("stat", path, errno);
    if (!S_ISREG(st.st_mode)) throw Error(open_error, "map", path, 0, "not a regular file");
    if (static_cast<unsigned long long>(st.st_size) > limit)
        throw Error(open_error, "map", path, 0, "larger than " + std::to_string(limit) + " bytes");
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) return;
    addr_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (addr_ == MAP_FAILED) {
        addr_ = nullptr;
        throw_errno("mmap", path, errno);
    }
}

MappedFile::~MappedFile() {
    if (addr_) ::munmap(addr_, size_);
}

std::string read_file(const std::string& path, size_t limit, Exit open_error) {
    const Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!f.valid()) throw_errno("open", path, errno, open_error);
    return read_fd(f.get(), path, limit, open_error);
}

void write_atomically(const std::string& path, const std::string& content, mode_t mode) {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
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

}  // namespace socker
