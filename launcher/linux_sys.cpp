// LinuxSys: the only code that mounts, switches root, changes identity and execs.
#include "launcher/linux_sys.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/loop.h>
#include <linux/nsfs.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "base/cpulist.hpp"
#include "base/error.hpp"
#include "base/fd.hpp"
#include "base/file.hpp"
#include "base/text.hpp"
#include "image/digest.hpp"
#include "image/in_use.hpp"
#include "image/squashfs.hpp"
#include "launcher/mount_policy.hpp"
#include "launcher/sharing.hpp"
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

// A /proc file of another process; "" when it cannot be read (the process is gone).
std::string read_proc(const std::string& path, size_t limit) {
    const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (fd.get() < 0) return {};
    try {
        return read_fd(fd.get(), path, limit);
    } catch (const Error&) {
        return {};
    }
}

bool same_inode(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// How long a rank waits for another rank of its step to finish building the container, before
// it builds its own: set-up takes milliseconds; this bounds what a stopped or stuck one costs.
constexpr int kSetupWaitSeconds = 10;
constexpr int kBuildNice = -10;

extern "C" void on_alarm(int) {}

// flock(op), for at most `seconds`: an interval timer interrupts it (SIGALRM unblocked and
// caught meanwhile; the caller's timer, handler and mask are put back). false: timed out.
bool lock_within(int fd, int op, int seconds) {
    struct sigaction sa {
    }, old_sa{};
    sa.sa_handler = on_alarm;  // no SA_RESTART: flock returns EINTR
    sigemptyset(&sa.sa_mask);
    sigset_t alrm, old_mask;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    struct itimerval t {
    }, old_t{}, left{};
    t.it_value.tv_sec = seconds;
    ::sigaction(SIGALRM, &sa, &old_sa);
    ::sigprocmask(SIG_UNBLOCK, &alrm, &old_mask);
    ::setitimer(ITIMER_REAL, &t, &old_t);
    int rc;
    while ((rc = ::flock(fd, op)) != 0 && errno == EINTR) {
        ::getitimer(ITIMER_REAL, &left);
        if (left.it_value.tv_sec == 0 && left.it_value.tv_usec == 0) break;  // it fired
    }
    const struct itimerval zero {};
    ::setitimer(ITIMER_REAL, old_t.it_value.tv_sec || old_t.it_value.tv_usec ? &old_t : &zero, nullptr);
    ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    ::sigaction(SIGALRM, &old_sa, nullptr);
    return rc == 0;
}

// The admin's squashfs file, verified: a root-owned regular file not writable by others, a sane
// superblock, and a sha256 equal to its name -- hashed once per node and version of the file (a
// stamp in `stamps` holds dev, inode, size, mtime and ctime of the file last verified; any
// write changes the ctime, which nobody can set back). Anything else: a bad image (65), never
// mounted. Returns the open file.
Fd verified_squashfs(const ContainerSpec& spec) {
    const std::string& path = spec.squashfs_file;
    Fd f(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (f.get() < 0 || ::fstat(f.get(), &st) != 0) throw_errno("open", path, errno, Exit::BadImage);
    if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) != 0)
        throw Error(Exit::BadImage, "squashfs", path, 0, "not a root-owned file closed to others");
    std::string head(96, '\0');
    const ssize_t got = ::pread(f.get(), head.data(), head.size(), 0);
    head.resize(got > 0 ? static_cast<size_t>(got) : 0);
    if (const std::string why =
            image::squashfs_superblock_problem(head, static_cast<unsigned long long>(st.st_size));
        !why.empty())
        throw Error(Exit::BadImage, "squashfs", path, 0, "corrupted: " + why);
    char key[160];
    std::snprintf(key, sizeof key, "%lu %lu %lld %lld.%09ld %lld.%09ld\n",
                  static_cast<unsigned long>(st.st_dev), static_cast<unsigned long>(st.st_ino),
                  static_cast<long long>(st.st_size), static_cast<long long>(st.st_mtim.tv_sec),
                  st.st_mtim.tv_nsec, static_cast<long long>(st.st_ctim.tv_sec), st.st_ctim.tv_nsec);
    const std::string stamp = spec.squashfs_stamps + "/" + spec.squashfs_sha256;
    try {
        if (read_file(stamp, 4096) == key) return f;
    } catch (const Error&) {
        // not verified on this node yet (or the stamp is unreadable): hash it
    }
    if (const std::string got_sha = image::sha256_of_fd(f.get(), path, Exit::BadImage);
        got_sha != spec.squashfs_sha256)
        throw Error(Exit::BadImage, "squashfs", path, 0,
                    "corrupted: its sha256 is " + got_sha.substr(0, 12) + ", the image names " +
                        spec.squashfs_sha256.substr(0, 12));
    // The stamp: root's, in the node-local state directory (best effort: without it, the next
    // launch hashes again).
    if (::mkdir(spec.squashfs_stamps.c_str(), 0700) == 0 || errno == EEXIST) {
        try {
            write_atomically(stamp, key, 0600);
        } catch (const Error&) {
            // no stamp: the next launch hashes again
        }
    }
    return f;
}

