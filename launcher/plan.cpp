#include "plan.hpp"

#include <algorithm>
#include <set>
#include <sstream>

#include "error.hpp"

namespace socker::launcher {

const char* const kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

namespace {

std::string lexically_normal(const std::string& p) {
    std::vector<std::string> parts;
    std::istringstream in(p);
    std::string c;
    while (std::getline(in, c, '/')) {
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (!parts.empty()) parts.pop_back();
            continue;
        }
        parts.push_back(c);
    }
    std::string out;
    for (const auto& x : parts) out += "/" + x;
    return out.empty() ? "/" : out;
}

MountOp bind(std::string src, std::string dst, bool ro, SourceCheck check, bool optional = true) {
    MountOp m;
    m.kind = MountKind::Bind;
    m.source = std::move(src);
    m.target = std::move(dst);
    m.read_only = ro;
    m.check = check;
    m.optional = optional;
    return m;
}

MountOp special(MountKind k, std::string target, std::string data) {
    MountOp m;
    m.kind = k;
    m.target = std::move(target);
    m.data = std::move(data);
    return m;
}

}  // namespace

std::vector<std::string> split_list(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string x;
    while (std::getline(in, x, sep))
        if (!x.empty()) out.push_back(x);
    return out;
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

namespace {
const char* const kPmixVariables[] = {"PMIX_SERVER_TMPDIR", "PMIX_DSTORE_21_BASE_PATH", "PMIX_DSTORE_ESH_BASE_PATH",
                                      "OMPI_MCA_orte_top_session_dir", "OMPI_FILE_LOCATION"};
}  // namespace

std::vector<PmixBind> pmix_binds(const EnvMap& env, const PmixPlaces& at) {
    std::vector<PmixBind> out;
    auto add = [&](const std::string& dir, bool slurm) {
        for (const auto& o : out)
            if (path_under(dir, o.dir)) return;  // the outer bind carries it
        out.erase(std::remove_if(out.begin(), out.end(), [&](const PmixBind& o) { return path_under(o.dir, dir); }),
                  out.end());
        out.push_back({dir, slurm});
    };
    for (const char* k : kPmixVariables) {
        auto v = env_get(env, k);
        if (!v || v->empty() || (*v)[0] != '/') continue;
        const std::string d = lexically_normal(*v);
        if (path_under(d, "/tmp")) continue;  // /tmp is the host's inside: nothing to bind
        if (!at.slurm_server_dir.empty() && path_under(d, at.slurm_server_dir)) {
            add(at.slurm_server_dir, true);
            continue;
        }
        bool under_prefix = false;
        for (const auto& p : at.bind_allowed_prefixes) under_prefix = under_prefix || path_under(d, p);
        if (under_prefix && at.user_binds) {
            add(d, false);
            continue;
        }
        throw_refused(std::string(k) + "=" + *v,
                      "not where Slurm's PMIx plugin puts its directory (" +
                          (at.slurm_server_dir.empty() ? std::string("not in a Slurm step") : at.slurm_server_dir) +
                          ") nor mpirun's session directory (below /tmp), and " +
                          (under_prefix ? "user binds are disabled by the admin" : "outside the allowed bind sources"));
    }
    std::sort(out.begin(), out.end(), [](const PmixBind& a, const PmixBind& b) { return a.dir < b.dir; });
    return out;
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

std::vector<std::string> pmix_directories(const EnvMap& env) {
    std::set<std::string> dirs;
    for (const char* k : kPmixVariables) {
        auto v = env_get(env, k);
        if (!v || v->empty() || (*v)[0] != '/') continue;
        dirs.insert(lexically_normal(*v));
    }
    // Keep only the outermost of nested directories: binding the parent carries the child.
    std::vector<std::string> out;
    for (const auto& d : dirs) {
        bool nested = false;
        for (const auto& o : out) nested = nested || path_under(d, o);
        if (!nested) out.push_back(d);
    }
    return out;
}

std::string passwd_file(const Identity& id) {
    std::ostringstream o;
    o << "root:x:0:0:root:/root:/bin/sh\n";
    if (id.uid != 0)
        o << id.name << ":x:" << id.uid << ":" << id.gid << "::" << id.home << ":"
          << (id.shell.empty() ? "/bin/sh" : id.shell) << "\n";
    o << "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    return o.str();
}

std::string group_file(const Identity& id, const std::vector<std::pair<gid_t, std::string>>& names) {
    std::ostringstream o;
    o << "root:x:0:\n";
    std::set<gid_t> seen = {0, 65534};
    for (const auto& [gid, name] : names) {
        if (!seen.insert(gid).second) continue;
        o << name << ":x:" << gid << ":" << (gid == id.gid ? "" : id.name) << "\n";
    }
    o << "nogroup:x:65534:\n";
    return o.str();
}

EnvMap container_env(const PlanInput& in) {
    EnvMap env;
    const auto& deny = in.policy.env_deny;
    for (const auto& [k, v] : in.env)
        if (std::find(deny.begin(), deny.end(), k) == deny.end()) env[k] = v;
    // The image's own paths: its Env wins over the host's for PATH-like settings.
    env["PATH"] = kDefaultPath;
    for (const auto& kv : in.image.config.env) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) continue;
        std::string k = kv.substr(0, eq);
        // Launcher-provided variables always come from the host: they describe this rank.
        if (k.rfind("PMIX_", 0) == 0 || k.rfind("PMI_", 0) == 0 || k.rfind("SLURM_", 0) == 0 ||
            k.rfind("OMPI_", 0) == 0)
            continue;
        env[k] = kv.substr(eq + 1);
    }
    // Sarus/enroot's mapping: a PMIx inside the image reads MCA-style names.
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"PMIX_PTL_MODULE", "PMIX_MCA_ptl"},
             {"PMIX_SECURITY_MODE", "PMIX_MCA_psec"},
             {"PMIX_GDS_MODULE", "PMIX_MCA_gds"}}) {
        auto v = env_get(in.env, from);
        if (v && !env.count(to)) env[to] = *v;
    }
    env["HOME"] = in.id.home;
    env["USER"] = in.id.name;
    env["LOGNAME"] = in.id.name;
    env["SOCKER_MPI_IMAGE"] = in.request.image;
    env["SOCKER_MPI_IMAGE_ID"] = in.image.id;
    for (const auto& kv : in.request.env_set) {
        auto eq = kv.find('=');
        env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : in.binding_env)
        if (!env.count(k)) env[k] = v;
    return env;
}

