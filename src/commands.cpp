#include "commands.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <regex>

#include "config.h"
#include "error.hpp"
#include "host.hpp"
#include "image_store.hpp"
#include "launch_context.hpp"
#include "launcher/linux_sys.hpp"
#include "launcher/plan.hpp"
#include "policy.hpp"
#include "rank_binding.hpp"

namespace socker {

mode_t host_entry(int pmi_fd) {
    // The privileged phase runs with root's gid too (files and mounts it creates are root's);
    // the saved/real gid stay the user's until the one drop routine sets all three.
    if (::geteuid() == 0 && ::getegid() != 0 && ::setegid(0) != 0) throw_errno("setegid", "0", errno);
    int keep = (pmi_fd > 2 && host::fd_is_socket(pmi_fd)) ? pmi_fd : -1;
    return host::sanitize_fds(keep);
}

namespace {

// IMAGE is an image file rather than a name: names never start with '/' or '.'.
bool names_a_file(const std::string& image) { return !image.empty() && (image[0] == '/' || image[0] == '.'); }

struct ResolvedImage {
    image::ImageRecord record;
    std::string store_root;
    bool user_store = false;  // the user's own store: read and mounted as the user
};

// IMAGE names a file: the image imported from it, importing it first if this file (as it is
// now) was never imported. 64 ranks starting at once make one import (image::ensure_image).
// Always into the user's own store, as the user: running a private file must not publish it in
// the shared admin store (that takes a deliberate `image import`).
ResolvedImage image_from_file(const RunRequest& r, const Policy& pol, const launcher::Identity& id,
                              const std::string& prefix) {
    if (!pol.user_store)
        throw_refused("image file " + r.image,
                      "launching from a file imports it into your own image store, and the admin disabled "
                      "those (user_store = no); have the image imported, then launch it by name");
    const auto uo = launcher::open_as_user(r.image, id.uid, id.gid, true);
    const launcher::Fd closer(uo.fd);
    if (uo.is_dir)
        throw_usage(r.image + ": a directory; launch from an image file (docker-archive, OCI archive, rootfs "
                              "tar), or import an OCI layout first: socker-mpi image import layout:DIR NAME");
    struct stat st {};
    if (::fstat(uo.fd, &st) != 0) throw_errno("stat", r.image, errno);
    const image::ImageName name = image::name_for_file(
        {launcher::fd_path(uo.fd), static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino),
         static_cast<unsigned long long>(st.st_size),
         static_cast<unsigned long long>(st.st_mtim.tv_sec) * 1000000000ULL + static_cast<unsigned long long>(st.st_mtim.tv_nsec),
         static_cast<unsigned long long>(st.st_ctim.tv_sec) * 1000000000ULL + static_cast<unsigned long long>(st.st_ctim.tv_nsec)});

    image::ImportSource src;
    src.label = r.image;
    src.fd = uo.fd;
    src.seekable = true;
    src.size = static_cast<unsigned long long>(st.st_size);
    const std::string root = user_store_path(id, false);
    image::ImportOptions opt = import_options(pol, host::ensure_store_lock(pol, root));  // as root
    if (auto cb = progress_bar_for("importing " + r.image)) opt.progress = *cb;
    const std::string json = launcher::in_user_process(id, [&] {
        user_store_path(id, true);
        auto er = image::ensure_image(root, src, name, opt);
        if (er.imported) print_import_summary(prefix, r.image + " as " + name.str(), *er.imported);
        return image::record_to_json(er.record);
    });
    return {image::record_from_json(json, root), root, true};
}

// IMAGE names an image: the admin store's, else (when the admin allows per-user stores) the
// user's own, looked up by a process that is only the user.
ResolvedImage image_by_name_in_stores(const image::ImageName& name, const Policy& pol, const launcher::Identity& id) {
    host::check_store_dir(pol.image_store);
    try {
        return {image::Store(pol.image_store).find(name), pol.image_store, false};
    } catch (const Error& e) {
        if (e.code() != Exit::BadImage || !pol.user_store || id.home.empty() || id.home == "/") throw;
        const std::string root = user_store_path(id, false);
        const std::string json = launcher::in_user_process(id, [&]() -> std::string {
            struct stat st {};
            if (::stat(root.c_str(), &st) != 0) return "";
            auto rec = image::Store(root).find_complete(name);
            return rec ? image::record_to_json(*rec) : "";
        });
        if (json.empty()) throw;  // in neither store: the admin store's message and suggestion
        return {image::record_from_json(json, root), root, true};
    }
}

ResolvedImage image_by_name(const image::ImageName& name, const Policy& pol, const launcher::Identity& id) {
    try {
        return image_by_name_in_stores(name, pol, id);
    } catch (const Error& e) {
        // "app.tar" is a valid image name; the user most likely meant the file.
        static const std::regex file_like(R"(.*\.(tar|tar\.gz|tgz|tar\.zst|tar\.xz|tar\.bz2|oci)$)");
        if (e.code() != Exit::BadImage || name.tag != "latest" || !std::regex_match(name.repo, file_like)) throw;
        throw Error(e.code(), std::string(e.what()) + " (to launch an image file, give its path: ./" + name.repo + ")", {});
    }
}

}  // namespace

