#include "src/stores.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include "base/error.hpp"
#include "image/in_use.hpp"
#include "launcher/linux_sys.hpp"
#include "src/host.hpp"

namespace socker {

void become_user(const launcher::Identity& id) {
    launcher::LinuxSys sys;
    launcher::drop_privileges(id, sys);
}

TargetStore target_store(const Policy& pol, const launcher::Identity& id, bool user, bool change,
                         const char* what) {
    // Privileged (root, or the setuid launcher's euid 0): the node lock is made here, before any
    // drop; otherwise (the launcher dropped already, see dispatch.cpp) it exists.
    const bool privileged = ::geteuid() == 0;
    auto lock = [&](const std::string& root) {
        if (!change) return std::string();
        return privileged ? host::ensure_store_lock(pol, root) : image::node_lock_path(pol.state_dir, root);
    };
    if (user) {
        if (!pol.user_store)
            throw_refused("--user", "per-user image stores are disabled by the admin (user_store = no)");
        TargetStore t{user_store_path(id, false), ""};  // refuses a user without a home before dropping
        t.node_lock = lock(t.root);
        if (privileged) become_user(id);
        user_store_path(id, change);
        return t;
    }
    if (change && pol.import_admin_store == "root" && id.uid != 0)
        throw_refused(std::string(what) + " " + pol.image_store,
                      "only root may change the admin store" +
                          std::string(pol.user_store ? " (use --user for your own store)" : ""));
    return {pol.image_store, lock(pol.image_store)};
}

image::ImportOptions import_options(const Policy& pol, const std::string& node_lock) {
    image::ImportOptions opt;
    opt.node_lock = node_lock;
    opt.limits = {pol.import_max_bytes, pol.import_max_files, pol.import_max_ratio};
    return opt;
}

std::string user_store_path(const launcher::Identity& id, bool create) {
    if (id.home.empty() || id.home[0] != '/' || id.home == "/")
        throw Error(Exit::Refused, "per-user store", id.name, 0, "the user has no home directory");
    std::string root = id.home;
    for (const char* part :
         {"/.local", "/.local/share", "/.local/share/socker-mpi", "/.local/share/socker-mpi/images"}) {
        root = id.home + part;
        if (create && ::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("mkdir", root, errno);
    }
    return root;
}

}  // namespace socker
