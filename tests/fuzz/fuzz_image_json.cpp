// libFuzzer: the JSON of image archives (docker manifest.json, OCI index/manifest, image config)
// and the selection logic. Anything but socker::Error escaping is a bug (libFuzzer reports the
// uncaught exception), as is any sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/error.hpp"
#include "image/formats.hpp"
#include "image/record.hpp"

using namespace socker;
using namespace socker::image;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        auto entries = formats::parse_docker_manifest(text);
        formats::select_docker_entry(entries, ImageName{"fuzz", "latest"});
    } catch (const Error&) {
    }
    try {
        auto idx = formats::parse_oci_index(text, "fuzz");
        formats::select_by_ref(idx, "latest", "fuzz");
        formats::select_by_ref(idx, "", "fuzz");
        formats::select_platform(idx, "amd64", "fuzz");
    } catch (const Error&) {
    }
    try {
        formats::parse_oci_manifest(text, "fuzz");
    } catch (const Error&) {
    }
    try {
        formats::sniff_kind(text, "fuzz");
    } catch (const Error&) {
    }
    try {
        formats::parse_image_config(text, "fuzz");
    } catch (const Error&) {
    }
    try {
        formats::normalize_archive_path(text, "fuzz");
        formats::digest_hex(text, "fuzz");
    } catch (const Error&) {
    }
    try {
        // Image records: read from the store, and handed from the user-store child to the
        // privileged launcher. What parses must survive a round trip unchanged.
        auto rec = record_from_json(text, "fuzz");
        if (record_to_json(record_from_json(record_to_json(rec), "fuzz")) != record_to_json(rec))
            __builtin_trap();
    } catch (const Error&) {
    }
    formats::short_ref(text);
    return 0;
}
