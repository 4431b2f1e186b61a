#include "base/fd.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

#include <cerrno>
#include <climits>

#include "base/error.hpp"

namespace socker {

std::string fd_path(int fd) {
    char buf[PATH_MAX];
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    if (n < 0) throw_errno("readlink", link, errno);
    return std::string(buf, static_cast<size_t>(n));
}

int openat2_fd(int dirfd, const std::string& path, int flags, unsigned long long resolve) {
    struct open_how how {};
    how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
    how.resolve = resolve;
    return static_cast<int>(::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how));
}

}  // namespace socker
