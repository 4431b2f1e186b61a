#include "src/images.hpp"

#include <sys/stat.h>

#include "base/error.hpp"
#include "base/fd.hpp"
#include "image/import.hpp"
#include "image/store.hpp"
#include "launcher/user_process.hpp"
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
    struct stat st {};
    if (::fstat(uo.fd, &st) != 0) throw_errno("stat", path, errno);
    const image::ImageName name = image::name_for_file(
        {fd_path(uo.fd), static_cast<unsigned long long>(st.st_dev),
         static_cast<unsigned long long>(st.st_ino), static_cast<unsigned long long>(st.st_size),
         static_cast<unsigned long long>(st.st_mtim.tv_sec) * 1000000000ULL +
             static_cast<unsigned long long>(st.st_mtim.tv_nsec),
         static_cast<unsigned long long>(st.st_ctim.tv_sec) * 1000000000ULL +
             static_cast<unsigned long long>(st.st_ctim.tv_nsec)});

    image::ImportSource src;
    src.label = path;
    src.fd = uo.fd;
    src.seekable = true;
    src.size = static_cast<unsigned long long>(st.st_size);
    const std::string root = user_store_path(id, false);
    image::ImportOptions opt = import_options(pol, host::ensure_store_lock(pol, root));  // as root
    if (auto cb = progress_bar_for("importing " + path)) opt.progress = *cb;
    const std::string json = launcher::in_user_process(id, [&] {
        user_store_path(id, true);
        auto er = image::ensure_image(root, src, name, opt);
        if (er.imported) print_import_summary(prefix, path + " as " + name.str(), *er.imported);
        return image::record_to_json(er.record);
    });
    return {image::record_from_json(json, root), root, true};
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
        const std::string json = launcher::in_user_process(id, [&]() -> std::string {
            struct stat st {};
            if (::stat(root.c_str(), &st) != 0) return "";
            auto rec = image::Store(root).find_complete(name);
            return rec ? image::record_to_json(*rec) : "";
        });
        if (json.empty()) throw;  // in neither store: the admin store's message and suggestion
        return {image::record_from_json(json, root), root, true};
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
