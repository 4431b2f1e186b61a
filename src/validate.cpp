#include "src/validate.hpp"

#include <algorithm>

#include "base/error.hpp"
#include "base/text.hpp"
#include "image/squashfs.hpp"
#include "image/store.hpp"
#include "launcher/mount_policy.hpp"
#include "src/images.hpp"

namespace socker {

namespace {
const char* const kPmixVariables[] = {"PMIX_SERVER_TMPDIR", "PMIX_DSTORE_21_BASE_PATH",
                                      "PMIX_DSTORE_ESH_BASE_PATH", "OMPI_MCA_orte_top_session_dir",
                                      "OMPI_FILE_LOCATION"};
}  // namespace

std::vector<launcher::PmixBind> pmix_binds(const EnvMap& env, const PmixPlaces& at) {
    std::vector<launcher::PmixBind> out;
    auto add = [&](const std::string& dir, bool slurm) {
        for (const auto& o : out)
            if (path_under(dir, o.dir)) return;  // the outer bind carries it
        out.erase(std::remove_if(out.begin(), out.end(),
                                 [&](const launcher::PmixBind& o) { return path_under(o.dir, dir); }),
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
        throw_refused(
            std::string(k) + "=" + *v,
            "not where Slurm's PMIx plugin puts its directory (" +
                (at.slurm_server_dir.empty() ? std::string("not in a Slurm step") : at.slurm_server_dir) +
                ") nor mpirun's session directory (below /tmp), and " +
                (under_prefix ? "user binds are disabled by the admin" : "outside the allowed bind sources"));
    }
    std::sort(out.begin(), out.end(),
              [](const launcher::PmixBind& a, const launcher::PmixBind& b) { return a.dir < b.dir; });
    return out;
}

EnvMap allowed_env(const EnvMap& env, const Policy& pol) {
    EnvMap out;
    for (const auto& [k, val] : env)
        if (std::find(pol.env_deny.begin(), pol.env_deny.end(), k) == pol.env_deny.end()) out[k] = val;
    return out;
}

ValidatedRequest validate(const RunRequest& r, const EnvMap& env, const pmi::LaunchContext& ctx,
                          const Policy& pol, const host::HostFacts& host) {
    ValidatedRequest v;
    // The image: a name is checked before anything touches the filesystem; an image file is
    // imported into the user's own store, which the admin may have disabled.
    v.image = r.image;
    if (r.socker && pol.socker_restricted()) {
        // Socker's commands run the admin's allowed images only, by name.
        const auto allowed = [&] {
            if (names_a_file(r.image)) return false;
            const std::string want = image::parse_image_name(r.image).str();
            return std::any_of(pol.socker_images.begin(), pol.socker_images.end(), [&](const std::string& a) {
                return !names_a_file(a) && image::parse_image_name(a).str() == want;
            });
        };
        if (!allowed())
            throw_refused("socker run " + r.image,
                          "not one of the images the admin allows (see: socker images)");
    }
    if (!names_a_file(r.image)) {
        v.name = image::parse_image_name(r.image);
    } else if (!pol.user_store) {
        throw_refused("image file " + r.image,
                      "launching from a file imports it into your own image store, and the admin disabled "
                      "those (user_store = no); have the image imported, then launch it by name");
    }

    // Where this rank is: its Slurm step, from its cgroups, and nothing it could fake.
    if (!ctx.cgroup_problem.empty()) throw_refused("launch", ctx.cgroup_problem);
    if (auto fd = env_get(env, "PMI_FD"); fd && !host.pmi_fd_is_socket)
        throw_refused("PMI_FD=" + *fd, "not an open socket");
    if (pol.require_slurm_step && !ctx.step)
        throw_refused("launch", "not inside a Slurm job step (the admin requires one)");
    if (ctx.step && ctx.step->uid != static_cast<long>(host.id.uid))
        throw_refused("launch", "the Slurm step belongs to uid " + std::to_string(ctx.step->uid));
    v.keep_fd = ctx.pmi_fd ? std::optional<int>(static_cast<int>(*ctx.pmi_fd)) : std::nullopt;
    // One container per node for the ranks of a step, where the admin allows it: found through the
    // step's cgroup (Slurm's, from this process's membership), never through anything the user set.
    if (pol.share_containers && ctx.step) v.share = host.step_share;

    // Devices: the admin's allow-list, present on the node, permitted by the step's devices
    // cgroup (host facts); asking for one explicitly must be that too.
    v.devices = host.devices.devices;
    for (const auto& d : r.devices) {
        bool listed = false;
        for (const auto& g : pol.devices) listed = listed || host::matches_any(d, {g});
        if (!listed) throw_refused("--device " + d, "not in the admin's device allow-list");
        if (!host.devices.unreadable.empty())
            throw_refused("--device " + d, "no device is passed: " + host.devices.unreadable);
        if (std::find(v.devices.begin(), v.devices.end(), d) == v.devices.end())
            throw Error(Exit::Io, "--device", d, ENOENT, "not present on this node");
    }

    // Binds: the user's, if the admin allows them; their destinations as written (again where
    // they resolve, at mount time); their sources where they really are (at mount time).
    v.bind_allowed_prefixes = pol.bind_allowed_prefixes;
    v.denied_destinations = pol.denied_destinations();
    for (const auto& b : r.binds) {
        if (!pol.user_binds) throw_refused("--bind " + b.source, "user binds are disabled by the admin");
        launcher::UserBind ub{lexically_normal(b.source), lexically_normal(b.target), b.read_only};
        launcher::check_destination(ub.target, v.denied_destinations, "--bind " + b.source);
        v.binds.push_back(std::move(ub));
    }

    // PMIx directories: only where Slurm or mpirun put them (job and step from the cgroup).
    PmixPlaces places;
    const std::string step_suffix =
        ctx.step ? std::to_string(ctx.step->job) + "." + ctx.step->step : std::string();
    if (ctx.step && !host.slurm.spool.empty())
        places.slurm_server_dir = lexically_normal(host.slurm.spool) + "/pmix." + step_suffix;
    places.user_binds = pol.user_binds;
    places.bind_allowed_prefixes = pol.bind_allowed_prefixes;
    v.pmix_dirs = pmix_binds(env, places);
    if (ctx.step && !host.slurm.tmpfs.empty())
        v.slurm_appdir = lexically_normal(host.slurm.tmpfs) + "/spmix_appdir_" + std::to_string(host.id.uid) +
                         "_" + step_suffix;

    // The working directory is bound when it lies under an allowed prefix (it is visible anyway
    // below /tmp and the home directory).
    for (const auto& p : pol.bind_allowed_prefixes)
        v.bind_cwd = v.bind_cwd || (!host.cwd.empty() && path_under(lexically_normal(host.cwd), p));

    // The environment: the user's, less the admin's deny list (host variables kept out); the
    // user's own -e KEY=VALUE on top.
    v.env = allowed_env(env, pol);
    for (const auto& kv : r.env_set) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) throw_usage("--env '" + kv + "': expected KEY=VALUE");
        v.env_set.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }

