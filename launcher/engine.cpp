#include "launcher/engine.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/error.hpp"
#include "base/text.hpp"

namespace socker::launcher::engine {

namespace {

using nlohmann::json;

// Mounts the engine makes itself (or needs not: host IPC gives /dev/shm, host network the
// host's name resolution).
bool engine_own(const std::string& target) {
    static const std::vector<std::string> own = {"/sys", "/dev/pts", "/dev/shm", "/etc/hosts",
                                                 "/etc/resolv.conf"};
    return std::find(own.begin(), own.end(), target) != own.end();
}

std::vector<std::string> strings_of(const json& j, const char* key, const std::string& ref) {
    std::vector<std::string> out;
    if (!j.contains(key) || j[key].is_null()) return out;
    if (!j[key].is_array())
        throw Error(Exit::BadImage, "image config", ref, 0, std::string(key) + " is not a list");
    for (const auto& v : j[key]) {
        if (!v.is_string())
            throw Error(Exit::BadImage, "image config", ref, 0, std::string(key) + " holds a non-string");
        out.push_back(v.get<std::string>());
    }
    return out;
}

json parse(const std::string& text, const std::string& what) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw Error(Exit::Io, "engine API", what, 0, "the answer is not a JSON object");
    return j;
}

}  // namespace

EnginePlan engine_plan(const ContainerSpec& spec) {
    EnginePlan p;
    for (const auto& m : spec.mounts) {
        switch (m.kind) {
            case MountKind::Proc:
            case MountKind::Symlink:
            case MountKind::Node:
                break;  // the engine's own /proc and /dev
            case MountKind::Tmpfs:
                if (m.target != "/dev") p.tmpfs.emplace_back(m.target, m.data);
                break;
            case MountKind::File:
                p.files.emplace_back(m.target, m.data);
                break;
            case MountKind::Bind:
                if (engine_own(m.target)) break;
                if (!m.nodev && starts_with(m.target, "/dev/")) {
                    p.devices.push_back(m.source);
                    break;
                }
                EngineBind b;
                b.source = m.source;
                b.target = m.target;
                b.read_only = m.read_only;
                b.optional = m.optional;
                b.check = m.check;
                b.within_prefixes = m.within_prefixes;
                b.source_is_cwd = m.source_is_cwd;
                p.binds.push_back(std::move(b));
                break;
        }
    }
    return p;
}

std::string create_body(const ContainerSpec& spec, const EnginePlan& plan, const EngineOptions& o) {
    json entry = json::array(
        {kReaperTarget, "--parent", std::to_string(o.launcher_pid), std::to_string(o.launcher_start)});
    for (const auto& b : plan.binds)
        if (b.check != SourceCheck::Trusted && b.ino != 0)
            entry.push_back("--check=" + std::to_string(b.dev) + ":" + std::to_string(b.ino) + ":" +
                            b.target);
    if (!plan.scratch.empty()) entry.push_back("--scratch=" + plan.scratch);
    if (spec.umask != 022) entry.push_back("--umask=" + std::to_string(spec.umask));
    entry.push_back("--");
    for (const auto& a : spec.argv) entry.push_back(a);

    json env = json::array();
    for (const auto& [k, v] : spec.env) env.push_back(k + "=" + v);
    json mounts = json::array();
    mounts.push_back({{"Type", "bind"},
                      {"Source", o.reaper_source},
                      {"Target", kReaperTarget},
                      {"ReadOnly", true},
                      {"BindOptions", {{"Propagation", "rprivate"}}}});
    for (const auto& b : plan.binds)
        mounts.push_back({{"Type", "bind"},
                          {"Source", b.source},
                          {"Target", b.target},
                          {"ReadOnly", b.read_only},
                          {"BindOptions", {{"Propagation", "rprivate"}, {"NonRecursive", false}}}});
    json tmpfs = json::object();
    for (const auto& [t, opts] : plan.tmpfs) tmpfs[t] = opts;
    json devices = json::array();
    for (const auto& d : plan.devices)
        devices.push_back({{"PathOnHost", d}, {"PathInContainer", d}, {"CgroupPermissions", "rwm"}});
    json groups = json::array();
    for (gid_t g : spec.id.groups) groups.push_back(std::to_string(g));
    json ulimits = json::array();
    for (const auto& l : o.limits) ulimits.push_back({{"Name", l.name}, {"Soft", l.soft}, {"Hard", l.hard}});
    json labels = json::object();
    for (const auto& [k, v] : o.labels) labels[k] = v;

    json host = {{"NetworkMode", "host"},
                 {"PidMode", "host"},
                 {"IpcMode", "host"},
                 {"Privileged", false},
                 {"CapDrop", json::array({"ALL"})},
                 {"CapAdd", json::array()},
                 {"SecurityOpt", json::array({"no-new-privileges"})},
                 {"ReadonlyRootfs", true},
                 {"AutoRemove", true},
                 {"Init", false},
                 {"GroupAdd", groups},
                 {"Mounts", mounts},
                 {"Tmpfs", tmpfs},
                 {"Devices", devices},
                 {"Ulimits", ulimits},
                 {"LogConfig", {{"Type", "none"}, {"Config", json::object()}}},
                 {"RestartPolicy", {{"Name", "no"}}}};
    if (!o.cgroup_parent.empty()) host["CgroupParent"] = o.cgroup_parent;
    if (spec.binding) {
        if (!spec.binding->cpus.empty()) host["CpusetCpus"] = spec.binding->cpus;
        if (!spec.binding->mems.empty()) host["CpusetMems"] = spec.binding->mems;
    } else if (!o.cpus.empty()) {
        host["CpusetCpus"] = o.cpus;  // Slurm's binding of the rank, as it inherited it
    }
    // Docker's default seccomp profile allows process_vm_readv only with CAP_SYS_PTRACE: Open
    // MPI's single-copy (CMA) between the ranks' containers fails there, so shared memory copies
    // in and out (the user's own setting wins).
    if (!spec.env.count("OMPI_MCA_btl_vader_single_copy_mechanism"))
        env.push_back("OMPI_MCA_btl_vader_single_copy_mechanism=none");
    json body = {
        {"Image", o.image},     {"User", std::to_string(spec.id.uid) + ":" + std::to_string(spec.id.gid)},
        {"Entrypoint", entry},  {"Cmd", nullptr},
        {"Env", env},           {"WorkingDir", spec.cwd.empty() ? "/" : spec.cwd},
        {"AttachStdin", false}, {"AttachStdout", true},
        {"AttachStderr", true}, {"OpenStdin", false},
        {"Tty", false},         {"Labels", labels},
        {"HostConfig", host}};
    return body.dump();
}

