// Admin policy: /etc/socker-mpi/socker-mpi.conf, root-owned and not group/world-writable.
// Format: "key = value" lines, '#' comments, and "[node:GLOB]" sections holding per-node
// placement defaults and slurm.conf. Unknown keys are errors, and so are bad values in every
// section (matching this node or not), with file:line. Every key and its default is documented
// in the installed file, etc/socker-mpi.conf.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "launcher/abi.hpp"
#include "topology/options.hpp"

#ifndef SOCKER_DEFAULT_SLURM_CONF
#define SOCKER_DEFAULT_SLURM_CONF "/etc/slurm/slurm.conf"
#endif

namespace socker {

enum class LogDest { Syslog, None, Stderr };

struct NodeSection {
    topology::NodeDefaults placement;  // pattern (fnmatch glob on the node name) and defaults
    std::string slurm_conf;            // this node's slurm.conf ("" = the global one)
    std::string mpi;                   // this node's default host MPI ("" = the global one)
    std::string engine;                // this node's default engine ("" = the global one)
};

// A host MPI the admin offers for injection (docs/mpi.md): [mpi] (named "default") or
// [mpi:NAME]. Every path is the admin's, on the host (trusted).
struct MpiSection {
    std::string name;
    std::string origin;                     // file:line of its header
    std::vector<std::string> libraries;     // the MPI's libraries, checked against the image's
    std::vector<std::string> dependencies;  // their dependencies (libfabric, UCX, ...): replace
                                            // the image's of the same SONAME, else added
    std::vector<std::string> binds;         // "SRC[:DST]", read-only (provider dirs, configs)
    std::vector<std::string> devices;       // globs, still intersected with the step's devices
    std::vector<std::string> env;           // KEY=VALUE set in the container
    launcher::abi::Level abi = launcher::abi::Level::Major;
    // Host libraries needing a newer glibc than the image's: refuse (65), or inject the host's
    // glibc libraries over the image's of the same SONAME (Sarus's glibc hook).
    bool glibc_inject = false;
    std::vector<std::string> glibc_libraries = {
        "/lib/x86_64-linux-gnu/libc.so.6",       "/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/x86_64-linux-gnu/libpthread.so.0", "/lib/x86_64-linux-gnu/libdl.so.2",
        "/lib/x86_64-linux-gnu/librt.so.1",      "/lib/x86_64-linux-gnu/libutil.so.1",
        "/lib/x86_64-linux-gnu/libresolv.so.2",  "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"};
};

struct Policy {
    std::string image_store = "/var/lib/socker-mpi/images";  // admin store
    std::string runtime_dir = "/var/lib/socker-mpi/mnt";     // staging mount point (root-owned)
    // How the admin store keeps images: layers (directories overlayfs stacks) or squashfs (one
    // flattened file per image, loop-mounted read-only at launch; image/squashfs.hpp).
    bool store_squashfs = false;
    bool user_store = true;  // users may keep (import, launch) images in ~/.local/share/socker-mpi
    std::string import_admin_store = "root";  // who may import into the admin store: root | users
    bool user_binds = true;
    std::vector<std::string> bind_allowed_prefixes = {"/home", "/scratch", "/tmp", "/work"};
    std::vector<std::string> bind_denied_destinations;  // added to the built-in list
    std::vector<std::string> devices = {"/dev/infiniband/*",  "/dev/cxi*", "/dev/hfi1_*",
                                        "/dev/xpmem",         "/dev/knem", "/dev/nvidia*",
                                        "/dev/nvidia-caps/*", "/dev/kfd",  "/dev/dri/*"};
    std::vector<std::string> env_deny = {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT"};
    bool require_slurm_step = true;
    // Where Slurm's cgroup/v1 tree sits in each hierarchy ("" = at its root, Slurm's default).
    std::string slurm_cgroup_prefix;
    // Node-local, root-owned state: locks shared by launches and the stores' garbage collection.
    std::string state_dir = "/run/socker-mpi";
    // Devices pass only when the step's (v1) devices cgroup permits them and can be read:
    // required (fail closed; on cgroup v2, whose eBPF device control cannot be read, none pass),
    // or ignore (the allow-list alone decides).
    bool device_cgroup_required = true;
    // Decompression-bomb limits of one import (0 = none): content bytes, entries, ratio.
    unsigned long long import_max_bytes = 256ULL << 30;
    unsigned long long import_max_files = 10000000;
    double import_max_ratio = 200;
    // Read for Slurm's TmpFS (where the PMIx plugin keeps spmix_appdir_*); per node overridable
    // with slurm_conf in a [node:GLOB] section (several clusters or slurmds on one host).
    std::string slurm_conf = SOCKER_DEFAULT_SLURM_CONF;
    LogDest log = LogDest::Syslog;
    std::string syslog_socket = "/dev/log";  // the local syslog daemon's socket
    // The audit record could not be written: refuse the launch (77), or (no) warn on stderr.
    bool audit_required = false;
    // One container per node for the ranks of a step: the first rank builds it, the others join
    // it (launcher/sharing.hpp). no: every rank builds its own.
    bool share_containers = true;
    std::vector<NodeSection> node_sections;
    // Host MPI injection: the default (none | default | NAME; per node in [node:GLOB]) and the
    // MPIs offered.
    std::string mpi = "none";
    std::vector<MpiSection> mpi_sections;
    // Engine mode (docs/docker.md): the default engine (inplace | docker; per node in
    // [node:GLOB]) and the Docker engine's API socket ("" = no engine on this cluster).
    std::string engine = "inplace";
    std::string docker_socket;
    // Socker's commands (`socker images`, `socker run`): the images they may run, from the
    // config (socker_images) and/or Socker's file of one name per line (socker_images_file);
    // both empty = every image of the admin store.
    std::vector<std::string> socker_images;  // the file's names are added by host::load_policy
    std::string socker_images_file;
    bool socker_restricted() const { return !socker_images.empty() || !socker_images_file.empty(); }
    // The placement defaults of every section, in file order (topology::resolve_placement).
    std::vector<topology::NodeDefaults> placement_sections() const;
    // Every bind destination refused: the built-in list and the admin's additions.
    std::vector<std::string> denied_destinations() const;
};

// The host MPI a launch asks for on a node: the request's word (nullopt = the admin's default
// for the node), resolved to a section; nullptr = none. An unknown name: Error(Exit::Usage).
const MpiSection* mpi_for(const Policy& p, const std::optional<std::string>& asked, const std::string& node);

// The engine a launch uses on a node: the request's word (nullopt = the admin's default for the
// node). docker without a docker_socket: Error(Refused).
std::string engine_for(const Policy& p, const std::optional<std::string>& asked, const std::string& node);

// Pure: Socker's allow-list file (one image name per line, '#' comments, blank lines).
std::vector<std::string> parse_socker_images(const std::string& text);

// The slurm.conf for a node: the last matching [node:GLOB] section's, else the global key.
std::string slurm_conf_for(const Policy& p, const std::string& node);

// Pure: text -> Policy. Throws Error(Exit::Config) naming the file, line and key.
Policy parse_policy(const std::string& text, const std::string& origin);

// Built-in destinations no bind may target, whatever the config says.
const std::vector<std::string>& builtin_denied_destinations();

}  // namespace socker
