#include "src/doctor.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>

#include "base/text.hpp"
#include "src/host.hpp"

namespace socker::doctor {

namespace {

// slurm.conf's settings (host::slurm_conf_settings), the last of each key.
std::map<std::string, std::string> slurm_settings(const std::string& text) {
    std::map<std::string, std::string> out;
    for (auto& [key, value] : host::slurm_conf_settings(text)) out[key] = value;
    return out;
}

std::string octal(unsigned mode) { return fmt::format("{:04o}", mode); }

}  // namespace

std::string format(const Finding& f) {
    const char* tag = f.level == Level::Ok ? "ok  " : f.level == Level::Note ? "note" : "FAIL";
    std::string line = fmt::format("{}  {:<9} {}", tag, f.check, f.what);
    if (!f.fix.empty()) line += " -- fix: " + f.fix;
    return line;
}

int exit_status(const std::vector<Finding>& findings) {
    return std::any_of(findings.begin(), findings.end(),
                       [](const Finding& f) { return f.level == Level::Fail; })
               ? 1
               : 0;
}

Finding check_launcher(const std::string& path, const FileFacts& f) {
    const std::string reinstall = "apt-get install --reinstall socker-mpi";
    if (!f.exists) return {Level::Fail, "launcher", path + ": not installed", reinstall};
    if (!f.regular) return {Level::Fail, "launcher", path + ": not a regular file", reinstall};
    if (f.uid != 0)
        return {Level::Fail, "launcher", path + ": owned by uid " + std::to_string(f.uid) + ", not root",
                "chown root:root " + path + " && chmod 4755 " + path};
    if (f.mode & 022)
        return {Level::Fail, "launcher", path + ": writable by group or others (" + octal(f.mode) + ")",
                "chmod 4755 " + path};
    if (!(f.mode & 04000))
        return {Level::Fail, "launcher",
                path + ": not setuid (" + octal(f.mode) + "): launches cannot mount or join the step",
                "chmod 4755 " + path};
    return {Level::Ok, "launcher", path + ": root-owned, setuid (" + octal(f.mode) + ")", ""};
}

Finding check_tools(const std::string& path, const FileFacts& f) {
    if (!f.exists || !f.regular)
        return {Level::Fail, "tools", path + ": missing (image commands and plan fail)",
                "apt-get install --reinstall socker-mpi"};
    if (f.uid != 0 || (f.mode & 022))
        return {Level::Fail, "tools",
                path + ": must be root-owned and not writable by others (uid " + std::to_string(f.uid) +
                    ", " + octal(f.mode) + "): the launcher refuses to exec it",
                "chown root:root " + path + " && chmod 0755 " + path};
    if (f.mode & 06000)
        return {Level::Fail, "tools", path + ": setuid or setgid (" + octal(f.mode) + "); it must not be",
                "chmod 0755 " + path};
    return {Level::Ok, "tools", path + ": root-owned, " + octal(f.mode), ""};
}

std::string slurm_plugin_dir(const std::string& text) {
    const auto s = slurm_settings(text);
    const auto it = s.find("plugindir");
    return it != s.end() ? it->second.substr(0, it->second.find(':')) : "/usr/lib/x86_64-linux-gnu/slurm-wlm";
}

std::string plugstack_path(const std::string& slurm_conf_path, const std::string& slurm_conf_text) {
    const auto s = slurm_settings(slurm_conf_text);
    if (const auto it = s.find("plugstackconfig"); it != s.end() && !it->second.empty()) return it->second;
    const auto slash = slurm_conf_path.rfind('/');
    return (slash == std::string::npos ? std::string(".") : slurm_conf_path.substr(0, slash)) +
           "/plugstack.conf";
}

namespace {

// The words of plugstack.conf's non-comment lines: "required|optional PATH [ARGS]", "include GLOB".
std::vector<std::vector<std::string>> plugstack_lines(const std::string& text) {
    std::vector<std::vector<std::string>> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        line = line.substr(0, line.find('#'));
        std::istringstream w(line);
        std::vector<std::string> words;
        for (std::string x; w >> x;) words.push_back(x);
        if (!words.empty()) out.push_back(words);
    }
    return out;
}

}  // namespace

std::vector<std::string> plugstack_includes(const std::string& text) {
    std::vector<std::string> out;
    for (const auto& w : plugstack_lines(text))
        if (w.size() >= 2 && w[0] == "include") out.push_back(w[1]);
    return out;
}

