// One owned file descriptor type, and the path an fd refers to.
#pragma once

#include <unistd.h>

#include <string>
#include <utility>

namespace socker {

// An owned file descriptor, closed when it goes out of scope.
class Fd {
public:
    Fd() = default;
    explicit Fd(int f) : fd_(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        std::swap(fd_, o.fd_);
        return *this;
    }
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_ = -1;
};

// The path an open fd refers to now (readlink of /proc/self/fd/N). Throws Error(Io).
std::string fd_path(int fd);

// openat2(2) with O_CLOEXEC added and the given RESOLVE_* flags; -1 and errno on failure.
int openat2_fd(int dirfd, const std::string& path, int flags, unsigned long long resolve);

}  // namespace socker
