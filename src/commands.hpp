// The app: one function per command (one verb per file, cmd_*.cpp), each running the pipeline
// for its request, and what every command shares.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/env.hpp"
#include "src/policy.hpp"
#include "src/request.hpp"

namespace socker {

// What every command gets besides its request: the user's environment (as a value), the
// message prefix, and the caller's umask (the privileged phase runs with 022).
struct Invocation {
    const EnvMap& env;
    std::string prefix;
    mode_t umask = 022;
};

// The start of both programs (main.cpp, tools_main.cpp), before anything else: an empty
// argument vector is refused (nullopt, its message written); the user's environment is captured
// as a value and the process's own replaced by a fixed one (PATH, no hwloc plugins); the prefix
// of every message names the rank when the environment does.
struct Entry {
    EnvMap env;
    std::string prefix;
};
std::optional<Entry> enter(int argc, char** argv, char** envp);

// Runs a program's body: what it throws becomes one line on stderr (with the prefix) and its
// exit code; --help's text goes to stdout (exit 0). main() is the only place errors are caught.
int guarded(const std::string& prefix, const std::function<int()>& body);

// Entry hygiene (fds, umask, dumpable) before anything else. Returns the caller's umask.
mode_t host_entry(int pmi_fd);

// The admin policy from the compiled-in path, with its ownership checks.
Policy load_admin_policy();

int run_command(const RunRequest& r, const Invocation& inv);     // cmd_run.cpp
int run_command(const ImportRequest& r, const Invocation& inv);  // cmd_import.cpp
// `socker images`: the allow-list, one name per line (main.cpp runs `image ls` instead when the
// admin has none).
int run_command(const SockerImagesRequest& r, const Invocation& inv);  // socker.cpp
int run_command(const ImageListRequest& r, const Invocation& inv);     // cmd_image_ls.cpp
int run_command(const ImageRemoveRequest& r, const Invocation& inv);   // cmd_image_rm.cpp
int run_command(const ImageInspectRequest& r, const Invocation& inv);  // cmd_image_inspect.cpp
int run_command(const ImageGcRequest& r, const Invocation& inv);       // cmd_image_gc.cpp
int run_command(const PlanRequest& r, const Invocation& inv);          // cmd_plan.cpp
int run_command(const VersionRequest& r, const Invocation& inv);       // cmd_version.cpp
int run_command(const DoctorRequest& r, const Invocation& inv);        // cmd_doctor.cpp
// The tools' internal-ensure (cmd_ensure.cpp): args after the word.
int internal_ensure(const std::vector<std::string>& args);

}  // namespace socker