ContainerSpec make_spec(const PlanInput& in) {
    ContainerSpec s;
    const auto& req = in.request;
    s.image_ref = req.image;
    s.image_id = in.image.id;
    s.layers = in.layer_dirs;
    s.layers_owned_by_user = in.user_store;
    s.runtime_dir = in.policy.runtime_dir;
    s.id = in.id;
    s.bind_allowed_prefixes = in.policy.bind_allowed_prefixes;
    s.denied_destinations = builtin_denied_destinations();
    for (const auto& d : in.policy.bind_denied_destinations) s.denied_destinations.push_back(d);
    s.binding = in.binding;
    s.keep_fd = in.ctx.pmi_fd;
    s.umask = in.umask;
    s.rootfs_source = image::overlay_source(in.image.layers);
    s.store_lock = in.store_lock;

    // Kernel filesystems and a minimal /dev; /proc as limited as the host's (hidepid, subset).
    auto proc = special(MountKind::Proc, "/proc", in.proc_options);
    proc.noexec = true;
    s.mounts.push_back(proc);
    auto sys = bind("/sys", "/sys", true, SourceCheck::Trusted, false);
    sys.noexec = true;
    s.mounts.push_back(sys);
    auto dev = special(MountKind::Tmpfs, "/dev", "mode=0755,size=64k");
    dev.noexec = true;
    s.mounts.push_back(dev);
    for (const char* d : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}) {
        auto m = bind(d, d, false, SourceCheck::Trusted);
        m.nodev = false;  // these are the device nodes themselves
        m.noexec = true;
        s.mounts.push_back(m);
    }
    auto pts = bind("/dev/pts", "/dev/pts", false, SourceCheck::Trusted);
    pts.noexec = true;
    s.mounts.push_back(pts);
    s.mounts.push_back(special(MountKind::Symlink, "/dev/ptmx", "pts/ptmx"));
    s.mounts.push_back(special(MountKind::Symlink, "/dev/fd", "/proc/self/fd"));
    s.mounts.push_back(special(MountKind::Symlink, "/dev/stdin", "/proc/self/fd/0"));
    s.mounts.push_back(special(MountKind::Symlink, "/dev/stdout", "/proc/self/fd/1"));
    s.mounts.push_back(special(MountKind::Symlink, "/dev/stderr", "/proc/self/fd/2"));
    // Shared memory with the host: Open MPI's vader segments and CMA need it (STACK.md).
    auto shm = bind("/dev/shm", "/dev/shm", false, SourceCheck::Trusted, false);
    shm.noexec = false;
    s.mounts.push_back(shm);
    for (const auto& d : in.devices) {
        auto m = bind(d, d, false, SourceCheck::Trusted);
        m.nodev = false;
        m.noexec = true;
        s.mounts.push_back(m);
    }
    // Node-local scratch and name resolution as on the host.
    s.mounts.push_back(bind("/tmp", "/tmp", false, SourceCheck::Trusted, false));
    s.mounts.push_back(special(MountKind::Tmpfs, "/var/tmp", "mode=1777"));
    s.mounts.push_back(bind("/etc/hosts", "/etc/hosts", true, SourceCheck::Trusted));
    s.mounts.push_back(bind("/etc/resolv.conf", "/etc/resolv.conf", true, SourceCheck::Trusted));
    // The user's identity inside (MPI and many tools call getpwuid).
    s.mounts.push_back(special(MountKind::File, "/etc/passwd", passwd_file(in.id)));
    s.mounts.push_back(special(MountKind::File, "/etc/group", group_file(in.id, in.group_names)));
    // PMIx server and Open MPI session directories, at the same paths: only where Slurm or
    // mpirun put them (job and step from the cgroup, not from SLURM_*).
    const std::string step_suffix =
        in.ctx.step ? std::to_string(in.ctx.step->job) + "." + in.ctx.step->step : std::string();
    PmixPlaces places;
    if (in.ctx.step && !in.slurm_spool.empty())
        places.slurm_server_dir = lexically_normal(in.slurm_spool) + "/pmix." + step_suffix;
    places.user_binds = in.policy.user_binds;
    places.bind_allowed_prefixes = in.policy.bind_allowed_prefixes;
    for (const auto& pb : pmix_binds(in.env, places)) {
        auto m = bind(pb.dir, pb.dir, false, SourceCheck::OwnedByUser);
        m.within_prefixes = !pb.slurm_server_dir;
        s.mounts.push_back(m);
    }
    // Slurm's PMIx plugin tells the client (over PMIx, not the environment) to use
    // <TmpFS>/spmix_appdir_<uid>_<job>.<step>.
    if (in.ctx.step && !in.slurm_tmpfs.empty()) {
        const std::string d =
            lexically_normal(in.slurm_tmpfs) + "/spmix_appdir_" + std::to_string(in.id.uid) + "_" + step_suffix;
        if (!path_under(d, "/tmp")) s.mounts.push_back(bind(d, d, false, SourceCheck::OwnedByUser));
    }
    // Home and working directory, checked as the user.
    std::string home = lexically_normal(in.id.home);
    if (!in.id.home.empty() && home != "/")
        s.mounts.push_back(bind(home, home, false, SourceCheck::AsUser));
    // The working directory: the very directory the rank runs in (mounted from ".", never looked
    // up again by path), bound when it is under an allowed prefix; its real path is checked
    // again when it is mounted.
    std::string cwd = in.host_cwd.empty() ? "/" : lexically_normal(in.host_cwd);
    bool cwd_visible = !in.host_cwd.empty() && (path_under(cwd, "/tmp") || (home != "/" && path_under(cwd, home)));
    if (!cwd_visible && cwd != "/") {
        bool allowed = false;
        for (const auto& p : in.policy.bind_allowed_prefixes) allowed = allowed || path_under(cwd, p);
        if (allowed) {
            auto m = bind(cwd, cwd, false, SourceCheck::AsUser);
            m.source_is_cwd = true;
            m.within_prefixes = true;
            s.mounts.push_back(m);
            cwd_visible = true;
        }
    }
    // User binds last, so they can sit inside any of the above.
    for (const auto& b : req.binds) {
        if (!in.policy.user_binds) throw_refused("--bind " + b.source, "user binds are disabled by the admin");
        auto m = bind(lexically_normal(b.source), lexically_normal(b.target), b.read_only,
                      SourceCheck::AsUser, false);
        m.user_bind = true;
        m.within_prefixes = true;
        s.mounts.push_back(m);
    }

    // Command: the user's, else Entrypoint + Cmd of the image.
    if (!req.command.empty()) {
        s.argv = req.command;
        if (!in.image.config.entrypoint.empty()) {
            s.argv = in.image.config.entrypoint;
            s.argv.insert(s.argv.end(), req.command.begin(), req.command.end());
        }
    } else {
        s.argv = in.image.config.entrypoint;
        s.argv.insert(s.argv.end(), in.image.config.cmd.begin(), in.image.config.cmd.end());
    }
    if (s.argv.empty())
        throw_usage("no command given and image '" + req.image + "' has no Entrypoint or Cmd");

    s.env = container_env(in);
    s.path = split_list(s.env["PATH"], ':');
    if (req.workdir) s.cwd = *req.workdir;
    else if (cwd_visible) s.cwd = cwd;
    else if (!in.image.config.working_dir.empty()) s.cwd = in.image.config.working_dir;
    else s.cwd = "/";
    if (s.env.count("PWD")) s.env["PWD"] = s.cwd;
    return s;
}

}  // namespace socker::launcher
