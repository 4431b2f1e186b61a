// Single-file images (docs/images.md "Squashfs store"): an admin-store image as one flattened,
// read-only squashfs file beside its layers, for stores on a shared filesystem -- a node mounts
// one file (a loop device) instead of walking thousands of layer directories over the network.
//
//   <root>/squashfs/<sha256>.sqfs   the image's tree, named by the file's own sha256; the image
//                                   record's "squashfs" field names it
#pragma once

#include <string>
#include <string_view>

namespace socker::image {

std::string squashfs_path(const std::string& store_root, const std::string& sha256_hex);

struct SquashfsResult {
    std::string sha256;  // of the file, which is also its name
    bool built = false;  // false: the record already named a file that is present
    unsigned long long bytes = 0;
    double seconds = 0;
};
// Builds the squashfs file of image `image_id` (root, admin store): its layers stacked read-only
// by overlayfs in a private mount namespace of a child (whiteouts and opaque directories applied
// by the kernel, exactly as a launch would see the tree), written by Debian's mksquashfs without
// xattrs (file capabilities, like the setuid bits cleared at import, never reach a container),
// in <root>/tmp, then renamed to <root>/squashfs/<sha256>.sqfs and named in the image record.
// Several nodes building at once each rename their own complete file; the record names one, and
// garbage collection removes the others. Throws Error (Io, or BadImage for mksquashfs' refusal).
SquashfsResult build_squashfs(const std::string& store_root, const std::string& image_id);

// What is wrong with a squashfs file, from its first 96 bytes (the superblock) and its size: ""
// when it is a squashfs 4.0 superblock with a sane block size whose filesystem fits in the file.
std::string squashfs_superblock_problem(std::string_view head, unsigned long long file_size);

}  // namespace socker::image
