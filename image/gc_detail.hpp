// Garbage collection's building blocks, shared by imports (which collect what a failed or
// replacing import leaves) and the public gc.hpp. Internal to image/.
#pragma once

#include <optional>
#include <string>

#include "image/in_use.hpp"
#include "image/layout.hpp"

namespace socker::image::gc {

// Which layers running containers on this node stack, decided under the node lock: garbage
// collection holds it exclusively from the scan of every mount namespace until the unused
// layers are renamed away; a launch holds it shared from opening its layers until its overlay
// is mounted (launcher::LinuxSys::mount_rootfs). A layer is kept while any container uses it.
class NodeGuard {
public:
    // wait=false: a busy lock (launches mounting) means "not now": held() is false.
    NodeGuard(const std::string& lock_path, bool wait);
    bool held() const { return held_; }
    bool in_use(const std::string& diff_id) const { return layer_used(in_use_, diff_id); }
    const InUse& usage() const { return in_use_; }

private:
    std::optional<layout::FileLock> lock_;
    bool held_ = false;
    InUse in_use_;
};

// Removes layer d if nothing uses it: no record, no live import, no running container on this
// node. `guard`: the caller's, held already; else one is taken for this layer. With wait=false
// a busy lock (an import unpacking, launches mounting) means: not now. Lock order, everywhere:
// the node lock, then a layer bucket.
enum class Collected { Removed, InUseByContainer, Kept };
struct CollectOutcome {
    Collected what = Collected::Kept;
    unsigned long long bytes = 0;
};
CollectOutcome collect_layer(const layout::Paths& p, const std::string& d, bool wait = true,
                             const NodeGuard* guard = nullptr);
// Work dirs of dead imports and trash of interrupted removals; returns how many.
unsigned sweep_tmp(const layout::Paths& p);
// Layers no record lists (left by killed imports or removals), their info files, dead aliases.
unsigned collect_orphans(const layout::Paths& p, bool wait);

}  // namespace socker::image::gc
