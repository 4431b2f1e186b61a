// One function per subcommand; each runs the pipeline for its request.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>

#include "env.hpp"
#include "image_store.hpp"
#include "launcher/spec.hpp"
#include "policy.hpp"
#include "request.hpp"

namespace socker {

// What every command gets besides its request: the user's environment (as a value), the
// message prefix, and the caller's umask (the privileged phase runs with 022).
struct Invocation {
    const EnvMap& env;
    std::string prefix;
    mode_t umask = 022;
};

// The admin policy from the compiled-in path, with its ownership checks.
Policy load_admin_policy();

// Entry hygiene (fds, umask, dumpable) before anything else. Returns the caller's umask.
mode_t host_entry(int pmi_fd);

// The user's own image store, ~/.local/share/socker-mpi/images. `create` makes the missing
// directories (0700): call it so only as the user (after the drop). Refuses a user without a home.
std::string user_store_path(const launcher::Identity& id, bool create);
// Options of an import: the admin's limits and the store's node lock (host::ensure_store_lock).
image::ImportOptions import_options(const Policy& pol, const std::string& node_lock);
// One line on stderr: what an import read, unpacked and reused.
void print_import_summary(const std::string& prefix, const std::string& what, const image::ImportResult& res);
// A progress bar when stderr is a terminal; nullopt otherwise.
using ProgressCallback = std::function<void(const image::ImportProgress&)>;
std::optional<ProgressCallback> progress_bar_for(const std::string& what);

int run_command(const RunRequest& r, const Invocation& inv);
int run_command(const ImportRequest& r, const Invocation& inv);
int run_command(const ImageListRequest& r, const Invocation& inv);
int run_command(const ImageRemoveRequest& r, const Invocation& inv);
int run_command(const ImageInspectRequest& r, const Invocation& inv);
int run_command(const ImageGcRequest& r, const Invocation& inv);
int run_command(const PlanRequest& r, const Invocation& inv);
int run_command(const VersionRequest& r, const Invocation& inv);

}  // namespace socker
