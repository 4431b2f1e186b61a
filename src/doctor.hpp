// socker-mpi doctor: what a node needs for socker-mpi, checked one fact at a time. The facts are
// gathered by cmd_doctor.cpp (stat, syscalls, files); what they mean is decided here, purely,
// so that every finding -- and its fix -- is unit-tested from text.
#pragma once

#include <string>
#include <vector>

namespace socker::doctor {

enum class Level { Ok, Note, Fail };  // Note: worth knowing, not wrong (exit status 0)

struct Finding {
    Level level = Level::Ok;
    std::string check;  // short name: launcher, config, store, kernel, cgroup, slurm, audit, ...
    std::string what;   // what was found
    std::string fix;    // how to fix it ("" when nothing to do)
};

// One line: "ok    launcher  /usr/bin/socker-mpi: root-owned, setuid (4755)", or with "FAIL" /
// "note" and " -- fix: ...".
std::string format(const Finding& f);
// 0 when nothing failed, else 1 (notes do not count).
int exit_status(const std::vector<Finding>& findings);

// The setuid launcher as stat(2) saw it.
struct FileFacts {
    bool exists = false;
    bool regular = false;
    unsigned uid = 0;
    unsigned mode = 0;  // st_mode & 07777
};
Finding check_launcher(const std::string& path, const FileFacts& f);
Finding check_tools(const std::string& path, const FileFacts& f);

// slurm.conf, as text: the cgroup proctrack and task plugins (Slurm's limits hold only with
// them), task/affinity, the PMIx plugin as MpiDefault, TmpFS. plugin_dir_has_pmix: whether
// mpi_pmix*.so is in the plugin directory.
// tmpfs: TmpFS as the node sees it (%n expanded).
std::vector<Finding> check_slurm_conf(const std::string& path, const std::string& text,
                                      bool plugin_dir_has_pmix, const std::string& tmpfs, bool tmpfs_exists);
// The PluginDir slurm.conf names (Debian's default when none).
std::string slurm_plugin_dir(const std::string& text);

// The SPANK plugin (srun --container-image): where slurm.conf's PlugStackConfig (default:
// plugstack.conf beside slurm.conf) puts the plugin stack, and its lines (the files it
// includes too, as path and text). required: ok; optional: a failure (a node that cannot load
// it runs container tasks natively); named but missing: a failure (every srun fails); no line:
// a note (srun --container-image is not available).
std::string plugstack_path(const std::string& slurm_conf_path, const std::string& slurm_conf_text);
struct PlugstackFile {
    std::string path, text;
};
Finding check_spank(const std::vector<PlugstackFile>& files, const std::string& plugin, bool plugin_exists);
// The files an "include GLOB" line of plugstack.conf names (the globs, as written).
std::vector<std::string> plugstack_includes(const std::string& text);

// The device allow-list ("passed when present"): an entry matching something that is not a
// character device is a failure (never passed: e.g. /dev/infiniband, a directory, for
// /dev/infiniband/*); entries matching nothing are a note (no such hardware on this node).
struct DevicePattern {
    std::string pattern;
    unsigned devices = 0;                  // character devices it matches
    std::vector<std::string> not_devices;  // other paths it matches
};
std::vector<Finding> check_devices(const std::vector<DevicePattern>& patterns);

// Kernel version "6.1.0-18-amd64" >= major.minor.
bool kernel_at_least(const std::string& release, int major, int minor);

}  // namespace socker::doctor
