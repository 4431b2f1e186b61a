// The launch pipeline up to the container's spec, shared by the two front doors: the setuid
// launcher (cmd_run.cpp: then execute()) and the SPANK plugin (spank/: then enter_for_task(),
// with slurmstepd's own drop and exec). context -> validate -> image -> binding -> plan -> spec;
// every refusal or failure is audited once, here, and rethrown.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/env.hpp"
#include "base/error.hpp"
#include "launcher/plan.hpp"
#include "launcher/spec.hpp"
#include "pmi/launch_context.hpp"
#include "src/audit.hpp"
#include "src/host.hpp"
#include "src/policy.hpp"
#include "src/request.hpp"
#include "src/validate.hpp"
#include "topology/rank_binding.hpp"

namespace socker {

// Who launches, from where: the environment as a value, the message prefix, the caller's
// umask, the user (the real ids of the setuid program, or Slurm's job credentials in a task).
struct LaunchInput {
    const RunRequest& request;
    const EnvMap& env;
    std::string prefix;
    mode_t umask = 022;
    launcher::Identity id;
    std::string config_path;  // the admin config
    // The SPANK plugin's task, before Slurm finished its environment: its binding is decided
    // later, as the user (finish_in_task: SLURM_CPU_BIND is not there yet), none in the spec;
    // the step's PMIx server directory (PMIX_SERVER_TMPDIR is not there yet either) is bound
    // where Slurm's PMIx plugin made it.
    bool slurm_task = false;
};

class Launch;
// Where an engine-mode launch finds its image (cmd_run.cpp: the engine's description of it).
using EngineImage = std::function<ResolvedImage(const Launch&, const ValidatedRequest&)>;

class Launch {
public:
    explicit Launch(const LaunchInput& in);
    // Runs the pipeline to the spec (audited and rethrown on refusal). In engine mode
    // (--engine=docker, or the admin's default) the image comes from `engine_image`.
    void prepare(const EngineImage& engine_image = {});
    // The engine this launch runs on ("inplace" or "docker"), decided by prepare().
    const std::string& engine() const { return engine_; }
    // The launch record (refused, 77, when the admin requires it and it cannot be written).
    void audit_launch();
    void audit_failure(const Error& e);
    // Runs the side-effect stage (execute, enter_for_task): a failure is audited, then rethrown.
    template <class F>
    void audited(F&& step) {
        try {
            step();
        } catch (const Error& e) {
            audit_failure(e);
            throw;
        }
    }

    const Policy& policy() const { return pol_; }
    const pmi::LaunchContext& context() const { return ctx_; }
    const launcher::LaunchPlan& plan() const { return plan_; }
    const launcher::ContainerSpec& spec() const { return spec_; }
    const ValidatedRequest& validated() const { return v_; }
    const std::string& hostname() const { return hostname_; }
    const std::string& prefix() const { return in_.prefix; }

private:
    LaunchInput in_;
    EnvMap env_;
    Policy pol_;
    pmi::ProbeInput probe_;
    pmi::LaunchContext ctx_;
    audit::AuditFields fields_;
    ValidatedRequest v_;
    launcher::LaunchPlan plan_;
    launcher::ContainerSpec spec_;
    std::string hostname_;
    std::string engine_ = "inplace";
    const MpiSection* mpi_ = nullptr;  // the host MPI to inject (nullptr = none)
    void inject_mpi();
    std::string record(const std::string& decision, const std::string& reason,
                       const std::vector<std::string>& argv);
};

// The SPANK task's last step, as the user: the rank's binding from the environment Slurm has
// now finished, and the container's environment computed from that same environment (the
// launcher's rules: the admin's deny list, the image's Env, PMIx names, -e).
struct TaskFinish {
    EnvMap env;
    std::optional<launcher::CpuBinding> binding;
    std::vector<std::string> trace;  // -v: how the binding was decided
    std::string report;              // --report-bindings
};
TaskFinish finish_in_task(const Launch& launch, const EnvMap& env_now);

}  // namespace socker
