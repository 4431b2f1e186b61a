// The two image stores from the app's side: the admin store (root's) and the user's own
// (~/.local/share/socker-mpi/images, only ever touched as the user), and what image commands
// print about them.
#pragma once

#include <string>

#include "image/import.hpp"
#include "launcher/spec.hpp"
#include "src/policy.hpp"

namespace socker {

// The user's own image store. `create` makes the missing directories (0700): call it so only
// as the user (after the drop). Refuses a user without a home.
std::string user_store_path(const launcher::Identity& id, bool create);

// Drops to the invoking user for good, with the launcher's own routine and check.
void become_user(const launcher::Identity& id);

// Where an image command acts: the admin store (checking who may change it), or the user's,
// where everything is done as the user: this then drops privileges for good. node_lock: the
// store's node-local lock (host::ensure_store_lock), made as root before any drop, for the
// commands that change the store (`change`). `what` names the action in a refusal.
struct TargetStore {
    std::string root;
    std::string node_lock;
};
TargetStore target_store(const Policy& pol, const launcher::Identity& id, bool user, bool change,
                         const char* what);

// Options of an import: the admin's limits and the store's node lock.
image::ImportOptions import_options(const Policy& pol, const std::string& node_lock);
}  // namespace socker
