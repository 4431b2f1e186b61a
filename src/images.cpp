#include "src/images.hpp"

#include <sys/stat.h>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "image/store.hpp"
#include "launcher/user_process.hpp"
#include "src/dispatch.hpp"
#include "src/host.hpp"
#include "src/stores.hpp"

namespace socker {

bool names_a_file(const std::string& image) { return !image.empty() && (image[0] == '/' || image[0] == '.'); }

ResolvedImage image_from_file(const std::string& path, const Policy& pol, const launcher::Identity& id,
                              const std::string& prefix) {
    if (!pol.user_store)
        throw_refused("image file " + path,
                      "launching from a file imports it into your own image store, and the admin disabled "
                      "those (user_store = no); have the image imported, then launch it by name");
    const auto uo = launcher::open_as_user(path, id.uid, id.gid, true);
    const Fd closer(uo.fd);
    if (uo.is_dir)
        throw_usage(path +
                    ": a directory; launch from an image file (docker-archive, OCI archive, rootfs "
                    "tar), or import an OCI layout first: socker-mpi image import layout:DIR NAME");
    const std::string root = user_store_path(id, false);
    host::ensure_store_lock(pol, root);  // as root, before the child drops
    // The import is the image tools' (libarchive, the image JSON), in a child that is only the
    // user, reading the file opened above as its fd 3; the record comes back in wire form.
    const std::string wire = launcher::exec_as_user(
        id, tools_program(), {"socker-mpi", "internal-ensure", "--label", path, "--prefix", prefix},
        {{"PATH", "/usr/bin:/bin"}}, uo.fd);
    return {image::record_from_wire(wire, path), root, true};
}

// IMAGE names an image: the admin store's, else (when the admin allows per-user stores) the
// user's own, looked up by a process that is only the user.
namespace {

ResolvedImage find_in_stores(const image::ImageName& name, const Policy& pol, const launcher::Identity& id) {
    host::check_store_dir(pol.image_store);
    try {
        return {image::Store(pol.image_store).find(name), pol.image_store, false};
    } catch (const Error& e) {
        if (e.code() != Exit::BadImage || !pol.user_store || id.home.empty() || id.home == "/") throw;
        const std::string root = user_store_path(id, false);
        const std::string wire = launcher::in_user_process(id, [&]() -> std::string {
            struct stat st {};
            if (::stat(root.c_str(), &st) != 0) return "";
            auto rec = image::Store(root).find_complete(name);
            return rec ? image::record_to_wire(*rec) : "";
        });
        if (wire.empty()) throw;  // in neither store: the admin store's message and suggestion
        return {image::record_from_wire(wire, root), root, true};
    }
}

}  // namespace

ResolvedImage find_image(const image::ImageName& name, const Policy& pol, const launcher::Identity& id) {
    try {
        return find_in_stores(name, pol, id);
    } catch (const Error& e) {
        // "app.tar" is a valid image name; the user most likely meant the file.
        if (e.code() != Exit::BadImage || name.tag != "latest" || !image::looks_like_image_file(name.repo))
            throw;
        throw Error(e.code(),
                    std::string(e.what()) + " (to launch an image file, give its path: ./" + name.repo + ")",
                    {});
    }
}

}  // namespace socker
