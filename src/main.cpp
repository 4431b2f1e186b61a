// socker-mpi, the setuid launcher: environ + argv -> the command line parsed -> a launch
// (cmd_run.cpp: LaunchContext -> RunRequest -> ValidatedRequest -> LaunchPlan -> ContainerSpec
// -> execute()), --version, or the image tools exec'd in place (dispatch.hpp) for everything
// else. main() is the only reader of environ and the only place errors are caught.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <variant>

#include "base/env.hpp"
#include "base/error.hpp"
#include "pmi/launch_context.hpp"
#include "src/commands.hpp"
#include "src/dispatch.hpp"
#include "src/request.hpp"

int main(int argc, char** argv, char** envp) {
    using namespace socker;
    // Since Linux 5.18 an execve with argc == 0 arrives as argc 1 with an empty argv[0].
    if (argc < 1 || argv[0] == nullptr || argv[0][0] == '\0') {
        static const char msg[] = "socker-mpi: refusing to run with an empty argument vector\n";
        (void)!::write(2, msg, sizeof msg - 1);
        return static_cast<int>(Exit::Refused);
    }
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
    int pmi_fd = -1;
    if (auto v = env_long(user_env, "PMI_FD")) pmi_fd = static_cast<int>(*v);
    try {
        const Invocation inv{user_env, prefix, host_entry(pmi_fd)};
        std::vector<std::string> args(argv + 1, argv + argc);
        UserRequest req = parse_command_line(args);
        if (auto* run = std::get_if<RunRequest>(&req)) return run_command(*run, inv);
        if (auto* version = std::get_if<VersionRequest>(&req)) return run_command(*version, inv);
        exec_tools(req, args, inv);  // image import/ls/rm/inspect/gc, plan: the image tools
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
