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
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "error.hpp"
#include "launch_context.hpp"
#include "launcher/linux_sys.hpp"
#include "image_store.hpp"
#include "launcher/plan.hpp"

namespace socker::host {

mode_t sanitize_fds(int keep_fd) {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
            int n = ::open("/dev/null", O_RDWR);
            if (n != fd) ::_exit(static_cast<int>(Exit::Io));  // cannot even report it
        }
    }
    const mode_t caller_umask = ::umask(022);
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (keep_fd > 2) {
        if (keep_fd > 3) ::syscall(SYS_close_range, 3U, static_cast<unsigned>(keep_fd - 1), 0U);
        ::syscall(SYS_close_range, static_cast<unsigned>(keep_fd + 1), ~0U, 0U);
    } else {
        ::syscall(SYS_close_range, 3U, ~0U, 0U);
    }
    return caller_umask;
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

void check_store_dir(const std::string& path) {
    check_root_owned(path, true, Exit::Config);
    // The layer trees keep the images' own modes (1777 directories, files of any uid): nobody
    // but root may reach them on the host, or a user could change what every container sees.
    const std::string layers = path + "/layers";
    struct stat st {};
    if (::lstat(layers.c_str(), &st) == 0 && (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)))
        throw Error(Exit::Config, "insecure", layers, 0,
                    "must be a root-owned directory of mode 0700 (as root, `socker-mpi image gc` repairs it)");
}

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

std::string working_dir() {
    char buf[PATH_MAX];
    if (!::getcwd(buf, sizeof buf) || buf[0] != '/') return "";  // deleted, or unreachable
    return buf;
}

std::string short_hostname() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    std::string h = buf;
    return h.substr(0, h.find('.'));
}

DeviceFacts allowed_devices(const std::vector<std::string>& patterns, bool cgroup_required,
                            const std::string& proc_self_cgroup, const std::string& mountinfo) {
    // The devices cgroup of this process (v1): "a *:* rwm" allows all; else "c MAJ:MIN rwm".
    // The hierarchy's mount point comes from mountinfo (not a guessed /sys/fs/cgroup/devices).
    DeviceFacts out;
    std::vector<launcher::DeviceRule> rules;
    if (cgroup_required) {
        std::string cg_path;
        for (const auto& cg : pmi::parse_proc_cgroup(proc_self_cgroup))
            for (const auto& c : launcher::split_list(cg.controllers, ','))
                if (c == "devices") cg_path = cg.path;
        std::string mnt;
        std::istringstream mi(mountinfo);
        for (std::string line; std::getline(mi, line);) {
            const auto sep = line.find(" - ");
            if (sep == std::string::npos) continue;
            std::istringstream head(line.substr(0, sep)), tail(line.substr(sep + 3));
            std::string id, parent, dev, root, point, fstype, source, super;
            if (!(head >> id >> parent >> dev >> root >> point) || !(tail >> fstype >> source >> super)) continue;
            if (fstype != "cgroup" || root != "/") continue;
            for (const auto& o : launcher::split_list(super, ','))
                if (o == "devices") mnt = point;
        }
        if (cg_path.empty()) {
            out.unreadable = "this node has no cgroup v1 devices controller (on cgroup v2, device access is an "
                             "eBPF program socker-mpi cannot read; the admin may set device_cgroup = ignore)";
        } else if (mnt.empty()) {
            out.unreadable = "the cgroup v1 devices hierarchy is not mounted";
        } else {
            const std::string list_path = mnt + (cg_path == "/" ? "" : cg_path) + "/devices.list";
            std::ifstream in(list_path, std::ios::binary);
            std::ostringstream ss;
            if (in) ss << in.rdbuf();
            if (!in || ss.str().empty()) out.unreadable = "the step's devices cgroup list " + list_path + " cannot be read";
            else rules = launcher::parse_devices_list(ss.str());
        }
        if (!out.unreadable.empty()) return out;  // fail closed: no device
    }
    for (const auto& p : patterns) {
        glob_t g{};
        if (::glob(p.c_str(), GLOB_NOSORT, nullptr, &g) == 0) {
            for (size_t i = 0; i < g.gl_pathc; ++i) {
                struct stat st {};
                if (::lstat(g.gl_pathv[i], &st) == 0 && S_ISCHR(st.st_mode) &&
                    (!cgroup_required || launcher::device_allowed(rules, 'c', major(st.st_rdev), minor(st.st_rdev))))
                    out.devices.push_back(g.gl_pathv[i]);
            }
        }
        ::globfree(&g);
    }
    std::sort(out.devices.begin(), out.devices.end());
    out.devices.erase(std::unique(out.devices.begin(), out.devices.end()), out.devices.end());
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

SlurmFacts parse_slurm_conf(const std::string& text, const std::string& node) {
    SlurmFacts f;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        std::string key = line.substr(0, eq);
        key.erase(0, key.find_first_not_of(" \t"));
        for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(eq + 1, line.find_first_of(" \t#", eq + 1) - eq - 1);
        for (const char* pat : {"%n", "%h"})
            for (auto pos = value.find(pat); pos != std::string::npos; pos = value.find(pat)) value.replace(pos, 2, node);
        if (value.empty() || value[0] != '/') continue;
        if (key == "tmpfs") f.tmpfs = value;
        else if (key == "slurmdspooldir") f.spool = value;
    }
    return f;
}

