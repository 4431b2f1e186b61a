// Image names (NAME[:TAG]) and the names of images launched from files.
#pragma once

#include <string>
#include <string_view>
#include <vector>

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
// A TAG: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
bool valid_tag(std::string_view tag);

// An image file as found at launch: its path (resolved) and identity.
struct FileIdentity {
    std::string path;
    unsigned long long dev = 0, ino = 0, size = 0, mtime_ns = 0, ctime_ns = 0;
};
// The name an image launched from a file is stored under: "file/<stem>:<key>", the stem from the
// file name (extensions .tar/.tar.gz/... dropped, lowercased letters and digits, every other run
// of bytes one '-', at most 64), the key 24 hex digits
// of the sha256 of the whole identity. An unchanged file is found again without being read; a
// rewritten, touched or replaced one (new size, mtime, ctime or inode) gets a new key: a new import.
ImageName name_for_file(const FileIdentity& f);

// The file suffixes of image files (rootfs tarballs, docker-archives, OCI archives), longest
// first: dropped from the stem of a file's image name, and behind the "did you mean the file?"
// hint for a name that looks like one.
const std::vector<std::string_view>& image_file_suffixes();
bool looks_like_image_file(std::string_view name);

}  // namespace socker::image
