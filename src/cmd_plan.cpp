#include "commands.hpp"
#include "error.hpp"

namespace socker {

int run_command(const PlanRequest&, const EnvMap&, const std::string&) {
    throw Error(Exit::Usage, "plan", "", 0, "not available in this build yet");
}

}  // namespace socker
