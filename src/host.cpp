#include "src/host.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "base/file.hpp"
#include "base/text.hpp"
#include "image/in_use.hpp"
#include "launcher/user_process.hpp"
#include "pmi/launch_context.hpp"

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
    Policy p = parse_policy(read_file(path, 1u << 20, Exit::Config), path);
    if (!p.socker_images_file.empty()) {  // Socker's allow-list: the admin's file, as the config
        check_root_owned(p.socker_images_file, false, Exit::Config);
        for (auto& n : parse_socker_images(read_file(p.socker_images_file, 1u << 20, Exit::Config)))
            p.socker_images.push_back(std::move(n));
    }
    return p;
}

void check_store_dir(const std::string& path) {
    check_root_owned(path, true, Exit::Config);
    // The layer trees keep the images' own modes (1777 directories, files of any uid): nobody
    // but root may reach them on the host, or a user could change what every container sees.
    const std::string layers = path + "/layers";
    struct stat st {};
    if (::lstat(layers.c_str(), &st) == 0 && (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077)))
        throw Error(
            Exit::Config, "insecure", layers, 0,
            "must be a root-owned directory of mode 0700 (as root, `socker-mpi image gc` repairs it)");
}

launcher::Identity current_identity() {
    int n = ::getgroups(0, nullptr);
    if (n < 0) throw_errno("getgroups", "", errno);
    std::vector<gid_t> groups(static_cast<size_t>(n));
    if (n > 0 && ::getgroups(n, groups.data()) < 0) throw_errno("getgroups", "", errno);
    return identity_of(::getuid(), ::getgid(), std::move(groups));
}

launcher::Identity identity_of(uid_t uid, gid_t gid, std::vector<gid_t> groups) {
    launcher::Identity id;
    id.uid = uid;
    id.gid = gid;
    id.groups = std::move(groups);
    struct passwd* pw = ::getpwuid(id.uid);
    if (!pw) throw Error(Exit::Refused, "identity", "uid " + std::to_string(id.uid), 0, "no passwd entry");
    id.name = pw->pw_name;
    id.home = pw->pw_dir ? pw->pw_dir : "";
    id.shell = pw->pw_shell ? pw->pw_shell : "";
    return id;
}

