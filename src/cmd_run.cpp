// socker-mpi [run] IMAGE [CMD...]: the launch. detect -> validate -> find the image -> bind ->
// plan -> make_spec -> execute, each a named step; every refusal and the launch itself are
// audited here, once.
#include <cstdio>
#include <iostream>

#include "base/error.hpp"
#include "launcher/linux_sys.hpp"
#include "launcher/plan.hpp"
#include "pmi/launch_context.hpp"
#include "src/audit.hpp"
#include "src/commands.hpp"
#include "src/host.hpp"
#include "src/images.hpp"
#include "src/stores.hpp"
#include "src/validate.hpp"
#include "topology/rank_binding.hpp"

namespace socker {

namespace {

// One audit record per refusal or failure, and one per launch (SECURITY.md "Audit").
class Auditor {
public:
    Auditor(const Policy& pol, const launcher::Identity& id, const pmi::LaunchContext& ctx,
            const RunRequest& r, std::string prefix)
        : pol_(pol), prefix_(std::move(prefix)), command_(r.command) {
        f_.user = id.name;
        f_.uid = static_cast<long>(id.uid);
        if (ctx.step) {
            f_.job = std::to_string(ctx.step->job);
            f_.step = ctx.step->step;
        }
        f_.rank = ctx.rank;
        f_.image = r.image;
    }
    void image(const ValidatedRequest& v, const ResolvedImage& img) {
        if (v.name) f_.image = v.name->str();
        f_.store = img.user_store ? "user" : "admin";
        f_.digest = "sha256:" + img.record.id;
    }
    // Returns why the record could not be written ("" = written); warns unless it is required.
    std::string record(const std::string& decision, const std::string& reason,
                       const std::vector<std::string>& argv) {
        f_.decision = decision;
        f_.reason = reason;
        f_.argv = argv;
        std::string undelivered = audit::send(pol_, audit::audit_record(f_));
        if (!undelivered.empty() && !pol_.audit_required)
            std::fprintf(stderr, "%swarning: audit record not written (%s)\n", prefix_.c_str(),
                         undelivered.c_str());
        return undelivered;
    }
    void refused(const Error& e, const std::vector<std::string>& argv) {
        const bool refusal =
            e.code() == Exit::Refused || e.code() == Exit::Usage || e.code() == Exit::BadImage;
        record(refusal ? "refused" : "failed", e.what(), argv);
    }
    void launch(const std::vector<std::string>& argv) {
        if (const std::string why = record("launch", "", argv); !why.empty() && pol_.audit_required)
            throw_refused("launch", "the audit record could not be written (" + why +
                                        ") and the admin requires it (audit_required = yes)");
    }
    const std::vector<std::string>& command() const { return command_; }

private:
    const Policy& pol_;
    std::string prefix_;
    std::vector<std::string> command_;
    audit::AuditFields f_;
};

void say(const std::string& prefix, const std::vector<std::string>& lines) {
    for (const auto& l : lines) std::fprintf(stderr, "%s%s\n", prefix.c_str(), l.c_str());
}

}  // namespace

int run_command(const RunRequest& r, const Invocation& inv) {
    const Policy pol = load_admin_policy();
    const launcher::Identity id = host::current_identity();
    const pmi::ProbeInput probe = host::probe_input(inv.env, pol);
    const pmi::LaunchContext ctx = pmi::detect(probe);
    if (r.verbose) say(inv.prefix, ctx.trace);
    Auditor audit(pol, id, ctx, r, inv.prefix);
    launcher::ContainerSpec spec;
    try {
        const host::HostFacts host = host::gather(pol, id, ctx, probe);
        const ValidatedRequest v = validate(r, inv.env, ctx, pol, host);
        if (r.verbose && !host.devices.unreadable.empty())
            say(inv.prefix, {"devices: none passed: " + host.devices.unreadable});
        const ResolvedImage img =
            v.name ? find_image(*v.name, pol, id) : image_from_file(v.image, pol, id, inv.prefix);
        audit.image(v, img);
        const topology::RankBinding rb =
            topology::binding_for_rank(v.placement, inv.env, pol.placement_sections(), host.hostname,
                                       ctx.rank, ctx.local_rank, ctx.local_size);
        if (r.verbose) say(inv.prefix, rb.trace);
        if (r.placement.report && !rb.report.empty()) say(inv.prefix, {rb.report});
        spec = launcher::make_spec(
            plan_launch(v, img, host, rb, pol, inv.umask, host::ensure_store_lock(pol, img.store_root)));
    } catch (const Error& e) {
        audit.refused(e, audit.command());
        throw;
    }
    if (r.dry_run) {
        std::cout << launcher::to_json(spec) << "\n";
        return 0;
    }
    audit.launch(spec.argv);
    launcher::LinuxSys sys;
    try {
        launcher::execute(spec, sys);
    } catch (const Error& e) {
        audit.refused(e, spec.argv);
        throw;
    }
}

}  // namespace socker
