// LinuxSys: the only code that mounts, switches root, changes identity and execs.
#include "launcher/linux_sys.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "base/cpulist.hpp"
#include "base/error.hpp"
#include "base/fd.hpp"
#include "base/text.hpp"
#include "launcher/mount_policy.hpp"
#include "launcher/user_process.hpp"

namespace socker::launcher {

namespace {

// The image's own symlinks are followed inside the root (user-influenced mount points: their
// resolved destination is checked), or not at all (the launcher's own mount points).
int openat2_in_root(int rootfd, const std::string& rel, int flags, bool follow_symlinks = true) {
    return openat2_fd(
        rootfd, rel, flags,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (follow_symlinks ? 0ULL : RESOLVE_NO_SYMLINKS));
}

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
        int rc = eq == std::string::npos ? ::fsconfig(fs.get(), FSCONFIG_SET_FLAG, kv.c_str(), nullptr, 0)
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
    std::string opts =
        "lowerdir=" + lower + ",upperdir=" + runtime_dir + "/upper,workdir=" + runtime_dir + "/work";
    // userxattr: whiteouts and opaque markers of a user store are user.overlay.* (the user could
    // not set trusted.*); in this mode overlayfs also refuses redirects and metacopy, which
    // user-set xattrs could otherwise steer.
    if (layer_owner) opts += ",userxattr";
    std::string root = runtime_dir + "/root";
    if (::mount(spec.rootfs_source.c_str(), root.c_str(), "overlay", MS_NOSUID | MS_NODEV, opts.c_str()) !=
        0) {
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
    // (mount_policy.hpp: which mount points are the user's to influence, and their checks.)
    const bool by_user = user_influenced(op);
    if (by_user) check_destination(op.target, spec.denied_destinations, op.source);

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
            if (op.within_prefixes)  // where the opened source really is, not the path given
                check_within_prefixes(fd_path(src.get()), spec.bind_allowed_prefixes,
                                      op.user_bind ? "--bind " + op.source : op.source);
        }
    } else if (op.kind == MountKind::File || op.kind == MountKind::Symlink) {
        src_dir = false;
    }

    // Mount point, resolved inside the new root; created only on our own filesystems. The image's
    // symlinks are followed (inside the root) only for user-influenced mount points, whose
    // resolved destination is checked; the launcher's own (/proc, /dev, /sys, /tmp, ...) must not
    // be symlinks in the image: a bad image, not something to follow.
    const bool follow = by_user;
    auto symlinked = [&](const std::string& where) -> bool {
        if (errno != ELOOP || follow) return false;
        if (op.optional) return true;  // e.g. the image's /etc/resolv.conf: left as the image has it
        throw Error(Exit::BadImage, "image", where, 0,
                    "is a symlink in the image; the launcher mounts its own " + op.target +
                        " there and does not follow the image's symlinks");
    };
    const auto parts = path_components(op.target);
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
    const std::string inside = path_inside_root(fd_path(target.get()), root);
    if (by_user) check_destination(inside, spec.denied_destinations, op.target);
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
            Fd tree(::open_tree(src.get(), "",
                                AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
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
        case MountKind::Symlink:
            break;
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
    if (::mount_setattr(AT_FDCWD, "/", 0, &attr, sizeof attr) != 0)
        throw_errno("remount read-only", "/", errno);
}

void LinuxSys::set_binding(const CpuBinding& b) {
    if (!b.cpus.empty()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        for (unsigned c : parse_cpu_list(b.cpus, "cpus")) CPU_SET(c, &set);
        if (::sched_setaffinity(0, sizeof set, &set) != 0) throw_errno("sched_setaffinity", b.cpus, errno);
    }
    if (!b.mems.empty() && b.membind != topology::MemBind::None) {
        unsigned long mask[16] = {};
        for (unsigned n : parse_cpu_list(b.mems, "mems"))
            if (n < 16 * 64) mask[n / 64] |= 1UL << (n % 64);
        const int MPOL_BIND_ = 2, MPOL_INTERLEAVE_ = 3;
        int mode = b.membind == topology::MemBind::Interleave ? MPOL_INTERLEAVE_ : MPOL_BIND_;
        if (::syscall(SYS_set_mempolicy, mode, mask, 16 * 64 + 1) != 0)
            throw_errno("set_mempolicy", b.mems, errno);
    }
}

void LinuxSys::drop_bounding_set() {
    for (int cap = 0; cap <= 63; ++cap) {
        if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the last capability
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
            throw_errno("drop capability", std::to_string(cap), errno);
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
    struct __user_cap_header_struct h {
        _LINUX_CAPABILITY_VERSION_3, 0
    };
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
    struct __user_cap_header_struct h {
        _LINUX_CAPABILITY_VERSION_3, 0
    };
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

void LinuxSys::exec(const std::vector<std::string>& argv, const std::vector<std::string>& path,
                    const EnvMap& env) {
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
        if (errno == EACCES)
            saw = EACCES;
        else if (errno != ENOENT && errno != ENOTDIR) {
            int e = errno;
            throw Error(Exit::NotExecutable, "exec", full, e, "in the image");
        }
    }
    throw Error(saw == ENOENT ? Exit::NotFound : Exit::NotExecutable, "exec", cmd, saw,
                "not found in the image's PATH");
}

}  // namespace socker::launcher
