// UserRequest: what the user asked on the command line, parsed but not yet checked against
// the admin policy.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "topology/binding_report.hpp"
#include "topology/options.hpp"

namespace socker {

struct BindRequest {
    std::string source;
    std::string target;  // defaults to source
    bool read_only = false;
};

struct RunRequest {
    std::string image;
    std::vector<std::string> command;  // empty: the image's Entrypoint/Cmd
    std::vector<BindRequest> binds;
    std::vector<std::string> env_set;  // KEY=VALUE given with -e
    std::vector<std::string> devices;  // --device PATH: must be in the admin's allow-list
    std::optional<std::string> workdir;
    topology::PlacementRequest placement;  // --bind-to, --distribution, --membind, ...
    bool mount_home = true;
    bool entrypoint = true;  // the image's Entrypoint before the command (the plugin's default: not)  // the
                             // home directory bound (the SPANK plugin's --no-container-mount-home: not)
    // Host MPI injection (docs/mpi.md): nullopt = the admin's default (`mpi` key), "none" =
    // never, "default" (--mpi) = the [mpi] section, NAME (--mpi=NAME) = the [mpi:NAME] section.
    std::optional<std::string> mpi;
    // The engine (docs/docker.md): nullopt = the admin's default (`engine` key), "inplace" or
    // "docker" (the node's Docker engine runs the rank's container).
    std::optional<std::string> engine;
    bool dry_run = false;
    int verbose = 0;
    bool socker = false;  // Socker's `socker run` (src/socker.hpp): the admin's allow-list applies
};

struct ImportRequest {
    std::string source;  // file path, "-" for stdin, "layout:DIR[:TAG]" or "docker-daemon:NAME[:TAG]"
    std::string name;
    bool user_store = false;
};
struct ImageListRequest {
    bool user_store = false;
};
struct ImageRemoveRequest {
    std::string name;
    bool user_store = false;
};
struct ImageInspectRequest {
    std::string name;
};
struct ImageGcRequest {
    bool user_store = false;
};
struct PlanRequest {
    std::string topology;           // "" = this machine; a file path = hwloc XML; else synthetic
    std::string node;               // node name for [node:GLOB] matching ("" = this host)
    topology::PlanOptions options;  // ranks, --cpuset, --format, the placement asked
};
struct VersionRequest {
    bool socker = false;  // `socker --version`
};
// `socker images`: the images Socker's commands may run.
struct SockerImagesRequest {};
// socker-mpi doctor: checks of this node (src/doctor.hpp).
struct DoctorRequest {
    std::string config;      // the admin config to check (default: the installed one)
    std::string launcher;    // the setuid launcher to check and launch with (default: the installed one)
    std::string image;       // for the test launch ("" = the admin store's first image)
    bool no_launch = false;  // --no-launch: no test launch
};

using UserRequest =
    std::variant<RunRequest, ImportRequest, ImageListRequest, ImageRemoveRequest, ImageInspectRequest,
                 ImageGcRequest, PlanRequest, VersionRequest, DoctorRequest, SockerImagesRequest>;

// Parses argv (argv[0] excluded). Throws Error(Exit::Usage) with a one-line message; --help
// output is signalled by HelpRequested carrying the text.
struct HelpRequested {
    std::string text;
};
UserRequest parse_command_line(const std::vector<std::string>& args);

// "SRC[:DST[:ro|rw]]"
BindRequest parse_bind(const std::string& spec);

}  // namespace socker
