// socker-mpi image gc [--user]
#include <fmt/core.h>

#include "image/gc.hpp"
#include "src/commands.hpp"
#include "src/host.hpp"
#include "src/stores.hpp"

namespace socker {

int run_command(const ImageGcRequest& r, const Invocation&) {
    const Policy pol = load_admin_policy();
    const TargetStore store = target_store(pol, host::current_identity(), r.user_store, true, "gc of");
    const auto res = image::collect_garbage(store.root, {store.node_lock});
    fmt::print("removed {} unused layer(s) and {} leftover(s) of interrupted imports", res.layers_removed,
               res.tmp_removed);
    if (res.layers_in_use)
        fmt::print("; {} unlisted layer(s) kept: running containers use them", res.layers_in_use);
    fmt::print("\n");
    return 0;
}

}  // namespace socker
