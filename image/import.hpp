// Importing images into a store: docker-archive, OCI archive or layout, rootfs tarballs; every
// digest verified; layers stored once; limits against decompression bombs.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "image/name.hpp"
#include "image/record.hpp"

namespace socker::image {

// Where an image comes from. Exactly one of fd and open_layout is set.
struct ImportSource {
    std::string label;  // for messages: the file, "-", "layout:DIR"
    // A stream (regular file, pipe, stdin): a docker-archive, an OCI layout in a tar
    // (oci-archive, docker save >= 25) or a plain rootfs tarball; the outer tar may be
    // compressed. Detected from the content.
    int fd = -1;
    bool seekable = false;        // a regular file: a misdetected rootfs can be re-read
    unsigned long long size = 0;  // bytes when known (progress)
    // An OCI image layout directory: opens "index.json", "blobs/sha256/<hex>" relative to it,
    // for reading (the command opens them as the invoking user). Returns an fd or throws.
    std::function<int(const std::string& rel)> open_layout;
    std::string layout_tag;  // org.opencontainers.image.ref.name to select; "" = the only one
};

struct ImportProgress {
    unsigned long long bytes = 0;  // source bytes read so far
    unsigned long long total = 0;  // 0 when unknown (stdin)
    bool done = false;
};

// Limits against decompression bombs, for one whole import (admin config: import_max_*).
// 0 = no limit. The ratio is checked once a stream has produced more than 64 MiB.
struct ImportLimits {
    unsigned long long max_bytes = 0;  // file content written
    unsigned long long max_files = 0;  // entries created
    double max_ratio = 0;              // decompressed bytes per stored (compressed) byte
};

struct ImportOptions {
    std::function<void(const ImportProgress&)> progress;
    std::string xattr_ns;   // overlay xattr namespace: "" = trusted as root, user otherwise
    std::string node_lock;  // node_lock_path() of this store: garbage collection honours launches
    ImportLimits limits;
};

struct ImportResult {
    ImageRecord record;
    unsigned layers_unpacked = 0;  // layers this import wrote
    unsigned layers_reused = 0;    // layers already stored (not written again)
    double seconds = 0;
    unsigned long long bytes_read = 0;
    unsigned long dropped = 0;          // device nodes, FIFOs, sockets left out
    unsigned long suid_cleared = 0;     // setuid/setgid bits cleared
    std::vector<std::string> replaced;  // images that lost their last name to this import
};
// Needs write access to the store root (root for the admin store). Throws Error:
// BadImage for anything wrong with the image (nothing is kept), Io for the host (ENOSPC...).
ImportResult import_image(const std::string& store_root, const ImportSource& src, const ImageName& name,
                          const ImportOptions& opt = {});

// The image NAME names if it is complete; otherwise one import of `src` under NAME. Concurrent
// callers for the same NAME (64 ranks of a job launching from one image file) wait for the one
// import (flock on locks/name-<first 2 hex of sha256(NAME)>, taken only on a miss) and then use
// its result: one unpack. If that import fails it leaves locks/failed-<sha256(NAME)> (exit code,
// message) and the callers that waited for it throw that error instead of importing again; a
// killed import leaves none, and the next caller imports. `imported`: this caller did the import.
struct EnsureResult {
    ImageRecord record;
    std::optional<ImportResult> imported;
};
EnsureResult ensure_image(const std::string& store_root, const ImportSource& src, const ImageName& name,
                          const ImportOptions& opt = {});

}  // namespace socker::image
