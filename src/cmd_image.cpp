// socker-mpi image import|ls|rm|inspect
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "commands.hpp"
#include "error.hpp"
#include "host.hpp"
#include "image_store.hpp"

namespace socker {

int run_command(const ImportRequest& r, const EnvMap&, const std::string&) {
    const Policy pol = load_admin_policy();
    const launcher::Identity id = host::current_identity();
    const image::ImageName name = image::parse_image_name(r.name);
    if (r.user_store) throw_usage("--user: per-user stores are not supported yet");
    if (pol.import_admin_store == "root" && id.uid != 0)
        throw_refused("import into " + pol.image_store, "only root may import into the admin store");
    int fd = host::open_source_as_user(r.source, id);
    struct Close { int fd; ~Close() { ::close(fd); } } closer{fd};
    auto res = image::import_image(pol.image_store, fd, r.source, name, ::isatty(2));
    std::fprintf(stderr, "imported %s: id %.12s, %zu layer(s)%s, %.1f MiB in %.2f s\n", name.str().c_str(),
                 res.record.id.c_str(), res.record.layers.size(), res.layers_reused ? " (already stored)" : "",
                 static_cast<double>(res.record.size) / 1048576.0, res.seconds);
    std::printf("sha256:%s\n", res.record.id.c_str());
    return 0;
}

int run_command(const ImageListRequest& r, const EnvMap&, const std::string&) {
    const Policy pol = load_admin_policy();
    if (r.user_store) throw_usage("--user: per-user stores are not supported yet");
    image::Store store(pol.image_store);
    std::printf("%-30s %-12s %-14s %10s  %s\n", "NAME", "TAG", "ID", "SIZE", "CREATED");
    for (const auto& rec : store.list())
        for (const auto& n : rec.names) {
            auto colon = n.rfind(':');
            std::printf("%-30s %-12s %-14.12s %8.1fMB  %s\n", n.substr(0, colon).c_str(), n.substr(colon + 1).c_str(),
                        rec.id.c_str(), static_cast<double>(rec.size) / 1e6, rec.created.c_str());
        }
    return 0;
}

int run_command(const ImageRemoveRequest& r, const EnvMap&, const std::string&) {
    const Policy pol = load_admin_policy();
    const launcher::Identity id = host::current_identity();
    const image::ImageName name = image::parse_image_name(r.name);
    if (r.user_store) throw_usage("--user: per-user stores are not supported yet");
    if (pol.import_admin_store == "root" && id.uid != 0)
        throw_refused("rm from " + pol.image_store, "only root may change the admin store");
    image::remove_image(pol.image_store, name);
    std::printf("removed %s\n", name.str().c_str());
    return 0;
}

int run_command(const ImageInspectRequest& r, const EnvMap&, const std::string&) {
    const Policy pol = load_admin_policy();
    image::Store store(pol.image_store);
    std::cout << image::record_to_json(store.find(image::parse_image_name(r.name)));
    return 0;
}

}  // namespace socker
