// socker-mpi doctor [--config FILE] [--launcher PATH] [--image NAME] [--no-launch]
// Gathers the facts of this node (files, system calls, slurm.conf, the audit socket, a test
// launch) and prints src/doctor.hpp's findings, one line each. Runs with the caller's rights (the
// launcher execs the tools as the user): nothing here is privileged, and nothing is changed.
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>

#include "base/error.hpp"
#include "base/file.hpp"
#include "base/text.hpp"
#include "config.h"
#include "image/store.hpp"
#include "src/commands.hpp"
#include "src/doctor.hpp"
#include "src/host.hpp"

namespace socker {

using doctor::Finding;
using doctor::Level;

namespace {

doctor::FileFacts file_facts(const std::string& path) {
    struct stat st {};
    doctor::FileFacts f;
    if (::lstat(path.c_str(), &st) != 0) return f;
    f.exists = true;
    f.regular = S_ISREG(st.st_mode);
    f.uid = st.st_uid;
    f.mode = st.st_mode & 07777;
    return f;
}

std::string message_of(const Error& e) { return e.what(); }

// The admin config: its ownership (the launcher refuses one that is not root's) and its content.
Policy check_config(const std::string& path, std::vector<Finding>& out) {
    try {
        Policy p = host::load_policy(path);
        out.push_back({Level::Ok, "config", path + ": root-owned, parsed", ""});
        return p;
    } catch (const Error& e) {
        out.push_back({Level::Fail, "config", message_of(e),
                       e.code() == Exit::Config && std::string(e.what()).find("insecure") != std::string::npos
                           ? "chown root:root " + path + " && chmod 0644 " + path
                           : "see socker-mpi.conf(5)"});
    }
    try {  // go on with what it says, if it parses, to check the rest
        return parse_policy(read_file(path, 1u << 20, Exit::Config), path);
    } catch (const Error& e) {
        if (out.back().what != message_of(e))
            out.push_back({Level::Fail, "config", message_of(e), "see socker-mpi.conf(5)"});
        return Policy{};
    }
}

void check_store(const Policy& pol, std::vector<Finding>& out) {
    struct stat st {};
    if (::stat(pol.image_store.c_str(), &st) != 0) {
        out.push_back(
            {Level::Note, "store",
             pol.image_store + ": no admin store yet (the first `socker-mpi image import` as root makes it)",
             ""});
    } else {
        try {
            host::check_store_dir(pol.image_store);
            try {
                const auto images = image::Store(pol.image_store).list();
                out.push_back({Level::Ok, "store",
                               pol.image_store + ": root-owned, layers root's alone, " +
                                   std::to_string(images.size()) + " image(s)",
                               ""});
            } catch (const Error& e) {
                out.push_back(
                    {Level::Fail, "store", message_of(e), "socker-mpi image gc (as root) repairs the store"});
            }
        } catch (const Error& e) {
            out.push_back({Level::Fail, "store", message_of(e),
                           "chown root:root " + pol.image_store + " && chmod 0755 " + pol.image_store +
                               " && chmod 0700 " + pol.image_store + "/layers"});
        }
    }
    struct stat rst {};
    if (::stat(pol.runtime_dir.c_str(), &rst) != 0 || !S_ISDIR(rst.st_mode) || rst.st_uid != 0 ||
        (rst.st_mode & 022))
        out.push_back(
            {Level::Fail, "store",
             "runtime_dir " + pol.runtime_dir + ": must be a root-owned directory not writable by others",
             "install -d -o root -g root -m 0755 " + pol.runtime_dir});
    else
        out.push_back({Level::Ok, "store", "runtime_dir " + pol.runtime_dir + ": root-owned", ""});
}

// A system call the launcher uses, probed with arguments that fail harmlessly: only ENOSYS
// means the kernel lacks it.
void syscall_check(std::vector<Finding>& out, const char* name, bool supported, int err) {
    if (supported)
        out.push_back({Level::Ok, "kernel", std::string(name), ""});
    else
        out.push_back({Level::Fail, "kernel", std::string(name) + ": " + std::strerror(err),
                       "a kernel >= 5.12 (Debian 12's 6.1 has it)"});
}

void check_kernel(std::vector<Finding>& out) {
    struct utsname u {};
    ::uname(&u);
    // RESOLVE_NO_MAGICLINKS understood: /proc/self/exe (a magic link) is refused with ELOOP.
    struct open_how how {};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_MAGICLINKS;
    long rc = ::syscall(SYS_openat2, AT_FDCWD, "/proc/self/exe", &how, sizeof how);
    int e = errno;
    if (rc >= 0) ::close(static_cast<int>(rc));
    syscall_check(out, "openat2 with RESOLVE_NO_MAGICLINKS", rc < 0 && e == ELOOP, rc >= 0 ? EINVAL : e);
    rc = ::syscall(SYS_open_tree, AT_FDCWD, "/", OPEN_TREE_CLOEXEC);
    e = errno;
    if (rc >= 0) ::close(static_cast<int>(rc));
    syscall_check(out, "open_tree", rc >= 0 || e != ENOSYS, e);
    rc = ::syscall(SYS_move_mount, -1, "", -1, "", MOVE_MOUNT_F_EMPTY_PATH);
    e = errno;
    syscall_check(out, "move_mount", rc >= 0 || e != ENOSYS, e);
    struct mount_attr attr {};
    rc = ::syscall(SYS_mount_setattr, -1, "", ~0u, &attr, sizeof attr);  // bad flags: EINVAL
    e = errno;
    syscall_check(out, "mount_setattr", rc >= 0 || e != ENOSYS, e);
    rc = ::syscall(SYS_pidfd_open, ::getpid(), 0);
    e = errno;
    if (rc >= 0) ::close(static_cast<int>(rc));
    syscall_check(out, "pidfd_open (one container per node)", rc >= 0, e);

    std::string fss;
    try {
        fss = read_file("/proc/filesystems", 1u << 20);
    } catch (const Error&) {
    }
    if (fss.find("\toverlay\n") == std::string::npos)
        out.push_back({Level::Fail, "kernel", "overlay filesystem not available", "modprobe overlay"});
    else if (!doctor::kernel_at_least(u.release, 5, 11))
        out.push_back({Level::Note, "kernel",
                       std::string("overlay without userxattr (kernel ") + u.release +
                           " < 5.11): images of users' own stores cannot be launched",
                       ""});
    else
        out.push_back({Level::Ok, "kernel", std::string("overlay with userxattr (") + u.release + ")", ""});
}

// The cgroup hierarchies Slurm and the launcher use (v1: cpuset for binding, freezer where
// proctrack/cgroup finds a step's processes, memory, devices for the device filter).
void check_cgroups(const Policy& pol, std::vector<Finding>& out) {
    std::string mounts;
    try {
        mounts = read_file("/proc/self/mounts", 4u << 20);
    } catch (const Error& e) {
        out.push_back({Level::Fail, "cgroup", message_of(e), ""});
        return;
    }
    auto v1_has = [&](const std::string& c) {
        std::istringstream in(mounts);
        for (std::string line; std::getline(in, line);) {
            std::istringstream w(line);
            std::string src, dir, type, opts;
            w >> src >> dir >> type >> opts;
            if (type != "cgroup") continue;
            for (const auto& o : split_list(opts, ','))
                if (o == c) return true;
        }
        return false;
    };
    const bool v2 = mounts.find(" cgroup2 ") != std::string::npos;
    std::string missing;
    for (const char* c : {"cpuset", "freezer", "memory", "devices"})
        if (!v1_has(c)) missing += std::string(missing.empty() ? "" : ", ") + c;
    if (missing.empty())
        out.push_back({Level::Ok, "cgroup", "cgroup v1: cpuset, freezer, memory, devices", ""});
    else if (v2 && missing == "cpuset, freezer, memory, devices")
        out.push_back(
            {Level::Note, "cgroup",
             std::string("cgroup v2: the devices filter cannot read eBPF device rules") +
                 (pol.device_cgroup_required ? " and passes no device (device_cgroup = required)" : ""),
             pol.device_cgroup_required ? "device_cgroup = ignore lets the allow-list alone decide" : ""});
    else
        out.push_back({Level::Fail, "cgroup", "cgroup v1 controllers not mounted: " + missing,
                       "mount them under /sys/fs/cgroup (Slurm's cgroup plugins need them)"});
}

void check_slurm(const Policy& pol, std::vector<Finding>& out) {
    const std::string path = slurm_conf_for(pol, host::short_hostname());
    std::string text;
    try {
        text = read_file(path, 4u << 20, Exit::Config);
    } catch (const Error& e) {
        out.push_back(
            {Level::Fail, "slurm", message_of(e), "slurm_conf = in socker-mpi.conf names slurm.conf"});
        return;
    }
    bool pmix = false;
    const std::string dir = doctor::slurm_plugin_dir(text);
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* ent = ::readdir(d))
            if (std::strncmp(ent->d_name, "mpi_pmix", 8) == 0) pmix = true;
        ::closedir(d);
    }
    struct stat st {};
    const std::string tmpfs = host::parse_slurm_conf(text, host::short_hostname()).tmpfs;  // %n, %h expanded
    const bool tmpfs_ok = ::stat(tmpfs.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    for (auto& f : doctor::check_slurm_conf(path, text, pmix, tmpfs, tmpfs_ok)) out.push_back(std::move(f));

    // The SPANK plugin: plugstack.conf and the files it includes.
    std::vector<doctor::PlugstackFile> files;
    const std::string stack = doctor::plugstack_path(path, text);
    try {
        files.push_back({stack, read_file(stack, 1u << 20, Exit::Config)});
        for (const auto& pattern : doctor::plugstack_includes(files[0].text)) {
            glob_t g{};
            if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; ++i)
                    files.push_back({g.gl_pathv[i], read_file(g.gl_pathv[i], 1u << 20, Exit::Config)});
            ::globfree(&g);
        }
    } catch (const Error&) {
        // no plugstack.conf: no plugin configured (check_spank says so)
    }
    const std::string plugin = dir + "/spank_socker.so";
    out.push_back(
        doctor::check_spank(files, plugin, ::stat(plugin.c_str(), &st) == 0 && S_ISREG(st.st_mode)));
}