Finding check_spank(const std::vector<PlugstackFile>& files, const std::string& plugin, bool plugin_exists) {
    const std::string base = plugin.substr(plugin.rfind('/') + 1);
    for (const auto& f : files) {
        for (const auto& w : plugstack_lines(f.text)) {
            if (w.size() < 2 || (w[0] != "required" && w[0] != "optional")) continue;
            if (w[1].substr(w[1].rfind('/') + 1) != base) continue;
            if (!plugin_exists && w[1] == plugin)
                return {Level::Fail, "spank",
                        f.path + " names " + w[1] + ", which is not installed: every srun fails",
                        "reinstall socker-mpi, or remove the line"};
            if (w[0] == "optional")
                return {Level::Fail, "spank",
                        f.path + ": 'optional " + w[1] +
                            "': a node that cannot load it would run --container-image tasks natively",
                        "required " + w[1]};
            return {Level::Ok, "spank", f.path + ": required " + w[1] + " (srun --container-image)", ""};
        }
    }
    if (!plugin_exists)
        return {Level::Note, "spank", plugin + " not installed: no srun --container-image", ""};
    return {Level::Note, "spank",
            "the SPANK plugin is installed but not enabled: srun --container-image is not available",
            "add 'required " + plugin + "' to " +
                (files.empty() ? std::string("plugstack.conf") : files[0].path)};
}

std::vector<Finding> check_slurm_conf(const std::string& path, const std::string& text,
                                      bool plugin_dir_has_pmix, const std::string& tmpfs, bool tmpfs_exists) {
    const auto s = slurm_settings(text);
    auto get = [&](const char* k) {
        const auto it = s.find(k);
        return it == s.end() ? std::string() : it->second;
    };
    std::vector<Finding> out;
    const std::string proctrack = get("proctracktype");
    if (proctrack != "proctrack/cgroup")
        out.push_back({Level::Fail, "slurm",
                       path + ": ProctrackType=" + (proctrack.empty() ? "(unset)" : proctrack) +
                           ": the ranks' containers would escape the step's cgroups",
                       "ProctrackType=proctrack/cgroup"});
    else
        out.push_back({Level::Ok, "slurm", path + ": ProctrackType=proctrack/cgroup", ""});
    const auto tasks = split_list(get("taskplugin"), ',');
    const bool task_cgroup = std::find(tasks.begin(), tasks.end(), "task/cgroup") != tasks.end();
    const bool task_affinity = std::find(tasks.begin(), tasks.end(), "task/affinity") != tasks.end();
    if (!task_cgroup)
        out.push_back({Level::Fail, "slurm",
                       path + ": TaskPlugin=" + (get("taskplugin").empty() ? "(unset)" : get("taskplugin")) +
                           " lacks task/cgroup: the step's CPU and memory limits are not enforced",
                       "TaskPlugin=task/cgroup,task/affinity"});
    else
        out.push_back({Level::Ok, "slurm", path + ": TaskPlugin has task/cgroup", ""});
    if (task_cgroup && !task_affinity)
        out.push_back({Level::Note, "slurm",
                       path + ": TaskPlugin lacks task/affinity: ranks are not bound by Slurm",
                       "TaskPlugin=task/cgroup,task/affinity"});
    const std::string mpi = get("mpidefault");
    if (!plugin_dir_has_pmix)
        out.push_back(
            {Level::Fail, "slurm",
             "no mpi_pmix plugin in " + slurm_plugin_dir(text) + ": srun --mpi=pmix cannot start ranks",
             "apt-get install slurm-wlm-basic-plugins (or Slurm built --with-pmix)"});
    else if (mpi.rfind("pmix", 0) != 0)
        out.push_back(
            {Level::Note, "slurm",
             path + ": MpiDefault=" + (mpi.empty() ? "none" : mpi) + ": users must pass srun --mpi=pmix",
             "MpiDefault=pmix"});
    else
        out.push_back({Level::Ok, "slurm", path + ": MpiDefault=" + mpi + ", mpi_pmix plugin present", ""});
    if (!tmpfs_exists)
        out.push_back(
            {Level::Fail, "slurm",
             path + ": TmpFS=" + tmpfs + " does not exist: the PMIx plugin's spmix_appdir cannot be made",
             "mkdir -m 1777 " + tmpfs + " or set TmpFS= to a node-local directory"});
    else
        out.push_back({Level::Ok, "slurm", path + ": TmpFS=" + tmpfs, ""});
    return out;
}

std::vector<Finding> check_devices(const std::vector<DevicePattern>& patterns) {
    std::vector<Finding> out;
    unsigned present = 0;
    std::string none;
    for (const auto& p : patterns) {
        present += p.devices;
        for (const auto& path : p.not_devices)
            out.push_back(
                {Level::Fail, "devices",
                 p.pattern + ": matches " + path + ", which is not a character device (never passed)",
                 "name device nodes in devices = (e.g. " + path + "/* for a directory of them)"});
        if (p.devices == 0 && p.not_devices.empty()) none += (none.empty() ? "" : " ") + p.pattern;
    }
    out.push_back(
        {Level::Ok, "devices", std::to_string(present) + " device node(s) of the allow-list present", ""});
    if (!none.empty())
        out.push_back({Level::Note, "devices", "not on this node (passed where present): " + none, ""});
    return out;
}

bool kernel_at_least(const std::string& release, int major, int minor) {
    const char* p = release.c_str();
    char* end = nullptr;
    const long a = std::strtol(p, &end, 10);
    if (end == p || *end != '.') return false;
    p = end + 1;
    const long b = std::strtol(p, &end, 10);
    if (end == p) return false;
    return a > major || (a == major && b >= minor);
}

}  // namespace socker::doctor
