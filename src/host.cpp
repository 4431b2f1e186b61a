#include "host.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

#include "error.hpp"
#include "launch_context.hpp"
#include "launcher/linux_sys.hpp"
#include "launcher/plan.hpp"

namespace socker::host {

void sanitize_fds(int keep_fd) {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
            int n = ::open("/dev/null", O_RDWR);
            if (n != fd) ::_exit(static_cast<int>(Exit::Io));  // cannot even report it
        }
    }
    ::umask(022);
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (keep_fd > 2) {
        if (keep_fd > 3) ::syscall(SYS_close_range, 3U, static_cast<unsigned>(keep_fd - 1), 0U);
        ::syscall(SYS_close_range, static_cast<unsigned>(keep_fd + 1), ~0U, 0U);
    } else {
        ::syscall(SYS_close_range, 3U, ~0U, 0U);
    }
}

bool fd_is_socket(int fd) {
    struct stat st {};
    return fd >= 0 && ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

namespace {
void check_root_owned(const std::string& path, bool want_dir, Exit code) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) throw_errno("stat", path, errno, code);
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        throw Error(code, "insecure", path, 0, want_dir ? "not a directory" : "not a regular file");
    if (st.st_uid != 0) throw Error(code, "insecure", path, 0, "not owned by root");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        throw Error(code, "insecure", path, 0, "writable by group or others");
}
}  // namespace

Policy load_policy(const std::string& path) {
    std::string dir = path.substr(0, path.rfind('/'));
    check_root_owned(dir, true, Exit::Config);
    check_root_owned(path, false, Exit::Config);
    return parse_policy(read_text(path), path);
}

void check_store_dir(const std::string& path) { check_root_owned(path, true, Exit::Config); }

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_errno("open", path, errno);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

launcher::Identity current_identity() {
    launcher::Identity id;
    id.uid = ::getuid();
    id.gid = ::getgid();
    int n = ::getgroups(0, nullptr);
    if (n < 0) throw_errno("getgroups", "", errno);
    id.groups.resize(static_cast<size_t>(n));
    if (n > 0 && ::getgroups(n, id.groups.data()) < 0) throw_errno("getgroups", "", errno);
    struct passwd* pw = ::getpwuid(id.uid);
    if (!pw) throw Error(Exit::Refused, "identity", "uid " + std::to_string(id.uid), 0, "no passwd entry");
    id.name = pw->pw_name;
    id.home = pw->pw_dir ? pw->pw_dir : "";
    id.shell = pw->pw_shell ? pw->pw_shell : "";
    return id;
}

std::vector<std::pair<gid_t, std::string>> group_names(const launcher::Identity& id) {
    std::vector<gid_t> all = {id.gid};
    all.insert(all.end(), id.groups.begin(), id.groups.end());
    std::vector<std::pair<gid_t, std::string>> out;
    for (gid_t g : all) {
        struct group* gr = ::getgrgid(g);
        out.emplace_back(g, gr ? gr->gr_name : "g" + std::to_string(g));
    }
    return out;
}

namespace {
std::string read_text_or_empty(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    if (in) ss << in.rdbuf();
    return ss.str();
}
}  // namespace

std::string cwd() {
    char buf[PATH_MAX];
    if (!::getcwd(buf, sizeof buf)) return "/";
    return buf;
}

std::string short_hostname() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    std::string h = buf;
    return h.substr(0, h.find('.'));
}

std::vector<std::string> allowed_devices(const std::vector<std::string>& patterns,
                                         const std::string& proc_self_cgroup) {
    // The devices cgroup of this process (v1): "a *:* rwm" allows all; else "c MAJ:MIN rwm".
    std::vector<launcher::DeviceRule> rules;
    bool have_cgroup = false;
    for (const auto& cg : pmi::parse_proc_cgroup(proc_self_cgroup)) {
        if (cg.controllers != "devices") continue;
        std::string list = read_text_or_empty("/sys/fs/cgroup/devices" + cg.path + "/devices.list");
        if (!list.empty()) {
            rules = launcher::parse_devices_list(list);
            have_cgroup = true;
        }
    }
    std::vector<std::string> out;
    for (const auto& p : patterns) {
        glob_t g{};
        if (::glob(p.c_str(), GLOB_NOSORT, nullptr, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc; ++i) {
                struct stat st {};
                if (::lstat(g.gl_pathv[i], &st) == 0 && S_ISCHR(st.st_mode) &&
                    (!have_cgroup || launcher::device_allowed(rules, 'c', major(st.st_rdev), minor(st.st_rdev))))
                    out.push_back(g.gl_pathv[i]);
            }
        }
        ::globfree(&g);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

bool matches_any(const std::string& path, const std::vector<std::string>& globs) {
    for (const auto& g : globs)
        if (::fnmatch(g.c_str(), path.c_str(), FNM_PATHNAME) == 0) return true;
    return false;
}

int open_source_as_user(const std::string& path, const launcher::Identity& id) {
    if (path == "-") return ::dup(0);
    auto uo = launcher::open_as_user(path, id.uid, id.gid, true);
    if (uo.is_dir) {
        ::close(uo.fd);
        throw Error(Exit::Usage, "import", path, 0, "is a directory (use layout:DIR for an OCI layout)");
    }
    return uo.fd;
}

std::string slurm_tmpfs(const std::string& slurm_conf, const std::string& node) {
    std::ifstream in(slurm_conf);
    std::string line, value = "/tmp";
    while (std::getline(in, line)) {
        auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        std::string key = line.substr(0, eq);
        for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (key == "tmpfs") value = line.substr(eq + 1, line.find_first_of(" \t#", eq + 1) - eq - 1);
    }
    for (const char* pat : {"%n", "%h"})
        for (auto pos = value.find(pat); pos != std::string::npos; pos = value.find(pat))
            value.replace(pos, 2, node);
    return value;
}

void audit(LogDest dest, const std::string& record) {
    switch (dest) {
        case LogDest::None: return;
        case LogDest::Stderr: std::fprintf(stderr, "socker-mpi audit: %s\n", record.c_str()); return;
        case LogDest::Syslog:
            ::openlog("socker-mpi", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
            ::syslog(LOG_NOTICE, "%s", record.c_str());
            ::closelog();
            return;
    }
}

}  // namespace socker::host
