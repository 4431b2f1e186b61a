// socker-mpi --version
#include <fmt/core.h>

#include "config.h"
#include "src/commands.hpp"

namespace socker {

int run_command(const VersionRequest&, const Invocation&) {
    fmt::print("socker-mpi {} (PMIx {}, hwloc {})\n", SOCKER_VERSION, SOCKER_PMIX_VERSION,
               SOCKER_HWLOC_VERSION);
    return 0;
}

}  // namespace socker
