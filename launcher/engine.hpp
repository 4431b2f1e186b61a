// Engine mode (docs/docker.md): one rank's ContainerSpec, decided by the same pipeline as an
// in-place launch, becomes a container the Docker engine makes and runs (engine_run.cpp). Pure:
// the spec's mounts sorted into what the engine is asked for, the create request's JSON, and the
// readers of the engine's answers (run after the launcher dropped to the user).
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "image/record.hpp"
#include "launcher/spec.hpp"

namespace socker::launcher::engine {

// Where the reaper (src/reaper.c) is bound in the container: the container's first process.
inline constexpr const char* kReaperTarget = "/.socker-mpi/reaper";

// A bind the engine makes. Sources named by the user (or the user's) are resolved by the launcher
// as the user (real path, dev:ino); the reaper checks the target shows that very file before the
// command runs, so a path swapped between the check and the engine's mount never runs a command.
struct EngineBind {
    std::string source, target;
    bool read_only = false;
    bool optional = false;  // skipped when the source does not exist (for the user)
    SourceCheck check = SourceCheck::Trusted;
    bool within_prefixes = false;
    bool source_is_cwd = false;
    unsigned long long dev = 0, ino = 0;  // filled by the runner once resolved
};

struct EnginePlan {
    std::vector<EngineBind> binds;
    std::vector<std::string> devices;                        // host device nodes
    std::vector<std::pair<std::string, std::string>> tmpfs;  // target, options
    std::vector<std::pair<std::string, std::string>> files;  // target, content (written by the runner)
    std::string scratch;  // the directory the runner wrote them to (the reaper removes it too)
};

// The spec's mounts as the engine gets them: binds (the user's, PMIx directories, home, cwd,
// /tmp, the image MPI's), devices, tmpfs; /proc, /sys, /dev, /dev/shm, /etc/hosts and
// /etc/resolv.conf are the engine's own (host IPC, PID and network namespaces).
EnginePlan engine_plan(const ContainerSpec& spec);

struct Limit {
    std::string name;                // docker's: nofile, memlock, stack, core, nproc
    long long soft = -1, hard = -1;  // -1 = unlimited
};

struct EngineOptions {
    std::string image;          // the engine's image reference
    std::string name;           // the container's name ("" = the engine picks one)
    std::string reaper_source;  // the host's reaper program
    std::string cgroup_parent;  // the rank's Slurm step cgroup ("" = the engine's default)
    pid_t launcher_pid = 0;
    unsigned long long launcher_start = 0;  // its start time (clock ticks, /proc/PID/stat)
    std::vector<std::pair<std::string, std::string>> labels;
    std::vector<Limit> limits;  // the rank's own resource limits
    std::string cpus;           // the rank's CPUs when the spec sets no binding (its affinity)
};

// The body of POST /containers/create: the spec's command behind the reaper, as the user with
// the user's groups, in the step's cgroup, host PID/IPC/network namespaces, no capabilities, no
// new privileges, a read-only root, the binds and devices of `plan`, the rank's CPUs.
std::string create_body(const ContainerSpec& spec, const EnginePlan& plan, const EngineOptions& o);

// A container name for the rank: socker-mpi-<job>.<step>-<rank>-<pid> (docker's name rules).
std::string container_name(const std::string& job_step, long rank, pid_t pid);

// GET /images/NAME/json -> the record a launch needs (id, Env, Entrypoint, Cmd, WorkingDir).
// Throws Error(BadImage) on malformed JSON.
image::ImageRecord parse_inspect(const std::string& json, const std::string& ref);
std::string parse_created_id(const std::string& json);  // POST /containers/create -> Id
int parse_wait_status(const std::string& json);         // POST .../wait -> StatusCode (0..255)
std::string error_message(const std::string& json);     // {"message": "..."} or the text itself

// Percent-encoding for a path segment or query value.
std::string url_escape(std::string_view s);

// The attach stream without a TTY: frames of [stream, 0, 0, 0, size (big-endian 32)] + payload.
// feed() hands each payload piece to `out` (1 = stdout, 2 = stderr) as it comes.
class Demux {
public:
    void feed(std::string_view in, const std::function<void(int, std::string_view)>& out);

private:
    std::string head_;
    int stream_ = 0;
    size_t left_ = 0;
};

}  // namespace socker::launcher::engine
