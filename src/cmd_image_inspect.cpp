// socker-mpi image inspect NAME[:TAG]: the admin store's image, else the user's own.
#include <iostream>
#include <nlohmann/json.hpp>

#include "image/squashfs.hpp"
#include "image/store.hpp"
#include "src/commands.hpp"
#include "src/host.hpp"
#include "src/images.hpp"
#include "src/stores.hpp"

namespace socker {

int run_command(const ImageInspectRequest& r, const Invocation&) {
    const Policy pol = load_admin_policy();
    const image::ImageName name = image::parse_image_name(r.name);
    const launcher::Identity id = host::current_identity();
    const ResolvedImage img = find_image(name, pol, id);
    // A user-store image's layer sizes are the user's files: read as the user.
    if (img.user_store) become_user(id);
    const image::Store store(img.store_root);
    const image::ImageRecord& rec = img.record;
    nlohmann::ordered_json j;
    j["Id"] = "sha256:" + rec.id;
    j["RepoTags"] = rec.names;
    j["ManifestDigest"] = rec.manifest_digest.empty()
                              ? nlohmann::ordered_json()
                              : nlohmann::ordered_json("sha256:" + rec.manifest_digest);
    j["Created"] = rec.created;
    j["Format"] = rec.format;
    j["Architecture"] = rec.architecture;
    j["Size"] = rec.size;
    j["Config"] = {{"Env", rec.config.env},
                   {"Entrypoint", rec.config.entrypoint},
                   {"Cmd", rec.config.cmd},
                   {"WorkingDir", rec.config.working_dir},
                   {"User", rec.config.user}};
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (const auto& l : rec.layers)
        layers.push_back(
            {{"DiffID", "sha256:" + l}, {"Size", store.layer_size(l)}, {"Dir", store.layer_dir(l)}});
    j["Layers"] = layers;
    // The squashfs file (a squashfs admin store): its sha256 (its name) and path.
    j["Squashfs"] = rec.squashfs;
    if (!rec.squashfs.empty()) j["SquashfsFile"] = image::squashfs_path(img.store_root, rec.squashfs);
    std::cout << j.dump(2) << "\n";
    return 0;
}

}  // namespace socker
