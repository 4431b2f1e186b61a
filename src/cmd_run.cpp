// socker-mpi [run] IMAGE [CMD...]: the launch. The pipeline to the spec (launch.hpp: detect ->
// validate -> find the image -> bind -> plan -> make_spec, audited there), then --dry-run's
// spec, or the launch record and execute().
#include <iostream>

#include "base/error.hpp"
#include "config.h"
#include "launcher/linux_sys.hpp"
#include "src/commands.hpp"
#include "src/host.hpp"
#include "src/launch.hpp"

namespace socker {

int run_command(const RunRequest& r, const Invocation& inv) {
    Launch launch({r, inv.env, inv.prefix, inv.umask, host::current_identity(), SOCKER_CONFIG_FILE});
    launch.prepare();
    if (r.dry_run) {
        std::cout << launcher::to_json(launch.spec()) << "\n";
        return 0;
    }
    launch.audit_launch();
    launcher::LinuxSys sys;
    launch.audited([&] { launcher::execute(launch.spec(), sys); });
    throw Error(Exit::Internal, "exec", launch.spec().argv.at(0), 0, "returned");  // execute never returns
}

}  // namespace socker
