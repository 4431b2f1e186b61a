// name_for_file, apart from name.cpp: it needs sha256 (libcrypto), which the launcher, which
// parses image names, never links.
#include <cctype>

#include "base/text.hpp"
#include "image/digest.hpp"
#include "image/name.hpp"

namespace socker::image {

ImageName name_for_file(const FileIdentity& f) {
    std::string base = f.path.substr(f.path.rfind('/') + 1);
    for (const std::string_view ext : image_file_suffixes()) {
        if (base.size() > ext.size() && ends_with(base, ext)) {
            base.resize(base.size() - ext.size());
            break;
        }
    }
    // Letters and digits kept; any run of other bytes becomes one '-' between them (image
    // names allow a single separator between alphanumerics).
    std::string stem;
    bool pending_sep = false;
    for (char c : base) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (pending_sep && !stem.empty()) stem += '-';
            pending_sep = false;
            stem += c;
            if (stem.size() >= 64) break;
        } else {
            pending_sep = true;
        }
    }
    if (stem.empty()) stem = "image";
    std::string id = f.path;
    for (unsigned long long v : {f.dev, f.ino, f.size, f.mtime_ns, f.ctime_ns})
        id += '\0' + std::to_string(v);
    return parse_image_name("file/" + stem + ":" + sha256_hex(id).substr(0, 24));
}

}  // namespace socker::image
