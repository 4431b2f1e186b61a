// socker-mpi image rm [--user] NAME[:TAG]
#include <fmt/core.h>

#include "image/gc.hpp"
#include "src/commands.hpp"
#include "src/host.hpp"
#include "src/output.hpp"
#include "src/stores.hpp"

namespace socker {

int run_command(const ImageRemoveRequest& r, const Invocation&) {
    const Policy pol = load_admin_policy();
    const launcher::Identity id = host::current_identity();
    const image::ImageName name = image::parse_image_name(r.name);
    const TargetStore store = target_store(pol, id, r.user_store, true, "rm from");
    auto res = image::remove_image(store.root, name, {store.node_lock});
    if (res.record_removed)
        fmt::print("removed {}; {} unused layer(s) deleted, {} freed\n", name.str(), res.layers_removed,
                   human_bytes(static_cast<double>(res.bytes_freed)));
    else
        fmt::print("untagged {} (the image keeps its other names)\n", name.str());
    if (res.layers_in_use)
        fmt::print(
            "{} is still in use by {} running container(s) on this node: {} of its layer(s) stay until "
            "they end (then `socker-mpi image gc`, or the next import or rm, removes them)\n",
            name.str(), res.containers, res.layers_in_use);
    return 0;
}

}  // namespace socker