void check_audit(const Policy& pol, std::vector<Finding>& out) {
    if (pol.log != LogDest::Syslog) {
        out.push_back(
            {Level::Note, "audit", "audit records go to stderr or nowhere (log =), not to syslog", ""});
        return;
    }
    const int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, pol.syslog_socket.c_str(), sizeof a.sun_path - 1);
    const bool ok = s >= 0 && ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    const int e = errno;
    if (s >= 0) ::close(s);
    if (ok)
        out.push_back({Level::Ok, "audit", "syslog at " + pol.syslog_socket + " answers", ""});
    else
        out.push_back({Level::Fail, "audit",
                       "syslog at " + pol.syslog_socket + ": " + std::strerror(e) +
                           (pol.audit_required ? " -- every launch is refused (audit_required = yes)"
                                               : " -- launch records are lost"),
                       "start the syslog daemon (rsyslog) or set syslog_socket ="});
}

void check_devices(const Policy& pol, std::vector<Finding>& out) {
    std::vector<doctor::DevicePattern> pats;
    for (const auto& p : pol.devices) {
        glob_t g{};
        doctor::DevicePattern d{p, 0, {}};
        if (::glob(p.c_str(), GLOB_NOSORT, nullptr, &g) == 0)
            for (size_t i = 0; i < g.gl_pathc; ++i) {
                struct stat st {};
                if (::stat(g.gl_pathv[i], &st) == 0 && S_ISCHR(st.st_mode))
                    ++d.devices;
                else
                    d.not_devices.emplace_back(g.gl_pathv[i]);
            }
        ::globfree(&g);
        pats.push_back(std::move(d));
    }
    for (auto& f : doctor::check_devices(pats)) out.push_back(std::move(f));
}