SlurmFacts slurm_facts(const std::string& slurm_conf, const std::string& node) {
    std::ifstream in(slurm_conf);
    std::ostringstream ss;
    if (in) ss << in.rdbuf();
    return parse_slurm_conf(ss.str(), node);
}

void ensure_state_dir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir", dir, errno, Exit::Config);
    check_root_owned(dir, true, Exit::Config);
}

std::string ensure_store_lock(const Policy& pol, const std::string& store_root) {
    ensure_state_dir(pol.state_dir);
    const std::string path = image::node_lock_path(pol.state_dir, store_root);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) throw_errno("create", path, errno);
    ::close(fd);
    return path;
}

namespace {

// A plain token, or a double-quoted string with \", \\ and \xHH (control bytes, DEL) escaped.
std::string audit_value(const std::string& v, size_t max_bytes = std::string::npos) {
    const bool plain = !v.empty() && v.size() <= max_bytes &&
                       v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/@+,-") ==
                           std::string::npos;
    if (plain) return v;
    std::string out = "\"";
    for (unsigned char c : v) {
        if (out.size() + 5 > max_bytes) break;  // room for an escape and the closing quote
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

}  // namespace

std::string audit_record(const AuditFields& f) {
    // Identity first and whole; the free-form fields after it, each bounded, the command last
    // with whatever room is left.
    std::string r = "decision=" + audit_value(f.decision) + " user=" + audit_value(f.user) +
                    " uid=" + std::to_string(f.uid) + " job=" + audit_value(f.job) + " step=" + audit_value(f.step) +
                    " rank=" + std::to_string(f.rank) + " store=" + audit_value(f.store) +
                    " digest=" + audit_value(f.digest) + " image=" + audit_value(f.image, 512);
    if (!f.reason.empty()) r += " reason=" + audit_value(f.reason, 640);
    std::string cmd;
    for (const auto& a : f.argv) cmd += (cmd.empty() ? "" : " ") + a;
    const std::string whole = audit_value(cmd);
    if (r.size() + 5 + whole.size() <= kAuditMaxBytes) return r + " cmd=" + whole;
    const std::string marker = " cmd_truncated=" + std::to_string(cmd.size());
    return r + " cmd=" + audit_value(cmd, kAuditMaxBytes - r.size() - 5 - marker.size()) + marker;
}

std::string audit(const Policy& pol, const std::string& record) {
    switch (pol.log) {
        case LogDest::None: return "";
        case LogDest::Stderr: std::fprintf(stderr, "socker-mpi audit: %s\n", record.c_str()); return "";
        case LogDest::Syslog: break;
    }
    // RFC 3164 as glibc's syslog(3) writes it, sent by hand: syslog(3) says nothing when no
    // daemon listens, and the admin may require that the record lands.
    char stamp[32];
    const std::time_t t = std::time(nullptr);
    struct tm tm {};
    ::localtime_r(&t, &tm);
    std::strftime(stamp, sizeof stamp, "%b %e %T", &tm);
    const std::string msg = "<" + std::to_string(LOG_AUTHPRIV | LOG_NOTICE) + ">" + stamp + " socker-mpi[" +
                            std::to_string(::getpid()) + "]: " + record;
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (pol.syslog_socket.size() >= sizeof addr.sun_path) return pol.syslog_socket + ": path too long";
    std::memcpy(addr.sun_path, pol.syslog_socket.c_str(), pol.syslog_socket.size() + 1);
    std::string why;
    for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
        launcher::Fd s(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
        if (s.get() < 0) return std::string("socket: ") + std::strerror(errno);
        if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            why = pol.syslog_socket + ": " + std::strerror(errno);
            if (errno == EPROTOTYPE) continue;  // a stream socket: try that
            return why;
        }
        const std::string out = type == SOCK_STREAM ? msg + '\0' : msg;
        if (::send(s.get(), out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size())) return "";
        return pol.syslog_socket + ": " + std::strerror(errno);
    }
    return why;
}

}  // namespace socker::host
