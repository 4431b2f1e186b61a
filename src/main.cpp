// socker-mpi, the setuid launcher: environ + argv -> the command line parsed -> a launch
// (cmd_run.cpp: LaunchContext -> RunRequest -> ValidatedRequest -> LaunchPlan -> ContainerSpec
// -> execute()), --version, or the image tools exec'd in place (dispatch.hpp) for everything
// else. main() is the only reader of environ; errors are caught in one place (guarded()).
#include <sys/stat.h>
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
#include "src/socker.hpp"

int main(int argc, char** argv, char** envp) {
    using namespace socker;
    const std::optional<Entry> entry = enter(argc, argv, envp);
    if (!entry) return static_cast<int>(Exit::Refused);
    const EnvMap& user_env = entry->env;
    const std::string& prefix = entry->prefix;
    int pmi_fd = -1;
    if (auto v = env_long(user_env, "PMI_FD")) pmi_fd = static_cast<int>(*v);
    return guarded(prefix, [&] {
        const Invocation inv{user_env, prefix, host_entry(pmi_fd)};
        std::vector<std::string> args(argv + 1, argv + argc);
        UserRequest req;
        if (called_as_socker(argv[0])) {  // Socker's commands (src/socker.hpp)
            const Policy pol = load_admin_policy();
            req = parse_socker_command_line(args, user_env, pol, [](const std::string& d) {
                struct stat st {};
                return ::stat(d.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
            });
            if (auto* images = std::get_if<SockerImagesRequest>(&req)) {
                if (pol.socker_restricted()) return run_command(*images, inv);
                args = {"image", "ls"};  // no allow-list: every image of the admin store
                req = ImageListRequest{};
            }
        } else {
            req = parse_command_line(args);
        }
        if (auto* run = std::get_if<RunRequest>(&req)) return run_command(*run, inv);
        if (auto* version = std::get_if<VersionRequest>(&req)) return run_command(*version, inv);
        exec_tools(req, args, inv);  // image import/ls/rm/inspect/gc, plan: the image tools
    });
}
