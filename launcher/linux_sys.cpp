// LinuxSys: the only code that mounts, switches root, changes identity and execs.
#include "linux_sys.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <climits>
#include <cstring>
#include <sstream>

#include "error.hpp"

namespace socker::launcher {

namespace {

int openat2_fd(int dirfd, const std::string& rel, int flags, unsigned long long resolve) {
    struct open_how how {};
    how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
    how.resolve = resolve;
    return static_cast<int>(::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how));
}

// The image's own symlinks are followed inside the root (user-influenced mount points: their
// resolved destination is checked), or not at all (the launcher's own mount points).
int openat2_in_root(int rootfd, const std::string& rel, int flags, bool follow_symlinks = true) {
    return openat2_fd(rootfd, rel, flags,
                      RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (follow_symlinks ? 0ULL : RESOLVE_NO_SYMLINKS));
}

std::vector<std::string> components(const std::string& p) {
    std::vector<std::string> out;
    std::istringstream in(p);
    std::string c;
    while (std::getline(in, c, '/'))
        if (!c.empty() && c != ".") out.push_back(c);
    return out;
}

// Destinations that no bind may cover: exact matches, and anything under the kernel trees.
void check_destination(const std::string& dst, const ContainerSpec& spec, const std::string& what) {
    for (const auto& d : spec.denied_destinations) {
        bool kernel_tree = d == "/proc" || d == "/sys" || d == "/dev";
        if (dst == d || (kernel_tree && path_under(dst, d)))
            throw_refused(what, "destination " + dst + " is not allowed");
    }
}

// For the scope: exactly the user's rights for filesystem access. fsuid/fsgid become the
// user's (the supplementary groups of a setuid process are the user's already), and the
// effective capability set is emptied: setfsuid alone clears only the filesystem capabilities,
// leaving e.g. CAP_SYS_PTRACE, with which /proc/PID/{root,cwd,fd} of other users' processes can
// be traversed. Restored (fsuid/fsgid 0, the effective set as it was) even on error.
class UserRights {
public:
    UserRights(uid_t uid, gid_t gid) {
        if (::syscall(SYS_capget, &hdr_, saved_) != 0) throw_errno("capget", "", errno);
        ::setfsgid(gid);
        ::setfsuid(uid);
        if (static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1))) != uid)
            throw Error(Exit::Internal, "setfsuid", std::to_string(uid), 0, "did not take effect");
        struct __user_cap_data_struct none[2] = {};
        for (int i = 0; i < 2; ++i) none[i].permitted = saved_[i].permitted, none[i].inheritable = saved_[i].inheritable;
        if (::syscall(SYS_capset, &hdr_, none) != 0) {
            restore();
            throw_errno("capset", "drop effective capabilities", errno);
        }
    }
    ~UserRights() { restore(); }
    UserRights(const UserRights&) = delete;
    UserRights& operator=(const UserRights&) = delete;

private:
    void restore() {
        ::setfsuid(0);
        ::setfsgid(0);
        ::syscall(SYS_capset, &hdr_, saved_);
    }
    struct __user_cap_header_struct hdr_ {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct saved_[2] = {};
};

void attach(int tree, int target, const std::string& what) {
    if (::move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
        throw_errno("move_mount", what, errno);
}

unsigned long long attrs_of(const MountOp& op) {
    unsigned long long a = 0;
    if (op.read_only) a |= MOUNT_ATTR_RDONLY;
    if (op.nosuid) a |= MOUNT_ATTR_NOSUID;
    if (op.nodev) a |= MOUNT_ATTR_NODEV;
    if (op.noexec) a |= MOUNT_ATTR_NOEXEC;
    return a;
}

Fd new_fs(const char* type, const std::string& options, const MountOp& op) {
    Fd fs(::fsopen(type, FSOPEN_CLOEXEC));
    if (fs.get() < 0) throw_errno("fsopen", type, errno);
    std::istringstream in(options);
    std::string kv;
    while (std::getline(in, kv, ',')) {
        if (kv.empty()) continue;
        auto eq = kv.find('=');
        int rc = eq == std::string::npos
                     ? ::fsconfig(fs.get(), FSCONFIG_SET_FLAG, kv.c_str(), nullptr, 0)
                     : ::fsconfig(fs.get(), FSCONFIG_SET_STRING, kv.substr(0, eq).c_str(),
                                  kv.substr(eq + 1).c_str(), 0);
        if (rc != 0) throw_errno("fsconfig", std::string(type) + " " + kv, errno);
    }
    if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
        throw_errno("fsconfig create", type, errno);
    Fd mnt(::fsmount(fs.get(), FSMOUNT_CLOEXEC, static_cast<unsigned>(attrs_of(op))));
    if (mnt.get() < 0) throw_errno("fsmount", type, errno);
    return mnt;
}

}  // namespace

