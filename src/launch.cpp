#include "src/launch.hpp"

#include <cstdio>

#include "src/images.hpp"
#include "src/mpi.hpp"
#include "src/stores.hpp"

namespace socker {

namespace {

void say(const std::string& prefix, const std::vector<std::string>& lines) {
    for (const auto& l : lines) std::fprintf(stderr, "%s%s\n", prefix.c_str(), l.c_str());
}

}  // namespace

Launch::Launch(const LaunchInput& in)
    : in_(in),
      env_(in.env),
      pol_(host::load_policy(in.config_path)),
      probe_(host::probe_input(in.env, pol_)),
      ctx_(pmi::detect(probe_)) {
    if (in_.request.verbose) say(in_.prefix, ctx_.trace);
    fields_.user = in_.id.name;
    fields_.uid = static_cast<long>(in_.id.uid);
    if (ctx_.step) {
        fields_.job = std::to_string(ctx_.step->job);
        fields_.step = ctx_.step->step;
    }
    fields_.rank = ctx_.rank;
    fields_.image = in_.request.image;
}

std::string Launch::record(const std::string& decision, const std::string& reason,
                           const std::vector<std::string>& argv) {
    fields_.decision = decision;
    fields_.reason = reason;
    fields_.argv = argv;
    std::string undelivered = audit::send(pol_, audit::audit_record(fields_));
    if (!undelivered.empty() && !pol_.audit_required)
        std::fprintf(stderr, "%swarning: audit record not written (%s)\n", in_.prefix.c_str(),
                     undelivered.c_str());
    return undelivered;
}

void Launch::audit_failure(const Error& e) {
    const bool refusal = e.code() == Exit::Refused || e.code() == Exit::Usage || e.code() == Exit::BadImage;
    record(refusal ? "refused" : "failed", e.what(), spec_.argv.empty() ? in_.request.command : spec_.argv);
}

void Launch::audit_launch() {
    if (const std::string why = record("launch", "", spec_.argv); !why.empty() && pol_.audit_required)
        throw_refused("launch", "the audit record could not be written (" + why +
                                    ") and the admin requires it (audit_required = yes)");
}

void Launch::prepare(const EngineImage& engine_image) {
    const RunRequest& r = in_.request;
    try {
        const std::string node =
            ctx_.step && !ctx_.step->node.empty() ? ctx_.step->node : host::short_hostname();
        engine_ = in_.slurm_task ? "inplace" : engine_for(pol_, r.engine, node);
        const bool engine_mode = engine_ != "inplace";
        if (engine_mode && r.mpi && *r.mpi != "none")
            throw_usage("--mpi: not with --engine=" + engine_ + " (the engine runs the image's own MPI)");
        // The host MPI asked for (or the admin's default on this node): its devices join the
        // allow-list (still intersected with the step's devices cgroup).
        mpi_ = engine_mode ? nullptr : mpi_for(pol_, r.mpi, node);
        Policy gather_pol = pol_;
        if (mpi_)
            gather_pol.devices.insert(gather_pol.devices.end(), mpi_->devices.begin(), mpi_->devices.end());
        const host::HostFacts host = host::gather(gather_pol, in_.id, ctx_, probe_);
        hostname_ = host.hostname;
        if (in_.slurm_task && ctx_.step && !env_.count("PMIX_SERVER_TMPDIR"))
            if (auto dir = host::slurm_pmix_server_dir(host.slurm, *ctx_.step))
                env_["PMIX_SERVER_TMPDIR"] = *dir;
        v_ = validate(r, env_, ctx_, pol_, host);
        if (r.verbose && !host.devices.unreadable.empty())
            say(in_.prefix, {"devices: none passed: " + host.devices.unreadable});
        if (engine_mode && (!v_.name || !engine_image))
            throw_usage("--engine=" + engine_ + " runs the engine's images by name, not an image file ('" +
                        v_.image + "'): load it into the engine (docker load) or launch in place");
        const ResolvedImage img = engine_mode ? engine_image(*this, v_)
                                  : v_.name   ? find_image(*v_.name, pol_, in_.id)
                                              : image_from_file(v_.image, pol_, in_.id, in_.prefix);
        if (v_.name) fields_.image = v_.name->str();
        fields_.store = img.user_store ? "user" : "admin";
        fields_.digest = "sha256:" + img.record.id;
        topology::RankBinding rb;
        if (!in_.slurm_task) {
            rb = topology::binding_for_rank(v_.placement, env_, pol_.placement_sections(), host.hostname,
                                            ctx_.rank, ctx_.local_rank, ctx_.local_size);
            if (r.verbose) say(in_.prefix, rb.trace);
            if (r.placement.report && !rb.report.empty()) say(in_.prefix, {rb.report});
        }
        plan_ = plan_launch(
            v_, img, host, rb, pol_, in_.umask,
            img.store_root.empty() ? std::string() : host::ensure_store_lock(pol_, img.store_root));
        if (mpi_) inject_mpi();
        spec_ = launcher::make_spec(plan_);
    } catch (const Error& e) {
        audit_failure(e);
        throw;
    }
}

void Launch::inject_mpi() {
    const std::vector<mpi::HostLibrary> host_libs = mpi::read_host_libraries(*mpi_);
    std::vector<std::string> names;
    names.reserve(host_libs.size());
    for (const auto& h : host_libs) names.push_back(mpi::library_name(h.soname));
    const mpi::ImageLibraries img = mpi::scan_image(launcher::make_spec(plan_), names);
    mpi::Injection inj = mpi::plan_injection(*mpi_, host_libs, img, v_.image);
    for (const auto& w : inj.warnings) std::fprintf(stderr, "%swarning: %s\n", in_.prefix.c_str(), w.c_str());
    if (in_.request.verbose)
        for (const auto& l : inj.libraries)
            say(in_.prefix,
                {"mpi: " + l.decision + " " + l.soname + ": host " + l.host_path + " " + l.host_version +
                 (l.image_path.empty() ? "" : ", image " + l.image_path + " " + l.image_version) + " (" +
                 l.reason + ")"});
    plan_.mpi = mpi_->name;
    plan_.mpi_mounts = std::move(inj.mounts);
    plan_.mpi_libraries = std::move(inj.libraries);
    plan_.env_set.insert(plan_.env_set.begin(), inj.env.begin(), inj.env.end());
}

TaskFinish finish_in_task(const Launch& launch, const EnvMap& env_now) {
    const pmi::LaunchContext& ctx = launch.context();
    const topology::RankBinding rb = topology::binding_for_rank(
        launch.validated().placement, env_now, launch.policy().placement_sections(), launch.hostname(),
        ctx.rank, ctx.local_rank, ctx.local_size);
    launcher::LaunchPlan plan = launch.plan();
    plan.env = allowed_env(env_now, launch.policy());
    plan.binding_env = rb.env;
    TaskFinish out;
    out.env = launcher::container_env(plan);
    out.binding = rb.binding;
    out.trace = rb.trace;
    out.report = rb.report;
    return out;
}

}  // namespace socker
