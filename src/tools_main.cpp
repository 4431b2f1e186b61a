// socker-mpi-tools, the image tools (not setuid): image import/ls/rm/inspect/gc, plan, and the
// imports of launches from image files (internal-ensure). The setuid launcher execs it, as the
// user, or with euid 0 and a clean environment for the admin store (dispatch.hpp); run
// directly, it has the caller's rights. main() is the only reader of environ; errors are
// caught in one place (guarded()).
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <variant>

#include "base/env.hpp"
#include "base/error.hpp"
#include "pmi/launch_context.hpp"
#include "src/commands.hpp"
#include "src/request.hpp"

int main(int argc, char** argv, char** envp) {
    using namespace socker;
    const std::optional<Entry> entry = enter(argc, argv, envp);
    if (!entry) return static_cast<int>(Exit::Refused);
    // Seen as what the user ran (ps, top, pgrep): the socker-mpi command, exec'ed into this program.
    ::prctl(PR_SET_NAME, "socker-mpi", 0, 0, 0);
    const EnvMap& user_env = entry->env;
    const std::string& prefix = entry->prefix;
    std::vector<std::string> args(argv + 1, argv + argc);
    // The launch from an image file: fd 3 is the file, and stays open.
    if (!args.empty() && args[0] == "internal-ensure")
        return internal_ensure(std::vector<std::string>(args.begin() + 1, args.end()));
    return guarded(prefix, [&] {
        const Invocation inv{user_env, prefix, host_entry(-1)};
        const UserRequest req = parse_command_line(args);
        if (std::holds_alternative<RunRequest>(req))
            throw_usage("socker-mpi-tools runs no containers: launch with socker-mpi");
        return std::visit([&](auto&& r) { return run_command(r, inv); }, req);
    });
}
