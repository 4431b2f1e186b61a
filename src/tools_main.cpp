// socker-mpi-tools, the image tools (not setuid): image import/ls/rm/inspect/gc, plan, and the
// imports of launches from image files (internal-ensure). The setuid launcher execs it, as the
// user, or with euid 0 and a clean environment for the admin store (dispatch.hpp); run
// directly, it has the caller's rights. main() is the only reader of environ and the only
// place errors are caught.
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
    // Since Linux 5.18 an execve with argc == 0 arrives as argc 1 with an empty argv[0].
    if (argc < 1 || argv[0] == nullptr || argv[0][0] == '\0') {
        static const char msg[] = "socker-mpi: refusing to run with an empty argument vector\n";
        (void)!::write(2, msg, sizeof msg - 1);
        return static_cast<int>(Exit::Refused);
    }
    // Seen as what the user ran (ps, top, pgrep): the socker-mpi command, exec'ed into this program.
    ::prctl(PR_SET_NAME, "socker-mpi", 0, 0, 0);
    // The user's environment is captured once, as a value; the privileged phase runs with none.
    const EnvMap user_env = env_from_environ(envp);
    ::clearenv();
    ::setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
    // hwloc would dlopen its plugins into this setuid process at the first topology (libxml2,
    // OpenCL, X11, libpciaccess...): none is needed (I/O discovery is off, hwloc reads XML with
    // its built-in parser), and they link the shared libhwloc beside the static one.
    ::setenv("HWLOC_PLUGINS_PATH", "/nonexistent/socker-mpi-loads-no-hwloc-plugins", 1);
    const std::string prefix = "socker-mpi[rank " +
                               (pmi::rank_hint(user_env) ? std::to_string(*pmi::rank_hint(user_env)) : "-") +
                               "]: ";
    std::vector<std::string> args(argv + 1, argv + argc);
    // The launch from an image file: fd 3 is the file, and stays open.
    if (!args.empty() && args[0] == "internal-ensure")
        return internal_ensure(std::vector<std::string>(args.begin() + 1, args.end()));
    try {
        const Invocation inv{user_env, prefix, host_entry(-1)};
        const UserRequest req = parse_command_line(args);
        if (std::holds_alternative<RunRequest>(req))
            throw_usage("socker-mpi-tools runs no containers: launch with socker-mpi");
        return std::visit([&](auto&& r) { return run_command(r, inv); }, req);
    } catch (const HelpRequested& h) {
        std::cout << h.text;
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "%s%s\n", prefix.c_str(), e.what());
        return static_cast<int>(e.code());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%sinternal error: %s\n", prefix.c_str(), e.what());
        return static_cast<int>(Exit::Internal);
    }
}
