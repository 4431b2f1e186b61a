// The image store: content-addressed, unpacked layers that overlayfs stacks at launch, so a
// cached image launches in the same time whatever its size, and images sharing layers store
// them once.
//
//   <root>/layers/<diffid-hex>/   one unpacked layer (overlay-ready; whiteouts as 0/0 devices)
//   <root>/images/<id-hex>.json   image record: layers, config (Env, Entrypoint, Cmd, ...)
//   <root>/refs/<escaped name>    "<id-hex>\n": NAME:TAG -> image
//   <root>/tmp/                   imports are built here, then renamed into place
//   <root>/.lock                  flock(2): one writer at a time
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "env.hpp"

namespace socker::image {

struct ImageName {
    std::string repo;  // "demo", "myapp", "lab/solver"
    std::string tag;   // "latest" when not given
    std::string str() const { return repo + ":" + tag; }
};
// Validates before anything touches the filesystem: lowercase repo components of
// [a-z0-9._-] (no "..", no leading '.', '-' or '/'), tag [A-Za-z0-9_.-]{1,128}, 255 bytes max.
// Throws Error(Exit::Usage).
ImageName parse_image_name(const std::string& s);

struct ImageConfig {
    std::vector<std::string> env;  // KEY=VALUE
    std::vector<std::string> entrypoint;
    std::vector<std::string> cmd;
    std::string working_dir;
    std::string user;  // recorded, never used: ranks run as the submitting user
};

struct ImageRecord {
    std::string id;                   // sha256 hex of the image config
    std::vector<std::string> names;   // NAME:TAG pointing at it
    std::vector<std::string> layers;  // diff ids (sha256 hex), lowest first
    ImageConfig config;
    std::string created;              // RFC 3339, from the image or the import time
    std::string format;               // rootfs | docker-archive | oci
    unsigned long long size = 0;      // bytes of file content
};

std::string record_to_json(const ImageRecord& r);
ImageRecord record_from_json(const std::string& text, const std::string& origin);

class Store {
public:
    explicit Store(std::string root) : root_(std::move(root)) {}
    const std::string& root() const { return root_; }

    // Lookup by NAME[:TAG]; throws Error(Exit::BadImage) with a "did you mean" if absent.
    ImageRecord find(const ImageName& name) const;
    std::vector<ImageRecord> list() const;
    std::string layer_dir(const std::string& diff_id) const { return root_ + "/layers/" + diff_id; }
    bool layer_present(const std::string& diff_id) const;

private:
    std::string root_;
};

// Imports (need write access to the store root: root for the admin store).
struct ImportResult {
    ImageRecord record;
    bool layers_reused = false;
    double seconds = 0;
    unsigned long long bytes_read = 0;
};
// Source: an open fd (the caller opened the file as the user). Detects the format.
ImportResult import_image(const std::string& store_root, int fd, const std::string& source_label,
                          const ImageName& name, bool progress);
void remove_image(const std::string& store_root, const ImageName& name);

}  // namespace socker::image
