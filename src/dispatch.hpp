// The launcher runs containers; everything else (image import/ls/rm/inspect/gc, plan) is the
// image tools program's (SOCKER_TOOLS_PROGRAM), exec'd in place: the setuid binary never maps
// a tar or image-JSON parser, nor an XML topology parser.
#pragma once

#include <string>
#include <vector>

#include "src/commands.hpp"
#include "src/request.hpp"

namespace socker {

// Execs the tools for `req` (parsed from `args`): as the user, for good, for plan and the
// user's own store (after making the store's node lock as root); with the privileged phase's
// clean environment and euid 0 for the admin store, where the tools check who may change it.
[[noreturn]] void exec_tools(const UserRequest& req, const std::vector<std::string>& args,
                             const Invocation& inv);

// The tools program, checked: a root-owned regular file not writable by group or others.
std::string tools_program();

}  // namespace socker
