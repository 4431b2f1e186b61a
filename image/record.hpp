// The image record: what the store keeps of an image (layers, config), as JSON in the store,
// and as a plain length-prefixed "wire" form between a process that is only the user (which
// read the user's own store, or imported an image file) and the privileged launcher, so that
// the launcher parses no JSON of the user's.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace socker::image {

struct ImageConfig {
    std::vector<std::string> env;  // KEY=VALUE
    std::vector<std::string> entrypoint;
    std::vector<std::string> cmd;
    std::string working_dir;
    std::string user;  // recorded, never used: ranks run as the submitting user
};

struct ImageRecord {
    std::string id;                   // sha256 hex of the image config (docker's image id)
    std::vector<std::string> names;   // NAME:TAG pointing at it
    std::vector<std::string> layers;  // diff ids (sha256 hex), lowest first
    ImageConfig config;
    std::string created;          // RFC 3339, from the image or the import time
    std::string format;           // rootfs | docker-archive | oci
    std::string manifest_digest;  // sha256 hex of the OCI manifest, when there was one
    std::string architecture;
    unsigned long long size = 0;  // bytes of file content in its layers
    std::string squashfs;         // sha256 hex of its squashfs file (image/squashfs.hpp), "" = none
};

std::string record_to_json(const ImageRecord& r);
ImageRecord record_from_json(const std::string& text, const std::string& origin);

// The fields a launch uses (id, names, layers, Env, Entrypoint, Cmd, WorkingDir, User,
// format), each "<name> <count>\n" then <count> items "<length>:<bytes>\n"; at most
// kMaxWireBytes, ids and layers checked as sha256 hex. Throws Error(BadImage) naming `origin`.
inline constexpr size_t kMaxWireBytes = 16u << 20;
std::string record_to_wire(const ImageRecord& r);
ImageRecord record_from_wire(std::string_view wire, const std::string& origin);

}  // namespace socker::image
