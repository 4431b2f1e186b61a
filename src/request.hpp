// UserRequest: what the user asked on the command line, parsed but not yet checked against
// the admin policy.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace socker {

struct BindRequest {
    std::string source;
    std::string target;  // defaults to source
    bool read_only = false;
};

struct BindingOptions {           // topology placement (see topology/)
    std::optional<std::string> bind;          // none|hwthread|core|l3|numa|socket
    std::optional<std::string> distribution;  // block|cyclic
    std::optional<std::string> membind;       // none|local|interleave
    std::optional<int> cpus_per_rank;
    bool report = false;
};

struct RunRequest {
    std::string image;
    std::vector<std::string> command;  // empty: the image's Entrypoint/Cmd
    std::vector<BindRequest> binds;
    std::vector<std::string> env_set;  // KEY=VALUE given with -e
    std::vector<std::string> devices;  // --device PATH: must be in the admin's allow-list
    std::optional<std::string> workdir;
    BindingOptions binding;
    bool dry_run = false;
    int verbose = 0;
};

struct ImportRequest {
    std::string source;  // file path, "-" for stdin, or "layout:DIR[:TAG]"
    std::string name;
    bool user_store = false;
};
struct ImageListRequest { bool user_store = false; };
struct ImageRemoveRequest { std::string name; bool user_store = false; };
struct ImageInspectRequest { std::string name; };
struct ImageGcRequest { bool user_store = false; };
struct PlanRequest {
    std::string topology;  // "" = this machine; a file path = hwloc XML; else synthetic
    int ranks = 1;
    std::optional<std::string> allowed;  // restrict to these CPUs (list string)
    std::string format = "table";
    BindingOptions binding;
    std::string node;  // node name for [node:GLOB] matching ("" = this host)
};
struct VersionRequest {};

using UserRequest = std::variant<RunRequest, ImportRequest, ImageListRequest, ImageRemoveRequest,
                                 ImageInspectRequest, ImageGcRequest, PlanRequest, VersionRequest>;

// Parses argv (argv[0] excluded). Throws Error(Exit::Usage) with a one-line message; --help
// output is signalled by HelpRequested carrying the text.
struct HelpRequested { std::string text; };
UserRequest parse_command_line(const std::vector<std::string>& args);

// "SRC[:DST[:ro|rw]]"
BindRequest parse_bind(const std::string& spec);

}  // namespace socker
