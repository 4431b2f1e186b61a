// One function per subcommand; each runs the pipeline for its request.
#pragma once

#include <string>

#include "env.hpp"
#include "policy.hpp"
#include "request.hpp"

namespace socker {

// The admin policy from the compiled-in path, with its ownership checks.
Policy load_admin_policy();

// Entry hygiene (fds, umask, dumpable) before anything else.
void host_entry(int pmi_fd);

int run_command(const RunRequest& r, const EnvMap& env, const std::string& prefix);
int run_command(const ImportRequest& r, const EnvMap& env, const std::string& prefix);
int run_command(const ImageListRequest& r, const EnvMap& env, const std::string& prefix);
int run_command(const ImageRemoveRequest& r, const EnvMap& env, const std::string& prefix);
int run_command(const ImageInspectRequest& r, const EnvMap& env, const std::string& prefix);
int run_command(const PlanRequest& r, const EnvMap& env, const std::string& prefix);
int run_command(const VersionRequest& r, const EnvMap& env, const std::string& prefix);

}  // namespace socker
