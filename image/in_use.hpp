// Which layers the containers running on this node stack.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace socker::image {

// A launch mounts its overlay with overlay_source(layers) as the mount source, so that every
// container on the node shows in its mountinfo which layers it stacks, for as long as any
// process is in its mount namespace (killed launchers, joined namespaces and forked children
// included, with no record to clean up). Garbage collection reads them (containers_in_use) and
// keeps those layers. Layers are named by the first 16 hex digits of their diff id. The source is
// "socker-mpi:k=<key>:<layer>,<layer>..." (the key: launcher::share_key, or none).
std::string overlay_source(const std::vector<std::string>& layer_ids, const std::string& key = "");
struct InUse {
    // one entry per container mount namespace: the layer prefixes it stacks
    std::vector<std::vector<std::string>> containers;
    // how many containers stack any of these layers (diff ids)
    unsigned containers_using(const std::vector<std::string>& layer_ids) const;
};
bool layer_used(const InUse& u, const std::string& diff_id);
// Scans /proc/*/mountinfo, one read per mount namespace (those of processes the caller may
// inspect: root sees all, a user their own).
InUse containers_in_use(const std::string& proc = "/proc");
// The walk behind it: `visit(pid, mountinfo)` once per mount namespace under `proc` (its first
// process listed; a namespace whose mountinfo the caller may not read is skipped), until `visit`
// returns false.
void for_each_mount_namespace(
    const std::string& proc,
    const std::function<bool(const std::string& pid, const std::string& mountinfo)>& visit);
// Parses one mountinfo text: the layer prefixes of each socker-mpi overlay in it.
std::vector<std::vector<std::string>> overlays_in_mountinfo(const std::string& mountinfo);
// The node-local lock file of a store (node-local: the store may be shared between nodes).
std::string node_lock_path(const std::string& state_dir, const std::string& store_root);

}  // namespace socker::image
