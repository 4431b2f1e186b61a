// Garbage collection of a store: images removed, layers no image uses and no running container
// on this node stacks (image/in_use.hpp), leftovers of killed imports.
#pragma once

#include <string>

#include "image/name.hpp"

namespace socker::image {

struct GcOptions {
    std::string node_lock;  // node_lock_path() of the store ("" = no running container checked)
};

struct RemoveResult {
    bool record_removed = false;  // false: the image keeps other names
    unsigned layers_removed = 0;
    unsigned long long bytes_freed = 0;
    unsigned layers_in_use = 0;  // kept: running containers on this node stack them
    unsigned containers = 0;     // ... that many
};
RemoveResult remove_image(const std::string& store_root, const ImageName& name, const GcOptions& opt = {});

// Removes what no image uses: layers, aliases, leftovers of killed imports. Safe while other
// imports run (layers they rely on are kept) and while containers run (theirs are kept).
struct GcResult {
    unsigned layers_removed = 0;
    unsigned tmp_removed = 0;
    unsigned squashfs_removed = 0;  // squashfs files no image names
    unsigned layers_in_use = 0;     // no image lists them, but running containers stack them
};
GcResult collect_garbage(const std::string& store_root, const GcOptions& opt = {});

}  // namespace socker::image
