#pragma once

#include <unistd.h>

#include <functional>
#include <set>
#include <utility>

#include "sys.hpp"

namespace socker::launcher {

// The real thing. Requires euid 0 (the setuid binary) for everything but exec.
class LinuxSys final : public Sys {
public:
    void unshare_mount_namespace() override;
    std::string mount_rootfs(const ContainerSpec& spec) override;
    void apply_mount(const std::string& root, const MountOp& op, const ContainerSpec& spec) override;
    void pivot_root(const std::string& new_root) override;
    void make_root_readonly() override;
    void set_binding(const CpuBinding& b) override;
    void drop_bounding_set() override;
    void set_groups(const std::vector<gid_t>& groups) override;
    void set_resgid(gid_t gid) override;
    void set_resuid(uid_t uid) override;
    void verify_dropped(uid_t uid, gid_t gid) override;
    void set_no_new_privs() override;
    void chdir(const std::string& dir) override;
    void set_umask(mode_t mask) override;
    [[noreturn]] void exec(const std::vector<std::string>& argv, const std::vector<std::string>& path,
                           const EnvMap& env) override;

private:
    std::string staging_;          // runtime_dir
    std::set<dev_t> own_devs_;     // filesystems we mounted: mount points may be created there
    int file_counter_ = 0;
};

// An owned file descriptor, closed when it goes out of scope.
struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
    Fd& operator=(Fd&& o) noexcept { std::swap(fd, o.fd); return *this; }
    ~Fd() { if (fd >= 0) ::close(fd); }
    int get() const { return fd; }
};

// The path an open fd refers to now (readlink of /proc/self/fd/N).
std::string fd_path(int fd);

// Open a host path with exactly the user's rights: fsuid/fsgid the user's (the supplementary
// groups of a setuid process are already the user's) and no effective capabilities; /proc magic
// links are refused (77). O_PATH first, type checked, then reopened for reading so that read
// permission is checked too. Returns a read-only fd (O_DIRECTORY for directories).
struct UserOpen {
    int fd = -1;
    bool is_dir = false;
    uid_t owner = 0;
};
UserOpen open_as_user(const std::string& path, uid_t uid, gid_t gid, bool allow_files);
// The second half of open_as_user, for an O_PATH fd the caller opened (e.g. of "."): type check
// and reopen for reading with the user's rights. The O_PATH fd stays the caller's.
UserOpen reopen_as_user(int opath_fd, const std::string& what, bool allow_files, uid_t uid, gid_t gid);

// Runs fn in a child process that first drops every privilege for good (the launcher's own
// drop and check), and returns what fn returned. An Error thrown there is thrown here with the
// same exit code and message; the child's death by a signal is an Error(Internal). Used for
// all work on the user's own image store, so that root never reads or writes it.
std::string in_user_process(const Identity& id, const std::function<std::string()>& fn);


}  // namespace socker::launcher
