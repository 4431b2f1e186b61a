#include "src/policy.hpp"

#include <fnmatch.h>

#include <cstdlib>
#include <sstream>

#include "base/error.hpp"
#include "base/text.hpp"

namespace socker {

namespace {

std::vector<std::string> comma_list(const std::string& v) { return split_list(v, ',', true); }

[[noreturn]] void bad(const std::string& origin, int line, const std::string& what) {
    throw Error(Exit::Config, "admin config", origin + ":" + std::to_string(line), 0, what);
}

bool parse_bool(const std::string& origin, int line, const std::string& key, const std::string& v) {
    if (v == "yes" || v == "true" || v == "1") return true;
    if (v == "no" || v == "false" || v == "0") return false;
    bad(origin, line, "key '" + key + "' wants yes or no, got '" + v + "'");
}

std::vector<std::string> absolute_paths(const std::string& origin, int line, const std::string& key,
                                        const std::string& v) {
    auto list = comma_list(v);
    for (const auto& p : list)
        if (p.empty() || p[0] != '/')
            bad(origin, line, "key '" + key + "': '" + p + "' is not an absolute path");
    return list;
}

// "123", "64K", "100M", "2G", "1T" (powers of 1024).
unsigned long long parse_size(const std::string& origin, int line, const std::string& key,
                              const std::string& v) {
    size_t digits = 0;
    while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') ++digits;
    const std::string unit = v.substr(digits);
    int shift = -1;
    if (unit.empty())
        shift = 0;
    else if (unit == "K" || unit == "k")
        shift = 10;
    else if (unit == "M")
        shift = 20;
    else if (unit == "G")
        shift = 30;
    else if (unit == "T")
        shift = 40;
    if (digits == 0 || digits > 15 || shift < 0)
        bad(origin, line,
            "key '" + key + "' wants a size (a number, optionally K, M, G or T), got '" + v + "'");
    return std::stoull(v.substr(0, digits)) << shift;
}

std::string absolute_path(const std::string& origin, int line, const std::string& key, const std::string& v) {
    if (v.empty() || v[0] != '/') bad(origin, line, key + " must be an absolute path");
    return v;
}

void set_mpi_key(MpiSection& m, const std::string& key, const std::string& v, const std::string& origin,
                 int line) {
    if (key == "libraries") {
        m.libraries = absolute_paths(origin, line, key, v);
    } else if (key == "dependencies") {
        m.dependencies = absolute_paths(origin, line, key, v);
    } else if (key == "binds") {
        m.binds = comma_list(v);
        for (const auto& b : m.binds) {
            const auto colon = b.find(':');
            const std::string src = b.substr(0, colon),
                              dst = colon == std::string::npos ? src : b.substr(colon + 1);
            if (src.empty() || src[0] != '/' || dst.empty() || dst[0] != '/' ||
                dst.find(':') != std::string::npos)
                bad(origin, line, "binds: '" + b + "' is not SRC[:DST] with absolute paths");
        }
    } else if (key == "devices") {
        m.devices = absolute_paths(origin, line, key, v);
    } else if (key == "env") {
        m.env = comma_list(v);
        for (const auto& kv : m.env)
            if (kv.find('=') == std::string::npos || kv[0] == '=')
                bad(origin, line, "env: '" + kv + "' is not KEY=VALUE");
    } else if (key == "abi") {
        auto l = launcher::abi::parse_level(v);
        if (!l) bad(origin, line, "abi wants major, full or strict, got '" + v + "'");
        m.abi = *l;
    } else if (key == "glibc") {
        if (v != "refuse" && v != "inject")
            bad(origin, line, "glibc wants refuse or inject, got '" + v + "'");
        m.glibc_inject = v == "inject";
    } else if (key == "glibc_libraries") {
        m.glibc_libraries = absolute_paths(origin, line, key, v);
    } else {
        bad(origin, line,
            "unknown key '" + key + "' in [mpi" + (m.name == "default" ? std::string() : ":" + m.name) +
                "] (libraries, dependencies, binds, devices, env, abi, glibc, glibc_libraries)");
    }
}

}  // namespace

const std::vector<std::string>& builtin_denied_destinations() {
    static const std::vector<std::string> v = {
        "/",    "/proc", "/sys",  "/dev", "/etc/passwd", "/etc/group", "/etc/shadow",
        "/usr", "/bin",  "/sbin", "/lib", "/lib64",      "/etc",
    };
    return v;
}

std::string slurm_conf_for(const Policy& p, const std::string& node) {
    std::string conf = p.slurm_conf;
    for (const auto& ns : p.node_sections)
        if (!ns.slurm_conf.empty() && ::fnmatch(ns.placement.pattern.c_str(), node.c_str(), 0) == 0)
            conf = ns.slurm_conf;
    return conf;
}

const MpiSection* mpi_for(const Policy& p, const std::optional<std::string>& asked, const std::string& node) {
    std::string name = p.mpi;
    for (const auto& ns : p.node_sections)
        if (!ns.mpi.empty() && ::fnmatch(ns.placement.pattern.c_str(), node.c_str(), 0) == 0) name = ns.mpi;
    if (asked) name = *asked;
    if (name == "none") return nullptr;
    std::vector<std::string> names;
    for (const auto& m : p.mpi_sections) {
        if (m.name == name) return &m;
        names.push_back(m.name);
    }
    std::string msg = name == "default" ? "--mpi: the admin offers no host MPI ([mpi] section)"
                                        : "--mpi=" + name + ": the admin offers no host MPI of that name";
    msg += names.empty() ? " on this node" : " (offered: " + [&] {
        std::string l;
        for (const auto& n : names) l += (l.empty() ? "" : ", ") + (n == "default" ? "--mpi" : "--mpi=" + n);
        return l;
    }() + ", or --mpi=none)";
    throw_usage(msg);
}

std::string engine_for(const Policy& p, const std::optional<std::string>& asked, const std::string& node) {
    std::string e = p.engine;
    for (const auto& ns : p.node_sections)
        if (!ns.engine.empty() && ::fnmatch(ns.placement.pattern.c_str(), node.c_str(), 0) == 0)
            e = ns.engine;
    if (asked) e = *asked;
    if (e == "docker" && p.docker_socket.empty())
        throw_refused("--engine=docker",
                      "the admin configured no Docker engine (docker_socket) on this cluster");
    return e;
}

std::vector<std::string> parse_socker_images(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        const std::string t = trim(l.substr(0, l.find('#')));
        if (!t.empty()) out.push_back(t);
    }
    return out;
}

