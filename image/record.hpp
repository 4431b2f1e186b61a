// The image record: what the store keeps of an image (layers, config), as JSON.
#pragma once

#include <string>
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
};

std::string record_to_json(const ImageRecord& r);
ImageRecord record_from_json(const std::string& text, const std::string& origin);

}  // namespace socker::image