// Runs argv with the caller's environment, stdout and stderr captured, for at most `seconds`.
struct Ran {
    int status = -1;
    std::string output;
    bool timed_out = false;
};
Ran run_captured(const std::vector<std::string>& argv, const EnvMap& env, int seconds) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe", argv[0], errno);
    const std::vector<std::string> envs = env_to_vector(env);
    std::vector<char*> cargv = c_strings(argv), cenv = c_strings(envs);
    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork", argv[0], errno);
    if (pid == 0) {
        ::setpgid(0, 0);
        ::dup2(p[1], 1);
        ::dup2(p[1], 2);
        ::execvpe(cargv[0], cargv.data(), cenv.data());
        ::_exit(127);
    }
    ::close(p[1]);
    Ran r;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    char buf[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            r.timed_out = true;
            ::kill(-pid, SIGKILL);
            break;
        }
        pollfd pf{p[0], POLLIN, 0};
        if (::poll(&pf, 1, static_cast<int>(left.count())) <= 0) continue;
        const ssize_t n = ::read(p[0], buf, sizeof buf);
        if (n <= 0) break;
        if (r.output.size() < (1u << 16)) r.output.append(buf, static_cast<size_t>(n));
    }
    ::close(p[0]);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

std::string last_line(const std::string& s) {
    std::string t = s;
    while (!t.empty() && t.back() == '\n') t.pop_back();
    const auto nl = t.rfind('\n');
    return nl == std::string::npos ? t : t.substr(nl + 1);
}