std::vector<std::pair<gid_t, std::string>> group_names(const launcher::Identity& id) {
    std::vector<gid_t> all = {id.gid};
    for (gid_t g : id.groups)
        if (std::find(all.begin(), all.end(), g) == all.end()) all.push_back(g);  // one lookup each
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
    std::vector<DeviceRule> rules;
    if (cgroup_required) {
        std::string cg_path;
        for (const auto& cg : pmi::parse_proc_cgroup(proc_self_cgroup))
            for (const auto& c : split_list(cg.controllers, ','))
                if (c == "devices") cg_path = cg.path;
        std::string mnt;
        std::istringstream mi(mountinfo);
        for (std::string line; std::getline(mi, line);) {
            const auto sep = line.find(" - ");
            if (sep == std::string::npos) continue;
            std::istringstream head(line.substr(0, sep)), tail(line.substr(sep + 3));
            std::string id, parent, dev, root, point, fstype, source, super;
            if (!(head >> id >> parent >> dev >> root >> point) || !(tail >> fstype >> source >> super))
                continue;
            if (fstype != "cgroup" || root != "/") continue;
            for (const auto& o : split_list(super, ','))
                if (o == "devices") mnt = point;
        }
        if (cg_path.empty()) {
            out.unreadable =
                "this node has no cgroup v1 devices controller (on cgroup v2, device access is an "
                "eBPF program socker-mpi cannot read; the admin may set device_cgroup = ignore)";
        } else if (mnt.empty()) {
            out.unreadable = "the cgroup v1 devices hierarchy is not mounted";
        } else {
            const std::string list_path = mnt + (cg_path == "/" ? "" : cg_path) + "/devices.list";
            std::string list;
            try {
                list = read_file(list_path, 1u << 20);
            } catch (const Error&) {
            }
            if (list.empty())
                out.unreadable = "the step's devices cgroup list " + list_path + " cannot be read";
            else
                rules = parse_devices_list(list);
        }
        if (!out.unreadable.empty()) return out;  // fail closed: no device
    }
    // Each directory is listed once for all the patterns on it (/dev holds most); a pattern with
    // a wildcard in its directory part goes through glob(3).
    auto consider = [&](const std::string& path) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode) &&
            (!cgroup_required || device_allowed(rules, 'c', major(st.st_rdev), minor(st.st_rdev))))
            out.devices.push_back(path);
    };
    std::vector<std::pair<std::string, std::vector<std::string>>> by_dir;  // directory, name patterns
    for (const auto& p : patterns) {
        const auto slash = p.rfind('/');
        const std::string dir = slash == std::string::npos ? "." : p.substr(0, slash);
        if (dir.find_first_of("*?[\\") != std::string::npos) {
            glob_t g{};
            if (::glob(p.c_str(), GLOB_NOSORT, nullptr, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; ++i) consider(g.gl_pathv[i]);
            ::globfree(&g);
            continue;
        }
        auto it = std::find_if(by_dir.begin(), by_dir.end(), [&](const auto& d) { return d.first == dir; });
        if (it == by_dir.end()) it = by_dir.insert(by_dir.end(), {dir, {}});
        it->second.push_back(p.substr(slash + 1));
    }
    for (const auto& [dir, names] : by_dir) {
        DIR* d = ::opendir(dir.empty() ? "/" : dir.c_str());
        if (!d) continue;
        while (const dirent* e = ::readdir(d))
            for (const auto& n : names)
                // The pattern's literal head first: most names of /dev fail there, cheaply.
                if (std::strncmp(n.c_str(), e->d_name, n.find_first_of("*?[\\")) == 0 &&
                    ::fnmatch(n.c_str(), e->d_name, FNM_PERIOD) == 0) {
                    consider(dir + "/" + e->d_name);
                    break;
                }
        ::closedir(d);
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

std::vector<std::pair<std::string, std::string>> slurm_conf_settings(const std::string& text) {
    std::vector<std::pair<std::string, std::string>> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        std::string key = line.substr(0, eq);
        key.erase(0, key.find_first_not_of(" \t"));
        for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.emplace_back(std::move(key), line.substr(eq + 1, line.find_first_of(" \t#", eq + 1) - eq - 1));
    }
    return out;
}

SlurmFacts parse_slurm_conf(const std::string& text, const std::string& node) {
    SlurmFacts f;
    for (auto [key, value] : slurm_conf_settings(text)) {
        for (const char* pat : {"%n", "%h"})
            for (auto pos = value.find(pat); pos != std::string::npos; pos = value.find(pat))
                value.replace(pos, 2, node);
        if (value.empty() || value[0] != '/') continue;
        if (key == "tmpfs")
            f.tmpfs = value;
        else if (key == "slurmdspooldir")
            f.spool = value;
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
    std::string path = image::node_lock_path(pol.state_dir, store_root);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) throw_errno("create", path, errno);
    ::close(fd);
    return path;
}

std::vector<DeviceRule> parse_devices_list(const std::string& text) {
    std::vector<DeviceRule> out;
    std::istringstream in(text);
    std::string type, nums, access;
    while (in >> type >> nums >> access) {
        DeviceRule r;
        r.type = type.empty() ? 'a' : type[0];
        auto colon = nums.find(':');
        auto num = [](const std::string& x) { return x == "*" ? -1L : std::stol(x); };
        if (colon != std::string::npos) {
            r.major = num(nums.substr(0, colon));
            r.minor = num(nums.substr(colon + 1));
        }
        if (access.find('r') != std::string::npos) out.push_back(r);
    }
    return out;
}

bool device_allowed(const std::vector<DeviceRule>& rules, char type, long major, long minor) {
    for (const auto& r : rules) {
        if (r.type == 'a') return true;
        if (r.type == type && (r.major == -1 || r.major == major) && (r.minor == -1 || r.minor == minor))
            return true;
    }
    return false;
}

std::string proc_options_from_mountinfo(const std::string& mountinfo) {
    std::istringstream in(mountinfo);
    std::string line, result;
    while (std::getline(in, line)) {
        // "22 27 0:21 / /proc rw,relatime - proc proc rw,hidepid=invisible"
        std::istringstream f(line);
        std::string id, parent, dev, root, point;
        if (!(f >> id >> parent >> dev >> root >> point) || point != "/proc") continue;
        const auto sep = line.find(" - ");
        if (sep == std::string::npos) continue;
        std::istringstream rest(line.substr(sep + 3));
        std::string fstype, source, super;
        if (!(rest >> fstype >> source >> super) || fstype != "proc") continue;
        std::string opts;
        for (const auto& o : split_list(super, ','))
            if (o.rfind("hidepid=", 0) == 0 || o.rfind("subset=", 0) == 0 || o.rfind("gid=", 0) == 0)
                opts += (opts.empty() ? "" : ",") + o;
        result = opts;  // a later /proc mount shadows an earlier one: the last one counts
    }
    return result;
}

std::optional<std::string> hierarchy_mount(const std::string& mountinfo, const std::string& controllers) {
    // "ID PARENT MAJ:MIN / POINT OPTS ... - cgroup SRC SUPER", mounted whole (root "/").
    std::istringstream mi(mountinfo);
    for (std::string m; std::getline(mi, m);) {
        std::istringstream f(m);
        std::string id, parent, dev, root, point;
        const auto sep = m.find(" - ");
        if (!(f >> id >> parent >> dev >> root >> point) || root != "/" || sep == std::string::npos) continue;
        std::istringstream rest(m.substr(sep + 3));
        std::string fstype, source, super;
        if (!(rest >> fstype >> source >> super) || fstype != "cgroup") continue;
        const auto opts = split_list(super, ',');
        bool all = true;
        for (const auto& c : split_list(controllers, ','))
            all = all && std::find(opts.begin(), opts.end(), c) != opts.end();
        if (all) return point;
    }
    return std::nullopt;
}

std::optional<launcher::Share> step_share(const std::string& proc_self_cgroup, const std::string& mountinfo,
                                          const std::string& prefix) {
    struct Line {
        std::string id, controllers, path;
    };
    std::vector<Line> lines;
    std::istringstream in(proc_self_cgroup);
    for (std::string l; std::getline(in, l);) {
        const auto a = l.find(':'), b = a == std::string::npos ? a : l.find(':', a + 1);
        if (b == std::string::npos) continue;
        lines.push_back({l.substr(0, a), l.substr(a + 1, b - a - 1), l.substr(b + 1)});
    }
    auto rank_of = [](const std::string& controllers) {
        const auto cs = split_list(controllers, ',');
        if (std::find(cs.begin(), cs.end(), "freezer") != cs.end()) return 0;
        if (std::find(cs.begin(), cs.end(), "cpuset") != cs.end()) return 1;
        return controllers.empty() || controllers.rfind("name=", 0) == 0 ? 3 : 2;
    };
    std::stable_sort(lines.begin(), lines.end(), [&](const Line& x, const Line& y) {
        return rank_of(x.controllers) < rank_of(y.controllers);
    });
    for (const auto& l : lines) {
        if (l.controllers.empty() || !pmi::step_from_cgroups({{l.controllers, l.path}}, prefix).step)
            continue;
        std::string step_path = l.path;
        bool tasks = false;
        if (const auto slash = step_path.rfind('/');
            slash != std::string::npos && step_path.compare(slash + 1, 5, "task_") == 0) {
            step_path.resize(slash);
            tasks = true;
        }
        if (const auto point = hierarchy_mount(mountinfo, l.controllers)) {
            launcher::Share sh;
            sh.cgroup_dir = *point + step_path;
            sh.cgroup_line = l.id + ":" + l.controllers + ":" + step_path;
            sh.tasks_below = tasks;
            return sh;
        }
    }
    return std::nullopt;
}

std::string step_cgroup_parent(const std::string& proc_self_cgroup, const std::string& prefix) {
    std::string found;
    for (auto [controllers, path] : pmi::parse_proc_cgroup(proc_self_cgroup)) {
        if (controllers.empty() || !pmi::step_from_cgroups({{controllers, path}}, prefix).step) continue;
        if (const auto slash = path.rfind('/');
            slash != std::string::npos && path.compare(slash + 1, 5, "task_") == 0)
            path.resize(slash);
        const auto cs = split_list(controllers, ',');
        if (std::find(cs.begin(), cs.end(), "memory") != cs.end()) return path;
        if (found.empty()) found = path;
    }
    return found;
}

std::vector<std::string> engine_cgroup_leftovers(const std::string& proc_self_cgroup,
                                                 const std::string& mountinfo, const std::string& prefix,
                                                 const std::string& parent) {
    std::vector<std::string> out;
    const auto uid_at = parent.find("/uid_");
    if (parent.empty() || uid_at == std::string::npos) return out;
    const auto uid_end = parent.find('/', uid_at + 1);
    const std::string user_dir = parent.substr(0, uid_end);  // <prefix>/slurm[_node]/uid_U
    for (const auto& [controllers, path] : pmi::parse_proc_cgroup(proc_self_cgroup)) {
        if (pmi::step_from_cgroups({{controllers.empty() ? "unified" : controllers, path}}, prefix).step)
            continue;
        if (controllers.empty()) {  // the cgroup2 hierarchy (hybrid layout: its mount point)
            std::istringstream mi(mountinfo);
            for (std::string m; std::getline(mi, m);) {
                std::istringstream f(m);
                std::string id, par, dev, root, point;
                const auto sep = m.find(" - cgroup2 ");
                if (sep != std::string::npos && (f >> id >> par >> dev >> root >> point) && root == "/")
                    out.push_back(point + user_dir);
            }
        } else if (const auto point = hierarchy_mount(mountinfo, controllers)) {
            out.push_back(*point + user_dir);
        }
    }
    return out;
}

namespace {
void remove_empty_below(const std::string& dir, int depth) {
    if (depth > 8) return;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> subdirs;
    for (struct dirent* e; (e = ::readdir(d));)
        if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
            subdirs.push_back(dir + "/" + e->d_name);
    ::closedir(d);
    for (const auto& sd : subdirs) {
        remove_empty_below(sd, depth + 1);
        ::rmdir(sd.c_str());  // fails on a cgroup with processes or children: it stays
    }
}
}  // namespace

void sweep_empty_cgroups(const std::vector<std::string>& dirs) {
    for (const auto& dir : dirs) {
        remove_empty_below(dir, 0);
        if (::rmdir(dir.c_str()) == 0) ::rmdir(dir.substr(0, dir.rfind('/')).c_str());
    }
}

std::vector<std::string> step_cgroups_to_enter(const std::string& proc_self_cgroup,
                                               const std::string& mountinfo, unsigned long job,
                                               const std::string& step) {
    std::vector<std::string> out;
    const std::string job_dir = "/job_" + std::to_string(job);
    for (const auto& c : pmi::parse_proc_cgroup(proc_self_cgroup)) {
        if (c.controllers.empty() || c.controllers.rfind("name=", 0) == 0) continue;
        if (c.path.size() <= job_dir.size() ||
            c.path.compare(c.path.size() - job_dir.size(), job_dir.size(), job_dir) != 0)
            continue;
        if (const auto point = hierarchy_mount(mountinfo, c.controllers))
            out.push_back(*point + c.path + "/step_" + step);
    }
    return out;
}

void enter_step_cgroups(unsigned long job, const std::string& step) {
    const auto dirs = step_cgroups_to_enter(read_file("/proc/self/cgroup"),
                                            read_file("/proc/self/mountinfo", 64u << 20), job, step);
    const std::string pid = std::to_string(::getpid()) + "\n";
    for (const auto& d : dirs) {
        const std::string procs = d + "/cgroup.procs";
        const Fd f(::open(procs.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
        if (f.get() < 0) {
            if (errno == ENOENT) continue;  // no step directory in this hierarchy
            throw_errno("open", procs, errno);
        }
        if (::write(f.get(), pid.data(), pid.size()) != static_cast<ssize_t>(pid.size()))
            throw_errno("write", procs, errno);
    }
}

std::optional<std::string> slurm_pmix_server_dir(const SlurmFacts& slurm, const pmi::SlurmStep& step) {
    const std::string dir =
        lexically_normal(slurm.spool) + "/pmix." + std::to_string(step.job) + "." + step.step;
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
    return dir;
}

void take_real_ids(uid_t uid, gid_t gid) {
    if (::setresgid(gid, 0, 0) != 0) throw_errno("setresgid", std::to_string(gid) + ",0,0", errno);
    if (::setresuid(uid, 0, 0) != 0) throw_errno("setresuid", std::to_string(uid) + ",0,0", errno);
}

pmi::ProbeInput probe_input(const EnvMap& env, const Policy& pol) {
    pmi::ProbeInput in;
    in.env = env;
    in.proc_self_cgroup = read_file("/proc/self/cgroup");
    if (auto fd = env_long(env, "PMI_FD"))
        in.pmi_fd_is_socket = *fd <= INT_MAX && fd_is_socket(static_cast<int>(*fd));
    in.cgroup_prefix = pol.slurm_cgroup_prefix;
    return in;
}

HostFacts gather(const Policy& pol, launcher::Identity id, const pmi::LaunchContext& ctx,
                 const pmi::ProbeInput& probe) {
    HostFacts f;
    f.group_names = group_names(id);
    f.id = std::move(id);
    f.hostname = short_hostname();
    f.cwd = working_dir();
    f.pmi_fd_is_socket = probe.pmi_fd_is_socket;
    const std::string mountinfo = read_file("/proc/self/mountinfo", 64u << 20);
    f.proc_options = proc_options_from_mountinfo(mountinfo);
    f.devices = allowed_devices(pol.devices, pol.device_cgroup_required, probe.proc_self_cgroup, mountinfo);
    if (ctx.step) {
        f.step_share = step_share(probe.proc_self_cgroup, mountinfo, probe.cgroup_prefix);
        // The node name from the step's cgroup (Slurm's, not the user's SLURMD_NODENAME).
        const std::string node = ctx.step->node.empty() ? f.hostname : ctx.step->node;
        f.slurm = slurm_facts(slurm_conf_for(pol, node), node);
    }
    return f;
}

}  // namespace socker::host
