// Engine mode's side effects (docs/docker.md): the connections to the engine's API socket, made
// as root before the launcher drops to the user for good; then, as the user, the image's
// description and the container's life: create, attach, wait, start, signals, status, removal.
#pragma once

#include <string>

#include "base/http.hpp"
#include "image/record.hpp"
#include "launcher/engine.hpp"
#include "launcher/spec.hpp"

namespace socker::launcher::engine {

struct Connections {
    http::Connection control, attach, wait;
};
// Three connections to the API socket (Error(Io) naming it when the engine does not answer).
Connections connect(const std::string& socket);

// GET /images/REF/json: the image's id and config. Not in the engine: Error(BadImage).
image::ImageRecord inspect(http::Connection& c, const std::string& ref);

// The rank's container, as the user (the launcher dropped already): the plan's binds resolved
// and checked (real paths, the allowed prefixes, ownership, dev:ino for the reaper), generated
// files written to a private directory that is gone once the container started, then create,
// attach, wait, start; SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 forwarded; output
// copied to stdout/stderr. Returns the container's exit status (128+S for a signal S). A failure
// after the create removes the container.
int run(const ContainerSpec& spec, EnginePlan plan, const EngineOptions& o, Connections& c,
        const std::string& prefix);

// This process's start time (field 22 of /proc/self/stat), for the reaper's pid-reuse check.
unsigned long long own_start_time();

}  // namespace socker::launcher::engine
