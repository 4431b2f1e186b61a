// Pure parsers for the JSON of image archives: docker-archive manifest.json, OCI image layout
// index.json / image manifests, and the image config. No I/O: text in, checked values out, so
// that they can be unit-tested and fuzzed (tests/fuzz/fuzz_image_json.cpp).
//
// Every function throws Error(Exit::BadImage) with a one-line message naming the document
// (`origin`) and the field that was wrong.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "image/name.hpp"
#include "image/record.hpp"

namespace socker::image::formats {

// Largest JSON document (manifest, index, config) read into memory.
inline constexpr size_t kMaxJsonBytes = 16u << 20;

bool is_sha256_hex(std::string_view s);
// "sha256:<64 lowercase hex>" -> the hex. Other algorithms and malformed digests are refused,
// so that a digest can be used as a file name (blobs/sha256/<hex>, layers/<hex>).
std::string digest_hex(const std::string& digest, const std::string& what);

// A relative path inside an archive, normalised ("./a//b" -> "a/b"); refuses absolute paths
// and "..", returns "" for the archive root.
std::string normalize_archive_path(std::string_view p, const std::string& what);

// ---- docker-archive (docker save / podman save --format docker-archive)
struct DockerManifestEntry {
    std::string config;                  // path of the config JSON inside the archive
    std::vector<std::string> repo_tags;  // "localhost/tiny:latest", may be empty
    std::vector<std::string> layers;     // paths of the layer tars, lowest first
};
std::vector<DockerManifestEntry> parse_docker_manifest(const std::string& text);
// Which entry of a multi-image archive to import: the only one, else the one whose RepoTags
// name `target` (registry prefixes "localhost/", "docker.io/library/" ignored).
size_t select_docker_entry(const std::vector<DockerManifestEntry>& entries, const ImageName& target);
// "localhost/x:1" -> "x:1"; "docker.io/library/x" -> "x:latest".
std::string short_ref(const std::string& ref);

// ---- OCI image layout (and Docker distribution manifests stored in one)
struct Descriptor {
    std::string media_type;
    std::string digest;  // hex only (sha256)
    long long size = -1;
    std::map<std::string, std::string> annotations;
    std::string os, architecture, variant;  // "platform", for index entries
    std::string ref_name() const;           // org.opencontainers.image.ref.name or ""
};
enum class DocKind { Index, Manifest, Unknown };
DocKind media_kind(const std::string& media_type);
bool is_layer_media_type(const std::string& media_type);

struct OciIndex {
    std::vector<Descriptor> manifests;
};
OciIndex parse_oci_index(const std::string& text, const std::string& origin);
struct OciManifest {
    Descriptor config;
    std::vector<Descriptor> layers;
};
OciManifest parse_oci_manifest(const std::string& text, const std::string& origin);
// The kind of a JSON blob from its own mediaType, else from its shape.
DocKind sniff_kind(const std::string& text, const std::string& origin);

// Entry of the top-level index named `tag` (ref.name equal to it, or ending in ":tag"); with
// an empty tag the only entry. Throws listing the names present.
const Descriptor& select_by_ref(const OciIndex& idx, const std::string& tag, const std::string& origin);
// Entry of a nested index (multi-platform image) for this machine's platform, or the only one.
const Descriptor& select_platform(const OciIndex& idx, const std::string& arch, const std::string& origin);
std::string host_architecture();  // GOARCH naming: amd64, arm64, ppc64le, ...

// ---- image config (application/vnd.oci.image.config.v1+json, docker config)
struct ParsedConfig {
    ImageConfig config;
    std::vector<std::string> diff_ids;  // hex, lowest layer first
    std::string created, os, architecture;
};
ParsedConfig parse_image_config(const std::string& text, const std::string& origin);

}  // namespace socker::image::formats
