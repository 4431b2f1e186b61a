// The one image lookup: the admin store, then the user's own store (always through a child
// that is only the user), or an image file imported into the user's store on first use.
#pragma once

#include <string>

#include "image/name.hpp"
#include "image/record.hpp"
#include "launcher/spec.hpp"
#include "src/policy.hpp"

namespace socker {

struct ResolvedImage {
    image::ImageRecord record;
    std::string store_root;
    bool user_store = false;  // the user's own store: read and mounted as the user
};

// IMAGE is an image file rather than a name: names never start with '/' or '.'.
bool names_a_file(const std::string& image);

// A name: the admin store's image, else (when the admin allows per-user stores) the user's own.
// Not found in either: the admin store's error and suggestion (and, for a name like "app.tar",
// a hint to give the file's path).
ResolvedImage find_image(const image::ImageName& name, const Policy& pol, const launcher::Identity& id);

// A file: the image imported from it, importing it first if this file (as it is now) was never
// imported; 64 ranks starting at once make one import (image::ensure_image). Always into the
// user's own store, as the user: running a private file must not publish it in the shared admin
// store. `prefix` starts the import's summary line.
ResolvedImage image_from_file(const std::string& path, const Policy& pol, const launcher::Identity& id,
                              const std::string& prefix);

}  // namespace socker
