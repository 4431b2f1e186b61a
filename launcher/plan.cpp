#include "launcher/plan.hpp"

#include <algorithm>
#include <set>
#include <sstream>

#include "base/error.hpp"
#include "base/text.hpp"
#include "image/in_use.hpp"
#include "launcher/sharing.hpp"

namespace socker::launcher {

const char* const kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

namespace {

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

EnvMap container_env(const LaunchPlan& in) {
    EnvMap env = in.env;
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
    for (const auto& [from, to] :
         std::vector<std::pair<std::string, std::string>>{{"PMIX_PTL_MODULE", "PMIX_MCA_ptl"},
                                                          {"PMIX_SECURITY_MODE", "PMIX_MCA_psec"},
                                                          {"PMIX_GDS_MODULE", "PMIX_MCA_gds"}}) {
        auto v = env_get(in.env, from);
        if (v && !env.count(to)) env[to] = *v;
    }
    env["HOME"] = in.id.home;
    env["USER"] = in.id.name;
    env["LOGNAME"] = in.id.name;
    env["SOCKER_MPI_IMAGE"] = in.image_ref;
    env["SOCKER_MPI_IMAGE_ID"] = in.image.id;
    for (const auto& [k, v] : in.env_set) env[k] = v;
    for (const auto& [k, v] : in.binding_env)
        if (!env.count(k)) env[k] = v;
    return env;
}

namespace {

// The launcher's own mounts: kernel filesystems, a minimal /dev, shared memory, the allowed
// devices, scratch, name resolution and the user's identity.
void add_system_mounts(const LaunchPlan& in, std::vector<MountOp>& m) {
    // Kernel filesystems and a minimal /dev; /proc as limited as the host's (hidepid, subset).
    auto proc = special(MountKind::Proc, "/proc", in.proc_options);
    proc.noexec = true;
    m.push_back(proc);
    auto sys = bind("/sys", "/sys", true, SourceCheck::Trusted, false);
    sys.noexec = true;
    m.push_back(sys);
    // /dev: a fresh tmpfs, root's (0755: nobody else creates anything there), holding the
    // standard character devices as nodes made there (one mknod each, not a bind mount each:
    // fewer mounts to make and to tear down), so it is not nodev; everything else in it is a
    // symlink or a bind of what the admin allows.
    auto dev = special(MountKind::Tmpfs, "/dev", "mode=0755,size=64k");
    dev.noexec = true;
    dev.nodev = false;
    m.push_back(dev);
    for (const auto& [d, num] : std::vector<std::pair<const char*, const char*>>{{"/dev/null", "1:3"},
                                                                                 {"/dev/zero", "1:5"},
                                                                                 {"/dev/full", "1:7"},
                                                                                 {"/dev/random", "1:8"},
                                                                                 {"/dev/urandom", "1:9"},
                                                                                 {"/dev/tty", "5:0"}})
        m.push_back(special(MountKind::Node, d, num));
    auto pts = bind("/dev/pts", "/dev/pts", false, SourceCheck::Trusted);
    pts.noexec = true;
    m.push_back(pts);
    m.push_back(special(MountKind::Symlink, "/dev/ptmx", "pts/ptmx"));
    m.push_back(special(MountKind::Symlink, "/dev/fd", "/proc/self/fd"));
    m.push_back(special(MountKind::Symlink, "/dev/stdin", "/proc/self/fd/0"));
    m.push_back(special(MountKind::Symlink, "/dev/stdout", "/proc/self/fd/1"));
    m.push_back(special(MountKind::Symlink, "/dev/stderr", "/proc/self/fd/2"));
    // Shared memory with the host: Open MPI's vader segments and CMA need it (STACK.md).
    auto shm = bind("/dev/shm", "/dev/shm", false, SourceCheck::Trusted, false);
    shm.noexec = false;
    m.push_back(shm);
    for (const auto& d : in.devices) {
        auto dm = bind(d, d, false, SourceCheck::Trusted);
        dm.nodev = false;
        dm.noexec = true;
        m.push_back(dm);
    }
    // Node-local scratch and name resolution as on the host.
    m.push_back(bind("/tmp", "/tmp", false, SourceCheck::Trusted, false));
    m.push_back(special(MountKind::Tmpfs, "/var/tmp", "mode=1777"));
    m.push_back(bind("/etc/hosts", "/etc/hosts", true, SourceCheck::Trusted));
    m.push_back(bind("/etc/resolv.conf", "/etc/resolv.conf", true, SourceCheck::Trusted));
    // The user's identity inside (MPI and many tools call getpwuid).
    m.push_back(special(MountKind::File, "/etc/passwd", passwd_file(in.id)));
    m.push_back(special(MountKind::File, "/etc/group", group_file(in.id, in.group_names)));
}

// Where the user's own files come in: PMIx directories, home, the working directory, user binds
// (last, so they can sit inside any of the above). Returns the working directory when it is
// visible in the container at its host path.
std::optional<std::string> add_user_mounts(const LaunchPlan& in, std::vector<MountOp>& m) {
    // PMIx server and Open MPI session directories, at the same paths (where validate() allowed).
    for (const auto& pb : in.pmix_dirs) {
        auto pm = bind(pb.dir, pb.dir, false, SourceCheck::OwnedByUser);
        pm.within_prefixes = !pb.slurm_server_dir;
        m.push_back(pm);
    }
    // Slurm's PMIx plugin tells the client (over PMIx, not the environment) to use
    // <TmpFS>/spmix_appdir_<uid>_<job>.<step>.
    if (!in.slurm_appdir.empty() && !path_under(in.slurm_appdir, "/tmp"))
        m.push_back(bind(in.slurm_appdir, in.slurm_appdir, false, SourceCheck::OwnedByUser));
    // Home and working directory, checked as the user.
    const std::string home = in.mount_home ? lexically_normal(in.id.home) : std::string("/");
    if (!in.id.home.empty() && home != "/") m.push_back(bind(home, home, false, SourceCheck::AsUser));
    // The working directory: the very directory the rank runs in (mounted from ".", never looked
    // up again by path), where validate() found it under an allowed prefix and not visible
    // otherwise; its real path is checked again when it is mounted.
    const std::string cwd = in.host_cwd.empty() ? "/" : lexically_normal(in.host_cwd);
    bool cwd_visible =
        !in.host_cwd.empty() && (path_under(cwd, "/tmp") || (home != "/" && path_under(cwd, home)));
    if (in.bind_cwd && !cwd_visible && cwd != "/") {
        auto cm = bind(cwd, cwd, false, SourceCheck::AsUser);
        cm.source_is_cwd = true;
        cm.within_prefixes = true;
        m.push_back(cm);
        cwd_visible = true;
    }
    // User binds last, so they can sit inside any of the above.
    for (const auto& b : in.binds) {
        auto bm = bind(b.source, b.target, b.read_only, SourceCheck::AsUser, false);
        bm.user_bind = true;
        bm.within_prefixes = true;
        m.push_back(bm);
    }

    if (!cwd_visible) return std::nullopt;
    return cwd;
}

// The command: the user's, else Entrypoint + Cmd of the image.
std::vector<std::string> command_of(const LaunchPlan& in) {
    std::vector<std::string> argv;
    if (!in.command.empty()) {
        argv = in.command;
        if (in.entrypoint && !in.image.config.entrypoint.empty()) {
            argv = in.image.config.entrypoint;
            argv.insert(argv.end(), in.command.begin(), in.command.end());
        }
    } else {
        argv = in.image.config.entrypoint;
        argv.insert(argv.end(), in.image.config.cmd.begin(), in.image.config.cmd.end());
    }
    if (argv.empty())
        throw_usage("no command given and image '" + in.image_ref + "' has no Entrypoint or Cmd");

    return argv;
}

}  // namespace

ContainerSpec make_spec(const LaunchPlan& in) {
    ContainerSpec s;
    s.image_ref = in.image_ref;
    s.image_id = in.image.id;
    s.layers = in.layer_dirs;
    s.layers_owned_by_user = in.user_store;
    s.runtime_dir = in.runtime_dir;
    s.id = in.id;
    s.bind_allowed_prefixes = in.bind_allowed_prefixes;
    s.denied_destinations = in.denied_destinations;
    s.binding = in.binding;
    s.keep_fd = in.keep_fd;
    s.umask = in.umask;
    s.rootfs_source = image::overlay_source(in.image.layers);
    s.store_lock = in.store_lock;
    s.squashfs_file = in.squashfs_file;
    s.squashfs_sha256 = in.squashfs_sha256;
    s.squashfs_stamps = in.squashfs_stamps;

    add_system_mounts(in, s.mounts);
    const std::optional<std::string> cwd = add_user_mounts(in, s.mounts);
    s.mounts.insert(s.mounts.end(), in.mpi_mounts.begin(), in.mpi_mounts.end());
    s.mpi = in.mpi;
    s.mpi_libraries = in.mpi_libraries;

    // The container is complete: its key (what another rank's must equal to be joined) goes into
    // the overlay's source, where the other ranks of the step find it (launcher/sharing.hpp).
    s.share = in.share;
    if (s.share) {
        s.share_key = share_key(s);
        s.rootfs_source = image::overlay_source(in.image.layers, s.share_key);
    }

    s.argv = command_of(in);
    s.env = container_env(in);
    s.path = split_list(s.env["PATH"], ':');
    if (in.workdir)
        s.cwd = *in.workdir;
    else if (cwd)
        s.cwd = *cwd;
    else if (!in.image.config.working_dir.empty())
        s.cwd = in.image.config.working_dir;
    else
        s.cwd = "/";
    if (s.env.count("PWD")) s.env["PWD"] = s.cwd;
    return s;
}

}  // namespace socker::launcher
