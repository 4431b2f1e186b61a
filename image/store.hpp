// The image store: content-addressed, unpacked layers that overlayfs stacks at launch, so a
// cached image launches in the same time whatever its size, and images sharing layers store
// them once. The layout on disk: image/layout.hpp. Imports: image/import.hpp; garbage
// collection: image/gc.hpp; layers in use: image/in_use.hpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "image/name.hpp"
#include "image/record.hpp"

namespace socker::image {

class Store {
public:
    explicit Store(std::string root) : root_(std::move(root)) {}
    const std::string& root() const { return root_; }

    // Lookup by NAME[:TAG]; throws Error(Exit::BadImage) with a "did you mean" if absent.
    ImageRecord find(const ImageName& name) const;
    // Lookup without the error: nullopt when NAME is absent or one of its layers is missing.
    std::optional<ImageRecord> find_complete(const ImageName& name) const;
    std::vector<ImageRecord> list() const;
    std::string layer_dir(const std::string& diff_id) const;
    bool layer_present(const std::string& diff_id) const;
    // Content bytes of a stored layer (0 when unknown).
    unsigned long long layer_size(const std::string& diff_id) const;

private:
    // The one walk behind find (strict: throws why not) and find_complete (nullopt).
    std::optional<ImageRecord> lookup(const ImageName& name, bool strict) const;
    std::string root_;
};

}  // namespace socker::image
