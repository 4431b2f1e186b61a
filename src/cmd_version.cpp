// socker-mpi --version
#include <fmt/core.h>

#include "config.h"
#include "src/commands.hpp"

namespace socker {

int run_command(const VersionRequest& r, const Invocation&) {
    if (r.socker) fmt::print("socker (Socker's commands of socker-mpi {})\n", SOCKER_VERSION);
    fmt::print("socker-mpi {} (PMIx {}, hwloc {})\n", SOCKER_VERSION, SOCKER_PMIX_VERSION,
               SOCKER_HWLOC_VERSION);
    return 0;
}

}  // namespace socker