// A real launch, as the caller: in a one-rank Slurm step where the admin requires one, of the
// given image (else the admin store's first), running the image's /bin/sh to print its uid.
void check_launch(const DoctorRequest& r, const Policy& pol, const Invocation& inv,
                  std::vector<Finding>& out) {
    std::string image = r.image;
    if (image.empty()) {
        try {
            const auto images = image::Store(pol.image_store).list();
            for (const auto& rec : images)
                if (!rec.names.empty() && (image.empty() || rec.names.front() < image))
                    image = rec.names.front();
        } catch (const Error&) {
        }
    }
    if (image.empty()) {
        out.push_back(
            {Level::Note, "launch", "no image in the admin store to test a launch with", "--image NAME"});
        return;
    }
    std::vector<std::string> argv;
    const bool in_step = env_get(inv.env, "SLURM_STEP_ID").has_value();
    if (pol.require_slurm_step && !in_step)
        argv = {"srun", "-n", "1", "-N", "1", "--quiet", "-J", "socker-doctor", "--time=1"};
    const std::string uid = std::to_string(::getuid());
    argv.insert(argv.end(), {r.launcher, image, "/bin/sh", "-c", "echo socker-doctor-uid=$(id -u)"});
    const Ran ran = run_captured(argv, inv.env, 60);
    const std::string how = argv.front() == "srun" ? "srun -n 1 " : "";
    if (ran.status == 0 && ran.output.find("socker-doctor-uid=" + uid + "\n") != std::string::npos)
        out.push_back({Level::Ok, "launch", how + r.launcher + " " + image + ": ran as uid " + uid, ""});
    else
        out.push_back(
            {Level::Fail, "launch",
             how + r.launcher + " " + image + ": " +
                 (ran.timed_out ? std::string("no answer in 60 s")
                                : "exit " + std::to_string(ran.status) + ": " + last_line(ran.output)),
             "the lines above; socker-mpi --verbose --dry-run shows the plan"});
}

}  // namespace

int run_command(const DoctorRequest& r, const Invocation& inv) {
    std::vector<Finding> out;
    out.push_back(doctor::check_launcher(r.launcher, file_facts(r.launcher)));
    out.push_back(doctor::check_tools(SOCKER_TOOLS_PROGRAM, file_facts(SOCKER_TOOLS_PROGRAM)));
    const Policy pol = check_config(r.config, out);
    check_store(pol, out);
    check_kernel(out);
    check_cgroups(pol, out);
    check_slurm(pol, out);
    check_audit(pol, out);
    check_devices(pol, out);
    if (!r.no_launch) check_launch(r, pol, inv, out);
    for (const auto& f : out) std::cout << doctor::format(f) << '\n';
    const int rc = doctor::exit_status(out);
    std::cout << (rc == 0 ? "doctor: this node is ready for socker-mpi\n"
                          : "doctor: fix the FAIL lines above (exit status 1)\n");
    std::cout.flush();
    return rc;
}

}  // namespace socker
