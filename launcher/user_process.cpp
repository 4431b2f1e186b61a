// launcher::user_process: work on the user's behalf, with the user's rights and nothing more.
#include "launcher/user_process.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "launcher/linux_sys.hpp"

namespace socker::launcher {

UserRights::UserRights(uid_t uid, gid_t gid) {
    if (::syscall(SYS_capget, &hdr_, saved_) != 0) throw_errno("capget", "", errno);
    ::setfsgid(gid);
    ::setfsuid(uid);
    if (static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1))) != uid)
        throw Error(Exit::Internal, "setfsuid", std::to_string(uid), 0, "did not take effect");
    struct __user_cap_data_struct none[2] = {};
    for (int i = 0; i < 2; ++i)
        none[i].permitted = saved_[i].permitted, none[i].inheritable = saved_[i].inheritable;
    if (::syscall(SYS_capset, &hdr_, none) != 0) {
        restore();
        throw_errno("capset", "drop effective capabilities", errno);
    }
}

UserRights::~UserRights() { restore(); }

void UserRights::restore() {
    ::setfsuid(0);
    ::setfsgid(0);
    ::syscall(SYS_capset, &hdr_, saved_);
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

namespace {

// A caller may have left SIGCHLD ignored (inherited across the setuid exec): then the child
// would be reaped by the kernel and waitpid fail. Default for the call, restored after.
struct SigchldDefault {
    struct sigaction old {};
    SigchldDefault() {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        ::sigemptyset(&dfl.sa_mask);
        ::sigaction(SIGCHLD, &dfl, &old);
    }
    ~SigchldDefault() { ::sigaction(SIGCHLD, &old, nullptr); }
    SigchldDefault(const SigchldDefault&) = delete;
    SigchldDefault& operator=(const SigchldDefault&) = delete;
};

void write_all(int fd, const std::string& s) {
    for (size_t off = 0; off < s.size();) {
        const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        off += static_cast<size_t>(n);
    }
}

// Forks a child that drops every privilege (the launcher's own routine and check) and runs
// `body` with the write end of the reply pipe; the child replies "<exit code>\n<result or
// message>" and exits with that code. Returns the result, or throws the child's Error.
std::string in_child(const Identity& id, const std::function<void(int reply_fd)>& body) {
    SigchldDefault sigchld;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe", "user process", errno);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int e = errno;
        ::close(p[0]);
        ::close(p[1]);
        throw_errno("fork", "user process", e);
    }
    if (pid == 0) {
        ::close(p[0]);
        int code = 0;
        std::string reply;
        try {
            LinuxSys sys;
            drop_privileges(id, sys);
            body(p[1]);  // replies itself (or execs a program that does)
            ::_exit(0);
        } catch (const std::exception& e) {
            reply = error_reply(e, code);
        }
        write_all(p[1], reply);
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
        const ssize_t n = ::read(p[0], buf, sizeof buf);
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
        throw Error(Exit::Internal, "user process", "", 0,
                    std::string("killed by signal ") + ::strsignal(WTERMSIG(status)));
    // "<code>\n<body>": the code must be the child's exit status, 0 or a launcher exit code.
    const auto nl = reply.find('\n');
    const std::string head = nl == std::string::npos ? "" : reply.substr(0, nl);
    const bool numeric =
        !head.empty() && head.size() <= 3 && head.find_first_not_of("0123456789") == std::string::npos;
    const int code = numeric ? std::stoi(head) : -1;
    if (!numeric || !WIFEXITED(status) || WEXITSTATUS(status) != code ||
        (code != 0 && (code < 64 || code > 127)))
        throw Error(Exit::Internal, "user process", "", 0, "exited without a valid reply");
    if (code != 0) throw Error(static_cast<Exit>(code), reply.substr(nl + 1), {});
    return reply.substr(nl + 1);
}

}  // namespace

std::string in_user_process(const Identity& id, const std::function<std::string()>& fn) {
    return in_child(id, [&](int reply_fd) { write_all(reply_fd, "0\n" + fn()); });
}

std::string exec_as_user(const Identity& id, const std::string& program, const std::vector<std::string>& argv,
                         const EnvMap& env, int pass_fd) {
    return in_child(id, [&](int reply_fd) {
        // The program replies on its stdout (the pipe); pass_fd becomes its fd 3. From the
        // first dup2 on, a failure is replied on fd 1 (fd 3 may have replaced the pipe's).
        if (::dup2(reply_fd, 1) < 0) throw_errno("dup2", "stdout", errno);
        auto fail = [](const std::string& what, int e) {
            write_all(1, "74\n" + std::string(Error(Exit::Io, what, "", e).what()));
            ::_exit(74);
        };
        if (pass_fd == 3) {
            if (::fcntl(3, F_SETFD, 0) != 0) fail("fcntl fd 3", errno);
        } else if (pass_fd >= 0 && ::dup2(pass_fd, 3) < 0) {
            fail("dup2 fd 3", errno);
        }
        const std::vector<std::string> envs = env_to_vector(env);
        std::vector<char*> cargv = c_strings(argv), cenv = c_strings(envs);
        ::execve(program.c_str(), cargv.data(), cenv.data());
        fail("exec " + program, errno);
    });
}

std::string error_reply(const std::exception& e, int& code) {
    if (const auto* err = dynamic_cast<const Error*>(&e)) {
        code = static_cast<int>(err->code());
        return std::to_string(code) + "\n" + err->what();
    }
    code = static_cast<int>(Exit::Internal);
    return std::to_string(code) + "\ninternal error: " + e.what();
}

}  // namespace socker::launcher