std::string fd_path(int fd) {
    char buf[PATH_MAX];
    std::string link = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    if (n < 0) throw_errno("readlink", link, errno);
    return std::string(buf, static_cast<size_t>(n));
}

namespace {
// Type check, then reopen for reading: our own fd through /proc/self checks read permission on
// the very inode opened (with the caller's rights: run under UserRights).
UserOpen reopen_checked(int opath_fd, const std::string& what, bool allow_files) {
    struct stat st {};
    if (::fstat(opath_fd, &st) != 0) throw_errno("stat", what, errno);
    bool dir = S_ISDIR(st.st_mode);
    if (!dir && !(allow_files && S_ISREG(st.st_mode)))
        throw_refused(what, allow_files ? "not a directory or regular file" : "not a directory");
    std::string via = "/proc/self/fd/" + std::to_string(opath_fd);
    int rfd = ::open(via.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
    if (rfd < 0) throw_errno("open as user", what, errno, errno == EACCES ? Exit::Refused : Exit::Io);
    return {rfd, dir, st.st_uid};
}
}  // namespace

UserOpen open_as_user(const std::string& path, uid_t uid, gid_t gid, bool allow_files) {
    UserRights as_user(uid, gid);
    // No /proc magic links (/proc/PID/root, /proc/PID/cwd, /proc/self/fd/N): they jump past the
    // permission checks of the path they stand for.
    Fd p(openat2_fd(AT_FDCWD, path, O_PATH, RESOLVE_NO_MAGICLINKS));
    if (p.get() < 0) {
        const int e = errno;
        if (e == ELOOP)
            throw Error(Exit::Refused, "open as user", path, 0,
                        "goes through a /proc magic link (or too many symlinks): not followed");
        throw_errno("open as user", path, e, e == EACCES || e == EPERM ? Exit::Refused : Exit::Io);
    }
    return reopen_checked(p.get(), path, allow_files);
}

UserOpen reopen_as_user(int opath_fd, const std::string& what, bool allow_files, uid_t uid, gid_t gid) {
    UserRights as_user(uid, gid);
    return reopen_checked(opath_fd, what, allow_files);
}

std::string in_user_process(const Identity& id, const std::function<std::string()>& fn) {
    // A caller may have left SIGCHLD ignored (inherited across the setuid exec): then the
    // child would be reaped by the kernel and waitpid fail. Default for the call, restored after.
    struct SigchldDefault {
        struct sigaction old {};
        SigchldDefault() {
            struct sigaction dfl {};
            dfl.sa_handler = SIG_DFL;
            ::sigemptyset(&dfl.sa_mask);
            ::sigaction(SIGCHLD, &dfl, &old);
        }
        ~SigchldDefault() { ::sigaction(SIGCHLD, &old, nullptr); }
    } sigchld;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe", "user process", errno);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        int e = errno;
        ::close(p[0]);
        ::close(p[1]);
        throw_errno("fork", "user process", e);
    }
    if (pid == 0) {
        ::close(p[0]);
        // Reply: "<exit code>\n<result or message>".
        std::string reply;
        int code = 0;
        try {
            LinuxSys sys;
            drop_privileges(id, sys);
            reply = "0\n" + fn();
        } catch (const Error& e) {
            code = static_cast<int>(e.code());
            reply = std::to_string(code) + "\n" + e.what();
        } catch (const std::exception& e) {
            code = static_cast<int>(Exit::Internal);
            reply = std::to_string(code) + "\ninternal error: " + e.what();
        }
        for (size_t off = 0; off < reply.size();) {
            ssize_t n = ::write(p[1], reply.data() + off, reply.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            off += static_cast<size_t>(n);
        }
        std::fflush(nullptr);
        ::_exit(code);  // no destructors or atexit handlers of the parent's state
    }
    ::close(p[1]);
    // The reply is the user's data (an image record): bounded, so that the privileged parent
    // cannot be made to hold arbitrary amounts of it.
    constexpr size_t kMaxReply = 16u << 20;
    std::string reply;
    bool too_long = false;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(p[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (reply.size() + static_cast<size_t>(n) > kMaxReply) {
            too_long = true;
            ::kill(pid, SIGKILL);
            break;
        }
        reply.append(buf, static_cast<size_t>(n));
    }
    ::close(p[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw_errno("waitpid", "user process", errno);
    if (too_long) throw Error(Exit::BadImage, "user process", "", 0, "reply larger than 16 MiB");
    if (WIFSIGNALED(status))
        throw Error(Exit::Internal, "user process", "", 0, std::string("killed by signal ") + ::strsignal(WTERMSIG(status)));
    // "<code>\n<body>": the code must be the child's exit status, 0 or a launcher exit code.
    const auto nl = reply.find('\n');
    const std::string head = nl == std::string::npos ? "" : reply.substr(0, nl);
    const bool numeric = !head.empty() && head.size() <= 3 && head.find_first_not_of("0123456789") == std::string::npos;
    const int code = numeric ? std::stoi(head) : -1;
    if (!numeric || !WIFEXITED(status) || WEXITSTATUS(status) != code || (code != 0 && (code < 64 || code > 127)))
        throw Error(Exit::Internal, "user process", "", 0, "exited without a valid reply");
    if (code != 0) throw Error(static_cast<Exit>(code), reply.substr(nl + 1), {});
    return reply.substr(nl + 1);
}

void LinuxSys::unshare_mount_namespace() {
    if (::unshare(CLONE_NEWNS) != 0) throw_errno("unshare", "mount namespace", errno);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        throw_errno("make private", "/", errno);
}

std::string LinuxSys::mount_rootfs(const ContainerSpec& spec) {
    const std::string& runtime_dir = spec.runtime_dir;
    staging_ = runtime_dir;
    if (spec.layers.empty()) throw Error(Exit::BadImage, "image", "", 0, "has no layers");
    // Held shared from before the layers are opened until the overlay holds them: the store's
    // garbage collection takes it exclusively to decide which layers no container uses.
    Fd lock;
    if (!spec.store_lock.empty()) {
        lock = Fd(::open(spec.store_lock.c_str(), O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (lock.get() < 0) throw_errno("open", spec.store_lock, errno);
        while (::flock(lock.get(), LOCK_SH) != 0)
            if (errno != EINTR) throw_errno("lock", spec.store_lock, errno);
    }
    // Layers of a per-user store: each directory is opened with the user's credentials (so a
    // symlink or a path the user could not read gets nothing more for being in their store) and
    // must be the user's own; overlayfs gets it as /proc/self/fd/N, the very inode checked.
    const Identity* layer_owner = spec.layers_owned_by_user ? &spec.id : nullptr;
    std::vector<Fd> held;
    std::vector<std::string> lowers;
    for (const auto& l : spec.layers) {
        if (!layer_owner) {
            lowers.push_back(l);
            continue;
        }
        UserOpen uo = open_as_user(l, layer_owner->uid, layer_owner->gid, false);
        held.emplace_back(uo.fd);
        if (uo.owner != layer_owner->uid)
            throw_refused(l, "image layer owned by uid " + std::to_string(uo.owner) + ", not by the user");
        lowers.push_back("/proc/self/fd/" + std::to_string(uo.fd));
    }
    if (::mount("socker-mpi", runtime_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") != 0)
        throw_errno("mount tmpfs", runtime_dir, errno);
    for (const char* d : {"/upper", "/work", "/root", "/files"})
        if (::mkdir((runtime_dir + d).c_str(), 0755) != 0) throw_errno("mkdir", runtime_dir + d, errno);
    std::string lower;
    for (auto it = lowers.rbegin(); it != lowers.rend(); ++it) lower += (lower.empty() ? "" : ":") + *it;
    std::string opts = "lowerdir=" + lower + ",upperdir=" + runtime_dir + "/upper,workdir=" + runtime_dir + "/work";
    // userxattr: whiteouts and opaque markers of a user store are user.overlay.* (the user could
    // not set trusted.*); in this mode overlayfs also refuses redirects and metacopy, which
    // user-set xattrs could otherwise steer.
    if (layer_owner) opts += ",userxattr";
    const std::string root = runtime_dir + "/root";
    if (::mount(spec.rootfs_source.c_str(), root.c_str(), "overlay", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
        const int e = errno;
        // A layer removed since the image was looked up (image rm racing this launch).
        throw_errno("mount overlay", root, e, Exit::BadImage);
    }
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0) throw_errno("stat", root, errno);
    own_devs_.insert(st.st_dev);
    return root;
}

void LinuxSys::apply_mount(const std::string& root, const MountOp& op, const ContainerSpec& spec) {
    Fd rootfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (rootfd.get() < 0) throw_errno("open", root, errno);
    // Destinations influenced by the user (binds, home, cwd, PMIx dirs) are checked; the
    // launcher's own mounts (/proc, /dev, ...) are what the deny list protects.
    const bool user_influenced = op.kind == MountKind::Bind && op.check != SourceCheck::Trusted;
    if (user_influenced) check_destination(op.target, spec, op.source);

    // Source first: it decides whether the mount point is a directory or a file.
    Fd src;
    bool src_dir = true;
    if (op.kind == MountKind::Bind) {
        if (op.check == SourceCheck::Trusted) {
            src = Fd(::open(op.source.c_str(), O_PATH | O_CLOEXEC));
            if (src.get() < 0) {
                if (errno == ENOENT && op.optional) return;
                throw_errno("open", op.source, errno);
            }
            struct stat st {};
            if (::fstat(src.get(), &st) != 0) throw_errno("stat", op.source, errno);
            src_dir = S_ISDIR(st.st_mode);
        } else {
            UserOpen uo;
            try {
                if (op.source_is_cwd) {
                    // unshare(CLONE_NEWNS) moved the working directory to the new namespace's copy
                    // of its mount: "." is the same directory, mountable from this namespace.
                    const Fd here(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
                    if (here.get() < 0) throw_errno("open", "working directory " + op.source, errno);
                    uo = reopen_as_user(here.get(), op.source, false, spec.id.uid, spec.id.gid);
                } else {
                    uo = open_as_user(op.source, spec.id.uid, spec.id.gid, op.user_bind);
                }
            } catch (const Error& e) {
                if (e.err() == ENOENT && op.optional) return;
                throw;
            }
            src = Fd(uo.fd);
            src_dir = uo.is_dir;
            if (op.check == SourceCheck::OwnedByUser && uo.owner != spec.id.uid)
                throw_refused(op.source, "owned by uid " + std::to_string(uo.owner) + ", not by the user");
            if (op.within_prefixes) {  // where the opened source really is, not the path given
                std::string real = fd_path(src.get());
                bool ok = false;
                for (const auto& p : spec.bind_allowed_prefixes) ok = ok || path_under(real, p);
                if (!ok)
                    throw_refused(op.user_bind ? "--bind " + op.source : op.source,
                                  real + " is outside the allowed bind sources");
            }
        }
    } else if (op.kind == MountKind::File || op.kind == MountKind::Symlink) {
        src_dir = false;
    }

    // Mount point, resolved inside the new root; created only on our own filesystems. The image's
    // symlinks are followed (inside the root) only for user-influenced mount points, whose
    // resolved destination is checked; the launcher's own (/proc, /dev, /sys, /tmp, ...) must not
    // be symlinks in the image: a bad image, not something to follow.
    const bool follow = user_influenced;
    auto symlinked = [&](const std::string& where) -> bool {
        if (errno != ELOOP || follow) return false;
        if (op.optional) return true;  // e.g. the image's /etc/resolv.conf: left as the image has it
        throw Error(Exit::BadImage, "image", where, 0,
                    "is a symlink in the image; the launcher mounts its own " + op.target +
                        " there and does not follow the image's symlinks");
    };
    const auto parts = components(op.target);
    if (parts.empty()) throw_refused(op.target, "cannot mount onto /");
    Fd dir(::dup(rootfd.get()));
    std::string so_far;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        so_far += "/" + parts[i];
        int fd = openat2_in_root(rootfd.get(), so_far, O_PATH | O_DIRECTORY, follow);
        if (fd < 0 && symlinked(so_far)) return;
        if (fd < 0 && errno == ENOENT) {
            struct stat pst {};
            if (::fstat(dir.get(), &pst) != 0) throw_errno("stat", so_far, errno);
            if (!own_devs_.count(pst.st_dev))
                throw_refused(op.target, "mount point parent " + so_far + " does not exist");
            if (::mkdirat(dir.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST)
                throw_errno("mkdir", so_far, errno);
            fd = openat2_in_root(rootfd.get(), so_far, O_PATH | O_DIRECTORY, follow);
        }
        if (fd < 0) throw_errno("resolve in root", so_far, errno);
        dir = Fd(fd);
    }
    const std::string& name = parts.back();

    if (op.kind == MountKind::Symlink) {
        struct stat pst {};
        if (::fstat(dir.get(), &pst) != 0 || !own_devs_.count(pst.st_dev))
            throw_refused(op.target, "symlink outside launcher-owned filesystems");
        if (::symlinkat(op.data.c_str(), dir.get(), name.c_str()) != 0 && errno != EEXIST)
            throw_errno("symlink", op.target, errno);
        return;
    }

    Fd target(openat2_in_root(rootfd.get(), op.target, O_PATH, follow));
    if (target.get() < 0 && symlinked(op.target)) return;
    if (target.get() < 0 && errno == ENOENT) {
        struct stat pst {};
        if (::fstat(dir.get(), &pst) != 0) throw_errno("stat", op.target, errno);
        if (!own_devs_.count(pst.st_dev))
            throw_refused(op.target, "mount point does not exist in a host directory");
        int rc = src_dir ? ::mkdirat(dir.get(), name.c_str(), 0755)
                         : ::mknodat(dir.get(), name.c_str(), S_IFREG | 0644, 0);
        if (rc != 0 && errno != EEXIST) throw_errno("create mount point", op.target, errno);
        target = Fd(openat2_in_root(rootfd.get(), op.target, O_PATH, follow));
    }
    if (target.get() < 0) throw_errno("resolve in root", op.target, errno);
    // Where did the target really land? (The image's own symlinks are followed inside the root.)
    std::string real = fd_path(target.get());
    std::string inside = real.size() > root.size() ? real.substr(root.size()) : "/";
    if (real.compare(0, root.size(), root) != 0) inside = real;  // on a mount below the root
    if (user_influenced) check_destination(inside, spec, op.target);
    struct stat tst {};
    if (::fstat(target.get(), &tst) != 0) throw_errno("stat", op.target, errno);
    if (S_ISDIR(tst.st_mode) != src_dir)
        throw_refused(op.target, src_dir ? "mount point is not a directory" : "mount point is a directory");

    switch (op.kind) {
        case MountKind::Bind:
        case MountKind::File: {
            if (op.kind == MountKind::File) {
                std::string path = staging_ + "/files/" + std::to_string(file_counter_++);
                Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
                if (f.get() < 0) throw_errno("create", path, errno);
                if (::write(f.get(), op.data.data(), op.data.size()) != static_cast<ssize_t>(op.data.size()))
                    throw_errno("write", path, errno);
                src = Fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
                if (src.get() < 0) throw_errno("open", path, errno);
            }
            Fd tree(::open_tree(src.get(), "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
            if (tree.get() < 0) throw_errno("open_tree", op.source, errno);
            MountOp eff = op;
            if (op.kind == MountKind::File) eff.read_only = true;
            struct mount_attr attr {};
            attr.attr_set = attrs_of(eff);
            if (attr.attr_set &&
                ::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
                throw_errno("mount_setattr", op.source, errno);
            attach(tree.get(), target.get(), op.target);
            break;
        }
        case MountKind::Tmpfs:
        case MountKind::Proc: {
            Fd mnt = new_fs(op.kind == MountKind::Proc ? "proc" : "tmpfs", op.data, op);
            attach(mnt.get(), target.get(), op.target);
            if (op.kind == MountKind::Tmpfs) {
                struct stat st {};
                if (::fstat(mnt.get(), &st) == 0) own_devs_.insert(st.st_dev);
            }
            break;
        }
        case MountKind::Symlink: break;
    }
}

void LinuxSys::pivot_root(const std::string& new_root) {
    if (::chdir(new_root.c_str()) != 0) throw_errno("chdir", new_root, errno);
    if (::syscall(SYS_pivot_root, ".", ".") != 0) throw_errno("pivot_root", new_root, errno);
    if (::umount2(".", MNT_DETACH) != 0) throw_errno("detach old root", "/", errno);
    if (::chdir("/") != 0) throw_errno("chdir", "/", errno);
}

void LinuxSys::make_root_readonly() {
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (::mount_setattr(AT_FDCWD, "/", 0, &attr, sizeof attr) != 0) throw_errno("remount read-only", "/", errno);
}

namespace {
std::vector<int> parse_list(const std::string& s) {
    std::vector<int> out;
    std::istringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
        auto dash = item.find('-');
        int a = std::stoi(item.substr(0, dash));
        int b = dash == std::string::npos ? a : std::stoi(item.substr(dash + 1));
        for (int i = a; i <= b; ++i) out.push_back(i);
    }
    return out;
}
}  // namespace

void LinuxSys::set_binding(const CpuBinding& b) {
    if (!b.cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int c : parse_list(b.cpus)) CPU_SET(c, &set);
        if (::sched_setaffinity(0, sizeof set, &set) != 0) throw_errno("sched_setaffinity", b.cpus, errno);
    }
    if (!b.mems.empty() && b.membind != "none" && !b.membind.empty()) {
        unsigned long mask[16] = {};
        for (int n : parse_list(b.mems))
            if (n >= 0 && n < 16 * 64) mask[n / 64] |= 1UL << (n % 64);
        const int MPOL_BIND_ = 2, MPOL_INTERLEAVE_ = 3;
        int mode = b.membind == "interleave" ? MPOL_INTERLEAVE_ : MPOL_BIND_;
        if (::syscall(SYS_set_mempolicy, mode, mask, 16 * 64 + 1) != 0)
            throw_errno("set_mempolicy", b.mems, errno);
    }
}

void LinuxSys::drop_bounding_set() {
    for (int cap = 0; cap <= 63; ++cap) {
        if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the last capability
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) throw_errno("drop capability", std::to_string(cap), errno);
    }
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

void LinuxSys::set_groups(const std::vector<gid_t>& groups) {
    if (::setgroups(groups.size(), groups.data()) != 0) throw_errno("setgroups", "", errno);
}
void LinuxSys::set_resgid(gid_t gid) {
    if (::setresgid(gid, gid, gid) != 0) throw_errno("setresgid", std::to_string(gid), errno);
}
void LinuxSys::set_resuid(uid_t uid) {
    if (::setresuid(uid, uid, uid) != 0) throw_errno("setresuid", std::to_string(uid), errno);
    // For uid 0 setresuid keeps the capabilities: clear them explicitly, for everyone.
    struct __user_cap_header_struct h {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {};
    if (::syscall(SYS_capset, &h, d) != 0) throw_errno("capset", "", errno);
}

void LinuxSys::verify_dropped(uid_t uid, gid_t gid) {
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (::getresuid(&r, &e, &s) != 0 || r != uid || e != uid || s != uid)
        throw Error(Exit::Internal, "verify identity", "uid", 0, "root uid remains");
    if (::getresgid(&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid)
        throw Error(Exit::Internal, "verify identity", "gid", 0, "root gid remains");
    struct __user_cap_header_struct h {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {};
    if (::syscall(SYS_capget, &h, d) != 0) throw_errno("capget", "", errno);
    for (auto& x : d)
        if (x.effective || x.permitted || x.inheritable)
            throw Error(Exit::Internal, "verify identity", "capabilities", 0, "capabilities remain");
    if (::prctl(PR_CAPBSET_READ, 0, 0, 0, 0) != 0)
        throw Error(Exit::Internal, "verify identity", "bounding set", 0, "not empty");
}

void LinuxSys::set_no_new_privs() {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw_errno("no_new_privs", "", errno);
}

void LinuxSys::set_umask(mode_t mask) { ::umask(mask); }

void LinuxSys::chdir(const std::string& dir) {
    if (::chdir(dir.c_str()) != 0) throw_errno("chdir", dir, errno);
}

void LinuxSys::exec(const std::vector<std::string>& argv, const std::vector<std::string>& path, const EnvMap& env) {
    std::vector<std::string> envs = env_to_vector(env);
    std::vector<char*> cargv, cenv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);
    const std::string& cmd = argv.at(0);
    if (cmd.find('/') != std::string::npos) {
        ::execve(cmd.c_str(), cargv.data(), cenv.data());
        int e = errno;
        throw Error(e == ENOENT ? Exit::NotFound : Exit::NotExecutable, "exec", cmd, e, "in the image");
    }
    int saw = ENOENT;
    for (const auto& d : path) {
        std::string full = d + "/" + cmd;
        ::execve(full.c_str(), cargv.data(), cenv.data());
        if (errno == EACCES) saw = EACCES;
        else if (errno != ENOENT && errno != ENOTDIR) {
            int e = errno;
            throw Error(Exit::NotExecutable, "exec", full, e, "in the image");
        }
    }
    throw Error(saw == ENOENT ? Exit::NotFound : Exit::NotExecutable, "exec", cmd, saw,
                "not found in the image's PATH");
}

}  // namespace socker::launcher