Policy load_admin_policy() { return host::load_policy(SOCKER_CONFIG_FILE); }

image::ImportOptions import_options(const Policy& pol, const std::string& node_lock) {
    image::ImportOptions opt;
    opt.node_lock = node_lock;
    opt.limits = {pol.import_max_bytes, pol.import_max_files, pol.import_max_ratio};
    return opt;
}

int run_command(const RunRequest& r, const Invocation& inv) {
    const EnvMap& env = inv.env;
    const std::string& prefix = inv.prefix;
    // An image name is checked before anything touches the filesystem.
    const bool from_file = names_a_file(r.image);
    const std::optional<image::ImageName> name =
        from_file ? std::nullopt : std::optional<image::ImageName>(image::parse_image_name(r.image));
    const Policy pol = load_admin_policy();
    const launcher::Identity id = host::current_identity();

    pmi::ProbeInput probe{env, host::read_text("/proc/self/cgroup"),
                          env_long(env, "PMI_FD") ? host::fd_is_socket(static_cast<int>(*env_long(env, "PMI_FD")))
                                                  : false,
                          pol.slurm_cgroup_prefix};
    const pmi::LaunchContext ctx = pmi::detect(probe);
    if (r.verbose)
        for (const auto& t : ctx.trace) std::fprintf(stderr, "%s%s\n", prefix.c_str(), t.c_str());

    // One audit record per refusal or failure, and one per launch.
    host::AuditFields af;
    af.user = id.name;
    af.uid = static_cast<long>(id.uid);
    if (ctx.step) {
        af.job = std::to_string(ctx.step->job);
        af.step = ctx.step->step;
    }
    af.rank = ctx.rank;
    af.image = name ? name->str() : r.image;
    // Returns why the record could not be written ("" = written).
    auto audit = [&](const std::string& decision, const std::string& reason, const std::vector<std::string>& argv) {
        af.decision = decision;
        af.reason = reason;
        af.argv = argv;
        const std::string undelivered = host::audit(pol, host::audit_record(af));
        if (!undelivered.empty() && !pol.audit_required)
            std::fprintf(stderr, "%swarning: audit record not written (%s)\n", prefix.c_str(), undelivered.c_str());
        return undelivered;
    };
    auto audited_error = [&](const Error& e) {
        audit(e.code() == Exit::Refused || e.code() == Exit::Usage || e.code() == Exit::BadImage ? "refused" : "failed",
              e.what(), r.command);
    };
    auto refuse = [&](const std::string& what, const std::string& why) {
        audit("refused", why, r.command);
        throw_refused(what, why);
    };
    if (!ctx.cgroup_problem.empty()) refuse("launch", ctx.cgroup_problem);
    if (env.count("PMI_FD") && !probe.pmi_fd_is_socket)
        refuse("PMI_FD=" + env.at("PMI_FD"), "not an open socket");
    if (pol.require_slurm_step && !ctx.step)
        refuse("launch", "not inside a Slurm job step (the admin requires one)");
    if (ctx.step && ctx.step->uid != static_cast<long>(id.uid))
        refuse("launch", "the Slurm step belongs to uid " + std::to_string(ctx.step->uid));

    // Where the rank runs: the path of its working directory (the directory itself is what
    // gets mounted, see launcher::MountOp::source_is_cwd).
    const std::string cwd = host::working_dir();
    ResolvedImage img;
    try {
        img = from_file ? image_from_file(r, pol, id, prefix) : image_by_name(*name, pol, id);
    } catch (const Error& e) {
        audited_error(e);
        throw;
    }
    const image::ImageRecord& rec = img.record;
    const image::Store store(img.store_root);
    af.store = img.user_store ? "user" : "admin";
    af.digest = "sha256:" + rec.id;

    launcher::PlanInput in;
    in.request = r;
    in.ctx = ctx;
    in.policy = pol;
    in.id = id;
    in.image = rec;
    for (const auto& l : rec.layers) in.layer_dirs.push_back(store.layer_dir(l));
    in.user_store = img.user_store;
    in.env = env;
    in.host_cwd = cwd;
    in.hostname = host::short_hostname();
    in.umask = inv.umask;
    in.store_lock = host::ensure_store_lock(pol, img.store_root);
    const std::string mountinfo = host::read_text("/proc/self/mountinfo");
    in.proc_options = launcher::proc_options_from_mountinfo(mountinfo);
    const host::DeviceFacts dev = host::allowed_devices(pol.devices, pol.device_cgroup_required,
                                                        probe.proc_self_cgroup, mountinfo);
    in.devices = dev.devices;
    if (r.verbose && !dev.unreadable.empty())
        std::fprintf(stderr, "%sdevices: none passed: %s\n", prefix.c_str(), dev.unreadable.c_str());
    for (const auto& d : r.devices) {
        if (!host::matches_any(d, pol.devices)) refuse("--device " + d, "not in the admin's device allow-list");
        if (!dev.unreadable.empty()) refuse("--device " + d, "no device is passed: " + dev.unreadable);
        if (std::find(in.devices.begin(), in.devices.end(), d) == in.devices.end())
            throw Error(Exit::Io, "--device", d, ENOENT, "not present on this node");
    }
    in.group_names = host::group_names(id);
    if (ctx.step) {
        // The node name from the step's cgroup (Slurm's, not the user's SLURMD_NODENAME).
        const std::string node = ctx.step->node.empty() ? in.hostname : ctx.step->node;
        const host::SlurmFacts sf = host::slurm_facts(slurm_conf_for(pol, node), node);
        in.slurm_tmpfs = sf.tmpfs;
        in.slurm_spool = sf.spool;
    }
    // Placement: pure planning over this machine's topology, inside the inherited cpuset.
    const topology::RankBinding rb = topology::binding_for_rank(r.binding, env, pol, in.hostname, ctx.rank,
                                                                ctx.local_rank, ctx.local_size);
    if (r.verbose)
        for (const auto& t : rb.trace) std::fprintf(stderr, "%s%s\n", prefix.c_str(), t.c_str());
    if (r.binding.report && !rb.report.empty()) std::fprintf(stderr, "%s%s\n", prefix.c_str(), rb.report.c_str());
    in.binding = rb.binding;
    in.binding_env = rb.env;
    launcher::ContainerSpec spec;
    try {
        spec = launcher::make_spec(in);
    } catch (const Error& e) {
        audited_error(e);
        throw;
    }

    if (r.dry_run) {
        std::cout << launcher::to_json(spec) << "\n";
        return 0;
    }
    if (const std::string undelivered = audit("launch", "", spec.argv); !undelivered.empty() && pol.audit_required)
        throw_refused("launch", "the audit record could not be written (" + undelivered +
                                    ") and the admin requires it (audit_required = yes)");
    launcher::LinuxSys sys;
    try {
        launcher::execute(spec, sys);
    } catch (const Error& e) {
        audit(e.code() == Exit::Refused ? "refused" : "failed", e.what(), spec.argv);
        throw;
    }
}

int run_command(const VersionRequest&, const Invocation&) {
    std::printf("socker-mpi %s (PMIx %s, hwloc %s)\n", SOCKER_VERSION, SOCKER_PMIX_VERSION, SOCKER_HWLOC_VERSION);
    return 0;
}

}  // namespace socker