std::vector<topology::NodeDefaults> Policy::placement_sections() const {
    std::vector<topology::NodeDefaults> out;
    for (const auto& ns : node_sections) out.push_back(ns.placement);
    return out;
}

std::vector<std::string> Policy::denied_destinations() const {
    std::vector<std::string> out = builtin_denied_destinations();
    out.insert(out.end(), bind_denied_destinations.begin(), bind_denied_destinations.end());
    return out;
}

Policy parse_policy(const std::string& text, const std::string& origin) {
    Policy p;
    std::istringstream in(text);
    std::string raw;
    int line = 0;
    NodeSection* section = nullptr;
    MpiSection* mpi = nullptr;
    std::vector<std::pair<std::string, int>> mpi_refs;  // names used by `mpi` keys, checked at the end
    std::vector<int> mpi_lines;                         // each [mpi...] header's line
    while (std::getline(in, raw)) {
        ++line;
        std::string s = trim(raw);
        if (s.empty() || s[0] == '#') continue;
        if (s.front() == '[') {
            if (s.back() != ']') bad(origin, line, "unterminated section header");
            std::string name = trim(s.substr(1, s.size() - 2));
            if (name == "mpi" || name.rfind("mpi:", 0) == 0) {
                MpiSection m;
                m.name = name == "mpi" ? "default" : trim(name.substr(4));
                if (m.name.empty() || m.name == "none" ||
                    m.name.find_first_not_of(
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                        std::string::npos)
                    bad(origin, line,
                        "[" + name + "]: an MPI's name is letters, digits, '_', '.', '-' (not none)");
                for (const auto& other : p.mpi_sections)
                    if (other.name == m.name) bad(origin, line, "[" + name + "] given twice");
                m.origin = origin + ":" + std::to_string(line);
                p.mpi_sections.push_back(m);
                mpi_lines.push_back(line);
                mpi = &p.mpi_sections.back();
                section = nullptr;
                continue;
            }
            mpi = nullptr;
            if (name.rfind("node:", 0) != 0 || trim(name.substr(5)).empty())
                bad(origin, line,
                    "unknown section '" + name + "' (expected [node:GLOB], [mpi] or [mpi:NAME])");
            NodeSection ns;
            ns.placement.pattern = trim(name.substr(5));
            ns.placement.origin = origin + ":" + std::to_string(line);
            p.node_sections.push_back(ns);
            section = &p.node_sections.back();
            continue;
        }
        auto eq = s.find('=');
        if (eq == std::string::npos) bad(origin, line, "expected 'key = value'");
        std::string key = trim(s.substr(0, eq)), v = trim(s.substr(eq + 1));
        if (mpi) {
            set_mpi_key(*mpi, key, v, origin, line);
            continue;
        }
        if (key == "mpi") {
            if (v.empty()) bad(origin, line, "mpi wants none, default or the NAME of an [mpi:NAME] section");
            (section ? section->mpi : p.mpi) = v;
            mpi_refs.emplace_back(v, line);
            continue;
        }
        if (key == "engine") {
            if (v != "inplace" && v != "docker")
                bad(origin, line, "engine wants inplace or docker, got '" + v + "'");
            (section ? section->engine : p.engine) = v;
            continue;
        }
        if (section && key == "slurm_conf") {
            if (v.empty() || v[0] != '/') bad(origin, line, "slurm_conf must be an absolute path");
            section->slurm_conf = v;
            continue;
        }
        if (section) {
            if (!topology::set_node_default(section->placement, key, v, origin + ":" + std::to_string(line)))
                bad(origin, line, "unknown key '" + key + "' in [node:" + section->placement.pattern + "]");
            continue;
        }
        if (key == "image_store") {
            if (v.empty() || v[0] != '/') bad(origin, line, "image_store must be an absolute path");
            p.image_store = v;
        } else if (key == "runtime_dir") {
            if (v.empty() || v[0] != '/') bad(origin, line, "runtime_dir must be an absolute path");
            p.runtime_dir = v;
        } else if (key == "store_format") {
            if (v != "layers" && v != "squashfs")
                bad(origin, line, "store_format must be layers or squashfs");
            p.store_squashfs = v == "squashfs";
        } else if (key == "user_store") {
            p.user_store = parse_bool(origin, line, key, v);
        } else if (key == "import_admin_store") {
            if (v != "root" && v != "users") bad(origin, line, "import_admin_store wants root or users");
            p.import_admin_store = v;
        } else if (key == "user_binds") {
            p.user_binds = parse_bool(origin, line, key, v);
        } else if (key == "bind_allowed_prefixes") {
            p.bind_allowed_prefixes = absolute_paths(origin, line, key, v);
        } else if (key == "bind_denied_destinations") {
            p.bind_denied_destinations = absolute_paths(origin, line, key, v);
        } else if (key == "devices") {
            p.devices = absolute_paths(origin, line, key, v);
        } else if (key == "env_deny") {
            p.env_deny = comma_list(v);
        } else if (key == "require_slurm_step") {
            p.require_slurm_step = parse_bool(origin, line, key, v);
        } else if (key == "slurm_conf") {
            if (v.empty() || v[0] != '/') bad(origin, line, "slurm_conf must be an absolute path");
            p.slurm_conf = v;
        } else if (key == "slurm_cgroup_prefix") {
            p.slurm_cgroup_prefix = v.empty() ? v : absolute_path(origin, line, key, v);
        } else if (key == "state_dir") {
            p.state_dir = absolute_path(origin, line, key, v);
        } else if (key == "device_cgroup") {
            if (v != "required" && v != "ignore") bad(origin, line, "device_cgroup wants required or ignore");
            p.device_cgroup_required = v == "required";
        } else if (key == "import_max_bytes") {
            p.import_max_bytes = parse_size(origin, line, key, v);
        } else if (key == "import_max_files") {
            p.import_max_files = parse_size(origin, line, key, v);
        } else if (key == "import_max_ratio") {
            char* end = nullptr;
            const double r = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !(r >= 0) || r > 1e9)
                bad(origin, line, "import_max_ratio wants a number >= 0, got '" + v + "'");
            p.import_max_ratio = r;
        } else if (key == "syslog_socket") {
            p.syslog_socket = absolute_path(origin, line, key, v);
        } else if (key == "audit_required") {
            p.audit_required = parse_bool(origin, line, key, v);
        } else if (key == "docker_socket") {
            p.docker_socket = v.empty() ? v : absolute_path(origin, line, key, v);
        } else if (key == "socker_images") {
            p.socker_images = comma_list(v);
        } else if (key == "socker_images_file") {
            p.socker_images_file = v.empty() ? v : absolute_path(origin, line, key, v);
        } else if (key == "share_containers") {
            p.share_containers = parse_bool(origin, line, key, v);
        } else if (key == "log") {
            if (v == "syslog")
                p.log = LogDest::Syslog;
            else if (v == "none")
                p.log = LogDest::None;
            else if (v == "stderr")
                p.log = LogDest::Stderr;
            else
                bad(origin, line, "log wants syslog, stderr or none");
        } else {
            bad(origin, line, "unknown key '" + key + "'");
        }
    }
    for (const auto& [name, at] : mpi_refs) {
        if (name == "none") continue;
        bool found = false;
        for (const auto& m : p.mpi_sections) found = found || m.name == name;
        if (!found)
            bad(origin, at,
                "mpi = " + name + ": no " +
                    (name == "default" ? std::string("[mpi]") : "[mpi:" + name + "]") + " section");
    }
    for (size_t i = 0; i < p.mpi_sections.size(); ++i)
        if (p.mpi_sections[i].libraries.empty())
            bad(origin, mpi_lines[i],
                "[mpi" +
                    (p.mpi_sections[i].name == "default" ? std::string() : ":" + p.mpi_sections[i].name) +
                    "] lists no libraries");
    return p;
}

}  // namespace socker
