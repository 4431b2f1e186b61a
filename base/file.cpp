#include "base/file.hpp"

#include <fcntl.h>
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

std::string read_file(const std::string& path, size_t limit, Exit open_error) {
    const Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!f.valid()) throw_errno("open", path, errno, open_error);
    return read_fd(f.get(), path, limit, open_error);
}

}  // namespace socker