    v.mount_home = r.mount_home;
    v.entrypoint = r.entrypoint;
    v.command = r.command;
    v.workdir = r.workdir;
    v.placement = r.placement;
    return v;
}

launcher::LaunchPlan plan_launch(const ValidatedRequest& v, const ResolvedImage& img,
                                 const host::HostFacts& host, const topology::RankBinding& rb,
                                 const Policy& pol, mode_t umask, const std::string& store_lock) {
    launcher::LaunchPlan p;
    p.id = host.id;
    p.group_names = host.group_names;
    p.image_ref = v.image;
    p.image = img.record;
    const image::Store store(img.store_root);
    for (const auto& l : img.record.layers) p.layer_dirs.push_back(store.layer_dir(l));
    p.user_store = img.user_store;
    // A squashfs admin store: the image's one file, when it has one (images imported before the
    // store switched launch from their layers). Never for a user's store: no user-made
    // filesystem image reaches the kernel's squashfs driver.
    if (pol.store_squashfs && !img.user_store && !img.record.squashfs.empty()) {
        p.squashfs_file = image::squashfs_path(img.store_root, img.record.squashfs);
        p.squashfs_sha256 = img.record.squashfs;
        p.squashfs_stamps = pol.state_dir + "/squashfs-verified";
    }
    p.store_lock = store_lock;
    p.runtime_dir = pol.runtime_dir;
    p.command = v.command;
    p.env = v.env;
    p.env_set = v.env_set;
    p.binding_env = rb.env;
    p.workdir = v.workdir;
    p.host_cwd = host.cwd;
    p.bind_cwd = v.bind_cwd;
    p.mount_home = v.mount_home;
    p.entrypoint = v.entrypoint;
    p.umask = umask;
    p.proc_options = host.proc_options;
    p.devices = v.devices;
    p.pmix_dirs = v.pmix_dirs;
    p.slurm_appdir = v.slurm_appdir;
    p.binds = v.binds;
    p.bind_allowed_prefixes = v.bind_allowed_prefixes;
    p.denied_destinations = v.denied_destinations;
    p.binding = rb.binding;
    p.keep_fd = v.keep_fd;
    p.share = v.share;
    return p;
}

}  // namespace socker
