// Socker's commands (docs/docker.md), for its users: an installed `socker` name for the launcher.
//   socker images             the images the admin allows (socker_images, socker_images_file)
//   socker run IMAGE CMD...   run CMD in IMAGE as the user: the allow-list applies, and Socker's
//                             automatic binds ($HOME, $PWD, /work, $SCRATCH in a job) and working
//                             directory ($PWD) are the launch's; in place, or through the engine
//                             when the admin says so (engine).
//   socker -h | --help, socker -v | --version
// Everything after IMAGE is the command's argv, verbatim: no shell ever sees it.
#pragma once

#include <string>
#include <vector>

#include "base/env.hpp"
#include "src/commands.hpp"
#include "src/policy.hpp"
#include "src/request.hpp"

namespace socker {

// True when the program was called by the name `socker` (argv[0]'s last component).
bool called_as_socker(const char* argv0);

// Socker's command line -> a request (RunRequest with socker = true, SockerImagesRequest,
// VersionRequest); HelpRequested for -h. `exists` says whether a directory is there (the
// automatic binds are made only for what exists and the admin's prefixes allow). Throws
// Error(Usage) with Socker's usage.
UserRequest parse_socker_command_line(const std::vector<std::string>& args, const EnvMap& env,
                                      const Policy& pol, bool (*exists)(const std::string&));

}  // namespace socker