std::string container_name(const std::string& job_step, long rank, pid_t pid) {
    std::string n = "socker-mpi-";
    for (char c : job_step)
        n += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
    return n + (job_step.empty() ? "" : "-") + std::to_string(rank) + "-" + std::to_string(pid);
}

image::ImageRecord parse_inspect(const std::string& text, const std::string& ref) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw Error(Exit::BadImage, "image", ref, 0, "the engine's image description is not JSON");
    image::ImageRecord r;
    std::string id = j.value("Id", "");
    if (starts_with(id, "sha256:")) id = id.substr(7);
    if (id.size() != 64 || id.find_first_not_of("0123456789abcdef") != std::string::npos)
        throw Error(Exit::BadImage, "image", ref, 0, "the engine gave no sha256 image id");
    r.id = id;
    r.names = {ref};
    r.format = "docker-engine";
    r.architecture = j.value("Architecture", "");
    if (j.contains("Config") && j["Config"].is_object()) {
        const json& c = j["Config"];
        r.config.env = strings_of(c, "Env", ref);
        r.config.entrypoint = strings_of(c, "Entrypoint", ref);
        r.config.cmd = strings_of(c, "Cmd", ref);
        if (c.contains("WorkingDir") && c["WorkingDir"].is_string()) r.config.working_dir = c["WorkingDir"];
        if (c.contains("User") && c["User"].is_string()) r.config.user = c["User"];
    }
    return r;
}

std::string parse_created_id(const std::string& text) {
    const json j = parse(text, "container create");
    std::string id = j.value("Id", "");
    if (id.empty() || id.size() > 128 || id.find_first_not_of("0123456789abcdef") != std::string::npos)
        throw Error(Exit::Io, "engine API", "container create", 0, "no container id in the answer");
    return id;
}

int parse_wait_status(const std::string& text) {
    const json j = parse(text, "container wait");
    if (j.contains("Error") && j["Error"].is_object() && j["Error"].contains("Message") &&
        j["Error"]["Message"].is_string() && !j["Error"]["Message"].get<std::string>().empty())
        throw Error(Exit::Io, "engine API", "container wait", 0, j["Error"]["Message"].get<std::string>());
    if (!j.contains("StatusCode") || !j["StatusCode"].is_number_integer())
        throw Error(Exit::Io, "engine API", "container wait", 0, "no StatusCode in the answer");
    const long long s = j["StatusCode"].get<long long>();
    return s < 0 || s > 255 ? 255 : static_cast<int>(s);
}

std::string error_message(const std::string& text) {
    const json j = json::parse(text, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("message") && j["message"].is_string())
        return j["message"].get<std::string>();
    std::string t = trim(text);
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
    return t.size() > 300 ? t.substr(0, 300) + "..." : t;
}

std::string url_escape(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            out += static_cast<char>(c);
        else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

void Demux::feed(std::string_view in, const std::function<void(int, std::string_view)>& out) {
    while (!in.empty()) {
        if (left_ == 0) {
            const size_t need = 8 - head_.size();
            const size_t n = std::min(need, in.size());
            head_.append(in.substr(0, n));
            in.remove_prefix(n);
            if (head_.size() < 8) return;
            const auto* h = reinterpret_cast<const unsigned char*>(head_.data());
            stream_ = h[0] == 2 ? 2 : 1;
            left_ = (size_t{h[4]} << 24) | (size_t{h[5]} << 16) | (size_t{h[6]} << 8) | size_t{h[7]};
            head_.clear();
            continue;
        }
        const size_t n = std::min(left_, in.size());
        out(stream_, in.substr(0, n));
        in.remove_prefix(n);
        left_ -= n;
    }
}

}  // namespace socker::launcher::engine