// Where every squashfs container keeps its image mount reachable (read-only, nosuid, nodev; the
// same tree as its root's lower layer), so that the next step's container on the node can take
// the same mount instead of a loop device of its own.
constexpr const char* kImageMount = "/dev/.socker-mpi-image";
constexpr unsigned long kSquashfsMagic = 0x73717368;

// A clone of the mount at kImageMount in the mount namespace `ns` (open_tree clones only mounts
// of the caller's own namespace: entered for the call, then ours again, and the working
// directory put back). Invalid Fd: none there.
Fd clone_in_namespace(int ns, int own_ns) {
    const Fd cwd(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (cwd.get() < 0 || ::setns(ns, CLONE_NEWNS) != 0) return Fd();
    Fd tree(static_cast<int>(::open_tree(AT_FDCWD, kImageMount, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
    if (::setns(own_ns, CLONE_NEWNS) != 0 || ::fchdir(cwd.get()) != 0)
        throw Error(Exit::Internal, "setns", "back to the container's namespace", errno);
    return tree;
}

// The squashfs mount of a running container on this node that is this very file: a container
// (any user's: the image is the admin's, read-only; its namespace made by root, owned by the
// initial user namespace) with a mount at kImageMount, cloned, and kept only if it is a squashfs
// filesystem on a loop device whose backing file is `file` (device and inode, from the loop
// driver itself) -- whatever process it came from, it is the verified file -- made read-only,
// nosuid, nodev again on our clone. Invalid Fd: none.
Fd borrow_squashfs(int file) {
    struct stat want {};
    if (::fstat(file, &want) != 0) return Fd();
    const Fd own(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
    struct stat own_user {};
    if (own.get() < 0 || ::stat("/proc/self/ns/user", &own_user) != 0) return Fd();
    Fd found;
    image::for_each_mount_namespace("/proc", [&](const std::string& pid, const std::string& mi) {
        if (mi.find(std::string(" ") + kImageMount + " ") == std::string::npos) return true;
        const Fd ns_fd(::open(("/proc/" + pid + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC));
        if (ns_fd.get() < 0) return true;
        const Fd owner(::ioctl(ns_fd.get(), NS_GET_USERNS));
        struct stat owner_st {};
        if (owner.get() < 0 || ::fstat(owner.get(), &owner_st) != 0 || !same_inode(owner_st, own_user))
            return true;
        Fd tree = clone_in_namespace(ns_fd.get(), own.get());
        if (tree.get() < 0) return true;
        struct statfs sfs {};
        struct stat st {};
        if (::fstatfs(tree.get(), &sfs) != 0 || static_cast<unsigned long>(sfs.f_type) != kSquashfsMagic ||
            ::fstat(tree.get(), &st) != 0 || major(st.st_dev) != 7)
            return true;
        const Fd loop(::open(("/dev/loop" + std::to_string(minor(st.st_dev))).c_str(), O_RDONLY | O_CLOEXEC));
        struct loop_info64 info {};
        if (loop.get() < 0 || ::ioctl(loop.get(), LOOP_GET_STATUS64, &info) != 0) return true;
        if (info.lo_device != want.st_dev || info.lo_inode != want.st_ino) return true;
        struct mount_attr attr {};
        attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) return true;
        found = std::move(tree);
        return false;
    });
    return found;
}

// A free loop device bound read-only to `file`, with autoclear: it detaches by itself when its
// last user goes (the mount, or this fd if the launch dies before mounting) -- no stale loop
// device whatever kills the rank. Returns the open device and its path.
std::pair<Fd, std::string> attach_loop(int file, const std::string& what) {
    const Fd ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    if (ctl.get() < 0) throw_errno("open", "/dev/loop-control", errno);
    for (int attempt = 0; attempt < 32; ++attempt) {
        const int n = ::ioctl(ctl.get(), LOOP_CTL_GET_FREE);
        if (n < 0) throw_errno("loop-control", "get a free loop device", errno);
        const std::string dev = "/dev/loop" + std::to_string(n);
        Fd d(::open(dev.c_str(), O_RDONLY | O_CLOEXEC));
        if (d.get() < 0) throw_errno("open", dev, errno);
        struct loop_config cfg {};
        cfg.fd = static_cast<unsigned>(file);
        cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
        std::snprintf(reinterpret_cast<char*>(cfg.info.lo_file_name), LO_NAME_SIZE, "%s", what.c_str());
        if (::ioctl(d.get(), LOOP_CONFIGURE, &cfg) == 0) return {std::move(d), dev};
        if (errno != EBUSY) throw_errno("loop configure", dev, errno);
        // taken by someone else between GET_FREE and CONFIGURE: the next one
    }
    throw Error(Exit::Io, "loop device", what, EBUSY, "none free after 32 attempts");
}

// The pids listed in a cgroup directory's cgroup.procs.
void cgroup_procs(int dir, const char* sub, std::vector<long>& out) {
    const Fd f(::openat(dir, sub, O_RDONLY | O_CLOEXEC));
    if (f.get() < 0) return;
    std::string text;
    try {
        text = read_fd(f.get(), "cgroup.procs", 4u << 20);
    } catch (const Error&) {
        return;
    }
    const char* p = text.c_str();
    while (*p) {
        char* end = nullptr;
        const long pid = std::strtol(p, &end, 10);
        if (end == p) break;
        if (pid > 0) out.push_back(pid);
        p = end;
        while (*p == '\n') ++p;
    }
}

}  // namespace

// One container per node (SECURITY.md "One container per node"). The ranks of the step are the
// processes in its cgroup: a rank whose mount namespace is a finished socker-mpi container of
// this user, step and key is joined. The rank that builds holds the step's set-up lock (a flock
// on the cgroup directory, gone with its holder, nothing left on disk); the ranks arriving
// meanwhile wait for it, with a shared lock, and then join what it built -- trying the builder
// itself first (one verification instead of a scan of the whole step).
bool LinuxSys::join_shared(const ContainerSpec& spec) {
    Fd dir(::open(spec.share->cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) return false;  // no step directory to find the others by: build alone
    if (::flock(dir.get(), LOCK_EX | LOCK_NB) == 0) {
        // Nobody builds now: a container already there is joined (the lock goes with `dir`),
        // else this rank builds, holding the lock until end_setup().
        if (join_found(spec, dir.get())) return true;
        begin_build(std::move(dir));
        return false;
    }
    if (errno != EWOULDBLOCK) return false;
    // Someone builds, or looks. Waited for only when that is a process of this very step (any
    // user can open the directory and lock it: that must not stall other users' launches).
    const long holder = lock_holder_in_step(spec, dir.get());
    if (holder < 0 || !lock_within(dir.get(), LOCK_SH, kSetupWaitSeconds)) return false;  // build alone
    if ((holder > 0 && join_verified(spec, holder)) || join_found(spec, dir.get())) return true;
    // Nothing to join (the builder died, or built another spec's container): build, exclusively.
    if (!lock_within(dir.get(), LOCK_EX, kSetupWaitSeconds)) return false;
    if (join_found(spec, dir.get())) return true;
    begin_build(std::move(dir));
    return false;
}

// The build is what every other rank of the step on this node waits for: it runs at a higher
// priority (nice -10, root's to set) than theirs, so that their own start-up does not starve it;
// the caller's nice value is back before anything of the user's runs (end_setup()).
void LinuxSys::begin_build(Fd lock) {
    setup_lock_ = std::move(lock);
    errno = 0;
    const int nice = ::getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && nice > kBuildNice && ::setpriority(PRIO_PROCESS, 0, kBuildNice) == 0)
        saved_nice_ = nice;
}

void LinuxSys::end_setup() {
    setup_lock_ = Fd();
    if (saved_nice_ && ::setpriority(PRIO_PROCESS, 0, *saved_nice_) != 0)
        throw_errno("setpriority", std::to_string(*saved_nice_), errno);
    saved_nice_.reset();
}

bool LinuxSys::join_found(const ContainerSpec& spec, int step_dir) {
    std::vector<long> pids;
    cgroup_procs(step_dir, "cgroup.procs", pids);
    if (spec.share->tasks_below) {
        const int d = ::openat(step_dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (DIR* ds = d >= 0 ? ::fdopendir(d) : nullptr) {
            while (const dirent* e = ::readdir(ds))
                if (e->d_type == DT_DIR && std::strncmp(e->d_name, "task_", 5) == 0)
                    cgroup_procs(step_dir, (std::string(e->d_name) + "/cgroup.procs").c_str(), pids);
            ::closedir(ds);
        } else if (d >= 0) {
            ::close(d);
        }
    }
    // One process per mount namespace is looked at; the host's (this rank's own) is skipped.
    struct stat own {};
    if (::stat("/proc/self/ns/mnt", &own) != 0) return false;
    std::vector<struct stat> seen = {own};
    const long self = ::getpid();
    for (const long pid : pids) {
        if (pid == self) continue;
        struct stat ns {};
        if (::stat(("/proc/" + std::to_string(pid) + "/ns/mnt").c_str(), &ns) != 0) continue;
        bool known = false;
        for (const auto& s : seen) known = known || same_inode(s, ns);
        if (known) continue;
        seen.push_back(ns);
        if (join_verified(spec, pid)) return true;
    }
    return false;
}

bool LinuxSys::join_verified(const ContainerSpec& spec, long pid) {
    // The process is pinned by a pidfd (its pid cannot be reused while it lives: checked after
    // reading), its namespace by an fd (the one verified is the one joined).
    const Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0)));
    if (pidfd.get() < 0) return false;
    const std::string proc = "/proc/" + std::to_string(pid);
    const Fd ns(::open((proc + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC));
    struct stat ns_st {};
    if (ns.get() < 0 || ::fstat(ns.get(), &ns_st) != 0) return false;
    Candidate c;
    c.real_uid = real_uid_from_status(read_proc(proc + "/status", 64u << 10));
    if (!c.real_uid || *c.real_uid != static_cast<long>(spec.id.uid)) return false;  // cheap, first
    c.cgroups = read_proc(proc + "/cgroup", 64u << 10);
    c.mountinfo = read_proc(proc + "/mountinfo", 4u << 20);
    // Still the namespace held, and still that process.
    struct stat again {};
    if (::stat((proc + "/ns/mnt").c_str(), &again) != 0 || !same_inode(again, ns_st)) return false;
    if (::syscall(SYS_pidfd_send_signal, pidfd.get(), 0, nullptr, 0) != 0) return false;
    // Owned by the initial user namespace (this process's): made by root, not by a user.
    const Fd owner(::ioctl(ns.get(), NS_GET_USERNS));
    struct stat owner_st {
    }, own_user{};
    c.init_userns = owner.get() >= 0 && ::fstat(owner.get(), &owner_st) == 0 &&
                    ::stat("/proc/self/ns/user", &own_user) == 0 && same_inode(owner_st, own_user);
    if (!why_not_joinable(c, spec).empty()) return false;
    return ::setns(ns.get(), CLONE_NEWNS) == 0;
}

long LinuxSys::lock_holder_in_step(const ContainerSpec& spec, int step_dir) {
    struct stat st {};
    if (::fstat(step_dir, &st) != 0) return -1;
    const auto holders =
        flock_holders(read_proc("/proc/locks", 16u << 20), major(st.st_dev), minor(st.st_dev), st.st_ino);
    if (holders.empty()) return 0;  // released since: the wait is over at once
    for (const long pid : holders) {
        const std::string proc = "/proc/" + std::to_string(pid);
        const auto uid = real_uid_from_status(read_proc(proc + "/status", 64u << 10));
        if (!uid || *uid != static_cast<long>(spec.id.uid)) continue;
        std::istringstream cg(read_proc(proc + "/cgroup", 64u << 10));
        for (std::string line; std::getline(cg, line);)
            if (in_step(line, *spec.share)) return pid;
    }
    return -1;
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
    // A squashfs image: its one file, verified, on a loop device, mounted read-only as the only
    // lower layer (below, once the staging tmpfs is there).
    Fd squashfs;
    if (!spec.squashfs_file.empty()) squashfs = verified_squashfs(spec);
    for (const auto& l : squashfs.valid() ? std::vector<std::string>{} : spec.layers) {
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
    for (const char* d : {"/upper", "/work", "/root", "/files", "/sqfs"})
        if (::mkdir((runtime_dir + d).c_str(), 0755) != 0) throw_errno("mkdir", runtime_dir + d, errno);
    if (squashfs.valid()) {
        // The node's mount of this file, taken from a running container when there is one; else
        // a loop device of our own. Either way the mount lives in the containers' namespaces
        // only, and it (and the loop device) goes when the last of them does: one per node while
        // any step uses it, none after, nothing to clean up.
        const std::string at = runtime_dir + "/sqfs";
        if (Fd shared = borrow_squashfs(squashfs.get()); shared.valid()) {
            const Fd dir(::open(at.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (dir.get() < 0) throw_errno("open", at, errno);
            attach(shared.get(), dir.get(), "the node's mount of " + spec.squashfs_file);
        } else {
            const auto [loop, dev] = attach_loop(squashfs.get(), spec.squashfs_file);
            if (::mount(dev.c_str(), at.c_str(), "squashfs", MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
                throw_errno("mount squashfs", spec.squashfs_file, errno, Exit::BadImage);
        }
        image_mount_ =
            Fd(static_cast<int>(::open_tree(AT_FDCWD, at.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
        if (image_mount_.get() < 0) throw_errno("open_tree", at, errno);
        lowers = {at};
    }
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

// The source of a bind (the launcher's own, or opened with the user's rights and checked) or of
// a File (written to the staging tmpfs). nullopt: an optional source that is not there.
std::optional<LinuxSys::Source> LinuxSys::open_source(const MountOp& op, const ContainerSpec& spec) {
    if (op.kind == MountKind::File) {
        std::string path = staging_ + "/files/" + std::to_string(file_counter_++);
        Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (f.get() < 0) throw_errno("create", path, errno);
        if (::write(f.get(), op.data.data(), op.data.size()) != static_cast<ssize_t>(op.data.size()))
            throw_errno("write", path, errno);
        Fd src(::open(path.c_str(), O_PATH | O_CLOEXEC));
        if (src.get() < 0) throw_errno("open", path, errno);
        return Source{std::move(src), false};
    }
    if (op.kind != MountKind::Bind)  // a new filesystem on a directory, or a node or symlink
        return Source{Fd(), op.kind == MountKind::Tmpfs || op.kind == MountKind::Proc};
    if (op.check == SourceCheck::Trusted) {
        Fd src(::open(op.source.c_str(), O_PATH | O_CLOEXEC));
        if (src.get() < 0) {
            if (errno == ENOENT && op.optional) return std::nullopt;
            throw_errno("open", op.source, errno);
        }
        struct stat st {};
        if (::fstat(src.get(), &st) != 0) throw_errno("stat", op.source, errno);
        const bool dir = S_ISDIR(st.st_mode);
        return Source{std::move(src), dir};
    }
    UserOpen uo;
    try {
        if (op.source_is_cwd) {
            // unshare(CLONE_NEWNS) moved the working directory to the new namespace's copy of its
            // mount: "." is the same directory, mountable from this namespace.
            const Fd here(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (here.get() < 0) throw_errno("open", "working directory " + op.source, errno);
            uo = reopen_as_user(here.get(), op.source, false, spec.id.uid, spec.id.gid);
        } else {
            uo = open_as_user(op.source, spec.id.uid, spec.id.gid, op.user_bind);
        }
    } catch (const Error& e) {
        if (e.err() == ENOENT && op.optional) return std::nullopt;
        throw;
    }
    Fd src(uo.fd);
    if (op.check == SourceCheck::OwnedByUser && uo.owner != spec.id.uid)
        throw_refused(op.source, "owned by uid " + std::to_string(uo.owner) + ", not by the user");
    if (op.within_prefixes)  // where the opened source really is, not the path given
        check_within_prefixes(fd_path(src.get()), spec.bind_allowed_prefixes,
                              op.user_bind ? "--bind " + op.source : op.source);
    return Source{std::move(src), uo.is_dir};
}

namespace {

// The image's symlinks are followed (inside the root) only for user-influenced mount points,
// whose resolved destination is checked; the launcher's own (/proc, /dev, /sys, /tmp, ...) must
// not be symlinks in the image: a bad image, not something to follow. true: skip this optional
// mount (e.g. the image's own /etc/resolv.conf symlink stays as the image has it).
bool skip_symlinked(const MountOp& op, const std::string& where, bool follow) {
    if (errno != ELOOP || follow) return false;
    if (op.optional) return true;
    throw Error(Exit::BadImage, "image", where, 0,
                "is a symlink in the image; the launcher mounts its own " + op.target +
                    " there and does not follow the image's symlinks");
}

}  // namespace

// The directory the mount point goes in, resolved inside the new root: in one step where it
// exists (the common case); else component by component, creating what is missing on our own
// filesystems and naming the component that fails. Invalid: skip (skip_symlinked).
Fd LinuxSys::open_parent(const MountOp& op, const std::vector<std::string>& parts, bool follow) {
    std::string parent;
    for (size_t i = 0; i + 1 < parts.size(); ++i) parent += "/" + parts[i];
    if (!parent.empty()) {
        Fd dir(openat2_in_root(root_fd_.get(), parent, O_PATH | O_DIRECTORY, follow));
        if (dir.valid()) return dir;
    }
    Fd dir(::dup(root_fd_.get()));
    std::string so_far;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        so_far += "/" + parts[i];
        int fd = openat2_in_root(root_fd_.get(), so_far, O_PATH | O_DIRECTORY, follow);
        if (fd < 0 && skip_symlinked(op, so_far, follow)) return Fd();
        if (fd < 0 && errno == ENOENT) {
            require_own_fs(dir.get(), op.target, "mount point parent " + so_far + " does not exist");
            if (::mkdirat(dir.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST)
                throw_errno("mkdir", so_far, errno);
            fd = openat2_in_root(root_fd_.get(), so_far, O_PATH | O_DIRECTORY, follow);
        }
        if (fd < 0) throw_errno("resolve in root", so_far, errno);
        dir = Fd(fd);
    }
    return dir;
}

// Files may be created only on filesystems the launcher mounted (its tmpfs layers), never in a
// host directory or the image's layers.
void LinuxSys::require_own_fs(int dir, const std::string& target, const std::string& why) const {
    struct stat st {};
    if (::fstat(dir, &st) != 0) throw_errno("stat", target, errno);
    if (!own_devs_.count(st.st_dev)) throw_refused(target, why);
}

namespace {

void make_node(int dir, const std::string& name, const MountOp& op) {
    char* colon = nullptr;
    char* end = nullptr;
    const unsigned long maj = std::strtoul(op.data.c_str(), &colon, 10);
    const unsigned long min = *colon == ':' ? std::strtoul(colon + 1, &end, 10) : 0;
    if (*colon != ':' || end == colon + 1 || *end != '\0' || maj > 4095 || min > 1048575)
        throw Error(Exit::Internal, "device node", op.target, 0, "bad number " + op.data);
    if (::mknodat(dir, name.c_str(), S_IFCHR | 0666,
                  makedev(static_cast<unsigned>(maj), static_cast<unsigned>(min))) != 0)
        throw_errno("mknod", op.target, errno);
    if (::fchmodat(dir, name.c_str(), 0666, 0) != 0)  // past the privileged phase's umask 022
        throw_errno("chmod", op.target, errno);
}

}  // namespace

// The mount point itself, created (on our own filesystems) as a directory or a file like its
// source; invalid: skip (skip_symlinked).
Fd LinuxSys::open_mount_point(const MountOp& op, int dir, const std::string& name, bool src_dir, bool follow,
                              const ContainerSpec& spec) {
    Fd target(openat2_in_root(root_fd_.get(), op.target, O_PATH, follow));
    if (target.get() < 0 && skip_symlinked(op, op.target, follow)) return Fd();
    if (target.get() < 0 && errno == ENOENT) {
        require_own_fs(dir, op.target, "mount point does not exist in a host directory");
        const int rc =
            src_dir ? ::mkdirat(dir, name.c_str(), 0755) : ::mknodat(dir, name.c_str(), S_IFREG | 0644, 0);
        if (rc != 0 && errno != EEXIST) throw_errno("create mount point", op.target, errno);
        target = Fd(openat2_in_root(root_fd_.get(), op.target, O_PATH, follow));
    }
    if (target.get() < 0) throw_errno("resolve in root", op.target, errno);
    // Where did the target really land? (The image's own symlinks are followed inside the root.)
    if (follow)
        check_destination(path_inside_root(fd_path(target.get()), root_path_), spec.denied_destinations,
                          op.target);
    struct stat tst {};
    if (::fstat(target.get(), &tst) != 0) throw_errno("stat", op.target, errno);
    if (S_ISDIR(tst.st_mode) != src_dir)
        throw_refused(op.target, src_dir ? "mount point is not a directory" : "mount point is a directory");
    return target;
}

void LinuxSys::apply_mount(const std::string& root, const MountOp& op, const ContainerSpec& spec) {
    if (root != root_path_ || !root_fd_.valid()) {  // opened once for all the mounts
        root_fd_ = Fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root_fd_.valid()) throw_errno("open", root, errno);
        root_path_ = root;
    }
    // (mount_policy.hpp: which mount points are the user's to influence, and their checks.)
    const bool by_user = user_influenced(op);
    if (by_user) check_destination(op.target, spec.denied_destinations, op.source);
    // Source first: it decides whether the mount point is a directory or a file.
    std::optional<Source> src = open_source(op, spec);
    if (!src) return;
    const auto parts = path_components(op.target);
    if (parts.empty()) throw_refused(op.target, "cannot mount onto /");
    const Fd dir = open_parent(op, parts, by_user);
    if (!dir.valid()) return;
    const std::string& name = parts.back();

    switch (op.kind) {
        case MountKind::Symlink:
            require_own_fs(dir.get(), op.target, "symlink outside launcher-owned filesystems");
            if (::symlinkat(op.data.c_str(), dir.get(), name.c_str()) != 0 && errno != EEXIST)
                throw_errno("symlink", op.target, errno);
            return;
        case MountKind::Node:  // only on the launcher's own tmpfs (the container's /dev)
            require_own_fs(dir.get(), op.target, "device node outside launcher-owned filesystems");
            make_node(dir.get(), name, op);
            return;
        default:
            break;
    }
    const Fd target = open_mount_point(op, dir.get(), name, src->dir, by_user, spec);
    if (!target.valid()) return;
    if (op.kind == MountKind::Tmpfs || op.kind == MountKind::Proc) {
        Fd mnt = new_fs(op.kind == MountKind::Proc ? "proc" : "tmpfs", op.data, op);
        attach(mnt.get(), target.get(), op.target);
        struct stat st {};
        if (op.kind == MountKind::Tmpfs && ::fstat(mnt.get(), &st) == 0) own_devs_.insert(st.st_dev);
        return;
    }
    // Bind or File: a clone of the source's tree, read-only for a File.
    Fd tree(
        ::open_tree(src->fd.get(), "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
    if (tree.get() < 0) throw_errno("open_tree", op.source, errno);
    MountOp eff = op;
    if (op.kind == MountKind::File) eff.read_only = true;
    struct mount_attr attr {};
    attr.attr_set = attrs_of(eff);
    if (attr.attr_set &&
        ::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
        throw_errno("mount_setattr", op.source, errno);
    attach(tree.get(), target.get(), op.target);
}

void LinuxSys::pivot_root(const std::string& new_root) {
    if (image_mount_.valid()) {  // the squashfs mount, reachable for the next step's container
        const std::string at = new_root + kImageMount;
        if (::mkdir(at.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir", at, errno);
        const Fd dir(::open(at.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (dir.get() < 0) throw_errno("open", at, errno);
        attach(image_mount_.get(), dir.get(), kImageMount);
        image_mount_ = Fd();
    }
    root_fd_ = Fd();  // the mounts are made
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
    // Every capability the kernel knows, dropped without asking first: the first one past the
    // last (EINVAL) ends it. verify_dropped() reads the set back.
    for (int cap = 0; cap <= 63; ++cap) {
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
        if (errno == EINVAL && cap > 0) break;
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
    // The bounding set, read back once: /proc/self/status's CapBnd is the whole mask.
    const std::string status = read_proc("/proc/self/status", 64u << 10);
    const auto at = status.find("\nCapBnd:\t");
    if (at == std::string::npos || status.compare(at + 9, 17, "0000000000000000\n") != 0)
        throw Error(Exit::Internal, "verify identity", "bounding set", 0, "not empty");
}

void LinuxSys::set_no_new_privs() {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw_errno("no_new_privs", "", errno);
}

void LinuxSys::verify_confined(const Identity& id) {
    const int n = ::getgroups(0, nullptr);
    std::vector<gid_t> have(n > 0 ? static_cast<size_t>(n) : 0);
    if (n < 0 || (n > 0 && ::getgroups(n, have.data()) != n)) throw_errno("getgroups", "", errno);
    std::vector<gid_t> want = id.groups;
    std::sort(have.begin(), have.end());
    std::sort(want.begin(), want.end());
    want.erase(std::unique(want.begin(), want.end()), want.end());
    have.erase(std::unique(have.begin(), have.end()), have.end());
    if (have != want)
        throw Error(Exit::Internal, "verify identity", "groups", 0, "not the job's supplementary groups");
    for (int cap = 0; cap <= 63; ++cap) {
        const int in = ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        if (in < 0) break;  // past the last capability the kernel knows
        if (in == 1)
            throw Error(Exit::Internal, "verify identity", "bounding set", 0,
                        "capability " + std::to_string(cap) + " remains");
    }
    if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        throw Error(Exit::Internal, "verify identity", "no_new_privs", 0, "not set");
}

void LinuxSys::set_umask(mode_t mask) { ::umask(mask); }

void LinuxSys::chdir(const std::string& dir) {
    if (::chdir(dir.c_str()) != 0) throw_errno("chdir", dir, errno);
}

void LinuxSys::exec(const std::vector<std::string>& argv, const std::vector<std::string>& path,
                    const EnvMap& env) {
    const std::vector<std::string> envs = env_to_vector(env);
    std::vector<char*> cargv = c_strings(argv), cenv = c_strings(envs);
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
